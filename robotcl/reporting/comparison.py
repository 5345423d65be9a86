"""The comparison of a grid: a table of ACC, BWT, forgetting and FWT with bootstrap intervals over
seeds (and the spread across task orders of a grid over several), and figures (final success per
task per strategy; success and return on every task along the whole sequence, as in Continual
World's figures), written as comparison.txt/.json, PNG and TensorBoard into the grid's folder."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from robotcl.metrics import aggregate
from robotcl.outputs import atomic_write_text
from robotcl.reporting.plots import curves_figure
from robotcl.reporting.tables import COLUMNS, SCORES, format_table, stat_text
from robotcl.study.cells import Cell, cell_results


def comparison_table(
    cells: list[Cell],
) -> tuple[str, dict[str, Any], dict[str, Any] | None]:
    """Mean [90% interval] of each metric per strategy, the spread across task orders (None for
    a grid of one order), and the failed runs."""
    by_label: dict[str, list[dict]] = {}
    for cell in cells:
        results = cell_results(cell)
        if results is not None:
            by_label.setdefault(cell.label, []).append(results["metrics"])
    rows = [["strategy", "runs", *COLUMNS]]
    summary: dict[str, Any] = {}
    for label in dict.fromkeys(c.label for c in cells):
        metrics = by_label.get(label, [])
        stats = aggregate(metrics) if metrics else {}
        summary[label] = stats
        cells_txt = [stat_text(column, stats.get(column)) for column in COLUMNS]
        rows.append([label, str(len(metrics)), *cells_txt])
    text = format_table(rows)
    spread = order_spread(cells)
    if spread:
        text += "\n\n" + spread[0]
    spread_summary = spread[1] if spread else None
    failed = [c for c in cells if c.status == "failed"]
    if failed:
        text += "\n\nfailed runs:\n" + "\n".join(
            f"  {c.label} seed {c.seed}: {c.error} (see {c.run_dir}/error.txt)" for c in failed
        )
    stopped = [c for c in cells if c.status in ("stopped", "pending")]
    if stopped:
        text += "\n\nstopped runs (robotcl compare --resume continues them):\n" + "\n".join(
            f"  {c.label} seed {c.seed}: {c.run_dir}" for c in stopped
        )
    return text, summary, spread_summary


def order_spread(cells: list[Cell]) -> tuple[str, dict[str, Any]] | None:
    """How each metric moves with the task order: per strategy, the mean over seeds of each
    order, then their standard deviation and range across orders. None for a grid of one order."""
    means: dict[str, dict[str, list[dict]]] = {}
    for cell in cells:
        results = cell_results(cell)
        if results is not None and cell.order:
            means.setdefault(cell.label, {}).setdefault(cell.order, []).append(results["metrics"])
    if not any(len(orders) > 1 for orders in means.values()):
        return None
    rows = [["strategy", "orders", *SCORES]]
    summary: dict[str, Any] = {}
    for label, orders in means.items():
        per_order = {o: aggregate(ms) for o, ms in orders.items()}
        summary[label] = {}
        texts = []
        for column in SCORES:
            values = [st[column]["mean"] for st in per_order.values() if column in st]
            if not values:
                texts.append("-")
                continue
            sd = float(np.std(values, ddof=1)) if len(values) > 1 else 0.0
            summary[label][column] = {
                "by_order": {o: st[column]["mean"] for o, st in per_order.items() if column in st},
                "sd": sd,
                "min": min(values),
                "max": max(values),
            }
            texts.append(f"sd {sd:.3f} [{min(values):+.3f}, {max(values):+.3f}]")
        rows.append([label, str(len(orders)), *texts])
    title = "across task orders (each order's mean over seeds: sd [min, max]):"
    return title + "\n" + format_table(rows), summary


def final_success_figure(cells: list[Cell]) -> Figure | None:
    """Grouped bars: final success on each task (by name, whatever the order), one bar per
    strategy (mean over seeds and orders)."""
    by_task: dict[str, dict[str, list[float]]] = {}
    tasks: list[str] = []
    for cell in cells:
        results = cell_results(cell)
        if results is None:
            continue
        R = np.asarray(results["R"][results["metric_mode"]]["success"])
        for name, value in zip(results["tasks"], R[-1], strict=True):
            by_task.setdefault(cell.label, {}).setdefault(name, []).append(float(value))
        tasks += [t for t in results["tasks"] if t not in tasks]
    if not by_task:
        return None
    finals = {label: [np.mean(v.get(t, [np.nan])) for t in tasks] for label, v in by_task.items()}
    fig = Figure(figsize=(max(6.0, 0.9 * len(tasks) * max(1, len(finals)) / 2), 3.2))
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    width = 0.8 / len(finals)
    for k, (label, values) in enumerate(finals.items()):
        x = np.arange(len(tasks)) + (k - (len(finals) - 1) / 2) * width
        ax.bar(x, values, width, label=label)
    ax.set_xticks(range(len(tasks)), tasks)
    ax.set_ylim(0, 1.05)
    ax.set_ylabel("final success")
    ax.legend(fontsize=7, ncols=min(4, len(finals)))
    fig.tight_layout()
    return fig


def mean_curves(cells: list[Cell]) -> tuple[list[dict[str, Any]], list[str]]:
    """One pseudo-run per strategy (and order) whose success and return curves are means over its
    seeds."""
    grouped: dict[str, list[dict]] = {}
    for cell in cells:
        results = cell_results(cell)
        if results is not None:
            grouped.setdefault(cell.group, []).append(results)
    runs, labels = [], []
    for label, group in grouped.items():
        mode = group[0]["metric_mode"]
        length = min(len(r["curves"]["steps"]) for r in group)
        means = {
            metric: np.mean([np.asarray(r["curves"][mode][metric])[:length] for r in group], 0)
            for metric in ("success", "return")
        }
        steps = group[0]["curves"]["steps"][:length]
        runs.append(
            {
                "tasks": group[0]["tasks"],
                "bounds": group[0]["bounds"],
                "curves": {"steps": steps, mode: means},
                "metric_mode": mode,
            }
        )
        labels.append(label)
    return runs, labels


def write_comparison(root: Path, cells: list[Cell]) -> str:
    """comparison.json, comparison.txt, final_success.png, curves.png and TensorBoard."""
    from torch.utils.tensorboard import SummaryWriter

    text, summary, spread = comparison_table(cells)
    atomic_write_text(root / "comparison.txt", text + "\n")
    atomic_write_text(
        root / "comparison.json",
        json.dumps(
            {
                "runs": [asdict(c) for c in cells],
                "metrics": summary,
                "orders": spread,
            },
            indent=1,
        ),
    )
    writer = SummaryWriter(str(root / "tb"))
    writer.add_text("compare/table", "<pre>" + text + "</pre>")
    bars = final_success_figure(cells)
    if bars is not None:
        bars.savefig(root / "final_success.png", dpi=110)
        writer.add_figure("compare/final_success", bars)
    runs, labels = mean_curves(cells)
    if runs:
        mode = runs[0]["metric_mode"]
        for metric, name in (("success", "curves.png"), ("return", "return_curves.png")):
            fig = curves_figure(runs, labels, metric=metric, mode=mode)
            fig.savefig(root / name, dpi=110)
            writer.add_figure(f"compare/{metric}_curves", fig)
    writer.close()
    return text
