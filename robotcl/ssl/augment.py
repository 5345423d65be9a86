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


def _factors(
    shape: tuple[int, ...] | torch.Size, spread: float, generator: torch.Generator | None
) -> torch.Tensor:
    """Factors drawn uniformly from [1 - spread, 1 + spread]."""
    return 1 + spread * (2 * torch.rand(shape, generator=generator) - 1)


def random_scale(
    x: torch.Tensor, spread: float = 0.1, generator: torch.Generator | None = None
) -> torch.Tensor:
    """Multiply each feature by a factor drawn uniformly from [1 - spread, 1 + spread]."""
    return x * _factors(x.shape, spread, generator).to(x.device, x.dtype)


def state_augment(x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """The default view of a state vector: scaling, masking, then noise."""
    x = random_scale(x, 0.1, generator)
    x = feature_mask(x, 0.1, generator)
    return gaussian_noise(x, 0.05, generator)


# -- MoCo v2's image augmentation (Chen, Fan, Girshick, He 2020), on stacked frames -----------
# Images are (B, 3F, H, W) floats in 0..255: F stacked RGB frames. Each image draws its own
# parameters and its F frames share them (one view of one moment in time).


def _frames(images: torch.Tensor) -> torch.Tensor:
    b, c, h, w = images.shape
    return images.reshape(b, c // 3, 3, h, w)


def _gray(frames: torch.Tensor) -> torch.Tensor:
    """Luma of (B, F, 3, H, W) frames, (B, F, 1, H, W)."""
    weights = torch.tensor([0.299, 0.587, 0.114], device=frames.device, dtype=frames.dtype)
    return (frames * weights.view(1, 1, 3, 1, 1)).sum(dim=2, keepdim=True)


def _chosen(batch: int, p: float, generator: torch.Generator | None) -> torch.Tensor:
    return torch.rand(batch, generator=generator) < p


def color_jitter(
    images: torch.Tensor,
    strength: float = 0.4,
    p: float = 0.8,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """With probability ``p`` an image's brightness, contrast and saturation are each scaled by
    a factor in [1 - strength, 1 + strength] (MoCo v2: 0.4, p 0.8; its hue jitter is not taken).
    """
    b = len(images)
    frames = _frames(images)
    shape = (b, 1, 1, 1, 1)
    scale = [_factors((b,), strength, generator).to(images).view(shape) for _ in range(3)]
    out = frames * scale[0]  # brightness
    mean = _gray(out).mean(dim=(2, 3, 4), keepdim=True)
    out = (out - mean) * scale[1] + mean  # contrast
    gray = _gray(out)
    out = ((out - gray) * scale[2] + gray).clamp(0, 255)  # saturation
    keep = _chosen(b, p, generator).to(images.device).view(shape)
    return torch.where(keep, out, frames).reshape(images.shape)


def random_grayscale(
    images: torch.Tensor, p: float = 0.2, generator: torch.Generator | None = None
) -> torch.Tensor:
    """With probability ``p`` an image becomes gray (MoCo v2: 0.2)."""
    frames = _frames(images)
    keep = _chosen(len(images), p, generator).to(images.device).view(-1, 1, 1, 1, 1)
    return torch.where(keep, _gray(frames).expand_as(frames), frames).reshape(images.shape)


def gaussian_blur(
    images: torch.Tensor,
    p: float = 0.5,
    sigma: tuple[float, float] = (0.1, 2.0),
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """With probability ``p`` an image is blurred by a Gaussian of a sigma drawn from ``sigma``
    (MoCo v2: p 0.5, sigma 0.1-2.0, a kernel of a tenth of the image: odd, at least 3)."""
    b, c, h, w = images.shape
    size = max(3, (h // 10) | 1)
    sigmas = sigma[0] + (sigma[1] - sigma[0]) * torch.rand(b, generator=generator)
    x = torch.arange(size, dtype=torch.float32) - size // 2
    kernel = torch.exp(-(x[None, :] ** 2) / (2 * sigmas[:, None] ** 2))
    kernel = (kernel / kernel.sum(dim=1, keepdim=True)).to(images)
    kernel = kernel.repeat_interleave(c, dim=0)  # (B*C, size): one kernel an image's channels
    flat = F.pad(images.reshape(1, b * c, h, w), (size // 2,) * 4, mode="reflect")
    flat = F.conv2d(flat, kernel.view(b * c, 1, 1, size), groups=b * c)
    blurred = F.conv2d(flat, kernel.view(b * c, 1, size, 1), groups=b * c).view(b, c, h, w)
    keep = _chosen(b, p, generator).to(images.device).view(-1, 1, 1, 1)
    return torch.where(keep, blurred, images)


def horizontal_flip(
    images: torch.Tensor, p: float = 0.5, generator: torch.Generator | None = None
) -> torch.Tensor:
    """With probability ``p`` an image is mirrored left to right (MoCo v2: 0.5)."""
    keep = _chosen(len(images), p, generator).to(images.device).view(-1, 1, 1, 1)
    return torch.where(keep, images.flip(-1), images)


def moco_v2(images: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """MoCo v2's augmentation after its crop: colour jitter (p 0.8), grayscale (p 0.2), blur
    (p 0.5), horizontal flip (p 0.5); the crop itself is the pixel encoder's."""
    images = color_jitter(images, 0.4, 0.8, generator)
    images = random_grayscale(images, 0.2, generator)
    images = gaussian_blur(images, 0.5, (0.1, 2.0), generator)
    return horizontal_flip(images, 0.5, generator)
