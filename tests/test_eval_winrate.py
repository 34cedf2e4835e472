"""Win rate: hand-computed counts, the bootstrap CI, and the order randomisation of pairwise judges."""

from __future__ import annotations

import math

import numpy as np
import pytest

from prefshift.evaluation import judge_pairwise, win_rate, win_rate_from_outcomes


def test_counts_and_rates_by_hand() -> None:
    # diffs: +1 (win), 0 (tie), -1 (loss), +1 (win), -1e-12 (tie: within tol)
    wr = win_rate([1, 2, 3, 4, 5], [0, 2, 4, 3, 5 + 1e-12], rng_seed=0)
    assert (wr.wins, wr.ties, wr.losses, wr.n) == (2, 2, 1, 5)
    assert wr.win_rate == pytest.approx(2 / 3)
    assert wr.win_rate_ties_half == pytest.approx((2 + 2 / 2) / 5)
    assert wr.ci_low <= wr.win_rate <= wr.ci_high


def test_tol_decides_ties() -> None:
    wr = win_rate([1.0, 1.0], [0.95, 1.05], rng_seed=0, tol=0.1)
    assert (wr.wins, wr.ties, wr.losses) == (0, 2, 0)
    assert math.isnan(wr.win_rate)  # no decisive item
    assert math.isnan(wr.ci_low) and math.isnan(wr.ci_high)
    assert wr.win_rate_ties_half == 0.5


def test_all_wins_gives_degenerate_ci() -> None:
    wr = win_rate([1, 1, 1], [0, 0, 0], rng_seed=0)
    assert (wr.win_rate, wr.ci_low, wr.ci_high) == (1.0, 1.0, 1.0)


def test_bootstrap_ci_matches_normal_approximation_and_is_seeded() -> None:
    # 240 wins, 40 ties, 160 losses: win rate 0.6 over 400 decisive items.
    outcomes = np.array([1] * 240 + [0] * 40 + [-1] * 160)
    wr = win_rate_from_outcomes(outcomes, rng_seed=1, n_bootstrap=4000)
    assert wr.win_rate == pytest.approx(0.6)
    # Resampling all 440 items makes the decisive count random too; the CI is still close to the
    # binomial one, 0.6 ± 1.96 · sqrt(0.6 · 0.4 / 400).
    half_width = 1.96 * math.sqrt(0.6 * 0.4 / 400)
    assert wr.ci_low == pytest.approx(0.6 - half_width, abs=0.01)
    assert wr.ci_high == pytest.approx(0.6 + half_width, abs=0.01)
    again = win_rate_from_outcomes(outcomes, rng_seed=1, n_bootstrap=4000)
    assert (again.ci_low, again.ci_high) == (wr.ci_low, wr.ci_high)


def test_bootstrap_matches_resampling_item_indices() -> None:
    # The multinomial shortcut has the same distribution as resampling items with replacement.
    outcomes = np.array([1] * 7 + [0] * 5 + [-1] * 8)
    rng = np.random.default_rng(123)
    idx = rng.integers(0, outcomes.size, size=(20000, outcomes.size))
    res = outcomes[idx]
    wins, losses = (res == 1).sum(1), (res == -1).sum(1)
    direct = np.quantile(wins / (wins + losses), [0.025, 0.975])
    wr = win_rate_from_outcomes(outcomes, rng_seed=0, n_bootstrap=20000)
    assert (wr.ci_low, wr.ci_high) == pytest.approx(tuple(direct), abs=0.02)


def test_invalid_inputs() -> None:
    with pytest.raises(ValueError):
        win_rate([1, 2], [1], rng_seed=0)
    with pytest.raises(ValueError):
        win_rate([], [], rng_seed=0)
    with pytest.raises(ValueError):
        win_rate([float("nan")], [0.0], rng_seed=0)
    with pytest.raises(ValueError):
        win_rate_from_outcomes([2, 1], rng_seed=0)


def _items(n: int) -> list[tuple[str, str, str]]:
    return [(f"prompt {i}", f"good answer {i}", f"bad answer {i}") for i in range(n)]


def test_position_biased_judge_gives_about_half() -> None:
    calls: list[tuple[str, str]] = []

    def always_first(prompt: str, first: str, second: str) -> str:
        calls.append((first, second))
        return "first"

    outcomes = judge_pairwise(_items(2000), always_first, seed=0)
    assert set(np.unique(outcomes)) == {-1, 1}
    assert abs((outcomes == 1).mean() - 0.5) < 0.05  # 0.5 ± 4.5 binomial SDs
    # A win is exactly an item where the policy's response was shown first.
    shown_first = np.array([first.startswith("good") for first, _ in calls])
    assert np.array_equal(outcomes == 1, shown_first)
    wr = win_rate_from_outcomes(outcomes, rng_seed=0)
    assert wr.ci_low < 0.5 < wr.ci_high


def test_correct_judge_gives_all_wins_whatever_the_order() -> None:
    def correct(prompt: str, first: str, second: str) -> str:
        assert {first.split()[-1], second.split()[-1]} == {prompt.split()[-1]}  # same item's pair
        return "first" if first.startswith("good") else "second"

    assert (judge_pairwise(_items(200), correct, seed=3) == 1).all()

    def contrarian(prompt: str, first: str, second: str) -> str:
        return "second" if first.startswith("good") else "first"

    assert (judge_pairwise(_items(200), contrarian, seed=3) == -1).all()
    assert (judge_pairwise(_items(5), lambda p, a, b: "tie", seed=3) == 0).all()


def test_order_is_seeded() -> None:
    def always_first(prompt: str, first: str, second: str) -> str:
        return "first"

    a = judge_pairwise(_items(100), always_first, seed=7)
    assert np.array_equal(a, judge_pairwise(_items(100), always_first, seed=7))
    assert not np.array_equal(a, judge_pairwise(_items(100), always_first, seed=8))


def test_bad_verdict_raises() -> None:
    with pytest.raises(ValueError, match="judge_fn must return"):
        judge_pairwise(_items(3), lambda p, a, b: "A", seed=0)
