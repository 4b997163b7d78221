"""The batched-ensemble engine: online SGD of many committee machines of one shape in one process.

An ensemble is S seed groups × G members (e.g. learning rates) of width p in dimension d, W stacked as (S, G, p, d).
Members of one seed group share their teacher, their input stream and their label noise (common random numbers),
so the cost of drawing inputs and teacher labels is paid once per group. One SGD step of a member is

    λ = W x/√d,  f = (1/p) Σ_j σ(λ_j),  W_j ← W_j + γ/(p√d) (y − f) σ'(λ_j) x,  y = f*(x) + √Δ ξ.

The stream: at every step each group draws one Gaussian row z ~ N(0, I_L) from its own torch CPU generator, with
L = d + 1 rounded up to a multiple of 16, and takes x = z[:d], ξ = z[d]. Blocks of rows are drawn at once; torch's
CPU sampler gives the same numbers for one (n, L) draw as for n draws of L when L is a multiple of 16, so the
per-run reference loop below (one fresh draw per step) replays exactly the same stream, and a CUDA run sees the
same inputs as a CPU run.

Backends, one API:
- ``numba`` (CPU default): a fused kernel, parallel over members, that keeps one member's W in cache for a block of
  steps and folds the update of step t−1 into the fields of step t (one pass over W per step).
- ``torch`` (CUDA, or CPU without numba): two batched matmuls per step over the whole ensemble.
The host syncs only at checkpoints, where the order parameters give the exact population risk
(theory.committee.risk) and diverged members are frozen.
"""

from __future__ import annotations

import math
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import torch

from phaselab.models.committee import committee, g, g_prime, order_parameters
from phaselab.theory.committee import risk as population_risk

try:
    from phaselab.engines import _kernels
except ImportError:  # numba missing: the torch backend does everything
    _kernels = None


def pick_backend(device: torch.device, backend: str = "auto") -> str:
    if backend == "auto":
        return "numba" if device.type == "cpu" and _kernels is not None else "torch"
    if backend == "numba" and (device.type != "cpu" or _kernels is None):
        raise RuntimeError("backend 'numba' needs the CPU and the numba package")
    return backend


def row_length(d: int) -> int:
    """Length of one stream row: d inputs and one label-noise sample, rounded up to a multiple of 16."""
    return 16 * math.ceil((d + 1) / 16)


def stream_rows(generators: list[torch.Generator], n: int, d: int, pool=None) -> tuple[torch.Tensor, torch.Tensor]:
    """The next n steps of every group's stream: inputs X (S, n, d) and label noise ξ (S, n), on the CPU.

    Groups draw from independent generators, so a thread pool may draw them concurrently (torch's CPU sampler is
    single-threaded and releases the GIL) without changing a number.
    """
    Z = torch.empty(len(generators), n, row_length(d))

    def draw(s):
        torch.randn(n, row_length(d), generator=generators[s], out=Z[s])

    if pool is None:
        for s in range(len(generators)):
            draw(s)
    else:
        list(pool.map(draw, range(len(generators))))
    return Z[..., :d], Z[..., d]


@dataclass
class EnsembleResult:
    risk: np.ndarray  # (S, G, T) excess population risk at the checkpoints; NaN after divergence
    test_risk: np.ndarray  # (S, G) held-out ½⟨(f* − f)²⟩ at the end; NaN if diverged
    diverged_step: np.ndarray  # (S, G) step of divergence, -1 if the member stayed finite
    Q0: np.ndarray  # (S, p, p) initial order parameters of each seed group's student (shared by its members)
    M0: np.ndarray  # (S, p, k)
    seconds: float
    member_steps_per_s: float
    backend: str


def _torch_block(Wf, X, y, step_size, S, G, p):
    """n SGD steps of the whole ensemble with batched matmuls; Wf (S, G·p, d) is updated in place."""
    for t in range(X.shape[1]):
        x = X[:, t]  # (S, d), already divided by √d
        lam = torch.matmul(x[:, None, :], Wf.transpose(-1, -2)).view(S, G, p)
        err = y[:, t, None] - committee(lam)  # (S, G)
        coef = (step_size * err)[..., None] * g_prime(lam)  # (S, G, p)
        Wf.baddbmm_(coef.view(S, G * p, 1), x[:, None, :])


def _train(
    W0: np.ndarray,
    teacher: np.ndarray,
    lr: np.ndarray,
    checkpoints: np.ndarray,
    stream_seeds: list[int],
    noise: float = 0.0,
    test_x: np.ndarray | None = None,
    test_f: np.ndarray | None = None,
    device: str | torch.device = "cpu",
    backend: str = "auto",
    divergence_threshold: float = 1e4,
    block: int = 256,
    log=None,
) -> EnsembleResult:
    device = torch.device(device)
    S, p, d = W0.shape
    k = teacher.shape[1]
    lr = np.broadcast_to(np.asarray(lr, dtype=np.float64), (S, np.shape(lr)[-1]))
    G = lr.shape[1]
    checkpoints = np.asarray(checkpoints, dtype=np.int64)
    W = torch.as_tensor(W0, dtype=torch.float32, device=device).unsqueeze(1).repeat(1, G, 1, 1).contiguous()
    Wt_cpu = torch.as_tensor(teacher, dtype=torch.float32)  # (S, k, d): teacher labels are made on the CPU
    Wt = Wt_cpu.to(device)
    # the fields use x/√d, so the update W += γ/(p√d)·err·σ'·x is W += (γ/p)·err·σ'·(x/√d)
    step_size = torch.as_tensor(lr / p, dtype=torch.float32, device=device)  # (S, G)
    generators = [torch.Generator().manual_seed(int(s)) for s in stream_seeds]
    P = (Wt @ Wt.transpose(-1, -2) / d).double().cpu().numpy()  # (S, k, k)

    risk = np.full((S, G, len(checkpoints)), np.nan)
    diverged = np.full((S, G), -1, dtype=np.int64)
    Q0, M0 = (a[:, 0].double().cpu().numpy() for a in order_parameters(W[:, :1], Wt))
    Wf = W.view(S, G * p, d)
    if backend == "numba":
        W_np, group = W.numpy().reshape(S * G, p, d), np.repeat(np.arange(S), G)
        step_np = step_size.numpy().reshape(S * G)  # views: freezing a member below reaches the kernel
    inv_sqrt_d, sqrt_noise = 1.0 / math.sqrt(d), math.sqrt(noise)

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
            Q[bad], M[bad] = 0.0, 0.0
        r = population_risk(Q, M, P[:, None], p, k)
        risk[:, :, i] = np.where(diverged < 0, r, np.nan)

    started, done, ci = time.perf_counter(), 0, 0
    total = int(checkpoints[-1])
    pool = ThreadPoolExecutor(min(S, torch.get_num_threads())) if S > 1 and torch.get_num_threads() > 1 else None
    while ci < len(checkpoints):
        n = min(block, int(checkpoints[ci]) - done)
        if n > 0:
            X, xi = stream_rows(generators, n, d, pool)
            X = X * inv_sqrt_d
            y = g(torch.bmm(X, Wt_cpu.transpose(-1, -2))).mean(-1) + sqrt_noise * xi  # teacher labels (S, n)
            if backend == "numba":
                _kernels.sgd_block(W_np, X.numpy(), y.numpy(), group, step_np)
            else:
                _torch_block(Wf, X.to(device), y.to(device), step_size, S, G, p)
            done += n
        if done == checkpoints[ci]:
            checkpoint(ci, done)
            ci += 1
            if log is not None and done:
                elapsed = time.perf_counter() - started
                print(f"[train] step {done}/{total} (t = {done / d:.3g}), {S * G} members, {elapsed:.1f}s elapsed, "
                      f"ETA {elapsed / done * (total - done):.1f}s", file=log, flush=True)
    seconds = time.perf_counter() - started
    if pool is not None:
        pool.shutdown()

    test_risk = np.full((S, G), np.nan)
    if test_x is not None:
        Xt = torch.as_tensor(test_x, dtype=torch.float32, device=device) * inv_sqrt_d  # (S, n, d)
        f = committee(torch.matmul(Xt, Wf.transpose(-1, -2)).view(S, -1, G, p)).double().cpu().numpy()
        test_risk = 0.5 * ((np.asarray(test_f)[:, :, None] - f) ** 2).mean(axis=1)  # (S, G)
        test_risk[diverged >= 0] = np.nan
    rate = S * G * total / max(seconds, 1e-9)
    return EnsembleResult(risk, test_risk, diverged, Q0, M0, seconds, rate, backend)


def ensemble_bytes(n_groups: int, members: int, p: int, d: int, block: int = 256) -> int:
    """Working set of one ensemble chunk: weights, one block of the stream, its fields (float32)."""
    return 4 * (n_groups * members * p * d + n_groups * block * (row_length(d) + d) + n_groups * members * p * block)


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
    backend: str = "auto",
    divergence_threshold: float = 1e4,
    memory_budget_mb: float = 2048,
    block: int = 256,
    log=None,
) -> EnsembleResult:
    """Train S×G committee machines by one-pass SGD.

    W0 (S, p, d): initial student of each seed group, copied to its G members; teacher (S, k, d); lr (G,) or (S, G)
    learning rates γ; checkpoints: non-decreasing integer step counts (0 allowed), the last one is the run length;
    stream_seeds: one seed per group for inputs and label noise. A member is diverged when its weights become
    non-finite or max_j Q_jj exceeds ``divergence_threshold``; it is then frozen and its risk is NaN.

    The ensemble is split into chunks of seed groups (and of members within a group) whose working set fits
    ``memory_budget_mb``; chunks run one after the other and give the same numbers as one run, since every member
    depends only on its own group's stream.
    """
    device = torch.device(device)
    backend = pick_backend(device, backend)
    S, p, d = W0.shape
    lr = np.broadcast_to(np.asarray(lr, dtype=np.float64), (S, np.shape(lr)[-1]))
    G = lr.shape[1]
    budget = memory_budget_mb * 2**20
    groups = max(1, min(S, int(budget // max(ensemble_bytes(1, G, p, d, block), 1))))
    members = G if groups > 1 or ensemble_bytes(1, G, p, d, block) <= budget else max(
        1, int((budget - ensemble_bytes(1, 0, p, d, block)) // (4 * p * (d + block))))
    kwargs = dict(noise=noise, device=device, backend=backend, divergence_threshold=divergence_threshold,
                  block=block, log=log)
    if groups >= S and members >= G:
        return _train(W0, teacher, lr, checkpoints, stream_seeds, test_x=test_x, test_f=test_f, **kwargs)
    if log is not None:
        print(f"[train] memory budget {memory_budget_mb} MB: chunks of {groups} seed groups x {members} members",
              file=log, flush=True)
    parts = []
    for s0 in range(0, S, groups):
        row = []
        for g0 in range(0, G, members):
            sl, gl = slice(s0, s0 + groups), slice(g0, g0 + members)
            row.append(_train(W0[sl], teacher[sl], lr[sl, gl], checkpoints, stream_seeds[sl],
                              test_x=None if test_x is None else test_x[sl],
                              test_f=None if test_f is None else test_f[sl], **kwargs))
        parts.append(row)

    def cat(field, axis_g=1):
        return np.concatenate([np.concatenate([getattr(r, field) for r in row], axis=axis_g) for row in parts], 0)

    seconds = sum(r.seconds for row in parts for r in row)
    return EnsembleResult(
        cat("risk"), cat("test_risk"), cat("diverged_step"),
        np.concatenate([row[0].Q0 for row in parts]), np.concatenate([row[0].M0 for row in parts]),
        seconds, S * G * int(checkpoints[-1]) / max(seconds, 1e-9), backend,
    )


def train_one_member(w0: np.ndarray, teacher: np.ndarray, lr: float, checkpoints, stream_seed: int,
                     noise: float = 0.0) -> np.ndarray:
    """The natural per-run loop: one member, plain PyTorch, one fresh Gaussian draw per step.

    The reference the batched engine is checked and benchmarked against; returns the risk at the checkpoints.
    """
    w, teacher = torch.as_tensor(w0, dtype=torch.float32).clone(), torch.as_tensor(teacher, dtype=torch.float32)
    p, d = w.shape
    gen, L, sqrt_d = torch.Generator().manual_seed(int(stream_seed)), row_length(d), math.sqrt(d)
    P = (teacher @ teacher.T / d).double().numpy()
    out, step = [], 0
    for stop in checkpoints:
        for _ in range(int(stop) - step):
            z = torch.randn(L, generator=gen)
            x, xi = z[:d], z[d]
            y = g(teacher @ x / sqrt_d).mean() + math.sqrt(noise) * xi
            lam = w @ x / sqrt_d
            err = y - g(lam).mean()
            w += (lr / (p * sqrt_d)) * err * g_prime(lam)[:, None] * x[None, :]
        step = int(stop)
        Q, M = (w @ w.T / d).double().numpy(), (w @ teacher.T / d).double().numpy()
        out.append(population_risk(Q, M, P, p, teacher.shape[0]))
    return np.array(out)
