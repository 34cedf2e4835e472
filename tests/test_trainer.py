"""Preference, SFT and reward-model trainers: caching, LoRA reference, metrics, failure modes."""

from __future__ import annotations

import copy
import json
import math

import datasets
import numpy as np
import pytest
import torch
from conftest import WORDS, make_model, make_pairs, make_tokenizer
from transformers import LlamaForSequenceClassification, TrainingArguments

from prefshift.data.formats import validate
from prefshift.data.tokenize import tokenize
from prefshift.objectives import get_objective
from prefshift.stages import CACHE_LOG
from prefshift.training.reference import compute_logps
from prefshift.training.trainer import (
    NonFiniteLossError,
    PreferenceTrainer,
    RewardTrainer,
    SFTTrainer,
    reward_scores,
)


def _args(tmp_path, **kw) -> TrainingArguments:
    base = dict(
        output_dir=str(tmp_path / "out"),
        per_device_train_batch_size=8,
        learning_rate=5e-3,
        num_train_epochs=1,
        use_cpu=True,
        logging_steps=1,
        report_to=[],
        save_strategy="no",
        disable_tqdm=True,
    )
    base.update(kw)
    return TrainingArguments(**base)


@pytest.fixture(scope="module")
def pairs():
    tok = make_tokenizer()
    return tok, tokenize(validate(make_pairs(32, seed=5), "paired"), tok, "paired")


def _cache_events(cache_dir) -> list[dict]:
    path = cache_dir / CACHE_LOG
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def test_grid_computes_reference_logps_once(pairs, tmp_path) -> None:
    tok, ds = pairs
    cache = tmp_path / "cache"
    base = make_model(seed=0)
    for name in ("dpo", "ipo", "robust_dpo", "simpo"):
        PreferenceTrainer(
            copy.deepcopy(base), get_objective(name), _args(tmp_path), ds, tok, cache_dir=cache
        ).train()
    events = _cache_events(cache)
    assert [e["event"] for e in events] == ["miss", "hit", "hit"]  # simpo is reference-free: no event at all
    assert len({e["key"] for e in events}) == 1
    # a different reference model is a different key
    PreferenceTrainer(make_model(seed=9), get_objective("dpo"), _args(tmp_path), ds, tok, cache_dir=cache)
    assert _cache_events(cache)[-1]["event"] == "miss"


def test_reference_free_objective_never_runs_reference(pairs, tmp_path, monkeypatch) -> None:
    tok, ds = pairs
    import prefshift.training.trainer as tr

    def boom(*a, **k):
        raise AssertionError("reference forward for a reference-free objective")

    monkeypatch.setattr(tr, "compute_logps", boom)
    monkeypatch.setattr(tr, "cached_reference_logps", boom)
    for name in ("simpo", "orpo", "cpo", "slic_hf"):
        assert not get_objective(name).needs_reference
        PreferenceTrainer(make_model(), get_objective(name), _args(tmp_path, max_steps=1), ds, tok).train()


def test_dpo_training_raises_margin_and_logs_informative_metrics(pairs, tmp_path) -> None:
    tok, ds = pairs
    t = PreferenceTrainer(make_model(), get_objective("dpo"), _args(tmp_path, num_train_epochs=4), ds, tok)
    t.train()
    logs = [h for h in t.state.log_history if "loss" in h]
    for key in ("rewards/margins", "rewards/accuracies", "entropy", "length/chosen", "logratio_per_token"):
        assert key in logs[-1], key
    assert logs[-1]["rewards/margins"] > logs[0]["rewards/margins"]
    assert logs[-1]["loss"] < math.log(2)


def test_lora_reference_is_the_adapter_disabled_model(pairs, tmp_path) -> None:
    peft = pytest.importorskip("peft")
    tok, ds = pairs
    base = make_model(seed=4)
    expected_ref = compute_logps(copy.deepcopy(base), ds, pad_token_id=0)
    model = peft.get_peft_model(
        base, peft.LoraConfig(r=4, target_modules=["q_proj", "v_proj"], init_lora_weights=False)
    )
    # an adapter that is not zero at the start: the reference must still be the base model
    t = PreferenceTrainer(model, get_objective("dpo"), _args(tmp_path, num_train_epochs=2), ds, tok)
    np.testing.assert_allclose(np.asarray(t.train_dataset["ref_logps"]), expected_ref, atol=1e-4)
    t.train()
    with model.disable_adapter():
        after_off = compute_logps(model, ds, pad_token_id=0)
    np.testing.assert_allclose(after_off, expected_ref, atol=1e-4)
    trained = compute_logps(model, ds, pad_token_id=0)
    assert np.abs(trained - expected_ref).max() > 1e-2


def test_kto_on_unpaired_data(tmp_path) -> None:
    tok = make_tokenizer()
    raw = make_pairs(16, seed=2)
    rows = [{"prompt": r["prompt"], "completion": r["chosen"], "label": True} for r in raw] + [
        {"prompt": r["prompt"], "completion": r["rejected"], "label": False} for r in raw
    ]
    ds = tokenize(validate(datasets.Dataset.from_list(rows), "unpaired"), tok, "unpaired")
    assert ds[0]["completion_ids"][1] == ds[1]["completion_ids"][0]  # mismatched completion = next row's
    t = PreferenceTrainer(make_model(), get_objective("kto"), _args(tmp_path, num_train_epochs=2), ds, tok)
    t.train()
    assert all(math.isfinite(h["loss"]) for h in t.state.log_history if "loss" in h)
    with pytest.raises(ValueError, match="paired data"):
        PreferenceTrainer(make_model(), get_objective("dpo"), _args(tmp_path), ds, tok)
    logs = [h for h in t.state.log_history if "loss" in h]
    assert "rewards/desirable" in logs[-1] and "kl" in logs[-1]


def test_nan_loss_is_a_clear_error(pairs, tmp_path) -> None:
    tok, ds = pairs
    model = make_model()
    t = PreferenceTrainer(model, get_objective("simpo"), _args(tmp_path), ds, tok)
    with torch.no_grad():
        model.model.norm.weight.fill_(float("nan"))
    with pytest.raises(NonFiniteLossError, match="non-finite loss .* at step 0"):
        t.train()


def test_empty_dataset_is_rejected(pairs, tmp_path) -> None:
    tok, ds = pairs
    with pytest.raises(ValueError, match="empty"):
        PreferenceTrainer(make_model(), get_objective("dpo"), _args(tmp_path), ds.select([]), tok)


def test_sft_trainer_learns(tmp_path) -> None:
    tok = make_tokenizer()
    rows = [
        {"prompt": f"{WORDS[i % 7]} {WORDS[i % 5]}", "completion": f" {WORDS[i % 7]} {WORDS[10]}"}
        for i in range(64)
    ]
    ds = tokenize(validate(datasets.Dataset.from_list(rows), "sft"), tok, "sft")
    t = SFTTrainer(make_model(), _args(tmp_path, num_train_epochs=6, learning_rate=1e-2), ds, tok)
    t.train()
    losses = [h["loss"] for h in t.state.log_history if "loss" in h]
    assert losses[-1] < 0.5 * losses[0]


def test_reward_trainer_learns_to_rank(tmp_path) -> None:
    tok = make_tokenizer()
    # chosen always ends with w1, rejected with w2: a learnable preference
    rows = [
        {
            "prompt": f"{WORDS[i % 9]} {WORDS[i % 4]}",
            "chosen": f" {WORDS[i % 6]} w1",
            "rejected": f" {WORDS[i % 6]} w2",
        }
        for i in range(48)
    ]
    ds = tokenize(validate(datasets.Dataset.from_list(rows), "paired"), tok, "paired")
    cfg = make_model().config
    cfg.num_labels = 1
    torch.manual_seed(0)
    rm = LlamaForSequenceClassification(cfg)
    RewardTrainer(rm, _args(tmp_path, num_train_epochs=5, learning_rate=1e-2), ds, tok).train()
    scores = reward_scores(rm, ds, pad_token_id=0)
    assert (scores[:, 0] > scores[:, 1]).mean() > 0.9
