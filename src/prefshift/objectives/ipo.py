r"""IPO: Identity Preference Optimization — a squared loss that regresses the margin onto a fixed target.

Formula, with per-token (length-normalised) log-ratios as in TRL::

    h = (log π(y_c) − log π_ref(y_c)) / |y_c| − (log π(y_r) − log π_ref(y_r)) / |y_r|
    L = (h − 1/(2τ))²

τ is exposed as ``beta`` (TRL's name). The length normalisation is not in the paper's equations; TRL
adopted it after confirming with the IPO authors that the paper's results used it, and it keeps τ
comparable across response lengths.

Citation: M. G. Azar, M. Rowland, B. Piot, D. Guo, D. Calandriello, M. Valko, R. Munos, "A General
Theoretical Paradigm to Understand Learning from Human Preferences", arXiv:2310.12036 (2023).

Why/when: DPO's sigmoid keeps pushing the margin towards infinity when preferences are (near-)
deterministic, which overfits and drifts from the reference; IPO's squared loss stops at a finite margin
1/(2τ), so the KL regularisation stays effective. Prefer it for small or deterministic preference sets.

Metrics: ``rewards/*`` are β · per-token log-ratios (the quantities the loss compares), so
``rewards/margins`` = τ·h, whose target is 1/2.
"""

from __future__ import annotations

from prefshift.objectives.base import (
    LossOutput,
    Objective,
    PairedStats,
    beta_hparam,
    log_ratios,
    paired_metrics,
    per_token,
)


def ipo_loss(stats: PairedStats, *, beta: float) -> LossOutput:
    """Squared distance of the length-normalised margin from 1/(2τ)."""
    chosen_lr, rejected_lr = log_ratios(stats)
    chosen_avg = per_token(chosen_lr, stats.chosen_lengths)
    rejected_avg = per_token(rejected_lr, stats.rejected_lengths)
    losses = (chosen_avg - rejected_avg - 1 / (2 * beta)) ** 2
    return LossOutput(losses, paired_metrics(stats, beta * chosen_avg, beta * rejected_avg))


IPO = Objective(
    name="ipo",
    fn=ipo_loss,
    needs_reference=True,
    paired=True,
    hparams=(beta_hparam(0.1, doc="τ, the regularisation strength; the target margin is 1/(2τ)"),),
    citation=(
        "Azar, Rowland, Piot, Guo, Calandriello, Valko, Munos. A General Theoretical Paradigm to Understand "
        "Learning from Human Preferences. arXiv:2310.12036, 2023."
    ),
    summary="Squared loss pulling the per-token log-ratio margin to 1/(2τ).",
)
