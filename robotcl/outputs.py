"""Where a run's outputs go: the run directory, atomic files, the JSONL log and TensorBoard.

<runs_dir>/<preset>/<suite>-<strategy>-s<seed>-<timestamp>/
  config.yaml  results.json  evaluations.jsonl  scalars.json  checkpoints/  tb/
"""

from __future__ import annotations

import errno
import json
import os
import tempfile
import threading
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

from robotcl.envs.suite_file import is_suite_file  # noqa: E402
from robotcl.errors import UserInputError  # noqa: E402

try:
    import fcntl
except ImportError:  # pragma: no cover  (Windows: no run-directory lock)
    fcntl = None  # type: ignore[assignment]


def suite_label(suite: str) -> str:
    """A suite in a folder name: a registered name, a suite file's stem, a factory's
    ``module-factory`` (no ``:``, which TensorBoard's ``--logdir name:path`` would split)."""
    if is_suite_file(suite):
        return Path(suite).stem
    return suite.replace(":", "-")


def _file_mode() -> int:
    """The mode a plain ``open()`` would give a new file under the current umask."""
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


def atomic_write_text(path: Path, text: str) -> None:
    """Write ``text`` so that ``path`` is never seen half-written (mode as the umask says).
    On failure (a full disk) the temporary file is removed and ``path`` keeps its old text."""
    atomic_write_bytes(path, text.encode())


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """:func:`atomic_write_text` for bytes."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        os.fchmod(fd, _file_mode())
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def check_writable(path: Path, where: str) -> None:
    """Refuse, before anything is written, an output path that cannot be made: one that is (or
    lies under) a file, or whose nearest existing folder cannot be written."""
    path = Path(path).absolute()
    probe = path
    while not probe.exists():
        if probe.parent == probe:
            break
        probe = probe.parent
    if probe.exists() and not probe.is_dir():
        what = "is a file" if probe == path else f"lies under the file '{probe}'"
        raise UserInputError(f"{where} '{path}'", what, "name a folder")
    if not os.access(probe, os.W_OK | os.X_OK):
        raise UserInputError(f"{where} '{path}'", f"'{probe}' is not writable")


def output_error(where: str, path: Path, exc: OSError) -> UserInputError:
    """A one-line error for an output path that the OS refused."""
    reason = exc.strerror or type(exc).__name__
    if exc.errno == errno.ENOSPC:
        reason = "no space left on the device"
    return UserInputError(f"{where} '{path}'", f"cannot be written ({reason})")


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


LOCK_NAME = ".lock"


def _has_content(path: Path) -> bool:
    return path.is_dir() and any(p.name != LOCK_NAME for p in path.iterdir())


def make_free_dir(base: Path) -> Path:
    """Make ``base``, or ``base~2``, ``base~3``... where another process took it first (a
    clock-named folder made twice in one second); the atomic mkdir decides who gets which."""
    base.parent.mkdir(parents=True, exist_ok=True)
    for n in range(1, 10_000):
        path = base if n == 1 else base.with_name(f"{base.name}~{n}")
        try:
            path.mkdir()
        except FileExistsError:
            continue
        return path
    raise RuntimeError(f"no free folder name for {base.name} under {base.parent}")


class RunDirectory:
    """One run's directory. Creating it never overwrites an existing run unless asked to.

    The process that runs in it holds an exclusive lock on ``.lock`` inside it (released when
    the process ends), so two runs or resumes never write into one directory at once.
    """

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._lock: Any = None

    @staticmethod
    def check(config: Any) -> None:
        """Everything :meth:`create` would refuse, checked without writing anything."""
        if config.run_dir:
            path = Path(config.run_dir)
            check_writable(path, "run_dir")
            if _has_content(path) and not config.overwrite:
                raise UserInputError(
                    f"run_dir '{path}'", "already exists and is not empty", "pass overwrite=true"
                )
        else:
            check_writable(Path(config.runs_dir), "runs_dir")
            check_writable(Path(config.runs_dir) / config.name, "runs_dir")

    @classmethod
    def create(cls, config: Any) -> RunDirectory:
        """Make a new run directory for ``config`` (refuses a non-empty one without overwrite).

        Generated names are claimed with an atomic mkdir, so runs started in the same second
        (a grid, two shells) never share a directory; an explicit ``run_dir`` is claimed by its
        lock.
        """
        cls.check(config)
        if config.run_dir:
            path = Path(config.run_dir)
            try:
                path.mkdir(parents=True, exist_ok=True)
                run = cls(path)
                run.lock()
            except OSError as exc:
                raise output_error("run_dir", path, exc) from None
            if _has_content(path) and not config.overwrite:  # another run got here first
                run.unlock()
                raise UserInputError(
                    f"run_dir '{path}'", "already exists and is not empty", "pass overwrite=true"
                )
            return run
        strategy = "+".join(config.strategy)
        stamp = time.strftime("%Y%m%d-%H%M%S")
        agent = "" if config.agent.name == "sac" else f"{config.agent.name}-"
        cell = f"{suite_label(config.suite)}-{agent}{strategy}-s{config.seed}-{stamp}"
        base = Path(config.runs_dir) / config.name / cell
        try:
            run = cls(make_free_dir(base))
            run.lock()
            return run
        except OSError as exc:
            raise output_error("runs_dir", base.parent, exc) from None

    def lock(self) -> None:
        """Claim the directory for this process; refuse one that another process holds."""
        if fcntl is None or self._lock is not None:
            return
        handle = (self.path / LOCK_NAME).open("a")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            raise UserInputError(
                f"run directory '{self.path}'",
                "is in use by another robotcl process",
                "wait for it to end, or choose another run_dir",
            ) from None
        self._lock = handle

    def unlock(self) -> None:
        if self._lock is not None:
            self._lock.close()
            self._lock = None

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
        where = f"run directory '{self.path}'"
        if not self.path.is_dir():
            raise UserInputError(where, "not found")
        if not self.config_file.is_file():
            raise UserInputError(where, "has no config.yaml")
        try:
            data = yaml.safe_load(self.config_file.read_text())
        except (yaml.YAMLError, UnicodeDecodeError) as exc:
            first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise UserInputError(f"{where}", f"config.yaml is not valid YAML ({first})") from None
        if not isinstance(data, dict):
            raise UserInputError(where, "config.yaml is not a mapping of config keys")
        return data

    def write_results(self, results: dict[str, Any]) -> None:
        atomic_write_text(self.results_file, json.dumps(_jsonable(results), indent=1))

    def append_evaluation(self, record: dict[str, Any]) -> None:
        with self.evaluations_file.open("a") as f:
            f.write(json.dumps(_jsonable(record)) + "\n")

    def truncate_evaluations(self, first_task: int, until_step: int | None = None) -> None:
        """Keep the evaluation lines of the tasks before ``first_task`` (on resume: drop what a
        killed process wrote of the task it did not finish) and, with ``until_step`` (a resume
        inside ``first_task``), that task's lines up to that step. A torn last line, which a
        kill leaves, is dropped; a corrupt line elsewhere is refused."""
        if not self.evaluations_file.exists():
            return
        lines = [ln for ln in self.evaluations_file.read_text().splitlines() if ln.strip()]
        kept = []
        for k, line in enumerate(lines):
            try:
                record = json.loads(line)
                task, step = int(record["training_task"]), int(record["step"])
            except (ValueError, KeyError, TypeError):
                if k == len(lines) - 1:
                    break  # torn by the kill
                raise UserInputError(
                    f"run directory '{self.path}'", f"evaluations.jsonl line {k + 1} is corrupt"
                ) from None
            inside = until_step is not None and task == first_task and step <= until_step
            if (task < first_task and first_task > 0) or inside:
                kept.append(line)
        atomic_write_text(self.evaluations_file, "".join(f"{ln}\n" for ln in kept))


class _SharedTensorBoard(TensorBoardOutputFormat):
    """SB3's TensorBoard output, writing through an existing SummaryWriter."""

    def __init__(self, writer: SummaryWriter) -> None:
        self.writer = writer
        self._is_closed = False


def _quiet_writer_threads() -> None:
    """Print no traceback for a write error in TensorBoard's writer thread: the writer raises
    it again at its next call, where the run stops in one line."""
    previous = threading.excepthook
    if getattr(previous, "robotcl_quiet", False):
        return

    def hook(args: Any) -> None:
        thread_module = type(args.thread).__module__
        if isinstance(args.exc_value, OSError) and thread_module.startswith("tensorboard."):
            return
        previous(args)

    hook.robotcl_quiet = True  # type: ignore[attr-defined]
    threading.excepthook = hook


class TensorBoardLog:
    """One SummaryWriter for the run; SB3's logger writes its train/ scalars through it."""

    def __init__(self, folder: Path, purge_step: int | None = None) -> None:
        _quiet_writer_threads()
        self.writer = SummaryWriter(log_dir=str(folder), purge_step=purge_step)
        self.sb3_logger = Logger(str(folder), [_SharedTensorBoard(self.writer)])

    def scalars(self, values: dict[str, float], step: int) -> None:
        for tag, value in values.items():
            self.writer.add_scalar(tag, value, step)

    def matrix(
        self, tag: str, matrix: np.ndarray, names: list[str], step: int, loss: bool = False
    ) -> None:
        """Log a success matrix (rows: after training task i; columns: task j) as an image;
        ``loss``: a matrix of losses (its own scale, low is good)."""
        fig = success_matrix_figure(matrix, names, loss)
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


def success_matrix_figure(matrix: np.ndarray, names: list[str], loss: bool = False) -> plt.Figure:
    """A heat map of R (or, ``loss``, of a loss matrix, bright where low): unfinished rows are
    NaN and left blank."""
    n = len(names)
    fig, ax = plt.subplots(figsize=(1.0 + 0.45 * n, 0.8 + 0.45 * n), dpi=100)
    finite = matrix[np.isfinite(matrix)]
    top = float(finite.max()) if loss and finite.size else 1.0
    cmap = "viridis_r" if loss else "viridis"
    ax.imshow(np.ma.masked_invalid(matrix), vmin=0, vmax=top or 1.0, cmap=cmap)
    ax.set_xticks(range(n), names, fontsize=7)
    ax.set_yticks(range(matrix.shape[0]), names[: matrix.shape[0]], fontsize=7)
    ax.set_xlabel("evaluated task j")
    ax.set_ylabel("after training task i")
    for (i, j), v in np.ndenumerate(matrix):
        if np.isfinite(v):
            text = f"{v:.2g}" if loss else f"{v:.1f}"
            ax.text(j, i, text, ha="center", va="center", fontsize=6, color="w")
    fig.tight_layout()
    return fig
