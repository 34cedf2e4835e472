r"""Length-controlled win rate (the AlpacaEval-LC idea, Dubois et al. 2024, arXiv:2404.04475).

Why: judges — LLMs, reward models, people — prefer longer answers, and preference tuning learns to
write longer (the study's length-exploitation question; LN-DPO and SimPO exist because of it). A raw
win rate then rewards length as much as quality. Dubois et al. regress the judge's preference on the
length difference and report the win rate *the policy would have if it were as long as the
reference*:

    logit P(policy ≻ reference | item i) = θ + φ · tanh(Δ_i / sd(Δ)),   Δ_i = len(policy_i) − len(ref_i)

    LC win rate = σ(θ)     (the length term set to zero)

The tanh bounds the length term, so very long outliers cannot dominate; sd(Δ) is the standard
deviation of the differences over the items (as in the paper). AlpacaEval's GLM also has a
per-instruction difficulty term, fitted across many models; with one policy against one reference
it is not identifiable and is absorbed by θ. Preferences may be soft (P(policy better) ∈ [0, 1]:
0.5 for a tie, σ(r_a − r_b) from a reward model, the position-swapped score of ``judging.llm``), so
the fit maximises the Bernoulli likelihood with fractional targets, as AlpacaEval does.

The fit is a two-parameter Newton/IRLS in numpy rather than scikit-learn, which is not a prefshift
dependency; a tiny ridge (``l2``) keeps θ finite when the policy wins (or loses) every item.
The 95% CI is the percentile bootstrap over items (refit per resample; sd(Δ) fixed at its full-sample
value, so every resample uses the same feature).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike


@dataclass(frozen=True)
class LCWinRate:
    """Length-controlled and raw win rate of a policy against a reference.

    Attributes:
        lc_win_rate: σ(θ), the win rate with the length term set to zero.
        win_rate: the raw mean preference (ties count as half).
        ci_low, ci_high: percentile-bootstrap CI of ``lc_win_rate`` at level ``confidence``.
        intercept, length_coef: the fitted θ and φ (φ > 0: the judge rewards extra length).
        length_scale: sd(Δ), the scale inside the tanh.
        n, n_bootstrap, confidence: items, resamples, CI level.
    """

    lc_win_rate: float
    win_rate: float
    ci_low: float
    ci_high: float
    intercept: float
    length_coef: float
    length_scale: float
    n: int
    n_bootstrap: int
    confidence: float


def preferences_from_outcomes(outcomes: ArrayLike) -> np.ndarray:
    """+1 win / 0 tie / −1 loss (``winrate.judge_pairwise``) → preference 1 / 0.5 / 0."""
    o = np.asarray(outcomes, dtype=float)
    if not np.isin(o, (-1, 0, 1)).all():
        raise ValueError("outcomes must be +1 (win), 0 (tie) or -1 (loss)")
    return (o + 1) / 2


def fit_logistic(x: np.ndarray, y: np.ndarray, l2: float = 1e-3, max_iter: int = 100) -> np.ndarray:
    """(θ, φ) maximising Σ y log p + (1 − y) log(1 − p) − l2/2 ‖β‖², p = σ(θ + φ x), by Newton steps."""
    design = np.stack([np.ones_like(x), x], axis=1)
    beta = np.zeros(2)
    for _ in range(max_iter):
        p = 1 / (1 + np.exp(-(design @ beta)))
        grad = design.T @ (y - p) - l2 * beta
        hess = (design * (p * (1 - p))[:, None]).T @ design + l2 * np.eye(2)
        step = np.linalg.solve(hess, grad)
        beta += step
        if np.abs(step).max() < 1e-10:
            break
    return beta


def length_controlled_win_rate(
    preferences: ArrayLike,
    policy_lengths: ArrayLike,
    reference_lengths: ArrayLike,
    rng_seed: int,
    n_bootstrap: int = 1000,
    *,
    confidence: float = 0.95,
    l2: float = 1e-3,
) -> LCWinRate:
    """LC win rate of per-item preferences P(policy ≻ reference) given both responses' lengths.

    Lengths in any unit (words, tokens), the same for both sides.
    """
    y = np.asarray(preferences, dtype=float)
    lp, lr = np.asarray(policy_lengths, dtype=float), np.asarray(reference_lengths, dtype=float)
    if y.ndim != 1 or y.size == 0 or y.shape != lp.shape or y.shape != lr.shape:
        raise ValueError(
            f"need three non-empty 1-D arrays of equal length, got {y.shape}, {lp.shape}, {lr.shape}"
        )
    if not (np.isfinite(y).all() and ((y >= 0) & (y <= 1)).all()):
        raise ValueError("preferences must be probabilities in [0, 1] (1 = policy better, 0.5 = tie)")
    if n_bootstrap < 1 or not 0 < confidence < 1:
        raise ValueError(f"need n_bootstrap >= 1 and 0 < confidence < 1, got {n_bootstrap}, {confidence}")
    delta = lp - lr
    scale = float(delta.std()) or 1.0  # equal lengths everywhere: the length term is zero anyway
    x = np.tanh(delta / scale)
    theta, phi = fit_logistic(x, y, l2)

    rng = np.random.default_rng(rng_seed)
    boot = np.empty(n_bootstrap)
    for b in range(n_bootstrap):
        idx = rng.integers(0, y.size, y.size)
        boot[b] = 1 / (1 + np.exp(-fit_logistic(x[idx], y[idx], l2)[0]))
    alpha = (1 - confidence) / 2
    ci_low, ci_high = np.quantile(boot, [alpha, 1 - alpha])
    return LCWinRate(
        lc_win_rate=float(1 / (1 + np.exp(-theta))),
        win_rate=float(y.mean()),
        ci_low=float(ci_low),
        ci_high=float(ci_high),
        intercept=float(theta),
        length_coef=float(phi),
        length_scale=scale,
        n=int(y.size),
        n_bootstrap=n_bootstrap,
        confidence=confidence,
    )
