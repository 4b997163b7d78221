"""Batched perceptron solvers in torch: many trials (data sets) at once, each with a certificate.

- :func:`max_stability`: the maximal-stability perceptron (hard-margin SVM through the origin) by a primal–dual
  interior-point method (Mehrotra predictor–corrector), batched over trials. It decides linear separability
  (Cover 1965) and measures the largest stability κ* (Gardner 1988) with a certified bracket.
- :func:`version_space_hmc`: a sampler of the version space (Gibbs learning, Engel & Van den Broeck ch. 2) by exact
  Hamiltonian Monte Carlo of the Gaussian restricted to the polyhedral cone (Pakman & Paninski 2014).
- :func:`hebb`, :func:`online_perceptron` (through ``train.train_ensemble``), :func:`binary_gibbs_exact`
  (exhaustive enumeration of the binary students).

Conventions: patterns ξ (…, P, N) with N(0, 1) entries, labels y = ±1, signed rows a_μ = y_μ ξ_μ/√N; the
stability of weights J is min_μ y_μ J·ξ_μ/|J| (Gardner's normalisation: |J|² = N gives y J·ξ/√N).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

SEPARABLE, NON_SEPARABLE, UNDECIDED = "separable", "non_separable", "undecided"


def _float64(x, device) -> torch.Tensor:
    """A float64 copy of an array (numpy views, read-only and broadcast arrays included) on ``device``."""
    return torch.tensor(np.asarray(x, dtype=np.float64), device=device)


@dataclass
class MaxStabilityResult:
    """Per trial: status (separable / non_separable / undecided), the certified bracket of the maximal stability
    κ* (Gardner normalisation; NaN where not separable), whether the bracket closed to the tolerance, the
    iterations used and the best certified weights (zeros where none)."""

    status: np.ndarray
    stability_lower: np.ndarray
    stability_upper: np.ndarray
    converged: np.ndarray
    iterations: np.ndarray
    weights: np.ndarray


def _max_step(x, dx):
    """Largest step keeping x + step·dx ≥ 0 (rowwise; inf where dx ≥ 0)."""
    return torch.where(dx < 0, -x / dx, torch.full_like(x, math.inf)).amin(-1)


def _newton(system, rc):
    """The Newton direction (Δw, Δκ), Δs, Δλ of the interior-point step for complementarity right-hand side rc.

    Eliminating Δs = AΔw − Δκ + r3 and Δλ = rc/s − (λ/s)Δs leaves the SPD system
    [[I + AᵀGA, −AᵀG1], [−1ᵀGA, 1ᵀG1]] (Δw, Δκ) = (−r1 + Aᵀv, −r2 − 1ᵀv), v = rc/s − G r3, G = λ/s,
    factored once per iteration (L).
    """
    A, L, s, G, r1, r2, r3 = system
    N = A.shape[-1]
    v = rc / s - G * r3
    rhs = torch.cat([-r1 + torch.einsum("bpn,bp->bn", A, v), (-r2 - v.sum(-1))[:, None]], -1)
    u = torch.cholesky_solve(rhs[..., None], L)[..., 0]
    ds = torch.einsum("bpn,bn->bp", A, u[:, :N]) - u[:, N:] + r3
    return u, ds, rc / s - G * ds


def max_stability(patterns, labels, *, max_iter: int = 100, rtol: float = 1e-6, polish_below: float = 1e-7,
                  device="cpu", log=None) -> MaxStabilityResult:
    """Maximal stability of each trial's patterns (B, P, N) and labels (B, P), all trials solved together.

    The problem is the minimum-norm point of the convex hull of the signed rows a_μ = y_μ ξ_μ/√N,
      min ½‖Aᵀλ‖²  over λ ≥ 0, Σλ = 1,   dual: max κ − ½‖w‖² s.t. A w ≥ κ,
    whose value is κ*²/2N (κ* in Gardner's normalisation) when the patterns are separable and 0 when not (Gordan's
    alternative). A primal–dual interior-point method keeps λ > 0 and solves one (N+1)² system per iteration.
    Certificates, checked on every iterate in float64:
    - separable: a w with min_μ a_μ·w > 0, which also gives the lower bound κ* ≥ √N min_μ a_μ·w/‖w‖;
    - upper bound κ* ≤ √N ‖Aᵀλ‖ for any λ in the simplex;
    - non_separable: λ ≥ 0, Σλ = 1 with Aᵀλ = 0 to rounding, made exact by projecting an interior iterate with
      ‖Aᵀλ‖ < ``polish_below`` onto the null space of Aᵀ (λ − A(AᵀA)⁻¹Aᵀλ) and checking it stays ≥ 0.
    A separable trial is done when the bracket closes, upper − lower ≤ rtol·upper. A trial that reaches
    ``max_iter`` (or a numerical breakdown) without a certificate is ``undecided``; one that is certified separable
    but whose bracket did not close has ``converged`` False.
    """
    dt = torch.float64
    device = torch.device(device)
    X, y = _float64(patterns, device), _float64(labels, device)
    B, P, N = X.shape
    A = X * (y / math.sqrt(N))[..., None]
    del X
    scale = math.sqrt(N)

    status = np.full(B, UNDECIDED, dtype=object)
    lower = np.full(B, -np.inf)
    upper = np.full(B, np.inf)
    converged = np.zeros(B, dtype=bool)
    iterations = np.zeros(B, dtype=np.int64)
    weights = np.zeros((B, N))

    rows = np.arange(B)  # the trials still running, in the order of the working tensors' rows
    lam = torch.full((B, P), 1.0 / P, dtype=dt, device=device)
    w = torch.einsum("bpn,bp->bn", A, lam)
    Aw = torch.einsum("bpn,bn->bp", A, w)
    kap = Aw.amin(-1) - 1.0
    s = Aw - kap[:, None]
    eye = torch.eye(N, dtype=dt, device=device)

    for it in range(max_iter + 1):
        At_lam = torch.einsum("bpn,bp->bn", A, lam)
        Aw = torch.einsum("bpn,bn->bp", A, w)
        # certificates of the current iterate
        norm_w = w.norm(dim=-1)
        lo = torch.where(norm_w > 0, Aw.amin(-1) / norm_w, torch.full_like(norm_w, -math.inf)).cpu().numpy()
        hi = (At_lam / lam.sum(-1, keepdim=True)).norm(dim=-1).cpu().numpy()
        better = np.isfinite(lo) & (lo * scale > lower[rows])
        lower[rows[better]] = lo[better] * scale
        weights[rows[better]] = w[torch.as_tensor(better, device=device)].cpu().numpy()
        upper[rows] = np.fmin(upper[rows], np.where(np.isfinite(hi), hi * scale, np.inf))
        iterations[rows] = it
        sep = lower[rows] > 0
        status[rows[sep]] = SEPARABLE
        done = sep & (upper[rows] - lower[rows] <= rtol * upper[rows])
        # Gordan certificate for the interior iterates that have (nearly) reached the origin
        cand = np.flatnonzero(~sep & (hi < polish_below))
        if cand.size:
            ci = torch.as_tensor(cand, device=device)
            Ac, lc = A[ci], lam[ci] / lam[ci].sum(-1, keepdim=True)
            coef = torch.linalg.solve_ex(Ac.transpose(1, 2) @ Ac, torch.einsum("bpn,bp->bn", Ac, lc)[..., None])[0]
            lp = lc - torch.einsum("bpn,bn->bp", Ac, coef[..., 0])
            resid = torch.einsum("bpn,bp->bn", Ac, lp).norm(dim=-1)
            ok = ((lp.amin(-1) >= 0) & (resid <= 1e-12 * lp.sum(-1).abs())).cpu().numpy()
            status[rows[cand[ok]]] = NON_SEPARABLE
            done[cand[ok]] = True
        converged[rows[done]] = True
        if it == max_iter or done.all():
            break
        if done.any():  # drop the finished trials
            k = torch.as_tensor(np.flatnonzero(~done), device=device)
            rows, A, w, kap, lam, s, At_lam, Aw = rows[~done], A[k], w[k], kap[k], lam[k], s[k], At_lam[k], Aw[k]

        # one Mehrotra predictor–corrector step of every running trial
        r1 = w - At_lam
        r2 = lam.sum(-1) - 1.0
        r3 = Aw - kap[:, None] - s
        mu = (lam * s).mean(-1)
        G = lam / s
        AG = A * G[..., None]
        AtG1 = AG.sum(1)
        M = torch.zeros(A.shape[0], N + 1, N + 1, dtype=dt, device=device)
        M[:, :N, :N] = eye + AG.transpose(1, 2) @ A
        M[:, :N, N] = -AtG1
        M[:, N, :N] = -AtG1
        M[:, N, N] = G.sum(-1)
        L, info = torch.linalg.cholesky_ex(M)
        system = (A, L, s, G, r1, r2, r3)
        u, ds, dl = _newton(system, -lam * s)  # predictor
        step = torch.minimum(_max_step(lam, dl), _max_step(s, ds)).clamp(max=1.0)
        mu_aff = ((lam + step[:, None] * dl) * (s + step[:, None] * ds)).mean(-1)
        sigma = (mu_aff / mu).clamp(0.0, 1.0) ** 3
        u, ds, dl = _newton(system, (sigma * mu)[:, None] - lam * s - dl * ds)  # corrector
        step = (0.99 * torch.minimum(_max_step(lam, dl), _max_step(s, ds))).clamp(max=1.0)
        w = w + step[:, None] * u[:, :N]
        kap = kap + step * u[:, N]
        lam = lam + step[:, None] * dl
        s = s + step[:, None] * ds
        # a numerical breakdown ends the trial with the certificates it has so far
        ok = ((info == 0) & torch.isfinite(w).all(-1) & (lam > 0).all(-1) & (s > 0).all(-1)).cpu().numpy()
        if not ok.all():
            if not ok.any():
                break
            k = torch.as_tensor(np.flatnonzero(ok), device=device)
            rows, A, w, kap, lam, s = rows[ok], A[k], w[k], kap[k], lam[k], s[k]
    if log is not None:
        counts = {k: int((status == k).sum()) for k in (SEPARABLE, NON_SEPARABLE, UNDECIDED)}
        print(f"[max_stability] {B} trials, P = {P}, N = {N}: {counts}, bracket not closed: "
              f"{int(((status == SEPARABLE) & ~converged).sum())}, iterations ≤ {iterations.max()}", file=log,
              flush=True)
    sep = status == SEPARABLE
    return MaxStabilityResult(status.astype(str), np.where(sep, lower, np.nan), np.where(sep, upper, np.nan),
                              converged, iterations, weights)


def overlap(w, teacher):
    """Normalised teacher–student overlap R = w·w*/(|w| |w*|) over the last axis (numpy or torch)."""
    if isinstance(w, torch.Tensor):
        t = torch.as_tensor(teacher, dtype=w.dtype, device=w.device)
        return (w * t).sum(-1) / (w.norm(dim=-1) * t.norm(dim=-1))
    w, t = np.asarray(w, dtype=float), np.asarray(teacher, dtype=float)
    return (w * t).sum(-1) / (np.linalg.norm(w, axis=-1) * np.linalg.norm(t, axis=-1))


def hebb(patterns, labels, sizes):
    """Hebb's rule J = Σ_{μ ≤ P} y_μ ξ_μ for each training-set size P in ``sizes`` (nested prefixes of one stream).

    patterns (S, P_max, N), labels (S, P_max); returns J (len(sizes), S, N).
    """
    J = np.cumsum(np.asarray(labels, dtype=float)[..., None] * np.asarray(patterns, dtype=float), axis=1)
    return np.stack([J[:, P - 1] for P in sizes])


def version_space_hmc(patterns, labels, start, n_trajectories: int, generator: torch.Generator,
                      duration: float = math.pi / 2, device="cpu", memory_budget_mb: float = 512):
    """Samples of the version space {J : y_μ J·ξ_μ > 0 ∀μ} with the uniform (Gibbs) measure on directions.

    The direction of a Gaussian J ~ N(0, I_N) restricted to the polyhedral cone is uniform on the cone's part of
    the sphere, i.e. the zero-temperature Gibbs student (Engel & Van den Broeck ch. 2). It is sampled by exact
    Hamiltonian Monte Carlo (Pakman & Paninski 2014, J. Comput. Graph. Stat. 23, 518): each trajectory draws a
    fresh momentum v ~ N(0, I), moves on J(t) = J cos t + v sin t for ``duration`` and reflects v off every wall
    a_μ·J = 0 it meets, at the exact hitting time (a_μ·J(t) = c cos t + e sin t vanishes at t = π/2 + atan2(e, c)).
    All chains (B data sets) advance together, one wall event per pass; the Gram matrix AAᵀ makes a reflection
    O(P). Chains are split into groups whose Gram matrices fit ``memory_budget_mb``.

    patterns (B, P, N), labels (B, P), start (B, N) inside the cone. Returns the end points of the trajectories,
    (n_trajectories, B, N) numpy float64.
    """
    B, P, N = np.shape(patterns)
    group = max(1, int(memory_budget_mb * 2**20 // (8 * P * (P + N))))
    momenta = torch.randn(n_trajectories, B, N, generator=generator, dtype=torch.float64)
    return np.concatenate([_hmc(patterns[b:b + group], labels[b:b + group], start[b:b + group],
                                momenta[:, b:b + group], duration, torch.device(device))
                           for b in range(0, B, group)], axis=1)


def _hmc(patterns, labels, start, momenta, duration, device):
    dt = torch.float64
    X, y = _float64(patterns, device), _float64(labels, device)
    B, P, N = X.shape
    A = X * (y / math.sqrt(N))[..., None]
    del X
    K = A @ A.transpose(1, 2)  # Gram matrix of the walls' normals
    norm2 = torch.diagonal(K, dim1=1, dim2=2)
    w = _float64(start, device)
    if not (torch.einsum("bpn,bn->bp", A, w) > 0).all():
        raise ValueError("the starting points must lie inside the version space")
    rows, walls = torch.arange(B, device=device), torch.arange(P, device=device)
    out = np.empty((len(momenta), B, N))
    for k, v in enumerate(momenta):
        v = v.to(device)
        c = torch.einsum("bpn,bn->bp", A, w).clamp_min(0.0)  # exact restart of the walls' coordinates
        e = torch.einsum("bpn,bn->bp", A, v)
        left = torch.full((B,), duration, dtype=dt, device=device)
        last = torch.full((B, 1), P, dtype=torch.long, device=device)  # the wall just left (P: none)
        while bool((left > 0).any()):
            hit = torch.where(walls == last, math.inf, math.pi / 2 + torch.atan2(e, c))
            t_hit, mu = hit.min(-1)
            tau = torch.minimum(t_hit, left)
            cos, sin = torch.cos(tau)[:, None], torch.sin(tau)[:, None]
            w, v = w * cos + v * sin, v * cos - w * sin
            c, e = (c * cos + e * sin).clamp_min(0.0), e * cos - c * sin
            bounce = t_hit < left
            coef = torch.where(bounce, 2.0 * e[rows, mu] / norm2[rows, mu], 0.0)
            v = v - coef[:, None] * A[rows, mu]
            e = e - coef[:, None] * K[rows, mu]
            c[rows, mu] = torch.where(bounce, 0.0, c[rows, mu])
            last = torch.where(bounce, mu, P)[:, None]
            left = torch.where(bounce, left - tau, 0.0)
        if not (torch.einsum("bpn,bn->bp", A, w) > -1e-9).all():
            raise FloatingPointError("a chain left the version space")
        out[k] = w.cpu().numpy()
    return out


def online_perceptron(teacher, patterns, labels, sizes, device="cpu", log=None):
    """The online perceptron rule J ← J + y ξ Θ(−y J·ξ)/√N from J = 0, each example used once, for every seed.

    Gradient descent with unit step on the per-example loss −y J·ξ/√N · Θ(−y J·ξ) (Θ(0) = 1, so the first
    example is learned), one member per seed, through ``train.train_ensemble``. Returns the teacher overlap R at the
    checkpoints ``sizes`` (examples seen), shape (len(sizes), S).
    """
    from phaselab.engines.ensemble import train_ensemble

    device = torch.device(device)
    X, Y, T = _float64(patterns, device), _float64(labels, device), _float64(teacher, device)
    S, _, N = X.shape
    sqrt_n = math.sqrt(N)

    def loss(params, batch):
        x, label = batch
        stability = label * (params["w"] @ x) / sqrt_n
        return -stability * (stability <= 0).to(stability.dtype)

    run = train_ensemble({"w": torch.zeros(S, N, dtype=torch.float64, device=device)}, loss,
                         lambda step: (X[:, step], Y[:, step]), torch.ones(S, dtype=torch.float64, device=device),
                         list(sizes), lambda p: {"overlap": overlap(p["w"], T)}, batch_in_dims=0,
                         divergence_threshold=math.inf, log=log)
    return run.metrics["overlap"].T


def all_binary_vectors(N: int) -> np.ndarray:
    """The 2^N vectors of {−1, +1}^N, one a row (float32)."""
    bits = (np.arange(2**N)[:, None] >> np.arange(N)[None, :]) & 1
    return (2 * bits - 1).astype(np.float32)


def binary_gibbs_exact(teacher, patterns, labels, sizes, device="cpu", chunk: int = 4):
    """Exact Gibbs learning with binary weights: the mean ε over all consistent J ∈ {±1}^N (uniform measure).

    Enumerates the 2^N students (Györgyi 1990's setting at finite N). teacher (S, N) ±1, patterns (S, P_max, N),
    labels (S, P_max). Returns (mean ε over the version space, number of consistent students), each
    (len(sizes), S); a nested training set of P examples is the first P of the stream.
    """
    device = torch.device(device)
    W = torch.as_tensor(all_binary_vectors(np.shape(teacher)[-1]), device=device)
    S, N = np.shape(teacher)
    eps = np.empty((len(sizes), S))
    count = np.empty((len(sizes), S), dtype=np.int64)
    idx = torch.as_tensor(np.asarray(sizes) - 1, device=device)
    for s0 in range(0, S, chunk):
        X = torch.as_tensor(np.asarray(patterns[s0:s0 + chunk]), dtype=torch.float32, device=device)
        Y = torch.as_tensor(np.asarray(labels[s0:s0 + chunk]), dtype=torch.float32, device=device)
        T = torch.as_tensor(np.asarray(teacher[s0:s0 + chunk]), dtype=torch.float32, device=device)
        agree = (torch.einsum("kn,spn->skp", W, X) * Y[:, None, :]) > 0  # (s, 2^N, P_max)
        consistent = torch.cumprod(agree.to(torch.uint8), dim=-1).bool()[..., idx]  # (s, 2^N, sizes)
        R = (torch.einsum("kn,sn->sk", W, T) / N).clamp(-1, 1)
        e = (torch.arccos(R) / math.pi).double()[..., None]  # (s, 2^N, 1)
        n = consistent.sum(1)  # (s, sizes)
        eps[:, s0:s0 + chunk] = ((e * consistent).sum(1) / n).T.cpu().numpy()
        count[:, s0:s0 + chunk] = n.T.cpu().numpy()
    return eps, count
