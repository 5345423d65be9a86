"""Family ``back``: turn the valve the other way, from 0 to -pi/2 (the benchmark's reward and
success rule, as :mod:`~robotcl.envs.dclaw.family_turn`)."""

from __future__ import annotations

import math
from dataclasses import dataclass

from .family import register_family
from .family_turn import Turn


@register_family("back")
@dataclass(frozen=True)
class Back(Turn):
    """Turn the valve the other way round, to ``goal_angle`` (rad)."""

    goal_angle: float = -math.pi / 2
