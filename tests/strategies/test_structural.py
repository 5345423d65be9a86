"""Structural strategies: PackNet's weight ownership, single's fresh learners, cumulative's joint
batches, multitask's interleaved training; on the two-task toy, on small tensors, and once each
inside the real RL loop."""

from __future__ import annotations

import io
from pathlib import Path
from typing import ClassVar

import numpy as np
import torch
from gymnasium import spaces
from stable_baselines3.common.buffers import ReplayBuffer

from robotcl.agents.supervised import BCLearner
from robotcl.config import load_config
from robotcl.experiment import run
from robotcl.registry import register_strategy
from robotcl.strategies.base import Strategy, TaskData
from robotcl.strategies.cumulative import Cumulative, keep
from robotcl.strategies.finetune import Finetune
from robotcl.strategies.packnet import PackNet, PackNetSettings
from robotcl.strategies.single import Single, SingleSettings

STEPS = 400
_FINETUNE: dict = {}


def finetune_errors(toy) -> dict:
    """Fine-tuning's errors on the toy (deterministic, so computed once per session)."""
    if not _FINETUNE:
        _FINETUNE.update(toy.run(Finetune(), steps=STEPS, layer_norm=True)[1])
    return _FINETUNE


def clone_params(learner) -> list[torch.Tensor]:
    return [p.detach().clone() for p in learner.net.parameters()]


def train(toy, learner, strategy, task: int) -> None:
    learner.start_task(task, toy.data[task])
    strategy.on_task_start(task)
    learner.learn_task(STEPS)
    strategy.on_task_end(task, learner.task_data())


# -- PackNet ------------------------------------------------------------------------------
def test_packnet_keeps_earlier_weights_and_outputs_bit_exact(toy):
    learner = toy.learner(layer_norm=True)
    packnet = PackNet(PackNetSettings(retrain_steps=100))
    learner.attach(packnet)
    packnet.setup(learner, None)
    train(toy, learner, packnet, 0)

    kernels = [(p, o) for p, o in zip(packnet.params, packnet.owners, strict=True) if o is not None]
    vectors = [p for p, o in zip(packnet.params, packnet.owners, strict=True) if o is None]
    assert len(kernels) == 2 and len(vectors) == 4  # 2 Linear weights; 2 biases, LayerNorm's 2
    for p, owner in kernels:  # pruned to half, released entries zero before task 1 starts
        assert abs((owner == 0).float().mean().item() - 0.5) < 0.01
        assert (p[owner == 1] == 0).all() and (p[owner == 0] != 0).all()
    after_0 = {id(p): p.detach().clone() for p in packnet.params}
    obs0 = toy.data[0].observations
    with torch.no_grad():
        out_0 = learner.net(obs0)[0]
    err_0, err_1_before = toy.error(learner, 0), toy.error(learner, 1)

    train(toy, learner, packnet, 1)
    for p, owner in kernels:
        old = after_0[id(p)]
        assert torch.equal(p[owner == 0], old[owner == 0])  # task 0's weights untouched
        assert not torch.equal(p[owner == 1], old[owner == 1])  # task 1 trained its own
    for p in vectors:  # biases and LayerNorm frozen after the first task
        assert torch.equal(p, after_0[id(p)])
    before_view = clone_params(learner)
    with packnet.acting(0), torch.no_grad():
        assert torch.equal(learner.net(obs0)[0], out_0)  # task 0 acts exactly as after task 0
        err_0_view = toy.error(learner, 0)
        assert all((p[o == 1] == 0).all() for p, o in kernels)
    assert all(torch.equal(a, b) for a, b in zip(before_view, clone_params(learner), strict=True))
    assert toy.error(learner, 1) < 0.6 * err_1_before  # task 1 is learned with its half,
    # and task 0 is not forgotten at all, where fine-tuning forgets it
    finetune = finetune_errors(toy)
    assert err_0_view == err_0 < 0.05
    assert finetune["after_1"][0] > 20 * err_0_view


def test_packnet_gives_each_task_an_equal_share_of_the_largest_weights():
    learner = BCLearner(6, 2, num_tasks=4, net_arch=[40, 40])
    packnet = PackNet(PackNetSettings(retrain_steps=0))
    learner.attach(packnet)
    packnet.setup(learner, None)
    weights = [(p, o) for p, o in zip(packnet.params, packnet.owners, strict=True) if o is not None]
    for task in range(4):
        learner.current_task = task
        before = [p.detach().abs().clone() for p, _ in weights]
        packnet.on_task_end(task, TaskData(task))
        for (p, owner), mag in zip(weights, before, strict=True):
            if task < 3:  # the kept entries are the largest of those the task had
                assert mag[owner == task].min() >= mag[owner == task + 1].max()
                assert (p[owner == task + 1] == 0).all()
        with torch.no_grad():  # the next task trains its free entries
            for p, owner in weights:
                p.add_((owner == task + 1) * torch.randn_like(p))
    for _, owner in weights:
        shares = torch.bincount(owner.flatten().long(), minlength=4) / owner.numel()
        assert torch.allclose(shares, torch.full((4,), 0.25), atol=0.01), shares


def test_packnet_prune_fraction_overrides_the_equal_share():
    learner = BCLearner(6, 2, num_tasks=4, net_arch=[40])
    packnet = PackNet(PackNetSettings(retrain_steps=0, prune_fraction=0.75))
    packnet.setup(learner, None)
    packnet.on_task_end(0, TaskData(0))
    owner = packnet.owners[0]
    assert abs((owner == 0).float().mean().item() - 0.25) < 0.01


def test_packnet_masks_gradients_and_writes_frozen_entries_back():
    learner = BCLearner(6, 2, num_tasks=3, net_arch=[16], layer_norm=True)
    packnet = PackNet(PackNetSettings(retrain_steps=0))
    packnet.setup(learner, None)
    packnet.on_task_end(0, TaskData(0))
    learner.current_task = 1
    for p in packnet.params:
        p.grad = torch.ones_like(p)
    packnet.adjust_gradients(1)
    frozen = [p.detach().clone() for p in packnet.params]
    for p, owner in zip(packnet.params, packnet.owners, strict=True):
        expected = torch.zeros_like(p) if owner is None else (owner == 1).float()
        assert torch.equal(p.grad, expected)
    with torch.no_grad():  # a step that moves everything, as Adam's momentum could
        for p in packnet.params:
            p.add_(0.5)
    packnet.after_step()
    for p, old, owner in zip(packnet.params, frozen, packnet.owners, strict=True):
        if owner is None:
            assert torch.equal(p, old)
        else:
            assert torch.equal(p[owner == 0], old[owner == 0])
            assert torch.equal(p[owner == 1], old[owner == 1] + 0.5)


def test_packnet_state_dict_round_trips_before_setup():
    learner = BCLearner(6, 2, num_tasks=3, net_arch=[16, 16], layer_norm=True)
    packnet = PackNet(PackNetSettings(retrain_steps=0))
    packnet.setup(learner, None)
    packnet.on_task_end(0, TaskData(0))
    buffer = io.BytesIO()
    torch.save(packnet.state_dict(), buffer)
    buffer.seek(0)
    fresh = PackNet(PackNetSettings(retrain_steps=0))
    fresh.load_state_dict(torch.load(buffer, weights_only=False))  # as a checkpoint does
    fresh.setup(learner, None)
    assert fresh.freeze_1d and fresh.saved is not None
    for a, b in zip(packnet.owners + packnet.saved, fresh.owners + fresh.saved, strict=True):
        assert (a is None and b is None) or torch.equal(a, b)


# -- single -------------------------------------------------------------------------------
def test_single_redraws_every_parameter_as_a_fresh_learner_would(toy):
    learner = toy.learner(seed=0, layer_norm=True)
    single = Single(SingleSettings(seed=0))
    learner.attach(single)
    single.setup(learner, None)
    initial = clone_params(learner)
    train(toy, learner, single, 0)
    trained = clone_params(learner)
    rng = torch.get_rng_state()
    learner.start_task(1, toy.data[1])
    single.on_task_start(1)
    redrawn = clone_params(learner)
    assert torch.equal(torch.get_rng_state(), rng)  # the run's own random stream is untouched
    fresh = clone_params(toy.learner(seed=1, layer_norm=True))  # seed 0 * 1000 + task 1
    assert all(torch.equal(a, b) for a, b in zip(redrawn, fresh, strict=True))
    weights = [i for i, p in enumerate(trained) if p.dim() > 1]
    assert all(not torch.equal(redrawn[i], trained[i]) for i in weights)
    assert all(not torch.equal(redrawn[i], initial[i]) for i in weights)  # not task 0's draw
    assert not learner.optimizer.state  # fresh optimizer
    single.on_task_start(1)  # the same seed draws the same values again
    assert all(torch.equal(a, b) for a, b in zip(redrawn, clone_params(learner), strict=True))


# -- cumulative ---------------------------------------------------------------------------
def test_cumulative_trains_on_equal_shares_and_forgets_much_less(toy):
    multitask = Cumulative()
    learner, errors = toy.run(multitask, steps=STEPS, layer_norm=True)
    batch = toy.data[1].sample(64)
    mixed = multitask.sample(batch, 1)
    assert len(mixed.observations) == 64
    assert mixed.observations[:, -2:].sum(0).tolist() == [32.0, 32.0]
    assert torch.equal(mixed.observations[:32], batch.observations[:32])  # current share first
    mixed_0 = multitask.sample(toy.data[0].sample(64), 0)  # its own memory is not "another"
    assert mixed_0.observations[:, -2:].sum(0).tolist() == [32.0, 32.0]
    assert errors["after_1"][1] < 0.5 * errors["after_0"][1]
    assert finetune_errors(toy)["after_1"][0] > 20 * errors["after_1"][0]


def test_cumulative_keeps_a_trimmed_copy_of_a_replay_buffer():
    obs_space = spaces.Box(-1, 1, (3,), np.float32)
    act_space = spaces.Box(-1, 1, (2,), np.float32)
    buffer = ReplayBuffer(50, obs_space, act_space, device="cpu", handle_timeout_termination=True)
    for i in range(10):
        obs = np.full((1, 3), i, np.float32)
        buffer.add(obs, obs + 1, np.zeros((1, 2), np.float32), np.array([i]), np.array([0]), [{}])
    kept = keep(buffer)
    assert kept.size() == 10 and kept.observations.shape[0] == 10
    buffer.reset()
    buffer.add(obs * 0 + 99, obs, np.zeros((1, 2), np.float32), np.array([0]), np.array([0]), [{}])
    batch = kept.sample(200)
    assert set(batch.observations[:, 0].tolist()) == set(range(10))  # every stored row, no more
    assert torch.equal(batch.next_observations, batch.observations + 1)
    assert torch.equal(batch.rewards[:, 0], batch.observations[:, 0])

    multitask = Cumulative()
    multitask.on_task_end(0, TaskData(0, buffer=buffer))
    memory = io.BytesIO()
    torch.save(multitask.state_dict(), memory)
    memory.seek(0)
    fresh = Cumulative()
    fresh.load_state_dict(torch.load(memory, weights_only=False))
    assert np.array_equal(fresh.memories[0].observations, multitask.memories[0].observations)


# -- inside the RL loop -------------------------------------------------------------------
class Probe(Strategy):
    """Records, per task, the updates and the batches' task mix, and the actor at the task's
    start and end (stacked after the strategy under test)."""

    name = "structural_probe"
    log: ClassVar[dict] = {}

    def on_task_start(self, task_id):
        learner = self.learner
        same_target = all(
            torch.equal(a, b)
            for a, b in zip(
                learner.critic.parameters(), learner.critic_target.parameters(), strict=True
            )
        )
        self.log[("start", task_id)] = (clone_actor(learner), same_target)
        self.log[("updates", task_id)] = 0
        self.log[("mix", task_id)] = torch.zeros(2)

    def sample(self, batch, task_id):
        self.log[("updates", task_id)] += 1
        self.log[("mix", task_id)] += batch.observations[:, -2:].sum(0).cpu()
        return batch

    def on_task_end(self, task_id, data):
        self.log[("end", task_id)] = clone_actor(self.learner)
        self.log[("stored", task_id)] = data.buffer.size()


register_strategy("structural_probe")(Probe)


def clone_actor(learner) -> list[torch.Tensor]:
    return [p.detach().clone() for p in learner.actor.parameters()]


def tiny_dir(tiny) -> Path:
    return Path(next(o for o in tiny if o.startswith("runs_dir=")).split("=", 1)[1])


def run_tiny(tiny, *overrides) -> dict:
    Probe.log = {}
    _, results = run(load_config("quick", [*tiny, "eval.every_steps=100", *overrides]))
    assert len(results["R"]["stochastic"]["success"]) == 2
    return results


def test_packnet_runs_in_the_rl_loop(tiny):
    results = run_tiny(tiny, "strategy=[packnet,structural_probe]", "packnet.retrain_steps=5")
    assert Probe.log[("updates", 0)] == 51 + 5  # 51 updates, then 5 retraining steps
    assert Probe.log[("updates", 1)] == 51  # the last task is not pruned
    assert results["completed_tasks"] == 2
    (path,) = tiny_dir(tiny).rglob("task000/state.pt")
    state = torch.load(path, weights_only=False)["strategy"]["0:packnet"]
    kernels = [
        (o, s) for o, s in zip(state["owners"], state["saved"], strict=True) if o is not None
    ]
    assert len(kernels) == 2
    for owner, saved in kernels:
        assert abs((owner == 0).float().mean().item() - 0.5) < 0.01
        assert (saved[owner == 1] == 0).all()


def test_single_runs_in_the_rl_loop(tiny):
    run_tiny(tiny, "strategy=[single,structural_probe]")
    end_0 = Probe.log[("end", 0)]
    start_1, target_is_critic = Probe.log[("start", 1)]
    assert target_is_critic
    weights = [i for i, p in enumerate(end_0) if p.dim() > 1]
    assert all(not torch.equal(start_1[i], end_0[i]) for i in weights)


def test_cumulative_runs_in_the_rl_loop(tiny):
    run_tiny(tiny, "strategy=[cumulative,structural_probe]")
    assert Probe.log[("mix", 0)].tolist() == [51 * 32, 0]
    assert Probe.log[("mix", 1)].tolist() == [51 * 16, 51 * 16]  # equal shares of both tasks


def test_multitask_trains_every_task_from_the_first_step_in_one_buffer(tiny):
    run_tiny(tiny, "strategy=[multitask,structural_probe]")
    # 40-step episodes alternate T0, T1, T0: updates from step 50 already see both tasks
    first = Probe.log[("mix", 0)]
    assert first[0] > 0 and first[1] > 0 and first.sum() == 51 * 32
    assert Probe.log[("updates", 1)] == 100  # the second stage continues: no new warm-up
    assert Probe.log[("stored", 0)] == 100 and Probe.log[("stored", 1)] == 200  # one buffer
    second = Probe.log[("mix", 1)]
    assert second[0] > 0 and second[1] > 0
