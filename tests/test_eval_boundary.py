import math

import pytest

from prefshift.evaluation.boundary import boundary_score


def test_counts_and_score_by_hand() -> None:
    # 3 on-policy wins, 1 static win, 2 ties -> BS = 1 / (1 + 3)
    bs = boundary_score([1, 1, 0.9, 0.0, 0.5, 0.5])
    assert (bs.v_on, bs.v_off, bs.ties) == (3, 1, 2)
    assert bs.score == pytest.approx(0.25)
    assert bs.next_data == "static"  # BS < 0.5: still injecting preferences


def test_static_winning_means_on_policy_next() -> None:
    bs = boundary_score([0.0, 0.2, 0.4, 1.0])
    assert bs.score == pytest.approx(0.75)
    assert bs.next_data == "on_policy"
    assert boundary_score([0.0, 1.0]).next_data == "on_policy"  # exactly 0.5 switches


def test_tie_tolerance_and_all_ties() -> None:
    bs = boundary_score([0.55, 0.45, 0.9], tie_tolerance=0.1)
    assert (bs.v_on, bs.v_off, bs.ties) == (1, 0, 2)
    tied = boundary_score([0.5, 0.5])
    assert math.isnan(tied.score) and tied.next_data == "static"


@pytest.mark.parametrize("bad", [[], [1.5], [-0.1]])
def test_invalid(bad) -> None:
    with pytest.raises(ValueError):
        boundary_score(bad)
