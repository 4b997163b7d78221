"""Benchmark: the batched engines against the natural per-run loop on the same workload (and the ODE integrator).

    python -m phaselab.bench            # d = 1000, p ∈ {2, 8, 32}, 8 learning rates × 4 seeds, 10·d steps
    python -m phaselab.bench --quick    # the same shape of workload, scaled down (< 2 min on 2 cores)
    python -m phaselab.bench --engine ensemble [--quick] [--json out.json]   # the general ensemble engine

The committee benchmark (default): both engines train the same members from the same initial weights on the same
input stream (one fresh Gaussian draw per step and seed), so their risks must agree to float tolerance; the check is
printed. The last line is ``ratio: <number>x`` (batched member-steps/s over per-run member-steps/s, the whole
workload).

The ensemble benchmark (``--engine ensemble``, 1 thread unless ``--threads``): a tanh MLP 64 → h → 10, squared loss,
on 1 000 digits, 8 learning rates × 4 seeds = 32 members, full-batch GD and SGD with B = 32 at h = 32, 128, 512, in
float64 and float32. Three variants train the same members from the same inits on the same minibatch indices, in one
process, interleaved, best of 3 (``--quick``: 1 round, fewer steps): the per-run loop a PyTorch user writes
(:func:`per_run_mlp`: one ``nn.Sequential`` + ``torch.optim.SGD`` per member), the old engine (``train_ensemble``'s
vmapped path) and the new one (``train_ensemble(..., model=MLPSpec(...))``); each includes the train-loss
evaluation at step 0 and at the end. Printed per workload: member-steps/s, both ratios, agreement (max relative
train-loss difference to the per-run loop); then the new engine's throughput against the ensemble size, peak RSS
and last ``ratio: <geometric mean of new/per-run over the 12 workloads>x``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import sys
import time

import numpy as np
import torch

from phaselab import data
from phaselab.device import pick_device
from phaselab.engines.committee import train_committee_ensemble, train_one_member

FULL = {"d": 1000, "widths": [2, 8, 32], "lrs": 8, "seeds": 4, "time": 10, "ode_time": 1e4, "sizes": [4, 16, 64, 256]}
QUICK = {"d": 500, "widths": [2, 8, 32], "lrs": 4, "seeds": 2, "time": 4, "ode_time": 1e3, "sizes": [4, 16, 64]}


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def workload(d: int, p: int, n_lrs: int, n_seeds: int, k: int = 2):
    arrays = data.teacher_student_data(d, k, n_seeds, 1, config_seed=0)
    W0 = data.student_init(d, p, n_seeds, 1.0, config_seed=0)
    lrs = np.geomspace(0.25, 4.0, n_lrs)
    streams = [data.derive_seed(0, data.STREAM, d, s) for s in range(n_seeds)]
    return arrays["teacher"], W0, lrs, streams


def run_width(d, p, n_lrs, n_seeds, steps, device, backend, noise=0.01, per_run=True):
    teacher, W0, lrs, streams = workload(d, p, n_lrs, n_seeds)
    checkpoints = np.unique(np.round(np.geomspace(1, steps, 8)).astype(int))
    out = {"p": p, "members": n_lrs * n_seeds, "steps": int(steps)}
    batched = train_committee_ensemble(W0, teacher, lrs, checkpoints, streams, noise=noise, device=device,
                                       backend=backend)
    out["batched_rate"] = batched.member_steps_per_s
    out["batched_s"] = batched.seconds
    if per_run:
        started = time.perf_counter()
        single = np.array([[train_one_member(W0[s], teacher[s], lr, checkpoints, streams[s], noise)
                            for lr in lrs] for s in range(n_seeds)])
        out["per_run_s"] = time.perf_counter() - started
        out["per_run_rate"] = n_lrs * n_seeds * steps / out["per_run_s"]
        out["max_rel_diff"] = float(np.max(np.abs(batched.risk - single) / np.abs(single)))
    return out


def ode_benchmark(t_max: float) -> dict:
    """Saad–Solla ODE, p = 8, k = 4, κ + δ = 0 (γ = 1), from a random d = 1000 start, against a tight reference."""
    from scipy.integrate import solve_ivp

    from phaselab.theory.committee import integrate, order_parameters, rhs

    rng = np.random.default_rng(0)
    teacher = data.orthogonal_teacher(1000, 4, rng)
    Q0, M0, P = order_parameters(rng.standard_normal((8, 1000)), teacher)
    times = np.concatenate([[0.0], np.geomspace(0.1, t_max, 60)])
    eta, noise = 1.0 / 8, 0.01
    started = time.perf_counter()
    ours = integrate(Q0[None], M0[None], P, times, np.array([eta]), noise=noise)["risk"][0]
    seconds = time.perf_counter() - started

    def f(_, y):
        dQ, dM = rhs(y[:64].reshape(1, 8, 8), y[64:].reshape(1, 8, 4), P, np.array([eta]), noise)
        return np.concatenate([dQ.ravel(), dM.ravel()])

    started = time.perf_counter()
    ref = solve_ivp(f, (0, t_max), np.concatenate([Q0.ravel(), M0.ravel()]), method="DOP853", t_eval=times,
                    rtol=1e-10, atol=1e-12)
    ref_seconds = time.perf_counter() - started
    from phaselab.theory.committee import risk

    R_ref = risk(ref.y[:64].T.reshape(-1, 8, 8), ref.y[64:].T.reshape(-1, 8, 4), P)
    return {"t_max": t_max, "seconds": seconds, "reference_seconds": ref_seconds,
            "max_abs_diff": float(np.max(np.abs(ours - R_ref))),
            "max_rel_diff": float(np.max(np.abs(ours - R_ref) / R_ref))}


# ---------------------------------------------------------------------------------------------------------------------
# The general ensemble engine (train_ensemble): tanh MLP 64 → h → 10 on 1 000 digits, 8 learning rates × 4 seeds.

ENSEMBLE_FULL = {"widths": [32, 128, 512], "lrs": 8, "seeds": 4, "n": 1000, "batch": 32, "rounds": 3,
                 "gd_steps": {32: 40, 128: 20, 512: 10}, "sgd_steps": 100, "dtypes": ["float64", "float32"],
                 "scaling": [1, 2, 4, 8, 16, 32, 64, 128]}
ENSEMBLE_QUICK = {"widths": [32, 128, 512], "lrs": 8, "seeds": 4, "n": 1000, "batch": 32, "rounds": 1,
                  "gd_steps": {32: 10, 128: 5, 512: 3}, "sgd_steps": 30, "dtypes": ["float64", "float32"],
                  "scaling": [1, 4, 16, 64]}
ENSEMBLE_LRS = (0.004, 0.08)  # geometric grid: every member stays finite on every workload (h = 512 included)


class _Erf(torch.nn.Module):
    def forward(self, z):
        return torch.erf(z * 0.7071067811865476)


_MODULES = {"tanh": torch.nn.Tanh, "relu": torch.nn.ReLU, "erf": _Erf}


def per_run_mlp(params: dict, m: int, activation: str, loss: str, batches, steps: int, lr: float, sets: dict):
    """Member m trained alone, the loop a PyTorch user writes: one ``nn.Sequential`` (Linear, activation, ...)
    initialised from the stacked ``params`` (deep_mlp layout W0, b0, W1, ...) and ``torch.optim.SGD``;
    ``batches(step)`` → (x, y) of this member. Returns {"<name>_loss": [at step 0, at the end]} for ``sets``."""
    from phaselab.engines.mlp import loss_values

    names = sorted((k for k in params if k.startswith("W") and k[1:].isdigit()), key=lambda k: int(k[1:]))
    layers = []
    for i, w in enumerate(names):
        W, b = params[w][m], params.get(f"b{w[1:]}")
        lin = torch.nn.Linear(W.shape[1], W.shape[0], bias=b is not None, dtype=W.dtype, device=W.device)
        with torch.no_grad():
            lin.weight.copy_(W)
            if b is not None:
                lin.bias.copy_(b[m])
        layers.append(lin)
        if i < len(names) - 1:
            layers.append(_MODULES[activation]())
    net = torch.nn.Sequential(*layers)
    opt = torch.optim.SGD(net.parameters(), lr=float(lr))

    def measure(out):
        with torch.no_grad():
            for name, (x, y) in sets.items():
                out.setdefault(f"{name}_loss", []).append(float(loss_values(loss, net(x), y)))

    metrics: dict = {}
    measure(metrics)
    for step in range(steps):
        x, y = batches(step)
        opt.zero_grad()
        f = net(x)
        value = 0.5 * ((f - y) ** 2).sum(-1).mean() if loss == "squared" else torch.nn.functional.cross_entropy(f, y)
        value.backward()
        opt.step()
    measure(metrics)
    return {k: np.array(v) for k, v in metrics.items()}


def ensemble_workload(h: int, mode: str, dtype: torch.dtype, cfg: dict, members: int | None = None):
    """Inits, learning rates and batches of one workload: members m = (lr index m // S, seed m % S); the members of
    one seed share their init and their minibatch indices (drawn up front, with replacement)."""
    from phaselab.models import deep_mlp

    arrays = data.digits_subset(cfg["n"], data.rng(0, data.DIGITS_SUBSET))
    x = torch.as_tensor(arrays["x_train"], dtype=dtype)
    y = torch.as_tensor(arrays["y_train"], dtype=dtype)
    S, n_lr = cfg["seeds"], cfg["lrs"]
    lrs = np.geomspace(*ENSEMBLE_LRS, n_lr)
    member_lr = np.repeat(lrs, S)
    member_seed = np.tile(np.arange(S), n_lr)
    if members is not None:  # the scaling sweep: the grid repeated or cut to `members`
        member_lr = np.resize(member_lr, members)
        member_seed = np.resize(member_seed, members)
    params = deep_mlp.init_mlp([x.shape[1], h, y.shape[1]], [data.derive_seed(0, data.MLP_INIT, int(s))
                                                              for s in member_seed], "tanh", dtype=dtype)
    steps = cfg["gd_steps"][h] if mode == "gd" else cfg["sgd_steps"]
    seed_of = torch.as_tensor(member_seed)
    if mode == "gd":
        def batches(step):
            return x, y

        def member_batches(m):
            return batches
    else:
        gen = torch.Generator().manual_seed(data.derive_seed(0, data.MINIBATCHES, cfg["batch"]))
        idx = torch.randint(0, len(x), (steps, S, cfg["batch"]), generator=gen)

        def batches(step):
            i = idx[step][seed_of]
            return x[i], y[i]

        def member_batches(m):
            s = int(member_seed[m])
            return lambda step: (x[idx[step, s]], y[idx[step, s]])
    return dict(params=params, lr=member_lr, x=x, y=y, steps=steps, batches=batches, member_batches=member_batches,
                shared=mode == "gd")


def _run_engine(w: dict, fast: bool):
    from phaselab.engines.ensemble import train_ensemble
    from phaselab.engines.mlp import MLPSpec, mlp_evaluator
    from phaselab.models import deep_mlp

    spec = MLPSpec("tanh", "squared")
    x, y = w["x"], w["y"]
    lr = torch.as_tensor(w["lr"], dtype=x.dtype)
    if fast:
        evaluate = mlp_evaluator(spec, {"train": (x, y)})
        return train_ensemble(w["params"], None, w["batches"], lr, [0, w["steps"]], evaluate,
                              batch_in_dims=None if w["shared"] else 0, model=spec)
    from functools import partial

    from torch.func import vmap

    loss = partial(deep_mlp.squared_loss, activation="tanh")
    return train_ensemble(w["params"], loss, w["batches"], lr, [0, w["steps"]],
                          lambda p: {"train_loss": vmap(loss, in_dims=(0, None))(p, (x, y))},
                          batch_in_dims=None if w["shared"] else 0)


def ensemble_case(h: int, mode: str, dtype: torch.dtype, cfg: dict) -> dict:
    """Per-run loop, old engine (vmap) and new engine (model=MLPSpec) on one workload, interleaved, best of
    cfg["rounds"]; member-steps/s of each, ratios, agreement (max relative loss difference to the per-run loop)."""
    w = ensemble_workload(h, mode, dtype, cfg)
    M, steps = len(w["lr"]), w["steps"]
    times = {"per_run": [], "old": [], "new": []}
    out = {}
    for _ in range(cfg["rounds"]):
        started = time.perf_counter()
        ref = [per_run_mlp(w["params"], m, "tanh", "squared", w["member_batches"](m), steps, w["lr"][m],
                           {"train": (w["x"], w["y"])}) for m in range(M)]
        times["per_run"].append(time.perf_counter() - started)
        ref_loss = np.array([r["train_loss"] for r in ref])
        for name, fast in (("old", False), ("new", True)):
            started = time.perf_counter()
            run = _run_engine(w, fast)
            times[name].append(time.perf_counter() - started)
            ours = run.metrics["train_loss"]
            both = np.isfinite(ours).all(1) & np.isfinite(ref_loss).all(1)
            # a member diverged in one and not in the other is a mismatch; members diverged in both are skipped
            same_fate = bool(((run.diverged_step >= 0) == ~np.isfinite(ref_loss).all(1)).all())
            diff = float(np.max(np.abs(ours[both] - ref_loss[both]) / np.abs(ref_loss[both]), initial=0.0)
                         ) if same_fate else float("inf")
            out[f"{name}_max_rel_diff"] = max(out.get(f"{name}_max_rel_diff", 0.0), diff)
            out[f"{name}_diverged"] = int((run.diverged_step >= 0).sum())
    for name, values in times.items():
        out[f"{name}_s"] = min(values)
        out[f"{name}_rate"] = M * steps / min(values)
    out.update(h=h, mode=mode, dtype=str(dtype).removeprefix("torch."), members=M, steps=steps,
               old_ratio=out["per_run_s"] / out["old_s"], new_ratio=out["per_run_s"] / out["new_s"],
               flops_per_member_step=step_flops(h, cfg["n"] if mode == "gd" else cfg["batch"]))
    return out


def matmul_peak_gflops(dtype: torch.dtype, size: int = 1024, repeats: int = 8) -> float:
    """The core's matmul rate (GFLOP/s, best of ``repeats``) on one large square product: the roofline of a
    compute-bound training step at the current thread count."""
    a, b = torch.randn(size, size, dtype=dtype), torch.randn(size, size, dtype=dtype)
    return 2 * size**3 / min(_timed(lambda: a @ b) for _ in range(repeats)) / 1e9


def step_flops(h: int, batch: int, d: int = 64, classes: int = 10) -> int:
    """Flops of the matmuls of one member's training step of the d → h → classes MLP on B = ``batch`` examples:
    forward 2B(dh + hC), the signal backpropagated to the hidden layer 2B·hC (none to the input), the two weight
    gradients 2B(dh + hC): 2B(2dh + 3hC) in all."""
    return 2 * batch * (2 * d * h + 3 * h * classes)


def ensemble_scaling(h: int, mode: str, dtype: torch.dtype, cfg: dict, sizes) -> list[dict]:
    """Member-steps/s of the new engine against the ensemble size M (the grid repeated), best of two."""
    rows = []
    for members in sizes:
        w = ensemble_workload(h, mode, dtype, cfg, members=members)
        best = min(_timed(lambda w=w: _run_engine(w, True)) for _ in range(2))
        rows.append({"members": members, "rate": members * w["steps"] / best, "h": h, "mode": mode})
    return rows


def _timed(f) -> float:
    started = time.perf_counter()
    f()
    return time.perf_counter() - started


def ensemble_main(quick: bool = False, threads: int = 1, json_path: str | None = None) -> None:
    import subprocess

    torch.set_num_threads(threads)
    cfg = ENSEMBLE_QUICK if quick else ENSEMBLE_FULL
    try:
        cpu = next(line.split(":", 1)[1].strip() for line in subprocess.run(
            ["lscpu"], capture_output=True, text=True).stdout.splitlines() if line.startswith("Model name"))
    except Exception:  # noqa: BLE001 - lscpu missing: the platform string will do
        cpu = platform.processor()
    machine = f"{cpu}, nproc {os.cpu_count()}, {torch.get_num_threads()} thread(s), torch {torch.__version__}"
    print(f"machine: {machine}")
    print(f"workload: tanh MLP 64 -> h -> 10, squared loss, {cfg['n']} digits, {cfg['lrs']} lr x {cfg['seeds']} "
          f"seeds = {cfg['lrs'] * cfg['seeds']} members; GD (full batch) and SGD B = {cfg['batch']}; "
          f"best of {cfg['rounds']} ({'quick' if quick else 'full'})")
    print(f"{'workload':22s} {'per-run':>10s} {'old':>10s} {'new':>10s}   {'old/run':>7s} {'new/run':>7s}   "
          f"agreement (max rel. loss diff, old / new)   [member-steps/s]")
    results = {"config": {k: v for k, v in cfg.items()}, "machine": machine, "cases": [], "scaling": []}
    results["config"]["gd_steps"] = {str(k): v for k, v in cfg["gd_steps"].items()}
    results["matmul_peak_gflops"] = {dt: matmul_peak_gflops(getattr(torch, dt)) for dt in cfg["dtypes"]}
    print("matmul peak (1024² product, GFLOP/s): " + ", ".join(f"{dt} {v:.1f}"
                                                               for dt, v in results["matmul_peak_gflops"].items()))
    for dtype_name in cfg["dtypes"]:
        dtype = getattr(torch, dtype_name)
        for mode in ("gd", "sgd"):
            for h in cfg["widths"]:
                r = ensemble_case(h, mode, dtype, cfg)
                # the roofline: the ratio an engine running every member's step at the matmul peak would reach
                r["roofline_ratio"] = (r["per_run_s"] * results["matmul_peak_gflops"][dtype_name] * 1e9
                                       / (r["members"] * r["steps"] * r["flops_per_member_step"]))
                results["cases"].append(r)
                label = f"{dtype_name} {'GD' if mode == 'gd' else 'SGD B=' + str(cfg['batch'])} h={h}"
                print(f"{label:22s} {r['per_run_rate']:10.0f} {r['old_rate']:10.0f} {r['new_rate']:10.0f}   "
                      f"{r['old_ratio']:6.2f}x {r['new_ratio']:6.2f}x   {r['old_max_rel_diff']:.1e} / "
                      f"{r['new_max_rel_diff']:.1e}   roofline {r['roofline_ratio']:.1f}x", flush=True)
    for mode in ("sgd", "gd"):
        results["scaling"] += ensemble_scaling(128, mode, torch.float64, cfg, cfg["scaling"])
    print("new engine against ensemble size (h = 128, float64), member-steps/s: " + "; ".join(
        f"{r['mode']} M={r['members']}: {r['rate']:.0f}" for r in results["scaling"]))
    new = np.array([r["new_ratio"] for r in results["cases"]])
    old = np.array([r["old_ratio"] for r in results["cases"]])
    agree = {dt: max(r["new_max_rel_diff"] for r in results["cases"] if r["dtype"] == dt) for dt in cfg["dtypes"]}
    roof = np.array([r["roofline_ratio"] for r in results["cases"]])
    results.update(ratio=float(np.exp(np.log(new).mean())), old_ratio=float(np.exp(np.log(old).mean())),
                   min_ratio=float(new.min()), agreement=agree, peak_rss_mb=peak_rss_mb(),
                   roofline_ratio=float(np.exp(np.log(roof).mean())))
    for dt in cfg["dtypes"]:
        sel = [r for r in results["cases"] if r["dtype"] == dt]
        print(f"{dt}: geometric mean new {np.exp(np.mean(np.log([r['new_ratio'] for r in sel]))):.2f}x, "
              f"old {np.exp(np.mean(np.log([r['old_ratio'] for r in sel]))):.2f}x")
    print("agreement with the per-run loop (max relative loss difference): "
          + ", ".join(f"{dt} {v:.1e}" for dt, v in agree.items()))
    print(f"peak memory (RSS of this process): {peak_rss_mb():.0f} MB; slowest workload new/run "
          f"{results['min_ratio']:.2f}x; old engine geometric mean {results['old_ratio']:.2f}x")
    print(f"roofline (every step at the matmul peak): geometric mean {results['roofline_ratio']:.1f}x; the engine "
          f"reaches {results['ratio'] / results['roofline_ratio']:.0%} of it")
    if json_path:
        with open(json_path, "w") as fh:
            json.dump(results, fh, indent=2)
    print(f"ratio: {results['ratio']:.1f}x")
    tol = {"float64": 1e-10, "float32": 1e-3}
    if any(agree[dt] > tol.get(dt, 1e-3) for dt in agree):
        sys.exit(1)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(prog="python -m phaselab.bench", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="scaled-down workload, under 2 minutes on 2 cores")
    parser.add_argument("--device", default="auto", help="auto | cpu | cuda")
    parser.add_argument("--backend", default="auto", help="auto | numba | torch")
    parser.add_argument("--threads", type=int, default=None,
                        help="CPU threads (default: all cores; --engine ensemble: 1)")
    parser.add_argument("--json", default=None, help="also write the results to this JSON file")
    parser.add_argument("--engine", default="committee", choices=["committee", "ensemble"],
                        help="committee (default): the committee-machine engine; ensemble: train_ensemble")
    args = parser.parse_args(argv)
    if args.engine == "ensemble":
        return ensemble_main(quick=args.quick, threads=args.threads or 1, json_path=args.json)
    cfg = QUICK if args.quick else FULL
    if args.threads:
        torch.set_num_threads(args.threads)
        import numba

        numba.set_num_threads(args.threads)
    device = pick_device(args.device)
    d, steps = cfg["d"], cfg["time"] * cfg["d"]
    print(f"machine: {platform.machine()} {platform.processor() or ''}, {torch.get_num_threads()} threads, "
          f"device {device}, torch {torch.__version__}")
    print(f"workload: d = {d}, p in {cfg['widths']}, {cfg['lrs']} learning rates x {cfg['seeds']} seeds, "
          f"{steps} steps ({'quick' if args.quick else 'full'})")
    run_width(64, 2, 2, 1, 64, device, args.backend, per_run=False)  # warm-up: compile the kernel
    machine = (f"{platform.node()}: {platform.machine()}, {os.cpu_count()} cores, {torch.get_num_threads()} threads, "
               f"device {device}")
    results = {"config": cfg, "device": str(device), "machine": machine, "widths": [], "scaling": []}
    for p in cfg["widths"]:
        r = run_width(d, p, cfg["lrs"], cfg["seeds"], steps, device, args.backend)
        results["widths"].append(r)
        print(f"p = {p:3d}: per-run {r['per_run_rate']:10.0f} member-steps/s ({r['per_run_s']:.1f} s), "
              f"batched {r['batched_rate']:10.0f} member-steps/s ({r['batched_s']:.2f} s), "
              f"x{r['batched_rate'] / r['per_run_rate']:.1f}, max relative risk difference {r['max_rel_diff']:.1e}")
    print(f"peak memory (RSS of this process): {peak_rss_mb():.0f} MB"
          + (f", CUDA {torch.cuda.max_memory_allocated() / 2**20:.0f} MB" if device.type == "cuda" else ""))
    for m in cfg["sizes"]:  # throughput against ensemble size, p = 8, batched only
        r = run_width(d, 8, m, 1, max(steps // 4, 1), device, args.backend, per_run=False)
        results["scaling"].append({"members": m, "batched_rate": r["batched_rate"]})
        print(f"ensemble of {m:4d} members (p = 8): batched {r['batched_rate']:10.0f} member-steps/s")
    ode = ode_benchmark(cfg["ode_time"])
    results["ode"] = ode
    print(f"ODE p = 8, k = 4 to t = {ode['t_max']:g}: {ode['seconds']:.1f} s (DOP853 reference at rtol 1e-10: "
          f"{ode['reference_seconds']:.1f} s), max |ΔR| = {ode['max_abs_diff']:.1e}")
    total_per_run = sum(r["members"] * r["steps"] for r in results["widths"]) / sum(
        r["per_run_s"] for r in results["widths"])
    total_batched = sum(r["members"] * r["steps"] for r in results["widths"]) / sum(
        r["batched_s"] for r in results["widths"])
    agree = max(r["max_rel_diff"] for r in results["widths"])
    results.update(ratio=total_batched / total_per_run, max_rel_diff=agree, peak_rss_mb=peak_rss_mb())
    print(f"agreement: max relative risk difference {agree:.1e} ({'ok' if agree < 1e-3 else 'MISMATCH'})")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(results, fh, indent=2)
    print(f"ratio: {results['ratio']:.1f}x")
    if agree >= 1e-3:
        sys.exit(1)


if __name__ == "__main__":
    main()
