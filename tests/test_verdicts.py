import numpy as np
import pandas as pd
import pytest

from prefshift.study.verdicts import bootstrap_effect, prompt_outcomes, verdict


def _samples(golds: dict[str, list[float]], ref: list[float], domain: str = "forum") -> pd.DataFrame:
    rows = []
    for cell, gs in golds.items():
        for i, (g, r) in enumerate(zip(gs, ref, strict=True)):
            rows.append({"cell_id": cell, "domain": domain, "prompt_id": f"p{i}", "gold": g,
                         "reference_gold": r, "purpose": "eval"})
    return pd.DataFrame(rows)


def test_outcomes_win_tie_loss() -> None:
    out = prompt_outcomes(_samples({"a": [1.0, 0.5, 0.0]}, [0.5, 0.5, 0.5]))
    assert out["forum"].loc["a"].tolist() == [1.0, 0.5, 0.0]
    assert prompt_outcomes(pd.DataFrame({"purpose": ["eval"]})) == {}


def test_clear_effect_holds_and_no_effect_is_noise() -> None:
    rng = np.random.default_rng(0)
    ref = [0.0] * 200
    better = list(rng.choice([1.0, -1.0], size=200, p=[0.8, 0.2]))
    worse = list(rng.choice([1.0, -1.0], size=200, p=[0.4, 0.6]))
    out = prompt_outcomes(_samples({"tuned": better, "sft": worse}, ref))
    est, lo, hi = bootstrap_effect(out, lambda wr: wr(["tuned"], "forum") - wr(["sft"], "forum"), n_boot=300)
    assert est == pytest.approx(np.mean(np.array(better) > 0) - np.mean(np.array(worse) > 0))
    assert lo > 0 and verdict(lo, hi) == "holds"
    est, lo, hi = bootstrap_effect(out, lambda wr: wr(["sft"], "forum") - wr(["tuned"], "forum"), n_boot=300)
    assert verdict(lo, hi) == "does not hold"
    same = prompt_outcomes(_samples({"x": better, "y": list(better)}, ref))
    est, lo, hi = bootstrap_effect(same, lambda wr: wr(["x"], "forum") - wr(["y"], "forum"), n_boot=100)
    assert est == 0 and lo == 0 and hi == 0 and verdict(lo, hi) == "within noise"


def test_paired_resampling_keeps_correlation() -> None:
    # two cells that differ on exactly 10 of 100 prompts: the paired interval is narrow and positive,
    # although each cell's own win rate (≈0.5) is uncertain by ±0.1
    rng = np.random.default_rng(1)
    base = list(rng.choice([1.0, -1.0], size=100))
    improved = list(base)
    flipped = [i for i, v in enumerate(base) if v < 0][:10]
    for i in flipped:
        improved[i] = 1.0
    out = prompt_outcomes(_samples({"new": improved, "old": base}, [0.0] * 100))
    est, lo, hi = bootstrap_effect(out, lambda wr: wr(["new"], "forum") - wr(["old"], "forum"), n_boot=500)
    assert est == pytest.approx(0.10)
    assert 0 < lo < est < hi < 0.2
