r"""ORPO: Odds Ratio Preference Optimization — SFT plus an odds-ratio penalty, with no reference model.

Formula, on per-token average log-probs a = log π(y | x) / |y| (so P = exp(a) is a geometric-mean token
probability)::

    logodds(a) = a − log(1 − exp(a))
    L = −a_c − λ · log σ(logodds(a_c) − logodds(a_r))

λ is exposed as ``beta`` (TRL's name). log(1 − exp(a)) is computed stably (log(−expm1(a)) near 0,
log1p(−exp(a)) below −ln 2), with a clamped to ≤ −eps so a response with probability 1 cannot give −inf.

Citation: J. Hong, N. Lee, J. Thorne, "ORPO: Monolithic Preference Optimization without Reference Model",
arXiv:2403.07691 (2024).

Why/when: one stage instead of SFT-then-DPO, and no reference forward pass (half the compute of DPO). The
odds ratio penalises the rejected response more gently than a likelihood ratio, so the SFT term dominates
and the model keeps learning the chosen responses. Good when starting from a base (non-SFT) model.

Metrics: ``rewards/*`` are λ · a (β times the per-token average log-prob, as TRL logs them); also
``log_odds_ratio`` and ``nll``.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from prefshift.objectives.base import (
    LossOutput,
    Objective,
    PairedStats,
    beta_hparam,
    paired_metrics,
    per_token,
)


def _log1mexp(a: torch.Tensor) -> torch.Tensor:
    """log(1 − exp(a)) for a < 0, accurate on both sides of −ln 2 (Mächler 2012) and never −inf."""
    a = a.clamp(max=-torch.finfo(a.dtype).eps)
    return torch.where(a < -math.log(2), torch.log1p(-torch.exp(a)), torch.log(-torch.expm1(a)))


def orpo_loss(stats: PairedStats, *, beta: float) -> LossOutput:
    """Chosen NLL minus λ · log σ(log odds ratio of chosen over rejected)."""
    chosen_avg = per_token(stats.chosen_logps, stats.chosen_lengths)
    rejected_avg = per_token(stats.rejected_logps, stats.rejected_lengths)
    log_odds = (chosen_avg - _log1mexp(chosen_avg)) - (rejected_avg - _log1mexp(rejected_avg))
    nll = -chosen_avg
    losses = nll - beta * F.logsigmoid(log_odds)
    metrics = paired_metrics(stats, beta * chosen_avg, beta * rejected_avg, nll=nll)
    metrics["log_odds_ratio"] = log_odds
    return LossOutput(losses, metrics)


ORPO = Objective(
    name="orpo",
    fn=orpo_loss,
    needs_reference=False,
    paired=True,
    hparams=(beta_hparam(0.1, doc="λ, weight of the odds-ratio term relative to the NLL"),),
    citation=(
        "Hong, Lee, Thorne. ORPO: Monolithic Preference Optimization without Reference Model. "
        "arXiv:2403.07691, 2024."
    ),
    summary="Reference-free: chosen NLL plus a log-sigmoid odds-ratio penalty on the rejected response.",
)
