"""``robotcl report``: tables of continual-learning metrics from run directories, grids and gap
folders."""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path
from typing import Any

from robotcl.errors import UserInputError
from robotcl.metrics import aggregate
from robotcl.reporting.comparison import comparison_table
from robotcl.reporting.gap import gap_report, is_gap
from robotcl.reporting.study import study_report
from robotcl.reporting.tables import (
    COLUMNS,
    MIN_RUNS_FOR_INTERVAL,
    format_table,
    stat_text,
    value_text,
)
from robotcl.study.grid import grid_cells, is_grid
from robotcl.study.records import is_records


def read_results(run_dir: str | Path) -> dict[str, Any]:
    """results.json of a run directory (or the file itself), with a clear error if unusable."""
    path = Path(run_dir)
    path = path / "results.json" if path.is_dir() else path
    try:
        results = json.loads(path.read_text())
    except OSError:
        raise UserInputError(f"run '{run_dir}'", "has no results.json") from None
    except ValueError as exc:
        raise UserInputError(f"run '{run_dir}'", f"results.json is corrupt ({exc})") from None
    if not isinstance(results, dict) or not {"metrics", "curves", "tasks"} <= set(results):
        raise UserInputError(f"run '{run_dir}'", "results.json is not a robotcl results file")
    problem = _shape_problem(results)
    if problem:
        raise UserInputError(f"run '{run_dir}'", f"results.json is malformed: {problem}")
    results["_path"] = str(run_dir)
    return results


#: the fields of an evaluation line that are not an episode kind's scores
_NOT_SCORES = ("step", "training_task", "time")


def read_curves(run_dir: str | Path) -> dict[str, Any]:
    """What ``robotcl plot`` draws of a run: its results.json, or, where the run has not
    finished (stopped, or still running) and its evaluations.jsonl holds more points, the
    curves of those evaluations (each task's span: its first to its last evaluation)."""
    path = Path(run_dir)
    lines = path / "evaluations.jsonl"
    try:
        results: dict[str, Any] | None = read_results(run_dir)
    except UserInputError:
        if not lines.is_file():
            raise
        results = None
    if not lines.is_file():
        return results  # type: ignore[return-value]
    text = lines.read_text().splitlines()
    records = []
    for k, line in enumerate(text):
        try:
            records.append(json.loads(line))
        except ValueError:
            if k < len(text) - 1:  # a torn last line is what a kill leaves
                raise UserInputError(
                    f"run '{run_dir}'", f"evaluations.jsonl line {k + 1} is corrupt"
                ) from None
    if results is not None and len(results["curves"]["steps"]) >= len(records):
        return results
    if not records:
        raise UserInputError(f"run '{run_dir}'", "has no evaluations yet")
    try:
        return _evaluation_curves(records, str(run_dir))
    except (KeyError, TypeError, IndexError, ValueError) as exc:
        raise UserInputError(
            f"run '{run_dir}'", f"evaluations.jsonl is not a robotcl evaluation log ({exc!r})"
        ) from None


def _evaluation_curves(records: list[dict[str, Any]], run_dir: str) -> dict[str, Any]:
    """A results-like mapping (tasks, curves, bounds) of a run's evaluation lines."""
    modes = [m for m in records[0] if m not in _NOT_SCORES]
    tasks = list(records[0][modes[0]])
    curves: dict[str, Any] = {
        "steps": [r["step"] for r in records],
        "training_task": [r["training_task"] for r in records],
    }
    for mode in modes:
        curves[mode] = {
            metric: [[r[mode][t][metric] for t in tasks] for r in records]
            for metric in ("success", "return")
        }
    trained = sorted({r["training_task"] for r in records if r["training_task"] >= 0})
    bounds = [
        [
            min(r["step"] for r in records if r["training_task"] == k),
            max(r["step"] for r in records if r["training_task"] == k),
        ]
        for k in trained
    ]
    return {
        "tasks": tasks,
        "curves": curves,
        "bounds": bounds,
        "metric_mode": modes[0],
        "_path": run_dir,
    }


def _shape_problem(results: dict[str, Any]) -> str | None:
    """What is wrong with the types of a results file's fields, or None."""
    expected = {
        "metrics": dict,
        "curves": dict,
        "tasks": list,
        "strategy": list,
        "bounds": list,
        "R": dict,
        "completed_tasks": int,
        "seed": int,
        "metric_mode": str,
    }
    for key, kind in expected.items():
        if key in results and not isinstance(results[key], kind):
            return f"'{key}' should be a {kind.__name__}, not {type(results[key]).__name__}"
    for key, value in results["metrics"].items():
        if not isinstance(value, int | float | list) or isinstance(value, bool):
            return f"metric '{key}' should be a number, not {type(value).__name__}"
    if not all(isinstance(t, str) for t in results["tasks"]):
        return "'tasks' should list task names"
    curves = results["curves"]
    steps = curves.get("steps", [])
    if not isinstance(steps, list) or not all(isinstance(v, int | float) for v in steps):
        return "'curves.steps' should list numbers"
    for mode, value in curves.items():
        if mode in ("steps", "training_task"):
            continue
        if not isinstance(value, dict):
            return f"'curves.{mode}' should be a mapping"
        for metric, rows in value.items():
            if not isinstance(rows, list) or any(
                not isinstance(r, list) or len(r) != len(results["tasks"]) for r in rows
            ):
                return f"'curves.{mode}.{metric}' should hold one value per task per point"
    return None


def report(run_dirs: list[str]) -> str:
    """One row per run; then, for strategies with several seeds, the mean and 90% interval.

    Grid directories (of ``robotcl compare``) given together are combined into one comparison
    (grids of the same preset made by separate invocations, e.g. one seed per machine). Gap
    folders (of ``robotcl gap``) give their gap tables; records folders (``records=`` of a grid)
    their study report (tables printed, figures written into the folder)."""
    if run_dirs and all(is_gap(d) for d in run_dirs):
        return "\n\n".join(gap_report(d) for d in run_dirs)
    if run_dirs and all(is_records(d) for d in run_dirs):
        return "\n\n".join(study_report(d) for d in run_dirs)
    if run_dirs and all(is_grid(d) for d in run_dirs):
        cells = [cell for d in run_dirs for cell in grid_cells(d)]
        seen: set[tuple[str, int]] = set()
        for cell in cells:
            if (cell.label, cell.seed) in seen:
                raise UserInputError(
                    f"grid cell {cell.label} seed {cell.seed}",
                    "appears in two grids",
                    "combine grids with distinct seeds",
                )
            seen.add((cell.label, cell.seed))
        return comparison_table(cells)[0]
    expanded = []
    for d in run_dirs:
        if is_grid(d):
            expanded += [c.run_dir for c in grid_cells(d) if c.status == "done"]
        else:
            expanded.append(d)
    runs = [read_results(d) for d in expanded]
    header = ["run", "strategy", "seed", "tasks", *COLUMNS]
    rows = [header]
    groups: dict[tuple[str, str], list[dict]] = defaultdict(list)
    for r in runs:
        m = r["metrics"]
        strategy = "+".join(r.get("strategy", ["?"]))
        done = f"{r.get('completed_tasks', '?')}/{len(r.get('tasks', []))}"
        rows.append(
            [Path(r["_path"]).name, strategy, str(r.get("seed", "?")), done]
            + [value_text(m.get(c), c) for c in COLUMNS]
        )
        groups[(r.get("suite", "?"), strategy)].append(m)
    out = format_table(rows)
    multi = {k: v for k, v in groups.items() if len(v) > 1}
    if multi:
        agg_rows = [["suite", "strategy", "n", *COLUMNS]]
        for (suite, strategy), metrics in sorted(multi.items()):
            stats = aggregate(metrics)
            cells = [stat_text(c, stats.get(c)) for c in COLUMNS]
            agg_rows.append([suite, strategy, str(len(metrics)), *cells])
        title = (
            "mean [90% bootstrap interval] n=runs over seeds (no interval below "
            f"{MIN_RUNS_FOR_INTERVAL} runs)"
        )
        out += f"\n\n{title}\n" + format_table(agg_rows)
    return out
