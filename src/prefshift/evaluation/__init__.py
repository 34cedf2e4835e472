"""Evaluation metrics: pure functions, one module per job (see the study design, "Evaluation protocol").

* ``winrate`` — win rate against the reference (scalar judge or order-randomised pairwise judge),
  ties excluded / counted as half, with a bootstrap CI;
* ``diversity`` — EAD, distinct-n, self-BLEU, SBERT and NLI diversity over K samples per prompt;
* ``kl`` — sample-based KL(π ‖ π_ref) on the policy's own samples (k1 / k3);
* ``lengths`` — response-length statistics and the share cut off at ``max_new_tokens``;
* ``length_control`` — length-controlled win rate (AlpacaEval-LC): the win rate with the judge's
  length preference regressed out.

Example:
    >>> wr = win_rate(policy_gold, reference_gold, rng_seed=0)
    >>> wr.win_rate, (wr.ci_low, wr.ci_high)
    >>> diversity_report(samples_per_prompt, vocab_size=800, encoder=minilm_encoder())
"""

from prefshift.evaluation.diversity import (
    GPT2_VOCAB_SIZE,
    Encoder,
    NLIFn,
    bleu,
    distinct_n,
    diversity_report,
    ead,
    hf_nli_fn,
    minilm_encoder,
    nli_diversity,
    sbert_diversity,
    self_bleu,
)
from prefshift.evaluation.kl import KLEstimate, kl_estimate, kl_estimate_from_tokens
from prefshift.evaluation.length_control import (
    LCWinRate,
    length_controlled_win_rate,
    preferences_from_outcomes,
)
from prefshift.evaluation.lengths import length_summary, word_counts
from prefshift.evaluation.winrate import (
    JudgeFn,
    Verdict,
    WinRate,
    judge_pairwise,
    win_rate,
    win_rate_from_outcomes,
)

__all__ = [
    "GPT2_VOCAB_SIZE",
    "Encoder",
    "JudgeFn",
    "KLEstimate",
    "LCWinRate",
    "NLIFn",
    "Verdict",
    "WinRate",
    "bleu",
    "distinct_n",
    "diversity_report",
    "ead",
    "hf_nli_fn",
    "judge_pairwise",
    "kl_estimate",
    "kl_estimate_from_tokens",
    "length_controlled_win_rate",
    "length_summary",
    "minilm_encoder",
    "nli_diversity",
    "preferences_from_outcomes",
    "sbert_diversity",
    "self_bleu",
    "win_rate",
    "win_rate_from_outcomes",
    "word_counts",
]
