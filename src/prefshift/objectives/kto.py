r"""KTO: Kahneman–Tversky Optimization, on *unpaired* desirable/undesirable examples.

Formula, with r = log π(y | x) − log π_ref(y | x) on summed log-probs and the reference point::

    z0 = max(0, mean_batch(log π(y' | x) − log π_ref(y' | x))).detach()

estimated from mismatched (prompt, completion) pairs (``kl_logps``/``ref_kl_logps``; z0 = 0 if absent)::

    desirable:    L = λ_D · (1 − σ(β (r − z0)))
    undesirable:  L = λ_U · (1 − σ(β (z0 − r)))

This matches TRL's KTOTrainer (``loss_type="kto"``), where z0 is a batch-level, gradient-free KL estimate.

Citation: K. Ethayarajh, W. Xu, N. Muennighoff, D. Jurafsky, D. Kiela, "KTO: Model Alignment as Prospect
Theoretic Optimization", arXiv:2402.01306 (2024).

Why/when: needs only a binary "good/bad" signal per completion, not pairs — the natural choice for
thumbs-up/down feedback or imbalanced data. Rebalance with the weights so that
λ_D·n_D / (λ_U·n_U) lies in roughly [1, 4/3] (paper's recommendation).

Metrics: a batch may hold only one class, so per-class means cannot be formed per example without NaNs.
Instead each class contributes masked sums and counts, all [B]:

* ``rewards/desirable_sum`` = β·r on desirable rows, 0 elsewhere; ``count/desirable`` = 1 on those rows;
* ``rewards/undesirable_sum`` / ``count/undesirable`` likewise;
* ``logps/desirable_sum`` / ``logps/undesirable_sum``: summed policy log-probs, masked the same way;
* ``kl``: z0, repeated on every row.

The trainer should report ``sum(rewards/desirable_sum) / sum(count/desirable)`` (summed over the whole
logging window, so batches without desirable rows do not bias the mean).
"""

from __future__ import annotations

import torch

from prefshift.objectives.base import HParam, LossOutput, Objective, UnpairedStats, beta_hparam


def kto_loss(
    stats: UnpairedStats, *, beta: float, desirable_weight: float, undesirable_weight: float
) -> LossOutput:
    """Prospect-theoretic value of each completion's reward relative to the reference point z0."""
    if stats.ref_logps is None:
        raise ValueError("kto needs reference log-probs (ref_logps)")
    if (stats.kl_logps is None) != (stats.ref_kl_logps is None):
        raise ValueError("kto: give both kl_logps and ref_kl_logps (to estimate z0) or neither (z0 = 0)")
    rewards = stats.logps - stats.ref_logps
    if stats.kl_logps is not None and stats.ref_kl_logps is not None:
        z0 = (stats.kl_logps - stats.ref_kl_logps).mean().clamp(min=0).detach()
    else:
        z0 = torch.zeros((), dtype=rewards.dtype, device=rewards.device)
    desirable = stats.labels.bool()
    losses = torch.where(
        desirable,
        desirable_weight * (1 - torch.sigmoid(beta * (rewards - z0))),
        undesirable_weight * (1 - torch.sigmoid(beta * (z0 - rewards))),
    )
    zero = torch.zeros_like(rewards)
    metrics = {
        "rewards/desirable_sum": torch.where(desirable, beta * rewards, zero),
        "rewards/undesirable_sum": torch.where(desirable, zero, beta * rewards),
        "count/desirable": desirable.to(rewards.dtype),
        "count/undesirable": (~desirable).to(rewards.dtype),
        "logps/desirable_sum": torch.where(desirable, stats.logps, zero),
        "logps/undesirable_sum": torch.where(desirable, zero, stats.logps),
        "kl": z0.expand_as(rewards),
    }
    return LossOutput(losses, metrics)


KTO = Objective(
    name="kto",
    fn=kto_loss,
    needs_reference=True,
    paired=False,
    hparams=(
        beta_hparam(0.1),
        HParam("desirable_weight", 1.0, low=0.0, doc="λ_D, loss weight of desirable examples"),
        HParam("undesirable_weight", 1.0, low=0.0, doc="λ_U, loss weight of undesirable examples"),
    ),
    citation=(
        "Ethayarajh, Xu, Muennighoff, Jurafsky, Kiela. KTO: Model Alignment as Prospect Theoretic "
        "Optimization. arXiv:2402.01306, 2024."
    ),
    summary="Unpaired loss: sigmoid value of each completion's log-ratio relative to a KL reference point.",
)
