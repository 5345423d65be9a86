"""A continual SAC learner in one file of plain PyTorch, in the style of CleanRL's sac_continuous.

It follows robotcl's learner protocol (robotcl.learner.Learner) and uses no stable-baselines3:
its own replay buffer, networks, update and checkpoint format. Installed, it registers under the
entry point ``robotcl.agents: cleanrl_sac`` and runs with every strategy its capabilities serve:

    pip install -e examples/cleanrl_sac
    robotcl run quick agent.name=cleanrl_sac "strategy=[replay,ewc]"

The observation ends with the task one-hot (robotcl's suites append it); the trunks see the
state part only and every output layer has one block per task. Soft Actor-Critic: Haarnoja et
al. 2018, with the entropy coefficient tuned per task.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import gymnasium as gym
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from robotcl.strategies.base import Strategy, TaskData

LOG_STD_MIN, LOG_STD_MAX = -20.0, 2.0


class Batch(NamedTuple):
    observations: torch.Tensor
    actions: torch.Tensor
    next_observations: torch.Tensor
    dones: torch.Tensor
    rewards: torch.Tensor


class ReplayBuffer:
    """Transitions of one task in NumPy arrays; ``sample`` and ``rows`` give :class:`Batch`es."""

    def __init__(self, capacity: int, obs_dim: int, action_dim: int, device: torch.device):
        self.capacity, self.device, self.pos, self.full = capacity, device, 0, False
        self.obs = np.zeros((capacity, obs_dim), np.float32)
        self.next_obs = np.zeros((capacity, obs_dim), np.float32)
        self.actions = np.zeros((capacity, action_dim), np.float32)
        self.rewards = np.zeros((capacity, 1), np.float32)
        self.dones = np.zeros((capacity, 1), np.float32)

    def add(self, obs: Any, next_obs: Any, action: Any, reward: float, done: bool) -> None:
        i = self.pos
        self.obs[i], self.next_obs[i], self.actions[i] = obs, next_obs, action
        self.rewards[i], self.dones[i] = reward, done
        self.pos = (i + 1) % self.capacity
        self.full = self.full or self.pos == 0

    def size(self) -> int:
        return self.capacity if self.full else self.pos

    def reset(self) -> None:
        self.pos, self.full = 0, False

    def rows(self, index: Any) -> Batch:
        i = np.asarray(index.cpu() if isinstance(index, torch.Tensor) else index)
        arrays = (self.obs, self.actions, self.next_obs, self.dones, self.rewards)
        return Batch(*(torch.as_tensor(a[i], device=self.device) for a in arrays))

    def sample(self, n: int, env: Any = None) -> Batch:
        return self.rows(np.random.randint(0, self.size(), size=n))


def mlp(in_dim: int, widths: list[int]) -> nn.Sequential:
    layers: list[nn.Module] = []
    for width in widths:
        layers += [nn.Linear(in_dim, width), nn.ReLU()]
        in_dim = width
    return nn.Sequential(*layers)


class Heads(nn.Linear):
    """One output block of ``k`` per task; each row gets its task's block."""

    def __init__(self, in_dim: int, k: int, num_tasks: int) -> None:
        super().__init__(in_dim, k * num_tasks)
        self.k, self.num_tasks = k, num_tasks

    def forward(self, x: torch.Tensor, tasks: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        out = super().forward(x).view(-1, self.num_tasks, self.k)
        return out[torch.arange(len(out), device=out.device), tasks]


class Actor(nn.Module):
    """obs -> (mean, log-std) of a tanh-squashed Gaussian (also EWC's policy distribution)."""

    def __init__(self, state_dim: int, action_dim: int, num_tasks: int, widths: list[int]):
        super().__init__()
        self.num_tasks = num_tasks
        self.trunk = mlp(state_dim, widths)
        self.mean = Heads(widths[-1], action_dim, num_tasks)
        self.log_std = Heads(widths[-1], action_dim, num_tasks)

    def forward(self, obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        tasks = obs[:, -self.num_tasks :].argmax(1)
        h = self.trunk(obs[:, : -self.num_tasks])
        return self.mean(h, tasks), self.log_std(h, tasks).clamp(LOG_STD_MIN, LOG_STD_MAX)

    def sample(self, obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mean, log_std = self(obs)
        normal = torch.distributions.Normal(mean, log_std.exp())
        u = normal.rsample()
        action = torch.tanh(u)
        log_prob = normal.log_prob(u) - torch.log(1 - action.pow(2) + 1e-6)
        return action, log_prob.sum(1, keepdim=True)


class Critic(nn.Module):
    """Twin Q networks over (state, action), one output per task."""

    def __init__(self, state_dim: int, action_dim: int, num_tasks: int, widths: list[int]):
        super().__init__()
        self.num_tasks = num_tasks
        self.trunks = nn.ModuleList(mlp(state_dim + action_dim, widths) for _ in range(2))
        self.heads = nn.ModuleList(Heads(widths[-1], 1, num_tasks) for _ in range(2))

    def forward(self, obs: torch.Tensor, action: torch.Tensor) -> list[torch.Tensor]:
        tasks = obs[:, -self.num_tasks :].argmax(1)
        x = torch.cat([obs[:, : -self.num_tasks], action], 1)
        return [head(trunk(x), tasks) for trunk, head in zip(self.trunks, self.heads, strict=True)]


class CleanSAC:
    """Multi-head SAC for a task sequence, calling the strategy hooks in its update."""

    capabilities = frozenset({"replay_data", "reference_loss", "policy_distribution", "update"})

    def __init__(
        self,
        env: gym.Env | None = None,
        num_tasks: int = 1,
        learning_rate: float = 1e-3,
        buffer_size: int = 1_000_000,
        batch_size: int = 128,
        tau: float = 0.005,
        gamma: float = 0.99,
        random_steps: int = 10_000,
        update_after: int = 1_000,
        net_arch: list[int] | tuple[int, ...] = (256, 256),
        task_names: list[str] | None = None,
        seed: int | None = None,
        device: str = "auto",
        spaces: tuple[gym.Space, gym.Space] | None = None,
    ) -> None:
        self.observation_space, self.action_space = spaces or (
            env.observation_space,  # type: ignore[union-attr]
            env.action_space,  # type: ignore[union-attr]
        )
        self.init = dict(
            num_tasks=num_tasks,
            learning_rate=learning_rate,
            buffer_size=buffer_size,
            batch_size=batch_size,
            tau=tau,
            gamma=gamma,
            random_steps=random_steps,
            update_after=update_after,
            net_arch=list(net_arch),
            task_names=task_names,
            seed=seed,
            spaces=(self.observation_space, self.action_space),
        )
        if device == "auto":
            device = "cuda" if torch.cuda.is_available() else "cpu"
        self.device = torch.device(device)
        if seed is not None:
            torch.manual_seed(seed)
            np.random.seed(seed)
            self.action_space.seed(seed)
        self.num_tasks, self.batch_size, self.tau, self.gamma = num_tasks, batch_size, tau, gamma
        self.learning_rate, self.random_steps, self.update_after = (
            learning_rate,
            random_steps,
            update_after,
        )
        obs_dim = int(self.observation_space.shape[0])
        action_dim = int(self.action_space.shape[0])
        state_dim, widths = obs_dim - num_tasks, list(net_arch)
        self.actor = Actor(state_dim, action_dim, num_tasks, widths).to(self.device)
        self.critic = Critic(state_dim, action_dim, num_tasks, widths).to(self.device)
        self.critic_target = Critic(state_dim, action_dim, num_tasks, widths).to(self.device)
        self.critic_target.load_state_dict(self.critic.state_dict())
        self.log_alpha = torch.zeros(num_tasks, device=self.device, requires_grad=True)
        self.target_entropy = -float(action_dim)
        self.buffer = ReplayBuffer(buffer_size, obs_dim, action_dim, self.device)
        self.strategy, self.logger = Strategy(), None
        self.num_timesteps, self.current_task, self._task_start = 0, 0, 0
        self.env: gym.Env | None = None
        self.reset_optimizers()

    # -- the task loop --------------------------------------------------------------------
    @staticmethod
    def wrap_env(env: gym.Env, seed: int | None = None) -> gym.Env:
        return env  # a plain gymnasium env

    def attach(self, strategy: Strategy) -> None:
        self.strategy = strategy

    def set_logger(self, logger: Any) -> None:
        self.logger = logger

    def start_task(self, task_id: int, env: gym.Env, seed: int | None = None) -> None:
        """A new env, an empty buffer and fresh optimizers (Continual World's resets)."""
        self.env, self.current_task, self._task_start = env, task_id, self.num_timesteps
        self._obs, _ = env.reset(seed=seed)
        self.buffer.reset()
        self.reset_optimizers()

    @property
    def task_steps(self) -> int:
        return self.num_timesteps - self._task_start

    def learn_task(self, steps: int, on_step: Callable[[], None] | None = None) -> None:
        for _ in range(steps):
            if self.task_steps < self.random_steps:
                action = self.action_space.sample()
            else:
                action = self.act(self._obs[None], deterministic=False)[0]
            next_obs, reward, terminated, truncated, _ = self.env.step(action)  # type: ignore[union-attr]
            self.buffer.add(self._obs, next_obs, action, float(reward), terminated)
            self._obs = self.env.reset()[0] if terminated or truncated else next_obs  # type: ignore[union-attr]
            self.num_timesteps += 1
            if self.task_steps >= self.update_after and self.buffer.size() >= self.batch_size:
                out = self.update(self.buffer.sample(self.batch_size))
                if self.logger is not None and self.num_timesteps % 200 == 0:
                    for key in ("critic_loss", "actor_loss"):
                        self.logger.record(f"train/{key}", out[key].item())
                    self.logger.dump(self.num_timesteps)
            if on_step is not None:
                on_step()

    def task_data(self) -> TaskData:
        return TaskData(self.current_task, buffer=self.buffer, env=self.env)

    @torch.no_grad()
    def act(self, observations: np.ndarray, deterministic: bool) -> np.ndarray:
        obs = torch.as_tensor(observations, dtype=torch.float32, device=self.device)
        if deterministic:
            return torch.tanh(self.actor(obs)[0]).cpu().numpy()
        return self.actor.sample(obs)[0].cpu().numpy()

    # -- what strategies use --------------------------------------------------------------
    def parameter_groups(self) -> dict[str, list[nn.Parameter]]:
        a, c = self.actor, self.critic
        return {
            "actor_trunk": list(a.trunk.parameters()),
            "actor_heads": [*a.mean.parameters(), *a.log_std.parameters()],
            "critic_trunk": list(c.trunks.parameters()),
            "critic_heads": list(c.heads.parameters()),
        }

    def policy_distribution(self) -> nn.Module:
        return self.actor

    def reset_optimizers(self) -> None:
        lr = self.learning_rate
        self.actor_opt = torch.optim.Adam(
            [p for p in self.actor.parameters() if p.requires_grad], lr
        )
        self.critic_opt = torch.optim.Adam(
            [p for p in self.critic.parameters() if p.requires_grad], lr
        )
        self.alpha_opt = torch.optim.Adam([self.log_alpha], lr)

    # -- the update -----------------------------------------------------------------------
    def losses(self, batch: Batch) -> dict[str, torch.Tensor]:
        tasks = batch.observations[:, -self.num_tasks :].argmax(1)
        alpha = self.log_alpha.detach()[tasks].exp().unsqueeze(1)
        with torch.no_grad():
            next_action, next_log_prob = self.actor.sample(batch.next_observations)
            next_q = torch.min(*self.critic_target(batch.next_observations, next_action))
            target = batch.rewards + (1 - batch.dones) * self.gamma * (
                next_q - alpha * next_log_prob
            )
        q = self.critic(batch.observations, batch.actions)
        critic_loss = sum(F.mse_loss(q_i, target) for q_i in q)
        action, log_prob = self.actor.sample(batch.observations)
        self.critic.requires_grad_(False)  # the actor's loss moves the actor only
        q_pi = torch.min(*self.critic(batch.observations, action))
        self.critic.requires_grad_(True)
        actor_loss = (alpha * log_prob - q_pi).mean()
        return {
            "critic_loss": critic_loss,
            "actor_loss": actor_loss,
            "log_prob": log_prob,
            "tasks": tasks,
        }

    def reference_loss(self, batch: Batch) -> torch.Tensor:
        out = self.losses(batch)
        return out["critic_loss"] + out["actor_loss"]

    def update(self, batch: Batch) -> dict[str, torch.Tensor]:
        """One step through the hooks: sample -> loss + penalty -> backward -> adjust -> step."""
        task = self.current_task
        batch = self.strategy.sample(batch, task)
        out = self.losses(batch)
        alpha_loss = -(
            self.log_alpha[out["tasks"]]
            * (out["log_prob"].squeeze(1) + self.target_entropy).detach()
        ).mean()
        self.alpha_opt.zero_grad()
        alpha_loss.backward()
        self.alpha_opt.step()
        loss = out["critic_loss"] + out["actor_loss"]
        penalty = self.strategy.penalty(task)
        if penalty is not None:
            loss = loss + penalty
        self.actor_opt.zero_grad()
        self.critic_opt.zero_grad()
        loss.backward()
        self.strategy.adjust_gradients(task)
        self.actor_opt.step()
        self.critic_opt.step()
        self.strategy.after_step()
        with torch.no_grad():
            for t, s in zip(self.critic_target.parameters(), self.critic.parameters(), strict=True):
                t.lerp_(s, self.tau)
        return out

    # -- checkpoints ----------------------------------------------------------------------
    def save(self, path: Any) -> None:
        torch.save(
            {
                "init": self.init,
                "nets": {
                    k: getattr(self, k).state_dict() for k in ("actor", "critic", "critic_target")
                },
                "opts": {
                    k: getattr(self, k).state_dict()
                    for k in ("actor_opt", "critic_opt", "alpha_opt")
                },
                "log_alpha": self.log_alpha.detach().cpu(),
                "counters": (self.num_timesteps, self.current_task, self._task_start),
            },
            path,
        )

    @classmethod
    def load(cls, path: Any, device: str = "auto", prepare: Callable | None = None) -> CleanSAC:
        data = torch.load(path, weights_only=False, map_location="cpu")
        learner = cls(**data["init"], device=device)
        if prepare is not None:
            prepare(learner)
        for key, state in data["nets"].items():
            getattr(learner, key).load_state_dict(state)
        with torch.no_grad():
            learner.log_alpha.copy_(data["log_alpha"])
        learner.reset_optimizers()
        for key, state in data["opts"].items():
            getattr(learner, key).load_state_dict(state)
        learner.num_timesteps, learner.current_task, learner._task_start = data["counters"]
        return learner
