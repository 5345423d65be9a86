"""MAS: weigh each parameter by how much it moves the policy's output.

Memory aware synapses (Aljundi et al. 2018): importance = mean over samples of
|d ||f(x)||_2^2 / d theta|, with f the policy's output; unsupervised, so it needs observations only.
As in Continual World's actor (Wolczyk et al. 2021, ``methods/mas.py``) f is the mean together with
the log-std (``include_log_std``), 10 batches of 256 observations of the finished task's buffer,
and the importances of successive tasks are summed (Aljundi et al. accumulate each new task's
importance onto the old; Continual World's ``_merge_weights``). The mean is SAC's pre-tanh mean
(Continual World takes the squashed one). Default coef 1e4 (Continual World).
"""

from __future__ import annotations

import torch
from pydantic import Field, PositiveInt

from robotcl.registry import register_strategy
from robotcl.strategies.base import TaskData
from robotcl.strategies.regularizers import (
    ParameterRegularizer,
    RegularizerSettings,
    output_norm_sensitivity,
)


class MASSettings(RegularizerSettings):
    coef: float = Field(1e4, ge=0, description="penalty strength (Continual World: 1e4)")
    importance_batches: PositiveInt = Field(
        10, description="batches of the finished task's buffer (Continual World: 10)"
    )
    importance_batch_size: PositiveInt = Field(
        256, description="observations per batch (Continual World: 256)"
    )
    include_log_std: bool = Field(
        True, description="f = mean and log-std (Continual World); false: the mean only"
    )


@register_strategy("mas")
class MAS(ParameterRegularizer):
    """Importance = mean absolute gradient of the squared output norm."""

    name = "mas"
    needs = frozenset({"policy_distribution"})  # importance through the policy's outputs
    Settings = MASSettings
    settings: MASSettings

    def task_importance(self, data: TaskData) -> list[torch.Tensor]:
        s = self.settings
        obs = self.observations(data, s.importance_batches, s.importance_batch_size)
        policy, params = self.policy_parameters()
        return list(output_norm_sensitivity(policy, params, obs, s.include_log_std).values())
