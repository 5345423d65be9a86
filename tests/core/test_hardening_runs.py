"""Runs that end or go wrong: a finished run is left as it is, SIGTERM stops a run as Ctrl-C
does, a run directory that turns read-only stops the run in one line (and is not resumed while
it stays read-only), and the global random generators are seeded so that a plugin learner's runs
are reproducible."""

from __future__ import annotations

import builtins
import errno
import io
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import pytest
import torch

from robotcl.cli import main
from robotcl.registry import AGENTS, register_agent, register_strategy
from robotcl.strategies.base import Strategy, TaskData


def run_dir_of(root: Path) -> Path:
    (config,) = root.rglob("config.yaml")
    return config.parent


def snapshot(run_dir: Path) -> dict[str, tuple[bytes, int]]:
    """Every file of a run (but its lock) with its bytes and modification time."""
    return {
        str(p.relative_to(run_dir)): (p.read_bytes(), p.stat().st_mtime_ns)
        for p in sorted(run_dir.rglob("*"))
        if p.is_file() and p.name != ".lock"
    }


# -- a finished run is left as it is --------------------------------------------------------
def test_resume_of_a_finished_run_says_so_and_changes_nothing(tiny, tmp_path, capsys):
    assert main(["run", "quick", *tiny]) == 0
    run_dir = run_dir_of(tmp_path / "runs")
    before = snapshot(run_dir)
    assert any(name.startswith("tb/") for name in before)
    for extra in (["--dry-run"], []):
        capsys.readouterr()
        assert main(["run", "--resume", str(run_dir), *extra]) == 0
        captured = capsys.readouterr()
        assert captured.err == f"robotcl: {run_dir} finished every task; nothing to resume\n"
        assert captured.out == ""
        assert snapshot(run_dir) == before, extra

    # the same run as if killed after its first task: a dry run says what it would resume
    shutil.rmtree(run_dir / "checkpoints" / "task001")
    partial = (run_dir / "checkpoints" / "task000" / "results.json").read_text()
    (run_dir / "results.json").write_text(partial)
    before = snapshot(run_dir)
    capsys.readouterr()
    assert main(["run", "--resume", str(run_dir), "--dry-run"]) == 0
    captured = capsys.readouterr()
    assert captured.out == f"would resume {run_dir} at task 2/2 (T1), 1 task left\n"
    assert captured.err == ""
    assert snapshot(run_dir) == before


# -- SIGTERM stops a run as Ctrl-C does -----------------------------------------------------
TERM_PLUGIN = """
import os
import signal

from robotcl.registry import register_strategy
from robotcl.strategies import Strategy


@register_strategy("sigterm_at_second_task")
class SigtermAtSecondTask(Strategy):
    \"\"\"Sends SIGTERM to its own process at the start of task 1 when $SIGTERM_AT_TASK1 is set
    (as a job scheduler stopping the job would).\"\"\"

    name = "sigterm_at_second_task"

    def on_task_start(self, task_id):
        if task_id == 1 and os.environ.get("SIGTERM_AT_TASK1"):
            os.kill(os.getpid(), signal.SIGTERM)
"""


def test_sigterm_stops_a_run_as_ctrl_c_does_and_it_resumes(tiny, tmp_path, monkeypatch, capsys):
    (tmp_path / "termplug.py").write_text(TERM_PLUGIN)
    monkeypatch.syspath_prepend(str(tmp_path))
    import termplug  # noqa: F401  (registers sigterm_at_second_task here too)

    script = "import sys, termplug; from robotcl.cli import main; sys.exit(main(sys.argv[1:]))"
    path = os.pathsep.join([str(tmp_path), os.environ.get("PYTHONPATH", "")])
    env = {**os.environ, "SIGTERM_AT_TASK1": "1", "PYTHONPATH": path}
    args = ["run", "quick", *tiny, "strategy=sigterm_at_second_task", "torch_threads=1"]
    done = subprocess.run(
        [sys.executable, "-c", script, *args], env=env, capture_output=True, text=True, timeout=300
    )
    run_dir = run_dir_of(tmp_path / "runs")
    err = done.stderr.strip().splitlines()
    assert done.returncode == 130, done.stderr
    assert err == [
        f"run directory: {run_dir}",
        f"robotcl: interrupted; continue with: robotcl run --resume {run_dir}",
    ]
    assert sorted(p.name for p in (run_dir / "checkpoints").iterdir()) == ["task000"]
    assert json.loads((run_dir / "results.json").read_text())["completed_tasks"] == 1
    assert main(["run", "--resume", str(run_dir)]) == 0
    assert json.loads((run_dir / "results.json").read_text())["completed_tasks"] == 2


# -- a run directory that turns read-only ---------------------------------------------------
class ReadOnlyAtSecondTask(Strategy):
    """Makes the run directory read-only at the first update of task 1, while the learner
    logs to TensorBoard: every write into it fails with EROFS from then on (root may write
    into a chmod'ed folder, so the OS's refusal is simulated where Python opens, makes and
    renames files)."""

    name = "read_only_at_second_task"
    patch: Any = None  # the test's monkeypatch
    root: Path | None = None

    def penalty(self, task_id: int) -> None:
        if task_id == 1 and ReadOnlyAtSecondTask.patch is not None:
            make_read_only(ReadOnlyAtSecondTask.patch, Path(ReadOnlyAtSecondTask.root))
            ReadOnlyAtSecondTask.patch = None
        return None


register_strategy("read_only_at_second_task")(ReadOnlyAtSecondTask)


def make_read_only(patch: Any, root: Path) -> None:
    root = root.resolve()

    def inside(path: Any) -> bool:
        if isinstance(path, int):
            return False
        text = os.fsdecode(path)
        return Path(os.path.abspath(text)).is_relative_to(root)

    def refuse(path: Any) -> None:
        raise OSError(errno.EROFS, os.strerror(errno.EROFS), os.fsdecode(path))

    real_open, real_os_open = builtins.open, os.open

    def open_(file: Any, mode: str = "r", *args: Any, **kwargs: Any) -> Any:
        if inside(file) and set(mode) & set("wax+"):
            refuse(file)
        return real_open(file, mode, *args, **kwargs)

    def os_open(path: Any, flags: int, *args: Any, **kwargs: Any) -> int:
        writes = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_TRUNC
        if kwargs.get("dir_fd") is None and inside(path) and flags & writes:
            refuse(path)
        return real_os_open(path, flags, *args, **kwargs)

    def guarded(real: Any) -> Any:
        def call(path: Any, *args: Any, **kwargs: Any) -> Any:
            if kwargs.get("dir_fd") is None and inside(path):
                refuse(path)
            return real(path, *args, **kwargs)

        return call

    def access(path: Any, mode: int, *args: Any, **kwargs: Any) -> bool:
        if inside(path) and mode & os.W_OK:
            return False
        return real_access(path, mode, *args, **kwargs)

    real_access = os.access
    patch.setattr(os, "access", access)
    patch.setattr(builtins, "open", open_)
    patch.setattr(io, "open", open_)
    patch.setattr(os, "open", os_open)
    for name in ("mkdir", "replace", "rename", "unlink", "remove", "rmdir"):
        patch.setattr(os, name, guarded(getattr(os, name)))


@pytest.mark.filterwarnings("error::pytest.PytestUnhandledThreadExceptionWarning")
def test_a_run_directory_that_turns_read_only_stops_the_run_in_one_line(
    tiny, tmp_path, capsys, monkeypatch
):
    ReadOnlyAtSecondTask.patch, ReadOnlyAtSecondTask.root = monkeypatch, tmp_path / "runs"
    try:
        code = main(["run", "quick", *tiny, "strategy=read_only_at_second_task"])
    finally:
        ReadOnlyAtSecondTask.patch = None
        monkeypatch.undo()
    err = capsys.readouterr().err.strip().splitlines()
    run_dir = run_dir_of(tmp_path / "runs")
    assert code == 3, err
    assert err[0] == f"run directory: {run_dir}" and len(err) == 2, err
    assert err[1].startswith(
        "robotcl: stopped: cannot write to the run directory (Read-only file system)"
    )
    assert err[1].endswith(f"the last checkpoint is kept: robotcl run --resume {run_dir}")
    assert sorted(p.name for p in (run_dir / "checkpoints").iterdir()) == ["task000"]
    assert json.loads((run_dir / "results.json").read_text())["completed_tasks"] == 1

    # resumed while the folder is still read-only: one line before anything is touched
    before = snapshot(run_dir)
    make_read_only(monkeypatch, tmp_path / "runs")
    try:
        code = main(["run", "--resume", str(run_dir)])
    finally:
        monkeypatch.undo()
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1, err
    assert err[0] == f"robotcl: error: --resume '{run_dir}': '{run_dir}' is not writable"
    assert snapshot(run_dir) == before


# -- a plugin learner on the global random generators --------------------------------------
class GlobalRandomLearner:
    """A learner whose actions come from numpy's and torch's global generators (as plain
    scripts' do); it does not seed them itself."""

    capabilities: frozenset[str] = frozenset()

    def __init__(self, env: Any, num_tasks: int, task_names: list[str], seed: int, device: str):
        self.action_space = env.action_space
        self.num_timesteps, self.current_task, self._task_steps = 0, 0, 0
        self.weight = torch.nn.Parameter(torch.rand(1))  # a random init, as a network's

    @staticmethod
    def wrap_env(env: gym.Env, seed: int | None = None) -> gym.Env:
        return env

    def attach(self, strategy: Any) -> None: ...

    def set_logger(self, logger: Any) -> None: ...

    def start_task(self, task_id: int, env: gym.Env, seed: int | None = None) -> None:
        self.current_task, self._task_steps = task_id, 0

    def learn_task(self, steps: int, on_step: Any = None) -> None:
        for _ in range(steps):
            self.weight.data += 0.01 * float(np.random.rand() - 0.5)
            self.num_timesteps += 1
            self._task_steps += 1
            if on_step is not None:
                on_step()

    @property
    def task_steps(self) -> int:
        return self._task_steps

    def task_data(self) -> TaskData:
        return TaskData(self.current_task)

    def act(self, observations: np.ndarray, deterministic: bool) -> np.ndarray:
        shape = (len(observations), *self.action_space.shape)
        noise = np.random.rand(*shape) + torch.rand(shape).numpy()
        return np.clip(noise - 1.0 + float(self.weight.detach()), -1.0, 1.0).astype(np.float32)

    def parameter_groups(self) -> dict[str, list[torch.nn.Parameter]]:
        return {"actor_trunk": [self.weight]}

    def reset_optimizers(self) -> None: ...

    def save(self, path: Any) -> None:
        torch.save({"weight": self.weight.data, "steps": self.num_timesteps}, path)

    @classmethod
    def load(cls, path: Any, device: str = "auto", prepare: Any = None) -> GlobalRandomLearner:
        raise NotImplementedError


@pytest.fixture
def global_random_agent():
    """The learner registered for one test only (other tests list the registered agents)."""
    register_agent("global_random")(GlobalRandomLearner)
    yield
    AGENTS._items.pop("global_random", None)


def test_a_plugin_learner_on_the_global_generators_is_reproducible_by_seed(
    tmp_path, global_random_agent
):
    from robotcl.config import load_config
    from robotcl.experiment import run

    items = [
        "agent.name=global_random",
        "steps_per_task=100",
        "eval.every_steps=50",
        "eval.episodes=2",
        "eval.deterministic_episodes=1",
        "progress=false",
        "num_tasks=2",
    ]

    def matrices(seed: int, name: str) -> dict:
        config = load_config("quick", [*items, f"seed={seed}", f"runs_dir={tmp_path / name}"])
        _, results = run(config)
        return results["R"]

    np.random.seed(1)  # whatever state the process is in, the run's seed decides
    first = matrices(0, "a")
    torch.manual_seed(2)
    second = matrices(0, "b")
    other = matrices(1, "c")
    assert first == second
    assert first != other
