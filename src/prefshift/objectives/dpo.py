r"""DPO: Direct Preference Optimization (sigmoid loss), with optional conservative label smoothing (cDPO).

Formula, with Δ = (log π(y_c) − log π_ref(y_c)) − (log π(y_r) − log π_ref(y_r)) on summed log-probs::

    L = -(1 - ε) · log σ(β Δ) - ε · log σ(-β Δ)

ε = ``label_smoothing`` = 0 gives plain DPO (and matches TRL's ``loss_type="sigmoid"``); ε > 0 is cDPO,
which treats each label as flipped with probability ε and so stops pushing Δ once it is large.

Citation: R. Rafailov, A. Sharma, E. Mitchell, S. Ermon, C. D. Manning, C. Finn, "Direct Preference
Optimization: Your Language Model is Secretly a Reward Model", arXiv:2305.18290 (2023). cDPO: E. Mitchell,
"A note on DPO with noisy preferences & relationship to IPO" (2023).

Why/when: the default offline preference objective — the Bradley–Terry reward-model loss re-expressed in
terms of the policy, so no reward model or RL loop is needed. β sets how far the policy may drift from the
reference (smaller β = weaker KL constraint). Use label smoothing when preference labels are noisy.

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


def dpo_loss(stats: PairedStats, *, beta: float, label_smoothing: float) -> LossOutput:
    """(Conservative) DPO sigmoid loss on the reference-relative margin."""
    chosen_lr, rejected_lr = log_ratios(stats)
    logits = beta * (chosen_lr - rejected_lr)
    losses = -(1 - label_smoothing) * F.logsigmoid(logits) - label_smoothing * F.logsigmoid(-logits)
    return LossOutput(losses, paired_metrics(stats, beta * chosen_lr, beta * rejected_lr))


DPO = Objective(
    name="dpo",
    fn=dpo_loss,
    needs_reference=True,
    paired=True,
    hparams=(
        beta_hparam(0.1),
        HParam(
            "label_smoothing",
            0.0,
            low=0.0,
            high=0.5,
            high_inclusive=False,
            doc="cDPO label-flip probability; 0.5 would make the labels pure noise",
        ),
    ),
    citation=(
        "Rafailov, Sharma, Mitchell, Ermon, Manning, Finn. Direct Preference Optimization: Your Language "
        "Model is Secretly a Reward Model. arXiv:2305.18290, 2023."
    ),
    summary="Bradley-Terry loss on the policy/reference log-ratio margin (cDPO with label_smoothing > 0).",
)
