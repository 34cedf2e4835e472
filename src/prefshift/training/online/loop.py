"""The online loop shared by GRPO, RLOO and PPO: sample → score → advantages → clipped updates.

Per step (one rollout batch of ``prompts_per_step`` prompts):

1. sample G responses per prompt through the generation engine, which runs the *same* model object that
   is being trained (so every rollout sees the latest weights) and returns π_old's per-token log-probs;
2. score every (prompt, response) with ``reward_fn`` (and ``gold_fn`` when given, for logging only);
3. per-token log-probs of the frozen reference (the initial policy), a KL per token;
4. advantages: group-normalised (GRPO), leave-one-out (RLOO, KL in the reward), or GAE over a
   KL-penalised per-token reward with a learned value model (PPO);
5. ``epochs_per_batch`` passes of ``minibatches`` optimizer steps on the clipped surrogate
   (plus β·k3 to the reference in the loss for GRPO; plus the clipped value loss for PPO).

One jsonl line per step records what the issue asks to watch: RM and gold reward (over-optimisation
shows as the two diverging), KL to the reference, response length, entropy, clip fraction, value loss.
"""

from __future__ import annotations

import copy
import json
import math
import random
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path
from typing import Any

import torch
from torch import nn
from transformers import PreTrainedTokenizerBase

from prefshift.data.tokenize import encode
from prefshift.generation import SamplingParams, get_sampler
from prefshift.generation.api import Sampler
from prefshift.training.online.advantages import (
    gae,
    group_advantages,
    kl_penalised_rewards,
    rloo_advantages,
    whiten,
)
from prefshift.training.online.config import OnlineConfig
from prefshift.training.online.losses import (
    aggregate,
    clipped_policy_loss,
    clipped_value_loss,
    kl_k1,
    kl_k3,
    masked_mean,
)
from prefshift.training.online.rollout import Rollout, policy_token_logps, sample_rollout, token_values
from prefshift.training.run import resolve_precision
from prefshift.training.trainer import NonFiniteLossError, disable_dropout

RewardFn = Callable[[Sequence[Mapping[str, Any]], Sequence[str]], Sequence[float]]
"""(rows, responses) → one score per response; ``rows[i]`` is the dataset row whose prompt produced
``responses[i]`` (so a reward can read more than the prompt, e.g. the synthetic world's record)."""


def _eager_on_cpu(model: nn.Module) -> None:
    # Packed batches carry an explicit 4-D mask; on CPU eager attention beats SDPA with a mask (measured
    # in training.trainer.prefer_eager_attention_on_cpu, which the offline trainers use).
    on_cpu = next(model.parameters()).device.type == "cpu"
    if on_cpu and getattr(model.config, "_attn_implementation", None) == "sdpa":
        model.set_attn_implementation("eager")


def _frozen(model: nn.Module) -> nn.Module:
    model.eval()
    model.requires_grad_(False)
    return model


class OnlineTrainer:
    """Runs one online RL job on in-memory models.

    Args:
        policy: causal LM being trained (the initial weights are the reference unless ``ref_model``).
        tokenizer: its tokenizer (prompts get exactly one BOS, as in SFT).
        config: the validated hyperparameters; ``config.algorithm`` picks GRPO, RLOO or PPO.
        reward_fn: the reward, see ``RewardFn``.
        ref_model: frozen reference; default a copy of ``policy`` before any update.
        value_model: PPO's ``AutoModelForTokenClassification`` (one label); required for PPO.
        gold_fn: a second reward logged beside ``reward_fn`` and never optimised (the gold oracle).
        sampler: the generation engine; default ``get_sampler(policy, ...)``, which shares ``policy``'s
            weights. A custom sampler must also sample from the current weights.
        log_path: jsonl file that gets one line per step.
    """

    def __init__(
        self,
        policy: nn.Module,
        tokenizer: PreTrainedTokenizerBase,
        config: OnlineConfig,
        reward_fn: RewardFn,
        *,
        ref_model: nn.Module | None = None,
        value_model: nn.Module | None = None,
        gold_fn: RewardFn | None = None,
        sampler: Sampler | None = None,
        log_path: str | Path | None = None,
    ) -> None:
        if config.algorithm == "ppo" and value_model is None:
            raise ValueError("ppo needs a value_model (AutoModelForTokenClassification with num_labels=1)")
        self.cfg = config
        self.tokenizer = tokenizer
        pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
        if pad is None:
            raise ValueError("the tokenizer has neither a pad nor an EOS token")
        self.pad_id = int(pad)
        self.reward_fn, self.gold_fn = reward_fn, gold_fn
        self.precision = resolve_precision(config.precision)
        self.policy = policy
        disable_dropout(policy)
        _eager_on_cpu(policy)
        self.ref = _frozen(ref_model if ref_model is not None else copy.deepcopy(policy))
        self.value = value_model
        params = [p for p in policy.parameters() if p.requires_grad]
        self.optimizer = torch.optim.AdamW(params, lr=config.learning_rate, weight_decay=0.0)
        self.value_optimizer = None
        if value_model is not None:
            disable_dropout(value_model)
            _eager_on_cpu(value_model)
            self.value_optimizer = torch.optim.AdamW(
                value_model.parameters(), lr=config.value_lr, weight_decay=0.0
            )
        self.sampler = sampler or get_sampler(
            policy, tokenizer, backend="transformers", precision=self.precision, compile=config.compile_sampling
        )
        self.generator = torch.Generator().manual_seed(config.seed)
        self.log_path = Path(log_path) if log_path else None
        self.history: list[dict[str, float]] = []

    # -- helpers -------------------------------------------------------------------------------
    def _autocast(self) -> AbstractContextManager[object]:
        if self.precision != "bf16":
            return nullcontext()
        device = next(self.policy.parameters()).device.type
        return torch.autocast(device_type=device, dtype=torch.bfloat16)

    def _check(self, value: torch.Tensor, what: str, step: int, epoch: int) -> None:
        if not torch.isfinite(value).all():
            last = self.history[-1] if self.history else {}
            raise NonFiniteLossError(
                f"non-finite {what} ({value.detach().flatten()[:4].tolist()}) at step {step}, epoch {epoch} "
                f"of {self.cfg.algorithm}; last step's log: {last}. Lower learning_rate, raise kl_beta, or "
                "check the reward function."
            )

    def _rewards(self, fn: RewardFn, rows: Sequence[Mapping[str, Any]], texts: Sequence[str]) -> torch.Tensor:
        scores = list(fn(rows, texts))
        if len(scores) != len(texts):
            raise ValueError(f"reward function returned {len(scores)} scores for {len(texts)} responses")
        return torch.tensor([float(s) for s in scores], dtype=torch.float32)

    def _prompt_order(self, n: int) -> Iterator[int]:
        """Prompt indices in a seeded shuffled order, reshuffled at every pass over the prompts."""
        rng = random.Random(self.cfg.seed)
        while True:
            order = list(range(n))
            rng.shuffle(order)
            yield from order

    # -- one step ------------------------------------------------------------------------------
    def advantages(
        self, rollout: Rollout, scores: torch.Tensor, ref_logps: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor | None]:
        """(advantages [N, T], old values, returns) for the configured algorithm."""
        cfg, mask = self.cfg, rollout.mask
        groups, g = len(rollout.prompt_ids), rollout.group_size
        kl_tokens = kl_k1(rollout.old_logps, ref_logps) * mask
        if cfg.algorithm == "grpo":
            adv = group_advantages(scores.view(groups, g), scale_by_std=cfg.scale_rewards)
            return adv.reshape(-1, 1) * mask, None, None
        if cfg.algorithm == "rloo":
            adv = rloo_advantages((scores - cfg.kl_beta * kl_tokens.sum(-1)).view(groups, g))
            return adv.reshape(-1, 1) * mask, None, None
        with torch.no_grad():
            values = token_values(self.value, rollout, range(groups), self.pad_id, self._autocast) * mask
        rewards = kl_penalised_rewards(scores, kl_tokens, mask, cfg.kl_beta)
        adv, returns = gae(rewards, values, mask, cfg.gamma, cfg.lam)
        if cfg.whiten_advantages:
            adv = whiten(adv, mask)
        return adv, values, returns

    def step(self, rows: Sequence[Mapping[str, Any]], step: int) -> dict[str, float]:
        """One rollout batch and its updates; returns (and logs) the step's metrics."""
        cfg = self.cfg
        t0 = time.perf_counter()
        params = SamplingParams(
            n=cfg.num_generations,
            temperature=cfg.temperature,
            top_p=cfg.top_p,
            max_new_tokens=cfg.max_new_tokens,
            seed=cfg.seed * 1_000_003 + step,
            return_logprobs=True,
        )
        rollout = sample_rollout(self.sampler, [encode(self.tokenizer, r["prompt"]) for r in rows], params)
        t_sample = time.perf_counter() - t0
        expanded = [r for r in rows for _ in range(cfg.num_generations)]
        scores = self._rewards(self.reward_fn, expanded, rollout.texts)
        self._check(scores, "reward", step, 0)
        gold = self._rewards(self.gold_fn, expanded, rollout.texts) if self.gold_fn else None
        all_prompts = range(len(rows))
        with torch.no_grad():
            ref_logps, _ = policy_token_logps(self.ref, rollout, all_prompts, self.pad_id, self._autocast)
        adv, old_values, returns = self.advantages(rollout, scores, ref_logps)
        t1 = time.perf_counter()
        stats = self._update(rollout, adv, ref_logps, old_values, returns, step)
        mask = rollout.mask
        kl_tokens = kl_k1(rollout.old_logps, ref_logps) * mask
        record = {
            "step": step,
            "reward_rm": scores.mean().item(),
            "reward_rm_std": scores.std().item() if scores.numel() > 1 else 0.0,
            **({"reward_gold": gold.mean().item()} if gold is not None else {}),
            "kl": kl_tokens.sum(-1).mean().item(),
            "kl_per_token": masked_mean(kl_tokens, mask).item(),
            "length": rollout.lengths.mean().item(),
            "finished": rollout.finished.float().mean().item(),
            "advantage_abs": masked_mean(adv.abs(), mask).item(),
            **stats,
            "sample_s": t_sample,
            "update_s": time.perf_counter() - t1,
            "step_s": time.perf_counter() - t0,
        }
        self.history.append(record)
        if self.log_path is not None:
            self.log_path.parent.mkdir(parents=True, exist_ok=True)
            with self.log_path.open("a") as f:
                f.write(json.dumps(record) + "\n")
        return record

    def _update(
        self,
        rollout: Rollout,
        adv: torch.Tensor,
        ref_logps: torch.Tensor,
        old_values: torch.Tensor | None,
        returns: torch.Tensor | None,
        step: int,
    ) -> dict[str, float]:
        cfg = self.cfg
        self.policy.train()
        groups = len(rollout.prompt_ids)
        size = math.ceil(groups / cfg.minibatches)
        sums: dict[str, list[float]] = {"policy_loss": [], "clip_fraction": [], "entropy": []}
        if self.value is not None:
            sums["value_loss"] = []
        for epoch in range(cfg.epochs_per_batch):
            order = torch.randperm(groups, generator=self.generator)
            for chunk in order.split(size):
                prompts = chunk.tolist()
                idx = rollout.sequences(prompts)
                mask = rollout.mask[idx]
                logps, entropy = policy_token_logps(
                    self.policy, rollout, prompts, self.pad_id, self._autocast, with_entropy=epoch == 0
                )
                per_token, clipped = clipped_policy_loss(
                    logps, rollout.old_logps[idx], adv[idx], cfg.clip_eps
                )
                if cfg.algorithm == "grpo" and cfg.kl_beta > 0:
                    per_token = per_token + cfg.kl_beta * kl_k3(logps, ref_logps[idx])
                loss = aggregate(per_token, mask, cfg.loss_aggregation, cfg.max_new_tokens)
                self._check(loss, "policy loss", step, epoch)
                loss.backward()
                torch.nn.utils.clip_grad_norm_(self.policy.parameters(), cfg.max_grad_norm)
                self.optimizer.step()
                self.optimizer.zero_grad(set_to_none=True)
                sums["policy_loss"].append(loss.item())
                sums["clip_fraction"].append(masked_mean(clipped.float(), mask).item())
                if entropy is not None:
                    sums["entropy"].append(entropy.mean().item())
                if self.value is not None:
                    self.value.train()
                    values = token_values(self.value, rollout, prompts, self.pad_id, self._autocast)
                    vloss = aggregate(
                        clipped_value_loss(values, old_values[idx], returns[idx], cfg.value_clip), mask, "token_mean"
                    )
                    self._check(vloss, "value loss", step, epoch)
                    vloss.backward()
                    torch.nn.utils.clip_grad_norm_(self.value.parameters(), cfg.max_grad_norm)
                    self.value_optimizer.step()
                    self.value_optimizer.zero_grad(set_to_none=True)
                    sums["value_loss"].append(vloss.item())
        return {k: sum(v) / len(v) for k, v in sums.items() if v}

    # -- the run -------------------------------------------------------------------------------
    def train(self, rows: Sequence[Mapping[str, Any]], progress: bool = True) -> list[dict[str, float]]:
        """``config.steps`` steps over ``rows`` (dicts with a ``prompt``), cycling through them shuffled."""
        if not rows:
            raise ValueError("online training needs at least one prompt row")
        if any("prompt" not in r for r in rows):
            raise ValueError("every row needs a 'prompt' field")
        cfg = self.cfg
        order = self._prompt_order(len(rows))
        for step in range(cfg.steps):
            batch = [rows[next(order)] for _ in range(cfg.prompts_per_step)]
            rec = self.step(batch, step)
            if progress:
                print(_progress_line(rec, cfg), flush=True)
        return self.history


def _progress_line(rec: Mapping[str, float], cfg: OnlineConfig) -> str:
    parts = [f"[{cfg.algorithm}] step {int(rec['step']) + 1}/{cfg.steps}", f"reward {rec['reward_rm']:.3f}"]
    names = {"reward_gold": "gold", "kl": "kl", "length": "len", "entropy": "ent", "clip_fraction": "clip",
             "value_loss": "vloss"}
    parts += [f"{short} {rec[key]:.3f}" for key, short in names.items() if key in rec]
    return " ".join(parts) + f" ({rec['step_s']:.2f}s)"


def summarise(history: Sequence[Mapping[str, float]]) -> dict[str, float]:
    """metrics.json of a run: the first step (the initial policy's rollouts) vs the last 10% of steps."""
    if not history:
        return {}
    out: dict[str, float] = {"steps": len(history)}
    for key in ("reward_rm", "reward_gold", "kl", "kl_per_token", "length", "entropy", "clip_fraction",
                "value_loss"):
        logged = [h[key] for h in history if key in h]
        if logged:
            tail = logged[-max(1, len(logged) // 10) :]
            out[f"{key}_start"] = logged[0]
            out[f"{key}_end"] = sum(tail) / len(tail)
    total = sum(h["step_s"] for h in history)
    out["sample_seconds"] = sum(h["sample_s"] for h in history)
    out["update_seconds"] = sum(h["update_s"] for h in history)
    out["steps_per_second"] = len(history) / total if total > 0 else float("nan")
    return out
