"""The gap table of a ``robotcl gap`` folder: per strategy, ACC, memory, BWT, forgetting and FWT
(GEM's, the same definition on both sides) for SL and RL and RL - SL, each a mean with a 90%
bootstrap interval over seeds; a figure of it and the supervised side's held-out action-loss
matrices, all written into the gap folder and its TensorBoard."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from robotcl.errors import UserInputError
from robotcl.metrics import bootstrap_ci, bootstrap_difference
from robotcl.outputs import atomic_write_text
from robotcl.reporting.tables import MIN_RUNS_FOR_INTERVAL, format_table, interval_text, size_text
from robotcl.study.cells import Cell, cell_results
from robotcl.study.grid import grid_cells
from robotcl.study.keys import GAP_FILE

#: the metrics the gap table compares (GEM's FWT: defined the same way on both sides)
GAP_METRICS = ("acc", "bwt", "forgetting", "fwt")
SIDES = ("sl", "rl")


def _side_metrics(cells: list[Cell]) -> dict[str, list[dict[str, Any]]]:
    """Each strategy's finished runs: their metrics and held-out loss matrices."""
    out: dict[str, list[dict[str, Any]]] = {}
    for cell in cells:
        results = cell_results(cell)
        if results is None:
            continue
        out.setdefault(cell.label, []).append({**results["metrics"], "L": results.get("L")})
    return out


def gap_summary(sl_cells: list[Cell], rl_cells: list[Cell]) -> dict[str, Any]:
    """Per strategy: each side's mean [90% interval] of every gap metric, RL - SL with its
    interval, the memory each side's strategy keeps, and the runs counted."""
    sides = {"sl": _side_metrics(sl_cells), "rl": _side_metrics(rl_cells)}
    labels = list(dict.fromkeys(c.label for c in [*sl_cells, *rl_cells]))
    summary: dict[str, Any] = {}
    for label in labels:
        entry: dict[str, Any] = {}
        values = {}
        for side in SIDES:
            runs = sides[side].get(label, [])
            entry[f"{side}_runs"] = len(runs)
            memory = [r["memory"] for r in runs if "memory" in r]
            entry[f"{side}_memory"] = float(np.mean(memory)) if memory else None
            values[side] = {m: [float(r.get(m, math.nan)) for r in runs] for m in GAP_METRICS}
            entry[side] = {
                m: _interval(bootstrap_ci(v), len(v)) for m, v in values[side].items() if v
            }
        pairs = min(len(values["rl"]["acc"]), len(values["sl"]["acc"]))
        entry["diff"] = {
            m: _interval(bootstrap_difference(values["rl"][m], values["sl"][m]), pairs)
            for m in GAP_METRICS
        }
        losses = [np.asarray(r["L"], float) for r in sides["sl"].get(label, []) if r.get("L")]
        entry["heldout_loss_matrix"] = np.mean(losses, 0).tolist() if losses else None
        summary[label] = entry
    return summary


def _interval(stat: tuple[float, float, float], n: int) -> dict[str, float]:
    return {**dict(zip(("mean", "low", "high"), stat, strict=True)), "n": n}


def _cell(stats: dict[str, float] | None) -> str:
    if not stats:
        return "-"
    return interval_text(stats["mean"], stats["low"], stats["high"], int(stats["n"]))


def gap_table(summary: dict[str, Any], experts: list[dict[str, Any]] | None = None) -> str:
    """Three rows a strategy (SL, RL, RL - SL) by ACC, memory, BWT, forgetting and FWT;
    ``experts``: gap.json's records (task, success, threshold, flagged)."""
    rows = [["strategy", "side", "runs", "acc", "memory", "bwt", "forgetting", "fwt"]]
    for label, entry in summary.items():
        for side in SIDES:
            memory = entry[f"{side}_memory"]
            rows.append(
                [
                    label if side == "sl" else "",
                    side.upper(),
                    str(entry[f"{side}_runs"]),
                    _cell(entry[side].get("acc")),
                    "-" if memory is None else size_text(memory),
                    *(_cell(entry[side].get(m)) for m in GAP_METRICS[1:]),
                ]
            )
        diff = entry["diff"]
        rest = (_cell(diff[m]) for m in GAP_METRICS[1:])
        rows.append(["", "RL-SL", "", _cell(diff["acc"]), "", *rest])
    text = (
        "mean [90% bootstrap interval] n=runs over seeds (no interval below "
        f"{MIN_RUNS_FOR_INTERVAL} runs); RL-SL resamples each side's seeds\n"
    )
    text += format_table(rows)
    flagged = [e for e in experts or [] if e["flagged"]]
    if flagged:
        text += "\n\nexperts below their success threshold (the SL side clones them as they are):"
        text += "".join(
            f"\n  {e['task']}: {e['success'] or 0:.2f} < {e['threshold']:g}" for e in flagged
        )
    return text


def gap_figure(summary: dict[str, Any]) -> Figure:
    """One panel a metric: SL and RL bars for each strategy with their 90% intervals."""
    labels = list(summary)
    fig = Figure(figsize=(3.2 * len(GAP_METRICS), 3.2))
    FigureCanvasAgg(fig)
    x = np.arange(len(labels))
    for k, metric in enumerate(GAP_METRICS):
        ax = fig.add_subplot(1, len(GAP_METRICS), k + 1)
        for offset, side, color in ((-0.2, "sl", "tab:blue"), (0.2, "rl", "tab:orange")):
            stats = [summary[lab][side].get(metric) or {} for lab in labels]
            mean = np.array([s.get("mean", np.nan) for s in stats])
            low = np.array([s.get("low", np.nan) for s in stats])
            high = np.array([s.get("high", np.nan) for s in stats])
            err = np.nan_to_num(np.stack([mean - low, high - mean]))
            ax.bar(x + offset, mean, 0.4, yerr=err, color=color, label=side.upper(), capsize=2)
        ax.axhline(0, color="k", lw=0.5)
        ax.set_xticks(x, labels, rotation=30, ha="right", fontsize=7)
        ax.set_title(metric.upper() if metric != "forgetting" else "forgetting")
        if k == 0:
            ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


def heldout_figure(summary: dict[str, Any], tasks: list[str]) -> Figure | None:
    """The supervised side's held-out action-loss matrix of each strategy (mean over seeds)."""
    matrices = {k: v["heldout_loss_matrix"] for k, v in summary.items() if v["heldout_loss_matrix"]}
    if not matrices:
        return None
    fig = Figure(figsize=(3.0 * len(matrices), 3.0))
    FigureCanvasAgg(fig)
    top = max(np.nanmax(np.asarray(m)) for m in matrices.values()) or 1.0
    for k, (label, matrix) in enumerate(matrices.items()):
        ax = fig.add_subplot(1, len(matrices), k + 1)
        values = np.asarray(matrix)
        image = ax.imshow(values, vmin=0, vmax=top, cmap="viridis_r")
        for (i, j), v in np.ndenumerate(values):
            color = "w" if v > top / 2 else "k"
            ax.text(j, i, f"{v:.3f}", ha="center", va="center", fontsize=7, color=color)
        ax.set_title(label, fontsize=8)
        ax.set_xticks(range(len(tasks)), tasks, fontsize=6, rotation=90)
        ax.set_yticks(range(len(tasks)), tasks, fontsize=6)
        ax.set_xlabel("held-out task j", fontsize=7)
        if k == 0:
            ax.set_ylabel("after training task i", fontsize=7)
    fig.colorbar(image, ax=fig.axes, shrink=0.8, label="action MSE")
    return fig


def is_gap(path: str | Path) -> bool:
    """A ``robotcl gap`` folder (it holds gap.json)."""
    return (Path(path) / GAP_FILE).is_file()


def _read_gap(root: Path) -> dict[str, Any]:
    try:
        return json.loads((root / GAP_FILE).read_text())
    except (OSError, ValueError) as exc:
        raise UserInputError(f"gap '{root}'", f"{GAP_FILE} cannot be read ({exc})") from None


def gap_report(root: str | Path) -> str:
    """The gap table of a gap folder, from its grids as they are now (``robotcl report``)."""
    root = Path(root)
    record = _read_gap(root)
    summary = gap_summary(grid_cells(record["sl_grid"]), grid_cells(record["rl_grid"]))
    return f"{root}\n" + gap_table(summary, record["experts"])


def write_gap(root: Path) -> str:
    """gap.txt, the table in gap.json, gap.png, heldout_loss.png and TensorBoard
    (``<gap>/tb``), from the gap folder's gap.json and grids."""
    from torch.utils.tensorboard import SummaryWriter

    record = _read_gap(root)
    sl_cells, rl_cells = grid_cells(record["sl_grid"]), grid_cells(record["rl_grid"])
    summary = gap_summary(sl_cells, rl_cells)
    text = gap_table(summary, record["experts"])
    atomic_write_text(root / "gap.txt", text + "\n")
    atomic_write_text(root / GAP_FILE, json.dumps({"strategies": summary, **record}, indent=1))
    writer = SummaryWriter(str(root / "tb"))
    writer.add_text("gap/table", "<pre>" + text + "</pre>")
    figure = gap_figure(summary)
    figure.savefig(root / "gap.png", dpi=110)
    writer.add_figure("gap/metrics", figure)
    losses = heldout_figure(summary, [e["task"] for e in record["experts"]])
    if losses is not None:
        losses.savefig(root / "heldout_loss.png", dpi=110)
        writer.add_figure("gap/heldout_loss", losses)
    for label, entry in summary.items():
        for metric in GAP_METRICS:
            for side in (*SIDES, "diff"):
                value = (entry[side].get(metric) or {}).get("mean", math.nan)
                if value == value:
                    writer.add_scalar(f"gap/{label}/{metric}/{side}", value, 0)
    writer.close()
    return text
