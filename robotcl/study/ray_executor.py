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

Authentication (Ray >= 2.52): a cluster started with token authentication (the default of
``ray start`` since Ray 2.59) refuses a driver that does not send its token, and a driver sends
one only with ``RAY_AUTH_MODE=token``. When that variable is unset and a token is at hand
(``RAY_AUTH_TOKEN``, ``RAY_AUTH_TOKEN_PATH`` or Ray's default file ``~/.ray/auth_token``), the
driver turns it on (a cluster without authentication accepts a token too).

Ray's own messages (its log lines, the authentication notice, the connection retries) stay in
Ray's session logs, off the terminal, unless ``ROBOTCL_RAY_LOGS=1``.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from robotcl.errors import UserInputError
from robotcl.study.worker import run_cell

RETRIES = 2
RUNS_PER_GPU = 4
#: set to 1 to let Ray's own messages through to the terminal
VERBOSE_VARIABLE = "ROBOTCL_RAY_LOGS"


def token_at_hand(environ: dict[str, str]) -> str | None:
    """Where the Ray token comes from (a variable or the default file), or None."""
    if environ.get("RAY_AUTH_TOKEN"):
        return "RAY_AUTH_TOKEN"
    if environ.get("RAY_AUTH_TOKEN_PATH"):
        return "RAY_AUTH_TOKEN_PATH"
    # Ray's default token file (``ray get-auth-token --generate`` writes it)
    file = Path(environ.get("HOME") or Path.home(), ".ray", "auth_token")
    return str(file) if file.is_file() else None


def prepare_environment(environ: dict[str, str]) -> None:
    """Before Ray is imported (it reads the variable then): send the token when one is at hand
    and ``RAY_AUTH_MODE`` is unset."""
    if "RAY_AUTH_MODE" not in environ and token_at_hand(environ):
        environ["RAY_AUTH_MODE"] = "token"


@contextlib.contextmanager
def quiet_stderr(verbose: bool) -> Iterator[None]:
    """Ray's C++ core writes its log lines (a connection retried each second, the log level it
    read) straight to file descriptor 2: unless ``verbose``, send them to a temporary file
    while Ray starts."""
    if verbose:
        yield
        return
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as sink:
        os.dup2(sink.fileno(), 2)
        try:
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)


def unreachable(address: str | None, timeout_s: float = 5.0) -> str | None:
    """Why nothing listens at ``HOST:PORT`` (Ray itself would retry for minutes), or None (also
    for ``auto``, ``ray://`` and no address: Ray finds those itself)."""
    if not address or "://" in address or address.count(":") != 1:
        return None
    host, _, port = address.partition(":")
    if not port.isdigit():
        return None
    try:
        socket.create_connection((host, int(port)), timeout=timeout_s).close()
    except OSError as exc:
        return f"nothing answers at {address} ({exc.strerror or type(exc).__name__})"
    return None


def connection_error(exc: Exception, environ: dict[str, str]) -> str:
    """What to tell a user whose ``ray.init`` failed."""
    first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
    token = token_at_hand(environ)
    if token and environ.get("RAY_AUTH_MODE") == "token":
        hint = f"the token from {token} was sent: is it the cluster's (ray get-auth-token)?"
    else:
        hint = (
            "a cluster with token authentication (Ray >= 2.52) needs its token: set "
            "RAY_AUTH_TOKEN to the output of `ray get-auth-token` on its head node"
        )
    return f"no Ray cluster there, or it refused this driver ({first}); {hint}"


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
        down = unreachable(address)
        if down:
            raise UserInputError(f"ray_address={address!r}", down, "start the cluster first")
        prepare_environment(os.environ)  # type: ignore[arg-type]  # Ray reads it on import
        ray = self.ray = _import_ray()
        if not ray.is_initialized():
            verbose = os.environ.get(VERBOSE_VARIABLE) == "1"
            try:
                with quiet_stderr(verbose):
                    ray.init(
                        address=address,
                        # the driver's MuJoCo GL backend (robotcl sets egl) for videos and pixels
                        runtime_env={"env_vars": {"MUJOCO_GL": os.environ.get("MUJOCO_GL", "egl")}},
                        include_dashboard=False,
                        log_to_driver=verbose,
                        logging_level=logging.INFO if verbose else logging.ERROR,
                    )
            except (ConnectionError, RuntimeError, ValueError) as exc:
                raise UserInputError(
                    f"ray_address={address!r}",
                    connection_error(exc, os.environ),  # type: ignore[arg-type]
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
