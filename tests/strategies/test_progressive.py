"""Progressive networks: frozen earlier columns, exact old outputs, laterals, checkpoints; on the
two-task toy, on a small BC learner, and once inside the real RL loop."""

from __future__ import annotations

import io
from pathlib import Path
from typing import ClassVar

import pytest
import torch

from robotcl.agents.sac import ContinualSAC
from robotcl.agents.supervised import BCLearner
from robotcl.config import load_config
from robotcl.errors import UserInputError
from robotcl.experiment import run
from robotcl.registry import register_strategy
from robotcl.strategies.base import Strategy
from robotcl.strategies.finetune import Finetune
from robotcl.strategies.progressive import Progressive, ProgressiveSettings, ProgressiveTrunk

STEPS = 400


def attached(learner, strategy: Progressive) -> Progressive:
    learner.attach(strategy)
    strategy.setup(learner, None)
    return strategy


def train(toy, learner, strategy, task: int, steps: int = STEPS) -> None:
    learner.start_task(task, toy.data[task])
    strategy.on_task_start(task)
    learner.learn_task(steps)
    strategy.on_task_end(task, learner.task_data())


def column_params(trunk: ProgressiveTrunk, k: int) -> list[torch.Tensor]:
    return [p.detach().clone() for p in trunk.columns[k].parameters()]


def optimizer_ids(optimizer) -> list[int]:
    return [id(p) for g in optimizer.param_groups for p in g["params"]]


def same(a: list[torch.Tensor], b: list[torch.Tensor]) -> bool:
    return len(a) == len(b) and all(torch.equal(x, y) for x, y in zip(a, b, strict=True))


def small_learner(seed: int = 0, **kwargs) -> BCLearner:
    return BCLearner(7, 2, num_tasks=3, net_arch=[8, 8], seed=seed, **kwargs)


# -- the toy ------------------------------------------------------------------------------
def test_earlier_column_is_frozen_and_task_0_is_kept_bit_exact(toy):
    learner = toy.learner(layer_norm=True)
    progressive = attached(learner, Progressive())
    trunk = learner.net.latent_pi
    assert isinstance(trunk, ProgressiveTrunk) and len(trunk.columns) == 1
    train(toy, learner, progressive, 0)
    obs0 = toy.data[0].observations
    with torch.no_grad():
        out_0 = learner.net(obs0)[0]
    err_0 = toy.error(learner, 0)
    col_0 = column_params(trunk, 0)

    learner.start_task(1, toy.data[1])
    progressive.on_task_start(1)
    assert len(trunk.columns) == 2 and trunk.active == 1
    heads = list(learner.net.mu.parameters())
    assert optimizer_ids(learner.optimizer) == [
        id(p) for p in [*trunk.columns[1].parameters(), *heads]
    ]  # column 0 is out of the optimizer
    err_1_before = toy.error(learner, 1)
    learner.reference_loss(toy.data[1].sample(64)).backward()
    assert all(p.grad is None and not p.requires_grad for p in trunk.columns[0].parameters())
    assert all(p.grad is not None for p in trunk.columns[1].parameters())
    assert all(bool(lat.weight.grad.abs().sum() > 0) for lat in trunk.columns[1].laterals)
    learner.optimizer.zero_grad()
    learner.learn_task(STEPS)
    progressive.on_task_end(1, learner.task_data())

    assert same(col_0, column_params(trunk, 0))  # bit-identical after 400 Adam steps
    with progressive.acting(0), torch.no_grad():
        assert trunk.active == 0
        assert torch.equal(learner.net(obs0)[0], out_0)  # task 0 acts exactly as after task 0
        err_0_kept = toy.error(learner, 0)
    assert trunk.active == 1  # the training column is restored
    assert toy.error(learner, 1) < 0.3 * err_1_before  # task 1 is learned by column 1
    _, finetune = toy.run(Finetune(), steps=STEPS, layer_norm=True)
    assert err_0_kept == err_0 < 0.05
    assert finetune["after_1"][0] > 20 * err_0_kept  # where fine-tuning forgets task 0


# -- structure ----------------------------------------------------------------------------
@pytest.mark.parametrize("lateral", [True, False])
def test_column_1_reads_column_0_through_the_laterals(lateral):
    learner = small_learner(layer_norm=True)
    progressive = attached(learner, Progressive(ProgressiveSettings(lateral=lateral)))
    progressive.on_task_start(1)
    trunk = learner.net.latent_pi
    x = torch.randn(16, 4)
    obs = torch.cat([x, torch.zeros(16, 3)], 1)
    obs[:, -2] = 1  # task 1
    with torch.no_grad():
        before = trunk(x)
        actions = learner.net(obs)[0]
        assert before.shape == (16, 8) and actions.shape == (16, 2)  # heads work unchanged
        trunk.columns[0].blocks[-1][0].weight.add_(1.0)  # column 0's last block feeds no one
        assert torch.equal(trunk(x), before)
        trunk.columns[0].blocks[0][0].weight.add_(1.0)  # its first block feeds column 1's second
        changed = not torch.equal(trunk(x), before)
    assert changed == lateral
    assert len(trunk.columns[1].laterals) == (1 if lateral else 0)


def test_acting_uses_the_tasks_column_and_the_newest_for_unseen_tasks():
    learner = small_learner()
    progressive = attached(learner, Progressive())
    progressive.on_task_start(1)
    trunk = learner.net.latent_pi
    seen = []
    for task in range(3):
        with progressive.acting(task):
            seen.append(trunk.active)
    assert seen == [0, 1, 1] and trunk.active == 1


def test_parameters_grow_as_documented():
    learner = small_learner()  # trunk 4 -> 8 -> 8
    progressive = attached(learner, Progressive())
    trunk = learner.net.latent_pi
    column, lateral = (4 + 1) * 8 + (8 + 1) * 8, 8 * 8  # P and S of the module docs
    for k in range(3):
        progressive.on_task_start(k)
        columns = k + 1
        expected = columns * column + columns * (columns - 1) // 2 * lateral
        assert sum(p.numel() for p in trunk.parameters()) == expected


def test_groups_are_checked_against_the_learner():
    learner = small_learner()
    with pytest.raises(UserInputError, match="progressive.groups"):
        attached(learner, Progressive(ProgressiveSettings(groups=["critic_trunk"])))
    with pytest.raises(UserInputError, match="progressive"):
        load_config("quick", ["strategy=progressive", "progressive.groups=[encoder]"])
    config = load_config("quick", ["strategy=progressive", "progressive.lateral=false"])
    assert config.strategy_settings("progressive") == {"groups": None, "lateral": False}


# -- checkpoints --------------------------------------------------------------------------
def test_state_dict_rebuilds_the_network_on_a_fresh_learner(toy):
    learner = toy.learner(layer_norm=True)
    progressive = attached(learner, Progressive())
    train(toy, learner, progressive, 0, steps=20)
    train(toy, learner, progressive, 1, steps=20)
    buffer = io.BytesIO()
    torch.save(progressive.state_dict(), buffer)
    buffer.seek(0)

    fresh = toy.learner(seed=1, layer_norm=True)  # other initial weights
    restored = Progressive()
    restored.load_state_dict(torch.load(buffer, weights_only=False))  # as a checkpoint does
    rng = torch.get_rng_state()
    attached(fresh, restored)
    assert torch.equal(torch.get_rng_state(), rng)  # no draws: a resumed run stays exact
    old_trunk, new_trunk = learner.net.latent_pi, fresh.net.latent_pi
    x = toy.data[0].observations[:, :4]
    for task in range(2):  # the trunk alone comes back from the strategy state
        with progressive.acting(task), restored.acting(task), torch.no_grad():
            assert torch.equal(new_trunk(x), old_trunk(x))
    assert new_trunk.active == 1 and not any(
        p.requires_grad for p in new_trunk.columns[0].parameters()
    )
    heads = list(fresh.net.mu.parameters())
    assert optimizer_ids(fresh.optimizer) == [
        id(p) for p in [*new_trunk.columns[1].parameters(), *heads]
    ]
    fresh.net.load_state_dict(learner.net.state_dict())  # the learner's own state now fits
    obs = toy.data[1].observations
    with torch.no_grad():
        assert torch.equal(fresh.net(obs)[0], learner.net(obs)[0])
    state = restored.state_dict()
    assert state["columns"] == 2 and state["training"] == 1
    assert same(list(state["trunks"]["actor"].values()), list(old_trunk.state_dict().values()))
    mismatched = Progressive(ProgressiveSettings(lateral=False))
    mismatched.load_state_dict(state)
    with pytest.raises(ValueError, match="settings"):  # a lateral-free network cannot take it
        mismatched.setup(toy.learner(layer_norm=True), None)


# -- inside the RL loop -------------------------------------------------------------------
class Probe(Strategy):
    """Stacked after progressive: records, at each task's end, the trunks and the actor's
    outputs on fixed observations acting on each task."""

    name = "progressive_probe"
    log: ClassVar[dict] = {}

    def on_task_end(self, task_id, data):
        learner = self.learner
        actor, critic = learner.actor.latent_pi, learner.critic.q_networks[0][0]
        self.log[task_id] = {
            "columns": [len(t.columns) for t in trunks(learner)],
            "actor_col_0": column_params(actor, 0),
            "critic_col_0": column_params(critic, 0),
            "pairs": [
                (a.shape, b.shape)
                for a, b in zip(
                    learner.critic.parameters(), learner.critic_target.parameters(), strict=True
                )
            ],
            "actor_optimizer": optimizer_ids(learner.actor.optimizer),
            "actor_trainable": [id(p) for p in learner.actor.parameters() if p.requires_grad],
            "outputs": actor_outputs(learner),
        }


register_strategy("progressive_probe")(Probe)


def trunks(learner) -> list[ProgressiveTrunk]:
    nets = [*learner.critic.q_networks, *learner.critic_target.q_networks]
    return [learner.actor.latent_pi, *(q[0] for q in nets)]


def actor_outputs(learner) -> list[torch.Tensor]:
    """The Gaussian's mean and log-std on fixed observations of each task, acting on it."""
    dim, n = int(learner.observation_space.shape[0]), learner.num_tasks
    obs = torch.randn(8, dim, generator=torch.Generator().manual_seed(0)).to(learner.device)
    outputs = []
    for task in range(n):
        obs[:, -n:] = 0
        obs[:, dim - n + task] = 1
        with learner.strategy.acting(task), torch.no_grad():
            outputs += [out.cpu() for out in learner.policy_distribution()(obs)]
    return outputs


class ShapedSAC(ContinualSAC):
    """ContinualSAC whose ``load(..., prepare=fn)`` lets a strategy grow the networks before
    SB3 loads the weights: the change resuming a progressive run needs (see the reply)."""

    def _setup_model(self) -> None:
        super()._setup_model()
        prepare = self.__dict__.pop("prepare", None)
        if prepare is not None:
            prepare(self)


def test_progressive_runs_in_the_rl_loop_and_its_checkpoint_loads(tiny):
    Probe.log = {}
    _, results = run(load_config("quick", [*tiny, "strategy=[progressive,progressive_probe]"]))
    assert [len(row) for row in results["R"]["stochastic"]["success"]] == [2, 2]
    end_0, end_1 = Probe.log[0], Probe.log[1]
    assert (
        end_0["columns"] == [1] * 5 and end_1["columns"] == [2] * 5
    )  # actor, 2 critics, 2 targets
    assert all(a == b for a, b in end_1["pairs"])  # polyak pairs parameters one to one
    assert same(end_0["actor_col_0"], end_1["actor_col_0"])  # frozen during task 1
    assert same(end_0["critic_col_0"], end_1["critic_col_0"])
    assert end_1["actor_optimizer"] == end_1["actor_trainable"]  # column 1 and the heads
    assert same(end_0["outputs"][:2], end_1["outputs"][:2])  # task 0 acts as after task 0
    assert not same(end_0["outputs"][2:], end_1["outputs"][2:])  # task 1 was trained

    runs = Path(next(o for o in tiny if o.startswith("runs_dir=")).split("=", 1)[1])
    (checkpoint,) = runs.rglob("task001")
    state = torch.load(checkpoint / "state.pt", weights_only=False)["strategy"]["0:progressive"]
    assert state["columns"] == 2
    assert set(state["trunks"]) == {"actor", "critic.0", "critic.1"} | {
        "critic_target.0",
        "critic_target.1",
    }
    progressive = Progressive()
    progressive.load_state_dict(state)
    learner = ShapedSAC.load(checkpoint / "learner.zip", device="cpu", prepare=progressive.prepare)
    learner.attach(progressive)
    progressive.setup(learner, None)  # keeps what prepare built and SB3 then loaded
    assert [len(t.columns) for t in trunks(learner)] == [2] * 5
    assert same(actor_outputs(learner), end_1["outputs"])  # the same network, bit for bit
    assert learner.actor.optimizer.state  # Adam's state loaded from learner.zip, not reset
