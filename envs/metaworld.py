"""Continual World's tasks (Wolczyk et al. 2021) on Meta-World v3, through its gymnasium API.

Needs the optional extra ``robotcl[metaworld]`` (Meta-World pins MuJoCo 3.3.0). Each task is a
Meta-World v3 environment with Continual World's settings: 200-step episodes (Meta-World's own
are 500) and success if ``info["success"]`` was true at any step of the episode (given as
``info["is_success"]`` at the last step, as robotcl's evaluator reads it). Each reset draws one
of the task's 50 goal and object placements of Meta-World's MT1 benchmark, from a generator
seeded by the reset's seed, so episodes are reproducible. Observations are float32 (39 values:
hand, gripper, objects, the previous frame of those, the goal).

Continual World's published numbers were made on Meta-World v1; v3 tasks differ (reward
functions, object placements), so those numbers are a reference, not a target.
"""

from __future__ import annotations

import importlib.util
from typing import Any

import gymnasium as gym
import numpy as np

from robotcl.envs.extras import MissingExtra

#: Continual World's CW10 sequence; CW20 is CW10 twice
CW10 = (
    "hammer",
    "push-wall",
    "faucet-close",
    "push-back",
    "stick-pull",
    "handle-press-side",
    "push",
    "shelf-place",
    "window-close",
    "peg-unplug-side",
)
EPISODE_STEPS = 200
EXTRA = "pip install 'robotcl[metaworld]'"


def available() -> bool:
    return importlib.util.find_spec("metaworld") is not None


def require(what: str) -> None:
    if not available():
        raise MissingExtra(what, "needs Meta-World, which is not installed", EXTRA)


class ContinualWorldTask(gym.Wrapper):
    """A Meta-World v3 env with Continual World's success test, a seeded placement per reset and
    float32 observations (see the module docstring)."""

    def __init__(self, env: gym.Env, tasks: list[Any]) -> None:
        super().__init__(env)
        self.tasks = tasks
        self._rng = np.random.default_rng(0)
        env.unwrapped.set_task(tasks[0])  # goal-observable, as in the MT benchmarks
        # one space for every task (Meta-World's bounds differ by task; a learner switching
        # tasks needs them equal)
        shape = env.unwrapped.sawyer_observation_space.shape
        self.observation_space = gym.spaces.Box(-np.inf, np.inf, shape, np.float32)
        self._success = False

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        if seed is not None:
            self._rng = np.random.default_rng(seed)
            self.env.unwrapped.seed(seed)
        self.env.unwrapped.set_task(self.tasks[int(self._rng.integers(len(self.tasks)))])
        obs, info = self.env.reset(seed=seed, options=options)
        self._success = False
        return np.asarray(obs, np.float32), info

    def step(self, action: Any):
        obs, reward, terminated, truncated, info = self.env.step(action)
        self._success = self._success or bool(info.get("success", False))
        info = {**info, "is_success": self._success}
        return np.asarray(obs, np.float32), float(reward), terminated, truncated, info


def make_task(
    name: str,
    render_mode: str | None = None,
    width: int = 480,
    height: int = 480,
    episode_steps: int = EPISODE_STEPS,
) -> gym.Env:
    """The Continual World task ``name`` (e.g. "hammer"): gymnasium's entry point."""
    require(f"task '{name}'")
    import metaworld

    env_name = f"{name}-v3"
    cls = metaworld.env_dict.ALL_V3_ENVIRONMENTS[env_name]
    env = cls(render_mode=render_mode, width=width, height=height)
    env.max_path_length = episode_steps
    tasks = metaworld.MT1(env_name, seed=0).train_tasks
    return gym.wrappers.TimeLimit(ContinualWorldTask(env, tasks), episode_steps)


def env_id(name: str) -> str:
    """Gymnasium id of the Continual World task ``name``, e.g. ``robotcl/CW-hammer-v0``."""
    return f"robotcl/CW-{name}-v0"


def register_tasks() -> None:
    """Register robotcl/CW-<task>-v0 for the CW10 tasks (made only when Meta-World is there)."""
    for name in CW10:
        if env_id(name) not in gym.registry:
            gym.register(
                env_id(name), entry_point="robotcl.envs.metaworld:make_task", kwargs={"name": name}
            )
