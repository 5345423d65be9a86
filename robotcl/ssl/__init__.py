"""Contrastive self-supervised learning for the agents' encoders (pure torch, no MuJoCo).

Objectives, one module each, registered by name in :data:`OBJECTIVES` (every module of this
package is imported, so a new objective is one file): ``curl`` (CURL), ``moco`` (MoCo),
``simclr`` (SimCLR), ``temporal`` (ATC / CPC style), ``crossmodal`` (CMC style); encoders
(pixels, state), augmentations (pixels and state vectors), the losses, and the wiring every
learner with an encoder uses (:mod:`robotcl.ssl.wiring`). See Laskin et al. 2020, He et al.
2020, Chen et al. 2020, Stooke et al. 2021, Tian et al. 2020.
"""

from __future__ import annotations

import importlib
import pkgutil

from robotcl.registry import OBJECTIVES
from robotcl.ssl.objective import ObjectiveSettings, SSLBatch, SSLObjective, SSLOutput

for _module in pkgutil.iter_modules(__path__):
    if not _module.name.startswith("_"):
        importlib.import_module(f"{__name__}.{_module.name}")

__all__ = ["OBJECTIVES", "ObjectiveSettings", "SSLBatch", "SSLObjective", "SSLOutput"]
