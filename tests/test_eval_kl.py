"""KL estimates: hand-computed summaries and standard errors, and agreement with an exactly enumerable
KL on a 5-token vocabulary."""

from __future__ import annotations

import math

import numpy as np
import pytest

from prefshift.evaluation import kl_estimate, kl_estimate_from_tokens


def test_summaries_and_standard_error_by_hand() -> None:
    est = kl_estimate([1.0, 2.0, 3.0, 4.0], [0.0, 0.0, 0.0, 0.0], num_tokens=[1, 1, 2, 4])
    assert est.kl_per_sequence == pytest.approx(2.5)
    # sample SD of (1, 2, 3, 4) is sqrt(5/3); SE = SD / sqrt(4)
    assert est.kl_per_sequence_se == pytest.approx(math.sqrt(5 / 3) / 2)
    assert est.kl_per_token == pytest.approx(10 / 8)
    assert est.kl_per_token_mean == pytest.approx((1 + 2 + 1.5 + 1) / 4)
    assert (est.n, est.estimator) == (4, "k1")
    assert math.isnan(kl_estimate([1.0], [0.0], [3]).kl_per_sequence_se)


def test_cluster_robust_standard_error_by_hand() -> None:
    # Prompts {0: d = 1, 2}, {1: d = 3, 4}: equal sizes, so the SE is that of the prompt means
    # (1.5, 3.5): SD sqrt(2) / sqrt(2) = 1.
    est = kl_estimate([1.0, 2.0, 3.0, 4.0], [0.0] * 4, [1] * 4, groups=["p", "p", "q", "q"])
    assert est.kl_per_sequence_se == pytest.approx(1.0)
    # Unequal sizes: G/(G-1) · Σ_g (Σ_{i∈g} (d_i − d̄))² / n², d̄ = 2.5, group sums −1.5 and +1.5.
    est = kl_estimate([1.0, 2.0, 3.0, 4.0], [0.0] * 4, [1] * 4, groups=[0, 1, 1, 1])
    assert est.kl_per_sequence_se == pytest.approx(math.sqrt(2 * (1.5**2 + 1.5**2)) / 4)
    assert math.isnan(kl_estimate([1.0, 2.0], [0.0] * 2, [1] * 2, groups=[0, 0]).kl_per_sequence_se)


def test_token_estimators() -> None:
    pol = [np.log([0.5, 0.25]), np.log([0.9])]
    ref = [np.log([0.25, 0.25]), np.log([0.3])]
    k1 = kl_estimate_from_tokens(pol, ref)
    summed = kl_estimate([p.sum() for p in pol], [r.sum() for r in ref], [2, 1])
    for field in ("kl_per_sequence", "kl_per_sequence_se", "kl_per_token", "kl_per_token_mean"):
        assert getattr(k1, field) == pytest.approx(getattr(summed, field))
    k3 = kl_estimate_from_tokens(pol, ref, estimator="k3")
    r = [math.log(2), 0.0, math.log(3)]
    per_token = [math.exp(-x) - 1 + x for x in r]
    assert k3.kl_per_sequence == pytest.approx((per_token[0] + per_token[1] + per_token[2]) / 2)
    assert k3.kl_per_token == pytest.approx(sum(per_token) / 3)
    assert k3.estimator == "k3"


def test_matches_exact_kl_on_enumerable_distributions() -> None:
    # Policy π and reference over 5 tokens; a response is 1 or 2 tokens drawn i.i.d. from π, its
    # length drawn with the same law under both models (so the length term cancels and the sequence
    # KL is E[L] · KL_token).
    pi = np.array([0.4, 0.3, 0.15, 0.1, 0.05])
    ref = np.array([0.1, 0.2, 0.3, 0.2, 0.2])
    kl_token = float((pi * np.log(pi / ref)).sum())
    exact = 1.5 * kl_token

    rng = np.random.default_rng(0)
    n = 20000
    lengths = rng.integers(1, 3, size=n)
    tokens = [rng.choice(5, size=length, p=pi) for length in lengths]
    pol_logps = [np.log(pi[t]) for t in tokens]
    ref_logps = [np.log(ref[t]) for t in tokens]

    k1 = kl_estimate([p.sum() for p in pol_logps], [r.sum() for r in ref_logps], lengths)
    k3 = kl_estimate_from_tokens(pol_logps, ref_logps, estimator="k3")
    for est in (k1, k3):
        assert abs(est.kl_per_sequence - exact) < 3 * est.kl_per_sequence_se
        assert est.kl_per_sequence_se < 0.05 * exact  # the check above is not vacuous
        assert est.kl_per_token == pytest.approx(kl_token, rel=0.05)
        assert est.kl_per_token_mean == pytest.approx(kl_token, rel=0.05)

    # The SE formula is right: across independent replications, the estimates scatter by about SE.
    replicate_means = []
    for seed in range(1, 201):
        r = np.random.default_rng(seed)
        t = r.choice(5, size=200, p=pi)
        replicate_means.append(np.log(pi[t] / ref[t]).mean())
    se = kl_estimate(np.log(pi[t]), np.log(ref[t]), np.ones(200)).kl_per_sequence_se
    assert np.std(replicate_means, ddof=1) == pytest.approx(se, rel=0.2)


def test_invalid_inputs() -> None:
    with pytest.raises(ValueError):
        kl_estimate([1.0, 2.0], [0.0], [1, 1])
    with pytest.raises(ValueError):
        kl_estimate([1.0], [0.0], [0])
    with pytest.raises(ValueError):
        kl_estimate([], [], [])
    with pytest.raises(ValueError):
        kl_estimate([float("-inf")], [0.0], [1])
    with pytest.raises(ValueError):
        kl_estimate_from_tokens([np.zeros(2)], [np.zeros(3)])
    with pytest.raises(ValueError):
        kl_estimate_from_tokens([np.zeros(2)], [np.zeros(2)], estimator="k2")  # type: ignore[arg-type]
