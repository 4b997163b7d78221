"""The batched-ensemble engine: online SGD of many committee machines of one shape in one process.

An ensemble is S seed groups × G members (e.g. learning rates) of width p in dimension d, stacked as W (S, G, p, d).
Members of one seed group share their teacher, their input stream x_t ~ N(0, I_d) and their label noise, so one
step is two batched matmuls over the whole ensemble and no Python loop over members:

    λ = W x/√d,  f = (1/p) Σ_j σ(λ_j),  W_j ← W_j + γ/(p√d) (y − f) σ'(λ_j) x,  y = f*(x) + √Δ ξ.

Inputs are drawn on the CPU from one torch generator per seed group, in blocks, and moved to the device, so a CPU
and a CUDA run of the same seed see the same stream. The host syncs only at checkpoints, where the order
parameters give the exact population risk (theory.committee.risk) and diverged members are frozen.
"""

from __future__ import annotations

import math
import sys
import time
from dataclasses import dataclass

import numpy as np
import torch

from phaselab.models import committee, g_prime, order_parameters
from phaselab.theory.committee import risk as population_risk


def pick_device(name: str = "auto") -> torch.device:
    """'auto' → CUDA when present, else CPU; 'cuda' without a GPU is an error naming the key."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("config key 'device' is 'cuda' but no CUDA device is available")
    return torch.device(name)


@dataclass
class EnsembleResult:
    risk: np.ndarray  # (S, G, T) excess population risk at the checkpoints; NaN after divergence
    test_risk: np.ndarray  # (S, G) held-out ½⟨(f* − f)²⟩ at the end; NaN if diverged
    diverged_step: np.ndarray  # (S, G) step of divergence, -1 if the member stayed finite
    Q0: np.ndarray  # (S, p, p) initial order parameters of each seed group's student (shared by its members)
    M0: np.ndarray  # (S, p, k)
    seconds: float
    member_steps_per_s: float


def train_committee_ensemble(
    W0: np.ndarray,
    teacher: np.ndarray,
    lr: np.ndarray,
    checkpoints: np.ndarray,
    stream_seeds: list[int],
    noise: float = 0.0,
    test_x: np.ndarray | None = None,
    test_f: np.ndarray | None = None,
    device: str | torch.device = "cpu",
    divergence_threshold: float = 1e4,
    block: int = 256,
    log=None,
) -> EnsembleResult:
    """Train S×G committee machines by one-pass SGD.

    W0 (S, p, d): initial student of each seed group, copied to its G members; teacher (S, k, d); lr (G,) or (S, G)
    learning rates γ; checkpoints: increasing integer step counts (0 allowed), the last one is the run length;
    stream_seeds: one seed per group for inputs and label noise. A member is diverged when its weights become
    non-finite or max_j Q_jj exceeds ``divergence_threshold``; it is then frozen and its risk is NaN.
    """
    device = torch.device(device)
    S, p, d = W0.shape
    k = teacher.shape[1]
    lr = np.broadcast_to(np.asarray(lr, dtype=np.float64), (S, np.shape(lr)[-1]))
    G = lr.shape[1]
    checkpoints = np.asarray(checkpoints, dtype=np.int64)
    W = torch.as_tensor(W0, device=device).unsqueeze(1).repeat(1, G, 1, 1).contiguous()  # (S, G, p, d)
    Wt = torch.as_tensor(teacher, device=device)  # (S, k, d)
    step_size = torch.as_tensor(lr / (p * math.sqrt(d)), dtype=torch.float32, device=device)  # (S, G)
    generators = [torch.Generator().manual_seed(int(s)) for s in stream_seeds]
    P = (Wt @ Wt.transpose(-1, -2) / d).double().cpu().numpy()  # (S, k, k)

    risk = np.full((S, G, len(checkpoints)), np.nan)
    diverged = np.full((S, G), -1, dtype=np.int64)
    Q0, M0 = (a[:, 0].double().cpu().numpy() for a in order_parameters(W[:, :1], Wt))
    sqrt_d, sqrt_noise = math.sqrt(d), math.sqrt(noise)
    Wf = W.view(S, G * p, d)

    def checkpoint(i: int, step: int) -> None:
        Q, M = order_parameters(W, Wt)
        Q, M = Q.double().cpu().numpy(), M.double().cpu().numpy()
        qmax = np.diagonal(Q, axis1=-2, axis2=-1).max(axis=-1)
        bad = (~np.isfinite(qmax) | (qmax > divergence_threshold)) & (diverged < 0)
        if bad.any():
            diverged[bad] = step
            mask = torch.as_tensor(bad, device=device)
            W[mask] = 0.0
            step_size[mask] = 0.0
        r = population_risk(Q, M, P[:, None], p, k)
        risk[:, :, i] = np.where(diverged < 0, r, np.nan)

    started, done = time.perf_counter(), 0
    ci = 0
    if checkpoints[0] == 0:
        checkpoint(0, 0)
        ci = 1
    total = int(checkpoints[-1])
    while done < total:
        n = min(block, int(checkpoints[ci]) - done)
        X = torch.stack([torch.randn(n, d, generator=gen) for gen in generators]).to(device)  # (S, n, d)
        xi = torch.stack([torch.randn(n, generator=gen) for gen in generators]).to(device)  # (S, n)
        y = committee(X @ Wt.transpose(-1, -2) / sqrt_d) + sqrt_noise * xi  # (S, n)
        for t in range(n):
            x = X[:, t]  # (S, d)
            lam = torch.matmul(x[:, None, :], Wf.transpose(-1, -2)).view(S, G, p) / sqrt_d
            err = y[:, t, None] - committee(lam)  # (S, G)
            coef = (step_size * err)[..., None] * g_prime(lam)  # (S, G, p)
            Wf.baddbmm_(coef.view(S, G * p, 1), x[:, None, :])
        done += n
        if done == checkpoints[ci]:
            checkpoint(ci, done)
            ci += 1
            if log is not None:
                elapsed = time.perf_counter() - started
                eta = elapsed / done * (total - done)
                print(
                    f"[train] step {done}/{total} (t = {done / d:.3g}), {S * G} members, "
                    f"{elapsed:.1f}s elapsed, ETA {eta:.1f}s",
                    file=log,
                    flush=True,
                )
    seconds = time.perf_counter() - started

    test_risk = np.full((S, G), np.nan)
    if test_x is not None:
        Xt = torch.as_tensor(test_x, device=device)  # (S, n, d)
        lam = torch.matmul(Xt, Wf.transpose(-1, -2)).view(S, -1, G, p) / sqrt_d  # (S, n, G, p)
        f = committee(lam).double().cpu().numpy()  # (S, n, G)
        test_risk = 0.5 * ((np.asarray(test_f)[:, :, None] - f) ** 2).mean(axis=1)
        test_risk[diverged >= 0] = np.nan
    return EnsembleResult(risk, test_risk, diverged, Q0, M0, seconds, S * G * total / max(seconds, 1e-9))


