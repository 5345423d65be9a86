"""``robotcl compare``: strategies x seeds (x task orders) of one preset, one run directory a
cell, in a grid folder (:mod:`robotcl.study.grid`).

Runs go to worker processes, as many at once as fit the cores, the host memory and the GPUs' free
memory (:mod:`robotcl.study.placement`; ``workers=N`` sets the count, ``workers=0`` runs them in
this process), or with ``executor=ray`` to a Ray cluster (``ray_address=``). A run that fails is
reported with its error; the others' results are kept. The comparison of the grid (a table of
ACC, BWT, forgetting and FWT with bootstrap intervals over seeds, and its figures) is
:mod:`robotcl.reporting.comparison`'s, written by the command line once the grid has run.
"""

from __future__ import annotations

from pathlib import Path

from robotcl.outputs import RunDirectory
from robotcl.reporting.tables import format_table
from robotcl.study.cells import Cell, finished_results
from robotcl.study.grid import plan_grid, run_grid
from robotcl.study.records import record_cells


def compare(
    source: str | None,
    overrides: list[str],
    resume_root: str | Path | None = None,
    root: str | Path | None = None,
) -> tuple[Path, list[Cell]]:
    """Run the grid (see :func:`robotcl.study.grid.plan_grid` for ``resume_root`` and
    ``root``); return its folder and cells. Raises
    :class:`~robotcl.study.grid.GridStopped` when stopped."""
    plan = plan_grid(source, overrides, resume_root, root)
    cells = run_grid(plan)  # may move a clock-named folder that another grid took
    return plan.root, cells


def plan_text(source: str | None, overrides: list[str], resume_root: str | None = None) -> str:
    """``compare --dry-run``: every cell of the grid, whether it is done (here, or as a record
    of its key) or would run, and how long the runs to come would take by the wall time of the
    finished runs of the same strategy (the records' and this grid's). Writes nothing."""
    plan = plan_grid(source, overrides, resume_root)
    minutes: dict[tuple[str, str], list[float]] = {}  # by strategy and agent (RL, or bc)
    folder = plan.grid.get("records")
    # a cell done here and its record are one run: counted once (by key; an older grid's cell
    # without one by its folder)
    done = {c.key or c.run_dir: c for c in plan.cells if c.status == "done"}
    if folder is not None:
        done.update({c.key: c for c in record_cells(folder)})
    for cell in done.values():
        results = finished_results(cell.run_dir)
        if results is not None and "wall_time_s" in results:
            agent = RunDirectory(Path(cell.run_dir)).read_config()["agent"]["name"]
            minutes.setdefault((cell.label, agent), []).append(results["wall_time_s"] / 60)
    rows = [["strategy", "seed", "status", "about"]]
    todo, unknown = 0.0, 0
    for cell, config in plan.configs:
        name = cell.group
        if cell.status == "done":
            rows.append([name, str(cell.seed), f"done ({Path(cell.run_dir).name})", ""])
            continue
        if cell.status != "pending":  # a stopped or failed cell outside the seeds asked for
            rows.append([name, str(cell.seed), f"{cell.status}, not asked for", ""])
            continue
        past = minutes.get((cell.label, config["agent"]["name"]))
        if past:
            todo += sum(past) / len(past)
        else:
            unknown += 1
        about = f"{sum(past) / len(past):.0f} min" if past else "-"
        rows.append([name, str(cell.seed), "to run", about])
    pending = sum(c.status == "pending" for c in plan.cells)
    done = sum(c.status == "done" for c in plan.cells)
    summary = f"{len(plan.cells)} cells: {done} done, {pending} to run"
    left = len(plan.cells) - done - pending
    summary += f", {left} left as they are (not asked for)" if left else ""
    if pending:
        summary += f", about {todo / 60:.1f} hours of runs by the wall time of finished ones"
        summary += f" ({unknown} with no finished run to go by)" if unknown else ""
        summary += "; wall time divides by workers= where the cores allow"
    return format_table(rows) + "\n\n" + summary
