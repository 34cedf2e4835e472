r"""SLiC-HF: Sequence Likelihood Calibration with Human Feedback, reference-free as in the paper.

Formula, on summed log-probs of the policy only::

    L = max(0, δ − log π(y_c | x) + log π(y_r | x)) + λ · (−log π(y_c | x) / |y_c|)

The first term is the rank-calibration hinge; the second a regulariser towards a supervised target. The
paper regularises towards the *SFT data* target y_ref; here the chosen response plays that role, so no
separate SFT set is needed (set ``lambda_sft`` = 0 to drop it). The regulariser is averaged per token
(the paper sums) so that λ is on the same scale as the NLL terms of CPO/ORPO/SimPO.

Citation: Y. Zhao, R. Joshi, T. Liu, M. Khalman, M. Saleh, P. J. Liu, "SLiC-HF: Sequence Likelihood
Calibration with Human Feedback", arXiv:2305.10425 (2023).

Why/when: a cheap, reference-free contrastive objective (no reference forward pass). The margin δ is in
raw summed log-prob units, so it is length-sensitive; the NLL term keeps the policy from drifting far
from fluent text in the absence of a KL anchor.

Metrics: ``rewards/*`` are the summed policy log-probs (the quantities the hinge compares, no β), so
``rewards/margins`` is compared against δ directly.
"""

from __future__ import annotations

import torch

from prefshift.objectives.base import HParam, LossOutput, Objective, PairedStats, paired_metrics, per_token


def slic_hf_loss(stats: PairedStats, *, delta: float, lambda_sft: float) -> LossOutput:
    """Rank-calibration hinge plus a λ-weighted NLL regulariser on the chosen response."""
    calibration = torch.relu(delta - stats.chosen_logps + stats.rejected_logps)
    nll = -per_token(stats.chosen_logps, stats.chosen_lengths)
    losses = calibration + lambda_sft * nll
    return LossOutput(losses, paired_metrics(stats, stats.chosen_logps, stats.rejected_logps, nll=nll))


SLIC_HF = Objective(
    name="slic_hf",
    fn=slic_hf_loss,
    needs_reference=False,
    paired=True,
    hparams=(
        HParam("delta", 1.0, low=0.0, low_inclusive=False, doc="hinge margin δ in summed log-prob units"),
        HParam("lambda_sft", 0.1, low=0.0, doc="weight λ of the chosen-response NLL regulariser"),
    ),
    citation=(
        "Zhao, Joshi, Liu, Khalman, Saleh, Liu. SLiC-HF: Sequence Likelihood Calibration with Human "
        "Feedback. arXiv:2305.10425, 2023."
    ),
    summary="Reference-free hinge on the log-prob margin plus an NLL regulariser on the chosen response.",
)
