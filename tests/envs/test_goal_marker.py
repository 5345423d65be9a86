"""The goal in the picture: every claw task with a goal renders a marker pointing at it (turning
at the goal speed on spin tasks), so a pixel agent can see what it is asked; the marker changes
nothing in the dynamics; what stays invisible (a valve's damping or friction) is pixel-identical."""

from __future__ import annotations

import math

import numpy as np
import pytest

from robotcl.envs.dclaw.dexterous import DexterousEnv
from robotcl.envs.dclaw.env import DClawTurnEnv


def marker_pixels(frame: np.ndarray) -> np.ndarray:
    """(row, column) of the pixels in the marker's green (nothing else in the scene is green)."""
    r, g, b = (frame[..., k].astype(int) for k in range(3))
    return np.argwhere((g > r + 50) & (g > b + 50))


def frame_of(env, steps: int = 0) -> np.ndarray:
    env.reset(seed=0)
    for _ in range(steps):
        env.step(np.zeros(9, np.float32))
    return env.render()


def centre(env, steps: int = 0) -> np.ndarray:
    pixels = marker_pixels(frame_of(env, steps))
    assert len(pixels) > 20, "no goal marker in the frame"
    return pixels.mean(axis=0)


def test_the_goal_marker_points_at_each_tasks_goal_angle(gl_ok):
    envs = {
        name: DexterousEnv(name, "rgb_array", 96, 96) for name in ("valve-T3", "back-T3", "to90-T3")
    }
    try:
        where = {name: centre(env) for name, env in envs.items()}
    finally:
        for env in envs.values():
            env.close()
    # the camera looks from about -20 degrees: +pi/2 lies to the right, -pi/2 to the left
    assert where["to90-T3"][1] > 48 + 10 and where["back-T3"][1] < 48 - 10
    assert where["valve-T3"][0] < where["back-T3"][0]  # pi: behind the valve, higher up


def test_a_spin_tasks_marker_turns_at_the_goal_speed(gl_ok):
    env = DexterousEnv("spin-T3", "rgb_array", 96, 96)
    try:
        frame_of(env, 20)
        assert env.task.goal_marker(env) == pytest.approx(0.5 * 2.0)  # 0.5 rad/s for 2 s
        early, late = centre(env, 4), centre(env, 30)
    finally:
        env.close()
    assert np.abs(early - late).max() > 5  # the marker moved between 0.4 s and 3 s


def test_no_goal_no_marker_and_the_marker_leaves_the_dynamics_alone(gl_ok):
    actions = np.random.default_rng(0).uniform(-1, 1, (15, 9)).astype(np.float32)
    plain, drawn = DClawTurnEnv("T3"), DClawTurnEnv("T3", "rgb_array", 64, 64)
    try:
        for env in (plain, drawn):
            env.reset(seed=0)
        assert len(marker_pixels(drawn.render())) > 10  # the dclaw10 goal, pi
        for action in actions:
            a, b = plain.step(action)[0], drawn.step(action)[0]
            drawn.render()
            assert np.array_equal(a, b)  # rendering the goal moved nothing
        drawn.goal_marker = None
        assert len(marker_pixels(drawn.render())) == 0
    finally:
        plain.close(), drawn.close()


@pytest.mark.parametrize(("base", "variant"), [("valve-T3", "heavy-T3"), ("valve-T7", "sticky-T7")])
def test_dynamics_alone_do_not_show(gl_ok, base, variant):
    """The README's point: damping and friction are invisible; only the task id tells them."""
    envs = [DexterousEnv(name, "rgb_array", 48, 48) for name in (base, variant)]
    try:
        assert np.array_equal(frame_of(envs[0]), frame_of(envs[1]))
    finally:
        for env in envs:
            env.close()


def test_the_goal_angle_of_an_angle_task_is_where_its_observation_says():
    env = DexterousEnv("to90-T5")
    env.reset(seed=0)
    assert env.task.goal_marker(env) == pytest.approx(math.pi / 2)
    env.close()
