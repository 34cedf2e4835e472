"""The quick world: artefacts in the standard layout, and the domain shift exists before any tuning."""

from __future__ import annotations

import json

from transformers import AutoModelForCausalLM, AutoTokenizer

from prefshift.stages import read_events
from prefshift.world.build import build_world


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
