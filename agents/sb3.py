"""What every continual learner built on a stable-baselines3 algorithm shares, on- or off-policy.

:class:`ContinualSB3` is a mixin placed before the SB3 algorithm in the bases. It holds the task
bookkeeping and the parts of the learner protocol (:mod:`robotcl.learner`) that do not depend on
how the algorithm collects data or computes its losses: the attached strategy, the env wrapper,
``learn_task`` with the task loop's per-step call, acting, loading with a strategy's
``prepare``, and the NaN check after each round of updates.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

import gymnasium as gym
import numpy as np
import torch
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.monitor import Monitor
from stable_baselines3.common.utils import get_device
from stable_baselines3.common.vec_env import DummyVecEnv

from robotcl.agents.networks import ACTIVATIONS
from robotcl.errors import TrainingDiverged
from robotcl.strategies.base import Strategy

#: the losses of an update that must stay finite
CHECKED_LOSSES = ("critic_loss", "actor_loss", "penalty")


class _EachStep(BaseCallback):
    """SB3's callback form of the task loop's ``on_step()``."""

    def __init__(self, on_step: Callable[[], None]) -> None:
        super().__init__()
        self.on_step_fn = on_step

    def _on_step(self) -> bool:
        self.on_step_fn()
        return True


class ContinualSB3:
    """Task bookkeeping and the algorithm-independent learner protocol for SB3 learners."""

    capabilities: ClassVar[frozenset[str]] = frozenset()

    # set by the SB3 algorithm this is mixed into (annotations only: nothing is shadowed)
    policy: Any
    num_timesteps: int
    _n_updates: int

    def init_tasks(self, num_tasks: int, task_names: list[str] | None, log_every: int) -> None:
        """The task bookkeeping; call before the SB3 constructor (which may set up the model)."""
        self.num_tasks = num_tasks
        self.task_names = list(task_names) if task_names else [str(i) for i in range(num_tasks)]
        self.log_every_updates = log_every
        self.current_task = 0
        self._task_start_step = 0
        self.strategy: Strategy = Strategy()

    @staticmethod
    def optimizer_kwargs(device: str) -> dict[str, bool]:
        """Adam over all parameters at once: fused kernels on CUDA, multi-tensor ops on CPU."""
        return {"fused" if get_device(device).type == "cuda" else "foreach": True}

    @staticmethod
    def activation(name: str) -> type[torch.nn.Module]:
        return ACTIVATIONS[name]

    # -- set-up ---------------------------------------------------------------------------
    def _setup_model(self) -> None:
        super()._setup_model()  # type: ignore[misc]
        prepare = self.__dict__.pop("prepare", None)  # Learner.load(..., prepare=fn)
        if prepare is not None:
            prepare(self)

    def _excluded_save_params(self) -> list[str]:
        return [*super()._excluded_save_params(), "strategy"]  # type: ignore[misc]

    def attach(self, strategy: Strategy) -> None:
        """Use ``strategy``'s hooks from now on."""
        self.strategy = strategy

    @staticmethod
    def wrap_env(env: gym.Env, seed: int | None = None) -> DummyVecEnv:
        """The vectorised, monitored form SB3 trains on."""
        vec = DummyVecEnv([lambda: Monitor(env)])
        if seed is not None:
            vec.seed(seed)
        return vec

    # -- the task loop --------------------------------------------------------------------
    def learn_task(self, steps: int, on_step: Callable[[], None] | None = None) -> None:
        """Train the current task for ``steps`` env steps, calling ``on_step()`` after each."""
        callback = None if on_step is None else _EachStep(on_step)
        self.learn(steps, callback=callback, reset_num_timesteps=False, log_interval=10)  # type: ignore[attr-defined]

    @property
    def task_steps(self) -> int:
        return self.num_timesteps - self._task_start_step

    def act(self, observations: np.ndarray, deterministic: bool) -> np.ndarray:
        """Actions for a batch of observations (used by the evaluator)."""
        actions, _ = self.predict(observations, deterministic=deterministic)  # type: ignore[attr-defined]
        return actions

    # -- health ---------------------------------------------------------------------------
    def check_finite(self, out: dict[str, torch.Tensor]) -> None:
        """Stop the run (:class:`~robotcl.errors.TrainingDiverged`) when the last update's
        losses or any network parameter are NaN or infinite (one host sync per round)."""
        losses = {k: out[k].detach().reshape(()) for k in CHECKED_LOSSES if k in out}
        params = [p.detach() for p in self.policy.parameters()]
        norms = torch.stack([*losses.values(), *torch._foreach_norm(params)])
        if bool(torch.isfinite(norms).all()):
            return
        bad = [f"{k}={v.item()}" for k, v in losses.items() if not torch.isfinite(v)]
        raise TrainingDiverged(self.num_timesteps, ", ".join(bad) or "a network parameter")

    def record(self, out: dict[str, torch.Tensor]) -> None:
        """Training scalars of an update to the logger (every ``log_every_updates``)."""
        logger = self.logger  # type: ignore[attr-defined]
        for key in ("critic_loss", "actor_loss", "penalty", "entropy"):
            if key in out:
                logger.record(f"train/{key}", out[key].item())
        ssl = getattr(self, "ssl", None)
        if ssl is not None and "ssl_loss" in out:
            logger.record(f"train/ssl/{ssl.name}/loss", out["ssl_loss"].item())
            logger.record(f"train/ssl/{ssl.name}/accuracy", out["ssl_accuracy"].item())
        self._record_extra(out)
        logger.record("train/n_updates", self._n_updates)
        logger.dump(self.num_timesteps)

    def _record_extra(self, out: dict[str, torch.Tensor]) -> None:
        """Learner-specific scalars to log next to the losses."""
