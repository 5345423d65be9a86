"""GEM, A-GEM, replay and perfect memory: the projections, the reservoir, the memories, the toy,
checkpoints, and one run of each through the RL loop."""

from __future__ import annotations

import io
import itertools
import shutil
from typing import NamedTuple

import numpy as np
import pytest
import torch
from stable_baselines3.common.type_aliases import ReplayBufferSamples

from robotcl.agents.supervised import SupervisedBatch
from robotcl.config import load_config
from robotcl.errors import UserInputError
from robotcl.experiment import resume, run
from robotcl.strategies.agem import AGEM, agem_project
from robotcl.strategies.base import TaskData, index_batch
from robotcl.strategies.finetune import Finetune
from robotcl.strategies.gem import GEM, gem_project
from robotcl.strategies.memory import (
    Reservoir,
    current_gradient,
    reservoir_assign,
)
from robotcl.strategies.replay import FrozenCriticReplay, PerfectMemory, Replay, mix_batch

STRATEGIES = {"agem": AGEM, "gem": GEM, "replay": Replay, "perfect_memory": PerfectMemory}


def unit(g: torch.Tensor) -> float:
    return float(g.double().norm())


# -- the projections ------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_agem_projection_never_conflicts_with_the_reference(dtype):
    gen = torch.Generator().manual_seed(0)
    projected = 0
    for trial in range(2000):
        dim = [2, 3, 50, 2000][trial % 4]
        g, ref = torch.randn(2, dim, generator=gen, dtype=dtype)
        ref = ref * 10.0 ** (trial % 7 - 3)  # references of every scale
        out = agem_project(g, ref)
        before = float(torch.dot(g.double(), ref.double()))
        after = float(torch.dot(out.double(), ref.double()))
        assert after >= -1e-6 * unit(out) * unit(ref)
        if before >= 0:
            assert out is g  # untouched, not even copied
        else:
            projected += 1
            assert abs(after) <= 1e-6 * unit(out) * unit(ref)  # onto the boundary: the closest
            assert torch.allclose(out.double(), g.double() - before / unit(ref) ** 2 * ref.double())
    assert 800 < projected < 1200  # both branches were exercised


def _closest_feasible(g: np.ndarray, G: np.ndarray) -> np.ndarray:
    """Brute force: the closest x to g with G x >= 0, over every set of active constraints."""
    best, best_dist = None, np.inf
    for r in range(len(G) + 1):
        for active in itertools.combinations(range(len(G)), r):
            A = G[list(active)]
            x = g - A.T @ np.linalg.lstsq(A @ A.T, A @ g, rcond=None)[0] if r else g
            if (G @ x >= -1e-9 * np.linalg.norm(g) * np.linalg.norm(G, axis=1)).all():
                dist = np.linalg.norm(x - g)
                if dist < best_dist:
                    best, best_dist = x, dist
    return best


def test_gem_projection_is_the_closest_vector_meeting_every_constraint():
    rng = np.random.default_rng(0)
    checked = 0
    for trial in range(300):
        dim, k = [(2, 2), (2, 3), (3, 2), (3, 3)][trial % 4]
        G, g = rng.normal(size=(k, dim)), rng.normal(size=dim)
        if (G @ g >= 0).all():
            continue  # GEM does not project then
        out = gem_project(torch.tensor(g), torch.tensor(G), margin=0.0).numpy()
        assert np.allclose(out, _closest_feasible(g, G), atol=1e-6 * np.linalg.norm(g))
        checked += 1
    assert checked > 150


@pytest.mark.parametrize("margin", [0.0, 0.5])
def test_gem_projection_meets_the_constraints_and_kkt(margin):
    gen = torch.Generator().manual_seed(1)
    for trial in range(300):
        dim, k = [(20, 1), (50, 3), (500, 5), (5, 5)][trial % 4]
        G = torch.randn(k, dim, generator=gen, dtype=torch.float64)
        G = G * torch.logspace(-3, 1, k, dtype=torch.float64).unsqueeze(1)  # mixed scales
        g = torch.randn(dim, generator=gen, dtype=torch.float64)
        g = g - 2 * G[0] * torch.dot(g, G[0]).abs() / G[0].dot(G[0])  # violates constraint 0
        out = gem_project(g, G, margin)
        slack = G @ out
        tolerance = 1e-6 * g.norm() * G.norm(dim=1)
        assert (slack >= -tolerance).all()  # every past task's loss is not increased
        # KKT of GEM's dual: out = g + G' v with v >= margin, (v - margin) * slack = 0
        v = torch.linalg.lstsq(G.T, out - g).solution
        assert torch.allclose(G.T @ v, out - g, atol=1e-8 * g.norm())
        assert (v >= margin - 1e-6 * (1 + v.abs())).all()
        assert ((v - margin) * slack).abs().max() <= 1e-6 * g.norm() * G.norm(dim=1).max() * (
            1 + v.abs().max()
        )


def test_gem_with_one_constraint_and_no_margin_is_agem():
    gen = torch.Generator().manual_seed(2)
    for _ in range(50):
        g, ref = torch.randn(2, 40, generator=gen, dtype=torch.float64)
        if torch.dot(g, ref) < 0:
            assert torch.allclose(gem_project(g, ref[None], 0.0), agem_project(g, ref), atol=1e-9)


@pytest.mark.parametrize("cls", [AGEM, GEM])
def test_projection_writes_the_learners_gradient(toy, cls):
    """A training batch that undoes the memory's gradient is projected; an agreeing one is not."""
    learner = toy.learner()
    strategy = cls(cls.Settings(episodic_batch_size=8, memory_strength=0.0) if cls is GEM else None)
    learner.attach(strategy)
    strategy.setup(learner, None)
    row = toy.data[0].sample(1)
    strategy.memory.add(0, row)
    learner.current_task = 1
    params = strategy.projected_parameters()
    assert len(params) == len(list(learner.net.parameters()))  # both actor groups by default

    prediction = learner.net(row.observations)[0].detach()
    mirrored = SupervisedBatch(row.observations, 2 * prediction - row.actions)  # g = -g_ref
    for batch, conflicts in [(row, False), (mirrored, True)]:
        learner.optimizer.zero_grad()
        learner.reference_loss(batch).backward()
        before = current_gradient(params).clone()
        strategy.adjust_gradients(1)
        after = current_gradient(params)
        if conflicts:
            assert before.norm() > 1e-3 and after.norm() < 1e-5 * before.norm()
        else:
            assert torch.equal(before, after)
    assert strategy.stats == {"updates": 2, "projections": 1}


def _head_block(learner, task: int) -> torch.Tensor:
    k = learner.net.mu.out_per_task
    return learner.net.mu.weight[task * k : (task + 1) * k].detach().clone()


def test_agem_on_the_shared_trunk_keeps_past_heads_and_still_never_conflicts(toy):
    """A past task's head gets no gradient from the current task, so the memory's loss can only
    rise through the shared trunk. Projecting every group (the default) also writes a share of
    the memory's gradient into the past heads, where Adam's per-coordinate scaling turns it into
    steps of full size (docs/results.md, agem: the past critic heads' weights grow task after
    task); projecting the trunk alone leaves them bit-exact and keeps the guarantee over every
    parameter: the update's dot with the memory's full gradient is not negative."""
    moved, projections = {}, {}
    for groups in (None, ["actor_trunk"]):
        learner = toy.learner()
        strategy = AGEM(AGEM.Settings(groups=groups))
        learner.attach(strategy)
        strategy.setup(learner, None)
        for task in range(2):
            learner.start_task(task, toy.data[task])
            strategy.on_task_start(task)
            learner.learn_task(200)
            strategy.on_task_end(task, learner.task_data())
            if task == 0:
                head = _head_block(learner, 0)
        moved[str(groups)] = float((_head_block(learner, 0) - head).abs().max())
        projections[str(groups)] = strategy.stats["projections"]
        assert 0 < projections[str(groups)] < strategy.stats["updates"]
    assert moved["['actor_trunk']"] == 0.0
    # every group: task 0's head moves by about lr (3e-3) at each projected update, the size of
    # an Adam step, however small the share of the memory's gradient written there
    assert moved["None"] > 0.5 * 3e-3 * projections["None"]

    learner = toy.learner()
    strategy = AGEM(AGEM.Settings(groups=["actor_trunk"], episodic_batch_size=8))
    learner.attach(strategy)
    strategy.setup(learner, None)
    row = toy.data[0].sample(1)
    strategy.memory.add(0, row)
    learner.current_task = 1
    everything = list(learner.net.parameters())
    learner.optimizer.zero_grad()
    learner.reference_loss(row).backward()
    g_ref = current_gradient(everything).clone()
    for _ in range(20):  # batches of task 1 (a seeded generator); some conflict with the row
        learner.optimizer.zero_grad()
        learner.reference_loss(toy.data[1].sample(64)).backward()
        strategy.adjust_gradients(1)
        assert float(torch.dot(current_gradient(everything).double(), g_ref.double())) > -1e-6
    assert strategy.stats["projections"] > 0


def test_unknown_groups_fail_at_setup(toy):
    strategy = AGEM(AGEM.Settings(groups=["critic_trunk"]))
    with pytest.raises(UserInputError, match="critic_trunk"):
        strategy.setup(toy.learner(), None)


# -- the reservoir --------------------------------------------------------------------------------
def _sequential_algorithm_r(stream: int, capacity: int, chunks: list[int], seed: int) -> list[int]:
    """Vitter's Algorithm R item by item, with the same uniform draws as the vectorised one."""
    gen = torch.Generator().manual_seed(seed)
    slots, t = [], 0
    for n in chunks:
        for u in torch.rand(n, generator=gen, dtype=torch.float64).tolist():
            if t < capacity:
                slots.append(t)
            elif (j := int(u * (t + 1))) < capacity:
                slots[j] = t
            t += 1
    assert t == stream
    return slots


class Ids(NamedTuple):
    id: torch.Tensor


def _stream(stream: int, capacity: int, chunks: list[int], seed: int) -> torch.Tensor:
    reservoir, gen, start = Reservoir(capacity), torch.Generator().manual_seed(seed), 0
    for n in chunks:
        reservoir.add(Ids(torch.arange(start, start + n)), gen)
        start += n
    assert reservoir.seen == stream and len(reservoir) == min(stream, capacity)
    return reservoir.storage.id


def test_reservoir_matches_algorithm_r_item_by_item():
    for seed, chunks in enumerate([[300], [40, 10, 250], [1] * 120, [7, 0, 93, 200]]):
        kept = _stream(sum(chunks), 50, chunks, seed)
        assert kept.tolist() == _sequential_algorithm_r(sum(chunks), 50, chunks, seed)


def test_reservoir_keeps_a_uniform_sample():
    """10,000 items (in ten task-sized chunks) through 1,000 slots, 200 seeds: every item, early
    or late, is kept with probability 0.1."""
    runs, stream, capacity = 200, 10_000, 1_000
    counts = torch.zeros(stream)
    for seed in range(runs):
        kept = _stream(stream, capacity, [1000] * 10, seed)
        assert len(kept.unique()) == capacity  # no item twice
        counts[kept] += 1
    p = capacity / stream
    # per-item chi-square: mean 10,000 and sd ~141 for a uniform reservoir
    chi2 = float(((counts - runs * p) ** 2).sum() / (runs * p * (1 - p)))
    assert 9_300 < chi2 < 10_700
    # per stream-decile: 200 x 100 expected, sd ~127 (hypergeometric)
    deciles = counts.view(10, -1).sum(1)
    assert ((deciles - runs * capacity / 10).abs() < 650).all(), deciles


def test_reservoir_assign_keeps_everything_below_capacity():
    slots, items = reservoir_assign(0, 30, 100, torch.Generator().manual_seed(0))
    assert slots.tolist() == items.tolist() == list(range(30))


# -- the memories ---------------------------------------------------------------------------------
def test_memory_larger_than_the_buffer_keeps_the_whole_buffer(toy):
    data = toy.data[0]
    strategy = Replay()  # 10,000 per task, the buffer holds 512
    strategy.setup(toy.learner(), None)
    strategy.on_task_end(0, TaskData(0, buffer=data))
    kept = strategy.memory.tasks[0]
    assert torch.equal(kept.observations, data.observations)
    assert torch.equal(kept.actions, data.actions)

    small = Replay(Replay.Settings(memory_per_task=100))
    small.setup(toy.learner(), None)
    small.on_task_end(0, TaskData(0, buffer=data))
    rows = small.memory.tasks[0].observations
    index = [int((data.observations == r).all(1).nonzero()) for r in rows]
    assert len(rows) == 100 and len(set(index)) == 100 and index == sorted(index)


def _sac_like(task: int, n: int, num_tasks: int = 4) -> ReplayBufferSamples:
    """An SB3-style batch whose rewards hold the task id (``discounts`` None, as SB3 gives it)."""
    obs = torch.zeros(n, 4 + num_tasks)
    obs[:, 4 + task] = 1
    cols = (obs, torch.zeros(n, 2), obs.clone(), torch.zeros(n, 1), torch.full((n, 1), task))
    return ReplayBufferSamples(*cols)


def test_replay_mixes_past_tasks_evenly_into_the_batch():
    strategy = Replay()
    for task in range(3):
        strategy.memory.add(task, _sac_like(task, 20))
    batch = _sac_like(3, 64)
    mixed = strategy.sample(batch, 3)
    assert len(mixed.observations) == 64 and mixed.discounts is None
    tasks = mixed.rewards.squeeze(1).long().tolist()
    assert tasks[:32] == [3] * 32  # the first half of the current batch is kept
    assert sorted(tasks[32:].count(t) for t in range(3)) == [10, 11, 11]  # even over past tasks
    assert Replay().sample(batch, 3) is batch  # no memory yet: the batch is untouched


def test_append_adds_memory_rows_and_the_ratio_sets_their_share():
    batch, memory = _sac_like(1, 64), _sac_like(0, 500)

    def draw(n: int) -> ReplayBufferSamples:
        return index_batch(memory, slice(0, n))

    doubled = mix_batch(batch, Replay.Settings(append=True), draw)
    assert len(doubled.observations) == 128
    assert doubled.rewards[:64].eq(1).all() and doubled.rewards[64:].eq(0).all()
    quarter = mix_batch(batch, Replay.Settings(replay_ratio=0.25), draw)
    assert len(quarter.observations) == 64 and int(quarter.rewards.eq(0).sum()) == 16
    assert mix_batch(batch, Replay.Settings(replay_ratio=0.0), draw) is batch


def test_memory_strategies_refuse_a_shared_buffer(toy):
    learner = toy.learner()
    learner.reset_buffer = False
    for cls in STRATEGIES.values():
        with pytest.raises(UserInputError, match="reset_buffer"):
            cls().setup(learner, None)


# -- the toy: less forgetting than fine-tuning ----------------------------------------------------
_finetune: dict[str, float] = {}


@pytest.mark.parametrize("name", list(STRATEGIES))
def test_memory_strategies_forget_less_than_finetuning(toy, name):
    if not _finetune:
        _, errors = toy.run(Finetune())
        _finetune["forgotten"] = errors["after_1"][0]
    strategy = STRATEGIES[name]()
    _, errors = toy.run(strategy)
    assert errors["after_0"][0] < 0.05  # task 0 learned
    assert errors["after_1"][0] < 0.25 * _finetune["forgotten"]  # and far less forgotten
    assert errors["after_1"][1] < 0.6 * errors["after_0"][1]  # while task 1 is learned
    if name in ("agem", "gem"):  # the projection acted, but not on every update
        assert 0 < strategy.stats["projections"] < strategy.stats["updates"] == 400


def _params(module: torch.nn.Module) -> list[torch.Tensor]:
    return [p.detach().clone() for p in module.parameters()]


def same(first: list[torch.Tensor], second: list[torch.Tensor]) -> bool:
    return all(torch.equal(a, b) for a, b in zip(first, second, strict=True))


# -- checkpoints ----------------------------------------------------------------------------------
def _tensors(state) -> list:
    if isinstance(state, torch.Tensor):
        return [state]
    if isinstance(state, torch.nn.Module):  # replay's frozen critics
        return list(state.state_dict().values())
    if isinstance(state, dict):
        return [t for k in sorted(state, key=str) for t in _tensors(state[k])]
    if isinstance(state, tuple | list):
        return [t for v in state if v is not None for t in _tensors(v)]
    return [state]


@pytest.mark.parametrize("name", list(STRATEGIES))
def test_state_dict_round_trip_is_exact(toy, name):
    cls = STRATEGIES[name]
    settings = (
        cls.Settings(reservoir_size=700)
        if name == "perfect_memory"
        else cls.Settings(memory_per_task=300)
    )
    learner = toy.learner()
    strategy = cls(settings)
    learner.attach(strategy)
    strategy.setup(learner, None)
    for task in range(2):
        learner.start_task(task, toy.data[task])
        learner.learn_task(3)
        strategy.on_task_end(task, TaskData(task, buffer=toy.data[task]))
    buffer = io.BytesIO()
    torch.save(strategy.state_dict(), buffer)  # as the checkpoint does
    buffer.seek(0)
    fresh = cls(settings)
    fresh.load_state_dict(torch.load(buffer, weights_only=False))
    fresh.setup(learner, None)  # on resume, setup comes after the load: it must not reseed
    saved, restored = _tensors(strategy.state_dict()), _tensors(fresh.state_dict())
    assert len(saved) == len(restored) > 2
    for a, b in zip(saved, restored, strict=True):
        assert (torch.equal(a, b) and a.dtype == b.dtype) if torch.is_tensor(a) else a == b
    # and both continue identically
    batch = toy.data[1].sample(64)
    assert all(
        torch.equal(a, b)
        for a, b in zip(strategy.sample(batch, 1), fresh.sample(batch, 1), strict=True)
    )
    if name == "perfect_memory":
        assert strategy.reservoir.seen == 1024 and len(fresh.reservoir) == 700


def test_fresh_strategies_with_one_seed_draw_the_same_memory(toy):
    memories = []
    for _ in range(2):
        strategy = Replay(Replay.Settings(memory_per_task=50, seed=3))
        strategy.setup(toy.learner(), None)
        strategy.on_task_end(0, TaskData(0, buffer=toy.data[0]))
        memories.append(strategy.memory.tasks[0].observations)
    assert torch.equal(*memories)


# -- the RL loop ----------------------------------------------------------------------------------
SMOKE = {
    "agem": ["agem.memory_per_task=30", "agem.episodic_batch_size=16"],
    "gem": ["gem.memory_per_task=30", "gem.episodic_batch_size=16"],
    "replay": ["replay.memory_per_task=30"],
    "replay_frozen": ["replay_frozen.memory_per_task=30"],
    "perfect_memory": ["perfect_memory.reservoir_size=64"],
}


@pytest.mark.parametrize("name", list(SMOKE))
def test_runs_in_the_rl_loop_and_resumes_exactly(tiny, name):
    fast_eval = ["eval.every_steps=100", "eval.episodes=1", "eval.deterministic_episodes=0"]
    overrides = [*tiny, *fast_eval, f"strategy={name}", *SMOKE[name]]
    run_dir, results = run(load_config("quick", overrides))
    assert np.array(results["R"]["stochastic"]["success"]).shape == (2, 2)
    final = run_dir.checkpoints / "task001" / "state.pt"
    state = torch.load(final, weights_only=False)["strategy"]
    if name == "perfect_memory":
        kept = state["reservoir"]["storage"]
        assert state["reservoir"]["seen"] == 200 and len(kept.observations) == 64
        tasks = kept.observations[:, -2:].argmax(1)
        assert set(tasks.tolist()) == {0, 1}  # both tasks' transitions are in the reservoir
        assert (kept.observations[:, -2:].sum(1) == 1).all()
    else:
        for task in (0, 1):
            memory = state["memory"][task]
            assert isinstance(memory, ReplayBufferSamples) and len(memory.observations) == 30
            one_hot = torch.eye(2)[task]
            assert (memory.observations[:, -2:] == one_hot).all()
            assert (memory.next_observations[:, -2:] == one_hot).all()
            assert memory.rewards.shape == (30, 1) and memory.actions.shape[0] == 30
    if name == "replay_frozen":  # a critic a task, frozen at its end: task 0's is unchanged
        before = torch.load(run_dir.checkpoints / "task000" / "state.pt", weights_only=False)
        kept = [before["strategy"]["critics"][0], *state["critics"].values()]
        assert sorted(state["critics"]) == [0, 1]
        assert all(torch.equal(a, b) for a, b in zip(*map(_params, kept[:2]), strict=True))
        assert not all(torch.equal(a, b) for a, b in zip(*map(_params, kept[1:]), strict=True))
    if name in ("agem", "gem"):  # task 1 made 51 updates (steps 50..100), each one checked
        assert state["stats"]["updates"] == 51
        assert 0 <= state["stats"]["projections"] <= 51

    # kill after task 0 (drop the last checkpoint) and resume: task 1 is redone identically
    shutil.rmtree(final.parent)
    _, resumed = resume(run_dir.path)
    assert resumed["R"] == results["R"]
    again = torch.load(final, weights_only=False)["strategy"]
    for a, b in zip(_tensors(state), _tensors(again), strict=True):
        assert torch.equal(a, b) if torch.is_tensor(a) else a == b


# -- replay with a frozen critic a task (CoRL 2021's ER) ------------------------------------------


@pytest.mark.parametrize("agent", ["sac", "td3"])
def test_frozen_critic_replay_moves_the_actor_toward_the_frozen_critics_value(agent):
    from robotcl.envs.suites import make_suite
    from robotcl.registry import AGENTS

    suite, cls = make_suite("dclaw10", num_tasks=2), AGENTS.get(agent)
    learner = cls(
        env=cls.wrap_env(suite.make_env(0)), num_tasks=2, net_arch=[32, 32],
        batch_size=16, buffer_size=200, random_steps=20, update_after=20, seed=0, device="cpu",
    )  # fmt: skip
    strategy = FrozenCriticReplay(Replay.Settings(memory_per_task=50))
    assert "critic_snapshot" in strategy.needs and "critic_snapshot" not in Replay().needs
    learner.attach(strategy)
    strategy.setup(learner, suite)
    learner.start_task(0, suite.make_env(0), seed=0)
    learner.learn_task(60)
    strategy.on_task_end(0, learner.task_data())
    snapshot = strategy.critics[0]
    assert snapshot is not learner.critic and not any(
        p.requires_grad for p in snapshot.parameters()
    )
    assert same(_params(snapshot), _params(learner.critic))
    learner.start_task(1, suite.make_env(1), seed=1)

    batch = learner.replay_buffer.sample(16) if learner.replay_buffer.size() else None
    assert batch is None or strategy.sample(batch, 1) is batch  # the critic's batch: no memory
    kept = _params(snapshot)
    state = strategy.generator.get_state()
    rows = strategy.memory.tasks[0].observations

    @torch.no_grad()
    def value() -> float:  # of the policy on the memory, the same action noise each time
        torch.manual_seed(0)
        return float(-learner.policy_value_loss(rows, snapshot))

    before = value()
    optimizer = torch.optim.SGD(learner.actor.parameters(), lr=1e-3)
    for _ in range(20):  # the replay term alone: it raises the old critic's value of the policy
        optimizer.zero_grad()
        learner.critic.optimizer.zero_grad()
        penalty = strategy.penalty(1)
        assert penalty is not None and penalty.shape == ()
        penalty.backward()
        assert all(p.grad is None or not p.grad.any() for p in learner.critic.parameters())
        optimizer.step()
    assert value() > before
    learner.learn_task(60)  # training task 1 moves the live critic, never the snapshot
    assert same(kept, _params(snapshot))
    assert not same(kept, _params(learner.critic))
    assert not torch.equal(state, strategy.generator.get_state())  # a past task drawn each time
    assert strategy.memory_usage().bytes > Replay().memory_usage().bytes


def test_frozen_critic_replay_needs_a_learner_with_a_critic(toy):
    from robotcl.agents.sac import ContinualSAC
    from robotcl.learner import unmet_needs

    frozen = FrozenCriticReplay()
    assert unmet_needs(frozen, toy.learner()) == ["critic_snapshot"]  # bc: refused in prepare
    assert unmet_needs(Replay(), toy.learner()) == []
    assert "critic_snapshot" in ContinualSAC.capabilities


def test_the_critic_on_memory_example_reads_each_task_ends_memories(tiny, load_example):
    import math

    module = load_example("critic_on_memory")
    overrides = [*tiny, "eval.episodes=1", "strategy=replay", *SMOKE["replay"]]
    run_dir, _ = run(load_config("quick", overrides))
    lines = module.critic_on_memory(run_dir.path, rows=20)
    assert [line.split(" | ")[0] for line in lines] == ["task000", "task001"]
    assert lines[0].count("T0 loss") == 1 and "T1" not in lines[0]  # quick: dclaw10's T0, T1
    assert lines[1].count("T0 loss") == 1 and lines[1].count("T1 loss") == 1
    numbers = [float(x) for line in lines for x in line.split() if x[-1].isdigit() and "." in x]
    assert len(numbers) == 9 and all(math.isfinite(x) for x in numbers)
