"""The ``bc`` agent: :class:`~robotcl.agents.supervised.BCLearner` run by the task loop on expert
datasets, the supervised side of the gap evaluation (``robotcl gap``).

It trains task after task like any learner (same hooks, strategies, evaluations into R,
checkpoints), but its steps are gradient steps on the task's expert data instead of env steps.
The data is a folder (``agent.expert_data``) with one ``<task name>.npz`` per task of the suite:

- ``observations``: (N, obs) float32, the env's observation without the task one-hot (the agent
  appends the one-hot of the task's position in the curriculum);
- ``actions``: (N, act) float32, the expert's actions (the targets);
- ``episodes`` (optional): (N,) int, the episode of each row.

``robotcl experts`` writes such files. The last ``agent.heldout_fraction`` of each task's episodes
is held out: after every task the agent scores its action loss (MSE) on every task's held-out rows
(the held-out action-loss matrix of supervised continual-learning papers).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch
import torch.nn.functional as F

from robotcl.agents.supervised import BCLearner, TransitionDataset
from robotcl.errors import TrainingDiverged, UserInputError
from robotcl.registry import register_agent


def read_expert_data(folder: str | Path, task: str) -> dict[str, np.ndarray]:
    """The arrays of ``folder/<task>.npz``; a one-line error names a missing or bad file."""
    path = Path(folder) / f"{task}.npz"
    where = f"expert data '{path}'"
    if not path.is_file():
        raise UserInputError(where, "not found", "robotcl experts PRESET writes one per task")
    try:
        with np.load(path) as npz:
            data = {k: npz[k] for k in npz.files}
        obs, actions = data["observations"], data["actions"]
    except KeyError as exc:
        raise UserInputError(where, f"has no {exc} array", "observations and actions") from None
    except Exception as exc:  # noqa: BLE001  (corrupt zip, wrong format)
        raise UserInputError(where, f"cannot be read ({exc})") from None
    if obs.ndim != 2 or actions.ndim != 2 or len(obs) != len(actions) or not len(obs):
        raise UserInputError(
            where,
            f"observations {obs.shape} and actions {actions.shape} do not pair up",
            "(N, obs) and (N, act) with N > 0",
        )
    if not (np.isfinite(obs).all() and np.isfinite(actions).all()):
        raise UserInputError(where, "holds NaN or infinite values")
    episodes = data.get("episodes", np.arange(len(obs)))
    if episodes.shape != (len(obs),):
        raise UserInputError(where, f"episodes {episodes.shape} does not match {len(obs)} rows")
    return {"observations": obs, "actions": actions, "episodes": episodes}


def heldout_split(episodes: np.ndarray, fraction: float) -> np.ndarray:
    """Rows to hold out: those of the last ``fraction`` of the episodes (at least one episode
    when the fraction is positive and there are two or more; the same split for every seed)."""
    unique = np.unique(episodes)
    held = min(len(unique) - 1, math.ceil(fraction * len(unique))) if fraction > 0 else 0
    if held == 0:
        return np.zeros(len(episodes), bool)
    return np.isin(episodes, unique[len(unique) - held :])


@register_agent("bc")
class BCAgent(BCLearner):
    """Behaviour cloning through the task loop (``agent.name=bc``): one expert dataset a task.

    ``learn_task(steps)`` takes ``steps`` gradient steps on the task's training rows; the
    evaluator rolls the policy's mean action out on every task, as for an RL learner.
    """

    def __init__(
        self,
        env: gym.Env | None = None,
        num_tasks: int = 1,
        task_names: list[str] | None = None,
        seed: int = 0,
        device: str = "auto",
        expert_data: str | None = None,
        heldout_fraction: float = 0.1,
        net_arch: list[int] | tuple[int, ...] = (256, 256),
        activation: str = "relu",
        layer_norm: bool = False,
        learning_rate: float = 1e-3,
        batch_size: int = 128,
        reset_optimizer: bool = True,
        encoder: dict[str, Any] | None = None,
        log_every_updates: int = 200,
        obs_dim: int | None = None,
        action_dim: int | None = None,
        action_bounds: tuple[list[float], list[float]] | None = None,
    ) -> None:
        if env is not None:
            obs_dim = int(env.observation_space.shape[0])
            action_dim = int(env.action_space.shape[0])
            action_bounds = (env.action_space.low.tolist(), env.action_space.high.tolist())
            env.close()
        if obs_dim is None or action_dim is None:
            raise ValueError("BCAgent needs an env or obs_dim and action_dim")
        if device == "auto":
            device = "cuda" if torch.cuda.is_available() else "cpu"
        self.init_kwargs = {
            "num_tasks": num_tasks,
            "task_names": list(task_names) if task_names else [str(i) for i in range(num_tasks)],
            "seed": seed,
            "expert_data": expert_data,
            "heldout_fraction": heldout_fraction,
            "net_arch": list(net_arch),
            "activation": activation,
            "layer_norm": layer_norm,
            "learning_rate": learning_rate,
            "batch_size": batch_size,
            "reset_optimizer": reset_optimizer,
            "encoder": encoder,
            "log_every_updates": log_every_updates,
            "obs_dim": obs_dim,
            "action_dim": action_dim,
            "action_bounds": action_bounds,
        }
        super().__init__(
            obs_dim,
            action_dim,
            num_tasks,
            net_arch,
            activation,
            layer_norm,
            learning_rate,
            batch_size,
            reset_optimizer,
            seed,
            device,
            encoder,
        )
        self.task_names = self.init_kwargs["task_names"]
        self.seed, self.log_every_updates, self.logger = seed, log_every_updates, None
        low, high = action_bounds or ([-math.inf] * action_dim, [math.inf] * action_dim)
        self.action_low, self.action_high = np.asarray(low), np.asarray(high)
        self.train_sets: list[TransitionDataset] = []
        self.heldout_sets: list[TransitionDataset | None] = []
        if expert_data is not None:
            self._load(expert_data, heldout_fraction)

    @classmethod
    def config_problem(cls, config: Any) -> str | None:
        """What in ``config`` this learner cannot run, or None."""
        if config.agent.expert_data is None:
            return (
                "agent bc learns from expert datasets: set agent.expert_data=DIR (one "
                "<task>.npz per task; robotcl experts PRESET writes them, robotcl gap sets it)"
            )
        if config.observation != "state":
            return f"agent bc runs on state observations, not observation={config.observation}"
        return None

    def _load(self, folder: str, fraction: float) -> None:
        """Every task's training and held-out rows, the one-hot of its position appended."""
        for task, name in enumerate(self.task_names):
            data = read_expert_data(folder, name)
            obs, actions = data["observations"], data["actions"]
            width = self.init_kwargs["obs_dim"] - self.num_tasks
            if obs.shape[1] != width or actions.shape[1] != self.init_kwargs["action_dim"]:
                raise UserInputError(
                    f"expert data '{Path(folder) / name}.npz'",
                    f"observations of {obs.shape[1]} and actions of {actions.shape[1]} values",
                    f"this suite's task has {width} and {self.init_kwargs['action_dim']}",
                )
            one_hot = np.zeros((len(obs), self.num_tasks), np.float32)
            one_hot[:, task] = 1.0
            full = np.concatenate([obs.astype(np.float32), one_hot], 1)
            held = heldout_split(data["episodes"], fraction)
            train = TransitionDataset(full[~held], actions[~held], self.device)
            train.generator.manual_seed(self.seed * 1000 + task)
            self.train_sets.append(train)
            self.heldout_sets.append(
                TransitionDataset(full[held], actions[held], self.device) if held.any() else None
            )

    # -- the learner protocol -------------------------------------------------------------
    @staticmethod
    def wrap_env(env: gym.Env, seed: int | None = None) -> gym.Env:
        """The env as it is: it gives the spaces; the data comes from the expert datasets."""
        return env

    def set_logger(self, logger: Any) -> None:
        self.logger = logger

    def start_task(self, task_id: int, env: Any = None, seed: int | None = None) -> None:
        """Train on task ``task_id``'s expert data from now on (``env`` is not stepped)."""
        if isinstance(env, gym.Env):
            env.close()
        super().start_task(task_id, self.train_sets[task_id])

    def after_update(self, out: dict[str, torch.Tensor]) -> None:
        """Every ``log_every_updates`` updates: the losses checked (a NaN loss stops the run)
        and logged."""
        if self.num_timesteps % self.log_every_updates:
            return
        values = {k: float(v.detach()) for k, v in out.items()}
        bad = [f"{k}={v}" for k, v in values.items() if not math.isfinite(v)]
        if bad:
            raise TrainingDiverged(self.num_timesteps, ", ".join(bad))
        if self.logger is not None:
            for key, value in values.items():
                self.logger.record(self._tag(key), value)
            self.logger.dump(self.num_timesteps)

    def _tag(self, key: str) -> str:
        """The TensorBoard tag of a loss of ``update``'s output (SSL: train/ssl/<name>/...)."""
        if key == "loss":
            return "train/bc_loss"
        if key.startswith("ssl_") and self.ssl is not None:
            return f"train/ssl/{self.ssl.name}/{key.removeprefix('ssl_')}"
        return f"train/{key}"

    @torch.no_grad()
    def act(self, observations: np.ndarray, deterministic: bool = True) -> np.ndarray:
        """The policy's action (the same for stochastic and deterministic episodes), clipped
        to the action space."""
        return np.clip(super().act(observations), self.action_low, self.action_high)

    @torch.no_grad()
    def heldout_losses(self) -> list[float]:
        """The action loss (MSE) on every task's held-out rows, each task in the strategy's
        acting context (nan where a task has none)."""
        losses = []
        for task, data in enumerate(self.heldout_sets):
            if data is None:
                losses.append(math.nan)
                continue
            with self.strategy.acting(task):
                losses.append(float(F.mse_loss(self.net(data.observations)[0], data.actions)))
        return losses

    # -- checkpoints ----------------------------------------------------------------------
    def save(self, path: Any) -> None:
        """Weights, optimizer state, counters and the data generators' states."""
        torch.save(
            {
                "init": self.init_kwargs,
                "net": self.net.state_dict(),
                "optimizer": self.optimizer.state_dict(),
                "ssl": self.ssl.state_dict() if self.ssl is not None else None,
                "ssl_state": self._ssl_state(),
                "counters": (self.num_timesteps, self.current_task, self._task_start_step),
                "n_updates": self.n_updates,
                "generators": [d.generator.get_state() for d in self.train_sets],
            },
            path,
        )

    def _ssl_state(self) -> dict[str, Any] | None:
        """What resumes the SSL exactly beside its weights: random states and the memory."""
        if self.ssl_wiring is None:
            return None
        return {"random": self.ssl_wiring.random_states(), "memory": self.ssl_memory}

    @classmethod
    def load(cls, path: Any, device: str = "auto", prepare: Callable | None = None) -> BCAgent:
        state = torch.load(path, map_location="cpu", weights_only=False)
        learner = cls(device=device, **state["init"])
        if prepare is not None:  # a strategy that reshapes the network (progressive columns)
            prepare(learner)
        learner.net.load_state_dict(state["net"])
        if learner.ssl is not None and state["ssl"] is not None:
            learner.ssl.load_state_dict(state["ssl"])
        if learner.ssl_wiring is not None and state.get("ssl_state") is not None:
            learner.ssl_wiring.set_random_states(state["ssl_state"]["random"])
            learner.ssl_memory = learner.ssl_wiring.memory = state["ssl_state"]["memory"]
        learner.n_updates = state.get("n_updates", learner.num_timesteps)
        learner.reset_optimizers()
        learner.optimizer.load_state_dict(state["optimizer"])
        learner.num_timesteps, learner.current_task, learner._task_start_step = state["counters"]
        for data, generator in zip(learner.train_sets, state["generators"], strict=True):
            data.generator.set_state(generator)
        return learner
