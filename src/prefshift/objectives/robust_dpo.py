r"""Robust DPO (rDPO): an unbiased DPO loss under a known rate of flipped preference labels.

Formula, with Δ the DPO margin of summed policy − reference log-ratios and ε = ``label_smoothing``::

    L = ((1 − ε) · (−log σ(β Δ)) − ε · (−log σ(−β Δ))) / (1 − 2ε)

(TRL's ``loss_type="robust"``.) Unlike cDPO, which *mixes* the two label directions, rDPO *subtracts*
the flipped term and rescales, so its expectation under ε-noisy labels equals the clean DPO loss.

Citation: S. R. Chowdhury, A. Kini, N. Natarajan, "Provably Robust DPO: Aligning Language Models with
Noisy Feedback", arXiv:2403.00409 (2024).

Why/when: preference data with a known or estimated label-noise rate (crowd labels, AI feedback). ε must
be below 1/2 (at 1/2 the labels carry no information and the loss is undefined). Note the per-example
loss can be negative.

Metrics: ``rewards/*`` are β · (policy − reference) summed log-ratios.
"""

from __future__ import annotations

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


def robust_dpo_loss(stats: PairedStats, *, beta: float, label_smoothing: float) -> LossOutput:
    """Noise-corrected DPO loss for label-flip rate ε."""
    chosen_lr, rejected_lr = log_ratios(stats)
    logits = beta * (chosen_lr - rejected_lr)
    clean = -(1 - label_smoothing) * F.logsigmoid(logits)
    flipped = -label_smoothing * F.logsigmoid(-logits)
    losses = (clean - flipped) / (1 - 2 * label_smoothing)
    return LossOutput(losses, paired_metrics(stats, beta * chosen_lr, beta * rejected_lr))


ROBUST_DPO = Objective(
    name="robust_dpo",
    fn=robust_dpo_loss,
    needs_reference=True,
    paired=True,
    hparams=(
        beta_hparam(0.1),
        HParam(
            "label_smoothing",
            0.1,
            low=0.0,
            high=0.5,
            high_inclusive=False,
            doc="ε, the assumed probability that a preference label is flipped",
        ),
    ),
    citation=(
        "Chowdhury, Kini, Natarajan. Provably Robust DPO: Aligning Language Models with Noisy Feedback. "
        "arXiv:2403.00409, 2024."
    ),
    summary="DPO de-biased for a known label-flip rate ε.",
)
