"""What each strategy keeps beyond the learner (the gap evaluation's memory column), checked
against the tensors it actually holds after the two-task toy."""

from __future__ import annotations

import pytest
import torch

from robotcl.strategies.agem import AGEM
from robotcl.strategies.base import MemoryUsage, StrategyStack
from robotcl.strategies.cumulative import Cumulative
from robotcl.strategies.ewc import EWC
from robotcl.strategies.finetune import Finetune
from robotcl.strategies.gem import GEM
from robotcl.strategies.l2 import L2
from robotcl.strategies.packnet import PackNet, PackNetSettings
from robotcl.strategies.progressive import Progressive
from robotcl.strategies.replay import PerfectMemory, Replay

NUM_TASKS = 2  # the toy's
STEPS = 20


def row_bytes(toy) -> int:
    """One float32 observation (with its one-hot) and action of the toy."""
    data = toy.data[0]
    return 4 * (data.observations.shape[1] + data.actions.shape[1])


def trained(toy, strategy):
    toy.run(strategy, steps=STEPS)
    return strategy.memory_usage()


def test_finetune_keeps_nothing(toy):
    assert trained(toy, Finetune()) == MemoryUsage()


def test_replay_counts_its_episodic_memories(toy):
    replay = Replay(Replay.Settings(memory_per_task=100))
    usage = trained(toy, replay)
    held = list(replay.memory.tasks.values())
    assert len(held) == 2 and usage.transitions == sum(len(b.observations) for b in held) == 200
    assert usage.transition_bytes == 200 * row_bytes(toy) and usage.values == 0
    assert usage.by_kind == {"episodic memory": usage.bytes}


def test_perfect_memory_counts_the_reservoir(toy):
    reservoir = PerfectMemory(PerfectMemory.Settings(reservoir_size=300))
    usage = trained(toy, reservoir)
    assert usage.transitions == len(reservoir.reservoir) == 300
    assert usage.bytes == 300 * row_bytes(toy)


def test_regularizers_count_their_anchors_and_importances(toy):
    for strategy in (L2(), EWC(EWC.Settings(fisher_batches=1, fisher_batch_size=8))):
        usage = trained(toy, strategy)
        n = sum(p.numel() for p in strategy.params)
        assert n > 0 and usage.values == 2 * n and usage.value_bytes == 8 * n
        assert usage.by_kind == {"anchors": 4 * n, "importance": 4 * n}


@pytest.mark.parametrize("cls, rows_per_update", [(AGEM, 1), (GEM, NUM_TASKS)])
def test_gradient_projection_counts_memories_and_reference_gradients(toy, cls, rows_per_update):
    strategy = cls(cls.Settings(memory_per_task=50, episodic_batch_size=8))
    usage = trained(toy, strategy)
    n = sum(p.numel() for p in strategy.projected_parameters())
    assert usage.transitions == 100 and usage.transition_bytes == 100 * row_bytes(toy)
    assert usage.values == rows_per_update * n  # A-GEM: one gradient; GEM: one per past task
    assert usage.by_kind["gradients"] == 4 * rows_per_update * n


def test_packnet_counts_owner_maps_and_frozen_values(toy):
    packnet = PackNet(PackNetSettings(retrain_steps=0))
    usage = trained(toy, packnet)
    owners = [o for o in packnet.owners if o is not None]
    assert owners and all(o.dtype == torch.int16 for o in owners)
    assert usage.by_kind["owner masks"] == 2 * sum(o.numel() for o in owners)
    assert usage.by_kind["frozen values"] == 4 * sum(p.numel() for p in packnet.params)


def test_progressive_counts_every_column_but_the_first(toy):
    progressive = Progressive()
    learner, _ = toy.run(progressive, steps=STEPS)
    usage = progressive.memory_usage()
    trunk = next(iter(progressive.trunks.values()))
    assert len(trunk.columns) == NUM_TASKS
    first = sum(p.numel() for p in trunk.columns[0].blocks.parameters())
    total = sum(p.numel() for t in progressive.trunks.values() for p in t.parameters())
    assert usage.values == total - first * len(progressive.trunks) > 0


def test_cumulative_counts_every_tasks_data(toy):
    usage = trained(toy, Cumulative())
    assert usage.transitions == sum(len(d.observations) for d in toy.data)
    assert usage.bytes == usage.transitions * row_bytes(toy)


def test_a_stack_sums_its_members(toy):
    replay, l2 = Replay(Replay.Settings(memory_per_task=100)), L2()
    usage = trained(toy, StrategyStack([replay, l2]))
    assert usage == replay.memory_usage() + l2.memory_usage()
    assert usage.transitions == 200 and usage.values == 2 * sum(p.numel() for p in l2.params)


def test_a_run_reports_its_strategys_memory_in_results_and_the_report(tiny):
    from robotcl.config import load_config
    from robotcl.experiment import run
    from robotcl.reporting.runs import report

    config = load_config("quick", [*tiny, "strategy=replay", "replay.memory_per_task=30"])
    run_dir, results = run(config)
    memory = results["memory"]
    obs_dim = 21 + 2  # dclaw10's state and the one-hot of two tasks
    row = 4 * (2 * obs_dim + 9 + 2)  # a sampled row: obs, next obs, action, reward, done
    assert memory["strategy"]["transitions"] == 60 and memory["by_task"] == [30 * row, 60 * row]
    assert results["metrics"]["memory"] == memory["strategy"]["bytes"] == 60 * row
    assert memory["replay_buffer_bytes"] == 1000 * (row + 4)  # and timeouts; buffer_size=1000
    assert memory["peak_process_bytes"] > memory["learner_bytes"] > 0
    table = report([str(run_dir.path)])
    assert "memory" in table.splitlines()[0] and f"{60 * row / 1024:.1f} KiB" in table
