"""The linear probe of representation forgetting: its score, the probe matrix P beside R in a
run, and what a representation that keeps, loses or scrambles the state scores."""

from __future__ import annotations

import contextlib
import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from robotcl.cli import main
from robotcl.probe import RepresentationProbe, ridge_r2


def test_ridge_r2_is_one_for_a_linear_map_and_zero_for_noise():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(400, 6, generator=g)
    y = x @ torch.randn(6, 3, generator=g)
    assert ridge_r2(x[:200], y[:200], x[200:], y[200:], ridge=1e-6) == pytest.approx(1, abs=1e-3)
    noise = torch.randn(400, 3, generator=g)
    assert ridge_r2(x[:200], noise[:200], x[200:], noise[200:]) < 0.05
    half = torch.cat([y[:, :1], noise[:, 1:]], dim=1)  # one of three targets explained
    assert ridge_r2(x[:200], half[:200], x[200:], half[200:], 1e-6) == pytest.approx(
        1 / 3, abs=0.05
    )


class Buffer:
    def __init__(self, obs):
        self.obs = obs

    def size(self):
        return len(self.obs)

    def rows(self, index):
        return type("Rows", (), {"observations": self.obs[index]})


class Learner:
    """Features: the first ``keep`` state features, or nothing at all."""

    device = torch.device("cpu")

    def __init__(self, keep):
        self.keep = keep

    def features(self, obs):
        return obs[:, : self.keep] if self.keep else torch.zeros(len(obs), 4)


class Acting:
    visited: list = []

    @contextlib.contextmanager
    def acting(self, task):
        self.visited.append(task)
        yield


def test_the_probe_scores_what_the_features_keep_of_each_tasks_state():
    g = torch.Generator().manual_seed(0)
    one_hot = torch.tensor([[1.0, 0.0]]).expand(500, 2)
    probe = RepresentationProbe(num_tasks=2, samples=400, ridge=1e-6, seed=0)
    probe.add_task(0, Buffer(torch.cat([torch.randn(500, 4, generator=g), one_hot], 1)))
    strategy = Acting()
    full = probe.row(Learner(keep=4), strategy)
    assert full[0] == pytest.approx(1, abs=1e-3) and math.isnan(full[1])  # task 1 not yet seen
    assert probe.row(Learner(keep=2), strategy)[0] == pytest.approx(0.5, abs=0.05)
    assert probe.row(Learner(keep=0), strategy)[0] == 0.0  # a collapsed representation
    assert strategy.visited == [0, 0, 0]  # each task probed in its acting context
    state = probe.state_dict()
    again = RepresentationProbe(2, 400, 1e-6, 0)
    again.load_state_dict(state)
    assert torch.equal(again.observations[0], probe.observations[0])


def test_a_run_has_the_probe_matrix_beside_r_and_its_metrics(tiny, tmp_path, capsys):
    assert main(["run", "quick", *tiny]) == 0
    assert "probe_acc" in capsys.readouterr().out  # the report shows it
    (results_file,) = (tmp_path / "runs").glob("*/*/results.json")
    results = json.loads(results_file.read_text())
    P = np.array(results["P"], dtype=float)
    assert P.shape == (2, 2) and np.isnan(P[0, 1]) and not np.isnan(P[1]).any()
    assert ((P[~np.isnan(P)] >= 0) & (P[~np.isnan(P)] <= 1)).all()
    metrics = results["metrics"]
    assert metrics["probe_acc"] == pytest.approx(P[1].mean())
    assert metrics["probe_forgetting"] == pytest.approx((P[0, 0] - P[1, 0]) / 2)
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(Path(results_file).parent / "tb"), size_guidance={"images": 0})
    events.Reload()
    assert [e.step for e in events.Scalars("probe/T0/score")] == [100, 200]
    assert "cl/probe_matrix" in events.Tags()["images"]


def test_probe_samples_zero_turns_it_off(tiny, tmp_path):
    assert main(["run", "quick", *tiny, "probe.samples=0"]) == 0
    (results_file,) = (tmp_path / "runs").glob("*/*/results.json")
    results = json.loads(results_file.read_text())
    assert results["P"] == [] and "probe_acc" not in results["metrics"]
