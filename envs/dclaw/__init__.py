"""D'Claw valve turning: the scene built in code, the gymnasium env and the task names."""

from .env import DClawTurnEnv
from .model import build_model

DCLAW_VALVES: tuple[str, ...] = tuple(f"T{k}" for k in range(11))

__all__ = ["DCLAW_VALVES", "DClawTurnEnv", "build_model"]
