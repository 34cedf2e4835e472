"""A real-data study end to end on local fixtures (hub schemas) with tiny models built from config.

Nothing is downloaded: the base model, the teacher and the reward-model judge are tiny random Llamas
saved to disk with a word-level tokenizer built from the fixtures' own words. What is checked is the
wiring (adapters → SFT → dataset pairs → teacher pseudo-labels → cells → judge-scored evaluation →
report), not the quality of random models.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import yaml
from tokenizers import Tokenizer, models, pre_tokenizers, processors
from transformers import (
    LlamaConfig,
    LlamaForCausalLM,
    LlamaForSequenceClassification,
    PreTrainedTokenizerFast,
)

from prefshift.judging.reward_model import RewardModelJudge
from prefshift.study.config import load_config
from prefshift.study.run import run_study

FIXTURES = Path(__file__).parent / "fixtures" / "real"


def _tokenizer() -> PreTrainedTokenizerFast:
    split = pre_tokenizers.Whitespace()
    words: set[str] = set()
    for path in FIXTURES.glob("*.jsonl"):
        for line in path.read_text().splitlines():
            for value in json.loads(line).values():
                words.update(w for w, _ in split.pre_tokenize_str(json.dumps(value)))
    vocab = {"<pad>": 0, "<bos>": 1, "<eos>": 2, "<unk>": 3, **{w: i + 4 for i, w in enumerate(sorted(words))}}
    tk = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tk.pre_tokenizer = split
    tk.post_processor = processors.TemplateProcessing(single="<bos> $A", special_tokens=[("<bos>", 1)])
    return PreTrainedTokenizerFast(
        tokenizer_object=tk, bos_token="<bos>", eos_token="<eos>", pad_token="<pad>", unk_token="<unk>"
    )


@pytest.fixture(scope="module")
def models_dir(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("real-models")
    tok = _tokenizer()
    cfg = LlamaConfig(
        vocab_size=len(tok), hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
        bos_token_id=1, eos_token_id=2, pad_token_id=0,
    )
    torch.manual_seed(0)
    for name, cls in (("base", LlamaForCausalLM), ("teacher", LlamaForCausalLM), ("rm", LlamaForSequenceClassification)):
        model = cls(cfg) if cls is LlamaForCausalLM else cls(LlamaConfig(**cfg.to_dict(), num_labels=1))
        model.save_pretrained(root / name)
        tok.save_pretrained(root / name)
    return root


def real_config(models: Path, out: Path, **over) -> Path:
    cfg = {
        "name": "real-tiny",
        "data": {
            "model": str(models / "base"),
            "teacher": str(models / "teacher"),
            "source_name": "tldr",
            "source": {
                "sft": {"adapter": "tldr_sft", "path": str(FIXTURES / "tldr_sft.jsonl")},
                "pairs": {"adapter": "tldr_preference", "path": str(FIXTURES / "summarize_from_feedback_comparisons.jsonl")},
                "test": {"adapter": "tldr_sft", "path": str(FIXTURES / "tldr_sft.jsonl")},
            },
            "targets": {
                "cnndm": {
                    "train": {"adapter": "cnn_dailymail", "path": str(FIXTURES / "cnn_dailymail.jsonl")},
                    "test": {"adapter": "cnn_dailymail", "path": str(FIXTURES / "cnn_dailymail.jsonl")},
                }
            },
            "judge": {"kind": "reward_model", "path": str(models / "rm")},
        },
        "objectives": [{"name": "dpo", "grid": {"beta": [0.1]}, "learning_rate": [1e-3]}],
        "strategies": ["source_only", "mix_sft", "pseudo_label"],
        "baselines": ["sft_source", "sft_mix", "sft_pseudo"],
        "pseudo_label": {"k": 2, "temperature": 1.0, "top_p": 1.0},
        "training": {"sft_epochs": 1, "batch_size": 4, "sft_batch_size": 4, "precision": "fp32"},
        "evaluation": {"n_prompts": 5, "max_new_tokens": 8, "diversity_prompts": 2, "diversity_samples": 3,
                       "bootstrap": 10, "sbert": False},
        "output_dir": str(out),
    }
    cfg.update(over)
    path = out.with_suffix(".yaml")
    path.write_text(yaml.safe_dump(cfg))
    return path


def test_real_data_study_end_to_end(models_dir, tmp_path) -> None:
    out = tmp_path / "real"
    run_study(real_config(models_dir, out))
    cells = pd.read_parquet(out / "results" / "cells.parquet")
    assert set(cells.domain) == {"tldr", "cnndm"}
    assert set(cells.strategy) == {"source_only", "mix_sft", "pseudo_label", "sft_source", "sft_mix", "sft_pseudo"}
    assert cells.win_rate_ties_half.between(0, 1).all()
    study = json.loads((out / "results" / "study.json").read_text())
    assert study["judge"] == "reward_model"
    # the evaluation's scores are the reward model's scores of the sampled texts and the references
    samples = pd.read_parquet(out / "results" / "samples.parquet")
    ev = samples[(samples.purpose == "eval") & (samples.cell_id == "sft_source") & (samples.domain == "cnndm")]
    rows = [json.loads(line) for line in (next((out / "stages").glob("real_data-*")) / "data" / "cnndm" / "test.jsonl").read_text().splitlines()]
    by_id = {r["id"]: r for r in rows}
    judge = RewardModelJudge(models_dir / "rm", append_eos=True)
    prompts = [by_id[i]["prompt"] for i in ev.prompt_id]
    np.testing.assert_allclose(ev.gold, judge.score(prompts, list(ev.response)), atol=1e-5)
    np.testing.assert_allclose(ev.reference_gold, judge.score(prompts, [by_id[i]["reference"] for i in ev.prompt_id]), atol=1e-5)
    # teacher pseudo-labels: chosen = a teacher sample, rejected = the dataset reference
    pseudo = pd.read_parquet(next((out / "stages").glob("pseudo_generation-*")) / "pairs.parquet")
    assert len(pseudo) and all(r.rejected.strip() == by_id_train(out)[r.id] for r in pseudo.itertuples())
    assert (out / "report" / "index.html").exists()


def by_id_train(out: Path) -> dict[str, str]:
    path = next((out / "stages").glob("real_data-*")) / "data" / "cnndm" / "train.jsonl"
    return {r["id"]: r["reference"].strip() for r in map(json.loads, path.read_text().splitlines())}


def test_real_data_config_errors(models_dir, tmp_path) -> None:
    path = real_config(models_dir, tmp_path / "bad", strategies=["pseudo_label"])
    raw = yaml.safe_load(path.read_text())
    raw["data"].pop("teacher")
    path.write_text(yaml.safe_dump(raw))
    with pytest.raises(ValueError, match="data.teacher"):
        load_config(path)
    raw["data"]["judge"] = {"kind": "reward_model"}
    path.write_text(yaml.safe_dump(raw))
    with pytest.raises(ValueError, match="judge.path"):
        load_config(path)
    raw["data"]["judge"] = {"kind": "reward_model", "path": "x"}
    raw["data"]["source"]["sft"]["adapter"] = "tldr_typo"
    path.write_text(yaml.safe_dump(raw))
    with pytest.raises(ValueError, match="unknown dataset adapter 'tldr_typo'"):
        load_config(path)
