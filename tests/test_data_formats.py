"""Loading and validating TRL-format data; tokenisation special-token rules."""

from __future__ import annotations

import json

import datasets
import pytest
from conftest import make_tokenizer

from prefshift.data.formats import DataFormatError, load, validate
from prefshift.data.tokenize import encode, split_prompt_completion, tokenize


def _write_jsonl(path, rows) -> None:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))


def test_jsonl_and_parquet_load(tmp_path) -> None:
    rows = [{"prompt": "w1 w2", "chosen": " w3", "rejected": " w4"}] * 3
    _write_jsonl(tmp_path / "p.jsonl", rows)
    datasets.Dataset.from_list(rows).to_parquet(str(tmp_path / "p.parquet"))
    assert len(load(tmp_path / "p.jsonl", "paired")) == 3
    assert len(load(tmp_path / "p.parquet", "paired")) == 3


def test_missing_column_names_file_and_columns(tmp_path) -> None:
    _write_jsonl(tmp_path / "bad.jsonl", [{"prompt": "w1", "chosen": " w2"}])
    with pytest.raises(DataFormatError, match=r"bad\.jsonl: missing column\(s\) \['rejected'\]"):
        load(tmp_path / "bad.jsonl", "paired")


def test_non_string_field_names_row_and_column(tmp_path) -> None:
    rows = [
        {"prompt": "w1", "completion": " w2", "label": True},
        {"prompt": "w1", "completion": " w2", "label": "yes"},
    ]
    _write_jsonl(tmp_path / "u.jsonl", rows)
    with pytest.raises(DataFormatError, match=r"u\.jsonl: row 1, column 'label'"):
        load(tmp_path / "u.jsonl", "unpaired")
    ds = datasets.Dataset.from_list(
        [{"prompt": "a", "chosen": " b", "rejected": " c"}, {"prompt": "a", "chosen": " b", "rejected": " "}]
    )
    with pytest.raises(DataFormatError, match="row 1, column 'rejected': empty completion"):
        validate(ds, "paired")


def test_empty_dataset_and_missing_file(tmp_path) -> None:
    (tmp_path / "e.jsonl").write_text("")
    with pytest.raises(DataFormatError):
        load(tmp_path / "e.jsonl", "sft")
    with pytest.raises(DataFormatError, match="empty"):
        validate(datasets.Dataset.from_dict({"prompt": [], "completion": []}), "sft")
    with pytest.raises(DataFormatError, match="file not found"):
        load(tmp_path / "nope.parquet", "sft")
    with pytest.raises(DataFormatError, match="unknown data kind"):
        validate(datasets.Dataset.from_dict({"prompt": ["a"]}), "pairs")  # type: ignore[arg-type]


def test_implicit_prompt_conversations_are_split() -> None:
    chosen = [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}]
    rejected = [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "go away"}]
    ds = validate(datasets.Dataset.from_list([{"chosen": chosen, "rejected": rejected}]), "paired")
    assert ds[0]["prompt"] == chosen[:1]
    assert ds[0]["chosen"] == chosen[1:] and ds[0]["rejected"] == rejected[1:]


def test_bos_never_doubled_and_one_eos() -> None:
    tok = make_tokenizer()
    bos, eos = tok.bos_token_id, tok.eos_token_id
    assert encode(tok, "<bos> w1 w2")[:2] == [bos, tok.convert_tokens_to_ids("w1")]
    p, c = split_prompt_completion(tok, "<bos> w1 w2", " w3 <eos>")
    assert p.count(bos) == 1 and c.count(eos) == 1 and c[-1] == eos


def test_chat_template_bos_not_doubled() -> None:
    tok = make_tokenizer()
    tok.chat_template = (
        "{{ bos_token }}{% for m in messages %}{{ m['role'] }} {{ m['content'] }} {% endfor %}"
        "{% if add_generation_prompt %}assistant {% endif %}"
    )
    prompt = [{"role": "user", "content": "w1 w2"}]
    p, c = split_prompt_completion(tok, prompt, [{"role": "assistant", "content": "w3"}])
    assert p.count(tok.bos_token_id) == 1 and p[0] == tok.bos_token_id
    assert c[-1] == tok.eos_token_id


def test_truncation_keeps_bos_and_prompt_end() -> None:
    tok = make_tokenizer()
    ds = validate(
        datasets.Dataset.from_list([{"prompt": "w1 w2 w3 w4 w5", "completion": " w6 w7 w8"}]), "sft"
    )
    row = tokenize(ds, tok, "sft", max_prompt_length=3, max_completion_length=2)[0]
    assert row["prompt_ids"] == [tok.bos_token_id, *tok.convert_tokens_to_ids(["w4", "w5"])]
    assert row["completion_ids"] == [tok.convert_tokens_to_ids(["w6", "w7"])]
