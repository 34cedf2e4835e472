"""Online RL cells of a study: GRPO, RLOO and PPO on the "reward model" branch of the study design.

An online cell starts from its strategy's SFT model (also its frozen reference), trains on the prompts
of the strategy's preference pairs, and is rewarded by the Bradley–Terry reward model trained on those
same pairs — so on target prompts the reward model is itself out of domain (../shared/study-design.md).
The gold reward is logged beside it, which is where reward-model over-optimisation shows.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from prefshift.training.online.config import ONLINE_OBJECTIVES, OnlineConfig, hyperparameter_names
from prefshift.training.online.loop import RewardFn
from prefshift.training.online.run import train_online

__all__ = ["ONLINE_OBJECTIVES", "check_online", "online_config", "prompt_rows", "train_cell"]

SET_BY_STUDY = ("algorithm", "learning_rate", "seed", "precision")
"""OnlineConfig fields a study config may not set per objective: they come from the objective's name, its
``learning_rate`` list, the study's ``seeds`` and ``training.precision``."""


def _message(name: str, exc: ValidationError) -> str:
    errors = "; ".join(f"{'.'.join(str(x) for x in e['loc']) or 'config'}: {e['msg']}" for e in exc.errors())
    return f"objective {name!r}: {errors}"


def check_online(
    name: str, settings: Mapping[str, Any], grid: Mapping[str, Sequence[float]], learning_rates: Sequence[float]
) -> None:
    """Validate an online objective's study spec before any compute; errors name the field and the choices."""
    valid = [n for n in hyperparameter_names() if n not in SET_BY_STUDY]
    for where, keys in (("settings", settings), ("grid", grid)):
        for key in keys:
            if key in SET_BY_STUDY:
                raise ValueError(
                    f"objective {name!r}: {where}.{key} is set by the study (objective name, learning_rate "
                    "list, seeds, training.precision)"
                )
            if key not in valid:
                raise ValueError(f"objective {name!r}: unknown {where} key {key!r}; valid: {valid}")
    both = sorted(set(settings) & set(grid))
    if both:
        raise ValueError(f"objective {name!r}: {both} given both in settings and in grid")
    axes = [[(k, v) for v in values] for k, values in grid.items()] + [[("learning_rate", lr) for lr in learning_rates]]
    for point in itertools.product(*axes):
        try:
            OnlineConfig(algorithm=name, **settings, **dict(point))
        except ValidationError as exc:
            raise ValueError(_message(name, exc)) from None


def online_config(
    name: str,
    settings: Mapping[str, Any],
    hparams: Mapping[str, float],
    *,
    seed: int,
    precision: str,
    n_prompts: int,
    max_new_tokens: int,
) -> OnlineConfig:
    """The OnlineConfig of one cell: ``settings`` + the grid point ``hparams`` (with learning_rate, epochs).

    Unless ``steps`` is set, ``epochs`` passes over the ``n_prompts`` prompts make the step count; the
    generation budget defaults to the study's evaluation ``max_new_tokens``, so the policy is trained on
    responses as long as those it is judged on.
    """
    values: dict[str, Any] = {
        **settings,
        **{k: v for k, v in hparams.items() if k not in ("learning_rate", "epochs")},
    }
    values.setdefault("max_new_tokens", max_new_tokens)
    if "steps" not in values:
        per_step = values.get("prompts_per_step", OnlineConfig.model_fields["prompts_per_step"].default)
        values["steps"] = max(1, math.ceil(hparams.get("epochs", 1.0) * n_prompts / per_step))
    return OnlineConfig(
        algorithm=name, learning_rate=hparams["learning_rate"], seed=seed, precision=precision, **values
    )


def prompt_rows(pairs: Sequence[Mapping[str, Any]], examples: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The distinct prompts of a pair set, in first-seen order, with their world example's ``record``.

    The record (the latent facts behind the prompt) is what the gold reward reads; pairs do not carry it,
    so it is looked up by example id in ``examples`` (the train splits of the world).
    """
    by_id = {ex["id"]: ex for ex in examples}
    rows: dict[str, dict[str, Any]] = {}
    for pair in pairs:
        if pair["prompt"] in rows:
            continue
        ex = by_id.get(pair.get("id"))
        rows[pair["prompt"]] = {"prompt": pair["prompt"], **({"record": ex["record"]} if ex else {})}
    return list(rows.values())


def train_cell(
    out_dir: Path,
    rows: Sequence[Mapping[str, Any]],
    init: Path,
    reward_model: Path,
    reward_fn: RewardFn,
    gold_fn: RewardFn,
    config: OnlineConfig,
) -> dict[str, Any]:
    """Train one online cell into ``out_dir`` (``model/``, ``steps.jsonl``, ``metrics.json``, manifest).

    PPO's value model starts from the reward model. Gold is logged only when every row has a record.
    """
    with_gold = all("record" in r for r in rows)
    return train_online(
        rows,
        init,
        out_dir,
        reward_fn,
        config,
        value_model_path=reward_model,
        gold_fn=gold_fn if with_gold else None,
    )
