"""A new contrastive objective is one class in a file of its own: registered by name, with typed
settings under ``agent.encoder.<name>``, it runs through ``robotcl run`` with every learner that
has an encoder (SAC and BC here), which honour ``ssl_every`` and ``memory_ratio`` for it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from pydantic import Field
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from robotcl.cli import main
from robotcl.config import load_config
from robotcl.experiment import Experiment
from robotcl.registry import register_objective
from robotcl.ssl import ObjectiveSettings, SSLBatch, SSLObjective, SSLOutput
from robotcl.ssl.losses import info_nce, top1_accuracy

ENCODER = ["agent.encoder.type=mlp", "agent.encoder.feature_dim=16", "agent.encoder.hidden=32"]


class PairsSettings(ObjectiveSettings):
    temperature: float = Field(0.5, gt=0, description="softmax temperature")


class Pairs(SSLObjective):
    """Two views of each observation, cosine logits over a temperature; it records its calls."""

    name = "pairs"
    Settings = PairsSettings
    built: list[Pairs] = []

    def __init__(self, encoder, augment, generator=None, **settings):
        super().__init__(encoder, augment, generator, **settings)
        self.batches: list[torch.Tensor] = []
        self.updates = 0
        Pairs.built.append(self)

    def forward(self, batch: SSLBatch) -> SSLOutput:
        self.batches.append(batch.obs.detach().clone())
        a = F.normalize(self.encoder(self.view(batch.obs)), dim=1)
        b = F.normalize(self.encoder(self.view(batch.obs)), dim=1)
        logits = a @ b.T / self.settings.temperature
        return SSLOutput(info_nce(logits), top1_accuracy(logits))

    def after_update(self) -> None:
        self.updates += 1


@pytest.fixture
def pairs():
    """The objective registered, as a plugin's import would; the instances it builds."""
    register_objective("pairs")(Pairs)
    Pairs.built.clear()
    return Pairs.built


def scalar_tags(run_root: Path) -> set[str]:
    (tb,) = run_root.glob("*/*/tb")
    events = EventAccumulator(str(tb))
    events.Reload()
    return set(events.Tags()["scalars"])


def test_a_new_objective_runs_through_robotcl_run_with_its_settings(pairs, tiny, tmp_path):
    items = [*tiny, *ENCODER, "agent.encoder.objective=pairs"]
    items += ["agent.encoder.pairs.temperature=0.2"]
    assert main(["run", "quick", *items, "agent.encoder.ssl_every=3", "probe.samples=0"]) == 0
    (objective,) = pairs
    assert objective.settings.temperature == 0.2  # the setting reached it
    # every third update computed the loss, and each one was followed by its step
    assert len(objective.batches) == objective.updates > 10
    assert {"train/ssl/pairs/loss", "train/ssl/pairs/accuracy"} <= scalar_tags(tmp_path / "runs")


def expert_data(folder: Path, config_items: list[str]) -> None:
    """Random (observation, action) rows for each task of the curriculum."""
    suite = Experiment(load_config("quick", config_items)).suite
    folder.mkdir()
    g = np.random.default_rng(0)
    for i, name in enumerate(suite.task_names):
        env = suite.make_env(i)
        obs_dim = env.observation_space.shape[0] - len(suite)
        n = 64
        np.savez(
            folder / f"{name}.npz",
            observations=g.normal(size=(n, obs_dim)).astype(np.float32),
            actions=g.uniform(-1, 1, (n, env.action_space.shape[0])).astype(np.float32),
        )
        env.close()


def test_bc_wires_the_objective_with_ssl_every_and_the_memory_of_earlier_tasks(pairs, tmp_path):
    data = tmp_path / "data"
    items = [
        "agent.name=bc",
        f"agent.expert_data={data}",
        "num_tasks=2",
        "steps_per_task=20",
        "agent.net_arch=[32]",
        "agent.batch_size=32",
        "agent.log_every_updates=5",
        "eval.every_steps=100",
        "eval.episodes=1",
        "eval.deterministic_episodes=1",
        "probe.samples=0",
        "progress=false",
        f"runs_dir={tmp_path / 'runs'}",
        *ENCODER,
        "agent.encoder.objective=pairs",
        "agent.encoder.ssl_every=2",
        "agent.encoder.memory_ratio=0.25",
        "agent.encoder.memory_per_task=16",
    ]
    expert_data(data, items)
    assert main(["run", "quick", *items]) == 0
    (objective,) = pairs
    assert objective.updates == len(objective.batches) == 20  # 2 tasks x 20 steps / ssl_every
    # on the second task the last quarter of each SSL batch is the first task's observations
    for batch in objective.batches[10:]:
        one_hot = batch[:, -2:]
        assert one_hot[:24, 1].sum() == 24 and one_hot[24:, 0].sum() == 8
    assert all(batch[:, -2].sum() == 32 for batch in objective.batches[:10])
    assert "train/ssl/pairs/loss" in scalar_tags(tmp_path / "runs")
    # the checkpoint keeps the memory and the update count (exact resumes)
    from robotcl.agents.cloning import BCAgent

    (checkpoint,) = (tmp_path / "runs").glob("*/*/checkpoints/task000/learner*")
    learner = BCAgent.load(checkpoint, device="cpu")
    assert learner.n_updates == 20 and learner.ssl_memory.tasks() == [0]
    assert len(learner.ssl_memory) == 16
