"""A-GEM: Averaged GEM (Chaudhry, Ranzato, Rohrbach and Elhoseiny, ICLR 2019).

One reference gradient per update, on a batch drawn uniformly from the union of all past tasks'
memories; when the current gradient g conflicts with it (g . g_ref < 0), g is projected onto the
half-space of non-conflicting directions:

    g~ = g - (g . g_ref / g_ref . g_ref) g_ref,    so that g~ . g_ref = 0.

Settings as Continual World ran it on SAC (Wolczyk et al. 2021; ``--cl_method=agem
--regularize_critic=True --episodic_mem_per_task=10000 --episodic_batch_size=128``): 10,000
transitions kept per task, a reference batch of 128, one projection over the actor's and the
critic's gradients together. Continual World fills the memory by sampling the task's buffer with
replacement and draws the reference batch without; here the memory is drawn without replacement
and the reference batch with it (under one repeated row per batch at these sizes).

On multi-head networks with Adam, projecting every group (the default, as Continual World did)
also writes a share of the memory's gradient into the past tasks' heads, which the current
task's gradient never touches; Adam scales each coordinate by its own history, so those small
shares become steps of full size (about the learning rate a projected update, on every
coordinate of every past head), and the past heads' values run away (docs/results.md, agem).
A past head cannot raise the memory's loss when the current task does not move it, so
``agem.groups=[actor_trunk,critic_trunk]`` (the shared parameters) keeps the same guarantee
over every parameter and leaves the past heads bit-exact (tests/strategies, the toy).
"""

from __future__ import annotations

import torch

from robotcl.registry import register_strategy
from robotcl.strategies.memory import (
    GradientMemorySettings,
    GradientMemoryStrategy,
    current_gradient,
    write_gradient,
)


def agem_project(g: torch.Tensor, g_ref: torch.Tensor) -> torch.Tensor:
    """``g`` unchanged when ``g . g_ref >= 0``, else its projection orthogonal to ``g_ref``.

    The dot products are taken in float64, so the result's dot with ``g_ref`` is zero up to the
    rounding of ``g``'s dtype.
    """
    dot = torch.dot(g.double(), g_ref.double())
    if dot >= 0:
        return g
    coef = dot / torch.dot(g_ref.double(), g_ref.double())
    return (g.double() - coef * g_ref.double()).to(g.dtype)


class AGEMSettings(GradientMemorySettings):
    """A-GEM's settings (memory size, reference batch, groups), Continual World's defaults."""


@register_strategy("agem")
class AGEM(GradientMemoryStrategy):
    """A-GEM's projection against one reference gradient on all past tasks' memories."""

    name = "agem"
    Settings = AGEMSettings

    def gradients_per_update(self, past: int) -> int:
        return 1  # one reference gradient on all past tasks' memories

    def adjust_gradients(self, task_id: int) -> None:
        past = self.memory.past(task_id)
        if not past:
            return
        params = self.projected_parameters()
        batch = self.memory.sample_pooled(past, self.settings.episodic_batch_size, self.generator)
        g_ref = self.memory_gradient(batch, params)
        g = current_gradient(params)
        projected = agem_project(g, g_ref)
        self.stats["updates"] += 1
        if projected is not g:
            write_gradient(params, projected)
            self.stats["projections"] += 1
