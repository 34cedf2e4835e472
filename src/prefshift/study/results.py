"""Collect evaluated cells into results tables, check the expected phenomena, write the report."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from prefshift.evaluation import win_rate
from prefshift.runinfo import atomic_write_json, versions
from prefshift.study.verdicts import bootstrap_effect, prompt_outcomes, verdict

ONLINE = {"ppo", "grpo", "rloo"}


def _frame(cells, results: dict[str, Path], roles: dict[str, str]) -> tuple[pd.DataFrame, pd.DataFrame]:
    rows, samples = [], []
    for cell in cells:
        metrics = json.loads((results[cell.cell_id] / "metrics.json").read_text())
        for domain, m in metrics.items():
            rows.append(
                {
                    "cell_id": cell.cell_id,
                    "objective": cell.objective,
                    "strategy": cell.strategy,
                    "hparams": json.dumps(cell.hparams, sort_keys=True),
                    "seed": cell.seed,
                    "init": cell.init,
                    "domain": domain,
                    "role": roles[domain],
                    **m,
                }
            )
        # an evaluation stage can be shared by several cells (e.g. the common first round of two
        # schedules): its samples carry the id of the cell that computed it, so relabel them
        samples.append(pd.read_parquet(results[cell.cell_id] / "samples.parquet").assign(cell_id=cell.cell_id))
    return pd.DataFrame(rows), pd.concat(samples, ignore_index=True)


def _vs_init(table: pd.DataFrame, samples: pd.DataFrame, bootstrap_seed: int) -> pd.Series:
    """Win rate of each cell against its own SFT initialisation, prompt by prompt, judged by gold."""
    ev = samples[samples.purpose == "eval"].set_index(["cell_id", "domain", "prompt_id"])["gold"].sort_index()
    out = []
    for row in table.itertuples():
        if row.init == row.cell_id:
            out.append(math.nan)
            continue
        mine = ev.loc[row.cell_id, row.domain]
        theirs = ev.loc[row.init, row.domain].reindex(mine.index)
        out.append(
            win_rate(mine.to_numpy(), theirs.to_numpy(), rng_seed=bootstrap_seed, n_bootstrap=1).win_rate
        )
    return pd.Series(out, index=table.index)


def summary_table(table: pd.DataFrame, source: str, targets: list[str]) -> pd.DataFrame:
    """One row per cell: source and target win rates, generalisation gap, diversity, KL, length."""
    wide = table.pivot_table(index=["cell_id", "objective", "strategy"], columns="domain", values="win_rate")
    out = pd.DataFrame(index=wide.index)
    out[f"wr_{source}"] = wide[source]
    for t in targets:
        out[f"wr_{t}"] = wide[t]
        out[f"gap_{t}"] = wide[source] - wide[t]
    tgt = table[table.domain == targets[0]].set_index(["cell_id", "objective", "strategy"])
    for col in ("ead", "sbert", "kl_tok", "length_mean"):
        if col in tgt:
            out[f"{col}_{targets[0]}"] = tgt[col]
    return out.reset_index().sort_values(["strategy", "objective"]).reset_index(drop=True)


def _mean(table: pd.DataFrame, mask, col: str) -> float:
    if col not in table:  # e.g. no diversity metrics when evaluation.diversity_prompts is 0
        return math.nan
    values = table.loc[mask, col]
    return float(values.mean()) if len(values) else math.nan


def phenomena(
    table: pd.DataFrame, source: str, target: str, samples: pd.DataFrame | None = None, seed: int = 0
) -> list[dict[str, Any]]:
    """The checks of ../shared/synthetic-world.md §Phenomena, each with the numbers behind its verdict.

    Checks on win rates (1, 2, 3, 6) also get a paired bootstrap 95% interval of their effect over the
    test prompts (``prefshift.study.verdicts``) when per-prompt samples are given: their verdict is
    'holds' only if the interval excludes zero, 'within noise' if it contains zero. Checks 4 and 5 compare
    point estimates.
    """
    t = table
    outcomes = prompt_outcomes(samples) if samples is not None else {}
    pref = ~t.objective.isin(["sft", "base"])
    src, tgt = t.domain == source, t.domain == target
    so = pref & (t.strategy == "source_only")
    sft_src = _mean(t, (t.cell_id == "sft_source") & src, "win_rate")
    sft_tgt = _mean(t, (t.cell_id == "sft_source") & tgt, "win_rate")
    so_src, so_tgt = _mean(t, so & src, "win_rate"), _mean(t, so & tgt, "win_rate")
    checks: list[dict[str, Any]] = []

    def add(pid: str, claim: str, holds: bool | None, evidence: str, effect=None) -> None:
        check = {"id": pid, "claim": claim, "holds": holds, "evidence": evidence}
        if holds is not None:
            check["verdict"] = "holds" if holds else "does not hold"
        if holds is not None and effect is not None and outcomes:
            est, low, high = bootstrap_effect(outcomes, effect, seed=seed)
            if not math.isnan(est):
                check.update(effect=est, ci_low=low, ci_high=high, verdict=verdict(low, high))
                check["evidence"] += f"; effect {est:+.3f} [95% CI {low:+.3f}, {high:+.3f}] (ties as half)"
        checks.append(check)

    pref_ids = set(t.loc[pref, "cell_id"])

    def ids(strategy: str | None = None, objectives: Sequence[str] | None = None) -> list[str]:
        rows = t[t.cell_id.isin(pref_ids)]
        if strategy is not None:
            rows = rows[rows.strategy == strategy]
        if objectives is not None:
            rows = rows[rows.objective.isin(objectives)]
        return sorted(set(rows.cell_id))

    so_ids, sft_ids = ids("source_only"), ["sft_source"]

    have = not math.isnan(so_src) and not math.isnan(sft_src)
    add(
        "1",
        "preference tuning on source raises the source win rate over the SFT model",
        (so_src > sft_src) if have else None,
        f"source win rate: SFT {sft_src:.3f} → source-only preference cells (mean) {so_src:.3f}",
        lambda wr: wr(so_ids, source) - wr(sft_ids, source),
    )
    gain_src, gain_tgt = so_src - sft_src, so_tgt - sft_tgt
    add(
        "2",
        "the same models gain less (or lose) on the target domain",
        (gain_tgt < gain_src) if have else None,
        f"gain over SFT: source {gain_src:+.3f}, target {gain_tgt:+.3f}",
        lambda wr: (wr(so_ids, source) - wr(sft_ids, source)) - (wr(so_ids, target) - wr(sft_ids, target)),
    )
    gaps = {}
    for s in ("source_only", "mix_sft", "target_sft", "sequential_sft", "pseudo_label", "pseudo_judge"):
        a, b = (
            _mean(t, pref & (t.strategy == s) & src, "win_rate"),
            _mean(t, pref & (t.strategy == s) & tgt, "win_rate"),
        )
        if not math.isnan(a):
            gaps[s] = (a - b, b)
    adapted = {s: v for s, v in gaps.items() if s != "source_only"}
    holds3 = None
    if "source_only" in gaps and adapted:
        holds3 = all(v[0] < gaps["source_only"][0] for v in adapted.values())
    add(
        "3",
        "target SFT and pseudo-labelling reduce the degradation (smaller gap than source-only)",
        holds3,
        "; ".join(f"{s}: gap {g:+.3f}, target {w:.3f}" for s, (g, w) in gaps.items())
        or "no preference cells",
        lambda wr: min(
            (wr(so_ids, source) - wr(so_ids, target)) - (wr(ids(s), source) - wr(ids(s), target)) for s in adapted
        ),
    )
    lengths = {o: _mean(t, (t.objective == o) & tgt, "length_mean") for o in ("dpo", "ln_dpo", "simpo")}
    holds4 = None
    if not any(math.isnan(v) for v in lengths.values()):
        holds4 = lengths["dpo"] > max(lengths["ln_dpo"], lengths["simpo"])
    add(
        "4",
        "with length-biased labels DPO lengthens responses more than LN-DPO/SimPO",
        holds4,
        ", ".join(f"{o} {v:.1f} words" for o, v in lengths.items() if not math.isnan(v))
        or "needs dpo, ln_dpo, simpo",
    )
    div_col = "sbert" if "sbert" in t and t.sbert.notna().any() else "ead"
    sft_div = _mean(t, (t.objective == "sft") & tgt, div_col)
    pref_div = _mean(t, pref & tgt, div_col)
    pseudo_div = _mean(t, pref & (t.strategy == "pseudo_label") & tgt, div_col)
    online = _mean(t, t.objective.isin(ONLINE) & tgt, div_col)
    offline = _mean(t, t.objective.isin(["dpo", "orpo"]) & tgt, div_col)
    holds5 = None if math.isnan(pref_div) else bool(pref_div < sft_div)
    if holds5 is not None and not math.isnan(pseudo_div):
        holds5 = holds5 and pseudo_div <= _mean(t, pref & tgt, div_col)
    if holds5 is not None and not math.isnan(online) and not math.isnan(offline):
        holds5 = holds5 and online > offline
    add(
        "5",
        "preference tuning lowers diversity; pseudo-labelling most; online RL keeps more than DPO/ORPO",
        holds5,
        f"{div_col} on {target}: SFT {sft_div:.3f}, preference cells {pref_div:.3f}, pseudo-label {pseudo_div:.3f}, "
        f"online RL {online:.3f}, DPO/ORPO {offline:.3f}",
    )
    on_gap = _mean(t, t.objective.isin(ONLINE) & src, "win_rate") - _mean(
        t, t.objective.isin(ONLINE) & tgt, "win_rate"
    )
    off_gap = _mean(t, t.objective.isin(["dpo", "kto", "orpo"]) & src, "win_rate") - _mean(
        t, t.objective.isin(["dpo", "kto", "orpo"]) & tgt, "win_rate"
    )
    on_ids, off_ids = ids(objectives=sorted(ONLINE)), ids(objectives=["dpo", "kto", "orpo"])
    add(
        "6",
        "online RL transfers better than offline objectives (smaller gap)",
        None if math.isnan(on_gap) or math.isnan(off_gap) else bool(on_gap < off_gap),
        f"gap: online {on_gap:+.3f}, offline {off_gap:+.3f}"
        if not math.isnan(on_gap)
        else "no online RL cells in this study",
        lambda wr: (wr(off_ids, source) - wr(off_ids, target)) - (wr(on_ids, source) - wr(on_ids, target)),
    )
    return checks


def _online_steps(cells) -> pd.DataFrame | None:
    """The per-step logs of online cells (``steps.jsonl`` beside their model): RM and gold reward, KL,
    length per step — the curves on which reward-model over-optimisation shows."""
    frames = []
    for cell in cells:
        path = Path(cell.model_dir).parent / "steps.jsonl"
        if path.exists():
            rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
            frames.append(pd.DataFrame(rows).assign(cell_id=cell.cell_id, objective=cell.objective, strategy=cell.strategy))
    return pd.concat(frames, ignore_index=True) if frames else None


def write_results(
    study, cells, results: dict[str, Path], domains: dict[str, Any], precision: str
) -> pd.DataFrame:
    source, targets = domains["source"], domains["targets"]
    roles = {source: "source", **{t: "target" for t in targets}}
    table, samples = _frame(cells, results, roles)
    table["win_rate_vs_sft"] = _vs_init(table, samples, study.cfg.seeds[0])
    res = study.out / "results"
    res.mkdir(parents=True, exist_ok=True)
    table.to_parquet(res / "cells.parquet")
    samples.to_parquet(res / "samples.parquet")
    steps = _online_steps(cells)
    if steps is not None:
        steps.to_parquet(res / "online_steps.parquet")
    summary = summary_table(table, source, targets)
    checks = phenomena(table, source, targets[0], samples, seed=study.cfg.seeds[0])
    atomic_write_json(
        res / "study.json",
        {
            "name": study.cfg.name,
            "task": study.cfg.task,
            "source": source,
            "targets": targets,
            "judge": "gold" if study.cfg.data is None else study.cfg.data.judge.kind,
            "precision": precision,
            "timings": dict(study.timings),
            "phenomena": checks,
            "versions": versions(),
            "reference_length": table.groupby("domain")["reference_length_mean"].mean().to_dict(),
        },
    )
    summary.to_csv(res / "summary.csv", index=False)
    with pd.option_context(
        "display.width", 200, "display.max_columns", 30, "display.float_format", "{:.3f}".format
    ):
        print("\n" + summary.drop(columns=["cell_id"]).to_string(index=False))
    print("\nphenomena:")
    for c in checks:
        print(f"  {c['id']}. {c['claim']}: {c.get('verdict', 'n/a')} — {c['evidence']}")
    try:
        from prefshift.report import write_report
    except ImportError:
        return summary
    paths = write_report(study.out)
    robustness = pd.read_csv(paths["robustness.csv"]) if "robustness.csv" in paths else pd.DataFrame()
    if not robustness.empty:
        with pd.option_context("display.width", 200, "display.max_columns", 30, "display.float_format", "{:.3f}".format):
            print("\nhyperparameter robustness (win rate over each grid: mean, std, worst, best setting):")
            print(robustness.to_string(index=False))
    print(f"\nreport: {paths.get('html', study.out / 'report')}")
    return summary
