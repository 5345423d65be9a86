"""A two-task supervised toy on which each strategy's mechanism shows in a second or two.

Both tasks regress 2-d actions from the same 4-d states through a shared trunk and their own
heads; the targets are different nonlinear functions, so training task 1 moves the trunk away
from what task 0's head relies on (fine-tuning forgets task 0).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest
import torch

from robotcl.agents.supervised import BCLearner, TransitionDataset

STATE_DIM, ACTION_DIM, NUM_TASKS = 4, 2, 2


def _task_data(task: int, n: int = 512) -> TransitionDataset:
    rng = np.random.default_rng(100 + task)
    states = rng.normal(size=(n, STATE_DIM)).astype(np.float32)
    w = np.random.default_rng(task).normal(size=(STATE_DIM, ACTION_DIM))
    actions = np.tanh(states @ w) if task == 0 else np.sin(2 * states @ w)
    one_hot = np.zeros((n, NUM_TASKS), np.float32)
    one_hot[:, task] = 1
    return TransitionDataset(np.concatenate([states, one_hot], 1), actions.astype(np.float32))


@dataclass
class Toy:
    """The two datasets, a learner factory, and the per-task error."""

    data: list[TransitionDataset]

    def learner(self, seed: int = 0, **kwargs) -> BCLearner:
        settings = dict(net_arch=[32, 32], learning_rate=3e-3, batch_size=64, seed=seed)
        settings.update(kwargs)
        return BCLearner(STATE_DIM + NUM_TASKS, ACTION_DIM, NUM_TASKS, **settings)

    @torch.no_grad()
    def error(self, learner: BCLearner, task: int) -> float:
        d = self.data[task]
        return float(((learner.net(d.observations)[0] - d.actions) ** 2).mean())

    def run(self, strategy, steps: int = 400, seed: int = 0, **kwargs) -> tuple[BCLearner, dict]:
        """Train task 0 then task 1 with ``strategy``; errors on task 0 before and after."""
        learner = self.learner(seed, **kwargs)
        learner.attach(strategy)
        strategy.setup(learner, None)
        errors = {}
        for task in range(NUM_TASKS):
            learner.start_task(task, self.data[task])
            strategy.on_task_start(task)
            learner.learn_task(steps)
            strategy.on_task_end(task, learner.task_data())
            errors[f"after_{task}"] = [self.error(learner, t) for t in range(NUM_TASKS)]
        return learner, errors


@pytest.fixture
def toy() -> Toy:
    torch.manual_seed(0)
    return Toy([_task_data(t) for t in range(NUM_TASKS)])
