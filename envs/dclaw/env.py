"""Gymnasium env: turn the D'Claw valve from 0 to pi (the fixed tasks T0..T10 of the benchmark).

One step is 0.1 s (40 physics steps of 2.5 ms). Episodes never terminate early; the 40-step limit
comes from the TimeLimit wrapper added at registration (see ``robotcl.envs``).

:class:`DClawTurnEnv` is also the claw other tasks build on (``robotcl.envs.dclaw.dexterous``):
its public part puts the claw and the valve in a state (:meth:`~DClawTurnEnv.reset_pose`,
:meth:`~DClawTurnEnv.set_valve`, :meth:`~DClawTurnEnv.set_valve_dynamics`), runs one control step
(:meth:`~DClawTurnEnv.apply_action`), reads the state (``joint_positions``, ``joint_velocities``,
``valve_angle``) and renders; :class:`ObservationLayout` makes an observation space and its
observations from one list of values.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import gymnasium as gym
import mujoco
import numpy as np
from gymnasium import spaces

from .model import (
    CAMERA,
    GOAL_BODY,
    GOAL_SITE,
    HALF_RANGE,
    JOINT_NAMES,
    RESET_POSE,
    TIMESTEP,
    VALVE_JOINT,
    build_model,
)

FRAME_SKIP = 40
STEP_SECONDS = FRAME_SKIP * TIMESTEP  # one control step: 0.1 s
MAX_TARGET_DELTA = math.pi * 0.1  # joint targets move at most pi rad/s x 0.1 s from q per step
START_ANGLE = 0.0
GOAL_ANGLE = math.pi
SUCCESS_THRESHOLD = 0.1
VEL_PENALTY_MIN = 0.5
N_JOINTS = 9
VALVE_DOF = N_JOINTS  # the valve hinge's index in qpos and qvel (after the claw's joints)
MAX_OBS_VELOCITY = 100.0  # rad/s, observation-space bound only
CLAW_VALUES = 2 * N_JOINTS + 2  # joint positions, joint velocities, cos and sin of the valve angle
#: "full": MuJoCo's shadows, reflections and 4x multisampling; "fast": none of them, the frames
#: pixel agents see (about 12x cheaper a frame on a software renderer: bench/ssl_cost.py)
RENDER_QUALITIES = ("full", "fast")


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


@dataclass(frozen=True)
class ObservationLayout:
    """An observation of the claw: joint positions (9), joint velocities (9), cos and sin of the
    valve angle, then ``extras``, each a name and its bound; float32.

    One layout gives both the observation space (:meth:`space`) and the observations
    (:meth:`observe`). Bounds are finite and generous (gymnasium warns on infinite ones);
    observations are not clipped: joint limits are soft (seen up to ~0.08 rad past them) and
    velocities stay under ~20 rad/s.
    """

    extras: tuple[tuple[str, float], ...]

    @property
    def size(self) -> int:
        return CLAW_VALUES + len(self.extras)

    def index(self, name: str) -> int:
        """The position of the extra called ``name`` in an observation."""
        return CLAW_VALUES + [n for n, _ in self.extras].index(name)

    def space(self) -> spaces.Box:
        high = np.empty(self.size, np.float32)
        high[:N_JOINTS] = math.pi
        high[N_JOINTS : 2 * N_JOINTS] = MAX_OBS_VELOCITY
        high[2 * N_JOINTS : CLAW_VALUES] = 1.0
        high[CLAW_VALUES:] = [bound for _, bound in self.extras]
        return spaces.Box(-high, high, dtype=np.float32)

    def observe(self, claw: DClawTurnEnv, extras: Sequence[float]) -> np.ndarray:
        """The observation of ``claw``'s state with the values of ``extras`` (in order)."""
        angle = claw.valve_angle
        obs = np.empty(self.size, np.float32)
        obs[:N_JOINTS] = claw.joint_positions
        obs[N_JOINTS : 2 * N_JOINTS] = claw.joint_velocities
        obs[2 * N_JOINTS] = math.cos(angle)
        obs[2 * N_JOINTS + 1] = math.sin(angle)
        obs[CLAW_VALUES:] = extras
        return obs


class DClawTurnEnv(gym.Env):
    """Turn the valve of task ``valve`` ("T0".."T10") from 0 to pi with the three-finger claw.

    Action: 9 values in [-1, 1] mapped to joint targets 0 +- (0.48, pi/3, pi/2) per finger, each
    then limited to within 0.314 rad of the current joint position. Observation (21, float32):
    joint positions (9), joint velocities (9), cos and sin of the valve angle, wrapped error.
    ``camera``: the model's camera :meth:`render` draws from.
    """

    LAYOUT = ObservationLayout((("error", math.pi),))
    metadata = {"render_modes": ["rgb_array"], "render_fps": 10}

    def __init__(
        self,
        valve: str = "T3",
        render_mode: str | None = None,
        width: int = 240,
        height: int = 240,
        camera: str = CAMERA,
        render_quality: str = "full",
    ) -> None:
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ValueError(f"unsupported render_mode {render_mode!r}")
        if render_quality not in RENDER_QUALITIES:
            raise ValueError(f"render_quality {render_quality!r}: one of {RENDER_QUALITIES}")
        self.render_quality = render_quality
        self.valve = valve
        self.render_mode = render_mode
        self.width, self.height = width, height
        self.camera = camera
        self.model = build_model(valve)
        self.data = mujoco.MjData(self.model)
        self._check_layout()
        self._renderer: mujoco.Renderer | None = None
        #: where the goal marker is drawn (rad about the valve's axis; None: not drawn); the
        #: tasks built on the claw set it before each frame (DexterousEnv)
        self.goal_marker: float | None = GOAL_ANGLE
        self._goal_mocap = int(self.model.body(GOAL_BODY).mocapid[0])
        self._goal_sites = [self.model.site(n).id for n in (GOAL_SITE, f"{GOAL_SITE}_post")]
        self._goal_alpha = float(self.model.site_rgba[self._goal_sites[0], 3])

        self.action_space = spaces.Box(-1.0, 1.0, (N_JOINTS,), np.float32)
        self.observation_space = self.LAYOUT.space()

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
        self.reset_pose()
        obs, error = self._observe()
        return obs, self._info(error)

    def step(self, action: np.ndarray) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        self.apply_action(action)
        obs, error = self._observe()
        reward = compute_reward(self._qpos, self._qvel, error)
        return obs, reward, False, False, self._info(error)

    # --- the claw, for the tasks built on it ----------------------------------------------------

    def reset_pose(self) -> None:
        """The claw at its reset pose, the valve at its start angle, at rest."""
        m, d = self.model, self.data
        mujoco.mj_resetData(m, d)
        d.qpos[:N_JOINTS] = RESET_POSE
        d.qpos[VALVE_DOF] = START_ANGLE
        d.ctrl[:] = RESET_POSE
        mujoco.mj_forward(m, d)

    def set_valve(self, angle: float, velocity: float = 0.0) -> None:
        """Put the valve at ``angle`` turning at ``velocity`` (the claw stays as it is)."""
        self.data.qpos[VALVE_DOF], self.data.qvel[VALVE_DOF] = angle, velocity
        mujoco.mj_forward(self.model, self.data)

    def set_valve_dynamics(
        self, damping: float | None = None, friction: float | None = None
    ) -> None:
        """Change the valve hinge's damping (N m s / rad) and dry friction (N m); None keeps the
        model's."""
        if damping is not None:
            self.model.dof_damping[VALVE_DOF] = damping
        if friction is not None:
            self.model.dof_frictionloss[VALVE_DOF] = friction

    def apply_action(self, action: np.ndarray) -> None:
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
        """RGB uint8 frame (height, width, 3) from ``camera`` (default: the oblique camera)."""
        if self._renderer is None:
            vis = self.model.vis.global_
            vis.offwidth = max(vis.offwidth, self.width)
            vis.offheight = max(vis.offheight, self.height)
            if self.render_quality == "fast":
                self.model.vis.quality.offsamples = 0  # no multisampling
            self._renderer = mujoco.Renderer(self.model, height=self.height, width=self.width)
            if self.render_quality == "fast":
                for flag in (mujoco.mjtRndFlag.mjRND_SHADOW, mujoco.mjtRndFlag.mjRND_REFLECTION):
                    self._renderer.scene.flags[flag] = False
        self._place_goal_marker()
        self._renderer.update_scene(self.data, camera=self.camera)
        return self._renderer.render()

    def close(self) -> None:
        # On MuJoCo 3.3 a Renderer left to the garbage collector prints EGL errors at exit.
        if self._renderer is not None:
            self._renderer.close()
            self._renderer = None

    @property
    def valve_angle(self) -> float:
        return float(self.data.qpos[VALVE_DOF])

    @property
    def joint_positions(self) -> np.ndarray:
        """The claw's joint positions (9; a view into the simulation's state: read it only)."""
        return self._qpos

    @property
    def joint_velocities(self) -> np.ndarray:
        """The claw's joint velocities (9; a view into the simulation's state: read it only)."""
        return self._qvel

    # --- helpers --------------------------------------------------------------------------------

    def _place_goal_marker(self) -> None:
        """Turn the goal marker to :attr:`goal_marker` (or hide it) for the next frame: the mocap
        pose, then the kinematics that place it (the state's dynamics are untouched)."""
        angle = self.goal_marker
        self.model.site_rgba[self._goal_sites, 3] = 0.0 if angle is None else self._goal_alpha
        if angle is not None:
            half = angle / 2
            self.data.mocap_quat[self._goal_mocap] = [math.cos(half), 0.0, 0.0, math.sin(half)]
            mujoco.mj_kinematics(self.model, self.data)

    def _observe(self) -> tuple[np.ndarray, float]:
        error = wrap_angle(GOAL_ANGLE - self.valve_angle)
        return self.LAYOUT.observe(self, (error,)), error

    def _info(self, error: float) -> dict[str, Any]:
        return {
            "is_success": abs(error) < SUCCESS_THRESHOLD,
            "valve_angle": self.valve_angle,
            "valve_error": error,
        }
