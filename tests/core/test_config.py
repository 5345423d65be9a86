"""Config loading, overrides and the one-line errors for bad input."""

from __future__ import annotations

import inspect
import re

import pytest

from robotcl.agents.cloning import BCAgent
from robotcl.agents.ppo import ContinualPPO
from robotcl.agents.sac import ContinualSAC
from robotcl.agents.td3 import ContinualTD3
from robotcl.config import AgentConfig, load_config, preset_names
from robotcl.errors import UserInputError


def test_presets_load_and_quick_is_default():
    assert {"quick", "corl-gap"} <= set(preset_names())
    config = load_config(None)
    assert config.name == "quick"
    corl = load_config("corl-gap")
    assert corl.steps_per_task == 80_000 and corl.agent.ent_coef == 0.2


def test_overrides_are_typed_and_nested():
    config = load_config("quick", ["agent.batch_size=64", "seed=3", "agent.net_arch=[32,32]"])
    assert config.agent.batch_size == 64 and config.seed == 3
    assert config.agent.net_arch == [32, 32]
    assert load_config("quick", ["strategy=finetune"]).strategy == ["finetune"]


@pytest.mark.parametrize(
    ("override", "culprit"),
    [
        (["agent.batch_size=abc"], "agent.batch_size"),
        (["agent.bsize=3"], "agent.bsize"),
        (["nonsense=1"], "nonsense"),
        (["strategy=nope"], "nope"),
        (["eval.metric=median"], "eval.metric"),
        (["device=gpu"], "device"),
        (["steps_per_task=-5"], "steps_per_task"),
        (["suite"], "suite"),
        (["finetune.coef=1"], "finetune.coef"),
    ],
)
def test_bad_values_name_the_culprit(override, culprit):
    with pytest.raises(UserInputError) as err:
        load_config("quick", override)
    message = str(err.value)
    assert culprit in message and "\n" not in message


def test_unknown_key_lists_allowed_keys():
    with pytest.raises(UserInputError, match="allowed: .*batch_size"):
        load_config("quick", ["agent.bsize=3"])


def test_unknown_preset_and_missing_file():
    with pytest.raises(UserInputError, match="known: .*quick"):
        load_config("no-such-preset")
    with pytest.raises(UserInputError, match="not found"):
        load_config("missing/file.yaml")


def test_corrupt_yaml_file(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("agent: [unclosed\n")
    with pytest.raises(UserInputError, match="bad.yaml.*not valid YAML"):
        load_config(str(bad))


def test_steps_must_fill_whole_update_rounds():
    with pytest.raises(UserInputError, match="multiple of agent.train_freq"):
        load_config("quick", ["agent.train_freq=7", "steps_per_task=100"])


def test_agent_config_defaults_match_the_learner():
    """Every agent key is taken by a learner, with the config's documented default as that
    learner's own default when built directly; "sac only" / "ppo, sac only" keys by those alone.
    Unmarked keys are shared by SAC and TD3 (with one default); PPO takes some of them with
    stable-baselines3's PPO defaults of its own, BC (the gap's supervised side, whose network
    robotcl gap sets from the RL actor's) some with BCLearner's."""
    learners = {"bc": BCAgent, "ppo": ContinualPPO, "sac": ContinualSAC, "td3": ContinualTD3}
    params = {name: inspect.signature(cls.__init__).parameters for name, cls in learners.items()}
    for name, field in AgentConfig.model_fields.items():
        if name == "name":
            continue
        users = [agent for agent, taken in params.items() if name in taken]
        marked = re.match(r"([\w, ]+?) only:", field.description or "")
        if marked:
            assert users == marked.group(1).split(", "), name
        else:
            assert {"sac", "td3"} <= set(users), name
        for agent in users:
            if agent in ("ppo", "bc") and not marked:
                continue
            default = params[agent][name].default
            default = list(default) if isinstance(default, tuple) else default
            if name == "ent_coef" and agent == "ppo":
                continue  # "auto" means PPO's 0
            if name == "encoder":  # None: no encoder, the config's type "none"
                assert (
                    params[agent][name].default is None and field.default_factory().type == "none"
                )
                continue
            assert field.default == default, (name, agent)


def test_a_value_no_branch_of_a_union_takes_names_the_key_and_every_branch(capsys):
    from robotcl.cli import main

    assert main(["run", "quick", "video.stages=foo", "--dry-run"]) == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line.startswith("robotcl: error: config key 'video.stages': ")
    assert "'all' or 'last'" in line and "valid list" in line and "(got 'foo')" in line
    assert "literal[" not in line
