"""Gymnasium env: turn the D'Claw valve from 0 to pi (the fixed tasks T0..T10 of the benchmark).

One step is 0.1 s (40 physics steps of 2.5 ms). Episodes never terminate early; the 40-step limit
comes from the TimeLimit wrapper added at registration (see ``robotcl.envs``).
"""

from __future__ import annotations

import math
from typing import Any

import gymnasium as gym
import mujoco
import numpy as np
from gymnasium import spaces

from .model import CAMERA, HALF_RANGE, JOINT_NAMES, RESET_POSE, VALVE_JOINT, build_model

FRAME_SKIP = 40
MAX_TARGET_DELTA = math.pi * 0.1  # joint targets move at most pi rad/s x 0.1 s from q per step
START_ANGLE = 0.0
GOAL_ANGLE = math.pi
SUCCESS_THRESHOLD = 0.1
VEL_PENALTY_MIN = 0.5
N_JOINTS = 9
MAX_OBS_VELOCITY = 100.0  # rad/s, observation-space bound only


def wrap_angle(x: float) -> float:
    """Wrap an angle into [-pi, pi)."""
    return (x + math.pi) % (2 * math.pi) - math.pi


def compute_reward(
    qpos: np.ndarray,
    qvel: np.ndarray,
    error: float,
    near: float = 0.25,
    close: float = SUCCESS_THRESHOLD,
) -> float:
    """Benchmark reward of one step from claw joint positions, velocities and the valve error.

    -5 d - ||q - reset pose|| - ||velocities with |v| >= 0.5|| + 10 [d < near] + 50 [d < close]
    (the benchmark: near 0.25, close 0.1 rad).
    """
    d = abs(error)
    dq = qpos - RESET_POSE
    fast = qvel[np.abs(qvel) >= VEL_PENALTY_MIN]
    reward = -5.0 * d - math.sqrt(float(dq @ dq)) - math.sqrt(float(fast @ fast))
    if d < near:
        reward += 10.0
    if d < close:
        reward += 50.0
    return reward


class DClawTurnEnv(gym.Env):
    """Turn the valve of task ``valve`` ("T0".."T10") from 0 to pi with the three-finger claw.

    Action: 9 values in [-1, 1] mapped to joint targets 0 +- (0.48, pi/3, pi/2) per finger, each
    then limited to within 0.314 rad of the current joint position. Observation (21, float32):
    joint positions (9), joint velocities (9), cos and sin of the valve angle, wrapped error.
    """

    metadata = {"render_modes": ["rgb_array"], "render_fps": 10}

    def __init__(
        self,
        valve: str = "T3",
        render_mode: str | None = None,
        width: int = 240,
        height: int = 240,
    ) -> None:
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ValueError(f"unsupported render_mode {render_mode!r}")
        self.valve = valve
        self.render_mode = render_mode
        self.width, self.height = width, height
        self.model = build_model(valve)
        self.data = mujoco.MjData(self.model)
        self._check_layout()
        self._renderer: mujoco.Renderer | None = None

        self.action_space = spaces.Box(-1.0, 1.0, (N_JOINTS,), np.float32)
        # Finite, generous bounds (gymnasium warns on infinite ones); observations are not clipped.
        # Joint limits are soft (seen up to ~0.08 rad past them); velocities stay under ~20 rad/s.
        high = np.empty(2 * N_JOINTS + 3, np.float32)
        high[:N_JOINTS] = np.float32(math.pi)
        high[N_JOINTS : 2 * N_JOINTS] = MAX_OBS_VELOCITY
        high[18:20] = 1.0
        high[20] = np.float32(math.pi)
        self.observation_space = spaces.Box(-high, high, dtype=np.float32)

        # Preallocated work buffers keep step() free of temporaries in the control path.
        self._target = np.zeros(N_JOINTS)
        self._lo = np.zeros(N_JOINTS)
        self._hi = np.zeros(N_JOINTS)
        # Views into MjData (its buffers live as long as self.data).
        self._qpos = self.data.qpos[:N_JOINTS]
        self._qvel = self.data.qvel[:N_JOINTS]
        self._ctrl = self.data.ctrl

    def _check_layout(self) -> None:
        """The claw joints must be qpos/qvel 0..8 and the valve hinge 9, so slices can be used."""
        m = self.model
        ids = [m.joint(name).id for name in (*JOINT_NAMES, VALVE_JOINT)]
        if list(m.jnt_qposadr[ids]) != list(range(10)) or list(m.jnt_dofadr[ids]) != list(
            range(10)
        ):
            raise RuntimeError("unexpected joint layout in the D'Claw model")

    # --- gymnasium API -------------------------------------------------------------------------

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        super().reset(seed=seed)
        self._reset_pose()
        obs, error = self._observe()
        return obs, self._info(error)

    def step(self, action: np.ndarray) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        self._act(action)
        obs, error = self._observe()
        reward = compute_reward(self._qpos, self._qvel, error)
        return obs, reward, False, False, self._info(error)

    def _reset_pose(self) -> None:
        """The claw at its reset pose, the valve at its start angle, at rest."""
        m, d = self.model, self.data
        mujoco.mj_resetData(m, d)
        d.qpos[:N_JOINTS] = RESET_POSE
        d.qpos[N_JOINTS] = START_ANGLE
        d.ctrl[:] = RESET_POSE
        mujoco.mj_forward(m, d)

    def _act(self, action: np.ndarray) -> None:
        """Joint targets from ``action``, then one control step (FRAME_SKIP physics steps)."""
        target = self._target
        np.clip(action, -1.0, 1.0, out=target)
        target *= HALF_RANGE
        np.subtract(self._qpos, MAX_TARGET_DELTA, out=self._lo)
        np.add(self._qpos, MAX_TARGET_DELTA, out=self._hi)
        np.clip(target, self._lo, self._hi, out=target)
        self._ctrl[:] = target
        mujoco.mj_step(self.model, self.data, nstep=FRAME_SKIP)

    def render(self) -> np.ndarray:
        """RGB uint8 frame (height, width, 3) from the oblique camera."""
        if self._renderer is None:
            vis = self.model.vis.global_
            vis.offwidth = max(vis.offwidth, self.width)
            vis.offheight = max(vis.offheight, self.height)
            self._renderer = mujoco.Renderer(self.model, height=self.height, width=self.width)
        self._renderer.update_scene(self.data, camera=CAMERA)
        return self._renderer.render()

    def close(self) -> None:
        # On MuJoCo 3.3 a Renderer left to the garbage collector prints EGL errors at exit.
        if self._renderer is not None:
            self._renderer.close()
            self._renderer = None

    # --- helpers --------------------------------------------------------------------------------

    @property
    def valve_angle(self) -> float:
        return float(self.data.qpos[N_JOINTS])

    def _observe(self) -> tuple[np.ndarray, float]:
        angle = float(self.data.qpos[N_JOINTS])
        error = wrap_angle(GOAL_ANGLE - angle)
        obs = np.empty(2 * N_JOINTS + 3, np.float32)
        obs[:N_JOINTS] = self._qpos
        obs[N_JOINTS : 2 * N_JOINTS] = self._qvel
        obs[18] = math.cos(angle)
        obs[19] = math.sin(angle)
        obs[20] = error
        return obs, error

    def _info(self, error: float) -> dict[str, Any]:
        return {
            "is_success": abs(error) < SUCCESS_THRESHOLD,
            "valve_angle": float(self.data.qpos[N_JOINTS]),
            "valve_error": error,
        }
