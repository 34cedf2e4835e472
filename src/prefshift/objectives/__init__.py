"""The objective zoo: every alignment loss as a pure function over per-sequence log-prob statistics.

Look objectives up by name with `get_objective`; each module documents its formula, paper and when to
use it. `REGISTRY` maps names to `Objective`s for code that iterates over all of them (grids, tests).
"""

from __future__ import annotations

import difflib

from prefshift.objectives.apo_down import APO_DOWN
from prefshift.objectives.apo_zero import APO_ZERO
from prefshift.objectives.base import HParam, LossOutput, Objective, PairedStats, UnpairedStats
from prefshift.objectives.bco_pair import BCO_PAIR
from prefshift.objectives.cpo import CPO
from prefshift.objectives.dpo import DPO
from prefshift.objectives.exo_pair import EXO_PAIR
from prefshift.objectives.hinge import HINGE
from prefshift.objectives.ipo import IPO
from prefshift.objectives.kto import KTO
from prefshift.objectives.ln_dpo import LN_DPO
from prefshift.objectives.nca_pair import NCA_PAIR
from prefshift.objectives.orpo import ORPO
from prefshift.objectives.robust_dpo import ROBUST_DPO
from prefshift.objectives.sft import SFT
from prefshift.objectives.simpo import SIMPO
from prefshift.objectives.slic_hf import SLIC_HF
from prefshift.objectives.sppo_hard import SPPO_HARD

__all__ = [
    "REGISTRY",
    "HParam",
    "LossOutput",
    "Objective",
    "PairedStats",
    "UnpairedStats",
    "get_objective",
    "list_objectives",
]

REGISTRY: dict[str, Objective] = {
    objective.name: objective
    for objective in (
        SFT,
        DPO,
        IPO,
        HINGE,
        SLIC_HF,
        KTO,
        ORPO,
        SIMPO,
        CPO,
        LN_DPO,
        ROBUST_DPO,
        BCO_PAIR,
        NCA_PAIR,
        APO_ZERO,
        APO_DOWN,
        SPPO_HARD,
        EXO_PAIR,
    )
}


def list_objectives() -> list[str]:
    """Registered objective names, sorted."""
    return sorted(REGISTRY)


def get_objective(name: str) -> Objective:
    """The objective registered as `name`; a typo gets the valid names and the closest match."""
    try:
        return REGISTRY[name]
    except KeyError:
        close = difflib.get_close_matches(name, REGISTRY, n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise ValueError(
            f"unknown objective {name!r}; valid: {', '.join(list_objectives())}.{hint}"
        ) from None
