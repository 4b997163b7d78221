"""Models in torch: the erf soft committee machine (second layer fixed to 1/p), stacked over an ensemble."""

from __future__ import annotations

import math

import torch

SQRT2 = math.sqrt(2.0)
SQRT_2_OVER_PI = math.sqrt(2.0 / math.pi)


def g(h: torch.Tensor) -> torch.Tensor:
    """Activation σ(h) = erf(h/√2)."""
    return torch.erf(h / SQRT2)


def g_prime(h: torch.Tensor) -> torch.Tensor:
    """σ'(h) = √(2/π) exp(−h²/2)."""
    return SQRT_2_OVER_PI * torch.exp(-0.5 * h * h)


def committee(fields: torch.Tensor) -> torch.Tensor:
    """f = (1/p) Σ_j σ(λ_j) over the last axis."""
    return g(fields).mean(dim=-1)


def order_parameters(W: torch.Tensor, teacher: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Q = W Wᵀ/d (..., p, p) and M = W W*ᵀ/d (..., p, k) for students W (S, G, p, d) and teachers (S, k, d)."""
    d = W.shape[-1]
    Q = W @ W.transpose(-1, -2) / d
    M = W @ teacher[:, None].transpose(-1, -2) / d
    return Q, M
