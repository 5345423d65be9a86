"""Contrastive self-supervised learning for the agents' encoders (pure torch, no MuJoCo).

Objectives (one module each): ``curl`` (CURL), ``moco`` (MoCo), ``simclr`` (SimCLR),
``temporal`` (ATC / CPC style), ``crossmodal`` (CMC style); encoders (pixels, state),
augmentations (pixels and state vectors) and the losses. See shared facts in the lecture and
Laskin et al. 2020, He et al. 2020, Chen et al. 2020, Stooke et al. 2021, Tian et al. 2020.
"""

from __future__ import annotations

from robotcl.ssl.crossmodal import CrossModal
from robotcl.ssl.curl import CURL
from robotcl.ssl.moco import MoCo
from robotcl.ssl.objective import SSLBatch, SSLObjective, SSLOutput
from robotcl.ssl.simclr import SimCLR
from robotcl.ssl.temporal import Temporal

OBJECTIVES: dict[str, type[SSLObjective]] = {
    cls.name: cls for cls in (CURL, MoCo, SimCLR, Temporal, CrossModal)
}

__all__ = ["OBJECTIVES", "SSLBatch", "SSLObjective", "SSLOutput"]
