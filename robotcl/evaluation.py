"""Roll out the current policy on every task of the suite.

Episodes of one task run in lockstep so that the policy acts on a batch; each task is evaluated
inside the strategy's acting context (PackNet's per-task weights, progressive columns).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np


class Actor(Protocol):
    """What the evaluator needs from a learner."""

    def act(self, observations: np.ndarray, deterministic: bool) -> np.ndarray: ...


@dataclass
class TaskScore:
    """Success rate and mean return of one task, for one kind of episode."""

    success: float
    ret: float


class Evaluator:
    """Evaluates every task of ``suite`` with stochastic and deterministic episodes.

    Success is the env's ``info["is_success"]`` at the episode's last step.
    """

    def __init__(self, suite: Any, episodes: int, deterministic_episodes: int, seed: int) -> None:
        self.suite = suite
        self.counts = {"stochastic": episodes, "deterministic": deterministic_episodes}
        self.seed = seed
        self._envs: dict[int, list[Any]] = {}

    def _task_envs(self, task: int) -> list[Any]:
        n = max(self.counts.values())
        if task not in self._envs:
            self._envs[task] = [self.suite.make_env(task) for _ in range(n)]
        return self._envs[task]

    def rollout(self, actor: Actor, task: int, episodes: int, deterministic: bool) -> TaskScore:
        """Run ``episodes`` episodes of ``task`` side by side."""
        envs = self._task_envs(task)[:episodes]
        obs = np.stack(
            [env.reset(seed=self.seed + 7919 * task + k)[0] for k, env in enumerate(envs)]
        )
        returns = np.zeros(len(envs))
        success = np.zeros(len(envs), dtype=bool)
        active = np.ones(len(envs), dtype=bool)
        while active.any():
            actions = actor.act(obs, deterministic=deterministic)
            for k, env in enumerate(envs):
                if not active[k]:
                    continue
                obs[k], reward, terminated, truncated, info = env.step(actions[k])
                returns[k] += float(reward)
                if terminated or truncated:
                    active[k] = False
                    success[k] = bool(info.get("is_success", False))
        return TaskScore(float(success.mean()), float(returns.mean()))

    def evaluate(self, actor: Actor, strategy: Any) -> dict[str, list[TaskScore]]:
        """Scores of every task: ``{"stochastic": [...], "deterministic": [...]}``."""
        scores: dict[str, list[TaskScore]] = {mode: [] for mode, n in self.counts.items() if n}
        for task in range(len(self.suite)):
            with strategy.acting(task):
                for mode in scores:
                    scores[mode].append(
                        self.rollout(actor, task, self.counts[mode], mode == "deterministic")
                    )
        return scores

    def close(self) -> None:
        for envs in self._envs.values():
            for env in envs:
                env.close()
        self._envs.clear()
