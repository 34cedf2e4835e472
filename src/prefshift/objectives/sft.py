r"""SFT: supervised fine-tuning on the chosen response — the baseline every preference objective must beat.

Formula (per pair; the rejected response is ignored)::

    L = -log π(y_c | x) / |y_c|

i.e. the mean per-token negative log-likelihood of the chosen response. Averaging per token (rather than
summing) keeps long responses from dominating the batch and puts the loss on the same scale as the NLL
terms of CPO/ORPO/SimPO.

Citation: ordinary maximum-likelihood fine-tuning; as the first stage of the alignment pipeline see
L. Ouyang, J. Wu, X. Jiang, et al., "Training language models to follow instructions with human feedback",
arXiv:2203.02155 (2022).

Why/when: the control arm of a comparison. It separates what a method gains from merely imitating the
chosen responses from what it gains by contrasting them with the rejected ones.

Metrics: SFT has no implicit reward, so ``rewards/*`` are the policy's per-token average log-probs of
each response; ``rewards/accuracies`` then says how often the model already prefers the chosen one.
"""

from __future__ import annotations

from prefshift.objectives.base import LossOutput, Objective, PairedStats, paired_metrics, per_token


def sft_loss(stats: PairedStats) -> LossOutput:
    """Mean token NLL of the chosen response."""
    chosen_avg = per_token(stats.chosen_logps, stats.chosen_lengths)
    rejected_avg = per_token(stats.rejected_logps, stats.rejected_lengths)
    nll = -chosen_avg
    return LossOutput(nll, paired_metrics(stats, chosen_avg, rejected_avg, nll=nll))


SFT = Objective(
    name="sft",
    fn=sft_loss,
    needs_reference=False,
    paired=True,
    hparams=(),
    citation=(
        "Ouyang, Wu, Jiang, et al. Training language models to follow instructions with human feedback. "
        "arXiv:2203.02155, 2022."
    ),
    summary="Mean token NLL of the chosen response (imitation baseline).",
)
