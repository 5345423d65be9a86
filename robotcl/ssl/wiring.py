"""How a learner's encoder gets its contrastive objective: one piece of code for every learner
with an encoder (the off-policy SB3 learners, BCLearner).

:meth:`SSLWiring.build` looks the objective up in the registry, refuses one that needs inputs the
learner cannot give, and builds it with its settings (``agent.encoder.<objective>.*``). Per
update, :meth:`~SSLWiring.term` gives the weighted loss every ``ssl_every`` updates, the batch's
last ``memory_ratio`` share drawn from earlier tasks' observations, and :meth:`~SSLWiring.step`
steps the objective's optimizer (where the learner asked for one) and its momentum encoders and
queues; :meth:`~SSLWiring.remember` keeps a finished task's observations for that memory.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import torch
from torch import nn

from robotcl.registry import OBJECTIVES
from robotcl.ssl.objective import INPUTS, Augment, SSLBatch, SSLObjective


def encoder_settings(settings: Mapping[str, Any]) -> dict[str, Any]:
    """``settings`` (the ``agent.encoder`` keys, possibly partial or in an older form) with
    every key, defaults and aliases as :class:`robotcl.config.EncoderConfig` resolves them."""
    from robotcl.config import EncoderConfig

    return EncoderConfig.model_validate(dict(settings)).model_dump()


class SSLWiring:
    """A learner's contrastive objective with what trains it beside the learner's own losses:
    its generator for memory draws, its optional optimizer and the SSL memory."""

    def __init__(self, objective: SSLObjective, settings: dict[str, Any], seed: int, memory: Any):
        self.objective = objective
        self.settings = settings
        self.memory = memory
        #: draws of the SSL memory (rows kept at task ends, rows mixed into batches)
        self.generator = torch.Generator().manual_seed(seed + 1)
        self.optimizer: torch.optim.Optimizer | None = None

    @classmethod
    def build(
        cls,
        settings: Mapping[str, Any] | None,
        encoder: nn.Module,
        augment: Augment,
        seed: int,
        device: torch.device | str,
        provides: frozenset[str],
        memory: Any = None,
        proprio_dim: int | None = None,
        learner: str = "this learner",
        target_encoder: nn.Module | None = None,
    ) -> SSLWiring | None:
        """The objective ``settings["objective"]`` on ``encoder`` (None for ``none``).
        ``provides``: the :data:`~robotcl.ssl.objective.INPUTS` the learner can give;
        ``memory``: an ``ObservationMemory`` for ``memory_ratio`` (agents/ssl_memory.py);
        ``proprio_dim``: the width of the state beside the frames, for objectives that need it;
        ``target_encoder``: the encoder of the learner's target critic (CURL's key encoder)."""
        if not settings or settings.get("objective", "none") == "none":
            return None
        full = encoder_settings(settings)
        name = full["objective"]
        objective_cls = OBJECTIVES.get(name)
        extra: dict[str, Any] = dict(full.get(name) or {})
        missing = sorted(objective_cls.needs_for(extra) - provides)
        if missing:
            raise ValueError(
                f"{learner} cannot give {'; '.join(INPUTS.get(m, m) for m in missing)}, which "
                f"the {name} objective needs"
            )
        if "proprio" in objective_cls.needs:
            extra["proprio_dim"] = proprio_dim
        generator = torch.Generator().manual_seed(seed)  # the objective's augmentations
        objective = objective_cls(encoder, augment, generator, **extra)
        if target_encoder is not None:
            objective.use_target_encoder(target_encoder)
        objective.to(device)
        return cls(objective, full, seed, memory)

    # -- parameters -----------------------------------------------------------------------
    def parameters(self, encoder: nn.Module | None = None) -> list[nn.Parameter]:
        """The objective's own trainable parameters (heads, W), and ``encoder``'s where the
        objective alone trains it."""
        params = self.objective.own_parameters()
        if encoder is not None:
            params += [p for p in encoder.parameters() if p.requires_grad]
        return params

    def reset_optimizer(self, learning_rate: float, encoder: nn.Module | None = None) -> None:
        """A fresh Adam over :meth:`parameters` for learners that step the objective apart from
        their own optimizers (none when there is nothing to step: MoCo's heads are none)."""
        params = self.parameters(encoder)
        self.optimizer = torch.optim.Adam(params, lr=learning_rate) if params else None

    @property
    def joint(self) -> bool:
        """Whether the loss is added to the learner's own (``ssl_update=joint``) rather than
        stepped on its own after it (``separate``, CURL's)."""
        return self.settings["ssl_update"] == "joint"

    # -- one update -----------------------------------------------------------------------
    def active(self, update: int) -> bool:
        """Whether update number ``update`` (from 0) computes the SSL loss: every ``ssl_every``."""
        return update % self.settings["ssl_every"] == 0

    def term(
        self,
        update: int,
        task: int,
        obs: torch.Tensor,
        later: torch.Tensor | None,
        out: dict[str, torch.Tensor],
        proprio: Callable[[torch.Tensor], torch.Tensor] | None = None,
    ) -> torch.Tensor | None:
        """The weighted SSL loss of update ``update`` of task ``task`` (None on skipped updates),
        its loss and accuracy put in ``out`` (``ssl_loss``, ``ssl_accuracy``); the last
        ``memory_ratio`` share of the batch drawn from earlier tasks' observations. ``proprio``
        maps observations to the state beside the frames. Zeroes the objective's optimizer's
        gradients: call before the backward pass."""
        if not self.active(update):
            return None
        n_memory = round(self.settings["memory_ratio"] * len(obs))
        past = (
            self.memory.sample(n_memory, self.generator, task) if self.memory is not None else None
        )
        if n_memory and past is not None:
            obs = torch.cat([obs[: len(obs) - n_memory], past[0].to(obs.device)])
            if later is not None:
                later = torch.cat([later[: len(later) - n_memory], past[1].to(later.device)])
        if self.optimizer is not None:
            self.optimizer.zero_grad()
        batch = SSLBatch(obs=obs, later=later, proprio=proprio(obs) if proprio else None)
        result = self.objective(batch)
        out["ssl_loss"], out["ssl_accuracy"] = result.loss, result.accuracy
        return self.settings["ssl_weight"] * result.loss

    def step(self, update: int) -> None:
        """After the learner's optimizer steps of update ``update``: the objective's optimizer
        and its momentum encoders and queues, on the updates that computed the loss."""
        if self.active(update):
            if self.optimizer is not None:
                self.optimizer.step()
            self.objective.after_update()

    # -- the memory of earlier tasks ------------------------------------------------------
    def remember(
        self, task: int, size: int, rows: Callable[[torch.Tensor], tuple[torch.Tensor, ...]]
    ) -> None:
        """At task ``task``'s end: keep ``memory_per_task`` of its ``size`` rows, drawn without
        replacement; ``rows(indices)`` gives their (observations, next observations)."""
        if self.memory is None or self.settings["memory_ratio"] == 0 or size == 0:
            return
        pick = torch.randperm(size, generator=self.generator)[: self.settings["memory_per_task"]]
        # a chunk at a time: pixel stacks are rebuilt as float, compacted as they come
        self.memory.add(task, (rows(chunk) for chunk in pick.split(1024)))

    # -- checkpoints ----------------------------------------------------------------------
    def random_states(self) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(memory draws, augmentations) generator states, for exact resumes."""
        augment = self.objective.generator
        return self.generator.get_state(), augment.get_state() if augment is not None else None

    def set_random_states(self, states: tuple[torch.Tensor, torch.Tensor | None]) -> None:
        self.generator.set_state(states[0])
        if states[1] is not None and self.objective.generator is not None:
            self.objective.generator.set_state(states[1])
