"""Objectives are looked up by name (decorator or the ``robotcl.ssl`` entry points) and declare
typed settings under ``agent.encoder.<name>``, validated with one-line errors; what they need
of a learner is declared on the class and checked before a run starts."""

from __future__ import annotations

import pytest
import torch
from fakes import FakeEntryPoint

from robotcl import registry
from robotcl.cli import main
from robotcl.config import describe, load_config
from robotcl.errors import UserInputError
from robotcl.experiment import Experiment
from robotcl.registry import OBJECTIVES, Registry
from robotcl.ssl import ObjectiveSettings, SSLObjective
from robotcl.ssl.curl import CURL
from robotcl.ssl.wiring import SSLWiring

ENCODER = ["agent.encoder.type=mlp", "agent.encoder.feature_dim=16", "agent.encoder.hidden=32"]


def one_line_error(items: list[str], tmp_path, capsys) -> str:
    assert main(["run", "quick", "--dry-run", *items, f"runs_dir={tmp_path / 'runs'}"]) == 2
    err = [e for e in capsys.readouterr().err.splitlines() if "error" in e]
    assert len(err) == 1 and err[0].startswith("robotcl: error: "), err
    return err[0]


def test_every_built_in_objective_is_registered_with_settings_and_documented_keys():
    assert {"curl", "moco", "simclr", "temporal", "crossmodal"} <= set(OBJECTIVES)
    for name in OBJECTIVES:
        cls = OBJECTIVES.get(name)
        assert cls.name == name and issubclass(cls.Settings, ObjectiveSettings)
    rows = {key: (default, doc) for key, default, doc in describe()}
    assert rows["agent.encoder.moco.queue_size"][0] == "65536"
    assert rows["agent.encoder.moco.temperature"][0] == "0.07"
    assert rows["agent.encoder.moco.momentum"][0] == "0.999"
    assert rows["agent.encoder.curl.tau"][0] == "0.05"
    assert rows["agent.encoder.temporal.tau"][0] == "0.01"
    assert rows["agent.encoder.simclr.temperature"][0] == "0.1"
    assert rows["agent.encoder.crossmodal.temperature"][0] == "0.07"
    assert all(doc for key, (_, doc) in rows.items() if key.startswith("agent.encoder."))


def test_an_objectives_settings_reach_it(tiny):
    items = [*tiny, *ENCODER, "agent.encoder.objective=simclr"]
    items += ["agent.encoder.simclr.temperature=0.3", "agent.encoder.simclr.projection_dim=8"]
    config = load_config("quick", items)
    assert config.agent.encoder.objective_settings() == {"temperature": 0.3, "projection_dim": 8}
    experiment = Experiment(config)
    experiment.prepare()
    ssl = experiment.learner.ssl
    assert ssl.settings.temperature == 0.3 and ssl.projection[-1].out_features == 8


def test_the_old_queue_size_key_still_sets_mocos_queue(tiny):
    items = [*tiny, *ENCODER, "agent.encoder.objective=moco"]
    config = load_config("quick", [*items, "agent.encoder.queue_size=64"])
    assert config.agent.encoder.objective_settings()["queue_size"] == 64
    same = load_config("quick", [*items, "agent.encoder.moco.queue_size=64"])
    assert same.agent.encoder == config.agent.encoder
    # a saved config listing the old key at its default loads as before
    saved = load_config("quick", [*tiny, *ENCODER, "agent.encoder.queue_size=65536"])
    assert saved.agent.encoder.model_extra == {}


@pytest.mark.parametrize(
    ("items", "culprit"),
    [
        (
            ["agent.encoder.objective=byol"],
            "config key 'agent.encoder.objective': unknown objective; known: none, crossmodal, ",
        ),
        (
            ["agent.encoder.objective=moco", "agent.encoder.moco.temperature=-1"],
            "config key 'agent.encoder.moco.temperature'",
        ),
        (
            ["agent.encoder.objective=moco", "agent.encoder.moco.temprature=0.1"],
            "config key 'agent.encoder.moco.temprature': unknown key; allowed: augmentation, "
            "head, momentum, projection_dim, queue_size, temperature",
        ),
        (["agent.encoder.mocco.queue_size=8"], "config key 'agent.encoder.mocco': unknown key"),
        (
            ["agent.encoder.queue_size=8", "agent.encoder.moco.queue_size=16"],
            "set agent.encoder.moco.queue_size only",
        ),
        (
            [
                "agent.name=bc",
                "agent.expert_data=/nowhere",
                "agent.encoder.objective=curl",
                "agent.encoder.curl.key_encoder=target",
            ],  # fmt: skip
            "needs the encoder of a target critic (an off-policy actor-critic's), which agent bc "
            "cannot give",
        ),
        (
            ["agent.name=bc", "agent.expert_data=/nowhere", "agent.encoder.objective=temporal"],
            "needs the observations a step later in the same trajectory (next observations), "
            "which agent bc cannot give; use one of: curl, moco, ",
        ),
    ],
)
def test_objective_settings_that_cannot_work_are_one_line_errors(items, culprit, tmp_path, capsys):
    assert culprit in one_line_error([*ENCODER, *items], tmp_path, capsys)


def test_settings_of_an_objective_not_selected_are_warned_about(tiny, capsys):
    load_config("quick", [*tiny, *ENCODER, "agent.encoder.objective=curl"])
    assert "warning" not in capsys.readouterr().err
    items = [*tiny, *ENCODER, "agent.encoder.objective=curl", "agent.encoder.moco.queue_size=8"]
    load_config("quick", items)
    err = capsys.readouterr().err
    assert "warning" in err and "agent.encoder.moco.*" in err


def test_entry_point_objectives_are_found_and_non_objectives_refused(monkeypatch):
    class Plugged(CURL):
        name = "plugged"

    group: list[str] = []

    def entry_points(group_name):
        group.append(group_name)
        return [FakeEntryPoint("plugged", Plugged)]

    monkeypatch.setattr(registry, "entry_points", lambda group: entry_points(group))
    fresh = Registry("objective", "robotcl.ssl", check=OBJECTIVES.check)
    assert fresh["plugged"] is Plugged and group == ["robotcl.ssl"]
    with pytest.raises(UserInputError, match="is not a contrastive objective"):
        fresh.register("loss", torch.nn.MSELoss)


def test_a_learner_that_cannot_feed_an_objective_is_refused_naming_what_is_missing():
    encoder = torch.nn.Linear(4, 3)
    encoder.feature_dim = 3
    settings = {"type": "mlp", "objective": "temporal"}
    with pytest.raises(ValueError, match="BCLearner cannot give the observations a step later"):
        SSLWiring.build(
            settings, encoder, lambda x, g: x, 0, "cpu", frozenset(), learner="BCLearner"
        )
    wiring = SSLWiring.build(settings, encoder, lambda x, g: x, 0, "cpu", frozenset({"later"}))
    assert isinstance(wiring.objective, SSLObjective) and wiring.objective.settings.tau == 0.01
