"""Continual-learning strategies; every module of this package registers one (or more) by name."""

from __future__ import annotations

import importlib
import pkgutil

from robotcl.registry import STRATEGIES
from robotcl.strategies.base import (
    MemoryUsage,
    Strategy,
    StrategySettings,
    StrategyStack,
    TaskData,
)

for _module in pkgutil.iter_modules(__path__):
    if _module.name != "base" and not _module.name.startswith("_"):
        importlib.import_module(f"{__name__}.{_module.name}")

__all__ = ["STRATEGIES", "MemoryUsage", "Strategy", "StrategySettings", "StrategyStack", "TaskData"]
