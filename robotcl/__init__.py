"""robotcl: lifelong reinforcement learning for robot manipulation."""

__version__ = "0.2.0"
