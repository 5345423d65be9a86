"""Family ``to90``: turn the valve to another target angle, from 0 to +pi/2 (the benchmark's
reward and success rule, as :mod:`~robotcl.envs.dclaw.family_turn`)."""

from __future__ import annotations

import math
from dataclasses import dataclass

from .family import register_family
from .family_turn import Turn


@register_family("to90")
@dataclass(frozen=True)
class To90(Turn):
    """Turn the valve a quarter turn, to ``goal_angle`` (rad)."""

    goal_angle: float = math.pi / 2
