"""The quick world: artefacts in the standard layout, and the domain shift exists before any tuning."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from transformers import AutoModelForCausalLM, AutoTokenizer

from prefshift.stages import read_events
from prefshift.world import build
from prefshift.world.build import build_world
from prefshift.world.profiles import get_profile


def test_quick_world_orderings(quick_world) -> None:
    table = {r["domain"]: r for r in json.loads((quick_world / "sanity.json").read_text())["rows"]}
    src, tgt = table["forum"], table["news"]
    # the SFT model is partly competent on its own domain: well above corrupted references, below references
    assert src["sft_greedy"] > src["corrupted_reference"] + 0.1
    assert src["sft_greedy"] < src["reference"]
    # and worse on the target domain: the shift exists before preference tuning
    assert tgt["sft_greedy"] < src["sft_greedy"]


def test_artefacts_load_like_hub_models(quick_world) -> None:
    for name in ("pretrained", "sft"):
        model = AutoModelForCausalLM.from_pretrained(str(quick_world / name))
        tok = AutoTokenizer.from_pretrained(str(quick_world / name))
        assert model.config.vocab_size == len(tok)
        assert tok("summarize : a")["input_ids"][0] == tok.bos_token_id


def test_rebuild_recomputes_nothing(quick_world, capsys) -> None:
    before = len(read_events(quick_world))
    build_world("quick", quick_world)
    events = read_events(quick_world)[before:]
    assert {e["event"] for e in events} == {"hit"} and len(events) == 4
    assert "wall time" in capsys.readouterr().out


class _Model:
    def eval(self) -> None: ...

    def train(self) -> None: ...


@pytest.mark.parametrize(
    ("outputs", "extensions", "reached"),
    [(["good"], 0, True), (["bad", "bad", "good"], 2, True), (["bad"] * 4, 3, False)],
)
def test_sft_is_extended_until_it_reaches_the_competence_target(
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    outputs: list[str],
    extensions: int,
    reached: bool,
) -> None:
    """A world whose SFT missed the copy transition is trained further; one past it is left alone."""
    gold = {"reference": 1.0, "good": 0.6, "bad": 0.3}  # target: 0.5 x the references' 1.0
    greedy = iter(outputs)
    trained = []
    monkeypatch.setattr(build, "mean_gold", lambda dev, texts: gold[texts[0]])
    monkeypatch.setattr(build, "_greedy", lambda model, tok, prompts, n: [next(greedy)] * len(prompts))
    monkeypatch.setattr(build, "_train", lambda *args, **kw: trained.append((args[4:], kw["history"])))
    profile = get_profile("quick")
    dev = [{"prompt": "p", "reference": "reference"}] * 3

    build._extend_until_competent(_Model(), None, [], dev, tmp_path, profile, seed=7)

    record = json.loads((tmp_path / "sft_schedule.json").read_text())
    assert record["reached"] is reached and record["target_dev_gold"] == 0.5
    assert [run["dev_gold"] for run in record["runs"]] == [gold[o] for o in outputs]
    lr = profile.sft_lr / 2
    assert trained == [
        ((profile.sft_extension_epochs, lr, profile, 7 + k + 1), f"log_history_extension{k + 1}.json")
        for k in range(extensions)
    ]
    assert ("still below" in capsys.readouterr().out) is not reached
