"""The study engine end to end on the quick world: results, report, caching, resume after SIGKILL."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import yaml

from prefshift.generation.engine import TransformersSampler
from prefshift.stages import read_events
from prefshift.study.config import load_config
from prefshift.study.run import run_study
from prefshift.world.build import load_split


def tiny_config(world: Path, out: Path, **over) -> Path:
    cfg = {
        "name": "tiny",
        "world": {"dir": str(world)},
        "objectives": [{"name": "dpo", "grid": {"beta": [0.1]}, "learning_rate": [5e-4]}],
        "strategies": ["source_only", "pseudo_label"],
        "baselines": ["sft_source"],
        "preference_data": {"n_prompts": 160},
        "pseudo_label": {"share": 0.1},
        "training": {"sft_epochs": 1},
        "evaluation": {"n_prompts": 24, "diversity_prompts": 3, "diversity_samples": 4, "bootstrap": 50, "sbert": False},
        "output_dir": str(out),
    }
    cfg.update(over)
    path = out.with_suffix(".yaml")
    path.write_text(yaml.safe_dump(cfg))
    return path


@pytest.fixture(scope="module")
def tiny_run(quick_world, tmp_path_factory):
    out = tmp_path_factory.mktemp("study") / "tiny"
    calls: list[int] = []
    original = TransformersSampler.generate

    def counting(self, prompts, params):
        calls.append(len(prompts))
        return original(self, prompts, params)

    mp = pytest.MonkeyPatch()
    mp.setattr(TransformersSampler, "generate", counting)

    def no_hf_generate(*a, **k):
        raise AssertionError("a stage sampled with HF generate instead of prefshift's engine")

    mp.setattr("transformers.generation.utils.GenerationMixin.generate", no_hf_generate)
    try:
        summary = run_study(tiny_config(quick_world, out))
    finally:
        mp.undo()
    return out, summary, calls


def test_study_writes_results_and_report(tiny_run) -> None:
    out, summary, _ = tiny_run
    cells = pd.read_parquet(out / "results" / "cells.parquet")
    assert set(cells.strategy) == {"source_only", "pseudo_label", "sft_source", "sft_pseudo"}
    assert set(cells.domain) == {"forum", "news"}
    for col in ("win_rate", "win_rate_ci_low", "win_rate_vs_sft", "win_rate_lc", "ead", "kl_seq", "length_mean"):
        assert col in cells and cells[col].notna().any(), col
    assert cells.win_rate_lc.between(0, 1).all() and (cells.win_rate_lc_ci_low <= cells.win_rate_lc_ci_high).all()
    assert {"wr_forum", "wr_news", "gap_news"} <= set(summary.columns)
    study = json.loads((out / "results" / "study.json").read_text())
    assert [p["id"] for p in study["phenomena"]] == ["1", "2", "3", "4", "5", "6"]
    assert study["timings"]["sampling_s"] > 0 and study["timings"]["training_s"] > 0
    html = (out / "report" / "index.html").read_text()
    assert 'id="summary"' in html and 'id="winrate"' in html
    samples = pd.read_parquet(out / "results" / "samples.parquet")
    assert set(samples.purpose) == {"eval", "diversity"}


def test_every_sampling_stage_goes_through_the_engine(tiny_run) -> None:
    # source pairs (SFT samples), evaluation (greedy) and diversity (K samples) all sampled, none via HF generate
    _, _, calls = tiny_run
    assert len(calls) >= 1 + 4 * 2 * 2


def test_sft_baseline_has_zero_kl_and_policy_moves(tiny_run) -> None:
    out, _, _ = tiny_run
    cells = pd.read_parquet(out / "results" / "cells.parquet")
    sft = cells[cells.cell_id == "sft_source"]
    assert (sft.kl_seq.abs() < 1e-3).all()  # the SFT model against itself
    tuned = cells[cells.objective == "dpo"]
    assert (tuned.kl_seq.abs() > 1e-3).all()


def test_rerun_recomputes_nothing(tiny_run) -> None:
    out, summary, _ = tiny_run
    before = len(read_events(out / "stages"))
    again = run_study(tiny_config(Path(load_config(out.with_suffix(".yaml")).world.dir), out))
    events = read_events(out / "stages")[before:]
    assert events and all(e["event"] == "hit" for e in events if e["stage"] != "reference-logps")
    pd.testing.assert_frame_equal(summary, again)


def test_bad_config_names_the_field(tmp_path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump({"name": "x", "objectives": [{"name": "dpoo"}], "strategis": ["source_only"]}))
    with pytest.raises(ValueError) as err:
        load_config(path)
    msg = str(err.value)
    assert "objectives.0.name" in msg and "unknown objective 'dpoo'" in msg and "'dpo'" in msg
    assert "strategis" in msg


def test_killed_study_resumes_without_recomputing(quick_world, tmp_path) -> None:
    reference = run_study(tiny_config(quick_world, tmp_path / "clean"))
    cfg = tiny_config(quick_world, tmp_path / "killed")
    stages = tmp_path / "killed" / "stages"
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "prefshift.cli", "run", str(cfg)], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 600
    while time.time() < deadline:
        done = [e for e in read_events(stages) if e["event"] == "miss" and e["stage"].startswith("pref-")]
        if done:
            break
        time.sleep(0.2)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    finished = {e["stage"] for e in read_events(stages) if e["event"] == "miss"}
    assert any(s.startswith("pref-") for s in finished)
    n = len(read_events(stages))
    resumed = run_study(cfg)
    after = read_events(stages)[n:]
    recomputed = {e["stage"] for e in after if e["event"] == "miss"}
    assert not (recomputed & finished), f"recomputed finished stages: {recomputed & finished}"
    assert {e["stage"] for e in after if e["event"] == "hit"} >= finished
    pd.testing.assert_frame_equal(reference, resumed)


def test_grid_computes_reference_once_and_answers_robustness(quick_world, tmp_path) -> None:
    out = tmp_path / "grid"
    grid = [
        {"name": "dpo", "grid": {"beta": [0.1, 0.5]}, "learning_rate": [1e-4, 3e-4]},
        {"name": "ipo", "grid": {"beta": [0.1, 0.5]}, "learning_rate": [1e-4]},
    ]
    run_study(
        tiny_config(
            quick_world,
            out,
            objectives=grid,
            strategies=["source_only"],
            preference_data={"n_prompts": 64},
            evaluation={"n_prompts": 8, "diversity_prompts": 0, "bootstrap": 10, "sbert": False},
        )
    )
    timings = json.loads((out / "results" / "study.json").read_text())["timings"]
    # six cells, one SFT model, one pair set: one reference pass, five cache hits
    assert timings["reference_logps_computed"] == 1 and timings["reference_logps_reused"] == 5
    robustness = pd.read_csv(out / "report" / "robustness.csv").set_index("objective")
    assert robustness.loc["dpo", "n_settings"] == 4 and robustness.loc["ipo", "n_settings"] == 2
    assert "Least likely to hurt without tuning: source_only + " in (out / "report" / "summary.md").read_text()


def test_multi_target_sequential_sft(quick_world, tmp_path) -> None:
    """Two targets adapt together (interleaved train data); sequential SFT chains target → source."""
    from prefshift.study.data import interleave

    assert [r["i"] for r in interleave([[{"i": 0}, {"i": 2}], [{"i": 1}]])] == [0, 1, 2]
    out = tmp_path / "multi"
    run_study(
        tiny_config(
            quick_world,
            out,
            targets=["news", "email"],
            strategies=["sequential_sft"],
            baselines=["sft_source", "sft_target"],
            preference_data={"n_prompts": 48},
            evaluation={"n_prompts": 8, "diversity_prompts": 0, "bootstrap": 10, "sbert": False},
        )
    )
    cells = pd.read_parquet(out / "results" / "cells.parquet")
    assert set(cells.domain) == {"forum", "news", "email"}
    assert set(cells.strategy) == {"sequential_sft", "sft_sequential", "sft_source", "sft_target"}
    stages = out / "stages"
    (seq,) = [json.loads((d / "manifest.json").read_text()) for d in stages.glob("sft_sequential-*")]
    (tgt,) = list(stages.glob("sft_target-*"))
    assert seq["config"]["model"] == str(tgt / "model")  # the second SFT stage starts from target SFT
    assert seq["config"]["rows"] == len(load_split(quick_world, "forum", "train"))


def test_ray_executor_gives_the_local_table(quick_world, tmp_path) -> None:
    """Grid cells and evaluations on a local Ray cluster (2 CPU workers): the same table as in-process."""
    import torch

    pytest.importorskip("ray")
    grid = [{"name": "dpo", "grid": {"beta": [0.1, 0.5]}, "learning_rate": [1e-4]}]
    common = dict(
        objectives=grid,
        strategies=["source_only"],
        preference_data={"n_prompts": 48},
        evaluation={"n_prompts": 8, "diversity_prompts": 2, "diversity_samples": 3, "bootstrap": 10, "sbert": False},
    )
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # the Ray workers run one thread each: same arithmetic, same numbers
    try:
        run_study(tiny_config(quick_world, tmp_path / "local", **common))
    finally:
        torch.set_num_threads(threads)
    run_study(tiny_config(quick_world, tmp_path / "ray", execution={"backend": "ray", "num_cpus": 2}, **common))
    cols = ["cell_id", "domain", "win_rate", "gold_mean", "length_mean", "kl_seq", "ead"]
    local = pd.read_parquet(tmp_path / "local" / "results" / "cells.parquet")[cols]
    remote = pd.read_parquet(tmp_path / "ray" / "results" / "cells.parquet")[cols]
    pd.testing.assert_frame_equal(local, remote)
    events = read_events(tmp_path / "ray" / "stages")
    assert sum(e["stage"].startswith("pref-") and e["event"] == "miss" for e in events) == 2
    reference = read_events(tmp_path / "ray" / "stages" / "reference")
    assert [e["event"] for e in reference].count("miss") == 1  # the parallel cells shared one reference pass


def test_compile_sampling_reaches_the_engine(quick_world, tmp_path) -> None:
    """``execution.compile_sampling`` is what the study's samplers are built with (off by default)."""
    from prefshift.study.run import Study

    for flag in (False, True):
        over = {"execution": {"compile_sampling": True}} if flag else {}
        cfg = load_config(tiny_config(quick_world, tmp_path / f"c{flag}", **over))
        sampler = Study(cfg, tmp_path / f"c{flag}").sampler(quick_world / "sft")
        assert sampler._compile is flag
