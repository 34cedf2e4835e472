"""Report generator: tables against hand-computed gap/gain, CSV round trips, a self-contained HTML.

The fake run directories below mimic what the study engine writes (cells, samples, study.json and
optionally rounds); ``make_run_dir`` is also used by the browser test.
"""

from __future__ import annotations

import base64
import io
import json
import math
import re
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from prefshift.report import build_tables, load_results, to_markdown, write_report
from prefshift.report.tables import round_table

SOURCE = "forum"
STRATEGIES = {
    "base": ["base"],
    "sft": ["source_only", "mix_sft", "target_sft", "pseudo_label"],
    "dpo": ["source_only", "direct", "mix_sft", "target_sft", "pseudo_label"],
    "kto": ["source_only", "mix_sft", "pseudo_label"],
    "grpo": ["source_only", "mix_sft", "pseudo_label"],
}
GRIDS: dict[str, list[dict[str, float]]] = {
    "dpo": [{"beta": b, "learning_rate": 5e-5} for b in (0.05, 0.1, 0.5)],
    "grpo": [{"beta": 0.04, "learning_rate": lr} for lr in (1e-6, 3e-6)],
}
OPTIONAL = ("sbert", "nli", "rm_mean")


def metric_row(
    rng: np.random.Generator,
    objective: str,
    strategy: str,
    hparams: dict[str, Any],
    seed: int,
    domain: str,
    role: str,
    win_rate: float,
) -> dict[str, Any]:
    """One cells.parquet row; every metric but ``win_rate`` is random within its realistic range."""
    half = float(rng.uniform(0.02, 0.05))
    return {
        "cell_id": f"{objective}-{strategy}-{json.dumps(hparams, sort_keys=True)}-s{seed}",
        "objective": objective,
        "strategy": strategy,
        "hparams": json.dumps(hparams),
        "seed": seed,
        "domain": domain,
        "role": role,
        "win_rate": win_rate,
        "win_rate_ci_low": max(0.0, win_rate - half),
        "win_rate_ci_high": min(1.0, win_rate + half),
        "win_rate_ties_half": win_rate * 0.97,
        "win_rate_vs_sft": float(rng.uniform(0.3, 0.8)),
        "gold_mean": float(rng.normal(0.2, 0.5)),
        "rm_mean": float(rng.normal(0.0, 1.0)),
        "length_mean": float(rng.uniform(20, 80)),
        "length_median": float(rng.uniform(18, 75)),
        "kl_seq": float(rng.uniform(0.0, 25.0)) if objective != "base" else math.nan,
        "kl_seq_se": float(rng.uniform(0.1, 1.5)),
        "kl_tok": float(rng.uniform(0.0, 0.5)),
        "ead": float(rng.uniform(0.4, 0.9)),
        "sbert": float(rng.uniform(0.05, 0.5)),
        "distinct_1": float(rng.uniform(0.2, 0.6)),
        "distinct_2": float(rng.uniform(0.4, 0.9)),
        "self_bleu": float(rng.uniform(0.1, 0.7)),
        "nli": float(rng.uniform(0.5, 1.5)),
        "n_prompts": 64,
    }


def random_cells(
    rng: np.random.Generator, targets: Sequence[str], seeds: Sequence[int] = (0, 1)
) -> pd.DataFrame:
    """A full objective × strategy × grid × seed study with domain shift built into the win rates."""
    rows = []
    for objective, strategies in STRATEGIES.items():
        for strategy in strategies:
            for hparams in GRIDS.get(objective, [{"learning_rate": 1e-5}]):
                for seed in seeds:
                    source_wr = float(rng.uniform(0.5, 0.9))
                    rows.append(
                        metric_row(rng, objective, strategy, hparams, seed, SOURCE, "source", source_wr)
                    )
                    for target in targets:
                        target_wr = float(np.clip(source_wr - rng.uniform(-0.05, 0.35), 0.01, 0.99))
                        rows.append(
                            metric_row(rng, objective, strategy, hparams, seed, target, "target", target_wr)
                        )
    return pd.DataFrame(rows)


def samples_for(rng: np.random.Generator, cells: pd.DataFrame, n_prompts: int = 4) -> pd.DataFrame:
    """Eval samples (one per prompt) and diversity samples (three per prompt) for every cell × domain."""
    rows = []
    for cell_id, domain in cells[["cell_id", "domain"]].drop_duplicates().itertuples(index=False):
        for purpose, k in (("eval", 1), ("diversity", 3)):
            for prompt in range(n_prompts):
                for index in range(k):
                    length = int(rng.integers(5, 90))
                    rows.append(
                        {
                            "cell_id": cell_id,
                            "domain": domain,
                            "prompt_id": f"{domain}-{prompt}",
                            "sample_index": index,
                            "response": " ".join(["w"] * length),
                            "gold": float(rng.normal()),
                            "length": length,
                            "purpose": purpose,
                        }
                    )
    return pd.DataFrame(rows)


def rounds_frame(rng: np.random.Generator) -> pd.DataFrame:
    rows = []
    for schedule in ("static", "on_policy", "boundary"):
        win_rate = 0.5
        for round_ in range(1, 5):
            data = schedule if schedule != "boundary" else ("static" if round_ < 3 else "on_policy")
            gain = float(rng.uniform(-0.02, 0.08))
            win_rate += gain
            rows.append(
                {
                    "schedule": schedule,
                    "round": round_,
                    "data": data,
                    "win_rate": win_rate,
                    "gain": gain,
                    "boundary_score": float(rng.uniform(0.3, 0.7)) if schedule == "boundary" else math.nan,
                }
            )
    return pd.DataFrame(rows)


def study_json(targets: Sequence[str], phenomena: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    return {
        "name": "summarisation <forum→news> & co",
        "task": "summarisation",
        "source": SOURCE,
        "targets": list(targets),
        "judge": "gold",
        "precision": "bf16",
        "timings": {"sampling_s": 12.5, "training_s": 301.0, "total_s": 330.25},
        "reference_length": 42.0,
        "phenomena": phenomena
        if phenomena is not None
        else [
            {
                "id": "P2",
                "claim": "Offline objectives transfer worst",
                "holds": True,
                "evidence": "dpo gap 0.31 | <b>x</b>",
            },
            {
                "id": "P3",
                "claim": "GRPO is the most stable",
                "holds": False,
                "evidence": "grpo gap 0.12 vs kto 0.04",
            },
            {
                "id": "P6",
                "claim": "Pseudo-labelling collapses SBERT",
                "holds": None,
                "evidence": "sbert not measured",
            },
        ],
    }


def write_run_dir(
    run_dir: Path,
    cells: pd.DataFrame,
    study: dict[str, Any],
    samples: pd.DataFrame | None = None,
    rounds: pd.DataFrame | None = None,
) -> Path:
    results = run_dir / "results"
    results.mkdir(parents=True)
    cells.to_parquet(results / "cells.parquet")
    (results / "study.json").write_text(json.dumps(study))
    if samples is not None:
        samples.to_parquet(results / "samples.parquet")
    if rounds is not None:
        rounds.to_parquet(results / "rounds.parquet")
    return run_dir


def make_run_dir(
    run_dir: Path,
    targets: Sequence[str] = ("news",),
    seeds: Sequence[int] = (0, 1),
    rounds: bool = True,
    nan_optional: bool = False,
) -> Path:
    """A realistic random study run directory (the fixture generator the brief asks for)."""
    rng = np.random.default_rng(len(targets) + len(seeds))
    cells = random_cells(rng, targets, seeds)
    if nan_optional:
        cells[list(OPTIONAL)] = math.nan
    return write_run_dir(
        run_dir,
        cells,
        study_json(targets),
        samples=samples_for(rng, cells),
        rounds=rounds_frame(rng) if rounds else None,
    )


def hand_cells(targets: Sequence[str]) -> pd.DataFrame:
    """Tiny study whose summary numbers are worked out by hand in the tests below.

    dpo/source_only has a two-setting grid: beta=0.1 wins on source (mean 0.85 over seeds) and is the
    selected setting even though beta=0.5 is far better on target (0.90) — selection is target-blind.
    """
    rng = np.random.default_rng(1)
    spec = [
        # objective, strategy, hparams, seed, {domain: win rate}
        ("dpo", "source_only", {"beta": 0.1}, 0, {SOURCE: 0.80, "news": 0.50, "legal": 0.40}),
        ("dpo", "source_only", {"beta": 0.1}, 1, {SOURCE: 0.90, "news": 0.60, "legal": 0.50}),
        ("dpo", "source_only", {"beta": 0.5}, 0, {SOURCE: 0.60, "news": 0.90, "legal": 0.90}),
        ("dpo", "pseudo_label", {"beta": 0.1}, 0, {SOURCE: 0.70, "news": 0.65, "legal": 0.70}),
        ("dpo", "pseudo_label", {"beta": 0.1}, 1, {SOURCE: 0.70, "news": 0.65, "legal": 0.60}),
        ("grpo", "source_only", {"beta": 0.04}, 0, {SOURCE: 0.50, "news": 0.45, "legal": 0.52}),
        ("grpo", "mix_sft", {"beta": 0.04}, 0, {SOURCE: 0.55, "news": 0.58, "legal": 0.50}),
        ("base", "base", {}, 0, {SOURCE: 0.45, "news": 0.16, "legal": 0.20}),
    ]
    rows = []
    for objective, strategy, hparams, seed, win_rates in spec:
        for domain, win_rate in win_rates.items():
            if domain == SOURCE or domain in targets:
                role = "source" if domain == SOURCE else "target"
                rows.append(metric_row(rng, objective, strategy, hparams, seed, domain, role, win_rate))
    return pd.DataFrame(rows)


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return write_report(make_run_dir(tmp_path_factory.mktemp("run")))


def md_row(markdown: str, objective: str, strategy: str) -> list[str]:
    """The cells of the first Markdown table row for objective × strategy."""
    for line in markdown.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if cells[:2] == [objective, strategy]:
            return cells
    raise AssertionError(f"no row {objective} {strategy}")


def test_single_target_gap_and_gain_match_hand_computation(tmp_path: Path) -> None:
    run = write_run_dir(tmp_path / "run", hand_cells(["news"]), study_json(["news"], phenomena=[]))
    paths = write_report(run)
    summary = pd.read_csv(paths["summary.csv"]).set_index(["objective", "strategy"])
    expected = {
        # source, target, gap, gain
        ("dpo", "source_only"): (0.85, 0.55, 0.30, 0.0),
        ("dpo", "pseudo_label"): (0.70, 0.65, 0.05, 0.10),
        ("grpo", "source_only"): (0.50, 0.45, 0.05, 0.0),
        ("grpo", "mix_sft"): (0.55, 0.58, -0.03, 0.13),
        ("base", "base"): (0.45, 0.16, 0.29, math.nan),
    }
    for key, (source, target, gap, gain) in expected.items():
        row = summary.loc[key]
        np.testing.assert_allclose(
            [row["source_win_rate"], row["target_win_rate"], row["gap"], row["gain"]],
            [source, target, gap, gain],
            atol=1e-9,
        )
    assert json.loads(summary.loc[("dpo", "source_only"), "hparams"]) == {"beta": 0.1}
    assert summary.loc[("dpo", "source_only"), "n_seeds"] == 2

    markdown = paths["summary.md"].read_text()
    header = md_row(markdown, "objective", "strategy")
    row = dict(zip(header, md_row(markdown, "dpo", "pseudo_label"), strict=True))
    assert (row["source_win_rate"], row["target_win_rate"], row["gap"], row["gain"]) == (
        "0.700",
        "0.650",
        "0.050",
        "0.100",
    )
    row = dict(zip(header, md_row(markdown, "base", "base"), strict=True))
    assert (row["gap"], row["gain"]) == ("0.290", "n/a")
    assert "Best target win rate: pseudo_label + dpo (0.65, source 0.70, gap 0.05)" in markdown
    assert "Smallest generalisation gap: mix_sft + grpo (-0.03" in markdown
    assert "Largest adaptation gain over source-only: mix_sft + grpo (+0.13 target win rate)" in markdown
    assert "target-blind" in markdown
    # the untuned-user question, answered from the grid's worst setting (beta=0.1: target 0.55)
    assert "Least likely to hurt without tuning: source_only + dpo — its worst of 2 settings still reaches 0.55" in markdown

    robustness = pd.read_csv(paths["robustness.csv"]).set_index(["objective", "strategy"])
    assert list(robustness.index) == [("dpo", "source_only")]
    row = robustness.loc[("dpo", "source_only")]
    # per setting, seed-averaged: beta=0.1 -> source 0.85 / target 0.55; beta=0.5 -> 0.60 / 0.90
    np.testing.assert_allclose(
        [row["source_mean"], row["source_min"], row["source_best"], row["target_mean"], row["target_best"]],
        [0.725, 0.60, 0.85, 0.725, 0.90],
    )
    np.testing.assert_allclose(row["target_std"], np.std([0.55, 0.90], ddof=1))


def test_two_targets_have_per_target_columns(tmp_path: Path) -> None:
    targets = ["news", "legal"]
    run = write_run_dir(tmp_path / "run", hand_cells(targets), study_json(targets))
    paths = write_report(run)
    summary = pd.read_csv(paths["summary.csv"]).set_index(["objective", "strategy"])
    row = summary.loc[("dpo", "pseudo_label")]
    # legal: pseudo_label 0.65 (mean of 0.70, 0.60); source_only beta=0.1 0.45 -> gain 0.20, gap 0.05
    np.testing.assert_allclose(
        [row["target_win_rate[news]"], row["gap[news]"], row["gain[news]"]], [0.65, 0.05, 0.10], atol=1e-9
    )
    np.testing.assert_allclose(
        [row["target_win_rate[legal]"], row["gap[legal]"], row["gain[legal]"]], [0.65, 0.05, 0.20], atol=1e-9
    )
    assert "target_win_rate" not in summary.columns
    markdown = paths["summary.md"].read_text()
    assert "gap[legal]" in markdown and "gain[news]" in markdown
    assert (
        "Best mean target win rate over news, legal: pseudo_label + dpo (0.65 [news 0.65, legal 0.65]"
        in markdown
    )
    robustness = pd.read_csv(paths["robustness.csv"])
    assert {"target[news]_best", "target[legal]_best"} <= set(robustness.columns)


def test_csvs_parse_back(report: dict[str, Path]) -> None:
    run = report["index.html"].parent.parent
    tables = build_tables(load_results(run))
    for name, frame in [
        ("summary", tables.summary),
        ("robustness", tables.robustness),
        ("metrics", tables.means),
    ]:
        parsed = pd.read_csv(report[f"{name}.csv"], dtype={"hparams": str})
        pd.testing.assert_frame_equal(parsed, frame.reset_index(drop=True), check_dtype=False, atol=1e-12)
    phenomena = pd.read_csv(report["phenomena.csv"], keep_default_na=False)
    assert list(phenomena["result"]) == ["holds", "does not hold", "n/a"]
    rounds = pd.read_csv(report["rounds.csv"])
    assert list(rounds["round"]) == [1, 2, 3, 4]
    assert set(pd.read_csv(report["schedules.csv"])["schedule"]) == {"static", "on_policy", "boundary"}


def test_summary_row_per_objective_strategy(report: dict[str, Path]) -> None:
    summary = pd.read_csv(report["summary.csv"])
    expected = {(o, s) for o, strategies in STRATEGIES.items() for s in strategies}
    assert set(zip(summary["objective"], summary["strategy"], strict=True)) == expected
    assert len(summary) == len(expected)
    np.testing.assert_allclose(summary["gap"], summary["source_win_rate"] - summary["target_win_rate"])
    assert (summary["n_seeds"] == 2).all()


SECTIONS = (
    "summary",
    "phenomena",
    "winrate",
    "gap",
    "diversity",
    "kl",
    "length",
    "scores",
    "robustness",
    "provenance",
)


def test_html_is_self_contained_with_sections_and_images(report: dict[str, Path]) -> None:
    page = report["index.html"].read_text()
    for section in (*SECTIONS, "rounds"):
        assert f'<section id="{section}">' in page
    images = re.findall(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', page)
    # winrate, gap, diversity, kl, length, scores, two robustness heatmaps (dpo, grpo), rounds
    assert len(images) == 9
    for image in images:
        assert base64.b64decode(image)[:8] == b"\x89PNG\r\n\x1a\n"
    assert not re.search(r"(src|href)=\"(https?:)?//", page)
    assert "<script" not in page and "<link" not in page
    # text from the data is escaped
    assert "<b>x</b>" not in page and "&lt;b&gt;x&lt;/b&gt;" in page
    assert "&lt;forum→news&gt; &amp; co" in page
    lead = re.search(r'<p class="lead">(.*?)</p>', page).group(1)
    assert lead.startswith("Best target win rate: ") and "diversity on target: EAD" in lead
    assert "Phenomenon checks: 1 hold, 1 do not, 0 are within noise (95% interval contains zero), 1 could not be decided." in lead
    assert re.search(r"depends more on the (adaptation strategy|objective) than on the", lead)
    assert "bf16" in page and "330.250" in page


def test_no_stray_temporary_files(report: dict[str, Path]) -> None:
    folder = report["index.html"].parent
    assert sorted(p.name for p in folder.iterdir()) == sorted(report)


def test_all_nan_optional_metrics_single_seed_no_rounds(tmp_path: Path) -> None:
    run = make_run_dir(tmp_path / "run", seeds=(0,), rounds=False, nan_optional=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        paths = write_report(run)
    assert "rounds.csv" not in paths
    page = paths["index.html"].read_text()
    assert 'id="rounds"' not in page
    lead = re.search(r'<p class="lead">(.*?)</p>', page).group(1)
    assert "EAD" in lead and "SBERT" not in lead
    diversity = re.search(r'<section id="diversity">.*?</section>', page).group(0)
    headers = re.findall(r"<th>(.*?)</th>", diversity)
    assert "ead" in headers and "sbert" not in headers and "nli" not in headers
    summary = pd.read_csv(paths["summary.csv"])
    assert summary["target_sbert"].isna().all() and (summary["n_seeds"] == 1).all()


def test_round_table_hand_computed() -> None:
    rounds = pd.DataFrame(
        {
            "schedule": ["static", "on_policy", "boundary"] * 2,
            "round": [1, 1, 1, 2, 2, 2],
            "data": ["static", "on_policy", "static", "static", "on_policy", "on_policy"],
            "win_rate": [0.54, 0.52, 0.56, 0.54, 0.60, 0.62],
            "gain": [0.04, 0.02, 0.06, 0.0, 0.08, 0.06],
            "boundary_score": [math.nan, math.nan, 0.4, math.nan, math.nan, 0.6],
        }
    )
    table = round_table(rounds)
    np.testing.assert_allclose(table["static_gain"], [0.05, 0.0])
    np.testing.assert_allclose(table["on_policy_gain"], [0.02, 0.07])
    np.testing.assert_allclose(table["effectiveness_ratio"], [0.4, math.nan])  # static gain 0: no ratio
    np.testing.assert_allclose(table["boundary_score"], [0.4, 0.6])


def test_minimal_run_without_samples_or_grid(tmp_path: Path) -> None:
    rng = np.random.default_rng(4)
    rows = [
        metric_row(rng, o, "source_only", {}, 0, d, r, 0.5)
        for o in ("dpo", "kto")
        for d, r in ((SOURCE, "source"), ("news", "target"))
    ]
    run = tmp_path / "run"
    (run / "results").mkdir(parents=True)
    pd.DataFrame(rows).to_parquet(run / "results" / "cells.parquet")
    paths = write_report(run)
    page = paths["index.html"].read_text()
    for section in SECTIONS:
        assert f'<section id="{section}">' in page
    assert "no grid to summarise" in page and "No per-sample generations" in page
    assert "No phenomenon checks were recorded" in page
    assert pd.read_csv(paths["robustness.csv"]).empty


def test_to_markdown_escapes_and_formats() -> None:
    frame = pd.DataFrame(
        {"name": ["a|b", "c\nd"], "x": [0.12345, math.nan], "n": [3, 4], "tiny": [1e-5, 0.0]}
    )
    text = to_markdown(frame)
    assert text.splitlines() == [
        "| name | x | n | tiny |",
        "|:---|---:|---:|---:|",
        "| a\\|b | 0.123 | 3 | 1.00e-05 |",
        "| c d | n/a | 4 | 0.000 |",
    ]
    assert pd.read_csv(io.StringIO(frame.to_csv(index=False))).shape == (2, 4)


def test_online_training_curves_section(tmp_path: Path) -> None:
    run = make_run_dir(tmp_path / "run", rounds=False)
    steps = pd.DataFrame(
        [
            {"cell_id": f"source_only/grpo/{k}/s0", "objective": "grpo", "strategy": "source_only", "step": t,
             "reward_rm": 0.1 * t, "reward_gold": -0.05 * t, "kl": 0.2 * t}
            for k in ("a", "b")
            for t in range(5)
        ]
    )
    steps.to_parquet(run / "results" / "online_steps.parquet")
    page = write_report(run)["index.html"].read_text()
    section = page[page.index('<section id="online">') :]
    section = section[: section.index("</section>")]
    assert "Online RL training curves" in section and "data:image/png;base64," in section
    # without online cells there is no such section
    assert '<section id="online">' not in write_report(make_run_dir(tmp_path / "plain"))["index.html"].read_text()
