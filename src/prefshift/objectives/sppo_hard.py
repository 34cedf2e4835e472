r"""SPPO (hard labels): Self-Play Preference Optimization with a 0/1 win probability, as TRL's ``sppo_hard``.

Formula, with r_c, r_r the summed policy − reference log-ratios::

    L = (r_c − 1/(2β))² + (r_r + 1/(2β))²

The paper's loss regresses each log-ratio onto β⁻¹·(P(y ≻ π) − ½), with P estimated by a preference
model; with hard labels P = 1 for the chosen and 0 for the rejected response, giving targets ±1/(2β).

Citation: Y. Wu, Z. Sun, H. Yuan, K. Ji, Y. Yang, Q. Gu, "Self-Play Preference Optimization for Language
Model Alignment", arXiv:2405.00675 (2024).

Why/when: like IPO it regresses onto finite targets (so it does not overfit deterministic preferences),
but per response rather than on the margin, which pins the chosen reward up and the rejected one down.
The paper's full method is iterative self-play with soft probabilities; this is its offline, hard-label
special case.

Metrics: ``rewards/*`` are β · (policy − reference) summed log-ratios (targets +½ and −½).
"""

from __future__ import annotations

from prefshift.objectives.base import (
    LossOutput,
    Objective,
    PairedStats,
    beta_hparam,
    log_ratios,
    paired_metrics,
)


def sppo_hard_loss(stats: PairedStats, *, beta: float) -> LossOutput:
    """Squared error of each log-ratio from its hard-label target ±1/(2β)."""
    chosen_lr, rejected_lr = log_ratios(stats)
    losses = (chosen_lr - 0.5 / beta) ** 2 + (rejected_lr + 0.5 / beta) ** 2
    return LossOutput(losses, paired_metrics(stats, beta * chosen_lr, beta * rejected_lr))


SPPO_HARD = Objective(
    name="sppo_hard",
    fn=sppo_hard_loss,
    needs_reference=True,
    paired=True,
    hparams=(beta_hparam(0.1, doc="inverse scale of the log-ratio targets ±1/(2β)"),),
    citation=(
        "Wu, Sun, Yuan, Ji, Yang, Gu. Self-Play Preference Optimization for Language Model Alignment. "
        "arXiv:2405.00675, 2024."
    ),
    summary="Regresses chosen/rejected log-ratios onto ±1/(2β) (hard-label SPPO).",
)
