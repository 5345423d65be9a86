"""BCLearner: supervised (behaviour-cloning) lifelong learner with the same hooks as ContinualSAC.

The supervised side of the CoRL 2021 gap evaluation: a multi-head policy regresses expert actions
from observations, task after task, with the same strategies attached. It also serves as the small
fast problem on which the strategy tests show each mechanism.
"""

from __future__ import annotations

from typing import Any, ClassVar, NamedTuple

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from robotcl.agents.networks import ACTIVATIONS, TaskHeads, make_trunk, task_index
from robotcl.agents.ssl_memory import ObservationMemory
from robotcl.ssl.augment import state_augment
from robotcl.ssl.wiring import SSLWiring
from robotcl.strategies.base import Strategy, TaskData


class SupervisedBatch(NamedTuple):
    """Observations (with the trailing one-hot) and target actions."""

    observations: torch.Tensor
    actions: torch.Tensor


class TransitionDataset:
    """An in-memory dataset with the replay buffer's ``size()`` / ``sample(n)`` interface."""

    def __init__(self, observations: Any, actions: Any, device: str | torch.device = "cpu"):
        self.observations = torch.as_tensor(np.asarray(observations), dtype=torch.float32).to(
            device
        )
        self.actions = torch.as_tensor(np.asarray(actions), dtype=torch.float32).to(device)
        if len(self.observations) != len(self.actions):
            raise ValueError("observations and actions differ in length")
        self.generator = torch.Generator(device="cpu").manual_seed(0)

    def size(self) -> int:
        return len(self.observations)

    def sample(self, batch_size: int, env: Any = None) -> SupervisedBatch:
        idx = torch.randint(0, self.size(), (batch_size,), generator=self.generator)
        idx = idx.to(self.observations.device)
        return SupervisedBatch(self.observations[idx], self.actions[idx])


class MultiHeadPolicy(nn.Module):
    """Shared trunk on the state (one-hot stripped) and one output head per task."""

    def __init__(
        self,
        obs_dim: int,
        action_dim: int,
        num_tasks: int,
        net_arch: list[int],
        activation: str = "relu",
        layer_norm: bool = False,
        encoder: nn.Module | None = None,
    ) -> None:
        super().__init__()
        self.num_tasks = num_tasks
        self.encoder = encoder
        in_dim = encoder.feature_dim if encoder is not None else obs_dim - num_tasks
        self.latent_pi = make_trunk(in_dim, net_arch, ACTIVATIONS[activation], layer_norm)
        width = net_arch[-1] if net_arch else in_dim
        self.mu = TaskHeads(width, action_dim, num_tasks)

    def features(self, obs: torch.Tensor) -> torch.Tensor:
        """What the trunk reads: the encoder's output, or the state (one-hot stripped)."""
        return self.encoder(obs) if self.encoder is not None else obs[..., : -self.num_tasks]

    def forward(self, obs: torch.Tensor) -> tuple[torch.Tensor, None]:
        latent = self.latent_pi(self.features(obs))
        return self.mu(latent, task_index(obs, self.num_tasks)), None


class BCLearner:
    """Multi-head regression of actions (MSE), updated through the strategy hooks.

    ``start_task(i, dataset)`` takes the task's :class:`TransitionDataset` (expert data).
    """

    capabilities = frozenset(
        {"replay_data", "reference_loss", "policy_distribution", "update", "trunks", "features"}
    )
    #: what a contrastive objective may need beyond observations that this learner gives: none
    #: (a dataset of (observation, action) rows has no next observations, no second modality)
    ssl_inputs: ClassVar[frozenset[str]] = frozenset()

    def __init__(
        self,
        obs_dim: int,
        action_dim: int,
        num_tasks: int,
        net_arch: list[int] | tuple[int, ...] = (256, 256),
        activation: str = "relu",
        layer_norm: bool = False,
        learning_rate: float = 1e-3,
        batch_size: int = 128,
        reset_optimizer: bool = True,
        seed: int = 0,
        device: str = "cpu",
        encoder: dict[str, Any] | None = None,
    ) -> None:
        torch.manual_seed(seed)
        self.device = torch.device(device)
        self.num_tasks, self.batch_size, self.learning_rate = num_tasks, batch_size, learning_rate
        self.reset_optimizer = reset_optimizer
        settings = encoder if encoder and encoder.get("type", "none") != "none" else None
        self.encoder_settings = settings
        module = None
        if settings:
            from gymnasium import spaces

            from robotcl.agents.networks import EncoderExtractor

            box = spaces.Box(-np.inf, np.inf, (obs_dim,), np.float32)
            module = EncoderExtractor(box, num_tasks, settings["feature_dim"], settings["hidden"])
        self.net = MultiHeadPolicy(
            obs_dim, action_dim, num_tasks, list(net_arch), activation, layer_norm, module
        ).to(self.device)
        #: observations of finished tasks for the SSL batch (``memory_ratio``)
        self.ssl_memory = ObservationMemory()
        self.ssl_wiring = SSLWiring.build(
            settings,
            module,
            state_augment,
            seed=seed,
            device=self.device,
            provides=self.ssl_inputs,
            memory=self.ssl_memory,
            learner=type(self).__name__,
        )
        self.n_updates = 0  # gradient steps so far (every ``ssl_every``-th computes the SSL loss)
        self.reset_optimizers()
        self.strategy: Strategy = Strategy()
        self.current_task = 0
        self.num_timesteps = 0
        self._task_start_step = 0
        self.data: TransitionDataset | None = None

    # -- the learner protocol -------------------------------------------------------------
    def attach(self, strategy: Strategy) -> None:
        self.strategy = strategy

    def start_task(self, task_id: int, data: TransitionDataset, seed: int | None = None) -> None:
        self.current_task, self.data = task_id, data
        self._task_start_step = self.num_timesteps
        if self.reset_optimizer:
            self.reset_optimizers()

    @property
    def ssl(self) -> Any:
        """The contrastive objective (robotcl.ssl), or None."""
        return self.ssl_wiring.objective if self.ssl_wiring is not None else None

    def reset_optimizers(self) -> None:
        """One Adam over the network and the objective's own heads (W, projections): the BC
        loss always trains the encoder, so the objective needs no optimizer of its own."""
        trainable = [p for p in self.net.parameters() if p.requires_grad]
        if self.ssl_wiring is not None:
            trainable += self.ssl_wiring.parameters()
        self.optimizer = torch.optim.Adam(trainable, lr=self.learning_rate)

    def learn_task(self, steps: int, on_step: Any = None) -> None:
        """``steps`` gradient steps on the current task's data, ``on_step()`` after each."""
        self.net.train()
        for _ in range(steps):
            out = self.update(self.data.sample(self.batch_size))
            self.num_timesteps += 1
            self.after_update(out)
            if on_step is not None:
                on_step()
        self.net.eval()

    def after_update(self, out: dict[str, torch.Tensor]) -> None:
        """After each of ``learn_task``'s updates, with its losses (logging, health checks)."""

    def end_task(self) -> None:
        """At the task's end: keep observations for the SSL memory of earlier tasks (a row's
        "next observation" is itself: the dataset has no trajectories to follow)."""
        if self.ssl_wiring is None or self.data is None:
            return
        observations = self.data.observations

        def rows(index: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            picked = observations[index.to(observations.device)]
            return picked, picked

        self.ssl_wiring.remember(self.current_task, self.data.size(), rows)

    def task_data(self) -> TaskData:
        return TaskData(self.current_task, buffer=self.data)

    @property
    def task_steps(self) -> int:
        return self.num_timesteps - self._task_start_step

    def policy_distribution(self) -> nn.Module:
        """obs -> (mean action, log-std or None): what EWC and MAS differentiate."""
        return self.net

    def parameter_groups(self) -> dict[str, list[nn.Parameter]]:
        groups = {
            "actor_trunk": list(self.net.latent_pi.parameters()),
            "actor_heads": list(self.net.mu.parameters()),
        }
        if self.net.encoder is not None:
            groups["encoder"] = list(self.net.encoder.parameters())
        return groups

    def features(self, obs: torch.Tensor) -> torch.Tensor:
        """The representation: the encoder's output where there is one, else the trunk's."""
        if self.net.encoder is not None:
            return self.net.features(obs)
        return self.net.latent_pi(obs[..., : -self.num_tasks])

    def trunk_slots(self, group: str) -> list[tuple[str, tuple[nn.Module, Any], Any]]:
        """Where the trunk sits (progressive columns replace it)."""
        if group != "actor_trunk":
            raise KeyError(group)
        return [("actor", (self.net, "latent_pi"), None)]

    def optimizer_holders(self) -> list[tuple[Any, nn.Module]]:
        return [(self, self.net)]

    def reference_loss(self, batch: SupervisedBatch) -> torch.Tensor:
        return F.mse_loss(self.net(batch.observations)[0], batch.actions)

    def update(self, batch: SupervisedBatch) -> dict[str, torch.Tensor]:
        """One gradient step through the hooks, in ContinualSAC's order."""
        task = self.current_task
        batch = self.strategy.sample(batch, task)
        loss = self.reference_loss(batch)
        out = {"loss": loss}
        penalty = self.strategy.penalty(task)
        if penalty is not None:
            loss = loss + penalty
            out["penalty"] = penalty
        if self.ssl_wiring is not None:  # the encoder also learns by contrast
            ssl = self.ssl_wiring.term(self.n_updates, task, batch.observations, None, out)
            if ssl is not None:
                loss = loss + ssl
        self.optimizer.zero_grad()
        loss.backward()
        self.strategy.adjust_gradients(task)
        self.optimizer.step()
        if self.ssl_wiring is not None:
            self.ssl_wiring.step(self.n_updates)
        self.strategy.after_step()
        self.n_updates += 1
        return out

    @torch.no_grad()
    def act(self, observations: np.ndarray, deterministic: bool = True) -> np.ndarray:
        obs = torch.as_tensor(observations, dtype=torch.float32, device=self.device)
        return self.net(obs)[0].cpu().numpy()
