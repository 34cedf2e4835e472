"""One training step of TRL's DPOTrainer and of prefshift's trainer give the same loss.

Same tiny model, same batch, same β, fp32, for every loss type both implement. TRL pads each
(prompt, completion) row and runs a reference forward every step; prefshift packs prompt-shared rows
and precomputes reference log-probs — the numbers must not depend on that.
"""

from __future__ import annotations

import copy
import warnings

import pytest
import torch
from conftest import make_model, make_pairs, make_tokenizer
from transformers import TrainingArguments

from prefshift.data.formats import validate
from prefshift.data.tokenize import tokenize
from prefshift.objectives import get_objective
from prefshift.training.trainer import PreferenceTrainer

trl = pytest.importorskip("trl")

# TRL loss_type -> (prefshift objective, extra hyperparameters shared by both)
SHARED = {
    "sigmoid": ("dpo", {}),
    "hinge": ("hinge", {}),
    "ipo": ("ipo", {}),
    "exo_pair": ("exo_pair", {"label_smoothing": 1e-3}),
    "nca_pair": ("nca_pair", {}),
    "robust": ("robust_dpo", {"label_smoothing": 0.1}),
    "bco_pair": ("bco_pair", {}),
    "sppo_hard": ("sppo_hard", {}),
    "apo_zero": ("apo_zero", {}),
    "apo_down": ("apo_down", {}),
    "sigmoid_norm": ("ln_dpo", {}),
}
N = 8
BETA = 0.5


@pytest.fixture(scope="module")
def setup():
    tok = make_tokenizer()
    raw = make_pairs(N, seed=3)
    # one step on a model that has already moved away from the reference, so every term is non-trivial
    policy = make_model(seed=1)
    reference = make_model(seed=2)
    return tok, raw, policy, reference


def _trl_loss(loss_type, extra, tok, raw, policy, reference, tmp_path) -> float:
    args = trl.DPOConfig(
        output_dir=str(tmp_path / "trl"),
        per_device_train_batch_size=N,
        max_steps=1,
        learning_rate=1e-4,
        beta=BETA,
        loss_type=[loss_type],
        bf16=False,
        use_cpu=True,
        gradient_checkpointing=False,
        logging_steps=1,
        report_to=[],
        save_strategy="no",
        **extra,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        t = trl.DPOTrainer(
            model=copy.deepcopy(policy),
            ref_model=copy.deepcopy(reference),
            args=args,
            train_dataset=raw,
            processing_class=tok,
        )
        t.train()
    return next(h["loss"] for h in t.state.log_history if "loss" in h)


def _our_loss(name, extra, tok, raw, policy, reference, tmp_path) -> float:
    ds = tokenize(validate(raw, "paired"), tok, "paired")
    args = TrainingArguments(
        output_dir=str(tmp_path / "ours"),
        per_device_train_batch_size=N,
        max_steps=1,
        learning_rate=1e-4,
        use_cpu=True,
        logging_steps=1,
        report_to=[],
        save_strategy="no",
    )
    t = PreferenceTrainer(
        copy.deepcopy(policy),
        get_objective(name),
        args,
        ds,
        tok,
        objective_params={"beta": BETA, **extra},
        ref_model=copy.deepcopy(reference),
    )
    t.train()
    return next(h["loss"] for h in t.state.log_history if "loss" in h)


@pytest.mark.parametrize("loss_type", sorted(SHARED))
def test_one_step_loss_matches_trl(loss_type, setup, tmp_path) -> None:
    tok, raw, policy, reference = setup
    name, extra = SHARED[loss_type]
    expected = _trl_loss(loss_type, extra, tok, raw, policy, reference, tmp_path)
    got = _our_loss(name, extra, tok, raw, policy, reference, tmp_path)
    assert got == pytest.approx(expected, abs=1e-4), f"{loss_type}: prefshift {got} vs TRL {expected}"
    assert abs(expected) > 1e-3  # a non-trivial loss, so agreement means something


def test_tokenisation_matches_trl(setup) -> None:
    """Same prompt/completion token ids as TRL (one BOS, one EOS), so the parity above is like for like."""
    tok, raw, *_ = setup
    ours = tokenize(validate(raw, "paired"), tok, "paired")
    for ex, row in zip(raw, ours, strict=True):
        p = tok(ex["prompt"])["input_ids"]
        c = tok(ex["prompt"] + ex["chosen"] + tok.eos_token)["input_ids"][len(p) :]
        assert row["prompt_ids"] == p and row["completion_ids"][0] == c
        assert row["prompt_ids"].count(tok.bos_token_id) == 1
        assert row["completion_ids"][1][-1] == tok.eos_token_id
        assert row["completion_ids"][1].count(tok.eos_token_id) == 1
    assert torch.is_tensor(torch.tensor(ours[0]["prompt_ids"]))
