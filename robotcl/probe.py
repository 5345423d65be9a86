"""Representation forgetting: a linear probe on the learner's frozen features.

At the end of task i, a held-out set of task i's observations is kept (``samples`` drawn from
its data, half to fit the probe, half to score it). After every task, for every task j seen so
far, a ridge regression from the learner's features (computed inside the strategy's acting
context of task j, so PackNet's and progressive's per-task networks are the ones probed) to the
task's state (the observation less the one-hot, standardised) is fitted on one half and scored
on the other by R^2 (clipped at 0 per state feature). That gives P[i][j] beside R[i][j] (NaN
for tasks not yet seen), with the same ACC, BWT and forgetting: it tells whether a strategy
forgets in the representation or in the heads.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from robotcl.strategies.memory import buffer_rows


def ridge_r2(
    fit_x: torch.Tensor,
    fit_y: torch.Tensor,
    test_x: torch.Tensor,
    test_y: torch.Tensor,
    ridge: float = 1e-2,
) -> float:
    """The probe's score: R^2 on the test half of a ridge regression fitted on the fit half
    (features and targets standardised with the fit half's statistics), per target column
    clipped at 0 (no better than the mean) and averaged, so scores lie in [0, 1] like success."""
    x_mean, x_std = fit_x.mean(0), fit_x.std(0).clamp_min(1e-6)
    y_mean, y_std = fit_y.mean(0), fit_y.std(0)
    keep = y_std > 1e-6  # a constant target has nothing to explain
    if not bool(keep.any()):
        return float("nan")
    y_std = y_std[keep]
    fx = torch.cat([(fit_x - x_mean) / x_std, torch.ones(len(fit_x), 1)], dim=1)
    tx = torch.cat([(test_x - x_mean) / x_std, torch.ones(len(test_x), 1)], dim=1)
    fy = (fit_y[:, keep] - y_mean[keep]) / y_std
    ty = (test_y[:, keep] - y_mean[keep]) / y_std
    gram = fx.T @ fx + ridge * len(fx) * torch.eye(fx.shape[1])
    weights = torch.linalg.solve(gram, fx.T @ fy)
    residual = (ty - tx @ weights).pow(2).sum(0)
    total = (ty - ty.mean(0)).pow(2).sum(0).clamp_min(1e-12)
    return float((1 - residual / total).clamp_min(0).mean())


class RepresentationProbe:
    """Held-out observations of every finished task, and the probe row of each stage."""

    def __init__(
        self, num_tasks: int, samples: int, ridge: float, seed: int, state: slice = slice(None)
    ) -> None:
        self.num_tasks, self.samples, self.ridge, self.seed = num_tasks, samples, ridge, seed
        self.state = state  # the part of an observation (less the one-hot) the probe reads
        self.observations: dict[int, torch.Tensor] = {}

    def add_task(self, task: int, buffer: Any) -> None:
        """Keep ``samples`` observations of the finished task's data (its own generator)."""
        size = buffer.size() if buffer is not None else 0
        if size < 4:
            return
        rng = np.random.default_rng([self.seed, task])
        index = torch.as_tensor(rng.choice(size, min(self.samples, size), replace=False))
        rows = buffer_rows(buffer, index)
        self.observations[task] = rows.observations.detach().float().cpu()

    @torch.no_grad()
    def row(self, learner: Any, strategy: Any) -> list[float]:
        """P[i]: the probe's R^2 on every task seen so far (NaN for the others)."""
        out = [float("nan")] * self.num_tasks
        for task, obs in sorted(self.observations.items()):
            with strategy.acting(task):
                features = learner.features(obs.to(learner.device)).float().cpu()
            half = len(obs) // 2
            state = obs[:, : -self.num_tasks][:, self.state]
            out[task] = ridge_r2(
                features[:half], state[:half], features[half:], state[half:], self.ridge
            )
        return out

    def state_dict(self) -> dict[str, Any]:
        return {"observations": dict(self.observations)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.observations = dict(state["observations"])
