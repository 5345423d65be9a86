"""A fake rendering env whose frames and state encode the step and the episode (``Counter``),
seen through robotcl's pixel wrappers, and how stable-baselines3 feeds a replay buffer with it:
what the frame-replay and later-pair tests check stacks and pairs against."""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np

from robotcl.envs.pixels import PixelObservation
from robotcl.envs.suites import TaskIdWrapper


class Counter(gym.Env):
    """Renders a frame filled with a value that changes every step; the state is (t, x)."""

    metadata = {"render_modes": ["rgb_array"]}
    observation_space = gym.spaces.Box(-1e4, 1e4, (2,), np.float32)
    action_space = gym.spaces.Box(-1, 1, (1,), np.float32)

    def __init__(self, render_mode="rgb_array", size=6):
        self.render_mode, self.size, self.t, self.base = render_mode, size, 0, 0

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.t, self.base = 0, int(self.np_random.integers(0, 100))
        return self._state(), {}

    def _state(self):
        return np.array([self.t, self.base], np.float32)

    def step(self, action):
        self.t += 1
        return self._state(), float(action[0]), False, False, {}

    def render(self):
        frame = np.zeros((self.size, self.size, 3), np.uint8)
        frame[..., 0] = (self.base + self.t) % 256
        frame[..., 1] = self.t % 256
        frame[..., 2] = np.arange(self.size)[None, :]  # not constant within a frame
        return frame


def pixel_env(max_steps: int, size: int = 6) -> gym.Env:
    env = gym.wrappers.TimeLimit(Counter(size=size), max_steps)
    return TaskIdWrapper(PixelObservation(env, frames=3, size=size, proprio=True), 1, 2)


def collect(env: gym.Env, steps: int, buffer: Any, seed: int = 0, cut_every: int = 0) -> list:
    """Feed ``buffer`` as stable-baselines3 does; return the transitions it was given.
    ``cut_every``: also reset the env every that many steps without a done (as a task switch
    does when steps_per_task is not a multiple of the episode's length)."""
    rng = np.random.default_rng(seed)
    given = []
    obs, _ = env.reset(seed=seed)
    for step in range(steps):
        action = rng.uniform(-1, 1, 1).astype(np.float32)
        nxt, reward, terminated, truncated, _ = env.step(action)
        info = {"TimeLimit.truncated": truncated and not terminated}
        buffer.add(obs[None], nxt[None], action[None], np.array([reward]),
                   np.array([terminated or truncated]), [info])  # fmt: skip
        given.append((obs, nxt, action, reward, terminated))
        cut = cut_every and (step + 1) % cut_every == 0
        obs = env.reset()[0] if terminated or truncated or cut else nxt
    return given
