"""A one-step reaching task small enough for any learner to solve in seconds (test helper)."""

from __future__ import annotations

import gymnasium as gym
import numpy as np

from robotcl.envs.suites import TaskIdWrapper


class Reach(gym.Env):
    """Observe a target x in [-1, 1], act a; reward -(a - x)^2; one step per episode."""

    observation_space = gym.spaces.Box(-1, 1, (1,), np.float32)
    action_space = gym.spaces.Box(-1, 1, (1,), np.float32)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.x = self.np_random.uniform(-1, 1, 1).astype(np.float32)
        return self.x.copy(), {}

    def step(self, action):
        return self.x.copy(), -float((action[0] - self.x[0]) ** 2), True, False, {}


def reach_env() -> gym.Env:
    return TaskIdWrapper(Reach(), 0, 1)


def reach_score(learner, episodes: int = 200) -> float:
    """Mean reward of the learner's deterministic actions (random init: about -1/3)."""
    env, total = reach_env(), 0.0
    for k in range(episodes):
        obs, _ = env.reset(seed=k)
        total += env.step(learner.act(obs[None], True)[0])[1]
    return total / episodes
