r"""APO-zero: Anchored Preference Optimization, variant for chosen responses *better* than the model's own.

Formula (paper Eq. 7; TRL's ``loss_type="apo_zero"``), with r_c, r_r the summed policy − reference
log-ratios::

    L = (1 − σ(β r_c)) + σ(β r_r)

It anchors each reward at zero: the chosen likelihood is pushed *up* and the rejected likelihood *down*
relative to the reference, not just their difference.

Citation: K. D'Oosterlinck, W. Xu, C. Develder, T. Demeester, A. Singh, C. Potts, D. Kiela, S. Mehri,
"Anchored Preference Optimization and Contrastive Revisions: Addressing Underspecification in
Alignment", arXiv:2408.06266 (2024).

Why/when: the preference pair alone does not say whether the chosen answer should become more or less
likely; use APO-zero when the chosen responses are better than what the model already produces (e.g.
written by a stronger model). Use ``apo_down`` in the opposite case.

Metrics: ``rewards/*`` are β · (policy − reference) summed log-ratios.
"""

from __future__ import annotations

import torch

from prefshift.objectives.base import (
    LossOutput,
    Objective,
    PairedStats,
    beta_hparam,
    log_ratios,
    paired_metrics,
)


def apo_zero_loss(stats: PairedStats, *, beta: float) -> LossOutput:
    """Raise the chosen reward above 0 and push the rejected reward below 0."""
    chosen_lr, rejected_lr = log_ratios(stats)
    chosen_rewards, rejected_rewards = beta * chosen_lr, beta * rejected_lr
    losses = (1 - torch.sigmoid(chosen_rewards)) + torch.sigmoid(rejected_rewards)
    return LossOutput(losses, paired_metrics(stats, chosen_rewards, rejected_rewards))


APO_ZERO = Objective(
    name="apo_zero",
    fn=apo_zero_loss,
    needs_reference=True,
    paired=True,
    hparams=(beta_hparam(0.1),),
    citation=(
        "D'Oosterlinck, Xu, Develder, Demeester, Singh, Potts, Kiela, Mehri. Anchored Preference "
        "Optimization and Contrastive Revisions: Addressing Underspecification in Alignment. "
        "arXiv:2408.06266, 2024."
    ),
    summary="Anchored loss: chosen likelihood up, rejected down (chosen better than the model's outputs).",
)
