"""Shared base of the parameter regularisers (L2, EWC, MAS) and their per-sample derivatives.

At each task's end a regulariser anchors the selected parameters (a copy, theta*) and adds that
task's importance per parameter (w) to what earlier tasks left. While later tasks train, the loss
gets Continual World's penalty (Wolczyk et al. 2021, ``methods/regularization.py``):

    penalty = coef * sum_groups sum_params w * (theta - theta*)^2

without a factor 1/2 (Kirkpatrick et al. 2017 write lambda/2; Continual World's ``cl_reg_coef``
multiplies the plain sum, so their published coefficients apply here unchanged). There is one
anchor, the parameters at the end of the latest task, and the importances of all finished tasks
are summed (Continual World's ``_merge_weights``); online EWC decays the old sum instead (Schwarz
et al. 2018).

The default groups are the actor's trunk: Continual World regularises the actor only
(``regularize_critic=False``) and, with multi-head networks, only its shared ``common_variables``
(the heads of a task are trained by that task alone; anchoring the not-yet-trained heads of later
tasks, as L2's uniform importance would, keeps them from learning).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from pydantic import Field
from torch import nn
from torch.func import functional_call, grad, jacrev, vmap

from robotcl.errors import UserInputError
from robotcl.strategies.base import MemoryUsage, Strategy, StrategySettings, TaskData

# Continual World: actor only (regularize_critic=False), shared trunk only when multi-head.
REGULARIZED_GROUPS = ["actor_trunk"]

# Memory for one chunk of per-sample Jacobians (float32); the batch is split to stay under it.
JACOBIAN_BUDGET_BYTES = 256 * 2**20


class RegularizerSettings(StrategySettings):
    """Settings every parameter regulariser has."""

    coef: float = Field(1.0, ge=0, description="penalty strength (lambda)")
    groups: list[str] = Field(
        default_factory=lambda: list(REGULARIZED_GROUPS),
        min_length=1,
        description="parameter groups anchored; Continual World: the actor's shared trunk",
    )


class ParameterRegularizer(Strategy):
    """Anchor + importance-weighted quadratic penalty; subclasses define :meth:`task_importance`.

    State: ``anchors`` (theta* per selected parameter), ``importance`` (w, summed over finished
    tasks) and ``tasks`` (the finished tasks' ids). The penalty is ``None`` until a task has ended.
    """

    Settings = RegularizerSettings
    settings: RegularizerSettings

    def __init__(self, settings: StrategySettings | None = None) -> None:
        super().__init__(settings)
        self.params: list[nn.Parameter] = []
        self.anchors: list[torch.Tensor] | None = None
        self.importance: list[torch.Tensor] | None = None
        self.tasks: list[int] = []

    # -- hooks ----------------------------------------------------------------------------
    def setup(self, learner: Any, suite: Any) -> None:
        super().setup(learner, suite)
        self.params = self.selected_parameters(self.settings.groups)
        if "policy_distribution" in self.needs:
            self.policy_parameters()  # refuse other groups now, not after the first task
        self._place()

    def on_task_end(self, task_id: int, data: TaskData) -> None:
        new = [w.detach() for w in self.task_importance(data)]
        if self.importance is None:
            self.importance = new
        else:
            self.importance = [
                self.merge(old, w) for old, w in zip(self.importance, new, strict=True)
            ]
        self.anchors = [p.detach().clone() for p in self.params]
        self.tasks.append(task_id)

    def penalty(self, task_id: int) -> torch.Tensor | None:
        if self.anchors is None or self.importance is None or not self.params:
            return None
        total = sum(
            (w * (p - a).pow(2)).sum()
            for p, a, w in zip(self.params, self.anchors, self.importance, strict=True)
        )
        return self.settings.coef * total

    # -- what subclasses define -----------------------------------------------------------
    def task_importance(self, data: TaskData) -> list[torch.Tensor]:
        """Importance of each selected parameter for the task that just ended (same shapes)."""
        raise NotImplementedError

    def merge(self, old: torch.Tensor, new: torch.Tensor) -> torch.Tensor:
        """Importance after another task: the sum (Continual World's ``_merge_weights``)."""
        return old + new

    # -- helpers --------------------------------------------------------------------------
    def observations(self, data: TaskData, batches: int, batch_size: int) -> torch.Tensor:
        """``batches`` x ``batch_size`` observations sampled from the finished task's buffer."""
        buffer = data.buffer
        if buffer is None or buffer.size() == 0:
            raise RuntimeError(f"{self.name}: task {data.task_id} left no data to weigh parameters")
        return torch.cat([buffer.sample(batch_size).observations for _ in range(batches)])

    def policy_parameters(self) -> tuple[nn.Module, dict[str, torch.Tensor]]:
        """The learner's policy and the selected parameters by their names in it (detached)."""
        policy = self.learner.policy_distribution()
        names = {id(p): n for n, p in policy.named_parameters()}
        outside = [
            g for g in self.settings.groups if any(id(p) not in names for p in self._group(g))
        ]
        if outside:
            raise UserInputError(
                f"{self.name}.groups",
                f"{outside} are not parameters of the policy, whose outputs weigh importance",
                "choose actor groups (actor_trunk, actor_heads)",
            )
        return policy, {names[id(p)]: p.detach() for p in self.params}

    def _group(self, group: str) -> list[nn.Parameter]:
        return self.learner.parameter_groups()[group]

    def _place(self) -> None:
        """Move loaded state to the parameters' device and check it fits them."""
        if not self.params:
            return
        for name in ("anchors", "importance"):
            tensors = getattr(self, name)
            if tensors is None:
                continue
            shapes = [tuple(t.shape) for t in tensors]
            if shapes != [tuple(p.shape) for p in self.params]:
                raise ValueError(f"{self.name}: saved {name} do not fit the selected parameters")
            setattr(self, name, [t.to(p.device) for t, p in zip(tensors, self.params, strict=True)])

    # -- checkpoints ----------------------------------------------------------------------
    def memory_usage(self) -> MemoryUsage:
        """The anchor copies and the importance weights of the selected parameters."""
        return MemoryUsage.of_values("anchors", self.anchors or []) + MemoryUsage.of_values(
            "importance", self.importance or []
        )

    def state_dict(self) -> dict[str, Any]:
        return {"anchors": self.anchors, "importance": self.importance, "tasks": list(self.tasks)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        def copy(tensors: list[torch.Tensor] | None) -> list[torch.Tensor] | None:
            return None if tensors is None else [t.detach().clone() for t in tensors]

        self.anchors, self.importance = copy(state["anchors"]), copy(state["importance"])
        self.tasks = list(state["tasks"])
        self._place()


# -- per-sample derivatives with torch.func ---------------------------------------------------
def _chunks(obs: torch.Tensor, outputs: int, params: dict[str, torch.Tensor], budget: int):
    """Split ``obs`` so one chunk's Jacobians (outputs x parameters per sample) fit ``budget``."""
    per_sample = outputs * sum(p.numel() for p in params.values()) * 4
    size = max(1, min(len(obs), budget // max(per_sample, 1)))
    return obs.split(size)


def _single(policy: nn.Module) -> Callable[..., tuple[torch.Tensor, torch.Tensor | None]]:
    """(params, one observation) -> (mean, log-std or None) of that observation."""

    def forward(params: dict[str, torch.Tensor], x: torch.Tensor):
        mean, log_std = functional_call(policy, params, (x.unsqueeze(0),))
        return mean[0], None if log_std is None else log_std[0]

    return forward


def _square(t: torch.Tensor) -> torch.Tensor:
    """Elementwise square, in place where ``t`` owns its memory (Jacobians are large)."""
    return t.square_() if t.is_contiguous() else t.square()


@torch.no_grad()
def gaussian_fisher(
    policy: nn.Module,
    params: dict[str, torch.Tensor],
    obs: torch.Tensor,
    min_value: float = 0.0,
    eps: float = 1e-6,
    budget: int = JACOBIAN_BUDGET_BYTES,
) -> dict[str, torch.Tensor]:
    """Diagonal Fisher of a diagonal-Gaussian policy, averaged over ``obs``.

    Per sample, sum over action dims a of ((d mu_a)^2 + 2 (d sigma_a)^2) / (sigma_a^2 + eps)
    (Continual World's actor formula, their eps 1e-6), clipped from below at ``min_value``. A
    policy without a log-std (behaviour cloning) counts as sigma = 1 and only the mean term.
    """
    forward = _single(policy)
    mean, log_std = policy(obs[:1])
    has_std = log_std is not None
    outputs = mean.shape[-1] * (2 if has_std else 1)
    if has_std:
        jac = vmap(jacrev(forward), in_dims=(None, 0))
    else:
        jac = vmap(jacrev(lambda p, x: forward(p, x)[0]), in_dims=(None, 0))
    total = {n: torch.zeros_like(p) for n, p in params.items()}
    for chunk in _chunks(obs, outputs, params, budget):
        # weights of (d mu_a)^2 and (d log sigma_a)^2, with d sigma = sigma * d log sigma
        if has_std:
            d_mean, d_log_std = jac(params, chunk)  # (B, A, *shape) each
            var = policy(chunk)[1].exp().pow(2)  # (B, A)
            w_mean, w_log_std = 1.0 / (var + eps), 2 * var / (var + eps)
        else:
            d_mean, d_log_std = jac(params, chunk), None
            w_mean = torch.ones(len(chunk), mean.shape[-1], device=obs.device)
        for name, p in params.items():
            # sum over actions as a batched matrix product over the squared Jacobians (in place)
            terms = [(w_mean, d_mean[name])]
            if d_log_std is not None:
                terms.append((w_log_std, d_log_std[name]))
            per_sample = sum(
                torch.bmm(w.unsqueeze(1), _square(d.flatten(2))).view(len(chunk), *p.shape)
                for w, d in terms
            )
            total[name] += per_sample.clamp_min(min_value).sum(0)
    return {n: t / len(obs) for n, t in total.items()}


@torch.no_grad()
def output_norm_sensitivity(
    policy: nn.Module,
    params: dict[str, torch.Tensor],
    obs: torch.Tensor,
    include_log_std: bool = False,
    budget: int = JACOBIAN_BUDGET_BYTES,
) -> dict[str, torch.Tensor]:
    """MAS importance: mean over ``obs`` of |d ||f(x)||_2^2 / d theta| (Aljundi et al. 2018).

    f is the policy mean, plus the log-std when ``include_log_std`` (Continual World's actor).
    """
    forward = _single(policy)

    def squared_norm(p: dict[str, torch.Tensor], x: torch.Tensor) -> torch.Tensor:
        mean, log_std = forward(p, x)
        out = mean.pow(2).sum()
        if include_log_std and log_std is not None:
            out = out + log_std.pow(2).sum()
        return out

    per_sample = vmap(grad(squared_norm), in_dims=(None, 0))
    total = {n: torch.zeros_like(p) for n, p in params.items()}
    for chunk in _chunks(obs, 1, params, budget):
        grads = per_sample(params, chunk)
        for name in params:
            total[name] += grads[name].abs().sum(0)
    return {n: t / len(obs) for n, t in total.items()}
