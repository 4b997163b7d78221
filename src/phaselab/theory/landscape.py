"""Exact population losses of two-layer networks, gradient descent on them, and the classification of end points.

- ReLU networks (Safran & Shamir, ICML 2018; the project's theory reference, section 9): x ~ N(0, I_d), target
  Σ_{i≤k} relu(v_i·x) with orthonormal v_i, student Σ_{j≤n} relu(w_j·x), output weights 1, loss
  F(W) = ½E[(student − target)²]. With θ the angle between w and u,
  κ(w, u) = E[relu(w·x) relu(u·x)] = ‖w‖‖u‖ (sin θ + (π − θ) cos θ) / (2π)  (the arc-cosine kernel of degree 1),
  ∇_w κ(w, u) = (‖u‖ sin θ ŵ + (π − θ) u) / (2π),  κ(w, w) = ‖w‖²/2, ∇_w κ(w, w) at u = w counts twice: w.
  So F = ½ Σ_{j,l} κ(w_j, w_l) − Σ_{j,i} κ(w_j, v_i) + ½ Σ_{i,m} κ(v_i, v_m) and
  ∇_{w_j} F = Σ_l g(w_j, w_l) − Σ_i g(w_j, v_i), with g(w, u) = ∇_w κ(w, u) and g(w_j, w_j) = w_j/2.
  The teacher is v_i = e_i in R^d (d = k by default): the loss is rotation invariant.

- erf soft committees (Saad & Solla 1995; theory reference, section 1) in reduced coordinates: the population risk
  depends on the student weights only through Q = WWᵀ/d and M = WW*ᵀ/d, so a student is represented by the rows
  a_j ∈ R^m (m ≥ k + p) with w_j = √d a_j and the teacher by √d e_r: Q = aaᵀ, M = a[:, :k], P = I. The risk is
  R(a) = ½ Σ_{c,e} u_c u_e (2/π) arcsin(C_ce / √((1 + C_cc)(1 + C_ee))) over all fields (u = −1/p students,
  +1/k teachers, C the Gram matrix of the field vectors), and online SGD in the d → ∞ limit without its η² terms is
  the gradient flow da/dτ = −p ∇_a R(a), τ = η t (t = steps/d, η = γ/p): dQ/dτ and dM/dτ are then the O(η) part of
  the Saad–Solla ODE (tested against :func:`phaselab.theory.committee.rhs`).

Gradient descent runs many initialisations at once (batched numpy); the Hessian of the closed form is taken by
central finite differences of the exact gradient; :func:`classify` names the end point.
"""

from __future__ import annotations

import numpy as np

GLOBAL, SPURIOUS, SADDLE, NOT_CONVERGED = "global minimum", "spurious minimum", "saddle", "not converged"
CLASSES = (GLOBAL, SPURIOUS, SADDLE, NOT_CONVERGED)
_2PI = 2.0 * np.pi


# ------------------------------------------------------------------------------------------------ ReLU networks
def teacher(k: int, d: int | None = None) -> np.ndarray:
    """The orthonormal teacher v_i = e_i, (k, d)."""
    return np.eye(k, d or k)


def _angles(W, U):
    """Norms and cos/sin/θ of every pair (w_j, u_i): W (B, n, d), U (B or 1, m, d) → arrays (B, n, m)."""
    nw, nu = np.linalg.norm(W, axis=-1), np.linalg.norm(U, axis=-1)
    cos = np.einsum("bnd,bmd->bnm", W, np.broadcast_to(U, (W.shape[0],) + U.shape[1:]))
    with np.errstate(invalid="ignore", divide="ignore"):
        cos = np.clip(cos / (nw[..., :, None] * nu[..., None, :]), -1.0, 1.0)
    cos = np.nan_to_num(cos)  # a zero vector: any angle gives κ = 0
    theta = np.arccos(cos)
    return nw, nu, cos, np.sqrt(np.maximum(1.0 - cos**2, 0.0)), theta


def relu_kernel(W, U) -> np.ndarray:
    """κ(w_j, u_i) = E[relu(w_j·x) relu(u_i·x)] = ‖w‖‖u‖ (sin θ + (π − θ) cos θ) / (2π), (B, n, m)."""
    W, U = np.asarray(W, float), np.asarray(U, float)
    nw, nu, cos, sin, theta = _angles(W, U)
    return nw[..., :, None] * nu[..., None, :] * (sin + (np.pi - theta) * cos) / _2PI


def relu_loss(W, V) -> np.ndarray:
    """F(W) = ½E[(Σ_j relu(w_j·x) − Σ_i relu(v_i·x))²] for W (B, n, d) and V (k, d): (B,)."""
    W = np.asarray(W, float)
    V = np.asarray(V, float)[None]
    return 0.5 * relu_kernel(W, W).sum((1, 2)) - relu_kernel(W, V).sum((1, 2)) + 0.5 * relu_kernel(V, V).sum()


def _relu_pull(W, U, same: bool):
    """Σ_i g(w_j, u_i) for every j: (B, n, d); ``same``: U is W itself (g(w_j, w_j) = w_j/2 on the diagonal)."""
    nw, nu, cos, sin, theta = _angles(W, U)
    if same:
        n = W.shape[1]
        sin[:, np.arange(n), np.arange(n)] = 0.0
        theta[:, np.arange(n), np.arange(n)] = 0.0
    radial = (sin * nu[..., None, :]).sum(-1)  # Σ_i ‖u_i‖ sin θ_ji
    with np.errstate(invalid="ignore", divide="ignore"):
        unit = np.nan_to_num(W / nw[..., None])
    Ub = np.broadcast_to(U, (W.shape[0],) + U.shape[1:])
    return (radial[..., None] * unit + np.einsum("bnm,bmd->bnd", np.pi - theta, Ub)) / _2PI


def relu_grad(W, V) -> np.ndarray:
    """∇_W F = Σ_l g(w_j, w_l) − Σ_i g(w_j, v_i), (B, n, d)."""
    W = np.asarray(W, float)
    return _relu_pull(W, W, True) - _relu_pull(W, np.asarray(V, float)[None], False)


def relu_monte_carlo(W, V, samples: int, generator: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Monte Carlo estimate of F(W) for W (B, n, d) and its standard error, from ``samples`` Gaussian inputs."""
    x = generator.standard_normal((samples, np.shape(W)[-1]))
    student = np.maximum(np.einsum("sd,bnd->bsn", x, W), 0).sum(-1)
    target = np.maximum(x @ np.asarray(V, float).T, 0).sum(-1)
    sq = 0.5 * (student - target) ** 2
    return sq.mean(-1), sq.std(-1, ddof=1) / np.sqrt(samples)


# ------------------------------------------------------------------------------------------ erf soft committees
def committee_fields(a, k: int) -> np.ndarray:
    """The field vectors (students a_j, then teachers e_r), (B, p + k, m)."""
    a = np.asarray(a, float)
    t = np.broadcast_to(np.eye(k, a.shape[-1]), (a.shape[0], k, a.shape[-1]))
    return np.concatenate([a, t], 1)


def _u(p: int, k: int) -> np.ndarray:
    return np.concatenate([np.full(p, -1.0 / p), np.full(k, 1.0 / k)])


def committee_risk(a, k: int) -> np.ndarray:
    """R(a) = ½ Σ_{c,e} u_c u_e (2/π) arcsin(C_ce / √((1 + C_cc)(1 + C_ee))) for a (B, p, m): (B,)."""
    G = committee_fields(a, k)
    C = G @ G.transpose(0, 2, 1)
    s = np.sqrt(1.0 + np.diagonal(C, axis1=1, axis2=2))
    I2 = (2 / np.pi) * np.arcsin(np.clip(C / (s[:, :, None] * s[:, None, :]), -1, 1))
    u = _u(a.shape[1], k)
    return 0.5 * np.einsum("c,bce,e->b", u, I2, u)


def committee_grad(a, k: int) -> np.ndarray:
    """∇_a R, (B, p, m): with s_ce = √((1 + C_cc)(1 + C_ee)), x_ce = C_ce/s_ce,
    ∇_{a_j} R = u_j (2/π) [Σ_{e≠j} u_e (g_e/s_je − x_je a_j/(1 + C_jj)) / √(1 − x_je²)
    + u_j a_j / ((1 + C_jj) √(1 + 2C_jj))]."""
    a = np.asarray(a, float)
    B, p, m = a.shape
    G = committee_fields(a, k)
    C = G @ G.transpose(0, 2, 1)
    dC = 1.0 + np.diagonal(C, axis1=1, axis2=2)
    Cs = C[:, :p, :]  # (B, p, p + k)
    s = np.sqrt(dC[:, :p, None] * dC[:, None, :])
    x = np.clip(Cs / s, -1.0, 1.0)
    u = _u(p, k)
    w = u[None, None, :] / np.sqrt(np.maximum(1.0 - x**2, 1e-300))
    w[:, np.arange(p), np.arange(p)] = 0.0  # the e = j term is the diagonal one below
    pull = np.einsum("bje,bem->bjm", w / s, G)
    radial = -(w * x).sum(-1) / dC[:, :p] + u[:p] / (dC[:, :p] * np.sqrt(2.0 * dC[:, :p] - 1.0))
    return (2 / np.pi) * u[:p][None, :, None] * (pull + radial[..., None] * a)


def committee_order_parameters(a, k: int) -> tuple[np.ndarray, np.ndarray]:
    """(Q, M) = (aaᵀ, a[:, :k]) of reduced students a (B, p, m) (P = I)."""
    a = np.asarray(a, float)
    return a @ a.transpose(0, 2, 1), a[..., :k]


def committee_reduce(W, W_teacher) -> np.ndarray:
    """Reduced coordinates a (B, p, k + p) of students W (B, p, d) against an orthogonal teacher W* (k, d) with
    W*W*ᵀ/d = I: a[:, :k] = M = WW*ᵀ/d, and a[:, k:] the Cholesky factor of Q − MMᵀ (so aaᵀ = Q)."""
    W, Wt = np.asarray(W, float), np.asarray(W_teacher, float)
    d = W.shape[-1]
    Q, M = W @ W.transpose(0, 2, 1) / d, W @ Wt.T / d
    L = np.linalg.cholesky(Q - M @ M.transpose(0, 2, 1))
    return np.concatenate([M, L], -1)


# --------------------------------------------------------------------------------- descent and classification
def hessian_fd(grad, X, h: float = 1e-5) -> np.ndarray:
    """Hessian of a loss at X (B, ...) from central finite differences of its exact gradient ``grad`` (batched),
    symmetrised: (B, P, P) with P the number of parameters of one member."""
    X = np.asarray(X, float)
    B, P = X.shape[0], X[0].size
    flat = X.reshape(B, P)
    H = np.empty((B, P, P))
    for i in range(P):
        e = np.zeros(P)
        e[i] = h
        gp = grad((flat + e).reshape(X.shape)).reshape(B, P)
        gm = grad((flat - e).reshape(X.shape)).reshape(B, P)
        H[:, i] = (gp - gm) / (2 * h)
    return 0.5 * (H + H.transpose(0, 2, 1))


def descend(loss, grad, X0, lr: float, max_steps: int, *, loss_tol: float, grad_tol: float, check_every: int = 100,
            log=None) -> dict:
    """Gradient descent X ← X − lr ∇F(X) of every member of X0 (B, ...) at once, each stopping when its loss falls
    below ``loss_tol`` or its gradient norm below ``grad_tol`` (checked every ``check_every`` steps), at most
    ``max_steps``. Returns {"X", "loss", "grad_norm", "steps" (B,), "history" (B, checks): the loss at every
    check, NaN once a member stopped, "check_steps"}."""
    X = np.array(X0, float)
    B = X.shape[0]
    steps = np.full(B, max_steps)
    active = np.arange(B)
    done = 0
    checks = [0]
    history = [loss(X)]
    while active.size and done < max_steps:
        n = min(check_every, max_steps - done)
        Xa = X[active]
        for _ in range(n):
            Xa -= lr * grad(Xa)
        X[active] = Xa
        done += n
        f, g = loss(Xa), np.sqrt((grad(Xa) ** 2).reshape(len(active), -1).sum(-1))
        row = np.full(B, np.nan)
        row[active] = f
        history.append(row)
        checks.append(done)
        stop = (f < loss_tol) | (g < grad_tol) | ~np.isfinite(f)
        steps[active[stop]] = done
        active = active[~stop]
        if log is not None and len(checks) % 100 == 0:
            log(f"step {done}: {active.size} of {B} still descending")
    f = loss(X)
    g = np.sqrt((grad(X) ** 2).reshape(B, -1).sum(-1))
    return {"X": X, "loss": f, "grad_norm": g, "steps": steps, "history": np.stack(history, 1),
            "check_steps": np.asarray(checks)}


def classify(loss, grad_norm, min_eig, *, loss_tol: float, grad_tol: float, eig_tol: float) -> np.ndarray:
    """The end point of each run: global minimum (loss < loss_tol), else, where the gradient norm is below
    grad_tol, a spurious minimum (smallest Hessian eigenvalue ≥ −eig_tol) or a saddle; else not converged."""
    loss, grad_norm, min_eig = (np.asarray(v, float) for v in (loss, grad_norm, min_eig))
    critical = grad_norm < grad_tol
    return np.where(loss < loss_tol, GLOBAL,
                    np.where(critical & (min_eig >= -eig_tol), SPURIOUS,
                             np.where(critical, SADDLE, NOT_CONVERGED))).astype(object)


def min_hessian_eigenvalue(grad, X, h: float = 1e-5, chunk: int = 256) -> np.ndarray:
    """Smallest eigenvalue of the finite-difference Hessian of each member of X (B, ...)."""
    X = np.asarray(X, float)
    out = np.empty(X.shape[0])
    for b0 in range(0, X.shape[0], chunk):
        out[b0:b0 + chunk] = np.linalg.eigvalsh(hessian_fd(grad, X[b0:b0 + chunk], h))[:, 0]
    return out
