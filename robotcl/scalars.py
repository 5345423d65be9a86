"""The training scalars of a run (losses, the contrastive loss and accuracy, alpha) as a small
file beside its results, so that their curves can be redrawn without the event files.

At the end of a run its TensorBoard ``train/`` scalars are read back and thinned to at most
:data:`MAX_POINTS` evenly spaced points a tag, into ``scalars.json`` (tens of kilobytes; a study
record keeps it)::

    {"train/ssl/curl/loss": [[step, value], ...], ...}

:func:`load_scalars` reads that file, or the event files of a run that has none.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

from robotcl.errors import UserInputError

SCALARS_FILE = "scalars.json"
#: points kept a tag: evenly spaced over the run, first and last included
MAX_POINTS = 200
#: the tags kept: what the learner logs while training
PREFIX = "train/"

Series = list[list[float]]


def thin(points: Series, limit: int) -> Series:
    """At most ``limit`` of ``points``, evenly spaced, the first and the last kept."""
    if len(points) <= limit:
        return points
    last = len(points) - 1
    picks = sorted({round(k * last / (limit - 1)) for k in range(limit)})
    return [points[k] for k in picks]


def read_event_scalars(tb_dir: str | Path, limit: int = MAX_POINTS) -> dict[str, Series]:
    """The ``train/`` scalars of the event files in ``tb_dir``, ``limit`` points a tag at most
    (points a resumed run's writer purged are left out, as TensorBoard shows them)."""
    from tensorboard.backend.event_processing.event_accumulator import (
        SCALARS,
        EventAccumulator,
    )

    events = EventAccumulator(str(tb_dir), size_guidance={SCALARS: 0})  # keep every point
    events.Reload()
    out: dict[str, Series] = {}
    for tag in sorted(events.Tags().get("scalars", [])):
        if tag.startswith(PREFIX):
            points = [[int(e.step), float(e.value)] for e in events.Scalars(tag)]
            out[tag] = thin(points, limit)
    return out


def write_scalars(run_dir: str | Path) -> Path:
    """Write ``scalars.json`` of ``run_dir`` from its ``tb/`` event files."""
    run_dir = Path(run_dir)
    scalars = read_event_scalars(run_dir / "tb")
    clean = {
        tag: [[step, value if math.isfinite(value) else None] for step, value in points]
        for tag, points in scalars.items()
    }
    path = run_dir / SCALARS_FILE
    path.write_text(json.dumps(clean, separators=(",", ":")) + "\n")
    return path


def load_scalars(run_dir: str | Path) -> dict[str, Series]:
    """A run's (or a record's) training scalars: ``scalars.json``, else its event files."""
    run_dir = Path(run_dir)
    path = run_dir / SCALARS_FILE
    if path.is_file():
        try:
            data = json.loads(path.read_text())
        except ValueError as exc:
            raise UserInputError(f"run '{run_dir}'", f"{SCALARS_FILE} is corrupt ({exc})") from None
        if not isinstance(data, dict):
            raise UserInputError(f"run '{run_dir}'", f"{SCALARS_FILE} is not a scalars file")
        return data
    if (run_dir / "tb").is_dir():
        return read_event_scalars(run_dir / "tb")
    raise UserInputError(f"run '{run_dir}'", f"has neither {SCALARS_FILE} nor tb/ event files")
