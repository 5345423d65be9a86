"""Contrastive losses against hand-computed values; augmentations keep shapes, dtypes and a
seed's determinism."""

from __future__ import annotations

import math

import pytest
import torch

from robotcl.ssl import augment
from robotcl.ssl.losses import info_nce, nt_xent, top1_accuracy


def test_info_nce_is_the_cross_entropy_against_the_diagonal():
    logits = torch.tensor([[2.0, 0.0], [0.0, 1.0]])
    # row 0: -log(e^2 / (e^2 + e^0)) = log(1 + e^-2); row 1: log(1 + e^-1)
    expected = (math.log(1 + math.exp(-2)) + math.log(1 + math.exp(-1))) / 2
    assert info_nce(logits).item() == pytest.approx(expected, rel=1e-6)
    assert info_nce(logits + 1000.0).item() == pytest.approx(expected, rel=1e-6)  # stable
    assert top1_accuracy(torch.tensor([[2.0, 0.0], [3.0, 1.0]])).item() == 0.5
    with pytest.raises(ValueError, match="logits"):
        info_nce(torch.zeros(3, 2))


def test_nt_xent_hand_computed():
    views = torch.eye(2)  # two samples whose two views agree exactly
    # each row: its partner at cosine 1, the two other views at 0: -log(e / (e + 1 + 1))
    loss, accuracy = nt_xent(views, views.clone(), temperature=1.0)
    assert loss.item() == pytest.approx(math.log(1 + 2 / math.e), rel=1e-6)
    assert accuracy.item() == 1.0
    cold, _ = nt_xent(views, views.clone(), temperature=0.1)
    assert cold.item() == pytest.approx(math.log(1 + 2 * math.exp(-10)), rel=1e-3)


@pytest.mark.parametrize("dtype", [torch.uint8, torch.float32])
def test_image_augmentations_keep_shape_dtype_and_seed(dtype):
    images = torch.randint(0, 255, (4, 9, 100, 100)).to(dtype)
    crop = augment.random_crop(images, 84, torch.Generator().manual_seed(1))
    assert crop.shape == (4, 9, 84, 84) and crop.dtype == dtype
    again = augment.random_crop(images, 84, torch.Generator().manual_seed(1))
    other = augment.random_crop(images, 84, torch.Generator().manual_seed(2))
    assert torch.equal(crop, again) and not torch.equal(crop, other)
    # every crop is a window of its own image
    tops = [
        (i, j)
        for i in range(17)
        for j in range(17)
        if torch.equal(images[0, :, i : i + 84, j : j + 84], crop[0])
    ]
    assert tops
    shifted = augment.random_shift(crop, 4, torch.Generator().manual_seed(3))
    assert shifted.shape == crop.shape and shifted.dtype == dtype
    centre = augment.center_crop(images, 84)
    assert torch.equal(centre, images[:, :, 8:92, 8:92])


def test_random_shift_moves_content_by_at_most_the_padding():
    image = torch.zeros(1, 1, 20, 20)
    image[0, 0, 10, 10] = 1.0
    for seed in range(20):
        out = augment.random_shift(image, 4, torch.Generator().manual_seed(seed))
        (row, col) = (out[0, 0] == 1.0).nonzero()[0].tolist()
        assert abs(row - 10) <= 4 and abs(col - 10) <= 4


def test_state_augmentations_keep_shape_and_seed():
    x = torch.randn(8, 12)
    a = augment.state_augment(x, torch.Generator().manual_seed(0))
    b = augment.state_augment(x, torch.Generator().manual_seed(0))
    assert a.shape == x.shape and a.dtype == x.dtype and torch.equal(a, b)
    assert not torch.equal(a, x)
    masked = augment.feature_mask(torch.ones(1000, 10), 0.3, torch.Generator().manual_seed(0))
    assert 0.25 < (masked == 0).float().mean().item() < 0.35
    scaled = augment.random_scale(torch.ones(100, 10), 0.1, torch.Generator().manual_seed(0))
    assert scaled.min() >= 0.9 and scaled.max() <= 1.1


def stacks(batch: int = 6, frames: int = 3, size: int = 20) -> torch.Tensor:
    """Stacks of identical frames (one moment repeated), values 0..255."""
    g = torch.Generator().manual_seed(3)
    frame = torch.randint(0, 256, (batch, 1, 3, size, size), generator=g).float()
    return frame.expand(batch, frames, 3, size, size).reshape(batch, 3 * frames, size, size)


@pytest.mark.parametrize(
    "op", ["color_jitter", "random_grayscale", "gaussian_blur", "horizontal_flip"]
)
def test_moco_v2s_image_ops_treat_a_stacks_frames_alike(op):
    from robotcl.ssl import augment

    images = stacks()
    fn = getattr(augment, op)
    out = fn(images, p=1.0, generator=torch.Generator().manual_seed(0))
    assert out.shape == images.shape and not torch.equal(out, images)
    assert out.min() >= 0 and out.max() <= 255
    frames = out.reshape(6, 3, 3, 20, 20)
    assert torch.allclose(frames[:, 0], frames[:, 2]) and torch.allclose(frames[:, 0], frames[:, 1])
    assert torch.equal(fn(images, p=0.0, generator=torch.Generator().manual_seed(0)), images)


def test_moco_v2s_image_ops_do_what_they_say():
    from robotcl.ssl.augment import gaussian_blur, horizontal_flip, moco_v2, random_grayscale

    images, g = stacks(), torch.Generator().manual_seed(0)
    gray = random_grayscale(images, p=1.0, generator=g).reshape(6, 3, 3, 20, 20)
    assert torch.allclose(gray[:, :, 0], gray[:, :, 1]) and torch.allclose(
        gray[:, :, 1], gray[:, :, 2]
    )
    blurred = gaussian_blur(images, p=1.0, sigma=(2.0, 2.0), generator=g)
    assert blurred.std() < 0.7 * images.std()  # noise smoothed
    flat = torch.full((2, 3, 20, 20), 100.0)
    assert torch.allclose(gaussian_blur(flat, p=1.0, generator=g), flat)  # a constant stays
    assert torch.equal(horizontal_flip(images, p=1.0, generator=g), images.flip(-1))
    a = moco_v2(images, torch.Generator().manual_seed(5))
    assert torch.equal(a, moco_v2(images, torch.Generator().manual_seed(5)))  # seeded
    assert not torch.equal(a, moco_v2(images, torch.Generator().manual_seed(6)))
