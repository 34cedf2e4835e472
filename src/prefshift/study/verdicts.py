"""Confidence intervals for the phenomenon checks: a verdict must not rest on noise.

A check compares mean win rates of groups of cells (preference cells vs their SFT model, source vs
target, one strategy vs another). All cells are evaluated on the same test prompts of a domain, so
the comparison is paired by prompt: the bootstrap resamples each domain's prompts (independently per
domain, since source and target prompts are different sets) and recomputes the whole statistic, which
keeps the correlation between cells that answered the same prompts. A prompt's outcome is 1 for a win
against the reference, 0 for a loss and ½ for a tie (ties as half, so every prompt counts).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import pandas as pd

WinRate = Callable[[Sequence[str], str], float]
"""``wr(cell_ids, domain)``: mean over the cells of each cell's win rate on the (resampled) prompts."""


def prompt_outcomes(samples: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """Per domain, a cells × prompts frame of outcomes (1 win, ½ tie, 0 loss) of the greedy outputs."""
    if "reference_gold" not in samples:
        return {}
    ev = samples[samples.purpose == "eval"].drop_duplicates(["cell_id", "domain", "prompt_id"])
    outcome = (np.sign(ev["gold"] - ev["reference_gold"]) + 1) / 2
    frame = ev.assign(outcome=outcome)
    return {
        domain: group.pivot(index="cell_id", columns="prompt_id", values="outcome")
        for domain, group in frame.groupby("domain")
    }


def bootstrap_effect(
    outcomes: dict[str, pd.DataFrame],
    stat: Callable[[WinRate], float],
    n_boot: int = 1000,
    seed: int = 0,
    level: float = 0.95,
) -> tuple[float, float, float]:
    """(estimate, low, high): ``stat`` on the observed prompts and its percentile bootstrap interval."""
    arrays = {d: (f.to_numpy(dtype=float), {c: i for i, c in enumerate(f.index)}) for d, f in outcomes.items()}

    def evaluate(columns: dict[str, np.ndarray]) -> float:
        def wr(cells: Sequence[str], domain: str) -> float:
            values, rows = arrays[domain]
            idx = [rows[c] for c in cells if c in rows]
            if not idx:
                return float("nan")
            return float(np.nanmean(values[np.ix_(idx, columns[domain])]))

        return stat(wr)

    everything = {d: np.arange(a.shape[1]) for d, (a, _) in arrays.items()}
    estimate = evaluate(everything)
    rng = np.random.default_rng(seed)
    draws = [
        evaluate({d: rng.integers(0, len(cols), len(cols)) for d, cols in everything.items()})
        for _ in range(n_boot)
    ]
    low, high = np.nanquantile(draws, [(1 - level) / 2, (1 + level) / 2])
    return estimate, float(low), float(high)


def verdict(low: float, high: float) -> str:
    """'holds' when the whole interval is on the predicted (positive) side, 'does not hold' when it is
    on the other side, 'within noise' when it contains zero."""
    if low > 0:
        return "holds"
    if high < 0:
        return "does not hold"
    return "within noise"
