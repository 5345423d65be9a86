"""The D'Claw valve-turning scene, built in code with ``mujoco.MjSpec`` (no XML, no mesh files).

Three fingers (FF, MF, TH at azimuths +60, -60, 180 deg) hang from a plate above a valve that
turns about the world z axis. Dimensions follow shared/specs/dclaw.md. Works on MuJoCo 3.3 and 4.x:
position servos are written as fixed gain plus affine bias instead of ``set_to_position``.
"""

from __future__ import annotations

import math

import mujoco
import numpy as np

from .valves import BASE_TOP_Z, VALVE_SHAPES, add_valve

FINGERS: tuple[tuple[str, float], ...] = (("FF", 60.0), ("MF", -60.0), ("TH", 180.0))
JOINT_NAMES: tuple[str, ...] = tuple(f"{f}_J{j}" for f, _ in FINGERS for j in range(3))
TIP_SITES: tuple[str, ...] = tuple(f"{f}_tip" for f, _ in FINGERS)
VALVE_JOINT = "valve_hinge"
CAMERA = "oblique"

HALF_RANGE = np.array([0.48, math.pi / 3, math.pi / 2] * 3)
RESET_POSE = np.array([0.0, -math.pi / 3, math.pi / 3] * 3)
KP = 10.0
TIMESTEP = 0.0025

PLATE_Z = 0.335
BASE_RADIUS = 0.060
MOUNT_Z = 0.3325  # underside of the plate
BASE_TO_J0, J0_TO_J1, J1_TO_J2, J2_TO_TIP = 0.01425, 0.0675, 0.068, 0.076
TIP_RADIUS, TIP_HALF_LEN, TIP_CENTRE = 0.011, 0.020, 0.053
LINK_HALF = (0.0175, 0.015, 0.024)  # boxes of about 0.035 x 0.030 x 0.048
LINK_FRICTION = (1.0, 0.005, 0.0001)
TIP_FRICTION = (0.2, 0.005, 0.0001)
JOINT_DAMPING, JOINT_ARMATURE = 0.1, 0.001

GOAL_BODY, GOAL_SITE = "goal", "goal_mark"
GOAL_RADIUS = 0.11  # the bar's centre, on the floor beyond the widest valve
GOAL_RGBA = (0.1, 0.75, 0.2, 1.0)

_LINK_RGBA = (0.25, 0.25, 0.28, 1.0)
_TIP_RGBA = (0.9, 0.9, 0.9, 1.0)


def _zrot_quat(deg: float) -> list[float]:
    a = math.radians(deg) / 2
    return [math.cos(a), 0.0, 0.0, math.sin(a)]


def _lookat_quat(pos: np.ndarray, target: np.ndarray) -> list[float]:
    """Quaternion of a camera at ``pos`` looking at ``target`` with world z up."""
    fwd = (target - pos) / np.linalg.norm(target - pos)
    right = np.cross(fwd, [0.0, 0.0, 1.0])
    right /= np.linalg.norm(right)
    up = np.cross(right, fwd)
    mat = np.column_stack([right, up, -fwd]).ravel()
    quat = np.zeros(4)
    mujoco.mju_mat2Quat(quat, mat)
    return quat.tolist()


def _collider(
    geom: mujoco.MjsGeom, friction: tuple[float, float, float], rgba: tuple[float, ...]
) -> None:
    geom.condim = 4
    geom.friction = list(friction)
    geom.rgba = list(rgba)


def _visual(geom: mujoco.MjsGeom, rgba: tuple[float, ...]) -> None:
    """Looks only: no contacts, no mass."""
    geom.contype = 0
    geom.conaffinity = 0
    geom.density = 0.0
    geom.group = 1
    geom.rgba = list(rgba)


def _set_damping(joint: mujoco.MjsJoint, value: float) -> None:
    """Joint damping is a scalar on MuJoCo 3.3 and a 3-vector (first entry linear) on 4.x."""
    if np.ndim(joint.damping):
        damping = np.zeros(np.shape(joint.damping))
        damping[0] = value
        joint.damping = damping
    else:
        joint.damping = value


def _hinge(body: mujoco.MjsBody, name: str, axis: list[float], half_range: float) -> None:
    joint = body.add_joint(name=name, type=mujoco.mjtJoint.mjJNT_HINGE, axis=axis)
    joint.limited = mujoco.mjtLimited.mjLIMITED_TRUE
    joint.range = [-half_range, half_range]
    _set_damping(joint, JOINT_DAMPING)
    joint.armature = JOINT_ARMATURE


def _link_box(
    body: mujoco.MjsBody, name: str, zc: float, half: tuple[float, float, float], mass: float
) -> None:
    geom = body.add_geom(name=name, type=mujoco.mjtGeom.mjGEOM_BOX, pos=[0.0, 0.0, zc])
    geom.size = list(half)
    geom.mass = mass
    _collider(geom, LINK_FRICTION, _LINK_RGBA)


def _add_finger(spec: mujoco.MjSpec, name: str, azimuth_deg: float) -> None:
    """One finger in a frame whose x points radially out and y tangentially (CCW).

    J0 turns about local x (positive swings the tip CCW about z); J1, J2 turn about local y
    (positive moves the tip toward the valve axis).
    """
    a = math.radians(azimuth_deg)
    mount = spec.worldbody.add_body(
        name=f"{name}_mount",
        pos=[BASE_RADIUS * math.cos(a), BASE_RADIUS * math.sin(a), MOUNT_Z],
        quat=_zrot_quat(azimuth_deg),
    )
    housing = mount.add_geom(type=mujoco.mjtGeom.mjGEOM_BOX, pos=[0.0, 0.0, -BASE_TO_J0 / 2])
    housing.size = [0.02, 0.02, BASE_TO_J0 / 2]
    _visual(housing, _LINK_RGBA)

    l0 = mount.add_body(name=f"{name}_L0", pos=[0.0, 0.0, -BASE_TO_J0])
    _hinge(l0, f"{name}_J0", [1.0, 0.0, 0.0], HALF_RANGE[0])
    _link_box(l0, f"{name}_L0_box", -J0_TO_J1 / 2, LINK_HALF, 0.105)

    l1 = l0.add_body(name=f"{name}_L1", pos=[0.0, 0.0, -J0_TO_J1])
    _hinge(l1, f"{name}_J1", [0.0, 1.0, 0.0], HALF_RANGE[1])
    _link_box(l1, f"{name}_L1_box", -J1_TO_J2 / 2, LINK_HALF, 0.105)

    l2 = l1.add_body(name=f"{name}_L2", pos=[0.0, 0.0, -J1_TO_J2])
    _hinge(l2, f"{name}_J2", [0.0, 1.0, 0.0], HALF_RANGE[2])
    _link_box(l2, f"{name}_L2_box", -0.017, (0.015, 0.014, 0.017), 0.014)
    tip = l2.add_geom(name=f"{name}_tip_geom", type=mujoco.mjtGeom.mjGEOM_CAPSULE)
    tip.pos = [0.0, 0.0, -TIP_CENTRE]
    tip.size = [TIP_RADIUS, TIP_HALF_LEN, 0.0]
    tip.mass = 0.018
    _collider(tip, TIP_FRICTION, _TIP_RGBA)
    l2.add_site(name=f"{name}_tip", pos=[0.0, 0.0, -J2_TO_TIP], size=[0.004, 0.0, 0.0])


def _add_servo(spec: mujoco.MjSpec, joint: str, half_range: float) -> None:
    """Position servo u = kp (target - q) that compiles on MuJoCo 3.3 and 4.x alike."""
    act = spec.add_actuator(name=joint, target=joint)
    act.trntype = mujoco.mjtTrn.mjTRN_JOINT
    act.gaintype = mujoco.mjtGain.mjGAIN_FIXED
    act.biastype = mujoco.mjtBias.mjBIAS_AFFINE
    gain = [0.0] * len(act.gainprm)
    gain[0] = KP
    bias = [0.0] * len(act.biasprm)
    bias[1] = -KP
    act.gainprm = gain
    act.biasprm = bias
    act.ctrllimited = mujoco.mjtLimited.mjLIMITED_TRUE
    act.ctrlrange = [-half_range, half_range]


def _add_scene(spec: mujoco.MjSpec) -> None:
    world = spec.worldbody
    floor = world.add_geom(name="floor", type=mujoco.mjtGeom.mjGEOM_PLANE, size=[0.5, 0.5, 0.02])
    floor.rgba = [0.55, 0.6, 0.65, 1.0]
    plate = world.add_geom(name="plate", type=mujoco.mjtGeom.mjGEOM_CYLINDER)
    plate.pos = [0.0, 0.0, PLATE_Z]
    plate.size = [0.075, 0.0025, 0.0]
    _visual(plate, (0.7, 0.7, 0.72, 1.0))
    light = world.add_light(name="top_light", pos=[0.0, -0.3, 1.0], dir=[0.0, 0.3, -1.0])
    light.diffuse = [0.8, 0.8, 0.8]
    light.castshadow = True
    spec.visual.headlight.ambient = [0.3, 0.3, 0.3]
    # Oblique view from above, through the gap between FF and MF (azimuth -20 deg).
    az = math.radians(-20.0)
    cam_pos = np.array([0.34 * math.cos(az), 0.34 * math.sin(az), 0.42])
    cam_quat = _lookat_quat(cam_pos, np.array([0.0, 0.0, 0.16]))
    world.add_camera(name=CAMERA, pos=cam_pos.tolist(), quat=cam_quat)
    world.add_camera(name="top", pos=[0.0, 0.0, 0.6])


def build_spec(valve: str = "T3") -> mujoco.MjSpec:
    """The editable scene for task ``valve`` ("T0".."T10")."""
    if valve not in VALVE_SHAPES:
        raise ValueError(f"unknown valve {valve!r}; expected one of {sorted(VALVE_SHAPES)}")
    spec = mujoco.MjSpec()
    spec.modelname = f"dclaw_turn_{valve}"
    spec.compiler.degree = False  # joint ranges below are in radians
    opt = spec.option
    opt.timestep = TIMESTEP
    opt.solver = mujoco.mjtSolver.mjSOL_NEWTON
    opt.cone = mujoco.mjtCone.mjCONE_ELLIPTIC
    opt.iterations = 50
    opt.integrator = mujoco.mjtIntegrator.mjINT_EULER
    spec.visual.global_.offwidth = 640
    spec.visual.global_.offheight = 640
    # MuJoCo's default 4096^2 shadow map is most of a frame's cost in software rendering
    # (63 -> 20 ms a 100x100 frame here) for a mean pixel difference of 0.13 / 255 at that size
    spec.visual.quality.shadowsize = 1024

    _add_scene(spec)
    # Claw joints first, so they are qpos/qvel 0..8 and the valve hinge is index 9.
    for name, azimuth in FINGERS:
        _add_finger(spec, name, azimuth)

    base = spec.worldbody.add_body(name="valve_base")
    pedestal = base.add_geom(name="valve_base_geom", type=mujoco.mjtGeom.mjGEOM_CYLINDER)
    pedestal.pos = [0.0, 0.0, BASE_TOP_Z / 2]
    pedestal.size = [0.03, BASE_TOP_Z / 2, 0.0]
    pedestal.rgba = [0.3, 0.3, 0.35, 1.0]

    shape = VALVE_SHAPES[valve]
    body = spec.worldbody.add_body(name="valve", pos=[0.0, 0.0, shape.hinge_z])
    joint = body.add_joint(name=VALVE_JOINT, type=mujoco.mjtJoint.mjJNT_HINGE, axis=[0, 0, 1])
    joint.limited = mujoco.mjtLimited.mjLIMITED_TRUE
    joint.range = [-2 * math.pi, 2 * math.pi]
    _set_damping(joint, JOINT_DAMPING)
    joint.armature = JOINT_ARMATURE
    add_valve(spec, body, valve)
    # A site on top marks the valve's +x direction in renders (no mass, no contact).
    body.add_site(
        name="valve_mark",
        type=mujoco.mjtGeom.mjGEOM_BOX,
        pos=[0.03, 0.0, shape.top_z - shape.hinge_z + 0.001],
        size=[0.015, 0.004, 0.001],
        rgba=[0.1, 0.2, 0.8, 1.0],
    )
    # The goal, as ROBEL draws its target: a marker that turns about the valve's axis (a mocap
    # body the env points at the goal angle, see DClawTurnEnv.goal_marker; looks only).
    goal = spec.worldbody.add_body(name=GOAL_BODY, mocap=True)
    goal.add_site(  # a bar on the floor pointing at the goal, and a post at its end
        name=GOAL_SITE,
        type=mujoco.mjtGeom.mjGEOM_BOX,
        pos=[GOAL_RADIUS, 0.0, 0.002],
        size=[0.04, 0.007, 0.002],
        rgba=list(GOAL_RGBA),
    )
    goal.add_site(
        name=f"{GOAL_SITE}_post",
        type=mujoco.mjtGeom.mjGEOM_CYLINDER,
        pos=[GOAL_RADIUS + 0.04, 0.0, 0.045],
        size=[0.009, 0.045, 0.0],
        rgba=list(GOAL_RGBA),
    )
    # MuJoCo 4 locks the valve when its stem is within the base's contact margin: exclude.
    spec.add_exclude(bodyname1="valve_base", bodyname2="valve")

    for jname, half in zip(JOINT_NAMES, HALF_RANGE, strict=True):
        _add_servo(spec, jname, float(half))
    return spec


def build_model(valve: str = "T3") -> mujoco.MjModel:
    """Compile the scene for task ``valve`` ("T0".."T10")."""
    return build_spec(valve).compile()
