"""The self-contained HTML report: inline CSS, images as ``data:`` URIs, no scripts, no fetches.

A report is read long after the run, often offline or attached to an issue, so it must not depend on
a CDN, a font server or the results folder staying next to it. Every piece of text that came from the
data (names, claims, evidence, hyperparameters) goes through ``html.escape``.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from importlib import metadata
from typing import Any

import pandas as pd

from prefshift.report import plots
from prefshift.report.tables import (
    MISSING,
    ReportTables,
    StudyResults,
    format_value,
)

CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; margin: 0 auto;
       max-width: 1200px; padding: 1rem 2rem; color: #222; line-height: 1.45; }
nav a { margin-right: 0.8rem; }
section { margin-top: 2rem; border-top: 1px solid #ddd; }
.scroll { overflow-x: auto; }
table { border-collapse: collapse; font-size: 0.85rem; margin: 0.8rem 0; }
th, td { border: 1px solid #ccc; padding: 0.2rem 0.5rem; text-align: left; vertical-align: top; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
th { background: #f3f3f3; }
tr.holds td { background: #e8f5e9; }
tr.fails td { background: #fdecea; }
tr.undecided td { color: #666; }
img { max-width: 100%; height: auto; display: block; margin: 0.5rem 0; }
p.lead { font-size: 1.05rem; background: #f7f9fc; padding: 0.8rem; border-left: 4px solid #4477aa; }
.note { color: #555; font-size: 0.9rem; }
"""
RESULT_CLASS = {"holds": "holds", "does not hold": "fails", "within noise": "undecided", MISSING: "undecided"}
REPORT_PACKAGES = ("prefshift", "pandas", "numpy", "matplotlib", "pyarrow")


def html_table(frame: pd.DataFrame, digits: int = 3, row_classes: Sequence[str] | None = None) -> str:
    """An escaped ``<table>`` with the same number formatting as the Markdown tables."""
    opening = [
        '<td class="num">' if pd.api.types.is_numeric_dtype(frame[c]) else "<td>" for c in frame.columns
    ]
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in frame.columns)
    body = []
    for i, row in enumerate(frame.itertuples(index=False)):
        cells = "".join(
            f"{td}{html.escape(format_value(v, digits))}</td>" for v, td in zip(row, opening, strict=True)
        )
        cls = f' class="{row_classes[i]}"' if row_classes else ""
        body.append(f"<tr{cls}>{cells}</tr>")
    return f'<div class="scroll"><table><thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody></table></div>'


def _image(png_base64: str | None, alt: str, missing: str = "") -> str:
    if png_base64 is None:
        return _note(missing)
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{png_base64}">'


def _note(text: str) -> str:
    return f'<p class="note">{html.escape(text)}</p>'


def _section(section_id: str, title: str, *parts: str) -> tuple[str, str]:
    """(id, markup) so the navigation bar can list exactly the sections that were rendered."""
    return section_id, f'<section id="{section_id}"><h2>{html.escape(title)}</h2>{"".join(parts)}</section>'


def _details(tables: ReportTables, columns: Sequence[str]) -> pd.DataFrame:
    """The selected settings' per-domain values of ``columns``, leaving out never-measured ones."""
    present = [c for c in columns if tables.selected[c].notna().any()]
    return tables.selected[["objective", "strategy", "domain", *present]]


def reference_lengths(results: StudyResults) -> dict[str, float] | None:
    """``study.json``'s optional ``reference_length``: one number for all domains or one per domain."""
    value = results.study.get("reference_length")
    if value is None:
        return None
    if isinstance(value, dict):
        return {str(k): float(v) for k, v in value.items()}
    return {d: float(value) for d in (results.source, *results.targets)}


def provenance_table(results: StudyResults) -> pd.DataFrame:
    """Key/value rows: what the study was, how long it took, and which versions made it and this report."""
    study = results.study
    rows: list[tuple[str, Any]] = [
        (key, study.get(key)) for key in ("name", "task", "judge", "precision") if key in study
    ]
    rows += [("source domain", results.source), ("target domains", ", ".join(results.targets))]
    rows += [(f"timing: {k}", v) for k, v in study.get("timings", {}).items()]
    rows += [(f"study version: {k}", v) for k, v in study.get("versions", {}).items()]
    rows += [
        ("cells.parquet rows", len(results.cells)),
        ("samples.parquet rows", MISSING if results.samples is None else len(results.samples)),
        ("rounds.parquet rows", MISSING if results.rounds is None else len(results.rounds)),
    ]
    for package in REPORT_PACKAGES:
        try:
            rows.append((f"report made with: {package}", metadata.version(package)))
        except metadata.PackageNotFoundError:
            continue
    return pd.DataFrame({"item": [k for k, _ in rows], "value": [format_value(v) for _, v in rows]})


def render_html(results: StudyResults, tables: ReportTables, paragraph: str) -> str:
    """The whole report as one HTML document (see the module docstring for why it is self-contained)."""
    study = results.study
    name = study.get("name", "study")
    targets = ", ".join(results.targets)
    sections = [
        _section(
            "summary",
            "Summary",
            f'<p class="lead">{html.escape(paragraph)}</p>',
            _note(
                "One row per objective × strategy. gap = source − target win rate; gain = target win rate − "
                "the same objective's source-only target win rate; target_* columns are measured on the "
                "target domain (mean over targets when there are several)."
            ),
            html_table(tables.summary),
        ),
        _section(
            "phenomena",
            "Reference-study phenomena",
            html_table(tables.phenomena, row_classes=[RESULT_CLASS[r] for r in tables.phenomena["result"]])
            if not tables.phenomena.empty
            else _note("No phenomenon checks were recorded for this study."),
        ),
        _section(
            "winrate",
            "Win rate against the reference",
            _note(
                f"Judge: {study.get('judge', MISSING)}. Ties excluded; error bars are bootstrap 95% CIs "
                "averaged over seeds. Dashed line: parity."
            ),
            _image(plots.winrate_figure(tables, results), "win rate per cell and domain"),
        ),
        _section(
            "gap",
            "Generalisation gap and adaptation gain",
            _image(plots.gap_figure(tables, results), "generalisation gap and adaptation gain"),
        ),
        _section(
            "diversity",
            "Diversity of sampled outputs",
            _image(
                plots.diversity_figure(tables, results),
                "diversity metrics per cell",
                "No diversity metric was measured.",
            ),
            html_table(_details(tables, ["ead", "sbert", "nli", "distinct_1", "distinct_2", "self_bleu"])),
        ),
        _section(
            "kl",
            "KL from the SFT policy",
            _image(
                plots.kl_figure(tables, results),
                "KL versus win rate",
                "No cell has both a KL estimate and a win rate.",
            ),
            html_table(_details(tables, ["kl_seq", "kl_seq_se", "kl_tok", "win_rate"])),
        ),
        _section(
            "length",
            "Response length",
            _image(
                plots.sample_distribution_figure(
                    tables, results, "length", "response length (tokens)", reference_lengths(results)
                ),
                "response length per objective",
                "No per-sample generations (samples.parquet) to plot.",
            ),
            html_table(_details(tables, ["length_mean", "length_median"])),
        ),
        _section(
            "scores",
            "Gold and reward-model scores",
            _image(
                plots.sample_distribution_figure(tables, results, "gold", "gold score"),
                "gold score per objective",
                "No per-sample gold scores to plot.",
            ),
            html_table(_details(tables, ["gold_mean", "rm_mean"])),
        ),
        _robustness_section(tables, results),
    ]
    if results.rounds is not None and tables.rounds is not None and tables.schedules is not None:
        sections.append(
            _section(
                "rounds",
                "Rounds and the stage boundary",
                _image(plots.rounds_figure(results.rounds), "per-round gains and boundary scores"),
                html_table(tables.schedules),
                _note("effectiveness_ratio = on-policy gain / static gain in that round."),
                html_table(tables.rounds),
            )
        )
    if results.online_steps is not None and not results.online_steps.empty:
        sections.append(
            _section(
                "online",
                "Online RL training curves",
                _note("Per step of each GRPO/RLOO/PPO cell: the reward model's mean reward (what is optimised), "
                      "the gold reward of the same samples, and the KL to the reference."),
                _image(plots.online_figure(results.online_steps), "online RL training curves"),
            )
        )
    sections.append(_section("provenance", "Provenance", html_table(provenance_table(results))))
    title = html.escape(f"prefshift report: {name}")
    subtitle = html.escape(f"task {study.get('task', MISSING)}; source {results.source} → targets {targets}")
    nav = " ".join(f'<a href="#{sid}">{sid}</a>' for sid, _ in sections)
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{title}</title><style>{CSS}</style></head><body>"
        f"<header><h1>{title}</h1><p>{subtitle}</p><nav>{nav}</nav></header>"
        f"<main>{''.join(markup for _, markup in sections)}</main></body></html>\n"
    )


def _robustness_section(tables: ReportTables, results: StudyResults) -> tuple[str, str]:
    if tables.robustness.empty:
        return _section(
            "robustness",
            "Hyperparameter robustness",
            _note(
                "Every objective × strategy was run at a single hyperparameter setting; no grid to summarise."
            ),
        )
    images = [
        _image(png, f"{objective} win rate over its grid")
        for objective, png in plots.robustness_figures(tables, [results.source, *results.targets]).items()
    ]
    return _section(
        "robustness",
        "Hyperparameter robustness",
        _note("Win rate over each grid, seed-averaged: mean, std, worst (min) and best setting."),
        html_table(tables.robustness),
        *images,
    )
