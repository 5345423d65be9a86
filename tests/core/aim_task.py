"""A two-task toy suite for study tests: aim at +x or at -x (registered on import as
``robotcl-test/Aim-v0``), with overrides that finish a run in seconds."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
from budgets import TINY_AGENT


class Aim(gym.Env):
    """Observe a target x in [-1, 1]; act a; reward -(a - sign x)^2; success when the last
    step's action is within 0.2 of ``sign * x``. Five steps, a new target each step."""

    observation_space = gym.spaces.Box(-1, 1, (1,), np.float32)
    action_space = gym.spaces.Box(-1, 1, (1,), np.float32)

    def __init__(self, sign: float = 1.0, render_mode: str | None = None) -> None:
        self.sign, self.render_mode = sign, render_mode

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.x = self.np_random.uniform(-1, 1, 1).astype(np.float32)
        return self.x.copy(), {}

    def step(self, action):
        error = float(action[0] - self.sign * self.x[0])
        self.x = self.np_random.uniform(-1, 1, 1).astype(np.float32)
        return self.x.copy(), -(error**2), False, False, {"is_success": abs(error) < 0.2}


gym.register("robotcl-test/Aim-v0", entry_point=Aim, max_episode_steps=5)

SUITE = """name: aim
tasks:
  - {id: robotcl-test/Aim-v0, name: plus, kwargs: {sign: 1.0}}
  - {id: robotcl-test/Aim-v0, name: minus, kwargs: {sign: -1.0}}
"""

SMALL = [
    *TINY_AGENT,
    "eval.every_steps=50",
    "eval.episodes=0",
    "eval.deterministic_episodes=4",
    "eval.metric=deterministic",
    "probe.samples=0",
    "progress=false",
    "experts.episodes=6",
]
