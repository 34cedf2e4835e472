r"""LN-DPO: length-normalised DPO (TRL's ``loss_type="sigmoid_norm"``).

Formula, with per-token log-ratios::

    h = (log π(y_c) − log π_ref(y_c)) / |y_c| − (log π(y_r) − log π_ref(y_r)) / |y_r|
    L = −log σ(β h)

Because h is a per-token quantity (much smaller than DPO's summed Δ), β must be on a larger scale than
DPO's: roughly 1–10 rather than 0.01–0.5. Default β = 1.

Citation: K. Ahrabian, X. Lin, B. Patra, V. Chaudhary, A. Benhaim, J. Pujara, X. Song, "A Practical
Analysis of Human Alignment with *PO", arXiv:2407.15229 (2024).

Why/when: DPO's summed log-ratios reward longer responses; normalising per token removes that bias,
gives shorter outputs and, per the paper, is more stable across hyperparameters than DPO while keeping the
KL anchor that SimPO drops.

Metrics: ``rewards/*`` are β · per-token log-ratios (what the loss compares).
"""

from __future__ import annotations

import torch.nn.functional as F

from prefshift.objectives.base import (
    LossOutput,
    Objective,
    PairedStats,
    beta_hparam,
    log_ratios,
    paired_metrics,
    per_token,
)


def ln_dpo_loss(stats: PairedStats, *, beta: float) -> LossOutput:
    """DPO sigmoid loss on the per-token log-ratio margin."""
    chosen_lr, rejected_lr = log_ratios(stats)
    chosen_rewards = beta * per_token(chosen_lr, stats.chosen_lengths)
    rejected_rewards = beta * per_token(rejected_lr, stats.rejected_lengths)
    losses = -F.logsigmoid(chosen_rewards - rejected_rewards)
    return LossOutput(losses, paired_metrics(stats, chosen_rewards, rejected_rewards))


LN_DPO = Objective(
    name="ln_dpo",
    fn=ln_dpo_loss,
    needs_reference=True,
    paired=True,
    hparams=(beta_hparam(1.0, doc="inverse temperature on per-token log-ratios; typically 1-10"),),
    citation=(
        "Ahrabian, Lin, Patra, Chaudhary, Benhaim, Pujara, Song. A Practical Analysis of Human Alignment "
        "with *PO. arXiv:2407.15229, 2024."
    ),
    summary="DPO on per-token (length-normalised) policy/reference log-ratios.",
)
