"""Length-controlled win rate on synthetic judgements with known causes."""

from __future__ import annotations

import numpy as np
import pytest

from prefshift.evaluation.length_control import (
    fit_logistic,
    length_controlled_win_rate,
    preferences_from_outcomes,
)


def lengths(n: int, rng: np.random.Generator, longer_by: float) -> tuple[np.ndarray, np.ndarray]:
    ref = rng.integers(20, 80, n).astype(float)
    return ref + longer_by + rng.normal(0, 25, n), ref


def test_preference_driven_by_length_only_gives_lc_near_half() -> None:
    rng = np.random.default_rng(0)
    pol, ref = lengths(3000, rng, longer_by=30)
    delta = pol - ref
    p = 1 / (1 + np.exp(-3 * np.tanh(delta / delta.std())))
    y = (rng.random(p.size) < p).astype(float)
    lc = length_controlled_win_rate(y, pol, ref, rng_seed=0, n_bootstrap=200)
    assert lc.win_rate > 0.75
    assert abs(lc.lc_win_rate - 0.5) < 0.04
    assert lc.ci_low < 0.5 < lc.ci_high
    assert 2.5 < lc.length_coef < 3.5  # recovers the simulated φ = 3


def test_preference_driven_by_quality_only_gives_lc_near_raw() -> None:
    rng = np.random.default_rng(1)
    pol, ref = lengths(3000, rng, longer_by=30)
    y = (rng.random(pol.size) < 0.7).astype(float)  # independent of length
    lc = length_controlled_win_rate(y, pol, ref, rng_seed=0, n_bootstrap=200)
    assert abs(lc.lc_win_rate - lc.win_rate) < 0.03
    assert lc.ci_low < lc.lc_win_rate < lc.ci_high and lc.ci_high - lc.ci_low < 0.1


def test_soft_preferences_and_outcomes() -> None:
    prefs = preferences_from_outcomes([1, 0, -1, 1])
    assert prefs.tolist() == [1.0, 0.5, 0.0, 1.0]
    equal = np.full(4, 10.0)
    lc = length_controlled_win_rate(prefs, equal, equal, rng_seed=0, n_bootstrap=50)
    assert lc.win_rate == pytest.approx(0.625) and lc.lc_win_rate == pytest.approx(0.625, abs=1e-3)
    assert lc.length_coef == pytest.approx(0.0, abs=1e-6)


def test_all_wins_stays_finite_and_is_reproducible() -> None:
    pol, ref = np.arange(10.0) + 5, np.arange(10.0)
    a = length_controlled_win_rate(np.ones(10), pol, ref, rng_seed=3, n_bootstrap=50)
    b = length_controlled_win_rate(np.ones(10), pol, ref, rng_seed=3, n_bootstrap=50)
    assert a == b and a.lc_win_rate > 0.9 and np.isfinite(a.intercept)


def test_fit_matches_a_known_logistic_model() -> None:
    rng = np.random.default_rng(2)
    x = rng.uniform(-1, 1, 20000)
    y = (rng.random(x.size) < 1 / (1 + np.exp(-(0.4 - 1.5 * x)))).astype(float)
    theta, phi = fit_logistic(x, y)
    assert theta == pytest.approx(0.4, abs=0.06) and phi == pytest.approx(-1.5, abs=0.1)


def test_errors() -> None:
    with pytest.raises(ValueError, match="equal length"):
        length_controlled_win_rate([1.0], [1.0, 2.0], [1.0], rng_seed=0)
    with pytest.raises(ValueError, match=r"probabilities in \[0, 1\]"):
        length_controlled_win_rate([2.0], [1.0], [1.0], rng_seed=0)
    with pytest.raises(ValueError, match="outcomes"):
        preferences_from_outcomes([2])
