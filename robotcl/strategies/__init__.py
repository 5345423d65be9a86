"""Continual-learning strategies; each module registers one by name."""

from __future__ import annotations

from robotcl.registry import STRATEGIES
from robotcl.strategies import finetune
from robotcl.strategies.base import Strategy, StrategySettings, StrategyStack, TaskData

__all__ = ["STRATEGIES", "Strategy", "StrategySettings", "StrategyStack", "TaskData", "finetune"]
