"""L2, EWC and MAS: less forgetting on the toy, importances against hand computation, the penalty's
life cycle, parameter groups, checkpoints, and one run each through the RL loop."""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from torch import nn

from robotcl.agents.supervised import SupervisedBatch
from robotcl.config import load_config
from robotcl.errors import UserInputError
from robotcl.experiment import Experiment
from robotcl.outputs import RunDirectory
from robotcl.strategies.base import TaskData
from robotcl.strategies.ewc import EWC, EWCSettings
from robotcl.strategies.finetune import Finetune
from robotcl.strategies.l2 import L2
from robotcl.strategies.mas import MAS
from robotcl.strategies.regularizers import gaussian_fisher, output_norm_sensitivity

EPS = 1e-6  # Continual World's padding of sigma^2 in the Fisher


# -- small fixtures ---------------------------------------------------------------------------
class FixedBuffer:
    """A buffer whose ``sample(n)`` returns its first n rows, so importances are exact."""

    def __init__(self, observations: torch.Tensor) -> None:
        self.observations = observations

    def size(self) -> int:
        return len(self.observations)

    def sample(self, n: int) -> SupervisedBatch:
        return SupervisedBatch(self.observations[:n], self.observations[:n])


class LinearGaussian(nn.Module):
    """mean = W x (+ b), log-std a free parameter vector (or no std at all)."""

    def __init__(self, in_dim: int, out_dim: int, with_std: bool, bias: bool = False) -> None:
        super().__init__()
        self.W = nn.Linear(in_dim, out_dim, bias=bias)
        self.s = nn.Parameter(torch.tensor([0.3, -0.5])[:out_dim]) if with_std else None

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        mean = self.W(x)
        return mean, None if self.s is None else self.s.expand_as(mean)


class TinyLearner:
    """Just the part of the learner protocol a regulariser uses."""

    def __init__(self, net: nn.Module, extra: list[nn.Parameter] | None = None) -> None:
        self.net = net
        self.extra = extra or []

    def policy_distribution(self) -> nn.Module:
        return self.net

    def parameter_groups(self) -> dict[str, list[nn.Parameter]]:
        groups = {"actor_trunk": list(self.net.W.parameters()), "actor_heads": []}
        if getattr(self.net, "s", None) is not None:
            groups["actor_heads"] = [self.net.s]
        if self.extra:
            groups["critic_trunk"] = self.extra
        return groups


def x_data(n: int = 6, dim: int = 3) -> torch.Tensor:
    x = torch.randn(n, dim, generator=torch.Generator().manual_seed(1))
    x[:, -1] = 0  # a column whose Fisher is zero: clipped to min_fisher
    return x


FINETUNE: dict[str, dict] = {}


# -- the mechanism on the toy -----------------------------------------------------------------
# coefs suited to the toy (the published ones suit SAC's loss scale): each keeps task 0's error
# under a quarter of fine-tuning's while task 1 is still learned
@pytest.mark.parametrize(
    "strategy",
    [L2(L2.Settings(coef=0.03)), EWC(EWC.Settings(coef=3.0)), MAS(MAS.Settings(coef=0.3))],
    ids=["l2", "ewc", "mas"],
)
def test_regularizers_forget_less_than_finetuning_and_still_learn(toy, strategy):
    if "finetune" not in FINETUNE:  # the same deterministic run for every strategy
        FINETUNE["finetune"] = toy.run(Finetune())[1]
    finetune = FINETUNE["finetune"]
    _, errors = toy.run(strategy)
    assert errors["after_0"][0] < 0.05  # task 0 learned as with fine-tuning,
    assert errors["after_1"][0] < 0.25 * finetune["after_1"][0]  # forgotten far less,
    assert errors["after_1"][1] < 0.7 * errors["after_0"][1]  # and task 1 still learned
    assert strategy.tasks == [0, 1]


# -- importances against hand computation -----------------------------------------------------
@pytest.mark.parametrize("with_std", [True, False], ids=["gaussian", "no-std"])
def test_ewc_fisher_equals_hand_computed_on_linear_gaussian(with_std):
    torch.manual_seed(0)
    net = LinearGaussian(3, 2, with_std)
    x = x_data()
    ewc = EWC(
        EWC.Settings(
            groups=["actor_trunk", "actor_heads"], fisher_batches=2, fisher_batch_size=len(x)
        )
    )
    ewc.setup(TinyLearner(net), None)
    ewc.on_task_end(0, TaskData(0, FixedBuffer(x)))

    # d mu_a / d W_ij = [a = i] x_j and d sigma_a / d s_i = [a = i] sigma_i, so per sample
    # F_W[i, j] = x_j^2 / (sigma_i^2 + eps) and F_s[i] = 2 sigma_i^2 / (sigma_i^2 + eps)
    var = net.s.detach().exp() ** 2 + EPS if with_std else torch.ones(2)
    per_sample = x[:, None, :] ** 2 / var[None, :, None]
    expected_w = per_sample.clamp_min(1e-5).mean(0)
    torch.testing.assert_close(ewc.importance[0], expected_w, rtol=1e-5, atol=1e-8)
    torch.testing.assert_close(ewc.importance[0][:, -1], torch.full((2,), 1e-5))  # clipped
    if with_std:
        torch.testing.assert_close(ewc.importance[1], 2 * (var - EPS) / var, rtol=1e-5, atol=0)


def test_online_ewc_decays_the_old_fisher_by_gamma():
    torch.manual_seed(0)
    x0, x1 = x_data(), 2 * x_data() + 1
    runs = {}
    for online in (False, True):
        net = LinearGaussian(3, 2, with_std=True)
        ewc = EWC(EWC.Settings(online=online, gamma=0.5, fisher_batches=1, fisher_batch_size=6))
        ewc.setup(TinyLearner(net), None)
        ewc.on_task_end(0, TaskData(0, FixedBuffer(x0)))
        f0 = ewc.importance[0].clone()
        ewc.on_task_end(1, TaskData(1, FixedBuffer(x1)))
        f1 = gaussian_fisher(net, {"W.weight": net.W.weight.detach()}, x1, min_value=1e-5)
        runs[online] = (ewc.importance[0], f0, f1["W.weight"])
    total, f0, f1 = runs[False]
    torch.testing.assert_close(total, f0 + f1)  # Continual World: summed over tasks
    online, f0, f1 = runs[True]
    torch.testing.assert_close(online, 0.5 * f0 + f1)  # online: gamma * old + new


@pytest.mark.parametrize("include_log_std", [True, False])
def test_mas_importance_equals_hand_computed_on_linear_map(include_log_std):
    torch.manual_seed(0)
    net = LinearGaussian(3, 2, with_std=True, bias=True)
    x = x_data()
    mas = MAS(
        MAS.Settings(
            groups=["actor_trunk", "actor_heads"],
            importance_batches=1,
            importance_batch_size=len(x),
            include_log_std=include_log_std,
        )
    )
    mas.setup(TinyLearner(net), None)
    mas.on_task_end(0, TaskData(0, FixedBuffer(x)))

    # d ||W x + b||^2 / d W = 2 (W x + b) x^T, / d b = 2 (W x + b); d ||s||^2 / d s = 2 s
    y = net(x)[0].detach()
    w, b, s = mas.importance
    torch.testing.assert_close(w, (2 * y[:, :, None] * x[:, None, :]).abs().mean(0))
    torch.testing.assert_close(b, (2 * y).abs().mean(0))
    expected_s = 2 * net.s.detach().abs() if include_log_std else torch.zeros(2)
    torch.testing.assert_close(s, expected_s)


class SmallGaussianMLP(nn.Module):
    """A nonlinear policy with a state-dependent log-std, to check the per-sample Jacobians."""

    def __init__(self) -> None:
        super().__init__()
        self.trunk = nn.Sequential(nn.Linear(3, 5), nn.Tanh())
        self.mu, self.log_std = nn.Linear(5, 2), nn.Linear(5, 2)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.trunk(x)
        return self.mu(h), self.log_std(h)


def test_vmapped_chunked_derivatives_equal_a_per_sample_autograd_loop():
    torch.manual_seed(0)
    net, x = SmallGaussianMLP(), torch.randn(7, 3)
    params = dict(net.named_parameters())
    fisher = {n: torch.zeros_like(p) for n, p in params.items()}
    mas = {n: torch.zeros_like(p) for n, p in params.items()}
    for row in x:
        mean, log_std = net(row[None])
        std = log_std.exp()[0]
        for a in range(2):
            d_mu, d_std = (
                torch.autograd.grad(
                    out, list(params.values()), retain_graph=True, allow_unused=True
                )
                for out in (mean[0, a], std[a])
            )
            for n, gm, gs in zip(params, d_mu, d_std, strict=True):
                gm, gs = (torch.zeros_like(params[n]) if g is None else g for g in (gm, gs))
                fisher[n] += (gm**2 + 2 * gs**2) / (std[a].detach() ** 2 + EPS) / len(x)
        norm = mean.pow(2).sum() + log_std.pow(2).sum()
        for n, g in zip(params, torch.autograd.grad(norm, list(params.values())), strict=True):
            mas[n] += g.abs() / len(x)
    detached = {n: p.detach() for n, p in params.items()}
    for budget in (1, 2**30):  # one sample per chunk, and the whole batch at once
        got = gaussian_fisher(net, detached, x, budget=budget)
        for n in params:
            torch.testing.assert_close(got[n], fisher[n], rtol=1e-4, atol=1e-7)
        got = output_norm_sensitivity(net, detached, x, include_log_std=True, budget=budget)
        for n in params:
            torch.testing.assert_close(got[n], mas[n], rtol=1e-4, atol=1e-7)


# -- the penalty, the groups, the checkpoints -------------------------------------------------
@pytest.mark.parametrize("cls", [L2, EWC, MAS], ids=["l2", "ewc", "mas"])
def test_penalty_is_none_then_zero_at_the_anchor_then_positive_when_moved(toy, cls):
    learner = toy.learner()
    strategy = cls(cls.Settings(coef=2.0, **_small(cls)))
    strategy.setup(learner, None)
    assert strategy.penalty(0) is None  # nothing anchored before a task ends
    strategy.on_task_end(0, TaskData(0, toy.data[0]))
    assert strategy.penalty(1).item() == 0.0  # theta == anchor
    first = learner.net.latent_pi[0].weight
    with torch.no_grad():
        first[0, 0] += 0.1
    penalty = strategy.penalty(1)
    w = strategy.importance[0][0, 0]
    torch.testing.assert_close(penalty, 2.0 * w * 0.1**2, rtol=1e-4, atol=0)
    assert penalty.item() > 0
    penalty.backward()  # the gradient pulls the moved weight back, and only it
    assert first.grad[0, 0] > 0 and first.grad.abs().sum() == first.grad[0, 0]


def _small(cls) -> dict:
    if cls is EWC:
        return {"fisher_batches": 2, "fisher_batch_size": 64}
    if cls is MAS:
        return {"importance_batches": 2, "importance_batch_size": 64}
    return {}


def test_groups_restrict_what_is_anchored(toy):
    learner = toy.learner()
    trunk, heads = learner.parameter_groups().values()
    default, on_heads = L2(), L2(L2.Settings(groups=["actor_heads"]))
    for s in (default, on_heads):
        s.setup(learner, None)
        s.on_task_end(0, TaskData(0, toy.data[0]))
    assert [id(p) for p in default.params] == [id(p) for p in trunk]  # the trunk only by default
    assert [id(p) for p in on_heads.params] == [id(p) for p in heads]
    with torch.no_grad():
        heads[0].add_(1.0)
    assert default.penalty(1).item() == 0.0 and on_heads.penalty(1).item() > 0
    with torch.no_grad():
        trunk[0].add_(1.0)
    assert default.penalty(1).item() > 0


def test_bad_groups_raise_user_input_errors_naming_them(toy):
    with pytest.raises(UserInputError, match="ewc.groups.*actor_trunc"):
        EWC(EWC.Settings(groups=["actor_trunc"])).setup(toy.learner(), None)
    # a group the policy does not compute (the critic) cannot be weighed by EWC or MAS
    net, critic = LinearGaussian(3, 2, with_std=True), nn.Parameter(torch.zeros(2))
    mas = MAS(MAS.Settings(groups=["critic_trunk"]))
    with pytest.raises(UserInputError, match="mas.groups.*critic_trunk"):  # at set-up already
        mas.setup(TinyLearner(net, extra=[critic]), None)
    with pytest.raises(UserInputError, match="ewc.coef"):
        load_config("quick", ["strategy=ewc", "ewc.coef=-1"])


def test_state_dict_round_trip_restores_exact_tensors(toy):
    settings = EWCSettings(coef=3.0, online=True, fisher_batches=2, fisher_batch_size=64)
    learner, _ = toy.run(EWC(settings), steps=50)
    saved = learner.strategy.state_dict()
    buffer = io.BytesIO()
    torch.save(saved, buffer)  # as a checkpoint stores it
    buffer.seek(0)
    fresh = EWC(settings)
    fresh.load_state_dict(torch.load(buffer))
    fresh.setup(learner, None)
    assert fresh.tasks == [0, 1]
    for name in ("anchors", "importance"):
        for a, b in zip(getattr(fresh, name), saved[name], strict=True):
            assert torch.equal(a, b) and a.data_ptr() != b.data_ptr()
    with torch.no_grad():
        learner.net.latent_pi[0].weight.mul_(1.1)
    assert fresh.penalty(2).item() == learner.strategy.penalty(2).item() > 0


# -- through the RL loop ----------------------------------------------------------------------
SMALL = {
    "l2": [],
    "ewc": ["ewc.fisher_batches=1", "ewc.fisher_batch_size=32"],
    "mas": ["mas.importance_batches=1", "mas.importance_batch_size=32"],
}


@pytest.mark.parametrize("name", ["l2", "ewc", "mas"])
def test_runs_inside_the_rl_loop(tiny, name):
    config = load_config("quick", [*tiny, f"strategy={name}", *SMALL[name]])
    experiment, run_dir = Experiment(config), RunDirectory.create(config)
    run_dir.write_config(config.model_dump())
    results = experiment.run(run_dir)
    assert np.array(results["R"]["stochastic"]["success"]).shape == (2, 2)

    events = EventAccumulator(str(run_dir.tb), size_guidance={"scalars": 0})
    events.Reload()
    penalties = [e.value for e in events.Scalars("train/penalty")]
    assert penalties and all(np.isfinite(penalties)) and max(penalties) > 0

    strategy, learner = experiment.strategy, experiment.learner
    assert strategy.tasks == [0, 1]
    groups = learner.parameter_groups()
    assert [id(p) for p in strategy.params] == [id(p) for p in groups["actor_trunk"]]
    learner.policy.zero_grad(set_to_none=True)  # the penalty moves the actor's trunk only
    with torch.no_grad():
        groups["actor_trunk"][0].add_(0.01)
    strategy.penalty(1).backward()
    assert groups["actor_trunk"][0].grad.abs().sum() > 0
    critic = groups["critic_trunk"] + groups["critic_heads"] + groups["actor_heads"]
    assert all(p.grad is None for p in critic)

    state = torch.load(run_dir.checkpoints / "task000" / "state.pt", weights_only=False)
    assert state["strategy"]["tasks"] == [0]  # the checkpoint after task 0 holds its anchor
    assert len(state["strategy"]["anchors"]) == len(groups["actor_trunk"])
