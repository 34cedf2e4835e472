r"""SimPO: Simple Preference Optimization — a reference-free, length-normalised reward with a target margin.

Formula, on per-token average log-probs a = log π(y | x) / |y|::

    L = −log σ(β (a_c − a_r) − γ) + w · (−a_c)

``gamma`` is the *absolute* margin γ inside the sigmoid (as in the paper's equation and TRL's
``simpo_gamma``). The paper reports its sweeps as the ratio γ/β; convert with γ = β · ratio (the defaults
β = 2, γ = 0.5 are ratio 0.25). ``sft_weight`` w (default 0, i.e. plain SimPO) adds the chosen-response
NLL as in the authors' code.

Citation: Y. Meng, M. Xia, D. Chen, "SimPO: Simple Preference Optimization with a Reference-Free Reward",
arXiv:2405.14734 (2024).

Why/when: the reward is the same quantity the model uses when generating (average log-likelihood), there
is no reference forward pass, and length normalisation curbs the length exploitation of DPO. With no KL
anchor it can drift on small data; tune β in roughly [2, 10] and keep the learning rate low.

Metrics: ``rewards/*`` are β · a (the implicit SimPO reward); ``nll`` is −a_c whatever w is.
"""

from __future__ import annotations

import torch.nn.functional as F

from prefshift.objectives.base import (
    HParam,
    LossOutput,
    Objective,
    PairedStats,
    beta_hparam,
    paired_metrics,
    per_token,
)


def simpo_loss(stats: PairedStats, *, beta: float, gamma: float, sft_weight: float) -> LossOutput:
    """Sigmoid loss on the average-log-prob margin minus γ, plus an optional chosen NLL."""
    chosen_rewards = beta * per_token(stats.chosen_logps, stats.chosen_lengths)
    rejected_rewards = beta * per_token(stats.rejected_logps, stats.rejected_lengths)
    nll = -per_token(stats.chosen_logps, stats.chosen_lengths)
    losses = -F.logsigmoid(chosen_rewards - rejected_rewards - gamma) + sft_weight * nll
    return LossOutput(losses, paired_metrics(stats, chosen_rewards, rejected_rewards, nll=nll))


SIMPO = Objective(
    name="simpo",
    fn=simpo_loss,
    needs_reference=False,
    paired=True,
    hparams=(
        beta_hparam(2.0, doc="scale of the average-log-prob reward"),
        HParam("gamma", 0.5, low=0.0, doc="absolute target reward margin γ (paper's γ/β ratio times β)"),
        HParam("sft_weight", 0.0, low=0.0, doc="weight of the chosen-response NLL term"),
    ),
    citation=(
        "Meng, Xia, Chen. SimPO: Simple Preference Optimization with a Reference-Free Reward. "
        "arXiv:2405.14734, 2024."
    ),
    summary="Reference-free sigmoid loss on the average log-prob margin with a target margin γ.",
)
