"""Shared fixtures: tiny budgets so every run finishes in seconds on 2 CPU cores."""

from __future__ import annotations

import functools
import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from budgets import TINY_AGENT

torch.set_num_threads(1)

TINY = [
    "num_tasks=2",
    *TINY_AGENT,
    "agent.log_every_updates=10",
    "eval.every_steps=50",
    "eval.episodes=2",
    "eval.deterministic_episodes=1",
    "progress=false",
]


@pytest.fixture
def load_example():
    """Import a script of examples/ by its name (``load_example("spin_success")``)."""

    def load(name: str):
        path = Path(__file__).parents[1] / "examples" / f"{name}.py"
        spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module

    return load


@pytest.fixture
def tiny(tmp_path):
    """Overrides for a 2-task, 100-steps-per-task run writing under tmp_path."""
    return [*TINY, f"runs_dir={tmp_path / 'runs'}"]


@functools.cache
def _offscreen_gl_error() -> str | None:
    """Try an offscreen MuJoCo renderer in a child process: a missing GL backend can abort
    the process outright (GLFW without a display), which must not take the test run with it."""
    probe = (
        "import mujoco; m = mujoco.MjModel.from_xml_string('<mujoco/>'); "
        "r = mujoco.Renderer(m, 16, 16); r.close()"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)
    return None if done.returncode == 0 else (done.stderr.strip().splitlines() or ["abort"])[-1]


@pytest.fixture
def gl_ok() -> None:
    """Skip rendering tests cleanly where no offscreen GL context can be made."""
    error = _offscreen_gl_error()
    if error:
        pytest.skip(f"no offscreen GL context (set MUJOCO_GL=egl?): {error}")
