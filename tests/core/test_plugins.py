"""Plugins: the README's custom strategy works as printed; entry points register strategies."""

from __future__ import annotations

import re
from pathlib import Path

import torch
from fakes import FakeEntryPoint

from robotcl import registry
from robotcl.cli import main
from robotcl.registry import Registry
from robotcl.strategies import Strategy

README = Path(__file__).resolve().parents[2] / "README.md"


def readme_strategy_code() -> str:
    section = README.read_text().split("## Writing your own strategy", 1)[1]
    return re.findall(r"```python\n(.*?)```", section, re.S)[0]


def test_readme_custom_strategy_is_complete_and_freezes_the_trunk(tiny, capsys):
    code = readme_strategy_code()
    assert 15 <= len(code.strip().splitlines()) <= 30  # "about 20 lines"
    namespace: dict = {}
    exec(compile(code, "README.md", "exec"), namespace)
    from robotcl.config import load_config
    from robotcl.experiment import Experiment

    experiment = Experiment(load_config("quick", [*tiny, "strategy=freeze_trunk"]))
    assert type(experiment.strategy).__name__ == "FreezeTrunk"
    snapshots = {}

    class Probe(Strategy):
        name = "probe"

        def on_task_end(self, task_id, data):
            snapshots[task_id] = [p.clone() for p in self.learner.actor.latent_pi.parameters()]

    from robotcl.strategies.base import StrategyStack

    experiment.strategy = StrategyStack([experiment.strategy, Probe()])
    from robotcl.outputs import RunDirectory

    experiment.run(RunDirectory.create(experiment.config))
    assert all(torch.equal(a, b) for a, b in zip(snapshots[0], snapshots[1], strict=True))
    assert main(["list"]) == 0 and "freeze_trunk" in capsys.readouterr().out


def test_entry_point_strategies_are_found_and_listed(monkeypatch):
    class Plugged(Strategy):
        name = "plugged"

    monkeypatch.setattr(
        registry,
        "entry_points",
        lambda group: [FakeEntryPoint("plugged", Plugged)] if group else [],
    )
    fresh = Registry("strategy", "robotcl.strategies")
    fresh.register("finetune", Strategy)
    assert "plugged" in list(fresh) and fresh.get("plugged") is Plugged
