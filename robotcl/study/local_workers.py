"""The local executor: at most ``size`` cells at once, each in its own spawned process, so a
process that dies takes only its own run with it."""

from __future__ import annotations

import multiprocessing
import multiprocessing.connection as mp_connection
import os
import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from robotcl.study.cells import Cell
from robotcl.study.worker import run_cell


def _die_with_parent() -> None:
    """Linux: have the kernel send SIGTERM to this worker if the study's process dies."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def interrupt(signum: int, frame: Any) -> None:
    """A signal handler that stops the way Ctrl-C does."""
    raise KeyboardInterrupt


def _worker(config_data: dict[str, Any], conn: Any) -> None:
    """Body of a worker process: one run, its outcome sent back through ``conn``."""
    _die_with_parent()
    signal.signal(signal.SIGTERM, interrupt)
    signal.signal(signal.SIGHUP, interrupt)
    conn.send(run_cell(config_data))
    conn.close()


class LocalWorkers:
    """Cells in spawned worker processes (the executor interface: run, stop, describe)."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.context = multiprocessing.get_context("spawn")
        self.running: dict[Any, tuple[Cell, Any]] = {}

    def run(self, jobs: list[tuple[Cell, dict[str, Any]]], done: Callable[[Cell], None]) -> None:
        queue = list(jobs)
        while queue or self.running:
            while queue and len(self.running) < self.size:
                cell, data = queue.pop(0)
                receive, send = self.context.Pipe(duplex=False)
                process = self.context.Process(target=_worker, args=(data, send), daemon=True)
                process.start()
                send.close()
                self.running[process] = (cell, receive)
            sentinels = [p.sentinel for p in self.running]
            for ready in mp_connection.wait(sentinels, timeout=5):
                process = next(p for p in self.running if p.sentinel == ready)
                cell, receive = self.running.pop(process)
                self._finish(process, cell, receive)
                done(cell)

    @staticmethod
    def _finish(process: Any, cell: Cell, receive: Any) -> None:
        process.join()
        try:
            cell.status, cell.error = receive.recv()
        except EOFError:  # killed (out of memory, a signal) or crashed inside native code
            cell.status = "failed"
            cell.error = f"worker process died (exit code {process.exitcode})"
            run_dir = Path(cell.run_dir)
            run_dir.mkdir(parents=True, exist_ok=True)
            (run_dir / "error.txt").write_text(cell.error + "\n")
        receive.close()

    def stop(self, grace_s: float = 30.0) -> None:
        """Interrupt every running run (each keeps its last checkpoint), then reap them."""
        for process in self.running:
            if process.is_alive():
                os.kill(process.pid, signal.SIGTERM)
        deadline = time.monotonic() + grace_s
        for process, (cell, receive) in list(self.running.items()):
            process.join(max(0.0, deadline - time.monotonic()))
            if process.is_alive():
                process.kill()
                process.join()
            self._finish(process, cell, receive)
            if cell.status != "failed":
                cell.status, cell.error = "stopped", None
        self.running.clear()
