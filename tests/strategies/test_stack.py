"""Composed strategies (strategy=[a,b]): every member's hooks run, in order; state round-trips."""

from __future__ import annotations

import contextlib

import torch

from robotcl.config import load_config
from robotcl.experiment import build_strategy
from robotcl.strategies.base import Strategy, StrategyStack


class Member(Strategy):
    def __init__(self, tag: str, log: list) -> None:
        super().__init__()
        self.tag, self.log, self.value = tag, log, torch.tensor(float(len(tag)))

    def on_task_start(self, task_id):
        self.log.append((self.tag, "start", task_id))

    def sample(self, batch, task_id):
        return [*batch, self.tag]

    def penalty(self, task_id):
        return self.value

    def adjust_gradients(self, task_id):
        self.log.append((self.tag, "adjust", task_id))

    @contextlib.contextmanager
    def acting(self, task_id):
        self.log.append((self.tag, "enter", task_id))
        yield
        self.log.append((self.tag, "exit", task_id))

    def state_dict(self):
        return {"value": self.value}

    def load_state_dict(self, state):
        self.value = state["value"].clone()


def test_a_stack_calls_each_member_in_order_and_sums_penalties():
    log: list = []
    stack = StrategyStack([Member("a", log), Member("bb", log)])
    stack.on_task_start(3)
    stack.adjust_gradients(3)
    with stack.acting(1):
        log.append(("inside",))
    assert log == [
        ("a", "start", 3),
        ("bb", "start", 3),
        ("a", "adjust", 3),
        ("bb", "adjust", 3),
        ("a", "enter", 1),
        ("bb", "enter", 1),
        ("inside",),
        ("bb", "exit", 1),
        ("a", "exit", 1),
    ]
    assert stack.sample([], 0) == ["a", "bb"]  # the batch passes through both, in order
    assert float(stack.penalty(0)) == 3.0  # 1 + 2


def test_stack_state_round_trips_per_member():
    stack = StrategyStack([Member("a", []), Member("bb", [])])
    state = stack.state_dict()
    fresh = StrategyStack([Member("a", []), Member("bb", [])])
    fresh.members[0].value = torch.tensor(-1.0)
    fresh.load_state_dict(state)
    assert [float(m.value) for m in fresh.members] == [1.0, 2.0]


def test_config_list_builds_a_stack_with_each_members_settings():
    config = load_config(
        "quick", ["strategy=[replay,ewc]", "ewc.coef=7", "replay.replay_ratio=0.25"]
    )
    stack = build_strategy(config)
    assert isinstance(stack, StrategyStack)
    assert [m.name for m in stack.members] == ["replay", "ewc"]
    assert stack.members[1].settings.coef == 7 and stack.members[0].settings.replay_ratio == 0.25
