r"""NCA (paired): Noise Contrastive Alignment, as TRL's ``loss_type="nca_pair"``.

Formula, with r_c, r_r the summed policy − reference log-ratios of chosen and rejected::

    L = −log σ(β r_c) − ½ log σ(−β r_c) − ½ log σ(−β r_r)

Rewards are optimised in absolute terms, not only through their difference: the two chosen terms are
minimised at a finite reward β r_c = ln 2 (σ = 2/3), and the last term pushes the rejected reward down.
This is the paper's NCA loss for K = 2 responses with binary preferences.

Citation: H. Chen, G. He, L. Yuan, G. Cui, H. Su, J. Zhu, "Noise Contrastive Alignment of Language Models
with Explicit Rewards", arXiv:2402.05369 (2024).

Why/when: DPO optimises only the *relative* margin and can lower the chosen likelihood along with the
rejected one; NCA optimises absolute rewards and so keeps the chosen likelihood up, which the authors
find helps on reasoning/maths tasks.

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


def nca_pair_loss(stats: PairedStats, *, beta: float) -> LossOutput:
    """NCA loss on the absolute chosen/rejected rewards."""
    chosen_lr, rejected_lr = log_ratios(stats)
    chosen_rewards, rejected_rewards = beta * chosen_lr, beta * rejected_lr
    losses = (
        -F.logsigmoid(chosen_rewards)
        - 0.5 * F.logsigmoid(-chosen_rewards)
        - 0.5 * F.logsigmoid(-rejected_rewards)
    )
    return LossOutput(losses, paired_metrics(stats, chosen_rewards, rejected_rewards))


NCA_PAIR = Objective(
    name="nca_pair",
    fn=nca_pair_loss,
    needs_reference=True,
    paired=True,
    hparams=(beta_hparam(0.1),),
    citation=(
        "Chen, He, Yuan, Cui, Su, Zhu. Noise Contrastive Alignment of Language Models with Explicit Rewards. "
        "arXiv:2402.05369, 2024."
    ),
    summary="Noise-contrastive loss on absolute chosen/rejected rewards.",
)
