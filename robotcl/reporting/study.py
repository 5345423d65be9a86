"""The report of a study's records folder (``robotcl report docs/results/study``): every table
and figure of docs/results.md rebuilt from the committed records alone.

- learnability: each task's success at the end of its own training in the ``single`` cells
  (one fresh learner a task: the single-task agent at the study's budget), a task a seed, and
  the step each first reached success, and how many of its last 4 evaluations were at success
  (held, or drawn once at the budget's end). Those cells may come in pieces (``tasks=[...]`` of the
  suite, one record a piece and seed, as dexterous20's twenty tasks are run): tasks are matched
  by name, in the suite's order, and each piece is a group of its own in the other tables;
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
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from robotcl.envs.suites import make_suite
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
from robotcl.study.records import SUITE_FILE, record_cells

#: the strategy whose cells are the single-task reference (learnability, CW forward transfer)
REFERENCE = "single"
THRESHOLD = 0.8
#: the evaluations at the end of a task's own training that say whether success is held
#: (the last 10k steps at the study's 2.5k cadence), not drawn once at the budget's end
LAST = 4
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


def _last_successes(results: dict[str, Any], task: int) -> int:
    """How many of the last :data:`LAST` evaluations of ``task``'s own training were at
    success."""
    success = np.asarray(results["curves"][results["metric_mode"]]["success"], float)[:, task]
    own = success[np.asarray(results["curves"]["training_task"]) == task]
    return int((own[-LAST:] >= THRESHOLD).sum())


def _reference_runs(cells: list[Cell]) -> list[tuple[int, dict[str, Any]]]:
    """The finished reference cells' (seed, results), by seed."""
    runs = [(c.seed, cell_results(c)) for c in cells if c.label == REFERENCE]
    return sorted(((s, r) for s, r in runs if r is not None), key=lambda pair: pair[0])


def _suite_order(cells: list[Cell], names: list[str]) -> list[str]:
    """``names`` in the order of the reference cells' suite (as the first one's config, or the
    suite file its record kept, builds it); in order of first appearance where that suite cannot
    be built here."""
    try:
        cell = next(c for c in cells if c.label == REFERENCE)
        config = RunDirectory(Path(cell.run_dir)).read_config()
        kept = Path(cell.run_dir) / SUITE_FILE  # a suite file as its record kept it
        name = str(kept) if kept.is_file() else config["suite"]
        suite = make_suite(name, config["order"], settings=config["suite_settings"])
        rank = {name: k for k, name in enumerate(suite.task_names)}
    except Exception:  # a suite file or plug-in that is not here: the records' own order
        return names
    return sorted(names, key=lambda name: rank.get(name, len(rank)))


def _by_task(runs: list[tuple[int, dict[str, Any]]]) -> dict[str, dict[int, tuple[dict, int]]]:
    """Task name -> seed -> (the results that trained it, its index there)."""
    out: dict[str, dict[int, tuple[dict, int]]] = {}
    for seed, results in runs:
        for j, task in enumerate(results["tasks"]):
            out.setdefault(task, {})[seed] = (results, j)
    return out


def learnability(cells: list[Cell]) -> tuple[str, dict[str, Any]]:
    """Each task's success at the end of its own training in the reference cells (by task
    name, whichever piece trained it), a seed a column, and the first step of success; how many
    seeds reach the threshold."""
    runs = _reference_runs(cells)
    if not runs:
        return "", {}
    seeds = sorted({seed for seed, _ in runs})
    by_task = _by_task(runs)
    table: dict[str, Any] = {}
    rows = [
        [
            "task",
            *(f"s{seed}" for seed in seeds),
            f">= {THRESHOLD:g}",
            "first success",
            f"last {LAST}",
        ]
    ]
    for task in _suite_order(cells, list(by_task)):
        trained = [by_task[task].get(seed) for seed in seeds]
        finals = [
            None if t is None else float(t[0]["R"][t[0]["metric_mode"]]["success"][t[1]][t[1]])
            for t in trained
        ]
        firsts = [None if t is None else _first_success(*t) for t in trained]  # a seed each
        done = [v for v in finals if v is not None]
        reached = sum(v >= THRESHOLD for v in done)
        lasts = [None if t is None else _last_successes(*t) for t in trained]
        table[task] = {
            "final": finals,
            "first_success_step": firsts,
            "reached": reached,
            f"last_{LAST}_at_success": lasts,
        }
        rows.append(
            [
                task,
                *("-" if v is None else f"{v:.2f}" for v in finals),
                f"{reached}/{len(done)}",
                " ".join(
                    "-" if s is None else f"{s / 1000:g}k"
                    for s, t in zip(firsts, trained, strict=True)
                    if t is not None  # the seeds that trained this task
                ),
                " ".join(f"{n}/{LAST}" for n in lasts if n is not None),
            ]
        )
    title = (
        f"learnability: success at the end of each task's own training, one fresh learner a "
        f"task ({REFERENCE}), a seed a column ({runs[0][1]['metric_mode']} episodes)"
    )
    return title + "\n" + format_table(rows), table


def in_pieces(cells: list[Cell]) -> list[Cell]:
    """``cells`` with each piece of a reference study in pieces (reference cells of different
    task lists) made a group of its own: its order names its tasks, so that no table averages
    runs of different tasks."""
    tasks = {
        id(c): tuple(r["tasks"])
        for c in cells
        if c.label == REFERENCE and (r := cell_results(c)) is not None
    }
    if len(set(tasks.values())) < 2:
        return cells
    out = []
    for cell in cells:
        names = tasks.get(id(cell))
        if names:
            piece = names[0] if len(names) == 1 else f"{names[0]}..{names[-1]}"
            cell = replace(cell, order=piece)
        out.append(cell)
    return out


def _reference(cells: list[Cell], tasks: list[str], mode: str) -> dict[int, list[tuple]]:
    paths = [c.run_dir for c in cells if c.label == REFERENCE and cell_results(c) is not None]
    return load_reference(paths, tasks, mode) if paths else {}


def study_metrics(cells: list[Cell]) -> dict[str, list[dict[str, Any]]]:
    """Each strategy's (each group's) finished runs' metrics, with Continual World's forward
    transfer against the study's reference cells (every seed) where the run was given no
    reference."""
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
        out.setdefault(cell.group, []).append(metrics)
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
    """The success matrix R of each strategy (each group), mean over its seeds."""
    grouped: dict[str, list[np.ndarray]] = {}
    tasks: dict[str, list[str]] = {}
    for cell in cells:
        results = cell_results(cell)
        if results is None:
            continue
        tasks[cell.group] = results["tasks"]
        R = np.asarray(results["R"][results["metric_mode"]]["success"], float)
        grouped.setdefault(cell.group, []).append(R)
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
        ax.set_xticks(range(len(tasks[label])), tasks[label], fontsize=6)
        ax.set_yticks(range(len(tasks[label])), tasks[label], fontsize=6)
        if k % columns == 0:
            ax.set_ylabel("after training", fontsize=7)
    fig.tight_layout()
    return fig


def learnability_figure(cells: list[Cell]) -> Figure | None:
    """Each task's success (top) and return (bottom) during its own training, a panel a task
    (by name, whichever piece trained it), a line a seed."""
    runs = _reference_runs(cells)
    if not runs:
        return None
    by_task = _by_task(runs)
    tasks = _suite_order(cells, list(by_task))
    columns = min(len(tasks), 10)
    bands = -(-len(tasks) // columns)
    fig = Figure(figsize=(2.4 * columns, 4.4 * bands))
    FigureCanvasAgg(fig)
    axes = fig.subplots(2 * bands, columns, squeeze=False)
    for k, task in enumerate(tasks):
        top, bottom = (
            axes[2 * (k // columns)][k % columns],
            axes[2 * (k // columns) + 1][k % columns],
        )
        for seed, (r, j) in sorted(by_task[task].items()):
            mode = r["metric_mode"]
            steps = np.asarray(r["curves"]["steps"], float)
            inside = np.asarray(r["curves"]["training_task"]) == j
            x = (steps[inside] - r["bounds"][j][0]) / 1000
            for ax, metric in ((top, "success"), (bottom, "return")):
                y = np.asarray(r["curves"][mode][metric])[inside, j]
                ax.plot(x, y, marker=".", lw=1, label=f"s{seed}")
        top.set_title(task, fontsize=9)
        top.set_ylim(-0.05, 1.05)
        bottom.set_xlabel("k steps into the task", fontsize=7)
    for k in range(len(tasks), bands * columns):  # the last band's empty panels
        axes[2 * (k // columns)][k % columns].set_axis_off()
        axes[2 * (k // columns) + 1][k % columns].set_axis_off()
    for band in range(bands):
        axes[2 * band][0].set_ylabel("success")
        axes[2 * band + 1][0].set_ylabel("return")
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
    """Two records of one strategy and seed on one side (of one task, for the reference cells,
    which may come in pieces) were made with different settings (a key each): averaging them
    would count one seed twice, so the report refuses the folder."""
    seen: dict[tuple[str, int, str], Cell] = {}
    for cell in cells:
        results = cell_results(cell) if cell.label == REFERENCE else None
        for task in results["tasks"] if results else [""]:
            other = seen.setdefault((cell.label if task else cell.group, cell.seed, task), cell)
            if other is not cell:
                what = f"{cell.group} seed {cell.seed}" + (f" on {task}" if task else "")
                raise UserInputError(
                    f"records folder {root}",
                    f"two {side} records of {what} with different settings "
                    f"({Path(other.run_dir).name}, {Path(cell.run_dir).name})",
                    "keep one study's records in a folder (move the other one away)",
                )


def study_report(folder: str | Path) -> str:
    """Every table of the study in ``folder`` (printed and in study.txt/.json) and its
    figures."""
    root = Path(folder)
    everything = record_cells(root)
    sl = [c for c in everything if is_supervised(c)]
    cells = in_pieces([c for c in everything if c not in sl])
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
