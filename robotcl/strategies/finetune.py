"""Fine-tuning: train each task in turn with no continual-learning mechanism (the lower bound)."""

from __future__ import annotations

from robotcl.registry import register_strategy
from robotcl.strategies.base import Strategy


@register_strategy("finetune")
class Finetune(Strategy):
    """Plain sequential training; the multi-head learner still keeps one head per task."""

    name = "finetune"
