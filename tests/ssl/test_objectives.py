"""The objectives: gradients reach exactly the parameters they should, momentum encoders follow
by their rate, MoCo's queue is first in first out, and a contrastively trained encoder beats a
random one under a linear probe."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from robotcl.ssl import OBJECTIVES, SSLBatch
from robotcl.ssl.augment import pixel_shift, state_augment
from robotcl.ssl.encoders import PixelEncoder, StateEncoder, momentum_copy, momentum_update
from robotcl.ssl.moco import MoCo


def batch_for(name: str, pixels: bool) -> SSLBatch:
    g = torch.Generator().manual_seed(0)
    if pixels:
        obs = torch.randint(0, 255, (6, 3, 36, 36), generator=g).to(torch.uint8)
        later = torch.randint(0, 255, (6, 3, 36, 36), generator=g).to(torch.uint8)
    else:
        obs, later = torch.randn(6, 10, generator=g), torch.randn(6, 10, generator=g)
    return SSLBatch(obs=obs, later=later, proprio=torch.randn(6, 5, generator=g))


def build(name: str, pixels: bool) -> tuple[nn.Module, nn.Module]:
    torch.manual_seed(0)
    encoder = PixelEncoder(3, size=36, feature_dim=16) if pixels else StateEncoder(10, 16, 32)
    augment = pixel_shift if pixels else state_augment
    kwargs = {"proprio_dim": 5} if name == "crossmodal" else {}
    if name == "moco":
        kwargs = {"queue_size": 32}
    objective = OBJECTIVES[name](encoder, augment, torch.Generator().manual_seed(1), **kwargs)
    return encoder, objective


@pytest.mark.parametrize("pixels", [True, False], ids=["pixels", "state"])
@pytest.mark.parametrize("name", sorted(OBJECTIVES))
def test_gradients_reach_the_encoder_and_heads_never_the_key_encoder(name, pixels):
    encoder, objective = build(name, pixels)
    out = objective(batch_for(name, pixels))
    assert out.loss.dim() == 0 and torch.isfinite(out.loss) and 0 <= out.accuracy.item() <= 1
    out.loss.backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in encoder.parameters())
    for p in objective.own_parameters():  # W, projection heads, the proprio encoder
        assert p.grad is not None
    key = getattr(objective, "key_encoder", None)
    if key is not None:
        assert all(p.grad is None and not p.requires_grad for p in key.parameters())


def test_momentum_update_moves_the_target_by_its_rate():
    online, target = nn.Linear(3, 2), nn.Linear(3, 2)
    before = [p.detach().clone() for p in target.parameters()]
    momentum_update(target, online, 0.05)
    for t, b, o in zip(target.parameters(), before, online.parameters(), strict=True):
        assert torch.allclose(t, 0.05 * o + 0.95 * b)
    copy = momentum_copy(online)
    assert all(not p.requires_grad for p in copy.parameters())
    assert all(
        torch.equal(a, b) for a, b in zip(copy.parameters(), online.parameters(), strict=True)
    )


def test_curl_key_encoder_follows_after_each_update():
    encoder, curl = build("curl", pixels=False)
    with torch.no_grad():
        for p in encoder.parameters():
            p.add_(1.0)
    key_before = [p.clone() for p in curl.key_encoder.parameters()]
    curl.after_update()
    for k, b, o in zip(
        curl.key_encoder.parameters(), key_before, encoder.parameters(), strict=True
    ):
        assert torch.allclose(k, b + 0.05 * (o - b))


def test_moco_queue_is_first_in_first_out():
    encoder = StateEncoder(4, 3, 8)
    moco = MoCo(encoder, state_augment, queue_size=5)
    moco.enqueue(torch.full((3, 3), 1.0))
    moco.enqueue(torch.full((3, 3), 2.0))  # wraps: rows 3, 4, then 0
    assert moco.queue[:, 0].tolist() == [2.0, 1.0, 1.0, 2.0, 2.0]
    assert int(moco.pointer) == 1
    out = moco(SSLBatch(obs=torch.randn(4, 4)))
    moco.after_update()  # the batch's keys go in after the step
    assert int(moco.pointer) == 0 and torch.isfinite(out.loss)


def slow_feature_data(steps: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Trajectories of a slow 2-d latent z (a random walk) seen through a fixed random map,
    with 24 fast nuisance features of larger variance, redrawn every step."""
    g = torch.Generator().manual_seed(seed)
    z = torch.cumsum(0.1 * torch.randn(steps, 2, generator=g), dim=0)
    z = (z - z.mean(0)) / z.std(0)
    mix = torch.randn(2, 8, generator=torch.Generator().manual_seed(123))
    signal = torch.tanh(z @ mix)
    nuisance = 3.0 * torch.randn(steps, 24, generator=g)
    return torch.cat([signal, nuisance], dim=1), z


def probe_r2(encoder: nn.Module, x: torch.Tensor, z: torch.Tensor) -> float:
    """R^2 of a least-squares linear probe of z from frozen features (fit on the first half,
    scored on the second)."""
    with torch.no_grad():
        f = encoder(x)
    f = torch.cat([f, torch.ones(len(f), 1)], dim=1)
    half = len(f) // 2
    w = torch.linalg.lstsq(f[:half], z[:half]).solution
    residual = z[half:] - f[half:] @ w
    return float(1 - residual.pow(2).sum() / (z[half:] - z[half:].mean(0)).pow(2).sum())


def test_a_temporally_contrasted_encoder_beats_a_random_one_under_the_linear_probe():
    torch.manual_seed(0)
    x, z = slow_feature_data(4000, seed=0)
    held_x, held_z = slow_feature_data(2000, seed=1)
    encoder = StateEncoder(32, 16, 64)
    random_r2 = probe_r2(encoder, held_x, held_z)
    objective = OBJECTIVES["temporal"](encoder, lambda v, g: v, torch.Generator().manual_seed(0))
    optimizer = torch.optim.Adam([*encoder.parameters(), *objective.own_parameters()], lr=1e-2)
    g = torch.Generator().manual_seed(2)
    for _ in range(300):
        t = torch.randint(0, len(x) - 3, (128,), generator=g)
        out = objective(SSLBatch(obs=x[t], later=x[t + 3]))
        optimizer.zero_grad()
        out.loss.backward()
        optimizer.step()
        objective.after_update()
    trained_r2 = probe_r2(encoder, held_x, held_z)
    assert trained_r2 > random_r2 + 0.2 and trained_r2 > 0.6, (random_r2, trained_r2)


def test_moco_v2_head_is_trained_and_followed_by_its_momentum_copy():
    """head=mlp (MoCo v2): the query passes an MLP head that the loss trains, the keys its
    momentum copy that no gradient reaches, and the queue holds projections of its width."""
    torch.manual_seed(0)
    encoder = StateEncoder(10, 16, 32)
    moco = MoCo(encoder, state_augment, torch.Generator().manual_seed(1), queue_size=32,
                head="mlp", projection_dim=8)  # fmt: skip
    assert moco.queue.shape == (32, 8)
    head = list(moco.head.parameters())
    assert head and all(any(p is q for q in moco.own_parameters()) for p in head)
    out = moco(batch_for("moco", pixels=False))
    out.loss.backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in head)
    assert all(p.grad is None and not p.requires_grad for p in moco.key_head.parameters())
    with torch.no_grad():
        for p in head:
            p.add_(1.0)
    before = [p.clone() for p in moco.key_head.parameters()]
    moco.after_update()
    for k, b, o in zip(moco.key_head.parameters(), before, head, strict=True):
        assert torch.allclose(k, b + 0.001 * (o - b))
    v1 = MoCo(encoder, state_augment, torch.Generator().manual_seed(1), queue_size=32)
    assert not list(v1.head.parameters()) and v1.queue.shape == (32, 16)  # v1: no head


def test_atcs_heads_train_the_compressor_and_predictor_and_the_key_side_follows():
    """head=atc: the anchor goes through the compressor and the residual predictor, the positive
    through the compressor's momentum copy, which no gradient reaches and which moves at tau."""
    torch.manual_seed(0)
    encoder = StateEncoder(10, 16, 32)
    objective = OBJECTIVES["temporal"](
        encoder, state_augment, torch.Generator().manual_seed(1), head="atc", latent_dim=8,
        predictor_hidden=12,
    )  # fmt: skip
    assert objective.W.shape == (8, 8) and objective.predictor[0].in_features == 8
    batch = batch_for("temporal", pixels=False)
    with torch.no_grad():  # the query is the compressed features plus the predictor's residual
        compressed = objective.compressor(encoder(batch.obs))
        expected = compressed + objective.predictor(compressed)
    assert torch.allclose(objective.project_query(encoder(batch.obs)), expected)
    objective(batch).loss.backward()
    for module in (objective.compressor, objective.predictor):
        assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in module.parameters())
    key = list(objective.key_compressor.parameters())
    assert all(p.grad is None and not p.requires_grad for p in key)
    own = {id(p) for p in objective.own_parameters()}
    assert {id(p) for p in objective.compressor.parameters()} <= own and not own & set(map(id, key))
    with torch.no_grad():
        for p in objective.compressor.parameters():
            p.add_(1.0)
    before = [p.detach().clone() for p in key]
    objective.after_update()
    for k, b, o in zip(key, before, objective.compressor.parameters(), strict=True):
        assert torch.allclose(k, 0.01 * o + 0.99 * b)  # ATC's tau
