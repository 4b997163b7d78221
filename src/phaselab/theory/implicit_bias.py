"""The implicit bias of gradient descent on separable data (Soudry, Hoffer, Nacson, Gunasekar & Srebro, JMLR 2018).

Data z_n = y_n x_n (n = 1..N) linearly separable through the origin; GD w ← w − η ∇L on the mean logistic loss
L(w) = (1/N) Σ_n log(1 + exp(−z_n·w)). Soudry et al. (Theorem 3): w(t) = ŵ log t + ρ(t) with ρ(t) bounded, ŵ the
hard-margin SVM solution

    ŵ = argmin ‖w‖²  subject to  z_n·w ≥ 1 for all n,

so w(t)/‖w(t)‖ → ŵ/‖ŵ‖ with the angle and the normalised-margin gap both decaying like 1/log t, and ‖w(t)‖ grows
like ‖ŵ‖ log t. Where the support vectors S span the span of the data, ρ(t) → w̃, the solution in that span of

    (η/N) exp(−z_n·w̃) = α_n,  n ∈ S,   ŵ = Σ_{n∈S} α_n z_n (α the SVM dual variables),

which fixes the prefactor of the 1/log t decay (their eq. (8), with η → η/N for the mean loss).
"""

from __future__ import annotations

import numpy as np


def max_margin(Z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Hard-margin SVM through the origin: (ŵ, α) with ŵ = Zᵀα, α ≥ 0, for rows z_n = y_n x_n.

    Solved as the least-distance program min ‖w‖ s.t. Z w ≥ 1 by Lawson & Hanson's reduction to non-negative
    least squares (scipy.optimize.nnls): with E = [Zᵀ; 1ᵀ] and f = e_{d+1}, u = argmin_{u ≥ 0} ‖E u − f‖ gives
    r = E u − f, ŵ = −r_{1..d}/r_{d+1} and the dual variables α = u/(1 − Σu).
    """
    from scipy.optimize import nnls

    Z = np.asarray(Z, dtype=float)
    n, d = Z.shape
    E = np.vstack([Z.T, np.ones((1, n))])
    f = np.zeros(d + 1)
    f[-1] = 1.0
    u, residual = nnls(E, f, maxiter=50 * n)
    if residual < 1e-12:
        raise ValueError("the data are not linearly separable through the origin")
    r = E @ u - f
    return -r[:d] / r[d], u / (1.0 - u.sum())


def support(alpha: np.ndarray, tol: float = 1e-9) -> np.ndarray:
    """Indices of the support vectors (α_n > tol · max α)."""
    return np.flatnonzero(alpha > tol * alpha.max())


def support_spans_data(Z: np.ndarray, alpha: np.ndarray) -> bool:
    """Whether the support vectors span the span of all data (then ρ(t) → w̃ is fixed by the theory)."""
    return np.linalg.matrix_rank(Z[support(alpha)]) == np.linalg.matrix_rank(Z)


def residual(Z: np.ndarray, alpha: np.ndarray, lr: float) -> np.ndarray:
    """w̃: z_n·w̃ = log(η/(N α_n)) for the support vectors, the minimum-norm solution (Soudry et al. eq. (8))."""
    S = support(alpha)
    return np.linalg.lstsq(Z[S], np.log(lr / (len(Z) * alpha[S])), rcond=None)[0]


def asymptote(t, w_hat: np.ndarray, w_tilde: np.ndarray) -> np.ndarray:
    """w(t) ≈ ŵ log t + w̃, (len(t), d)."""
    return np.log(np.asarray(t, dtype=float))[:, None] * w_hat + w_tilde


def angle(w: np.ndarray, w_hat: np.ndarray) -> np.ndarray:
    """Angle (radians) between each row of w and ŵ."""
    w = np.atleast_2d(w)
    cos = w @ w_hat / (np.linalg.norm(w, axis=-1) * np.linalg.norm(w_hat))
    return np.arccos(np.clip(cos, -1.0, 1.0))


def margin_gap(w: np.ndarray, Z: np.ndarray, w_hat: np.ndarray) -> np.ndarray:
    """γ̂ − min_n z_n·w/‖w‖, the normalised-margin gap to the maximum margin γ̂ = 1/‖ŵ‖, for each row of w."""
    w = np.atleast_2d(w)
    return 1.0 / np.linalg.norm(w_hat) - (w @ Z.T).min(-1) / np.linalg.norm(w, axis=-1)
