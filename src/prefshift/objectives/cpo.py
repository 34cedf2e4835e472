r"""CPO: Contrastive Preference Optimization — reference-free DPO plus an NLL term on the chosen response.

Formula, on summed policy log-probs (no reference)::

    L = −log σ(β (log π(y_c | x) − log π(y_r | x))) + α · (−log π(y_c | x) / |y_c|)

This is DPO with a uniform reference (which cancels), regularised by behaviour cloning of the chosen
response. TRL's CPOTrainer averages the NLL over all chosen tokens in the batch; here it is the
per-example token mean, so the trainer's batch mean weights every pair equally.

Citation: H. Xu, A. Sharaf, Y. Chen, W. Tan, L. Shen, B. Van Durme, K. Murray, Y. J. Kim, "Contrastive
Preference Optimization: Pushing the Boundaries of LLM Performance in Machine Translation",
arXiv:2401.08417 (2024).

Why/when: memory and compute of DPO without the reference model; the NLL term keeps the chosen
responses likely, which DPO alone can let fall. Designed for high-quality "chosen" data (e.g. translation
references) where imitating the chosen output is itself desirable.

Metrics: ``rewards/*`` are β · summed policy log-probs (as TRL logs them); ``nll`` is the chosen token NLL.
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


def cpo_loss(stats: PairedStats, *, beta: float, alpha: float) -> LossOutput:
    """Reference-free sigmoid preference loss plus α times the chosen NLL."""
    chosen_rewards = beta * stats.chosen_logps
    rejected_rewards = beta * stats.rejected_logps
    nll = -per_token(stats.chosen_logps, stats.chosen_lengths)
    losses = -F.logsigmoid(chosen_rewards - rejected_rewards) + alpha * nll
    return LossOutput(losses, paired_metrics(stats, chosen_rewards, rejected_rewards, nll=nll))


CPO = Objective(
    name="cpo",
    fn=cpo_loss,
    needs_reference=False,
    paired=True,
    hparams=(
        beta_hparam(0.1),
        HParam("alpha", 1.0, low=0.0, doc="weight of the chosen-response NLL (behaviour-cloning) term"),
    ),
    citation=(
        "Xu, Sharaf, Chen, Tan, Shen, Van Durme, Murray, Kim. Contrastive Preference Optimization: Pushing "
        "the Boundaries of LLM Performance in Machine Translation. arXiv:2401.08417, 2024."
    ),
    summary="Reference-free sigmoid preference loss on summed log-probs plus chosen NLL.",
)
