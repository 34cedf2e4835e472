"""The report's figures, rendered with matplotlib's Agg canvas and returned as base64 PNG.

Figures are built on ``matplotlib.figure.Figure`` directly rather than through pyplot: no global
backend switch, no figure registry to leak into a long-running process, and the PNG goes straight
into the HTML so the report is one self-contained file. A function whose data can be absent returns
``None`` then, so the HTML can say so instead of showing an empty axis.
"""

from __future__ import annotations

import base64
import io
import json
from collections.abc import Sequence

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from prefshift.report.tables import ReportTables, StudyResults, hparams_label, row_label, target_column

DPI = 90
#: One fixed colour per objective across every figure, so the legend is learnt once.
PALETTE = ("#4477aa", "#ee6677", "#228833", "#ccbb44", "#66ccee", "#aa3377", "#bbbbbb", "#000000")
DOMAIN_PALETTE = ("#4477aa", "#ee6677", "#ccbb44", "#228833", "#aa3377")
DIVERSITY = (
    ("ead", "EAD"),
    ("sbert", "SBERT"),
    ("nli", "NLI"),
    ("distinct_2", "distinct-2"),
    ("self_bleu", "self-BLEU"),
)


def to_base64_png(fig: Figure) -> str:
    """Encode a figure as base64 PNG for a ``data:`` URI."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=DPI)
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def objective_colours(tables: ReportTables) -> dict[str, str]:
    """Objective → colour in summary-table order, the same map for every figure of a report."""
    objectives = dict.fromkeys(tables.summary["objective"])
    return {o: PALETTE[i % len(PALETTE)] for i, o in enumerate(objectives)}


def _figure(n_panels: int, n_groups: int) -> tuple[Figure, list[Axes]]:
    """Stacked panels wide enough for ``n_groups`` labelled bar groups."""
    width = max(7.0, 0.55 * n_groups + 2.5)
    fig = Figure(figsize=(width, 3.2 * n_panels), layout="constrained")
    axes = fig.subplots(n_panels, 1, squeeze=False)[:, 0]
    return fig, list(axes)


def _grouped_bars(
    ax: Axes,
    labels: Sequence[str],
    series: dict[str, np.ndarray],
    colours: dict[str, str],
    errors: dict[str, np.ndarray] | None = None,
) -> None:
    """Bars of several series (domains) side by side per label; ``errors`` holds (2, n) extents."""
    x = np.arange(len(labels))
    width = 0.8 / max(len(series), 1)
    for i, (name, values) in enumerate(series.items()):
        yerr = None if errors is None else errors.get(name)
        ax.bar(
            x + (i - (len(series) - 1) / 2) * width,
            values,
            width,
            yerr=yerr,
            capsize=2,
            label=name,
            color=colours[name],
        )
    ax.set_xticks(x, labels, rotation=40, ha="right", fontsize=8)
    ax.grid(axis="y", alpha=0.3)
    ax.legend(fontsize=8)


def _domains(results: StudyResults) -> list[str]:
    return [results.source, *results.targets]


def domain_colours(results: StudyResults) -> dict[str, str]:
    """Domain → colour, so a target keeps its colour in figures that leave the source out."""
    return {d: DOMAIN_PALETTE[i % len(DOMAIN_PALETTE)] for i, d in enumerate(_domains(results))}


def _per_domain(
    tables: ReportTables, results: StudyResults, metric: str
) -> tuple[list[str], dict[str, np.ndarray]]:
    """The selected settings' ``metric`` as one array per domain, aligned with the summary rows."""
    rows = tables.summary[["objective", "strategy"]]
    labels = [row_label(o, s) for o, s in rows.itertuples(index=False)]
    series = {}
    for domain in _domains(results):
        per = tables.selected[tables.selected["domain"] == domain]
        series[domain] = rows.merge(per, on=["objective", "strategy"], how="left")[metric].to_numpy(float)
    return labels, series


def winrate_figure(tables: ReportTables, results: StudyResults) -> str:
    """Win rate against the reference per cell and domain with bootstrap CIs; vs SFT when measured."""
    labels, wr = _per_domain(tables, results, "win_rate")
    _, low = _per_domain(tables, results, "win_rate_ci_low")
    _, high = _per_domain(tables, results, "win_rate_ci_high")
    errors = {d: np.clip(np.vstack([wr[d] - low[d], high[d] - wr[d]]), 0, None) for d in wr}
    _, vs_sft = _per_domain(tables, results, "win_rate_vs_sft")
    has_vs_sft = any(np.isfinite(v).any() for v in vs_sft.values())
    fig, axes = _figure(2 if has_vs_sft else 1, len(labels))
    _grouped_bars(axes[0], labels, wr, domain_colours(results), errors)
    axes[0].set_ylabel("win rate vs reference")
    axes[0].axhline(0.5, color="grey", lw=0.8, ls="--")
    axes[0].set_ylim(0, 1)
    if has_vs_sft:
        _grouped_bars(axes[1], labels, vs_sft, domain_colours(results))
        axes[1].set_ylabel("win rate vs SFT model")
        axes[1].axhline(0.5, color="grey", lw=0.8, ls="--")
        axes[1].set_ylim(0, 1)
    return to_base64_png(fig)


def gap_figure(tables: ReportTables, results: StudyResults) -> str:
    """Generalisation gap (source − target) and adaptation gain over source-only, per target."""
    summary = tables.summary
    labels = [row_label(o, s) for o, s in summary[["objective", "strategy"]].itertuples(index=False)]
    fig, axes = _figure(2, len(labels))
    for ax, name, title in (
        (axes[0], "gap", "gap (source − target)"),
        (axes[1], "gain", "gain over source-only"),
    ):
        series = {
            t: summary[target_column(name, t, results.targets)].to_numpy(float) for t in results.targets
        }
        _grouped_bars(ax, labels, series, domain_colours(results))
        ax.axhline(0, color="black", lw=0.8)
        ax.set_ylabel(title)
    return to_base64_png(fig)


def diversity_figure(tables: ReportTables, results: StudyResults) -> str | None:
    """One panel per diversity metric that was measured (all-NaN metrics such as SBERT are skipped)."""
    panels = []
    for metric, name in DIVERSITY:
        labels, series = _per_domain(tables, results, metric)
        if any(np.isfinite(v).any() for v in series.values()):
            panels.append((name, labels, series))
    if not panels:
        return None
    fig, axes = _figure(len(panels), len(panels[0][1]))
    for ax, (name, labels, series) in zip(axes, panels, strict=True):
        _grouped_bars(ax, labels, series, domain_colours(results))
        ax.set_ylabel(name)
    return to_base64_png(fig)


def _pareto(kl: np.ndarray, wr: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Points no other point beats on both lower KL and higher win rate, in order of KL."""
    order = np.argsort(kl, kind="stable")
    keep, best = [], -np.inf
    for i in order:
        if wr[i] > best:
            keep.append(i)
            best = wr[i]
    return kl[keep], wr[keep]


def kl_figure(tables: ReportTables, results: StudyResults) -> str | None:
    """Win rate against KL from SFT for every seed-averaged setting, one colour per objective.

    All grid settings are shown, not only the selected ones: the frontier is the point of the plot.
    The dashed line per domain is its Pareto frontier: the best win rate reached at or below each KL.
    """
    means = tables.means.dropna(subset=["kl_seq", "win_rate"])
    if means.empty:
        return None
    colours = objective_colours(tables)
    markers = dict(zip(_domains(results), "o^sDvP", strict=False))
    fig = Figure(figsize=(7.5, 4.5), layout="constrained")
    ax = fig.subplots()
    for (objective, domain), group in means.groupby(["objective", "domain"], sort=False):
        ax.errorbar(
            group["kl_seq"],
            group["win_rate"],
            xerr=group["kl_seq_se"],
            fmt=markers.get(domain, "o"),
            color=colours[objective],
            alpha=0.8,
            ms=6,
            elinewidth=0.8,
            label=f"{objective} ({domain})",
        )
    for domain, colour in domain_colours(results).items():
        group = means[means["domain"] == domain]
        kl, wr = _pareto(group["kl_seq"].to_numpy(float), group["win_rate"].to_numpy(float))
        ax.plot(kl, wr, ls="--", lw=1, color=colour, drawstyle="steps-post", label=f"frontier ({domain})")
    ax.set_xlabel("KL from SFT (per sequence, nats)")
    ax.set_ylabel("win rate vs reference")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, ncols=2, loc="best")
    return to_base64_png(fig)


def sample_distribution_figure(
    tables: ReportTables,
    results: StudyResults,
    column: str,
    ylabel: str,
    reference: dict[str, float] | None = None,
) -> str | None:
    """Box plots of a per-sample quantity (length, gold score) per objective, one panel per domain.

    Uses the evaluation samples (the diversity samples are drawn at temperature 1 and would mix two
    distributions); every cell of an objective is pooled. ``reference`` draws a per-domain line,
    e.g. the dataset reference's mean length.
    """
    samples = results.samples
    if samples is None or samples.empty or samples[column].isna().all():
        return None
    evaluation = samples[samples["purpose"] == "eval"]
    data = evaluation if not evaluation.empty else samples
    objective = results.cells.drop_duplicates("cell_id").set_index("cell_id")["objective"]
    data = data.assign(objective=data["cell_id"].map(objective)).dropna(subset=["objective", column])
    colours = objective_colours(tables)
    objectives = list(colours)
    domains = [d for d in _domains(results) if d in set(data["domain"])]
    fig = Figure(figsize=(max(7.0, 1.2 * len(objectives) * len(domains)), 3.6), layout="constrained")
    axes = fig.subplots(1, len(domains), squeeze=False, sharey=True)[0]
    for ax, domain in zip(axes, domains, strict=True):
        per_domain = data[data["domain"] == domain]
        present = [o for o in objectives if (per_domain["objective"] == o).any()]
        boxes = ax.boxplot(
            [per_domain.loc[per_domain["objective"] == o, column].to_numpy(float) for o in present],
            tick_labels=present,
            patch_artist=True,
            showfliers=False,
        )
        for patch, o in zip(boxes["boxes"], present, strict=True):
            patch.set_facecolor(colours[o])
            patch.set_alpha(0.7)
        if reference and domain in reference:
            ax.axhline(reference[domain], color="black", ls="--", lw=1, label="reference")
        ax.set_title(domain, fontsize=10)
        ax.tick_params(axis="x", rotation=30, labelsize=8)
        ax.grid(axis="y", alpha=0.3)
    axes[0].set_ylabel(ylabel)
    if reference and domains[0] in reference:
        axes[0].legend(fontsize=8, loc="upper left")
    return to_base64_png(fig)


def robustness_figures(tables: ReportTables, domains: Sequence[str]) -> dict[str, str]:
    """Per objective with a grid: heatmaps of seed-averaged win rate, strategy × setting, per domain.

    Columns are labelled by the hyperparameters that vary within that objective only, so a fixed
    learning rate does not crowd every label.
    """
    figures = {}
    for objective, group in tables.means.groupby("objective", sort=False):
        settings = list(pd.unique(group["hparams"]))
        if len(settings) < 2:
            continue
        parsed = pd.DataFrame([json.loads(s) for s in settings])
        varying = [c for c in parsed.columns if parsed[c].astype(str).nunique() > 1]
        strategies = list(pd.unique(group["strategy"]))
        fig = Figure(
            figsize=(len(domains) * (0.9 * len(settings) + 2.2) + 1, 0.45 * len(strategies) + 1.8),
            layout="constrained",
        )
        axes = fig.subplots(1, len(domains), squeeze=False, sharey=True)[0]
        for ax, domain in zip(axes, domains, strict=True):
            grid = np.full((len(strategies), len(settings)), np.nan)
            for row in group[group["domain"] == domain].itertuples(index=False):
                grid[strategies.index(row.strategy), settings.index(row.hparams)] = row.win_rate
            image = ax.imshow(grid, vmin=0, vmax=1, cmap="viridis", aspect="auto")
            ax.set_xticks(
                range(len(settings)),
                [hparams_label(s, varying) for s in settings],
                rotation=30,
                ha="right",
                fontsize=8,
            )
            ax.set_yticks(range(len(strategies)), strategies, fontsize=8)
            ax.set_title(domain, fontsize=10)
            for (i, j), value in np.ndenumerate(grid):
                if np.isfinite(value):
                    ax.text(
                        j,
                        i,
                        f"{value:.2f}",
                        ha="center",
                        va="center",
                        fontsize=7,
                        color="white" if value < 0.6 else "black",
                    )
        fig.suptitle(f"{objective}: win rate over its hyperparameter grid", fontsize=10)
        fig.colorbar(image, ax=list(axes), label="win rate")
        figures[objective] = to_base64_png(fig)
    return figures


def rounds_figure(rounds: pd.DataFrame) -> str:
    """Per-round win rate, gain and boundary score of every data schedule (BS = 0.5 is the switch)."""
    fig = Figure(figsize=(11, 3.4), layout="constrained")
    axes = fig.subplots(1, 3)
    keys = ["objective", "schedule"] if "objective" in rounds and rounds["objective"].nunique() > 1 else ["schedule"]
    for i, (values, group) in enumerate(rounds.sort_values("round").groupby(keys, sort=False)):
        colour = PALETTE[i % len(PALETTE)]
        label = " ".join(values) if isinstance(values, tuple) else values
        axes[0].plot(group["round"], group["win_rate"], marker="o", color=colour, label=label)
        for data, marker in (("static", "o"), ("on_policy", "s")):
            chosen = group[group["data"] == data]
            axes[1].scatter(chosen["round"], chosen["gain"], marker=marker, color=colour)
        axes[1].plot(group["round"], group["gain"], color=colour, alpha=0.6)
        scored = group.dropna(subset=["boundary_score"])
        axes[2].plot(scored["round"], scored["boundary_score"], marker="o", color=colour)
    axes[0].set_ylabel("win rate")
    axes[0].legend(fontsize=8)
    axes[1].set_ylabel("gain this round (o static, s on-policy)")
    axes[1].axhline(0, color="black", lw=0.8)
    axes[2].set_ylabel("boundary score")
    axes[2].axhline(0.5, color="grey", ls="--", lw=0.8)
    for ax in axes:
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_xlabel("round")
        ax.grid(alpha=0.3)
    return to_base64_png(fig)


def online_figure(steps: pd.DataFrame) -> str:
    """Per online cell, reward-model and gold reward per step, and KL to the reference: the RM rising
    while gold falls is reward-model over-optimisation."""
    fig = Figure(figsize=(11, 3.4), layout="constrained")
    axes = fig.subplots(1, 3)
    for i, (cell, group) in enumerate(steps.sort_values("step").groupby("cell_id", sort=False)):
        colour = PALETTE[i % len(PALETTE)]
        for ax, column in zip(axes, ("reward_rm", "reward_gold", "kl"), strict=True):
            if column in group:
                ax.plot(group["step"], group[column], color=colour, label=cell if column == "reward_rm" else None)
    for ax, label in zip(axes, ("reward-model reward", "gold reward", "KL to reference (per sequence)"), strict=True):
        ax.set_xlabel("step")
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=7)
    return to_base64_png(fig)
