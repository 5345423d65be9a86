"""Tests of the D'Claw valve-turning scene and env (robotcl.envs.dclaw)."""

from __future__ import annotations

import math
import warnings

import gymnasium as gym
import mujoco
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

from robotcl.envs import DCLAW_VALVES, dclaw_env_id, register_envs
from robotcl.envs.dclaw import DClawTurnEnv, build_model
from robotcl.envs.dclaw.env import MAX_TARGET_DELTA, compute_reward
from robotcl.envs.dclaw.model import (
    BASE_RADIUS,
    BASE_TO_J0,
    HALF_RANGE,
    J0_TO_J1,
    J1_TO_J2,
    J2_TO_TIP,
    MOUNT_Z,
    RESET_POSE,
    TIP_SITES,
)
from robotcl.envs.dclaw.valves import VALVE_SHAPES
from robotcl.envs.render import contact_sheet, render_task

J1_Z = MOUNT_Z - BASE_TO_J0 - J0_TO_J1


def test_valve_names_and_registration():
    assert tuple(f"T{k}" for k in range(11)) == DCLAW_VALVES
    register_envs()  # a second registration is a no-op, not an error
    for valve in DCLAW_VALVES:
        spec = gym.spec(dclaw_env_id(valve))
        assert spec.max_episode_steps == 40
        assert spec.kwargs == {"valve": valve}
    with pytest.raises(ValueError):
        build_model("T11")


@pytest.mark.parametrize("valve", DCLAW_VALVES)
def test_check_env(valve):
    env = gym.make(dclaw_env_id(valve))
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # the checker reports problems as warnings
            check_env(env.unwrapped, skip_render_check=True)
    finally:
        env.close()


def test_time_limit_truncates_at_40_and_never_terminates():
    env = gym.make(dclaw_env_id("T3"))
    env.reset(seed=0)
    action = np.zeros(9, np.float32)
    flags = [env.step(action)[2:4] for _ in range(40)]
    env.close()
    assert not any(term for term, _ in flags)
    assert [trunc for _, trunc in flags] == [False] * 39 + [True]


def _rollout(valve: str, seed: int, steps: int = 15):
    env = DClawTurnEnv(valve)
    obs, _ = env.reset(seed=seed)
    rng = np.random.default_rng(seed)
    observations, rewards = [obs], []
    for _ in range(steps):
        obs, reward, *_ = env.step(rng.uniform(-1, 1, 9).astype(np.float32))
        observations.append(obs)
        rewards.append(reward)
    env.close()
    return np.array(observations), np.array(rewards)


def test_determinism():
    obs_a, rew_a = _rollout("T5", seed=3)
    obs_b, rew_b = _rollout("T5", seed=3)
    np.testing.assert_array_equal(obs_a, obs_b)
    np.testing.assert_array_equal(rew_a, rew_b)
    assert np.abs(obs_a[-1, :9] - obs_a[0, :9]).max() > 0.05  # the actions did move the claw


@pytest.mark.parametrize("valve", ["T0", "T3", "T8"])
def test_reset_geometry(valve):
    env = DClawTurnEnv(valve)
    env.reset(seed=0)
    tips = np.array([env.data.site(name).xpos for name in TIP_SITES])
    radius = np.hypot(tips[:, 0], tips[:, 1])
    np.testing.assert_allclose(radius, 0.119, atol=0.01)
    np.testing.assert_allclose(tips[:, 2], 0.140, atol=0.01)
    # Tips hover above the valve's top surface and nothing touches the valve.
    assert tips[:, 2].min() > VALVE_SHAPES[valve].top_z
    assert env.data.ncon == 0
    # Finger bases at azimuths +60, -60, 180 degrees.
    azimuth = np.degrees(np.arctan2(tips[:, 1], tips[:, 0]))
    np.testing.assert_allclose(azimuth, [60.0, -60.0, 180.0], atol=1e-6)
    env.close()


def test_observation_layout():
    env = DClawTurnEnv("T3")
    obs, info = env.reset(seed=0)
    assert obs.shape == (21,) and obs.dtype == np.float32
    np.testing.assert_allclose(obs[:9], RESET_POSE, atol=1e-6)
    np.testing.assert_array_equal(obs[9:18], 0.0)
    assert obs[18] == pytest.approx(1.0) and obs[19] == pytest.approx(0.0)
    assert abs(obs[20]) == pytest.approx(math.pi)
    assert info["valve_angle"] == 0.0 and not info["is_success"]
    assert abs(info["valve_error"]) == pytest.approx(math.pi)
    # Turn the valve by hand: the last three entries follow it, error wrapped into [-pi, pi).
    env.data.qpos[9] = 3.0
    obs, _ = env._observe()
    assert obs[18] == pytest.approx(math.cos(3.0)) and obs[19] == pytest.approx(math.sin(3.0))
    assert obs[20] == pytest.approx(math.pi - 3.0)
    env.data.qpos[9] = -3.0  # error pi + 3 wraps to 3 - pi
    assert env._observe()[1] == pytest.approx(3.0 - math.pi)
    env.close()


def test_per_step_target_limit():
    env = DClawTurnEnv("T3")
    env.reset(seed=0)
    q0 = env.data.qpos[:9].copy()
    env.step(np.ones(9, np.float32))
    delta = env.data.ctrl - q0
    assert pytest.approx(0.314, abs=1e-3) == MAX_TARGET_DELTA
    assert np.all(np.abs(delta) <= MAX_TARGET_DELTA + 1e-12)
    # Every joint's full-range target is further than the limit from the reset pose: all clipped.
    np.testing.assert_allclose(delta, MAX_TARGET_DELTA)
    # A target within the limit is the linear map of the action, untouched.
    env.reset(seed=0)
    action = (RESET_POSE + 0.1) / HALF_RANGE
    env.step(action.astype(np.float32))
    np.testing.assert_allclose(env.data.ctrl, RESET_POSE + 0.1, atol=1e-6)
    env.close()


def test_reward_formula():
    qpos = RESET_POSE + np.array([0.3, 0, 0, 0, 0.4, 0, 0, 0, 0])  # ||q - reset|| = 0.5
    qvel = np.array([0.6, -0.8, 0.2, 0.49, 0, 0, 0, 0, -0.1])  # only 0.6, -0.8 count: norm 1
    assert compute_reward(qpos, qvel, 1.0) == pytest.approx(-5.0 - 0.5 - 1.0)
    assert compute_reward(qpos, qvel, -0.2) == pytest.approx(-1.0 - 0.5 - 1.0 + 10.0)
    assert compute_reward(qpos, qvel, 0.05) == pytest.approx(-0.25 - 0.5 - 1.0 + 60.0)
    assert compute_reward(RESET_POSE, np.zeros(9), 0.0) == pytest.approx(60.0)


def test_env_reward_and_success_on_hand_set_state():
    env = DClawTurnEnv("T8")
    env.reset(seed=0)
    env.data.qpos[9] = math.pi - 0.05  # valve almost at the goal, claw at rest
    mujoco.mj_forward(env.model, env.data)
    hold = (RESET_POSE / HALF_RANGE).astype(np.float32)
    obs, reward, terminated, truncated, info = env.step(hold)
    assert info["is_success"] and not terminated and not truncated
    assert abs(info["valve_error"]) < 0.1
    expected = compute_reward(env.data.qpos[:9], env.data.qvel[:9], info["valve_error"])
    assert reward == pytest.approx(expected)
    assert reward > 55.0  # both bonuses, small penalties
    env.close()


def _finger_ik(radius: float, z: float) -> tuple[float, float]:
    """J1, J2 putting a fingertip site (J0 = 0) at ``radius`` from the axis and height ``z``."""
    u, w = BASE_RADIUS - radius, J1_Z - z
    cos_q2 = (u * u + w * w - J1_TO_J2**2 - J2_TO_TIP**2) / (2 * J1_TO_J2 * J2_TO_TIP)
    q2 = math.acos(float(np.clip(cos_q2, -1.0, 1.0)))
    q1 = math.atan2(u, w) - math.atan2(
        J2_TO_TIP * math.sin(q2), J1_TO_J2 + J2_TO_TIP * math.cos(q2)
    )
    return q1, q2


def _drive(env: DClawTurnEnv, finger_q: list[float], steps: int) -> None:
    """Move all fingers to ``finger_q`` through linearly interpolated actions."""
    start = env.data.ctrl.copy()
    target = np.tile(finger_q, 3)
    for k in range(1, steps + 1):
        env.step(((start + (target - start) * k / steps) / HALF_RANGE).astype(np.float32))


def _top_contacts(env: DClawTurnEnv) -> int:
    """Contacts of a fingertip pressing down on the valve's top surface."""
    m, d = env.model, env.data
    valve_body = m.body("valve").id
    tips = {m.geom(f"{name}_geom").id for name in TIP_SITES}
    count = 0
    for c in d.contact[: d.ncon]:
        pair = {c.geom1, c.geom2}
        bodies = {m.geom_bodyid[c.geom1], m.geom_bodyid[c.geom2]}
        if pair & tips and valve_body in bodies and abs(c.frame[2]) > 0.8:
            count += 1
    return count


@pytest.mark.parametrize("valve", ["T3", "T8", "T10"])
def test_scripted_press_and_sweep_turns_valve(valve):
    """Reach over the valve, press on it, sweep J0 out from 0: the valve follows the sweep.

    Sweeps start at J0 = 0 because J0 turns about a high radial axis: moving J0 back toward 0
    drives a pressed tip down into the valve and jams it, moving away from 0 lifts it slightly.
    """
    env = DClawTurnEnv(valve)
    env.reset(seed=0)
    top = VALVE_SHAPES[valve].top_z
    hover, press = _finger_ik(0.045, top + 0.012), _finger_ik(0.045, top - 0.01)
    _drive(env, [0.0, -math.pi / 3, math.pi / 2], 3)  # hook the tips up
    _drive(env, [0.0, *hover], 3)  # over the valve
    assert min(env.data.site(name).xpos[2] for name in TIP_SITES) > top
    _drive(env, [0.0, *press], 3)  # press down on it
    if valve != "T3":  # on plates the tips land on the top surface (between prongs on T3)
        assert _top_contacts(env) >= 2
    start = env.valve_angle
    _drive(env, [0.3, *press], 4)  # positive J0 swings the tips counter-clockwise
    ccw = env.valve_angle - start
    _drive(env, [0.3, *hover], 2)  # lift, recentre, press again
    _drive(env, [0.0, *hover], 3)
    _drive(env, [0.0, *press], 2)
    start = env.valve_angle
    _drive(env, [-0.3, *press], 4)
    cw = env.valve_angle - start
    env.close()
    assert ccw > 0.1
    assert cw < -0.1


def test_contact_sheet_writes_png(tmp_path):
    rng = np.random.default_rng(0)
    frames = [rng.integers(0, 255, (32, 40, 3), dtype=np.uint8) for _ in range(7)]
    path = contact_sheet(frames, [f"f{k}" for k in range(7)], str(tmp_path / "s" / "sheet.png"), 3)
    with open(path, "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(ValueError):
        contact_sheet(frames, ["only one"], str(tmp_path / "bad.png"))


def test_render_returns_image(gl_ok):
    env = DClawTurnEnv("T8", render_mode="rgb_array", width=96, height=64)
    env.reset(seed=0)
    frame = env.render()
    env.close()
    assert env._renderer is None  # close() released the renderer
    assert frame.shape == (64, 96, 3) and frame.dtype == np.uint8
    assert frame.std() > 5.0  # not a constant image


def test_render_task_and_checker_render(gl_ok):
    frame = render_task(dclaw_env_id("T5"), width=48, height=48)
    assert frame.shape == (48, 48, 3) and frame.dtype == np.uint8 and frame.std() > 5.0
    env = gym.make(dclaw_env_id("T5"), render_mode="rgb_array", width=48, height=48)
    try:
        check_env(env.unwrapped)
    finally:
        env.close()
