"""Progress of a run: a tqdm bar on a terminal, a periodic summary line in a log file.

A bar redrawn with carriage returns floods a file that the output is redirected to (a job
scheduler's log), so off a terminal :class:`SummaryLines` prints one line every ``interval_s``
seconds and one at each task's end instead.
"""

from __future__ import annotations

import sys
import time
from typing import Any, TextIO

from tqdm.auto import tqdm


def _duration(seconds: float) -> str:
    seconds = int(seconds)
    hours, rest = divmod(seconds, 3600)
    return f"{hours}h{rest // 60:02d}m" if hours else f"{rest // 60}m{rest % 60:02d}s"


class SummaryLines:
    """The interface of the tqdm bar the task loop uses, writing plain periodic lines."""

    def __init__(
        self, total: int, initial: int = 0, interval_s: float = 60.0, stream: TextIO | None = None
    ) -> None:
        self.total, self.n, self.interval_s = total, initial, interval_s
        self.stream = stream or sys.stderr
        self.description = ""
        self._start_n, self._start = initial, time.monotonic()
        self._last = self._start

    def set_description(self, description: str) -> None:
        if self.description and self.description != description:
            self._line()  # a task ended
        self.description = description

    def update(self, n: int = 1) -> None:
        self.n += n
        now = time.monotonic()
        if now - self._last >= self.interval_s:
            self._line(now)

    def _line(self, now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        self._last = now
        rate = (self.n - self._start_n) / max(now - self._start, 1e-9)
        left = (self.total - self.n) / rate if rate > 0 else float("inf")
        eta = _duration(left) if left != float("inf") else "?"
        print(
            f"robotcl: {self.description}: step {self.n:,}/{self.total:,} "
            f"({100 * self.n / max(self.total, 1):.0f}%), {rate:.0f} steps/s, {eta} left",
            file=self.stream,
            flush=True,
        )

    def close(self) -> None:
        if self.n > self._start_n:
            self._line()


class _Silent:
    def set_description(self, description: str) -> None: ...

    def update(self, n: int = 1) -> None: ...

    def close(self) -> None: ...


def progress(total: int, initial: int, enabled: bool) -> Any:
    """A tqdm bar on a terminal, :class:`SummaryLines` elsewhere, nothing when disabled."""
    if not enabled:
        return _Silent()
    if sys.stderr.isatty():
        return tqdm(total=total, initial=initial, unit="step", dynamic_ncols=True)
    return SummaryLines(total, initial)
