"""The boundary score between the preference-injection and preference-fine-tuning stages.

After "Is On-Policy Data always the Best Choice for Direct Preference Optimization-based LM
Alignment?" (arXiv:2508.10530): on held-out prompts, the policy's own (on-policy) candidates are
compared with the static dataset's candidates by a pairwise judge. With V_on and V_off the wins of
each side (ties count for neither),

    BS = V_off / (V_off + V_on)

and the next round uses static data while BS < 0.5 (the policy is still in the injection stage,
where diverse off-policy data helps), on-policy data otherwise.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Literal


@dataclass(frozen=True)
class BoundaryScore:
    """Win counts of one measurement and the score and decision they give."""

    v_on: int
    v_off: int
    ties: int
    score: float  # NaN when every comparison tied: no evidence either way

    @property
    def next_data(self) -> Literal["static", "on_policy"]:
        """The data of the next round. All ties (NaN score) keep static data: nothing says the
        policy left the injection stage."""
        return "on_policy" if self.score >= 0.5 else "static"

    def as_dict(self) -> dict[str, float | int | str]:
        return {**asdict(self), "next_data": self.next_data}


def boundary_score(p_on_better: Sequence[float], tie_tolerance: float = 0.0) -> BoundaryScore:
    """BS from one judgement per (on-policy, static) comparison.

    Args:
        p_on_better: per comparison, the judge's probability (or 0/1/0.5 verdict) that the
            on-policy candidate is better than the static one.
        tie_tolerance: judgements within ``0.5 ± tie_tolerance`` are ties (neither side wins).
    """
    if len(p_on_better) == 0:
        raise ValueError("boundary_score needs at least one comparison")
    if tie_tolerance < 0 or tie_tolerance >= 0.5:
        raise ValueError(f"tie_tolerance must be in [0, 0.5), got {tie_tolerance}")
    v_on = v_off = ties = 0
    for p in p_on_better:
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"judgements must be probabilities in [0, 1], got {p}")
        if p > 0.5 + tie_tolerance:
            v_on += 1
        elif p < 0.5 - tie_tolerance:
            v_off += 1
        else:
            ties += 1
    decided = v_on + v_off
    return BoundaryScore(v_on, v_off, ties, v_off / decided if decided else float("nan"))
