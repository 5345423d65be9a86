"""The Ray executor (``executor=ray``): every cell of a study as a task on a Ray cluster.

Each run is one Ray task that calls the very function a local worker process calls
(:func:`robotcl.study.worker.run_cell`), so run directories, statuses and the comparison at
the end are the same. A run whose worker is lost (a node gone, the process killed) is retried by
Ray up to :data:`RETRIES` times, and a retried run resumes from its last checkpoint in its run
directory (as ``compare --resume`` does); one that still fails is listed with its error. On a
cluster, the run directory (``runs_dir``) must be on storage that every node shares, and every
node needs robotcl installed (``pip install 'robotcl[ray]'``).

Resources: each run asks for its torch threads as CPUs and, on a cluster with GPUs and a device
other than ``cpu``, 1/:data:`RUNS_PER_GPU` of a GPU (a state-based run needs about a GiB of it).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from robotcl.errors import UserInputError
from robotcl.study.worker import run_cell

RETRIES = 2
RUNS_PER_GPU = 4


def _import_ray() -> Any:
    try:
        import ray
    except ImportError:
        raise UserInputError(
            "executor=ray", "Ray is not installed", "pip install 'robotcl[ray]'"
        ) from None
    return ray


class RayWorkers:
    """The cells of a study as Ray tasks (the executor interface of
    :class:`~robotcl.study.local_workers.LocalWorkers`)."""

    def __init__(self, address: str | None, gpu_runs: bool) -> None:
        ray = self.ray = _import_ray()
        if not ray.is_initialized():
            try:
                ray.init(
                    address=address,
                    # the driver's MuJoCo GL backend (robotcl sets egl) for videos and pixels
                    runtime_env={"env_vars": {"MUJOCO_GL": os.environ.get("MUJOCO_GL", "egl")}},
                    include_dashboard=False,
                    log_to_driver=False,
                    logging_level=logging.WARNING,
                )
            except (ConnectionError, RuntimeError, ValueError) as exc:
                raise UserInputError(
                    f"ray_address={address!r}", f"no Ray cluster there ({exc})"
                ) from None
        resources = ray.cluster_resources()
        self.cpus, self.gpus = resources.get("CPU", 0), resources.get("GPU", 0)
        self.gpu_share = 1 / RUNS_PER_GPU if gpu_runs and self.gpus else 0
        self.running: dict[Any, Any] = {}

    def describe(self, runs: int) -> str:
        """One line for the user: where the runs go."""
        gpus = f", {self.gpus:g} GPU(s), {RUNS_PER_GPU} runs a GPU" if self.gpu_share else ""
        return f"{runs} run(s) sent to Ray ({self.cpus:g} CPU(s){gpus})"

    def run(self, jobs: list[tuple[Any, dict[str, Any]]], done: Callable[[Any], None]) -> None:
        ray = self.ray
        for cell, data in jobs:
            task = ray.remote(run_cell).options(
                num_cpus=data.get("torch_threads") or 1,
                num_gpus=self.gpu_share,
                max_retries=RETRIES,
                retry_exceptions=False,  # a run's own error is reported, not retried
            )
            self.running[task.remote(data)] = cell
        while self.running:
            ready, _ = ray.wait(list(self.running), num_returns=1, timeout=5)
            for ref in ready:
                cell = self.running.pop(ref)
                self._finish(ref, cell)
                done(cell)

    def _finish(self, ref: Any, cell: Any) -> None:
        ray = self.ray
        try:
            cell.status, cell.error = ray.get(ref)
        except ray.exceptions.TaskCancelledError:
            cell.status, cell.error = "stopped", None
        except ray.exceptions.RayError as exc:
            if isinstance(exc, ray.exceptions.RayTaskError):  # outside the run (an import)
                lines = str(exc).strip().splitlines()
                cell.error = f"Ray task failed: {lines[-1] if lines else type(exc).__name__}"
            else:  # the worker was lost more than RETRIES times
                cell.error = f"Ray worker lost ({type(exc).__name__}) after {RETRIES} retries"
            cell.status = "failed"
            run_dir = Path(cell.run_dir)
            run_dir.mkdir(parents=True, exist_ok=True)
            (run_dir / "error.txt").write_text(f"{cell.error}\n{exc}\n")

    def stop(self, grace_s: float = 30.0) -> None:
        """Interrupt every running run (a KeyboardInterrupt in its task: it keeps its last
        checkpoint), collect them, and kill the tasks still running after ``grace_s``."""
        ray = self.ray
        refs = list(self.running)
        for ref in refs:
            ray.cancel(ref)
        ready, late = ray.wait(refs, num_returns=len(refs), timeout=grace_s) if refs else ([], [])
        for ref in late:
            ray.cancel(ref, force=True)
            self.running.pop(ref).status = "stopped"
        for ref in ready:
            cell = self.running.pop(ref)
            self._finish(ref, cell)
            if cell.status not in ("done", "failed"):
                cell.status, cell.error = "stopped", None
