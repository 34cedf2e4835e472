r"""Pairwise win rate of a policy against a reference response, with a bootstrap confidence interval.

Per item i the policy response is compared with the reference response and the outcome is
o_i ∈ {+1 (win), 0 (tie), −1 (loss)}. With W wins, T ties, L losses over n = W + T + L items::

    win_rate           = W / (W + L)          (ties excluded; NaN when W + L = 0)
    win_rate_ties_half = (W + T/2) / n

The 95% CI of ``win_rate`` is the percentile bootstrap (Efron & Tibshirani 1993, "An Introduction to
the Bootstrap", ch. 13): resample the n items with replacement, recompute ``win_rate``, and take the
2.5th and 97.5th percentiles over the resamples.

Why: this is the evaluation protocol of the reference study (win rate against the dataset
reference, ties excluded, also ties-as-half, with a bootstrap CI), and the generalisation gap is the
difference of two of these numbers. Two ways to get the outcomes:

* ``win_rate`` — a scalar judge (the gold reward on the synthetic world, or a reward model): the
  response with the higher score wins; there is no order to randomise.
* ``judge_pairwise`` — a pairwise judge (an LLM judge) that sees both responses in some order. LLM
  judges prefer one position (Zheng et al. 2023, "Judging LLM-as-a-Judge with MT-Bench and Chatbot
  Arena", arXiv:2306.05685), so the order is randomised per item with a seed and the verdict mapped
  back; a position bias then splits evenly between wins and losses in expectation instead of
  systematically favouring one side.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
from numpy.typing import ArrayLike

Verdict = Literal["first", "second", "tie"]
"""What a pairwise judge returns: which of the two responses it was shown is better."""

JudgeFn = Callable[[str, str, str], Verdict]
"""``judge_fn(prompt, first_response, second_response) -> 'first' | 'second' | 'tie'``."""


@dataclass(frozen=True)
class WinRate:
    """Summary of a pairwise comparison of a policy against a reference.

    Attributes:
        win_rate: wins / (wins + losses); NaN if every item is a tie.
        win_rate_ties_half: (wins + ties / 2) / n.
        wins, ties, losses, n: the outcome counts (n = wins + ties + losses).
        ci_low, ci_high: percentile-bootstrap CI of ``win_rate`` at level ``confidence``; NaN when
            no resample has a decisive item.
        confidence: the CI level (0.95 by default).
        n_bootstrap: number of bootstrap resamples.
    """

    win_rate: float
    win_rate_ties_half: float
    wins: int
    ties: int
    losses: int
    n: int
    ci_low: float
    ci_high: float
    confidence: float
    n_bootstrap: int


def win_rate(
    policy_scores: ArrayLike,
    reference_scores: ArrayLike,
    rng_seed: int,
    n_bootstrap: int = 1000,
    *,
    tol: float = 1e-9,
    confidence: float = 0.95,
) -> WinRate:
    """Win rate of the policy against the reference when a scalar judge scores each response.

    Item i is a win if ``policy_scores[i] - reference_scores[i] > tol``, a loss if it is ``< -tol``,
    and a tie otherwise (``tol`` absorbs floating-point noise from scoring identical responses).
    """
    policy = np.asarray(policy_scores, dtype=float)
    reference = np.asarray(reference_scores, dtype=float)
    if policy.ndim != 1 or policy.shape != reference.shape:
        raise ValueError(
            f"need two 1-D score arrays of equal length, got {policy.shape} and {reference.shape}"
        )
    if not (np.isfinite(policy).all() and np.isfinite(reference).all()):
        raise ValueError("scores must be finite")
    if tol < 0:
        raise ValueError(f"tol must be >= 0, got {tol}")
    diff = policy - reference
    outcomes = np.where(diff > tol, 1, np.where(diff < -tol, -1, 0))
    return win_rate_from_outcomes(outcomes, rng_seed, n_bootstrap, confidence=confidence)


def judge_pairwise(
    items: Sequence[tuple[str, str, str]],
    judge_fn: JudgeFn,
    seed: int,
) -> np.ndarray:
    """Ask a pairwise judge about each ``(prompt, policy_response, reference_response)`` item.

    The two responses are shown in a random order per item (a seeded coin flip: reproducible, and
    independent of the content), the judge's ``'first'``/``'second'``/``'tie'`` is mapped back to the
    policy's point of view. Returns the outcomes (int array: +1 policy wins, 0 tie, −1 policy loses),
    ready for ``win_rate_from_outcomes`` and kept per item for paired analyses.

    A judge that always says ``'first'`` thus gives about 50% wins and a judge that always picks the
    better response gives 100%, whatever the order.
    """
    rng = np.random.default_rng(seed)
    policy_first = rng.random(len(items)) < 0.5
    outcomes = np.empty(len(items), dtype=np.int64)
    for i, ((prompt, policy_response, reference_response), first_is_policy) in enumerate(
        zip(items, policy_first, strict=True)
    ):
        if first_is_policy:
            verdict = judge_fn(prompt, policy_response, reference_response)
        else:
            verdict = judge_fn(prompt, reference_response, policy_response)
        if verdict == "tie":
            outcomes[i] = 0
        elif verdict in ("first", "second"):
            outcomes[i] = 1 if (verdict == "first") == first_is_policy else -1
        else:
            raise ValueError(f"judge_fn must return 'first', 'second' or 'tie', got {verdict!r}")
    return outcomes


def win_rate_from_outcomes(
    outcomes: ArrayLike,
    rng_seed: int,
    n_bootstrap: int = 1000,
    *,
    confidence: float = 0.95,
) -> WinRate:
    """Summarise per-item outcomes (+1 win, 0 tie, −1 loss) into a ``WinRate`` with a bootstrap CI.

    ``win_rate`` depends on the items only through the counts (W, T, L), and resampling n items with
    replacement makes those counts Multinomial(n, (W, T, L)/n); the bootstrap draws the counts from
    that multinomial directly, which is the same distribution as resampling item indices at O(1)
    instead of O(n) memory per resample. Resamples with no decisive item are left out of the
    percentiles.
    """
    o = np.asarray(outcomes)
    if o.ndim != 1 or o.size == 0:
        raise ValueError(f"need a non-empty 1-D array of outcomes, got shape {o.shape}")
    if not np.isin(o, (-1, 0, 1)).all():
        raise ValueError("outcomes must be +1 (win), 0 (tie) or -1 (loss)")
    if n_bootstrap < 1:
        raise ValueError(f"n_bootstrap must be >= 1, got {n_bootstrap}")
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    n = int(o.size)
    wins, ties, losses = int((o == 1).sum()), int((o == 0).sum()), int((o == -1).sum())

    rng = np.random.default_rng(rng_seed)
    counts = rng.multinomial(n, np.array([wins, ties, losses]) / n, size=n_bootstrap)
    decisive = counts[:, 0] + counts[:, 2]
    boot = counts[decisive > 0, 0] / decisive[decisive > 0]
    alpha = (1 - confidence) / 2
    ci_low, ci_high = np.quantile(boot, [alpha, 1 - alpha]) if boot.size else (np.nan, np.nan)
    return WinRate(
        win_rate=wins / (wins + losses) if wins + losses else float("nan"),
        win_rate_ties_half=(wins + ties / 2) / n,
        wins=wins,
        ties=ties,
        losses=losses,
        n=n,
        ci_low=float(ci_low),
        ci_high=float(ci_high),
        confidence=confidence,
        n_bootstrap=n_bootstrap,
    )
