r"""APO-down: Anchored Preference Optimization, variant for chosen responses *worse* than the model's own.

Formula (paper Eq. 8; TRL's ``loss_type="apo_down"``), with r_c, r_r the summed policy − reference
log-ratios::

    L = σ(β r_c) + (1 − σ(β (r_c − r_r)))

The first term lowers the chosen likelihood; the second keeps the chosen response ahead of the rejected
one, so the rejected likelihood has to fall *more*.

Citation: K. D'Oosterlinck, W. Xu, C. Develder, T. Demeester, A. Singh, C. Potts, D. Kiela, S. Mehri,
"Anchored Preference Optimization and Contrastive Revisions: Addressing Underspecification in
Alignment", arXiv:2408.06266 (2024).

Why/when: when the model already outperforms the chosen responses (e.g. preference data from a weaker
model) but the *ranking* is still informative: learn the contrast without imitating the chosen answers.
Use ``apo_zero`` in the opposite case.

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


def apo_down_loss(stats: PairedStats, *, beta: float) -> LossOutput:
    """Lower the chosen reward while lowering the rejected reward further."""
    chosen_lr, rejected_lr = log_ratios(stats)
    chosen_rewards, rejected_rewards = beta * chosen_lr, beta * rejected_lr
    losses = torch.sigmoid(chosen_rewards) + (1 - torch.sigmoid(chosen_rewards - rejected_rewards))
    return LossOutput(losses, paired_metrics(stats, chosen_rewards, rejected_rewards))


APO_DOWN = Objective(
    name="apo_down",
    fn=apo_down_loss,
    needs_reference=True,
    paired=True,
    hparams=(beta_hparam(0.1),),
    citation=(
        "D'Oosterlinck, Xu, Develder, Demeester, Singh, Potts, Kiela, Mehri. Anchored Preference "
        "Optimization and Contrastive Revisions: Addressing Underspecification in Alignment. "
        "arXiv:2408.06266, 2024."
    ),
    summary="Anchored loss: chosen likelihood down, rejected further down (chosen worse than the model's).",
)
