"""A task family defined here alone (no edit of robotcl): registered, made a suite, and run by
``robotcl run``; the evaluation records the family's reward and success rule."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass

import numpy as np
import pytest

from robotcl.cli import main
from robotcl.envs import register_dexterous
from robotcl.envs.dclaw.dexterous import OBSERVATION
from robotcl.envs.dclaw.family import TaskEnv, TaskFamily, family_task, register_family
from robotcl.envs.suites import Suite, TaskSpec, make_suite
from robotcl.errors import UserInputError
from robotcl.registry import SUITES


@register_family("steady")
@dataclass(frozen=True)
class Steady(TaskFamily):
    """Keep the valve where it starts (``start``): ``per_step`` reward every step; success while
    within ``tolerance`` of the start."""

    start: float = 0.5
    per_step: float = 0.25
    tolerance: float = 10.0

    def reset(self, env: TaskEnv, rng: np.random.Generator) -> None:
        env.claw.reset_pose()
        env.claw.set_valve(self.start)

    def error(self, env: TaskEnv) -> float:
        return self.start - env.valve_angle

    def reward(self, env: TaskEnv, error: float) -> float:
        return self.per_step

    def success(self, env: TaskEnv, error: float) -> bool:
        return abs(error) < self.tolerance

    def obs_extras(self, env: TaskEnv) -> tuple[float, float, float]:
        return math.cos(self.start), math.sin(self.start), self.per_step


TASKS = (
    family_task("steady", "T3"),  # always a success, +0.25 a step
    family_task("steady", "T5", per_step=-1.0, tolerance=0.0),  # never a success, -1 a step
)


@pytest.fixture(scope="module")
def steady2() -> str:
    """The suite 'steady2' of the two tasks above, registered the public way."""
    ids = register_dexterous(TASKS)
    tasks = tuple(TaskSpec(t.name, env_id) for t, env_id in zip(TASKS, ids, strict=True))
    SUITES.register("steady2", lambda: Suite("steady2", tasks))
    return "steady2"


def test_the_family_sets_the_start_observation_reward_and_success(steady2):
    env = make_suite(steady2).make_env(1)
    obs, info = env.reset(seed=0)
    assert obs[18] == pytest.approx(math.cos(0.5)) and obs[19] == pytest.approx(math.sin(0.5))
    goal = obs[OBSERVATION.index("goal_cos") : OBSERVATION.index("error")]
    np.testing.assert_allclose(goal, [math.cos(0.5), math.sin(0.5), -1.0], rtol=1e-6)
    assert info["family"] == "steady" and not info["is_success"]
    _, reward, *_, info = env.step(np.zeros(9, np.float32))
    assert reward == -1.0 and not info["is_success"]
    env.close()


def test_a_family_defined_in_a_test_runs_through_robotcl_run(steady2, tiny, tmp_path):
    args = [*tiny, f"suite={steady2}", "steps_per_task=60", "eval.every_steps=60"]
    assert main(["run", "quick", *args, "probe.samples=0", "name=steady"]) == 0
    (run_dir,) = (tmp_path / "runs" / "steady").iterdir()
    results = json.loads((run_dir / "results.json").read_text())
    assert results["suite"] == "steady2" and results["tasks"] == ["steady-T3", "steady-T5"]
    assert results["R"]  # every evaluated mode: the family's rules, whatever the policy did
    for scores in results["R"].values():
        assert scores["success"] == [[1.0, 0.0], [1.0, 0.0]]
        assert scores["return"] == [[10.0, -40.0], [10.0, -40.0]]  # 40 steps an episode


def test_a_family_lacking_a_rule_or_a_task_name_taken_twice_is_refused():
    @dataclass(frozen=True)
    class NoSuccess(TaskFamily):
        def error(self, env: TaskEnv) -> float:
            return 0.0

        def reward(self, env: TaskEnv, error: float) -> float:
            return 0.0

        def obs_extras(self, env: TaskEnv) -> tuple[float, float, float]:
            return 0.0, 0.0, 0.0

    with pytest.raises(UserInputError, match="task family 'nosuccess'.*lacks success"):
        register_family("nosuccess")(NoSuccess)
    with pytest.raises(ValueError, match="'valve-T3' is registered already"):
        register_dexterous([family_task("steady", "T3", name="valve-T3")])
