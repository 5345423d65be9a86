"""L2: pull the selected parameters towards their values at the end of the last task.

Every parameter weighs 1 per finished task, summed as Continual World does (``methods/l2.py`` adds
ones to the weights at each task switch), so after k tasks the penalty is k * coef * ||theta -
theta*||^2. Default coef 1e5 (Continual World, Wolczyk et al. 2021).
"""

from __future__ import annotations

import torch
from pydantic import Field

from robotcl.registry import register_strategy
from robotcl.strategies.base import TaskData
from robotcl.strategies.regularizers import ParameterRegularizer, RegularizerSettings


class L2Settings(RegularizerSettings):
    coef: float = Field(1e5, ge=0, description="penalty strength (Continual World: 1e5)")


@register_strategy("l2")
class L2(ParameterRegularizer):
    """Uniform importance: an isotropic quadratic pull towards the last anchor."""

    name = "l2"
    Settings = L2Settings

    def task_importance(self, data: TaskData) -> list[torch.Tensor]:
        return [torch.ones_like(p) for p in self.params]
