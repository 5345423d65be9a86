"""Augmentations for contrastive learning, seeded by a ``torch.Generator`` (pure torch).

Images are (B, C, H, W) tensors of any dtype (uint8 frames stay uint8); vectors are (B, D).
Pixel RL: CURL's random crop (Laskin et al. 2020), RAD/DrQ's random shift (pad 4, crop back),
a centre crop for evaluation. State: Gaussian noise, feature masking and per-feature scaling,
so that every objective also runs on state observations.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def _offsets(batch: int, room: int, generator: torch.Generator | None) -> torch.Tensor:
    return torch.randint(0, room + 1, (batch, 2), generator=generator)


def crop_at(images: torch.Tensor, tops: torch.Tensor, size: int) -> torch.Tensor:
    """Crop ``size`` x ``size`` at per-image (top, left) offsets ``tops`` (B, 2), without a
    Python loop over pixels."""
    b = images.shape[0]
    ar = torch.arange(size, device=images.device)
    rows = (tops[:, 0].to(images.device)[:, None] + ar)[:, :, None].expand(b, size, size)
    cols = (tops[:, 1].to(images.device)[:, None] + ar)[:, None, :].expand(b, size, size)
    batch = torch.arange(b, device=images.device)[:, None, None].expand(b, size, size)
    return images.permute(0, 2, 3, 1)[batch, rows, cols].permute(0, 3, 1, 2).contiguous()


def crop_offsets(
    images: torch.Tensor, size: int, generator: torch.Generator | None = None
) -> torch.Tensor:
    """Random (top, left) offsets (B, 2) of a ``size`` x ``size`` crop of each image."""
    _, _, h, w = images.shape
    if size > min(h, w):
        raise ValueError(f"crop {size} is larger than the images ({h}x{w})")
    return torch.stack(
        [torch.randint(0, h - size + 1, (len(images),), generator=generator),
         torch.randint(0, w - size + 1, (len(images),), generator=generator)],
        dim=1,
    )  # fmt: skip


def random_crop(
    images: torch.Tensor, size: int = 84, generator: torch.Generator | None = None
) -> torch.Tensor:
    """One random ``size`` x ``size`` crop per image (CURL: 100 -> 84)."""
    return crop_at(images, crop_offsets(images, size, generator), size)


def random_shift(
    images: torch.Tensor, pad: int = 4, generator: torch.Generator | None = None
) -> torch.Tensor:
    """Pad by ``pad`` pixels (edge values repeated) and crop back to the original size at a
    random offset per image (RAD / DrQ)."""
    _, _, h, w = images.shape
    if h != w:
        raise ValueError("random_shift expects square images")
    padded = F.pad(images.float(), (pad, pad, pad, pad), mode="replicate").to(images.dtype)
    return crop_at(padded, _offsets(len(images), 2 * pad, generator), h)


def pixel_shift(images: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """The default view of a pixel observation: a random shift of up to 4 pixels."""
    return random_shift(images, 4, generator)


def center_crop(images: torch.Tensor, size: int = 84) -> torch.Tensor:
    """The central ``size`` x ``size`` of every image (evaluation)."""
    _, _, h, w = images.shape
    top, left = (h - size) // 2, (w - size) // 2
    return images[:, :, top : top + size, left : left + size]


def gaussian_noise(
    x: torch.Tensor, std: float = 0.1, generator: torch.Generator | None = None
) -> torch.Tensor:
    """Add N(0, std^2) to every feature."""
    noise = torch.randn(x.shape, generator=generator).to(x.device, x.dtype)
    return x + std * noise


def feature_mask(
    x: torch.Tensor, p: float = 0.1, generator: torch.Generator | None = None
) -> torch.Tensor:
    """Zero each feature with probability ``p``."""
    keep = torch.rand(x.shape, generator=generator) >= p
    return x * keep.to(x.device, x.dtype)


def random_scale(
    x: torch.Tensor, spread: float = 0.1, generator: torch.Generator | None = None
) -> torch.Tensor:
    """Multiply each feature by a factor drawn uniformly from [1 - spread, 1 + spread]."""
    factor = 1 + spread * (2 * torch.rand(x.shape, generator=generator) - 1)
    return x * factor.to(x.device, x.dtype)


def state_augment(x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """The default view of a state vector: scaling, masking, then noise."""
    x = random_scale(x, 0.1, generator)
    x = feature_mask(x, 0.1, generator)
    return gaussian_noise(x, 0.05, generator)
