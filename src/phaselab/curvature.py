"""Sharpness of the loss landscape, batched over the members of an ensemble.

The loss of ONE member is written functionally, ``loss(params, batch)`` (as for ``train.train_ensemble``); the
parameters are a dict of tensors stacked over M members. Everything here is vmapped over the members:

- :func:`hessian_vector_product`: H v by forward-over-reverse differentiation (torch.func.jvp of torch.func.grad),
  never forming H;
- :func:`top_eigenvalue`: the largest (algebraic) eigenvalue of H, the *sharpness* of Cohen, Kaur, Li, Kolter &
  Talwalkar (ICLR 2021), by Lanczos with full reorthogonalisation: k Hessian-vector products per member give the
  Ritz values of a k-dimensional Krylov space, whose largest converges to λ_max much faster than power iteration
  and is never fooled by a large negative eigenvalue;
- :func:`epsilon_sharpness`: Keskar, Mudigere, Nocedal, Smelyanskiy & Tang (ICLR 2017), metric (3):
  100 · (max_{y ∈ C_ε} f(x + y) − f(x)) / (1 + f(x)), C_ε = {|y_i| ≤ ε (|x_i| + 1)}, the maximum taken by
  projected sign-gradient ascent (a lower bound of the true maximum, as Keskar's L-BFGS-B one is).
"""

from __future__ import annotations

import math

import torch
from torch.func import grad, jvp, vmap


class Flat:
    """Stacked parameter dicts (M, ...) as one matrix (M, P), and one member's flat vector back as a dict."""

    def __init__(self, params: dict):
        self.names = list(params)
        self.shapes = [tuple(params[n].shape[1:]) for n in self.names]
        self.sizes = [math.prod(s) for s in self.shapes]

    def flatten(self, params: dict) -> torch.Tensor:
        return torch.cat([params[n].reshape(params[n].shape[0], -1) for n in self.names], dim=1)

    def unflatten_one(self, theta: torch.Tensor) -> dict:
        parts = torch.split(theta, self.sizes)
        return {n: p.reshape(s) for n, p, s in zip(self.names, parts, self.shapes)}

    def unflatten(self, theta: torch.Tensor) -> dict:
        parts = torch.split(theta, self.sizes, dim=1)
        return {n: p.reshape(theta.shape[0], *s) for n, p, s in zip(self.names, parts, self.shapes)}


def hessian_vector_product(loss, flat: Flat, batch_in_dims=None):
    """(θ (M, P), batch, v (M, P)) → H(θ_m) v_m for every member m, the Hessian of ``loss`` in flat parameters."""

    def one(theta, batch, v):
        gradient = grad(lambda t: loss(flat.unflatten_one(t), batch))
        return jvp(gradient, (theta,), (v,))[1]

    return vmap(one, in_dims=(0, batch_in_dims, 0))


def _orthonormal_start(shape, dtype, device, generator, basis=None):
    v = torch.randn(shape, dtype=dtype, generator=generator).to(device)
    if basis is not None:
        v = v - torch.einsum("mkp,mk->mp", basis, torch.einsum("mkp,mp->mk", basis, v))
    return v / v.norm(dim=1, keepdim=True)


def top_eigenvalue(loss, params: dict, batch, *, batch_in_dims=None, iters: int = 20, seed: int = 0) -> torch.Tensor:
    """λ_max of the Hessian of ``loss`` at each member's parameters, (M,), by ``iters`` Lanczos steps.

    Full reorthogonalisation against the whole Krylov basis (two passes) keeps the Ritz values free of ghost
    copies; where a member's Krylov space closes (β_j ≈ 0: an invariant subspace, e.g. a small quadratic), it
    restarts from a fresh random vector orthogonal to the basis, which leaves the exact spectrum of the closed
    part among the Ritz values. With iters ≥ P the result is the exact top eigenvalue.
    """
    flat = Flat(params)
    with torch.no_grad():
        theta = flat.flatten(params)
    M, P = theta.shape
    k = min(iters, P)
    hvp = hessian_vector_product(loss, flat, batch_in_dims)
    gen = torch.Generator().manual_seed(seed)
    basis = torch.zeros(M, k, P, dtype=theta.dtype, device=theta.device)
    alpha = torch.zeros(M, k, dtype=theta.dtype, device=theta.device)
    beta = torch.zeros(M, k, dtype=theta.dtype, device=theta.device)
    v = _orthonormal_start((M, P), theta.dtype, theta.device, gen)
    for j in range(k):
        basis[:, j] = v
        w = hvp(theta, batch, v)
        with torch.no_grad():
            alpha[:, j] = (w * v).sum(1)
            Vj = basis[:, : j + 1]
            for _ in range(2):  # full reorthogonalisation, twice is enough (Kahan–Parlett)
                w = w - torch.einsum("mkp,mk->mp", Vj, torch.einsum("mkp,mp->mk", Vj, w))
            if j + 1 < k:
                norm = w.norm(dim=1)
                scale = alpha[:, : j + 1].abs().amax(1).clamp_min(torch.finfo(theta.dtype).tiny)
                closed = norm <= 1e3 * torch.finfo(theta.dtype).eps * scale
                beta[:, j] = torch.where(closed, torch.zeros_like(norm), norm)
                fresh = _orthonormal_start((M, P), theta.dtype, theta.device, gen, Vj)
                v = torch.where(closed[:, None], fresh, w / norm.clamp_min(torch.finfo(theta.dtype).tiny)[:, None])
    with torch.no_grad():
        T = torch.diag_embed(alpha) + torch.diag_embed(beta[:, : k - 1], 1) + torch.diag_embed(beta[:, : k - 1], -1)
        return torch.linalg.eigvalsh(T)[:, -1]


def epsilon_sharpness(loss, params: dict, batch, *, epsilon: float = 1e-3, steps: int = 20, step_fraction: float = 0.25,
                      batch_in_dims=None) -> tuple[torch.Tensor, torch.Tensor]:
    """Keskar et al. (2017) ε-sharpness of each member, (M,), in percent of 1 + f(x), and its first-order part.

    Projected sign-gradient ascent from y = 0 inside the box |y_i| ≤ ε(|x_i| + 1): y ← clip(y + a · box ·
    sign ∇f(x + y)), a = ``step_fraction``, ``steps`` times; the largest f seen is the estimate of the maximum.
    The first-order part 100 ε Σ_i |∂_i f(x)| (|x_i| + 1) / (1 + f(x)) is what the metric reads where the gradient
    does not vanish (an SGD iterate is not at a minimum of the full loss): only the rest measures curvature.
    """
    flat = Flat(params)
    with torch.no_grad():
        x = flat.flatten(params)

    def one(t, b):
        return loss(flat.unflatten_one(t), b)

    value_and_grad = vmap(lambda t, b: (one(t, b), grad(one)(t, b)), in_dims=(0, batch_in_dims))
    box = epsilon * (x.abs() + 1)
    y = torch.zeros_like(x)
    f0, g = value_and_grad(x, batch)
    first_order = (100 * (g.abs() * box).sum(1) / (1 + f0)).detach()
    best = f0.clone()
    for _ in range(steps):
        with torch.no_grad():
            y = torch.maximum(torch.minimum(y + step_fraction * box * torch.sign(g), box), -box)
        f, g = value_and_grad(x + y, batch)
        best = torch.maximum(best, f.detach())
    return (100 * (best - f0) / (1 + f0)).detach(), first_order
