"""Uniform stability of SGD (Hardt, Recht & Singer, ICML 2016); shared/reference/theory.md section 11.

For a convex, L-Lipschitz, β-smooth loss and steps α_t ≤ 2/β, the gradient update is non-expansive, so two SGD runs
on datasets S, S′ that differ in one example (same initialisation, same sample order) move apart only at the steps
that use the differing example, by at most α_t ‖∇ℓ(w; z) − ∇ℓ(w′; z′)‖ / B ≤ 2 α_t L / B. That example is in a
batch of B with probability B/n, so

    E ‖w_T − w′_T‖ ≤ (2L/n) Σ_{t<T} α_t,   and   sup_z E |ℓ(w_T; z) − ℓ(w′_T; z)| ≤ ε_stab = (2L²/n) Σ_{t<T} α_t,

and the expected generalisation gap E[R(w_T) − R_S(w_T)] is at most ε_stab (Hardt et al., Theorems 2.2 and 3.8;
the same with a fixed random permutation per epoch, where the example is used exactly once an epoch).

Binary logistic regression ℓ(w; x, y) = log(1 + exp(−y wᵀx)), y = ±1: ∇ℓ = −y σ(−y wᵀx) x, so L = max ‖x‖ over
the data, and the Hessian σ(1 − σ) x xᵀ gives β = max ‖x‖² / 4.

numpy only.
"""

from __future__ import annotations

import numpy as np


def logistic_loss(w: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """log(1 + exp(−y wᵀx)) per example (numerically stable); w (..., d), x (n, d), y (n,) ±1 → (..., n)."""
    return np.logaddexp(0.0, -y * (np.asarray(w) @ np.asarray(x).T))


def logistic_gradient(w: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """∇_w of the logistic loss per example: −y σ(−y wᵀx) x, shape (n, d) for one w (d,)."""
    margin = y * (x @ w)
    return -(y / (1.0 + np.exp(margin)))[:, None] * x


def logistic_lipschitz(x: np.ndarray) -> float:
    """L = max_i ‖x_i‖: the Lipschitz constant of w ↦ ℓ(w; x_i, y_i) over the data (|σ| ≤ 1)."""
    return float(np.linalg.norm(np.asarray(x, dtype=float), axis=-1).max())


def logistic_smoothness(x: np.ndarray) -> float:
    """β = max_i ‖x_i‖² / 4: the largest Hessian eigenvalue σ(1 − σ)‖x‖² ≤ ‖x‖²/4 over the data."""
    return float((np.linalg.norm(np.asarray(x, dtype=float), axis=-1) ** 2).max() / 4.0)


def step_sum(lr: float | np.ndarray, steps) -> np.ndarray:
    """Σ_{t<T} α_t at each T of ``steps``: a constant α gives α T; an array of per-step α_t its cumulative sums."""
    steps = np.asarray(steps, dtype=int)
    lr = np.asarray(lr, dtype=float)
    if lr.ndim == 0:
        return lr * steps
    return np.concatenate([[0.0], np.cumsum(lr)])[steps]


def distance_bound(lr, steps, n: int, lipschitz: float) -> np.ndarray:
    """E ‖w_T − w′_T‖ ≤ (2L/n) Σ_{t<T} α_t: coupled SGD on datasets of size n differing in one example."""
    return 2.0 * lipschitz / n * step_sum(lr, steps)


def stability_bound(lr, steps, n: int, lipschitz: float) -> np.ndarray:
    """ε_stab = (2L²/n) Σ_{t<T} α_t: the uniform-stability bound on the loss, and on the expected
    generalisation gap E[R(w_T) − R_S(w_T)]."""
    return 2.0 * lipschitz**2 / n * step_sum(lr, steps)


def step_size_allowed(lr: float, smoothness: float) -> bool:
    """Hardt et al.'s condition α_t ≤ 2/β for the gradient step to be non-expansive on a convex β-smooth loss."""
    return float(lr) <= 2.0 / float(smoothness)
