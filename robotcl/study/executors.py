"""Running a study's pending cells: local worker processes placed by what fits
(:mod:`robotcl.study.placement`), or Ray (``executor=ray``). Both executors have one small
interface: ``run(jobs, done)``, ``stop()``; :func:`execute` picks one, shows progress and stops
every run on Ctrl-C, SIGTERM or SIGHUP (each keeps its last checkpoint)."""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from typing import Any

from tqdm.auto import tqdm

from robotcl.config import ExperimentConfig
from robotcl.experiment import memory_needs, suite_of
from robotcl.study.cells import Cell
from robotcl.study.local_workers import LocalWorkers, interrupt
from robotcl.study.placement import THREADS_PER_RUN, Placement, plan
from robotcl.study.worker import run_cell

EXECUTORS = ("local", "ray")


@contextlib.contextmanager
def handling_signals(handler: Any, *signals: signal.Signals) -> Iterator[None]:
    """``handler`` for ``signals`` inside the block, the previous handlers after it (only the
    main thread may set handlers; elsewhere nothing changes)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {s: signal.signal(s, handler) for s in signals}
    try:
        yield
    finally:
        for s, old in previous.items():
            signal.signal(s, old)


def shielded() -> contextlib.AbstractContextManager[None]:
    """While a stopped study winds down, a second Ctrl-C or SIGTERM does not cut it short."""
    return handling_signals(signal.SIG_IGN, signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


def placement(base: ExperimentConfig, pending: int, workers: int | None) -> Placement:
    """How many of the study's runs go at once (see robotcl.study.placement)."""
    if workers is not None:
        return plan(base.device, pending, 0, workers=workers)
    suite = suite_of(base)
    replay, ssl = memory_needs(base, suite)
    return plan(base.device, pending, replay + ssl, pixels=suite.layout is not None)


def execute(
    configs: list[tuple[Cell, dict[str, Any]]],
    base: ExperimentConfig,
    grid: dict[str, Any],
    before: Callable[[], None] | None = None,
    desc: str = "runs",
    finished: Callable[[Cell], None] | None = None,
) -> None:
    """Run the pending cells of ``configs`` (local worker processes placed by what fits, or Ray
    with ``grid["executor"] == "ray"``); each cell's status and error are set as it ends, then
    ``finished(cell)`` is called. ``before()`` runs once the executor is ready and before the
    first run starts (a wrong Ray address is refused before it writes). Ctrl-C, SIGTERM and
    SIGHUP stop every run (each keeps its last checkpoint); the cells not done are then
    "stopped" and KeyboardInterrupt is raised.
    """
    jobs = [(cell, data) for cell, data in configs if cell.status == "pending"]
    pool: Any
    if grid.get("executor") == "ray":
        from robotcl.study.ray_executor import RayWorkers

        pool = RayWorkers(grid.get("ray_address"), gpu_runs=base.device != "cpu")
        workers, reason = max(1, len(jobs)), pool.describe(len(jobs))
        for _, data in configs:
            data["torch_threads"] = base.torch_threads or THREADS_PER_RUN
    else:
        placed = placement(base, len(jobs), grid.get("workers"))
        workers, reason = placed.workers, placed.reason
        pool = LocalWorkers(max(1, workers))
        if workers > 1 and base.torch_threads is None:  # share the cores, not oversubscribe
            for _, data in configs:
                data["torch_threads"] = max(1, (os.cpu_count() or 1) // workers)
    if jobs and workers:
        print(f"robotcl: {reason}", file=sys.stderr)
    if before is not None:
        before()
    bar = tqdm(total=len(jobs), unit="run", desc=desc, dynamic_ncols=True)

    def done(cell: Cell) -> None:
        bar.update(1)
        if finished is not None:
            finished(cell)

    try:
        with handling_signals(interrupt, signal.SIGTERM, signal.SIGHUP):  # stop as Ctrl-C does
            if workers == 0:
                for cell, data in jobs:
                    cell.status, cell.error = run_cell(data)
                    if cell.status == "stopped":
                        raise KeyboardInterrupt
                    done(cell)
            else:
                pool.run(jobs, done)
    except KeyboardInterrupt:
        with shielded():
            pool.stop()
            for cell, _ in configs:
                if cell.status == "pending":
                    cell.status = "stopped"
        raise
    finally:
        bar.close()
