"""Continual World's multi-task reference: every task of the suite trained at once.

Wolczyk et al. (2021) compare continual methods with a multi-task learner that interacts with
the environments of all tasks together for the whole budget. Here that learner runs through the
same task loop: every stage collects from :class:`InterleavedTasks` (each episode is the next
task of the suite in turn, so all tasks are interleaved from the first step) and keeps one
replay buffer and one optimizer across stages, so the run is one uninterrupted multi-task
training of ``len(suite) * steps_per_task`` steps, the sequential runs' total budget. The
random warm-up and ``update_after`` apply to the first stage only. ``R[i]`` is the evaluation
after ``i + 1`` stages; its last row is the reference that ACC is compared with (the sequence's
BWT and forgetting mean little here).

For joint training on the stored data of the tasks seen so far, see ``cumulative``.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym

from robotcl.registry import register_strategy
from robotcl.strategies.base import Strategy


class InterleavedTasks(gym.Env):
    """All tasks of a suite behind one env: each ``reset`` starts the next task, round-robin.

    Every task's observation carries its own one-hot, so a multi-head learner trains each head
    on its task's transitions. A seeded reset seeds every task's env (task ``k`` with
    ``seed + k``).
    """

    def __init__(self, suite: Any) -> None:
        self.envs = [suite.make_env(k) for k in range(len(suite))]
        self.observation_space = self.envs[0].observation_space
        self.action_space = self.envs[0].action_space
        self.current = -1

    def reset(self, *, seed: int | None = None, options: dict | None = None) -> tuple[Any, dict]:
        super().reset(seed=seed)
        self.current = (self.current + 1) % len(self.envs)
        if seed is not None:
            for k, env in enumerate(self.envs):
                if k != self.current:
                    env.reset(seed=seed + k)
            return self.envs[self.current].reset(seed=seed + self.current, options=options)
        return self.envs[self.current].reset(options=options)

    def step(self, action: Any) -> tuple[Any, float, bool, bool, dict]:
        return self.envs[self.current].step(action)

    def close(self) -> None:
        for env in self.envs:
            env.close()


@register_strategy("multitask")
class Multitask(Strategy):
    """Train on every task of the suite at once (interleaved envs, one buffer, one optimizer)."""

    name = "multitask"
    needs = frozenset({"off_policy"})

    def setup(self, learner: Any, suite: Any) -> None:
        super().setup(learner, suite)
        # one uninterrupted training: the stages share the buffer and the optimizer state
        learner.reset_buffer = False
        learner.reset_optimizer = False

    def training_env(self, task_id: int, env: Any) -> Any:
        env.close()
        return InterleavedTasks(self.suite)

    def on_task_start(self, task_id: int) -> None:
        if task_id > 0:  # warm-up once, at the start of the whole training
            self.learner.random_steps = 0
            self.learner.update_after = 0
