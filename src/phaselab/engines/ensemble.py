"""The general ensemble engine: M members of one shape trained together by gradient descent in one process.

One entry point, :func:`train_ensemble`, two paths:

- the general path (default): any model written as the loss of ONE member (torch.func style),
  ``vmap(grad(loss))`` over the stacked parameters — researchers' own models;
- the MLP fast path, opted into with ``model=MLPSpec(activation, loss, ...)`` (:mod:`phaselab.engines.mlp`): dense
  MLPs of any depth (tanh / ReLU / erf, square or cross-entropy loss, biases optional, per-layer scales) trained
  with explicit batched forward/backward matmuls, buffers reused across steps, weight updates fused into the
  gradient matmuls (heavy-ball momentum and weight decay as options on both paths), members batched in cache-sized
  chunks (``chunk="auto"``; 1 = the per-run floor). ``loss`` is then not called (pass the functional loss anyway
  or ``None``); the network and loss are those the spec names,
  and they must be the ones ``loss`` computes (:mod:`phaselab.models.deep_mlp`'s ``squared_loss`` ↔
  ``MLPSpec(act, "squared")``, ``cross_entropy`` ↔ ``MLPSpec(act, "cross_entropy")``; :mod:`phaselab.models.
  two_layer` ↔ ``MLPSpec("relu", kind, scales=(1/√d, 1/√h))``).

Both paths give every member the numbers of the per-run loop (one ``nn.Sequential`` + ``torch.optim.SGD`` per member,
same inits, same batches) to float rounding, record divergence the same way and print the same progress lines.
Checkpoint evaluation is the caller's ``evaluate(params)``; :func:`phaselab.engines.mlp.mlp_evaluator` gives one
(loss and error of named sets) that works through the members in chunks, so that the full-set activations of all
members never exist at once; ``eval_chunk=k`` makes the engine itself call ``evaluate`` on k members at a time
(for an ``evaluate`` whose metrics are per member).

The precision is the parameters' dtype (float32 or float64); batches are converted to it. The device is the
parameters' device; nothing in a step syncs with the host.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import torch

from phaselab.engines.mlp import BatchedMLP, MLPSpec, mlp_evaluator  # noqa: F401  (re-exported)


@dataclass
class EnsembleRun:
    metrics: dict  # name -> (M, T) numpy array at the checkpoints; NaN after divergence
    diverged_step: np.ndarray  # (M,) -1 if the member stayed finite
    params: dict  # final parameters, (M, ...) tensors (diverged members zeroed)
    seconds: float


def _evaluate(evaluate, params: dict, M: int, eval_chunk: int | None) -> dict:
    if eval_chunk is None or eval_chunk >= M:
        return evaluate(params)
    parts: dict[str, list] = {}
    for m0 in range(0, M, eval_chunk):
        for name, value in evaluate({k: v[m0:m0 + eval_chunk] for k, v in params.items()}).items():
            parts.setdefault(name, []).append(torch.as_tensor(value).reshape(-1))
    return {name: torch.cat(values) for name, values in parts.items()}


def train_ensemble(params: dict, loss, batches, lr, checkpoints, evaluate, *, batch_in_dims=0,
                   divergence_threshold: float = 1e6, log=None, model: MLPSpec | None = None,
                   chunk: int | str = "auto", eval_chunk: int | None = None, momentum=None,
                   weight_decay=None, gradient=None) -> EnsembleRun:
    """Gradient descent on M members at once: ``params`` maps names to stacked (M, ...) tensors.

    ``loss(member_params, batch)`` is the loss of ONE member (torch.func style); ``batches(step)`` returns the
    batch of that step (a tensor or tuple: with ``batch_in_dims=0`` its leading dim is the member, with ``None``
    all members share it: full-batch GD shares one batch); ``lr`` (M,) learning rates; ``checkpoints`` increasing
    step counts (0 allowed); ``evaluate(params)`` → {name: (M,) tensor} metrics, computed in batch at checkpoints
    (on ``eval_chunk`` members at a time if given). A member whose parameters turn non-finite or whose largest
    |parameter| exceeds ``divergence_threshold`` is recorded as diverged at that checkpoint, frozen, and its metrics
    are NaN from then on.

    ``model``: an :class:`~phaselab.engines.mlp.MLPSpec` selects the explicit batched MLP path (batches are then
    (x, y) pairs); ``chunk``: members per batched call on that path, ``"auto"`` from the working set of a step
    against the cache (see :func:`phaselab.engines.mlp.pick_chunk`).

    ``gradient``: where the gradient has a closed form, ``gradient(params, batch)`` → {name: (M, ...) tensor} the
    gradients of every member at once, used instead of ``vmap(grad(loss))`` (general path; ``loss`` is then not
    called by the engine and serves as the reference the closed form is tested against).

    ``momentum``: heavy-ball coefficients β, a scalar or (M,) per member; ``weight_decay``: λ, a scalar or (M,),
    on every parameter (biases included). Both in ``torch.optim.SGD``'s form (no dampening): g ← ∇L + λθ,
    v ← β v + g, θ ← θ − α v, v starting at 0; both paths. Without them (``None``) the update is plain SGD,
    θ ← θ − α ∇L, computed exactly as before the options existed.
    """
    params = {k: v.detach().clone() for k, v in params.items()}
    first = next(iter(params.values()))
    lr = torch.as_tensor(lr, dtype=first.dtype, device=first.device).clone()
    M = lr.shape[0]
    velocity, beta, decay = None, None, None
    if model is not None and gradient is not None:
        raise ValueError("gradient= is for the general path; model=MLPSpec has its own explicit backward")
    if model is None and momentum is not None:
        beta = torch.as_tensor(momentum, dtype=first.dtype, device=first.device).expand(M).clone()
        velocity = {k: torch.zeros_like(v) for k, v in params.items()}
    if model is None and weight_decay is not None:
        decay = torch.as_tensor(weight_decay, dtype=first.dtype, device=first.device).expand(M).clone()
    if model is not None:
        shared = batch_in_dims is None
        engine = BatchedMLP(model, params, lr, chunk=None if chunk == "auto" else int(chunk), shared_input=shared,
                            momentum=momentum, weight_decay=weight_decay)

        def advance(step):
            engine.step(batches(step), shared)
    else:
        from torch.func import grad, vmap

        engine = None
        step_grad = gradient if gradient is not None else vmap(grad(loss), in_dims=(0, batch_in_dims))

        def advance(step):
            grads = step_grad(params, batches(step))
            with torch.no_grad():
                for name, g_ in grads.items():
                    if decay is not None:  # g <- g + lambda theta
                        g_ = g_ + decay.view(-1, *([1] * (g_.dim() - 1))) * params[name]
                    if velocity is not None:  # heavy ball: v <- beta v + g, the step along v
                        g_ = velocity[name].mul_(beta.view(-1, *([1] * (g_.dim() - 1)))).add_(g_)
                    params[name] -= lr.view(-1, *([1] * (g_.dim() - 1))) * g_

    diverged = np.full(M, -1, dtype=np.int64)
    metrics: dict[str, np.ndarray] = {}
    checkpoints = [int(c) for c in checkpoints]
    started, step = time.perf_counter(), 0
    total = checkpoints[-1] if checkpoints else 0
    every = max(1, total // 20)  # a progress line at least every 5 % of the steps, checkpoints or not
    for i, stop in enumerate(checkpoints):
        while step < stop:
            advance(step)
            step += 1
            if log is not None and step % every == 0 and step < stop:
                _progress(log, step, total, M, time.perf_counter() - started)
        with torch.no_grad():
            if engine is not None:
                engine.write(params)
            size = torch.stack([p.reshape(M, -1).abs().amax(1) for p in params.values()]).amax(0)
            bad = (~torch.isfinite(size) | (size > divergence_threshold)).cpu().numpy() & (diverged < 0)
            if bad.any():
                diverged[bad] = stop
                mask = torch.as_tensor(bad, device=lr.device)
                lr[mask] = 0.0
                for p in params.values():
                    p[mask] = 0.0
                for v in (velocity or {}).values():
                    v[mask] = 0.0
                if engine is not None:
                    engine.freeze(mask)
            for name, value in _evaluate(evaluate, params, M, eval_chunk).items():
                arr = metrics.setdefault(name, np.full((M, len(checkpoints)), np.nan))
                arr[:, i] = np.where(diverged < 0, torch.as_tensor(value).detach().double().cpu().numpy(), np.nan)
        if log is not None and stop:
            _progress(log, stop, total, M, time.perf_counter() - started)
    return EnsembleRun(metrics, diverged, params, time.perf_counter() - started)


def _progress(log, step: int, total: int, M: int, elapsed: float) -> None:
    print(f"[train] step {step}/{total}, {M} members, {elapsed:.1f}s elapsed, "
          f"ETA {elapsed / step * (total - step):.1f}s", file=log, flush=True)
