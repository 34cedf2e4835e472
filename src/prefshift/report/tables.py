"""Derived tables of a study: the numbers behind the report's text, figures, Markdown and CSV files.

The study engine writes one row per (cell, domain), with a cell per seed; readers want one row per
objective × strategy with the domain-shift quantities (generalisation gap, adaptation gain) already
computed, and each objective's spread over its hyperparameter grid. Everything is derived here, once,
so the summary sentence, the tables and the plots can never disagree about a number.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

#: Columns that identify a training configuration; a seed is a repetition of one, not a new one.
SETTING = ("objective", "strategy", "hparams")
#: Row identity of the summary: the hyperparameter grid is folded away by target-blind selection.
ROW = ("objective", "strategy")
#: Per-(cell, domain) metrics of cells.parquet, averaged over seeds; rm_mean, sbert, nli may be all NaN.
METRICS = (
    "win_rate",
    "win_rate_ci_low",
    "win_rate_ci_high",
    "win_rate_ties_half",
    "win_rate_vs_sft",
    "gold_mean",
    "rm_mean",
    "length_mean",
    "length_median",
    "kl_seq",
    "kl_seq_se",
    "kl_tok",
    "ead",
    "sbert",
    "distinct_1",
    "distinct_2",
    "self_bleu",
    "nli",
    "n_prompts",
)
#: The strategy every adaptation strategy's gain is measured against (per objective).
REFERENCE_STRATEGY = "source_only"
#: Per-sample columns the report needs; the response text is left on disk (it can be large).
SAMPLE_COLUMNS = ["cell_id", "domain", "length", "gold", "purpose"]
MISSING = "n/a"
#: Baselines first, then the adaptation strategies in the order of the study design's table.
OBJECTIVE_ORDER = ("base", "sft")
STRATEGY_ORDER = ("base", "sft_baseline", "source_only", "direct", "mix_sft", "target_sft", "pseudo_label")


@dataclass(frozen=True)
class StudyResults:
    """What the study engine wrote under ``RUN_DIR/results``, with hparams in canonical form."""

    cells: pd.DataFrame
    study: dict[str, Any]
    samples: pd.DataFrame | None
    rounds: pd.DataFrame | None
    source: str
    targets: tuple[str, ...]
    online_steps: pd.DataFrame | None = None


@dataclass(frozen=True)
class ReportTables:
    """Every derived table; built once by :func:`build_tables` and shared by all outputs."""

    means: pd.DataFrame  # one row per setting × domain, metrics averaged over seeds
    selected: pd.DataFrame  # ``means`` restricted to each objective × strategy's chosen setting
    summary: pd.DataFrame
    robustness: pd.DataFrame
    phenomena: pd.DataFrame
    rounds: pd.DataFrame | None
    schedules: pd.DataFrame | None


def canonical_hparams(value: str | None) -> str:
    """JSON with sorted keys, so that '{"b":1,"a":2}' and '{"a": 2, "b": 1}' are one setting."""
    if not isinstance(value, str) or not value:
        return "{}"
    return json.dumps(json.loads(value), sort_keys=True)


def hparams_label(canonical: str, keys: Iterable[str]) -> str:
    """Short ``beta=0.1, learning_rate=5e-05`` form of a setting for axis labels, ``keys`` only."""
    parsed = json.loads(canonical)
    return ", ".join(f"{k}={parsed.get(k)}" for k in keys) or "default"


def row_label(objective: str, strategy: str) -> str:
    """How a summary row is named in prose and on axes: strategy first, as the study design reads."""
    return f"{strategy} + {objective}"


def target_column(name: str, domain: str, targets: Sequence[str]) -> str:
    """Plain column name for a single-target study, ``name[domain]`` when there are several targets."""
    return name if len(targets) == 1 else f"{name}[{domain}]"


def load_results(run_dir: str | Path) -> StudyResults:
    """Read ``RUN_DIR/results``; only ``cells.parquet`` is required, the rest degrade to sections saying so."""
    results = Path(run_dir) / "results"
    cells = pd.read_parquet(results / "cells.parquet")
    cells["hparams"] = cells["hparams"].map(canonical_hparams)
    study_path = results / "study.json"
    study = json.loads(study_path.read_text()) if study_path.exists() else {}
    samples_path = results / "samples.parquet"
    samples = pd.read_parquet(samples_path, columns=SAMPLE_COLUMNS) if samples_path.exists() else None
    rounds_path = results / "rounds.parquet"
    rounds = pd.read_parquet(rounds_path) if rounds_path.exists() else None
    steps_path = results / "online_steps.parquet"
    steps = pd.read_parquet(steps_path) if steps_path.exists() else None
    source, targets = _domains(cells, study)
    return StudyResults(cells, study, samples, rounds, source, targets, steps)


def _domains(cells: pd.DataFrame, study: dict[str, Any]) -> tuple[str, tuple[str, ...]]:
    """Source and target domains from the cells' roles, targets in the study's declared order."""
    sources = list(pd.unique(cells.loc[cells["role"] == "source", "domain"]))
    present = list(pd.unique(cells.loc[cells["role"] == "target", "domain"]))
    if len(sources) != 1 or not present:
        raise ValueError(f"expected one source domain and at least one target, got {sources} / {present}")
    declared = [t for t in study.get("targets", []) if t in present]
    return sources[0], tuple(declared + [t for t in present if t not in declared])


def seed_means(cells: pd.DataFrame) -> pd.DataFrame:
    """Average the metrics of every setting × domain over its seeds; ``n_seeds`` says over how many."""
    # metrics a study did not measure (e.g. diversity and KL with evaluation.diversity_prompts: 0) are n/a
    cells = cells.assign(**{m: float("nan") for m in METRICS if m not in cells})
    groups = cells.groupby([*SETTING, "domain", "role"], sort=False)
    out = groups[list(METRICS)].mean()
    out["n_seeds"] = groups["seed"].nunique()
    return out.reset_index()


def _ordered(frame: pd.DataFrame, reference: pd.DataFrame) -> pd.DataFrame:
    """Sort rows by objective, then strategy: baselines and the study design's order first, then the
    rest in order of first appearance in ``reference`` (the engine writes cells in config order).

    Grouping by objective keeps an objective's strategies next to each other in tables and on axes,
    and a fixed strategy order makes two studies' tables line up.
    """
    known = {"objective": OBJECTIVE_ORDER, "strategy": STRATEGY_ORDER}
    rank = {
        col: {v: i for i, v in enumerate(dict.fromkeys([*first, *pd.unique(reference[col])]))}
        for col, first in known.items()
    }
    return frame.sort_values(list(known), key=lambda column: column.map(rank[column.name]), kind="stable")


def select_settings(means: pd.DataFrame, source: str) -> pd.DataFrame:
    """Each objective × strategy's hyperparameter setting with the best *source* win rate.

    Choosing by target win rate would be model selection on the test domain; under domain shift the
    honest choice is the one a practitioner without target labels could make. Ties keep the first
    setting in file order; a setting without a source row ranks last.
    """
    src = means.loc[means["domain"] == source, [*SETTING, "win_rate"]]
    settings = means[list(SETTING)].drop_duplicates().merge(src, on=list(SETTING), how="left")
    ranked = settings.sort_values("win_rate", ascending=False, na_position="last", kind="stable")
    # sort_index restores the order of ``means`` (the merge kept it, the ranking did not)
    return ranked.drop_duplicates(list(ROW), keep="first")[list(SETTING)].sort_index().reset_index(drop=True)


def summary_table(selected: pd.DataFrame, source: str, targets: Sequence[str]) -> pd.DataFrame:
    """One row per objective × strategy: win rates, gap, gain, target diversity, KL and length.

    gap = source − target win rate; gain = target win rate − the same objective's source-only target
    win rate (NaN when that objective has no source-only cell). Diversity, KL and length are measured
    on the target domain, averaged over targets when there are several.
    """
    by_row = {key: g.set_index("domain") for key, g in selected.groupby(list(ROW), sort=False)}

    def value(key: tuple[str, str], domain: str, metric: str) -> float:
        frame = by_row.get(key)
        if frame is None or domain not in frame.index:
            return math.nan
        return float(frame.at[domain, metric])

    rows = []
    for key, frame in by_row.items():
        objective, strategy = key
        row: dict[str, Any] = {
            "objective": objective,
            "strategy": strategy,
            "hparams": frame["hparams"].iloc[0],
            "n_seeds": int(frame["n_seeds"].min()),
            "source_win_rate": value(key, source, "win_rate"),
        }
        for t in targets:
            target = value(key, t, "win_rate")
            reference = value((objective, REFERENCE_STRATEGY), t, "win_rate")
            row[target_column("target_win_rate", t, targets)] = target
            row[target_column("gap", t, targets)] = row["source_win_rate"] - target
            row[target_column("gain", t, targets)] = target - reference
        for metric in ("ead", "sbert", "kl_seq", "length_mean"):
            row[f"target_{metric}"] = pd.Series([value(key, t, metric) for t in targets]).mean()
        rows.append(row)
    return pd.DataFrame(rows)


def robustness_table(means: pd.DataFrame, source: str, targets: Sequence[str]) -> pd.DataFrame:
    """Win-rate distribution over each objective × strategy's hyperparameter grid (seed-averaged).

    Reports mean, std, worst and best setting on source and on each target: objectives that are equal
    at their best settings can differ a lot away from them, which the best cell alone would hide.
    Only objective × strategy pairs run at two or more settings have a row.
    """
    rows = []
    for (objective, strategy), group in means.groupby(list(ROW), sort=False):
        n_settings = group["hparams"].nunique()
        if n_settings < 2:
            continue
        row: dict[str, Any] = {"objective": objective, "strategy": strategy, "n_settings": n_settings}
        for domain, prefix in [
            (source, "source"),
            *((t, target_column("target", t, targets)) for t in targets),
        ]:
            wr = group.loc[group["domain"] == domain, "win_rate"]
            row.update(
                {
                    f"{prefix}_mean": wr.mean(),
                    f"{prefix}_std": wr.std(),
                    f"{prefix}_min": wr.min(),
                    f"{prefix}_best": wr.max(),
                }
            )
        rows.append(row)
    return pd.DataFrame(rows) if rows else pd.DataFrame(columns=["objective", "strategy", "n_settings"])


def phenomena_table(study: dict[str, Any]) -> pd.DataFrame:
    """The engine's checks of the reference study's findings, with a three-valued verdict."""
    verdict = {True: "holds", False: "does not hold", None: MISSING}
    rows = [
        {
            "id": p.get("id", ""),
            "claim": p.get("claim", ""),
            "result": p.get("verdict", verdict[p.get("holds")]),
            "evidence": p.get("evidence", ""),
        }
        for p in study.get("phenomena", [])
    ]
    return pd.DataFrame(rows, columns=["id", "claim", "result", "evidence"])


def _round_keys(rounds: pd.DataFrame) -> list[str]:
    """Rounds of different objectives are separate experiments: never average across them."""
    return ["objective"] if "objective" in rounds else []


def round_table(rounds: pd.DataFrame) -> pd.DataFrame:
    """Per (objective and) round: mean gain with static and with on-policy data, their ratio, mean BS.

    The effectiveness ratio (on-policy gain / static gain) is what shows the stage boundary: it
    should rise above 1 once the policy has left the preference-injection stage.
    """
    index = [*_round_keys(rounds), "round"]
    gains = rounds.pivot_table(index=index, columns="data", values="gain", aggfunc="mean")
    out = gains.reindex(columns=["static", "on_policy"]).add_suffix("_gain")
    out.columns.name = None
    static = out["static_gain"].where(out["static_gain"] != 0)
    out["effectiveness_ratio"] = out["on_policy_gain"] / static
    out["boundary_score"] = rounds.groupby(index)["boundary_score"].mean()
    if "bs_cost_epochs" in rounds:  # the BS measurement's wall time in training epochs of that round
        out["bs_cost_epochs"] = rounds.groupby(index)["bs_cost_epochs"].mean()
    return out.reset_index()


def schedule_table(rounds: pd.DataFrame) -> pd.DataFrame:
    """Per (objective and) data schedule: rounds run, on-policy rounds, final win rate, summed gain."""
    rows = []
    keys = [*_round_keys(rounds), "schedule"]
    for values, group in rounds.sort_values("round").groupby(keys, sort=False):
        rows.append(
            {
                **dict(zip(keys, values, strict=True)),
                "rounds": group["round"].nunique(),
                "on_policy_rounds": int((group["data"] == "on_policy").sum()),
                "final_win_rate": group["win_rate"].iloc[-1],
                "total_gain": group["gain"].sum(),
            }
        )
    return pd.DataFrame(rows)


def build_tables(results: StudyResults) -> ReportTables:
    """Derive every table of the report from one study's results."""
    means = _ordered(seed_means(results.cells), results.cells).reset_index(drop=True)
    chosen = select_settings(means, results.source)
    selected = chosen.merge(means, on=list(SETTING), how="left")
    rounds = results.rounds
    return ReportTables(
        means=means,
        selected=selected,
        summary=summary_table(selected, results.source, results.targets),
        robustness=robustness_table(means, results.source, results.targets),
        phenomena=phenomena_table(results.study),
        rounds=None if rounds is None else round_table(rounds),
        schedules=None if rounds is None else schedule_table(rounds),
    )


def format_value(value: Any, digits: int = 3) -> str:
    """One cell as text: fixed decimals for floats (scientific when tiny), ``n/a`` for missing."""
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return MISSING
    if isinstance(value, bool | np.bool_ | str):
        return str(value)
    if isinstance(value, int | np.integer):
        return str(int(value))
    if isinstance(value, float | np.floating):
        if value != 0 and abs(value) < 10 ** (-digits):
            return f"{value:.2e}"
        return f"{value:.{digits}f}"
    return str(value)


def to_markdown(frame: pd.DataFrame, digits: int = 3) -> str:
    """GitHub Markdown table (pandas' own ``to_markdown`` needs the optional ``tabulate``).

    Numeric columns are right-aligned; pipes and newlines inside cells are escaped so a free-text
    cell (a phenomenon's evidence) cannot break the table.
    """

    def cell(text: str) -> str:
        return text.replace("|", "\\|").replace("\r", " ").replace("\n", " ")

    header = "| " + " | ".join(cell(str(c)) for c in frame.columns) + " |"
    align = "|" + "|".join(
        "---:" if pd.api.types.is_numeric_dtype(frame[c]) else ":---" for c in frame.columns
    )
    body = [
        "| " + " | ".join(cell(format_value(v, digits)) for v in row) + " |"
        for row in frame.itertuples(index=False)
    ]
    return "\n".join([header, align + "|", *body]) + "\n"


def _mean_over(row: pd.Series, name: str, targets: Sequence[str]) -> float:
    """A row's per-target quantity averaged over target domains (the plain column with one target)."""
    return float(np.mean([row[target_column(name, t, targets)] for t in targets]))


def _p(value: float, signed: bool = False) -> str:
    """A number in prose: two decimals, an explicit sign for differences, ``n/a`` when missing."""
    if pd.isna(value):
        return MISSING
    return f"{value:+.2f}" if signed else f"{value:.2f}"


def summary_paragraph(tables: ReportTables, results: StudyResults) -> str:
    """The report's first paragraph: which cell generalises best to the target, at what diversity cost.

    Every number is read off the summary table: the row with the best (mean) target win rate, its
    source win rate and gap; its target EAD/SBERT against the same objective's source-only cell (or
    the mean over all cells when there is none to compare with); the smallest gap; the largest gain
    over source-only; whether strategy or objective moves target win rate more; the phenomenon tally.
    """
    summary = tables.summary
    targets = results.targets
    scored = summary.assign(
        **{
            f"_{name}": [_mean_over(r, col, targets) for _, r in summary.iterrows()]
            for name, col in (("target", "target_win_rate"), ("gap", "gap"), ("gain", "gain"))
        }
    )
    valid = scored.dropna(subset=["_target"])
    if valid.empty:
        return "No cell has a target-domain win rate; there is nothing to compare."
    where = "target" if len(targets) == 1 else "mean target"
    over = "" if len(targets) == 1 else f" over {', '.join(targets)}"
    best = valid.loc[valid["_target"].idxmax()]
    robust = _robustness_answer(tables.robustness, targets)
    per_target = (
        ""
        if len(targets) == 1
        else " ["
        + ", ".join(f"{t} {_p(best[target_column('target_win_rate', t, targets)])}" for t in targets)
        + "]"
    )
    sentences = [
        f"Best {where} win rate{over}: {row_label(best['objective'], best['strategy'])} ({_p(best['_target'])}"
        f"{per_target}, source {_p(best['source_win_rate'])}, gap {_p(best['_gap'])})"
        + _diversity_cost(best, scored)
        + ".",
        robust,
    ]
    gaps = scored.dropna(subset=["_gap"])
    if not gaps.empty:
        small = gaps.loc[gaps["_gap"].idxmin()]
        sentences.append(
            f"Smallest generalisation gap: {row_label(small['objective'], small['strategy'])} "
            f"({_p(small['_gap'])}; source {_p(small['source_win_rate'])}, {where} {_p(small['_target'])})."
        )
    gains = scored[scored["strategy"] != REFERENCE_STRATEGY].dropna(subset=["_gain"])
    if not gains.empty:
        top = gains.loc[gains["_gain"].idxmax()]
        sentences.append(
            f"Largest adaptation gain over source-only: {row_label(top['objective'], top['strategy'])} "
            f"({_p(top['_gain'], signed=True)} {where} win rate)."
        )
    sentences.append(_strategy_vs_objective(scored))
    if not tables.phenomena.empty:
        counts = tables.phenomena["result"].value_counts()
        sentences.append(
            f"Phenomenon checks: {counts.get('holds', 0)} hold, {counts.get('does not hold', 0)} do not, "
            f"{counts.get('within noise', 0)} are within noise (95% interval contains zero), "
            f"{counts.get(MISSING, 0)} could not be decided."
        )
    if (tables.means.groupby(list(ROW))["hparams"].nunique() > 1).any():
        sentences.append(
            "Where a hyperparameter grid was run, each row uses the setting with the best source win rate "
            "(target-blind selection)."
        )
    return " ".join(s for s in sentences if s)


def _robustness_answer(robustness: pd.DataFrame, targets: Sequence[str]) -> str:
    """'Which objective is least likely to hurt me if I don't tune it?', answered from the grid.

    The criterion is the worst setting's target win rate (mean over targets): an untuned user may land
    anywhere on the grid, so the floor matters more than the best cell. The spread (std) and the best
    setting are given beside it; '' when no objective was run over a grid.
    """
    if robustness.empty or "n_settings" not in robustness or robustness["n_settings"].isna().all():
        return ""
    cols = {s: [f"{target_column('target', t, targets)}_{s}" for t in targets] for s in ("min", "mean", "std", "best")}
    scored = robustness.assign(**{f"_{s}": robustness[c].mean(axis=1) for s, c in cols.items()})
    scored = scored.dropna(subset=["_min"])
    if scored.empty:
        return ""
    # ties on the target floor (e.g. every setting at 0 on a far target) are broken by the source floor
    ranked = scored.sort_values(["_min", "source_min"], ascending=False)
    safe, risky = ranked.iloc[0], ranked.iloc[-1]
    text = (
        f"Least likely to hurt without tuning: {row_label(safe['objective'], safe['strategy'])} — its worst of "
        f"{int(safe['n_settings'])} settings still reaches {_p(safe['_min'])} target win rate "
        f"(mean {_p(safe['_mean'])} ± {_p(safe['_std'])}, best {_p(safe['_best'])}; source worst "
        f"{_p(safe['source_min'])})"
    )
    if risky.name != safe.name:
        text += (
            f"; most sensitive: {row_label(risky['objective'], risky['strategy'])} (worst {_p(risky['_min'])}, "
            f"mean {_p(risky['_mean'])} ± {_p(risky['_std'])}, best {_p(risky['_best'])}; source worst "
            f"{_p(risky['source_min'])})"
        )
    return text + "."


def _diversity_cost(best: pd.Series, scored: pd.DataFrame) -> str:
    """'; diversity on target: EAD 0.51 vs 0.86 (-0.35), ... against dpo source-only' or ''."""
    reference = scored[
        (scored["objective"] == best["objective"]) & (scored["strategy"] == REFERENCE_STRATEGY)
    ]
    if best["strategy"] != REFERENCE_STRATEGY and not reference.empty:
        against, what = reference.iloc[0], row_label(best["objective"], REFERENCE_STRATEGY)
    else:
        against, what = scored.mean(numeric_only=True), "the mean over all cells"
    parts = [
        f"{label} {_p(best[col])} vs {_p(against[col])} ({_p(best[col] - against[col], signed=True)})"
        for col, label in (("target_ead", "EAD"), ("target_sbert", "SBERT"))
        if not (pd.isna(best[col]) or pd.isna(against[col]))
    ]
    return f"; diversity on target: {', '.join(parts)} against {what}" if parts else ""


def _strategy_vs_objective(scored: pd.DataFrame) -> str:
    """Compare the spread of mean target win rate across strategies with that across objectives.

    Only the crossed part of the design counts (strategies run with two or more objectives,
    objectives run with two or more strategies), so a baseline that exists for one objective only
    cannot decide the answer.
    """
    crossed = scored[scored.groupby("strategy")["objective"].transform("nunique") >= 2]
    crossed = crossed[crossed.groupby("objective")["strategy"].transform("nunique") >= 2]
    if crossed.empty:
        return ""
    by_strategy = crossed.groupby("strategy")["_target"].mean()
    by_objective = crossed.groupby("objective")["_target"].mean()
    s_range = by_strategy.max() - by_strategy.min()
    o_range = by_objective.max() - by_objective.min()
    more, less = (
        ("adaptation strategy", "objective") if s_range > o_range else ("objective", "adaptation strategy")
    )
    return (
        f"Target win rate depends more on the {more} than on the {less}: per-strategy means span "
        f"{_p(s_range)}, per-objective means {_p(o_range)}."
    )
