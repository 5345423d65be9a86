"""Where a run's outputs go: the run directory, atomic files, the JSONL log and TensorBoard.

<runs_dir>/<preset>/<suite>-<strategy>-s<seed>-<timestamp>/
  config.yaml  results.json  evaluations.jsonl  checkpoints/  tb/
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import yaml  # noqa: E402
from stable_baselines3.common.logger import Logger, TensorBoardOutputFormat  # noqa: E402
from torch.utils.tensorboard import SummaryWriter  # noqa: E402

from robotcl.errors import UserInputError  # noqa: E402


def atomic_write_text(path: Path, text: str) -> None:
    """Write ``text`` so that ``path`` is never seen half-written."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.replace(tmp, path)


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return _jsonable(value.tolist())
    if isinstance(value, np.generic):
        return value.item()
    return value


class RunDirectory:
    """One run's directory. Creating it never overwrites an existing run unless asked to."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)

    @classmethod
    def create(cls, config: Any) -> RunDirectory:
        """Make a new run directory for ``config`` (refuses a non-empty one without overwrite).

        Generated names are claimed with an atomic mkdir, so runs started in the same second
        (a grid, two shells) never share a directory.
        """
        if config.run_dir:
            path = Path(config.run_dir)
            if path.exists() and any(path.iterdir()) and not config.overwrite:
                raise UserInputError(
                    f"run_dir '{path}'", "already exists and is not empty", "pass overwrite=true"
                )
            path.mkdir(parents=True, exist_ok=True)
            return cls(path)
        strategy = "+".join(config.strategy)
        stamp = time.strftime("%Y%m%d-%H%M%S")
        base = (
            Path(config.runs_dir)
            / config.name
            / f"{config.suite}-{strategy}-s{config.seed}-{stamp}"
        )
        base.parent.mkdir(parents=True, exist_ok=True)
        for n in range(1, 10_000):
            path = base if n == 1 else base.with_name(f"{base.name}~{n}")
            try:
                path.mkdir()
            except FileExistsError:
                continue
            return cls(path)
        raise RuntimeError(f"no free run directory name under {base.parent}")

    @property
    def config_file(self) -> Path:
        return self.path / "config.yaml"

    @property
    def results_file(self) -> Path:
        return self.path / "results.json"

    @property
    def evaluations_file(self) -> Path:
        return self.path / "evaluations.jsonl"

    @property
    def checkpoints(self) -> Path:
        return self.path / "checkpoints"

    @property
    def tb(self) -> Path:
        return self.path / "tb"

    def write_config(self, data: dict[str, Any]) -> None:
        atomic_write_text(self.config_file, yaml.safe_dump(data, sort_keys=False))

    def read_config(self) -> dict[str, Any]:
        if not self.config_file.is_file():
            raise UserInputError(f"run directory '{self.path}'", "has no config.yaml")
        return yaml.safe_load(self.config_file.read_text())

    def write_results(self, results: dict[str, Any]) -> None:
        atomic_write_text(self.results_file, json.dumps(_jsonable(results), indent=1))

    def append_evaluation(self, record: dict[str, Any]) -> None:
        with self.evaluations_file.open("a") as f:
            f.write(json.dumps(_jsonable(record)) + "\n")

    def truncate_evaluations(self, last_step: int) -> None:
        """Drop evaluation lines after ``last_step`` (the part of a killed task, on resume)."""
        if not self.evaluations_file.exists():
            return
        lines = self.evaluations_file.read_text().splitlines()
        kept = [ln for ln in lines if ln.strip() and json.loads(ln)["step"] <= last_step]
        atomic_write_text(self.evaluations_file, "".join(f"{ln}\n" for ln in kept))


class _SharedTensorBoard(TensorBoardOutputFormat):
    """SB3's TensorBoard output, writing through an existing SummaryWriter."""

    def __init__(self, writer: SummaryWriter) -> None:
        self.writer = writer
        self._is_closed = False


class TensorBoardLog:
    """One SummaryWriter for the run; SB3's logger writes its train/ scalars through it."""

    def __init__(self, folder: Path, purge_step: int | None = None) -> None:
        self.writer = SummaryWriter(log_dir=str(folder), purge_step=purge_step)
        self.sb3_logger = Logger(str(folder), [_SharedTensorBoard(self.writer)])

    def scalars(self, values: dict[str, float], step: int) -> None:
        for tag, value in values.items():
            self.writer.add_scalar(tag, value, step)

    def matrix(self, tag: str, matrix: np.ndarray, names: list[str], step: int) -> None:
        """Log a success matrix (rows: after training task i; columns: task j) as an image."""
        fig = success_matrix_figure(matrix, names)
        self.writer.add_figure(tag, fig, step)

    def hparams(self, hparams: dict[str, Any], metrics: dict[str, float]) -> None:
        clean = {
            k: v if isinstance(v, int | float | str | bool) else str(v) for k, v in hparams.items()
        }
        finite = {f"hparam/{k}": v for k, v in metrics.items() if np.isfinite(v)}
        self.writer.add_hparams(clean, finite, run_name="hparams")

    def close(self) -> None:
        self.writer.flush()
        self.writer.close()


def success_matrix_figure(matrix: np.ndarray, names: list[str]) -> plt.Figure:
    """A heat map of R: unfinished rows are NaN and left blank."""
    n = len(names)
    fig, ax = plt.subplots(figsize=(1.0 + 0.45 * n, 0.8 + 0.45 * n), dpi=100)
    ax.imshow(np.ma.masked_invalid(matrix), vmin=0, vmax=1, cmap="viridis")
    ax.set_xticks(range(n), names, fontsize=7)
    ax.set_yticks(range(matrix.shape[0]), names[: matrix.shape[0]], fontsize=7)
    ax.set_xlabel("evaluated task j")
    ax.set_ylabel("after training task i")
    for (i, j), v in np.ndenumerate(matrix):
        if np.isfinite(v):
            ax.text(j, i, f"{v:.1f}", ha="center", va="center", fontsize=6, color="w")
    fig.tight_layout()
    return fig
