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

from robotcl.study.cells import Cell
from robotcl.study.grid import plan_grid, run_grid


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
    return plan.root, run_grid(plan)
