"""The one interface every alignment objective implements.

An objective is a *pure function* over per-sequence quantities that the shared log-prob engine
(`prefshift.training.logprobs`) produces: summed log-probabilities of each response under the policy
and (when needed) the reference, and the response token counts. Keeping the maths apart from the
trainer is what lets one trainer serve every objective, lets a grid reuse one cached set of reference
log-probs, and lets each loss be unit-tested against hand-computed values.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import torch


@dataclass
class PairedStats:
    """Per-pair quantities, each a 1-D tensor of shape [B].

    `*_logps` are sums over response tokens of log π(y_t | x, y_<t); `*_lengths` are the response
    token counts (float). Reference fields are None for reference-free objectives, which then never
    trigger a reference forward pass.
    """

    chosen_logps: torch.Tensor
    rejected_logps: torch.Tensor
    chosen_lengths: torch.Tensor
    rejected_lengths: torch.Tensor
    ref_chosen_logps: torch.Tensor | None = None
    ref_rejected_logps: torch.Tensor | None = None


@dataclass
class UnpairedStats:
    """Per-example quantities for objectives on unpaired data (KTO), each a 1-D tensor of shape [B].

    `labels` is True for desirable completions. `kl_logps`/`ref_kl_logps` are log-probs of *mismatched*
    (prompt, completion) pairs — the KTO paper's estimate of the reference point z0 — and may be None,
    in which case z0 = 0.
    """

    logps: torch.Tensor
    lengths: torch.Tensor
    labels: torch.Tensor
    ref_logps: torch.Tensor | None = None
    kl_logps: torch.Tensor | None = None
    ref_kl_logps: torch.Tensor | None = None


@dataclass
class LossOutput:
    """Per-example loss [B] and named per-example metrics ([B] tensors, detached by the caller)."""

    losses: torch.Tensor
    metrics: dict[str, torch.Tensor] = field(default_factory=dict)


@dataclass(frozen=True)
class HParam:
    """A hyperparameter with its default and its valid open/closed interval."""

    name: str
    default: float
    low: float = -math.inf
    high: float = math.inf
    low_inclusive: bool = True
    high_inclusive: bool = True
    doc: str = ""

    def check(self, value: float, objective: str) -> float:
        value = float(value)
        ok_low = value >= self.low if self.low_inclusive else value > self.low
        ok_high = value <= self.high if self.high_inclusive else value < self.high
        if not (ok_low and ok_high) or math.isnan(value):
            lo = "[" if self.low_inclusive else "("
            hi = "]" if self.high_inclusive else ")"
            raise ValueError(
                f"objective {objective!r}: hyperparameter {self.name}={value} is out of range; "
                f"allowed: {lo}{self.low}, {self.high}{hi} ({self.doc})"
            )
        return value


LossFn = Callable[..., LossOutput]


@dataclass(frozen=True)
class Objective:
    """A registered objective: the loss function plus what the trainer must feed it."""

    name: str
    fn: LossFn
    needs_reference: bool
    paired: bool
    hparams: tuple[HParam, ...]
    citation: str
    summary: str = ""

    def resolve(self, overrides: Mapping[str, float] | None = None) -> dict[str, float]:
        """Defaults merged with `overrides`, every value range-checked; unknown names are an error."""
        overrides = dict(overrides or {})
        known = {h.name: h for h in self.hparams}
        unknown = sorted(set(overrides) - set(known))
        if unknown:
            raise ValueError(
                f"objective {self.name!r}: unknown hyperparameter(s) {unknown}; "
                f"valid: {sorted(known) or 'none'}"
            )
        return {n: h.check(overrides.get(n, h.default), self.name) for n, h in known.items()}

    def __call__(self, stats: PairedStats | UnpairedStats, **hparams: float) -> LossOutput:
        expected = PairedStats if self.paired else UnpairedStats
        if not isinstance(stats, expected):
            raise TypeError(f"objective {self.name!r} takes {expected.__name__}, got {type(stats).__name__}")
        if self.needs_reference:
            refs = (
                (stats.ref_chosen_logps, stats.ref_rejected_logps)
                if isinstance(stats, PairedStats)
                else (stats.ref_logps,)
            )
            if any(r is None for r in refs):
                raise ValueError(f"objective {self.name!r} needs reference log-probs, none were given")
        return self.fn(stats, **self.resolve(hparams))


# --- helpers shared by the objective modules ---------------------------------------------------------


def beta_hparam(default: float = 0.1, doc: str = "inverse temperature scaling the implicit reward") -> HParam:
    """The `beta` most objectives share; it divides out of nothing, so it must be strictly positive."""
    return HParam("beta", default, low=0.0, low_inclusive=False, doc=doc)


def per_token(logps: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """Summed log-probs turned into a per-token average.

    Lengths are clamped to at least 1, as TRL does, so an empty response yields its (zero) sum instead of a
    NaN that would poison the whole batch.
    """
    return logps / lengths.clamp(min=1.0)


def log_ratios(stats: PairedStats) -> tuple[torch.Tensor, torch.Tensor]:
    """Policy − reference summed log-ratios (chosen, rejected); a clear error if the reference is missing."""
    if stats.ref_chosen_logps is None or stats.ref_rejected_logps is None:
        raise ValueError("this objective needs reference log-probs (ref_chosen_logps/ref_rejected_logps)")
    return stats.chosen_logps - stats.ref_chosen_logps, stats.rejected_logps - stats.ref_rejected_logps


def paired_metrics(
    stats: PairedStats,
    chosen_rewards: torch.Tensor,
    rejected_rewards: torch.Tensor,
    nll: torch.Tensor | None = None,
) -> dict[str, torch.Tensor]:
    """The per-example metrics every paired objective reports, so all runs log the same keys.

    The rewards are each objective's *own* implicit reward (its module docstring says which), so margins
    and accuracies describe what that objective is actually optimising.
    """
    metrics = {
        "rewards/chosen": chosen_rewards,
        "rewards/rejected": rejected_rewards,
        "rewards/margins": chosen_rewards - rejected_rewards,
        "rewards/accuracies": (chosen_rewards > rejected_rewards).float(),
        "logps/chosen": stats.chosen_logps,
        "logps/rejected": stats.rejected_logps,
    }
    if nll is not None:
        metrics["nll"] = nll
    return metrics
