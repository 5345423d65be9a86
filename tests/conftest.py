"""Shared fixtures: tiny budgets so every run finishes in seconds on 2 CPU cores."""

from __future__ import annotations

import os

import pytest
import torch

os.environ.setdefault("MUJOCO_GL", "egl")
torch.set_num_threads(1)

TINY = [
    "num_tasks=2",
    "steps_per_task=100",
    "agent.net_arch=[32,32]",
    "agent.batch_size=32",
    "agent.buffer_size=1000",
    "agent.random_steps=50",
    "agent.update_after=50",
    "agent.train_freq=1",
    "agent.gradient_steps=1",
    "agent.log_every_updates=10",
    "eval.every_steps=50",
    "eval.episodes=2",
    "eval.deterministic_episodes=1",
    "progress=false",
]


@pytest.fixture
def tiny(tmp_path):
    """Overrides for a 2-task, 100-steps-per-task run writing under tmp_path."""
    return [*TINY, f"runs_dir={tmp_path / 'runs'}"]
