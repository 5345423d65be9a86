"""The report of a study's records folder (``robotcl report docs/results/study``): every table
and figure of docs/results.md rebuilt from the committed records alone.

- learnability: each task's success at the end of its own training in the ``single`` cells
  (one fresh learner a task: the single-task agent at the study's budget), a task a seed, and
  the step each first reached success;
- the strategy table: ACC, memory, BWT, forgetting, FWT (GEM) and FWT (Continual World's AUC
  form, against the study's own ``single`` cells of every seed), mean and 90% bootstrap interval
  over seeds, with n; wall time a run;
- final success a task a strategy, the success matrix of each strategy (mean over seeds), and
  the success and return curves along the sequence;
- the gap table, where ``robotcl gap`` left its supervised cells (a supervised learner's, such
  as ``bc``) beside the RL ones: SL, RL and RL - SL a strategy (robotcl.reporting.gap). Those
  cells enter no other table.

Written into the records folder: study.txt, study.json, final_success.png, curves.png,
return_curves.png, learnability.png, matrices.png, and with a gap gap.png.
"""

from __future__ import annotations

import contextlib
import json
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from robotcl.errors import UserInputError
from robotcl.experiment import load_reference
from robotcl.metrics import aggregate, compute_metrics
from robotcl.outputs import RunDirectory, atomic_write_text
from robotcl.registry import AGENTS
from robotcl.reporting.comparison import final_success_figure, mean_curves
from robotcl.reporting.gap import gap_figure, gap_summary, gap_table
from robotcl.reporting.plots import curves_figure
from robotcl.reporting.tables import MIN_RUNS_FOR_INTERVAL, format_table, stat_text
from robotcl.study.cells import Cell, cell_results
from robotcl.study.records import record_cells

#: the strategy whose cells are the single-task reference (learnability, CW forward transfer)
REFERENCE = "single"
THRESHOLD = 0.8
STUDY_COLUMNS = ("acc", "memory", "bwt", "forgetting", "fwt", "fwt_auc", "final_return")


def _first_success(results: dict[str, Any], task: int) -> int | None:
    """Steps into its own training at which ``task`` first reached success >= THRESHOLD."""
    mode = results["metric_mode"]
    steps = np.asarray(results["curves"]["steps"], float)
    success = np.asarray(results["curves"][mode]["success"], float)[:, task]
    trained = np.asarray(results["curves"]["training_task"])
    start = results["bounds"][task][0]
    hits = np.nonzero((trained == task) & (success >= THRESHOLD))[0]
    return int(steps[hits[0]] - start) if len(hits) else None


def learnability(cells: list[Cell]) -> tuple[str, dict[str, Any]]:
    """Each task's success at the end of its own training in the reference cells, a seed a
    column, and the first step of success; how many seeds reach the threshold."""
    runs = sorted(
        ((c.seed, cell_results(c)) for c in cells if c.label == REFERENCE),
        key=lambda pair: pair[0],
    )
    runs = [(seed, r) for seed, r in runs if r is not None]
    if not runs:
        return "", {}
    tasks = runs[0][1]["tasks"]
    table: dict[str, Any] = {}
    rows = [["task", *(f"s{seed}" for seed, _ in runs), f">= {THRESHOLD:g}", "first success"]]
    for j, task in enumerate(tasks):
        finals = [float(r["R"][r["metric_mode"]]["success"][j][j]) for _, r in runs]
        firsts = [_first_success(r, j) for _, r in runs]
        reached = sum(v >= THRESHOLD for v in finals)
        table[task] = {"final": finals, "first_success_step": firsts, "reached": reached}
        rows.append(
            [
                task,
                *(f"{v:.2f}" for v in finals),
                f"{reached}/{len(finals)}",
                " ".join("-" if s is None else f"{s / 1000:g}k" for s in firsts),
            ]
        )
    title = (
        f"learnability: success at the end of each task's own training, one fresh learner a "
        f"task ({REFERENCE}), a seed a column ({runs[0][1]['metric_mode']} episodes)"
    )
    return title + "\n" + format_table(rows), table


def _reference(cells: list[Cell], tasks: list[str], mode: str) -> dict[int, list[tuple]]:
    paths = [c.run_dir for c in cells if c.label == REFERENCE and cell_results(c) is not None]
    return load_reference(paths, tasks, mode) if paths else {}


def study_metrics(cells: list[Cell]) -> dict[str, list[dict[str, Any]]]:
    """Each strategy's finished runs' metrics, with Continual World's forward transfer against
    the study's reference cells (every seed) where the run was given no reference."""
    out: dict[str, list[dict[str, Any]]] = {}
    references: dict[tuple, dict[int, list[tuple]]] = {}
    for cell in cells:
        results = cell_results(cell)
        if results is None:
            continue
        metrics = dict(results["metrics"])
        mode, tasks = results["metric_mode"], results["tasks"]
        key = (tuple(tasks), mode)
        if key not in references:
            references[key] = _reference(cells, tasks, mode)
        if cell.label != REFERENCE and "fwt_auc" not in metrics and references[key]:
            curves = results["curves"]
            again = compute_metrics(
                np.asarray(results["R"][mode]["success"], float),
                curves={
                    "steps": np.asarray(curves["steps"], float),
                    "success": np.asarray(curves[mode]["success"], float),
                    "bounds": results["bounds"],
                    "training_task": np.asarray(curves["training_task"]),
                },
                reference=references[key],
            )
            metrics.update({k: again[k] for k in ("fwt_auc", "auc_per_task", "reference_auc")})
        metrics["wall_time_s"] = float(results.get("wall_time_s", np.nan))
        out.setdefault(cell.label, []).append(metrics)
    return out


def strategy_table(cells: list[Cell]) -> tuple[str, dict[str, Any]]:
    """Mean [90% interval] of every study column a strategy, n, and the wall time a run."""
    by_label = study_metrics(cells)
    rows = [["strategy", "n", *STUDY_COLUMNS, "time a run"]]
    summary: dict[str, Any] = {}
    for label, metrics in by_label.items():
        stats = aggregate(metrics)
        summary[label] = stats
        minutes = stats.get("wall_time_s", {}).get("mean", np.nan) / 60
        rows.append(
            [
                label,
                str(len(metrics)),
                *(stat_text(c, stats.get(c)) for c in STUDY_COLUMNS),
                "-" if minutes != minutes else f"{minutes:.0f} min",
            ]
        )
    title = (
        f"strategies: mean [90% bootstrap interval] n=runs over seeds (no interval below "
        f"{MIN_RUNS_FOR_INTERVAL} runs); fwt: GEM's (against the random "
        f"initial policy), fwt_auc: Continual World's (against the {REFERENCE} cells)"
    )
    return title + "\n" + format_table(rows), summary


def matrices_figure(cells: list[Cell]) -> Figure | None:
    """The success matrix R of each strategy, mean over its seeds."""
    grouped: dict[str, list[np.ndarray]] = {}
    tasks: list[str] = []
    for cell in cells:
        results = cell_results(cell)
        if results is None:
            continue
        tasks = results["tasks"]
        R = np.asarray(results["R"][results["metric_mode"]]["success"], float)
        grouped.setdefault(cell.label, []).append(R)
    if not grouped:
        return None
    columns = min(4, len(grouped))
    rows = -(-len(grouped) // columns)
    fig = Figure(figsize=(2.8 * columns, 2.8 * rows))
    FigureCanvasAgg(fig)
    for k, (label, matrices) in enumerate(grouped.items()):
        ax = fig.add_subplot(rows, columns, k + 1)
        mean = np.mean(matrices, 0)
        ax.imshow(mean, vmin=0, vmax=1, cmap="viridis")
        for (i, j), v in np.ndenumerate(mean):
            ax.text(j, i, f"{v:.1f}", ha="center", va="center", fontsize=6, color="w")
        ax.set_title(f"{label} (n={len(matrices)})", fontsize=8)
        ax.set_xticks(range(len(tasks)), tasks, fontsize=6)
        ax.set_yticks(range(len(tasks)), tasks, fontsize=6)
        if k % columns == 0:
            ax.set_ylabel("after training", fontsize=7)
    fig.tight_layout()
    return fig


def learnability_figure(cells: list[Cell]) -> Figure | None:
    """Each task's success (top) and return (bottom) during its own training, a panel a task,
    a line a seed."""
    runs = sorted(
        ((c.seed, cell_results(c)) for c in cells if c.label == REFERENCE), key=lambda p: p[0]
    )
    runs = [(s, r) for s, r in runs if r is not None]
    if not runs:
        return None
    tasks = runs[0][1]["tasks"]
    fig = Figure(figsize=(2.4 * len(tasks), 4.4))
    FigureCanvasAgg(fig)
    axes = fig.subplots(2, len(tasks), sharex=True, squeeze=False)
    for seed, r in runs:
        mode = r["metric_mode"]
        steps = np.asarray(r["curves"]["steps"], float)
        trained = np.asarray(r["curves"]["training_task"])
        for j in range(len(r["tasks"])):
            inside = trained == j
            x = (steps[inside] - r["bounds"][j][0]) / 1000
            for row, metric in enumerate(("success", "return")):
                y = np.asarray(r["curves"][mode][metric])[inside, j]
                axes[row][j].plot(x, y, marker=".", lw=1, label=f"s{seed}")
    for j, task in enumerate(tasks):
        axes[0][j].set_title(task, fontsize=9)
        axes[0][j].set_ylim(-0.05, 1.05)
        axes[1][j].set_xlabel("k steps into the task", fontsize=7)
    axes[0][0].set_ylabel("success")
    axes[1][0].set_ylabel("return")
    axes[0][0].legend(fontsize=7)
    fig.tight_layout()
    return fig


def is_supervised(cell: Cell) -> bool:
    """Whether ``cell`` was run by a supervised learner (one with held-out losses, as ``bc``):
    the gap's SL side."""
    try:
        config = RunDirectory(Path(cell.run_dir)).read_config()
        return hasattr(AGENTS.get(config["agent"]["name"]), "heldout_losses")
    except Exception:  # an unreadable config or an agent not installed here: an RL cell
        return False


def _gap_section(root: Path, sl: list[Cell], rl: list[Cell]) -> tuple[str, dict[str, Any]]:
    """The gap table of the supervised cells and the RL cells of the same strategies and seeds,
    with the experts the gap records in ``root`` flag."""
    pairs = {(c.label, c.seed) for c in sl}
    summary = gap_summary(sl, [c for c in rl if (c.label, c.seed) in pairs])
    experts = []
    for path in sorted(root.glob("gap-*.json")):
        with contextlib.suppress(OSError, ValueError, AttributeError):
            experts += json.loads(path.read_text()).get("experts", [])
    title = (
        "gap: the same strategies and seeds by supervised learning (SL: behaviour cloning of the "
        "experts) and by reinforcement learning (RL)"
    )
    return title + "\n" + gap_table(summary, experts), summary


def _one_record_a_cell(root: Path, side: str, cells: list[Cell]) -> None:
    """Two records of one strategy and seed on one side were made with different settings (a
    key each): averaging them would count one seed twice, so the report refuses the folder."""
    seen: dict[tuple[str, int], Cell] = {}
    for cell in cells:
        other = seen.setdefault((cell.group, cell.seed), cell)
        if other is not cell:
            raise UserInputError(
                f"records folder {root}",
                f"two {side} records of {cell.group} seed {cell.seed} with different settings "
                f"({Path(other.run_dir).name}, {Path(cell.run_dir).name})",
                "keep one study's records in a folder (move the other one away)",
            )


def study_report(folder: str | Path) -> str:
    """Every table of the study in ``folder`` (printed and in study.txt/.json) and its
    figures."""
    root = Path(folder)
    everything = record_cells(root)
    sl = [c for c in everything if is_supervised(c)]
    cells = [c for c in everything if c not in sl]
    for side, group in (("supervised", sl), ("RL", cells)):
        _one_record_a_cell(root, side, group)
    learn_text, learn = learnability(cells)
    table_text, summary = strategy_table(cells)
    gap_text, gap = _gap_section(root, sl, cells) if sl else ("", {})
    heading = f"{root}: {len(everything)} records" + (f" ({len(sl)} supervised)" if sl else "")
    text = "\n\n".join(t for t in (heading, learn_text, table_text, gap_text) if t)
    atomic_write_text(root / "study.txt", text + "\n")
    record = {"learnability": learn, "strategies": summary, "records": len(everything)}
    if gap:
        record["gap"] = gap
    atomic_write_text(root / "study.json", json.dumps(record, indent=1))
    figures = {
        "final_success.png": final_success_figure(cells),
        "matrices.png": matrices_figure(cells),
        "learnability.png": learnability_figure(cells),
        "gap.png": gap_figure(gap) if gap else None,
    }
    runs, labels = mean_curves(cells)
    if runs:
        mode = runs[0]["metric_mode"]
        figures["curves.png"] = curves_figure(runs, labels, metric="success", mode=mode)
        figures["return_curves.png"] = curves_figure(runs, labels, metric="return", mode=mode)
    for name, figure in figures.items():
        if figure is not None:
            figure.savefig(root / name, dpi=110)
    return text
