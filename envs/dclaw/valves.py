"""Valve shapes T0..T10 of the D'Claw turning benchmark, built into an ``mujoco.MjSpec`` body.

Every family is one small function that adds collision geoms to the valve body. Coordinates are
world-frame heights; the valve body sits on the z axis, so ``z - hinge_z`` gives the local z.
Plates and polygons are prisms meshed from vertex lists (MuJoCo takes their convex hull); stars
are a central polygon plus one triangular prism per point, because a single mesh would collide as
its convex hull and the points would not matter.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import mujoco

# Contact properties of the valve: condim 4, sliding friction 0.2 (spec).
VALVE_FRICTION = (0.2, 0.005, 0.0001)
VALVE_RGBA = (0.85, 0.55, 0.2, 1.0)
THIN_THICKNESS = 0.0195  # T0..T2 plates
THICK_THICKNESS = 0.039  # T5..T10 plates
STEM_BOTTOM_Z = 0.045  # the valve stem reaches into the (contact-excluded) valve base
BASE_TOP_Z = 0.048  # top of the static valve base


Builder = Callable[[mujoco.MjSpec, mujoco.MjsBody, "ValveShape"], None]


@dataclass(frozen=True)
class ValveShape:
    """Geometry of one task: hinge height, height of the surface the fingers push on, builder."""

    name: str
    hinge_z: float
    top_z: float
    bottom_z: float  # lowest point of the shape proper; the stem runs from here down
    build: Builder


def _style(geom: mujoco.MjsGeom) -> None:
    geom.condim = 4
    geom.friction = list(VALVE_FRICTION)
    geom.rgba = list(VALVE_RGBA)


def _prism(
    spec: mujoco.MjSpec,
    body: mujoco.MjsBody,
    name: str,
    xy: Sequence[tuple[float, float]],
    z0: float,
    z1: float,
) -> mujoco.MjsGeom:
    """Add a convex prism with top-view vertices ``xy`` spanning local heights z0..z1."""
    mesh = spec.add_mesh(name=name)
    verts: list[float] = []
    for z in (z0, z1):
        for x, y in xy:
            verts += [x, y, z]
    mesh.uservert = verts
    geom = body.add_geom(name=name, type=mujoco.mjtGeom.mjGEOM_MESH, meshname=name)
    _style(geom)
    return geom


def _ring(n: int, radius: float, phase: float = 0.0) -> list[tuple[float, float]]:
    """Vertices of a regular n-gon, counter-clockwise, first vertex at angle ``phase``."""
    return [
        (
            radius * math.cos(phase + 2 * math.pi * k / n),
            radius * math.sin(phase + 2 * math.pi * k / n),
        )
        for k in range(n)
    ]


def _local(shape: ValveShape) -> tuple[float, float]:
    return shape.bottom_z - shape.hinge_z, shape.top_z - shape.hinge_z


def _polygon(n: int, circumradius: float, phase: float = 0.0) -> Builder:
    """Regular n-gon plate (one convex mesh), first vertex at angle ``phase``."""

    def build(spec: mujoco.MjSpec, body: mujoco.MjsBody, shape: ValveShape) -> None:
        z0, z1 = _local(shape)
        _prism(spec, body, f"valve_{shape.name}", _ring(n, circumradius, phase), z0, z1)

    return build


def _star(points: int, r_tip: float, r_inner: float) -> Builder:
    """Star as a central n-gon through the inner vertices plus one triangle prism per point."""

    def build(spec: mujoco.MjSpec, body: mujoco.MjsBody, shape: ValveShape) -> None:
        z0, z1 = _local(shape)
        inner = _ring(points, r_inner, math.pi / points)
        _prism(spec, body, f"valve_{shape.name}_core", inner, z0, z1)
        tips = _ring(points, r_tip)
        for k in range(points):
            tri = [inner[k - 1], tips[k], inner[k]]
            _prism(spec, body, f"valve_{shape.name}_pt{k}", tri, z0, z1)

    return build


def _capsules(segments: Sequence[tuple[float, float, float, float]], radius: float) -> Builder:
    """Horizontal capsules (x0, y0, x1, y1) whose tops are at the shape's top height."""

    def build(spec: mujoco.MjSpec, body: mujoco.MjsBody, shape: ValveShape) -> None:
        zc = shape.top_z - radius - shape.hinge_z
        for k, (x0, y0, x1, y1) in enumerate(segments):
            geom = body.add_geom(
                name=f"valve_{shape.name}_c{k}", type=mujoco.mjtGeom.mjGEOM_CAPSULE
            )
            geom.fromto = [x0, y0, zc, x1, y1, zc]
            geom.size = [radius, 0.0, 0.0]
            _style(geom)

    return build


def _prongs(n: int, radius: float, length: float, centre_radius: float) -> Builder:
    """n capsule prongs, centres at ``centre_radius``, equally spaced, the first along +x."""
    segs = []
    for k in range(n):
        a = 2 * math.pi * k / n
        r0, r1 = centre_radius - length / 2, centre_radius + length / 2
        segs.append((r0 * math.cos(a), r0 * math.sin(a), r1 * math.cos(a), r1 * math.sin(a)))
    return _capsules(segs, radius)


def _cross(radius: float, tip_to_tip: float) -> Builder:
    """Two crossed capsules along x and y, ``tip_to_tip`` long including the caps."""
    h = tip_to_tip / 2 - radius
    return _capsules([(-h, 0.0, h, 0.0), (0.0, -h, 0.0, h)], radius)


def _disc(radius: float) -> Builder:
    """Round plate (a cylinder primitive)."""

    def build(spec: mujoco.MjSpec, body: mujoco.MjsBody, shape: ValveShape) -> None:
        z0, z1 = _local(shape)
        geom = body.add_geom(name=f"valve_{shape.name}", type=mujoco.mjtGeom.mjGEOM_CYLINDER)
        geom.pos = [0.0, 0.0, (z0 + z1) / 2]
        geom.size = [radius, (z1 - z0) / 2, 0.0]
        _style(geom)

    return build


def _paddle(disc_diameter: float, bar_width: float, total_length: float) -> Builder:
    """Paddle: a disc at the -x end plus a bar to +x; the whole is centred on the hinge."""

    def build(spec: mujoco.MjSpec, body: mujoco.MjsBody, shape: ValveShape) -> None:
        z0, z1 = _local(shape)
        r, half = disc_diameter / 2, total_length / 2
        xc = -half + r
        disc = body.add_geom(name=f"valve_{shape.name}_disc", type=mujoco.mjtGeom.mjGEOM_CYLINDER)
        disc.pos = [xc, 0.0, (z0 + z1) / 2]
        disc.size = [r, (z1 - z0) / 2, 0.0]
        _style(disc)
        w = bar_width / 2
        _prism(
            spec,
            body,
            f"valve_{shape.name}_bar",
            [(xc, -w), (half, -w), (half, w), (xc, w)],
            z0,
            z1,
        )

    return build


def _plate(top: float, thickness: float) -> tuple[float, float]:
    return top, top - thickness


def _shapes() -> dict[str, ValveShape]:
    thin_top, thin_bot = _plate(0.125, THIN_THICKNESS)
    thick_top, thick_bot = _plate(0.135, THICK_THICKNESS)
    cap_r, cap_top = 0.021, 0.123
    cap_bot = cap_top - 2 * cap_r
    rows = [
        ("T0", 0.125, thin_top, thin_bot, _polygon(4, 0.091 / math.sqrt(2), math.pi / 4)),
        ("T1", 0.125, thin_top, thin_bot, _paddle(0.090, 0.038, 0.181)),
        ("T2", 0.125, thin_top, 0.125 - 0.038, _capsules([(-0.071, 0, 0.071, 0)], 0.019)),
        ("T3", 0.048, cap_top, cap_bot, _prongs(3, cap_r, 0.070, 0.038)),
        ("T4", 0.048, cap_top, cap_bot, _cross(cap_r, 0.190)),
        ("T5", 0.125, thick_top, thick_bot, _star(6, 0.053, 0.023)),
        ("T6", 0.125, thick_top, thick_bot, _polygon(3, 0.067)),
        ("T7", 0.125, thick_top, thick_bot, _polygon(5, 0.063)),
        ("T8", 0.125, thick_top, thick_bot, _polygon(6, 0.060)),
        ("T9", 0.125, thick_top, thick_bot, _star(5, 0.058, 0.025)),
        ("T10", 0.125, thick_top, thick_bot, _disc(0.060)),
    ]
    return {name: ValveShape(name, hz, top, bot, fn) for name, hz, top, bot, fn in rows}


VALVE_SHAPES: dict[str, ValveShape] = _shapes()


def add_valve(spec: mujoco.MjSpec, body: mujoco.MjsBody, valve: str) -> ValveShape:
    """Add the shape of ``valve`` plus a stem down into the valve base; return its geometry."""
    if valve not in VALVE_SHAPES:
        raise ValueError(f"unknown valve {valve!r}; expected one of {sorted(VALVE_SHAPES)}")
    shape = VALVE_SHAPES[valve]
    shape.build(spec, body, shape)
    stem = body.add_geom(name="valve_stem", type=mujoco.mjtGeom.mjGEOM_CYLINDER)
    z0, z1 = STEM_BOTTOM_Z - shape.hinge_z, shape.bottom_z + 0.005 - shape.hinge_z
    stem.pos = [0.0, 0.0, (z0 + z1) / 2]
    stem.size = [0.012, (z1 - z0) / 2, 0.0]
    _style(stem)
    return shape
