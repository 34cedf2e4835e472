"""Dataset adapters on local fixtures with the hub schemas (tests/fixtures/real; nothing is downloaded)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import make_tokenizer
from pydantic import ValidationError

from prefshift.data.adapters import (
    AdapterError,
    DataSourceSpec,
    get_adapter,
    load_pairs,
    load_prompts,
    load_sft,
    render_prompt,
)
from prefshift.data.tokenize import split_prompt_completion, tokenize

FIX = Path(__file__).parent / "fixtures" / "real"


def spec(adapter: str, name: str, **kw) -> DataSourceSpec:
    return DataSourceSpec(adapter=adapter, path=str(FIX / name), **kw)


def chat_tokenizer():
    """The tiny word-level tokenizer with a Llama-3-like template that writes BOS into the text."""
    tok = make_tokenizer()
    tok.chat_template = (
        "{{ bos_token }}{% for m in messages %}<{{ m['role'] }}> {{ m['content'] }} {% endfor %}"
        "{% if add_generation_prompt %}<assistant> {% endif %}"
    )
    return tok


def test_tldr_preference_maps_choice_and_template() -> None:
    pairs = load_pairs(spec("tldr_preference", "summarize_from_feedback_comparisons.jsonl"))
    assert len(pairs) == 6 and {"prompt", "chosen", "rejected", "id", "domain"} <= set(pairs.column_names)
    first, second = pairs[0], pairs[1]
    assert first["prompt"].startswith("SUBREDDIT: r/relationships\n\nTITLE: My friend keeps")
    assert first["prompt"].endswith("\n\nTL;DR:")
    assert (
        first["chosen"] == " Friend cancels every plan at the last minute; how do I tell her it bothers me?"
    )
    # choice = 1 on odd rows: the preferred summary is the second one
    assert second["chosen"].startswith(" Car loan at 4%") and second["rejected"] == " I have a car."
    assert first["domain"] == "relationships" and first["id"] == "t3_00000"


def test_tldr_sft_prompts_match_the_preference_prompts() -> None:
    """SFT and preference stages must see byte-identical prompts for the same post."""
    sft = load_sft(spec("tldr_sft", "tldr_sft.jsonl"))
    pairs = load_pairs(spec("tldr_preference", "summarize_from_feedback_comparisons.jsonl"))
    assert sft["prompt"] == pairs["prompt"]
    assert sft[0]["completion"].startswith(" Friend cancels") and sft[0]["domain"] == "relationships"
    carper = load_sft(spec("tldr_sft_carper", "carper_tldr.jsonl"))
    assert len(carper) == 4 and carper[0]["completion"] == " " + sft[0]["completion"].strip()
    with pytest.raises(AdapterError, match="no preference pairs"):
        load_pairs(spec("tldr_sft", "tldr_sft.jsonl"))


def test_cnn_dailymail_prompts_and_references() -> None:
    targets = load_prompts(spec("cnn_dailymail", "cnn_dailymail.jsonl"))
    assert targets.column_names == ["id", "domain", "prompt", "reference"]
    row = targets[0]
    assert row["prompt"].startswith("ARTICLE: LONDON (CNN)") and row["prompt"].endswith("\n\nTL;DR:")
    assert (
        row["reference"]
        == "Council approves 40 km of protected bike lanes by 2027 . Officials expect fewer traffic deaths ."
    )
    assert row["id"] == "a1b2c3"
    sft = load_sft(spec("cnn_dailymail", "cnn_dailymail.jsonl", n=2))
    assert len(sft) == 2 and sft[0]["completion"] == " " + row["reference"]


def test_hh_rlhf_splits_transcripts_at_the_last_assistant_turn() -> None:
    pairs = load_pairs(spec("hh_rlhf", "hh_rlhf.jsonl"))
    assert len(pairs) == 6  # the tie (identical responses) is dropped
    assert pairs[0]["prompt"] == "\n\nHuman: How do I keep basil alive indoors?\n\nAssistant:"
    assert pairs[0]["rejected"] == " Just water it."
    egg = pairs[3]  # responses share their first words: they stay in the responses
    assert egg["chosen"].startswith(" About nine to twelve minutes for hard")
    assert egg["rejected"].startswith(" About nine to twelve minutes, give")
    multi = pairs[5]
    assert multi["prompt"].count("\n\nHuman:") == 2 and multi["prompt"].endswith(
        "Three times a week.\n\nAssistant:"
    )


def test_ultrafeedback_directory_splits() -> None:
    # the default split is the adapter's (train_prefs), found by datasets' split patterns in data/
    train = load_pairs(spec("ultrafeedback_binarized", "ultrafeedback_binarized"))
    test = load_pairs(spec("ultrafeedback_binarized", "ultrafeedback_binarized", split="test_prefs"))
    assert len(train) == 4 and len(test) == 1
    assert train[2]["prompt"] == "\n\nHuman: What is 17 times 3?\n\nAssistant:"
    assert train[2]["chosen"] == " 17 times 3 is 51." and train[2]["rejected"] == " 17 times 3 is 41."
    assert load_prompts(spec("ultrafeedback_binarized", "ultrafeedback_binarized"))[2]["reference"] == (
        "17 times 3 is 51."
    )


def test_shp_label_picks_the_preferred_comment() -> None:
    pairs = load_pairs(spec("shp", "shp.jsonl"))
    assert pairs[0]["chosen"].startswith(" Use plenty of water") and pairs[0]["rejected"] == " Add oil."
    assert pairs[3]["chosen"].startswith(" Document every report")  # labels = 0: B preferred
    assert pairs[3]["domain"] == "askengineers" and pairs[3]["id"] == "p3:ca3:cb3"


def test_n_and_seed_select_rows_reproducibly() -> None:
    a = load_pairs(spec("shp", "shp.jsonl", n=3, seed=1))
    b = load_pairs(spec("shp", "shp.jsonl", n=3, seed=1))
    assert len(a) == 3 and a["id"] == b["id"]


def test_chat_template_renders_prompt_with_one_bos() -> None:
    tok = chat_tokenizer()
    pairs = load_pairs(spec("hh_rlhf", "hh_rlhf.jsonl"), tok)
    prompt = pairs[5]["prompt"]
    assert not prompt.startswith(tok.bos_token)  # the tokenizer adds BOS itself
    assert prompt.startswith("<user> I want to start running.") and prompt.endswith("<assistant> ")
    assert pairs[5]["chosen"] == "Start with 20 minutes of easy running, walking breaks allowed."
    bos = tok.bos_token_id
    # the generation engine's tokenisation (add_special_tokens=True) and the trainer's both give one BOS
    assert tok(prompt, add_special_tokens=True)["input_ids"].count(bos) == 1
    rows = tokenize(pairs, tok, "paired")
    assert all(r["prompt_ids"].count(bos) == 1 and r["prompt_ids"][0] == bos for r in rows)
    assert all(
        c[-1] == tok.eos_token_id and c.count(tok.eos_token_id) == 1
        for r in rows
        for c in r["completion_ids"]
    )
    p, _ = split_prompt_completion(tok, prompt, pairs[5]["chosen"])
    assert p.count(bos) == 1


def test_chat_template_keeps_bos_when_tokenizer_adds_none() -> None:
    """A tokenizer that never adds BOS (Qwen-style) keeps whatever the template writes."""
    tok = chat_tokenizer()
    tok._tokenizer.post_processor = None  # no automatic BOS
    rendered = render_prompt([{"role": "user", "content": "w1"}], "dialogue", tok)
    assert rendered.startswith(tok.bos_token)


def _write(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_missing_column_names_file_and_column(tmp_path) -> None:
    rows = [json.loads(line) for line in (FIX / "cnn_dailymail.jsonl").read_text().splitlines()]
    bad = _write(
        tmp_path / "cnn_no_highlights.jsonl",
        [{k: v for k, v in r.items() if k != "highlights"} for r in rows],
    )
    with pytest.raises(AdapterError, match=r"cnn_no_highlights\.jsonl.*missing column\(s\) \['highlights'\]"):
        load_prompts(DataSourceSpec(adapter="cnn_dailymail", path=str(bad)))


def test_missing_nested_field_names_row(tmp_path) -> None:
    rows = [
        json.loads(line)
        for line in (FIX / "summarize_from_feedback_comparisons.jsonl").read_text().splitlines()
    ]
    rows[2]["summaries"] = [{"text": " only one"}]
    bad = _write(tmp_path / "cmp.jsonl", rows)
    with pytest.raises(AdapterError, match=r"cmp\.jsonl.*row 2.*expected 2 summaries"):
        load_pairs(DataSourceSpec(adapter="tldr_preference", path=str(bad)))


def test_empty_dataset_and_missing_file(tmp_path) -> None:
    empty = tmp_path / "empty.parquet"
    import datasets

    datasets.Dataset.from_dict({"article": [], "highlights": [], "id": []}).to_parquet(str(empty))
    with pytest.raises(AdapterError, match=r"empty\.parquet.*empty \(0 rows\)"):
        load_prompts(DataSourceSpec(adapter="cnn_dailymail", path=str(empty)))
    (tmp_path / "empty.jsonl").write_text("")
    with pytest.raises(AdapterError, match=r"empty\.jsonl"):
        load_prompts(DataSourceSpec(adapter="cnn_dailymail", path=str(tmp_path / "empty.jsonl")))
    with pytest.raises(AdapterError, match="file not found"):
        load_prompts(DataSourceSpec(adapter="cnn_dailymail", path=str(tmp_path / "nope.jsonl")))


def test_registry_and_spec_name_valid_adapters() -> None:
    assert get_adapter("hh_rlhf").hub_id == "Anthropic/hh-rlhf"
    with pytest.raises(KeyError, match=r"unknown dataset adapter 'tldr'.*'cnn_dailymail'"):
        get_adapter("tldr")
    with pytest.raises(ValidationError, match="valid"):
        DataSourceSpec(adapter="imdb")
    with pytest.raises(ValidationError):
        DataSourceSpec(adapter="shp", rows=3)  # extra keys are typos, not options
