"""Contrastive losses (pure torch): InfoNCE over a logits matrix whose diagonal holds the
positives, NT-Xent over two views, and the contrastive top-1 accuracy they are logged with."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def info_nce(logits: torch.Tensor) -> torch.Tensor:
    """Cross-entropy of each row against its diagonal entry: row i's positive is column i, the
    other columns are its negatives (van den Oord et al. 2018; CURL's in-batch form). Extra
    columns beyond the square are further negatives."""
    if logits.dim() != 2 or logits.shape[1] < logits.shape[0]:
        raise ValueError(f"logits must be (N, M) with M >= N, got {tuple(logits.shape)}")
    # shifting each row by its maximum changes no softmax and keeps exp() in range (CURL)
    logits = logits - logits.max(dim=1, keepdim=True).values.detach()
    labels = torch.arange(logits.shape[0], device=logits.device)
    return F.cross_entropy(logits, labels)


def top1_accuracy(logits: torch.Tensor) -> torch.Tensor:
    """Fraction of rows whose largest logit is the positive (the diagonal)."""
    labels = torch.arange(logits.shape[0], device=logits.device)
    return (logits.argmax(dim=1) == labels).float().mean()


def nt_xent(
    z1: torch.Tensor, z2: torch.Tensor, temperature: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """SimCLR's normalised-temperature cross-entropy (Chen et al. 2020).

    Each of the 2N projected views is contrasted with its partner (the other view of the same
    sample) against the 2N-2 views of the other samples; cosine similarities over a temperature.
    Returns (loss, top-1 accuracy)."""
    if z1.shape != z2.shape or z1.dim() != 2:
        raise ValueError(f"views must be two (N, d) tensors, got {z1.shape} and {z2.shape}")
    n = z1.shape[0]
    z = F.normalize(torch.cat([z1, z2]), dim=1)
    sim = z @ z.T / temperature
    sim = sim.masked_fill(torch.eye(2 * n, dtype=torch.bool, device=z.device), float("-inf"))
    partner = torch.cat([torch.arange(n, 2 * n), torch.arange(0, n)]).to(z.device)
    loss = F.cross_entropy(sim, partner)
    accuracy = (sim.argmax(dim=1) == partner).float().mean()
    return loss, accuracy
