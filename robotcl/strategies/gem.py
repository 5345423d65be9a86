"""GEM: Gradient Episodic Memory (Lopez-Paz and Ranzato, NeurIPS 2017).

One episodic memory per finished task. At every update the gradient g of the current loss is
compared with one reference gradient g_k per past task (the learner's training loss on a batch
of task k's memory, taken with ``torch.autograd.grad`` so ``.grad`` keeps g). When some
g . g_k < 0, g is replaced by the solution of GEM's dual quadratic program:

    min_v  1/2 v' G G' v + (G g)' v   subject to  v >= memory_strength,     g~ = g + G' v

(G has the rows g_k). Its KKT conditions give G g~ >= 0: the step does not increase any past
task's loss to first order; with ``memory_strength`` 0 g~ is the closest such vector to g. GEM's
published code uses the margin 0.5 (``memory_strength``) and solves the program with quadprog.

The CoRL 2021 gap study ran GEM on SAC (code: yangfanthu/ll_orthog) with each past task's whole
buffer as its memory and a training-size reference batch; here the memory size and the reference
batch follow Continual World's A-GEM (10,000 per task, 128), so GEM and A-GEM compare directly.
Needs the ``quadprog`` package.
"""

from __future__ import annotations

import numpy as np
import torch
from pydantic import Field, NonNegativeFloat

from robotcl.errors import UserInputError
from robotcl.registry import register_strategy
from robotcl.strategies.memory import (
    GradientMemorySettings,
    GradientMemoryStrategy,
    current_gradient,
    sample_rows,
    write_gradient,
)

# Relative ridge on G G' so that quadprog's Cholesky succeeds when memory gradients are
# (nearly) parallel. GEM's code adds an absolute 1e-3, which dominates small gradients; a ridge
# relative to the largest squared gradient norm leaves the constraints exact to ~1e-9.
RIDGE = 1e-9


class GEMSettings(GradientMemorySettings):
    memory_strength: NonNegativeFloat = Field(
        0.5,
        description="margin on the dual variables (GEM's code: 0.5); 0 gives the plain projection",
    )


def gem_project(g: torch.Tensor, G: torch.Tensor, margin: float = 0.5) -> torch.Tensor:
    """GEM's projection of ``g`` (P) against the rows of ``G`` (K x P), via the dual QP.

    Solved in float64 on the CPU with quadprog; the result has ``g``'s dtype and device.
    """
    try:
        import quadprog
    except ImportError:  # pragma: no cover - depends on the environment
        raise UserInputError("gem", "needs the quadprog package", "pip install quadprog") from None
    Gn = G.detach().double().cpu().numpy()
    gn = g.detach().double().cpu().numpy()
    gram = Gn @ Gn.T
    gram = 0.5 * (gram + gram.T)
    scale = max(float(np.max(np.diag(gram))), np.finfo(np.float64).tiny)
    k = len(gram)
    ridge = RIDGE
    while True:
        try:
            v = quadprog.solve_qp(
                gram + ridge * scale * np.eye(k), -(Gn @ gn), np.eye(k), np.full(k, margin)
            )[0]
            break
        except ValueError:  # not positive definite: strengthen the ridge
            if ridge >= 1e-3:
                raise
            ridge *= 1e3
    return torch.as_tensor(gn + Gn.T @ v, dtype=g.dtype, device=g.device)


@register_strategy("gem")
class GEM(GradientMemoryStrategy):
    """GEM's projection of every update against one reference gradient per past task."""

    name = "gem"
    Settings = GEMSettings

    def adjust_gradients(self, task_id: int) -> None:
        past = self.memory.past(task_id)
        if not past:
            return
        params = self.projected_parameters()
        g = current_gradient(params)
        size = self.settings.episodic_batch_size
        G = torch.stack(
            [
                self.memory_gradient(
                    sample_rows(self.memory.tasks[k], size, self.generator), params
                )
                for k in past
            ]
        )
        self.stats["updates"] += 1
        if bool((G.double() @ g.double() < 0).any()):
            write_gradient(params, gem_project(g, G, self.settings.memory_strength))
            self.stats["projections"] += 1
