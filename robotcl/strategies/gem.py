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
buffer as its memory, a training-size reference batch (256) and margin 0; here the memory size
and the reference batch follow Continual World's A-GEM (10,000 per task, 128), so GEM and A-GEM
compare directly, and the margin follows GEM. The dual is solved on unit-normalised rows (the
constraints do not depend on their scale; the bound becomes memory_strength x |g_k|), so that
gradients of any scale are treated alike. Needs the ``quadprog`` package.
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

# Ridge on the Gram matrix of the unit-normalised memory gradients, so that quadprog's Cholesky
# succeeds when they are (nearly) parallel; GEM's code adds an absolute 1e-3 to the raw Gram
# matrix, which dominates small gradients. The ridge's error is then removed by re-solving the
# KKT equations exactly on the active set the solver found (see _polish).
RIDGE = 1e-9


class GEMSettings(GradientMemorySettings):
    """GEM's settings: A-GEM's memory and reference batch, and the dual's margin."""

    memory_strength: NonNegativeFloat = Field(
        0.5,
        description="margin on the dual variables (GEM's code: 0.5); 0 gives the plain projection",
    )


def gem_project(g: torch.Tensor, G: torch.Tensor, margin: float = 0.5) -> torch.Tensor:
    """GEM's projection of ``g`` (P) against the rows of ``G`` (K x P), via the dual QP.

    The products with the gradients run where they are, in float64; only the K x K dual goes to
    the CPU (quadprog). The result has ``g``'s dtype and device.
    """
    gd, Gd = g.detach().double(), G.detach().double()
    norms = Gd.norm(dim=1)
    keep = norms > 0  # a zero gradient constrains nothing
    if not bool(keep.any()):
        return g
    # The rows are normalised (G g~ >= 0 does not depend on their scale); GEM's bound
    # v_k >= margin on the raw rows becomes v_k >= margin |g_k| on the unit rows.
    unit, norms = Gd[keep] / norms[keep, None], norms[keep]
    gram = (unit @ unit.T).cpu().numpy()
    w = solve_dual(
        0.5 * (gram + gram.T),
        (unit @ gd).cpu().numpy(),
        margin * norms.cpu().numpy(),
        float(gd.norm()),
    )
    return (gd + unit.T @ torch.as_tensor(w, device=gd.device)).to(g.dtype)


def solve_dual(gram: np.ndarray, ug: np.ndarray, bound: np.ndarray, g_norm: float) -> np.ndarray:
    """argmin_v 1/2 v' gram v + ug' v subject to v >= bound (quadprog, then polished)."""
    try:
        import quadprog
    except ImportError:  # pragma: no cover - depends on the environment
        raise UserInputError("gem", "needs the quadprog package", "pip install quadprog") from None
    k = len(gram)
    ridge = RIDGE
    while True:
        try:
            v = quadprog.solve_qp(gram + ridge * np.eye(k), -ug, np.eye(k), bound)[0]
            break
        except ValueError:  # not positive definite: strengthen the ridge
            if ridge >= 1e-3:
                raise
            ridge *= 1e3
    return _polish(gram, ug, bound, v, g_norm)


def _polish(
    gram: np.ndarray, ug: np.ndarray, bound: np.ndarray, v: np.ndarray, g_norm: float
) -> np.ndarray:
    """The multipliers re-solved exactly on the active set of the ridged solution ``v``.

    Multipliers above their bound (set F) belong to constraints that hold with equality:
    U_F (g + U' w) = 0 with w = bound off F, a least-squares solve that needs no ridge. Kept
    only when it meets the KKT conditions (slack >= 0, w_F >= bound_F); otherwise ``v``.
    """
    scale = max(1.0, float(np.abs(v).max()))
    free = v > bound + 1e-7 * scale
    w = np.where(free, 0.0, bound)
    ok = True
    if free.any():
        rhs = -(ug[free] + gram[np.ix_(free, ~free)] @ bound[~free])
        w[free] = np.linalg.lstsq(gram[np.ix_(free, free)], rhs, rcond=None)[0]
        ok = bool((w[free] >= bound[free] - 1e-9 * scale).all())
        if not ok and not bound.any():  # margin 0 with dependent rows: multipliers not unique,
            # but a feasible point no farther from g than the near-optimum is the optimum
            ok = bool(w @ gram @ w <= (v @ gram @ v) * (1 + 1e-9))
    feasible = bool((ug + gram @ w >= -1e-9 * g_norm).all())
    return w if ok and feasible else v


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
