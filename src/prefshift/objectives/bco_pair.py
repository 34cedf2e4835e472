r"""BCO (paired): Binary Classifier Optimization on preference pairs, as TRL's ``loss_type="bco_pair"``.

Formula, with r_c, r_r the summed policy − reference log-ratios of chosen and rejected::

    L = −log σ(β r_c) − log σ(−β r_r)

i.e. a logistic classifier that labels each response on its own — chosen as positive, rejected as
negative — rather than their difference. The paper also subtracts a running-mean reward shift δ; TRL's
DPOTrainer (and this implementation) omits it, which matches the paper when δ = 0.

Citation: S. Jung, G. Han, D. W. Nam, K.-W. On, "Binary Classifier Optimization for Large Language Model
Alignment", arXiv:2404.04656 (2024).

Why/when: anchors each reward's sign, so the chosen response's likelihood is pushed up in absolute terms
(not only relative to the rejected one), avoiding DPO's tendency to lower both. The paper shows that
this binary cross-entropy (with the reward shift) upper-bounds the DPO loss.

Metrics: ``rewards/*`` are β · (policy − reference) summed log-ratios.
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
)


def bco_pair_loss(stats: PairedStats, *, beta: float) -> LossOutput:
    """Per-response logistic loss: chosen rewards up, rejected rewards down."""
    chosen_lr, rejected_lr = log_ratios(stats)
    chosen_rewards, rejected_rewards = beta * chosen_lr, beta * rejected_lr
    losses = -F.logsigmoid(chosen_rewards) - F.logsigmoid(-rejected_rewards)
    return LossOutput(losses, paired_metrics(stats, chosen_rewards, rejected_rewards))


BCO_PAIR = Objective(
    name="bco_pair",
    fn=bco_pair_loss,
    needs_reference=True,
    paired=True,
    hparams=(beta_hparam(0.1),),
    citation=(
        "Jung, Han, Nam, On. Binary Classifier Optimization for Large Language Model Alignment. "
        "arXiv:2404.04656, 2024."
    ),
    summary="Logistic loss classifying chosen (positive) and rejected (negative) rewards separately.",
)
