"""Temporal contrast with k > 1: pairs drawn from the replay are k steps apart in one episode,
never across a done, a reset without one or the ring's write position, in SB3's replay and in
the frame replay alike; a run with temporal.k=3 trains."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from counter_env import collect, pixel_env
from stable_baselines3.common.buffers import ReplayBuffer

from robotcl.agents.frame_buffer import FrameReplayBuffer
from robotcl.agents.later_pairs import later_pairs


def filled(kind: str, capacity: int, cut_every: int, max_steps: int = 7):
    env = pixel_env(max_steps=max_steps)
    width = env.observation_space.shape[0]
    if kind == "frames":
        buffer = FrameReplayBuffer(capacity, env.env.layout, width, 1)
    else:
        buffer = ReplayBuffer(capacity, env.observation_space, env.action_space, "cpu", 1)
    collect(env, 300, buffer, cut_every=cut_every)
    return buffer, env.env.layout.pixel_values


@pytest.mark.parametrize("kind", ["sb3", "frames"])
@pytest.mark.parametrize("cut_every", [0, 5])  # episodes end by a time limit, or by a bare reset
@pytest.mark.parametrize("capacity", [500, 37])  # all kept, and a ring that wrapped
def test_pairs_are_k_steps_apart_within_one_episode(kind, capacity, cut_every):
    buffer, t = filled(kind, capacity, cut_every)
    anchors, later = later_pairs(buffer, 64, 3, torch.Generator().manual_seed(0))
    assert anchors.shape == later.shape == (64, anchors.shape[1])
    # the state beside the frames is (step in the episode, the episode's random base)
    assert torch.equal(later[:, t] - anchors[:, t], torch.full((64,), 3.0))
    assert torch.equal(later[:, t + 1], anchors[:, t + 1])  # the same episode
    assert len(set(anchors[:, t].tolist())) > 1  # anchors from all over the episodes


def test_episodes_shorter_than_k_give_a_clear_error():
    buffer, _ = filled("sb3", 100, cut_every=0, max_steps=2)
    with pytest.raises(ValueError, match="episodes shorter than k=3"):
        later_pairs(buffer, 8, 3, torch.Generator().manual_seed(0))


def test_an_agent_contrasts_observations_k_steps_apart(tiny):
    from robotcl.config import load_config
    from robotcl.experiment import Experiment

    items = ["agent.encoder.type=mlp", "agent.encoder.feature_dim=16", "agent.encoder.hidden=32"]
    items += ["agent.encoder.objective=temporal", "agent.encoder.temporal.k=3"]
    experiment = Experiment(load_config("quick", [*tiny, *items]))
    experiment.prepare()
    learner = experiment.learner
    learner.start_task(0, experiment.suite.make_env(0), seed=0)
    learner.learn_task(60)
    seen = []
    original = learner.ssl_wiring.term
    learner.ssl_wiring.term = lambda u, task, obs, later, *rest: (
        seen.append((obs, later)) or (original(u, task, obs, later, *rest))
    )
    batch = learner.replay_buffer.sample(16)
    out = learner.update(batch)
    assert torch.isfinite(out["ssl_loss"])
    obs, later = seen[0]
    assert obs is not batch.observations and len(obs) == 16  # its own pairs, three steps apart
    assert not torch.equal(later, batch.next_observations)
    assert np.isfinite(out["ssl_accuracy"].item())


def test_k_above_one_with_an_ssl_memory_is_one_line_before_anything_is_written(tmp_path, capsys):
    from robotcl.cli import main

    items = ["agent.encoder.type=mlp", "agent.encoder.objective=temporal"]
    items += ["agent.encoder.temporal.k=3", "agent.encoder.memory_ratio=0.5"]
    assert main(["run", "quick", *items, f"runs_dir={tmp_path / 'runs'}"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(
        "robotcl: error: config key 'agent.encoder.temporal'"
    )
    assert "memory_ratio=0" in err[0] and not (tmp_path / "runs").exists()
