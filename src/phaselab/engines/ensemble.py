"""The general ensemble engine: any model written as a functional loss of one member, vmapped over the ensemble."""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import torch


@dataclass
class EnsembleRun:
    metrics: dict  # name -> (M, T) numpy array at the checkpoints; NaN after divergence
    diverged_step: np.ndarray  # (M,) -1 if the member stayed finite
    params: dict  # final parameters, (M, ...) tensors (diverged members zeroed)
    seconds: float


def train_ensemble(params: dict, loss, batches, lr, checkpoints, evaluate, *, batch_in_dims=0,
                   divergence_threshold: float = 1e6, log=None) -> EnsembleRun:
    """Gradient descent on M members at once: ``params`` maps names to stacked (M, ...) tensors.

    ``loss(member_params, batch)`` is the loss of ONE member (torch.func style); ``batches(step)`` returns the
    batch of that step (a tensor or tuple: with ``batch_in_dims=0`` its leading dim is the member, with ``None``
    all members share it: full-batch GD shares one batch); ``lr`` (M,) learning rates; ``checkpoints`` increasing
    step counts (0 allowed); ``evaluate(params)`` → {name: (M,) tensor} metrics, computed in batch at checkpoints.
    A member whose parameters turn non-finite or whose largest |parameter| exceeds ``divergence_threshold`` is
    recorded as diverged at that checkpoint, frozen, and its metrics are NaN from then on.
    """
    from torch.func import grad, vmap

    params = {k: v.clone() for k, v in params.items()}
    lr = torch.as_tensor(lr, dtype=next(iter(params.values())).dtype, device=next(iter(params.values())).device)
    M = lr.shape[0]
    step_grad = vmap(grad(loss), in_dims=(0, batch_in_dims))
    diverged = np.full(M, -1, dtype=np.int64)
    metrics: dict[str, np.ndarray] = {}
    checkpoints = [int(c) for c in checkpoints]
    started, step = time.perf_counter(), 0
    for i, stop in enumerate(checkpoints):
        while step < stop:
            grads = step_grad(params, batches(step))
            with torch.no_grad():
                for name, g_ in grads.items():
                    params[name] -= lr.view(-1, *([1] * (g_.dim() - 1))) * g_
            step += 1
        with torch.no_grad():
            size = torch.stack([p.reshape(M, -1).abs().amax(1) for p in params.values()]).amax(0)
            bad = (~torch.isfinite(size) | (size > divergence_threshold)).cpu().numpy() & (diverged < 0)
            if bad.any():
                diverged[bad] = stop
                mask = torch.as_tensor(bad, device=lr.device)
                lr[mask] = 0.0
                for p in params.values():
                    p[mask] = 0.0
            for name, value in evaluate(params).items():
                arr = metrics.setdefault(name, np.full((M, len(checkpoints)), np.nan))
                arr[:, i] = np.where(diverged < 0, value.detach().double().cpu().numpy(), np.nan)
        if log is not None and stop:
            elapsed = time.perf_counter() - started
            print(f"[train] step {stop}/{checkpoints[-1]}, {M} members, {elapsed:.1f}s elapsed, "
                  f"ETA {elapsed / stop * (checkpoints[-1] - stop):.1f}s", file=log, flush=True)
    return EnsembleRun(metrics, diverged, params, time.perf_counter() - started)
