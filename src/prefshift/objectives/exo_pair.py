r"""EXO (paired): Efficient Exact Optimization, as TRL's ``loss_type="exo_pair"``.

Formula (paper Eq. 16 with K = 2), with Δ the DPO margin of summed policy − reference log-ratios,
q_w = σ(βΔ), q_l = σ(−βΔ) (the policy's softmax over {chosen, rejected}) and ε = ``label_smoothing``::

    L = KL(q ‖ p) = q_w (log q_w − log(1 − ε)) + q_l (log q_l − log ε)

where p = (1 − ε, ε) is the smoothed preference distribution. log q_w and log q_l are computed with
logsigmoid for stability.

Citation: H. Ji, C. Lu, Y. Niu, P. Ke, H. Wang, J. Zhu, J. Tang, M. Huang, "Towards Efficient Exact
Optimization of Language Model Alignment", arXiv:2402.00856 (2024).

Why/when: DPO minimises the *forward* KL to the optimal policy, which is mean-seeking and can spread
mass over poor responses; EXO minimises the *reverse* KL (mode-seeking), as RLHF does, without RL.
ε must be in (0, 1): the reverse KL is infinite against a one-hot target.

Metrics: ``rewards/*`` are β · (policy − reference) summed log-ratios.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from prefshift.objectives.base import (
    HParam,
    LossOutput,
    Objective,
    PairedStats,
    beta_hparam,
    log_ratios,
    paired_metrics,
)


def exo_pair_loss(stats: PairedStats, *, beta: float, label_smoothing: float) -> LossOutput:
    """Reverse KL between the policy's pairwise preference and the ε-smoothed label."""
    chosen_lr, rejected_lr = log_ratios(stats)
    logits = beta * (chosen_lr - rejected_lr)
    q_w, q_l = torch.sigmoid(logits), torch.sigmoid(-logits)
    log_q_w, log_q_l = F.logsigmoid(logits), F.logsigmoid(-logits)
    losses = q_w * (log_q_w - math.log1p(-label_smoothing)) + q_l * (log_q_l - math.log(label_smoothing))
    return LossOutput(losses, paired_metrics(stats, beta * chosen_lr, beta * rejected_lr))


EXO_PAIR = Objective(
    name="exo_pair",
    fn=exo_pair_loss,
    needs_reference=True,
    paired=True,
    hparams=(
        beta_hparam(0.1),
        HParam(
            "label_smoothing",
            1e-3,
            low=0.0,
            high=1.0,
            low_inclusive=False,
            high_inclusive=False,
            doc="ε, probability mass the target puts on the rejected response; must be in (0, 1)",
        ),
    ),
    citation=(
        "Ji, Lu, Niu, Ke, Wang, Zhu, Tang, Huang. Towards Efficient Exact Optimization of Language Model "
        "Alignment. arXiv:2402.00856, 2024."
    ),
    summary="Reverse-KL (mode-seeking) pairwise loss against an ε-smoothed preference label.",
)
