"""Rounds studies end to end on the quick world: schedules, boundary score, shared stages, report."""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd
import pytest
import yaml

from prefshift.stages import read_events
from prefshift.study.config import load_config
from prefshift.study.run import run_study


def rounds_config(world: Path, out: Path, **over) -> Path:
    cfg = {
        "name": "rounds-tiny",
        "type": "rounds",
        "world": {"dir": str(world)},
        "objectives": [{"name": "dpo", "grid": {"beta": [0.1]}, "learning_rate": [1e-4]}],
        "rounds": {
            "n_rounds": 2,
            "schedules": [["static", "on_policy"], ["static", "static"], "boundary"],
            "prompts_per_round": 48,
            "heldout_prompts": 8,
            "k": 3,
        },
        "preference_data": {"model_samples": 1},
        "evaluation": {"n_prompts": 16, "diversity_prompts": 2, "diversity_samples": 4, "bootstrap": 20, "sbert": False},
        "output_dir": str(out),
    }
    cfg.update(over)
    path = out.with_suffix(".yaml")
    path.write_text(yaml.safe_dump(cfg))
    return path


def test_rounds_study(quick_world, tmp_path) -> None:
    out = tmp_path / "rounds"
    run_study(rounds_config(quick_world, out))
    rounds = pd.read_parquet(out / "results" / "rounds.parquet")
    assert set(rounds.schedule) == {"static>on_policy", "static>static", "boundary"}
    assert len(rounds) == 3 * 2
    fixed = rounds[rounds.schedule == "static>on_policy"].sort_values("round")
    assert list(fixed.data) == ["static", "on_policy"]
    # the boundary schedule follows its own measurements: round r's data is BS(policy at r) >= 0.5
    for _, row in rounds[rounds.schedule == "boundary"].iterrows():
        expected = "on_policy" if row.boundary_score >= 0.5 else "static"
        assert row.data == expected or math.isnan(row.boundary_score)
    assert ((rounds.boundary_score >= 0) & (rounds.boundary_score <= 1)).all()
    assert (rounds.v_on + rounds.v_off + rounds.ties > 0).all()
    assert (rounds.bs_cost_epochs > 0).all()
    # gains chain: round 2's gain is measured from round 1's win rate
    r1, r2 = fixed.iloc[0], fixed.iloc[1]
    assert r2.gain == pytest.approx(r2.win_rate - r1.win_rate)
    # round 1 is shared by the two static-first schedules: one training stage, one BS measurement of SFT
    first = rounds[(rounds["round"] == 1) & rounds.schedule.isin(["static>on_policy", "static>static"])]
    assert first.stage.nunique() == 1
    names = [e["stage"] for e in read_events(out / "stages") if e["event"] == "miss"]
    assert sum(n.startswith("round-dpo") for n in names) == rounds.stage.nunique()
    starts = 1 + rounds.loc[rounds["round"] == 1, "stage"].nunique()  # SFT + every round-1 policy
    assert sum(n.startswith("boundary") for n in names) == starts
    html = (out / "report" / "index.html").read_text()
    assert 'id="rounds"' in html


def test_rounds_config_errors(tmp_path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump({"name": "x", "type": "rounds", "objectives": [{"name": "dpo"}],
                                   "rounds": {"n_rounds": 2, "schedules": [["static"]]}}))
    with pytest.raises(ValueError, match="has 1 entries, n_rounds is 2"):
        load_config(bad)
    bad.write_text(yaml.safe_dump({"name": "x", "type": "rounds", "objectives": [{"name": "dpo"}],
                                   "rounds": {"schedules": [["static", "offline"]]}}))
    with pytest.raises(ValueError, match="rounds.schedules"):
        load_config(bad)
    bad.write_text(yaml.safe_dump({"name": "x", "type": "rounds", "objectives": [{"name": "dpo"}],
                                   "strategies": ["mix_sft"]}))
    with pytest.raises(ValueError, match="use \\[source_only\\]"):
        load_config(bad)


def test_rounds_reject_online_objectives(tmp_path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump({"name": "x", "type": "rounds", "objectives": [{"name": "grpo"}]}))
    with pytest.raises(ValueError, match="rounds of preference data are for offline objectives"):
        load_config(bad)
