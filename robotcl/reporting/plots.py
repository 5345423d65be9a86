"""Figures of runs: success or return of every task along the whole sequence; training scalars.

One panel per task (Continual World's figure layout); each run is one line; grey bands mark the
window in which that task was trained (for the first run given).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure


def curves_figure(
    runs: list[dict[str, Any]],
    labels: list[str],
    metric: str = "success",
    mode: str = "stochastic",
    columns: int = 5,
) -> Figure:
    """Per-task curves of ``metric`` ("success" or "return") for ``mode`` episodes."""
    tasks: list[str] = []
    for r in runs:
        tasks += [t for t in r["tasks"] if t not in tasks]
    columns = max(1, min(columns, len(tasks)))
    rows = math.ceil(len(tasks) / columns)
    fig = Figure(figsize=(3.2 * columns, 2.5 * rows))
    FigureCanvasAgg(fig)
    axes = [fig.add_subplot(rows, columns, k + 1) for k in range(len(tasks))]
    for run, label in zip(runs, labels, strict=True):
        curves = run["curves"]
        if mode not in curves:
            continue
        steps = np.asarray(curves["steps"])
        values = np.asarray(curves[mode][metric], dtype=float)
        for j, name in enumerate(run["tasks"]):
            ax = axes[tasks.index(name)]
            ax.plot(steps, values[:, j], label=label, lw=1.4)
    shaded: set[str] = set()  # each task's training span, from the first run that trained it
    for run in runs:
        for name, (lo, hi) in zip(run["tasks"], run["bounds"], strict=False):
            if name not in shaded:
                shaded.add(name)
                axes[tasks.index(name)].axvspan(lo, hi, color="0.9", zorder=0)
    for ax, name in zip(axes, tasks, strict=True):
        ax.set_title(name, fontsize=10)
        ax.set_xlabel("env steps", fontsize=8)
        ax.tick_params(labelsize=7)
        if metric == "success":
            ax.set_ylim(-0.05, 1.05)
    axes[0].set_ylabel(f"{metric} ({mode})", fontsize=8)
    if len(runs) > 1:
        axes[0].legend(fontsize=7)
    fig.tight_layout()
    return fig


def save_curves(runs: list[dict[str, Any]], labels: list[str], path: str, **kwargs: Any) -> str:
    """Write :func:`curves_figure` to a PNG."""
    curves_figure(runs, labels, **kwargs).savefig(path, dpi=110)
    return path


def tag_matches(run: dict[str, Any], tag: str) -> list[str]:
    """The tags of ``run`` that ``tag`` names: itself, or every tag it begins if it ends in *."""
    if tag.endswith("*"):
        return sorted(t for t in run if t.startswith(tag[:-1]))
    return [tag] if tag in run else []


def scalars_figure(
    runs: list[dict[str, list[list[float]]]], labels: list[str], tags: list[str]
) -> Figure:
    """One panel per training scalar ``tags`` (a tag may end in ``*``: every tag it begins),
    one line per run, against env steps."""
    chosen: list[str] = []
    for tag in tags:
        for run in runs:
            chosen += [t for t in tag_matches(run, tag) if t not in chosen]
    columns = max(1, min(3, len(chosen)))
    rows = max(1, math.ceil(len(chosen) / columns))
    fig = Figure(figsize=(4.0 * columns, 2.8 * rows))
    FigureCanvasAgg(fig)
    for k, tag in enumerate(chosen):
        ax = fig.add_subplot(rows, columns, k + 1)
        for run, label in zip(runs, labels, strict=True):
            points = [(s, v) for s, v in run.get(tag, []) if v is not None]
            if points:
                steps, values = zip(*points, strict=True)
                ax.plot(steps, values, label=label, lw=1.2)
        ax.set_title(tag, fontsize=9)
        ax.set_xlabel("env steps", fontsize=8)
        ax.tick_params(labelsize=7)
        if k == 0 and len(runs) > 1:
            ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


def save_scalars(
    runs: list[dict[str, list[list[float]]]], labels: list[str], tags: list[str], path: str
) -> str:
    """Write :func:`scalars_figure` to a PNG."""
    scalars_figure(runs, labels, tags).savefig(path, dpi=110)
    return path
