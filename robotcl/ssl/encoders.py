"""Encoders from observations to features, and the momentum (target) copy contrastive
objectives use for their keys.

``PixelEncoder`` follows CURL (Laskin et al. 2020): four 3x3 convolutions of 32 filters (the
first with stride 2), a linear layer to ``feature_dim`` (50) and LayerNorm. ``StateEncoder`` is
an MLP with the same LayerNorm output, so every objective also runs on state vectors.
"""

from __future__ import annotations

import copy

import torch
from torch import nn


class PixelEncoder(nn.Module):
    """(B, C, H, W) uint8 or float images -> (B, feature_dim) features."""

    def __init__(self, channels: int, size: int = 84, feature_dim: int = 50, filters: int = 32):
        super().__init__()
        layers: list[nn.Module] = [nn.Conv2d(channels, filters, 3, stride=2), nn.ReLU()]
        for _ in range(3):
            layers += [nn.Conv2d(filters, filters, 3, stride=1), nn.ReLU()]
        self.convs = nn.Sequential(*layers, nn.Flatten())
        with torch.no_grad():
            flat = self.convs(torch.zeros(1, channels, size, size)).shape[1]
        self.head = nn.Sequential(nn.Linear(flat, feature_dim), nn.LayerNorm(feature_dim))
        self.feature_dim = feature_dim

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        x = images.float() / 255.0 if images.dtype == torch.uint8 else images
        return self.head(self.convs(x))


class StateEncoder(nn.Module):
    """(B, D) state vectors -> (B, feature_dim) features: MLP, then LayerNorm."""

    def __init__(self, in_dim: int, feature_dim: int = 50, hidden: int = 256):
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(in_dim, hidden),
            nn.ReLU(),
            nn.Linear(hidden, feature_dim),
            nn.LayerNorm(feature_dim),
        )
        self.feature_dim = feature_dim

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


def momentum_copy(module: nn.Module) -> nn.Module:
    """A copy of ``module`` that gradients never reach (the key / target encoder)."""
    target = copy.deepcopy(module)
    target.requires_grad_(False)
    return target


@torch.no_grad()
def momentum_update(target: nn.Module, online: nn.Module, tau: float) -> None:
    """target <- tau * online + (1 - tau) * target, parameter by parameter (buffers copied)."""
    params = list(target.parameters())
    if params:  # a module without parameters (an identity head) has nothing to move
        torch._foreach_lerp_(params, list(online.parameters()), tau)
    for t, o in zip(target.buffers(), online.buffers(), strict=True):
        t.copy_(o)
