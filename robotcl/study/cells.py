"""A cell of a study (one run's settings and how it ended) and the one reader of a run that
finished."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass
class Cell:
    """One run of a study and how it ended: ``status`` is done, failed, stopped or pending."""

    label: str
    seed: int
    run_dir: str
    device: str
    error: str | None = None
    status: str = "pending"
    order: str = ""  # the order's label in a grid over orders ("" otherwise)
    key: str = ""  # robotcl.study.keys.run_key of its config ("" in grids of older versions)

    @property
    def group(self) -> str:
        """What curves and bars are averaged over seeds by: the strategy (and the order)."""
        return f"{self.label} @ {self.order}" if self.order else self.label


def finished_results(run_dir: str | Path) -> dict[str, Any] | None:
    """The results of a run that finished every task (metrics written), or None."""
    try:
        data = json.loads((Path(run_dir) / "results.json").read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict):
        return None
    done = data.get("metrics") and data.get("completed_tasks") == len(data.get("tasks", []))
    return data if done else None


def cell_results(cell: Cell) -> dict[str, Any] | None:
    """The results of a cell that ended done and finished every task, or None."""
    return finished_results(cell.run_dir) if cell.status == "done" else None
