"""Study reports: Markdown and CSV tables plus one self-contained HTML page per study run.

``write_report(run_dir)`` reads what the study engine wrote under ``RUN_DIR/results`` and writes
``RUN_DIR/report/``. Raw per-sample generations stay in the results Parquet files, so any figure here
can be recomputed from them.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from prefshift.report.html import render_html
from prefshift.report.tables import (
    ReportTables,
    StudyResults,
    build_tables,
    load_results,
    summary_paragraph,
    to_markdown,
)
from prefshift.runinfo import atomic_write_text

__all__ = [
    "ReportTables",
    "StudyResults",
    "build_tables",
    "load_results",
    "summary_paragraph",
    "to_markdown",
    "write_report",
]


def _markdown(results: StudyResults, tables: ReportTables, paragraph: str) -> str:
    """``summary.md``: the paragraph and the tables a reader would paste into an issue or a paper draft."""
    parts = [
        f"# prefshift report: {results.study.get('name', 'study')}",
        paragraph,
        "## Summary",
        to_markdown(tables.summary),
    ]
    if not tables.robustness.empty:
        parts += ["## Hyperparameter robustness", to_markdown(tables.robustness)]
    if not tables.phenomena.empty:
        parts += ["## Phenomena", to_markdown(tables.phenomena)]
    if tables.rounds is not None and tables.schedules is not None:
        parts += ["## Rounds", to_markdown(tables.schedules), to_markdown(tables.rounds)]
    return "\n\n".join(p.rstrip("\n") for p in parts) + "\n"


def write_report(run_dir: str | Path) -> dict[str, Path]:
    """Write ``RUN_DIR/report/{summary.md, index.html, *.csv}``; returns file name → path.

    CSVs: ``summary``, ``robustness``, ``metrics`` (every setting × domain, seed-averaged),
    ``phenomena`` and, for round-based studies, ``rounds`` and ``schedules``. Every file is written
    to a temporary name and renamed, so a reader never sees a half-written report. An optional
    ``reference_length`` in ``study.json`` (a number, or one per domain) draws the dataset
    reference's length on the length plots.
    """
    results = load_results(run_dir)
    tables = build_tables(results)
    paragraph = summary_paragraph(tables, results)
    out = Path(run_dir) / "report"
    csvs: dict[str, pd.DataFrame | None] = {
        "summary": tables.summary,
        "robustness": tables.robustness,
        "metrics": tables.means,
        "phenomena": tables.phenomena,
        "rounds": tables.rounds,
        "schedules": tables.schedules,
    }
    texts = {f"{name}.csv": frame.to_csv(index=False) for name, frame in csvs.items() if frame is not None}
    texts["summary.md"] = _markdown(results, tables, paragraph)
    texts["index.html"] = render_html(results, tables, paragraph)
    written = {}
    for name, text in texts.items():
        atomic_write_text(out / name, text)
        written[name] = out / name
    return written
