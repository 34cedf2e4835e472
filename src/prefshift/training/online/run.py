"""One online RL job from files to a saved model, with the same run-directory layout as offline training.

``out_dir`` gets ``manifest.json`` (config, seed, versions), ``steps.jsonl`` (one line per step),
``metrics.json`` (start vs end of the run) and ``model/`` (``save_pretrained`` layout + tokenizer), so the
study evaluates an online cell exactly like an offline one.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn
from transformers import AutoConfig, AutoModelForCausalLM, AutoModelForTokenClassification, AutoTokenizer

from prefshift.runinfo import atomic_write_json, write_manifest
from prefshift.training.online.config import OnlineConfig
from prefshift.training.online.loop import OnlineTrainer, RewardFn, summarise
from prefshift.training.run import resolve_precision


def load_value_model(path: str | Path, pad_token_id: int | None) -> nn.Module:
    """PPO's value model: ``AutoModelForTokenClassification`` with one label, read at every token.

    Initialised from a reward model when ``path`` is one (its ``score`` head carries over: the value
    model starts out predicting the reward, as in Ouyang et al. 2022 and Huang et al. 2024,
    arXiv:2403.17031, detail 3), else from the SFT model with a fresh head. The head has no bias so that
    the reward model's bias-free head loads whole.
    """
    config = AutoConfig.from_pretrained(str(path), num_labels=1)
    config.token_classification_bias = False
    config.pad_token_id = pad_token_id
    return AutoModelForTokenClassification.from_pretrained(str(path), config=config)


def train_online(
    rows: Sequence[Mapping[str, Any]],
    model_path: str | Path,
    out_dir: str | Path,
    reward_fn: RewardFn,
    config: OnlineConfig,
    *,
    value_model_path: str | Path | None = None,
    gold_fn: RewardFn | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    """Train ``model_path`` online on the prompts of ``rows``; save to ``out_dir``; return metrics.

    The reference is ``model_path`` itself (frozen). PPO's value model starts from ``value_model_path``
    (a reward model, typically the one behind ``reward_fn``) or, when omitted, from ``model_path``.
    """
    out_dir = Path(out_dir)
    tok = AutoTokenizer.from_pretrained(str(model_path))
    torch.manual_seed(config.seed)
    policy = AutoModelForCausalLM.from_pretrained(str(model_path))
    ref = AutoModelForCausalLM.from_pretrained(str(model_path))
    value = None
    if config.algorithm == "ppo":
        value = load_value_model(value_model_path or model_path, tok.pad_token_id)
    write_manifest(
        out_dir,
        {
            "kind": "online",
            "objective": config.algorithm,
            "model": str(model_path),
            "value_model": str(value_model_path or model_path) if value is not None else None,
            "config": config.model_dump(),
            "precision": resolve_precision(config.precision),
            "rows": len(rows),
        },
        config.seed,
    )
    log_path = out_dir / "steps.jsonl"
    log_path.unlink(missing_ok=True)
    trainer = OnlineTrainer(
        policy, tok, config, reward_fn, ref_model=ref, value_model=value, gold_fn=gold_fn, log_path=log_path
    )
    t0 = time.perf_counter()
    history = trainer.train(rows, progress=progress)
    metrics = {**summarise(history), "wall_seconds": time.perf_counter() - t0}
    policy.save_pretrained(str(out_dir / "model"))
    tok.save_pretrained(str(out_dir / "model"))
    atomic_write_json(out_dir / "metrics.json", metrics)
    return metrics
