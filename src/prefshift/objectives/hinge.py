r"""Hinge (DPO-hinge): the SLiC hinge on the reference-relative margin, as TRL's ``loss_type="hinge"``.

Formula, with Δ = (log π(y_c) − log π_ref(y_c)) − (log π(y_r) − log π_ref(y_r)) on summed log-probs::

    L = max(0, 1 − β Δ)

i.e. a margin of 1/β in log-ratio units; pairs already past it contribute no gradient.

Citation: the hinge comes from Y. Zhao, R. Joshi, T. Liu, M. Khalman, M. Saleh, P. J. Liu, "SLiC-HF:
Sequence Likelihood Calibration with Human Feedback", arXiv:2305.10425 (2023); the reference-normalised
form is the "hinge-norm" loss of T. Liu, Y. Zhao, R. Joshi, M. Khalman, M. Saleh, P. J. Liu, J. Liu,
"Statistical Rejection Sampling Improves Preference Optimization", arXiv:2309.06657 (2023).

Why/when: a DPO-like objective that stops optimising a pair once it is separated by the margin, which
limits over-optimisation on easy pairs. See ``slic_hf`` for the reference-free original.

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


def hinge_loss(stats: PairedStats, *, beta: float) -> LossOutput:
    """relu(1 − β Δ) on the reference-relative margin."""
    chosen_lr, rejected_lr = log_ratios(stats)
    losses = torch.relu(1 - beta * (chosen_lr - rejected_lr))
    return LossOutput(losses, paired_metrics(stats, beta * chosen_lr, beta * rejected_lr))


HINGE = Objective(
    name="hinge",
    fn=hinge_loss,
    needs_reference=True,
    paired=True,
    hparams=(beta_hparam(0.1, doc="inverse margin: pairs with Δ ≥ 1/β get no gradient"),),
    citation=(
        "Zhao, Joshi, Liu, Khalman, Saleh, Liu. SLiC-HF: Sequence Likelihood Calibration with Human "
        "Feedback. arXiv:2305.10425, 2023; Liu, Zhao, Joshi, Khalman, Saleh, Liu, Liu. Statistical Rejection "
        "Sampling Improves Preference Optimization. arXiv:2309.06657, 2023."
    ),
    summary="Hinge loss relu(1 - βΔ) on the policy/reference log-ratio margin.",
)
