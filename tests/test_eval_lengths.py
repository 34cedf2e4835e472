"""Length statistics against hand-computed values."""

from __future__ import annotations

import math

import numpy as np
import pytest

from prefshift.evaluation import length_summary, word_counts


def test_length_summary_by_hand() -> None:
    lengths = np.arange(1, 11)
    finished = [True] * 7 + [False] * 3
    got = length_summary(lengths, finished=finished, max_new_tokens=9)
    assert got["mean"] == pytest.approx(5.5)
    assert got["median"] == pytest.approx(5.5)
    assert got["std"] == pytest.approx(math.sqrt(sum((x - 5.5) ** 2 for x in range(1, 11)) / 9))
    assert got["p10"] == pytest.approx(1.9)  # linear interpolation at rank 0.9
    assert got["p90"] == pytest.approx(9.1)
    assert got["n"] == 10
    assert got["capped_share"] == pytest.approx(0.3)  # the finished flags win over the cap


def test_capped_share_without_flags() -> None:
    assert length_summary([3, 9, 10, 10], max_new_tokens=10)["capped_share"] == pytest.approx(0.5)
    assert math.isnan(length_summary([3, 9])["capped_share"])
    assert math.isnan(length_summary([3])["std"])


def test_word_counts_and_validation() -> None:
    assert word_counts(["a b", "", "  c  d e "]).tolist() == [2, 0, 3]
    with pytest.raises(ValueError):
        length_summary([])
    with pytest.raises(ValueError):
        length_summary([1, 2], finished=[True])
