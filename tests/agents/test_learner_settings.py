"""A learner declares settings of its own (``Settings``, a LearnerSettings): ``agent.<key>=...``
is validated by it, reaches the learner's ``__init__``, is listed by ``--help``, written into the
run's config with its default filled, resumed, and part of the run's key."""

from __future__ import annotations

import inspect

import pytest
import yaml
from pydantic import BaseModel, Field

from robotcl.agents import ContinualSAC
from robotcl.cli import main
from robotcl.config import load_config
from robotcl.errors import UserInputError
from robotcl.experiment import Experiment, run, run_config
from robotcl.learner import LearnerSettings
from robotcl.registry import AGENTS, Registry, _check_learner
from robotcl.study.keys import run_key


class NoisySettings(LearnerSettings):
    noise_std: float = Field(0.1, ge=0, description="std of Gaussian noise on acting actions")


class NoisySAC(ContinualSAC):
    """SAC that keeps one setting of its own (as a plugin learner would)."""

    Settings = NoisySettings

    def __init__(self, *args, noise_std: float = 0.1, **kwargs) -> None:
        taken = inspect.signature(ContinualSAC).parameters  # **kwargs: it is given every key
        super().__init__(*args, **{k: v for k, v in kwargs.items() if k in taken})
        self.noise_std = noise_std


NOISY = ["agent.name=noisy_sac"]


@pytest.fixture(autouse=True)
def plugin_learners(monkeypatch):
    """The learners of this file registered, as a plugin's import would, for one test only (so
    that no other test's list of agents sees them)."""
    monkeypatch.setitem(AGENTS._items, "noisy_sac", NoisySAC)
    monkeypatch.setitem(AGENTS._items, "featureless_sac", FeaturelessSAC)


def test_a_learner_setting_reaches_the_learner_and_its_run_config(tiny):
    run_dir, results = run(load_config("quick", [*tiny, *NOISY, "agent.noise_std=0.25"]))
    assert results["completed_tasks"] == 2
    saved = yaml.safe_load((run_dir.path / "config.yaml").read_text())
    assert saved["agent"]["noise_std"] == 0.25
    config = run_config(run_dir.path)  # what --resume reads back
    assert config.agent.model_extra == {"noise_std": 0.25}
    experiment = Experiment(config)
    experiment.prepare()
    assert experiment.learner.noise_std == 0.25


def test_the_default_is_filled_and_the_value_enters_the_key(tiny):
    default = load_config("quick", [*tiny, *NOISY])
    assert default.agent.model_extra == {"noise_std": 0.1}
    other = load_config("quick", [*tiny, *NOISY, "agent.noise_std=0.3"])
    assert run_key(default) != run_key(other)
    assert run_key(default) == run_key(load_config("quick", [*tiny, *NOISY, "agent.noise_std=0.1"]))


def test_dry_run_and_help_show_the_learners_keys(tiny, capsys):
    assert main(["run", "quick", *tiny, *NOISY, "agent.noise_std=0.4", "--dry-run"]) == 0
    printed = yaml.safe_load(capsys.readouterr().out.split("# tasks:")[0])
    assert printed["agent"]["noise_std"] == 0.4
    with pytest.raises(SystemExit):
        main(["run", "--help"])
    lines = [line for line in capsys.readouterr().out.splitlines() if "agent.noise_std" in line]
    assert len(lines) == 1 and "noisy_sac only: std of Gaussian noise" in lines[0]
    assert "(default 0.1)" in lines[0]


@pytest.mark.parametrize(
    ("items", "message"),
    [
        (
            [*NOISY, "agent.noise_std=-1"],
            "config key 'agent.noise_std': Input should be greater than or equal to 0 (got -1)",
        ),
        (
            ["agent.noise_std=0.2"],
            "config key 'agent.noise_std': not a setting of agent 'sac'; set it only with agent "
            "noisy_sac",
        ),
        ([*NOISY, "agent.nosie_std=0.2"], "config key 'agent.nosie_std': unknown key; allowed:"),
    ],
)
def test_a_bad_learner_setting_is_one_line(items, message, tiny, tmp_path, capsys):
    assert main(["run", "quick", *tiny, *items]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"robotcl: error: {message}")
    assert not (tmp_path / "runs").exists()


def test_settings_that_are_not_a_learner_settings_or_reuse_a_shared_key_are_refused(
    tiny, monkeypatch
):
    class Plain(BaseModel):
        noise_std: float = 0.1

    agents = Registry("agent", check=_check_learner)
    learner = type("Learner", (NoisySAC,), {"Settings": Plain})
    with pytest.raises(UserInputError) as error:
        agents.register("bad", learner)
    assert "agent 'bad': Learner is not a learner: Settings: not a robotcl.learner." in str(
        error.value
    )
    assert "bad" not in agents

    class Clashing(LearnerSettings):
        batch_size: int = 64

    clashing = type("ClashingSAC", (NoisySAC,), {"Settings": Clashing})
    monkeypatch.setitem(AGENTS._items, "clashing_sac", clashing)  # gone after the test
    with pytest.raises(UserInputError) as error:
        load_config("quick", [*tiny, "agent.name=clashing_sac"])
    assert str(error.value).startswith(
        "agent 'clashing_sac': its Settings declare batch_size, a shared agent key"
    )


class FeaturelessSAC(ContinualSAC):
    """A learner that does not offer ``features`` (as the CleanRL example does not)."""

    capabilities = ContinualSAC.capabilities - {"features"}


def test_the_probe_says_why_it_is_off(tiny, capsys):
    _, results = run(load_config("quick", [*tiny, "agent.name=featureless_sac"]))
    err = capsys.readouterr().err
    assert "the linear probe is off: agent 'featureless_sac' does not offer the capability " in err
    assert results["completed_tasks"] == 2 and not results.get("P")
    _, results = run(load_config("quick", tiny))  # a learner with features: no such line
    assert "probe is off" not in capsys.readouterr().err and results["P"]
