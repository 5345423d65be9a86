"""EWC: weigh each parameter by the diagonal Fisher information of the policy.

Elastic weight consolidation (Kirkpatrick et al. 2017) as Continual World runs it on a Gaussian
actor (Wolczyk et al. 2021, ``methods/ewc.py``): for a policy with mean mu and std sigma,

    F(theta) = E_x sum_a ((d mu_a / d theta)^2 + 2 (d sigma_a / d theta)^2) / sigma_a^2,

per-sample Jacobians (torch.func), each sample's sum clipped from below at 1e-5 and sigma^2 padded
by 1e-6 as theirs are, averaged over 10 batches of 256 observations of the finished task's buffer
and summed over tasks. A policy without a std (behaviour cloning) counts as sigma = 1: mean term
only.

The mean is the pre-tanh mean of SAC's squashed Gaussian: the Fisher information does not change
under an invertible transform of the action, so this is the squashed policy's Fisher exactly
(Continual World differentiates the squashed mean, an approximation of it).

``online=true`` keeps gamma * F_old + F_new instead of the sum (online EWC, Schwarz et al. 2018;
LIBERO uses gamma 0.9). Default coef 1e4 (Continual World).
"""

from __future__ import annotations

import torch
from pydantic import Field, PositiveInt

from robotcl.registry import register_strategy
from robotcl.strategies.base import TaskData
from robotcl.strategies.regularizers import (
    ParameterRegularizer,
    RegularizerSettings,
    gaussian_fisher,
)


class EWCSettings(RegularizerSettings):
    coef: float = Field(1e4, ge=0, description="penalty strength (Continual World: 1e4)")
    fisher_batches: PositiveInt = Field(
        10, description="batches of the finished task's buffer for the Fisher (Continual World: 10)"
    )
    fisher_batch_size: PositiveInt = Field(
        256, description="observations per Fisher batch (Continual World: 256)"
    )
    min_fisher: float = Field(
        1e-5, ge=0, description="per-sample lower clip of the Fisher (Continual World: 1e-5)"
    )
    online: bool = Field(
        False, description="decay the old Fisher by gamma (online EWC, Schwarz et al. 2018)"
    )
    gamma: float = Field(
        0.9, ge=0, le=1, description="online decay of the old Fisher (LIBERO: 0.9)"
    )


@register_strategy("ewc")
class EWC(ParameterRegularizer):
    """Importance = diagonal Fisher of the policy on the finished task's observations."""

    name = "ewc"
    needs = frozenset({"policy_distribution"})  # importance through the policy's outputs
    Settings = EWCSettings
    settings: EWCSettings

    def task_importance(self, data: TaskData) -> list[torch.Tensor]:
        s = self.settings
        obs = self.observations(data, s.fisher_batches, s.fisher_batch_size)
        policy, params = self.policy_parameters()
        fisher = gaussian_fisher(policy, params, obs, min_value=s.min_fisher)
        return list(fisher.values())

    def merge(self, old: torch.Tensor, new: torch.Tensor) -> torch.Tensor:
        return (self.settings.gamma * old if self.settings.online else old) + new
