"""Response-length statistics.

Why: preference tuning is known to lengthen responses, and a judge that favours long answers turns
that into win rate (length exploitation: Singhal et al. 2023, "A Long Way to Go: Investigating
Length Correlations in RLHF", arXiv:2310.03716; Park et al. 2024, "Disentangling Length from Quality
in Direct Preference Optimization", arXiv:2403.19159). Win rates are therefore read next to lengths,
and the share of responses cut off at ``max_new_tokens`` flags policies that ramble or never stop —
their mean length is then a lower bound and their texts are truncated.

Lengths can be in any unit: tokens (``len(sample.token_ids)``, which counts the EOS token when one
was produced) or words (``word_counts``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
from numpy.typing import ArrayLike


def word_counts(texts: Sequence[str], tokenize: Callable[[str], Sequence[str]] = str.split) -> np.ndarray:
    """Number of whitespace-separated words (or of ``tokenize`` units) of each text."""
    return np.array([len(tokenize(t)) for t in texts], dtype=int)


def length_summary(
    lengths: ArrayLike,
    *,
    finished: ArrayLike | None = None,
    max_new_tokens: int | None = None,
) -> dict[str, float]:
    """Mean, median, std (ddof = 1, as pandas), p10, p90, n and ``capped_share`` of response lengths.

    ``capped_share`` is the share of responses that hit the generation cap:

    * with ``finished`` flags (``Sample.finished``: ended on EOS / a stop string), the share not
      finished — the exact answer, and valid whatever the unit of ``lengths``;
    * else with ``max_new_tokens``, the share with ``lengths >= max_new_tokens`` — ``lengths`` must
      then be token counts, and a response that ended on EOS exactly at the cap counts as capped;
    * else NaN (the key is always present, so reports have fixed columns).

    Percentiles use numpy's default linear interpolation.
    """
    x = np.asarray(lengths, dtype=float)
    if x.ndim != 1 or x.size == 0:
        raise ValueError(f"need a non-empty 1-D array of lengths, got shape {x.shape}")
    if (x < 0).any() or not np.isfinite(x).all():
        raise ValueError("lengths must be finite and non-negative")
    if finished is not None:
        done = np.asarray(finished, dtype=bool)
        if done.shape != x.shape:
            raise ValueError(f"finished has shape {done.shape}, expected {x.shape}")
        capped_share = float((~done).mean())
    elif max_new_tokens is not None:
        capped_share = float((x >= max_new_tokens).mean())
    else:
        capped_share = float("nan")
    p10, median, p90 = np.percentile(x, [10, 50, 90])
    return {
        "mean": float(x.mean()),
        "median": float(median),
        "std": float(x.std(ddof=1)) if x.size > 1 else float("nan"),
        "p10": float(p10),
        "p90": float(p90),
        "n": float(x.size),
        "capped_share": capped_share,
    }
