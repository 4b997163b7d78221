"""Benchmark: the batched engine against the natural per-run loop on the same workload (and the ODE integrator).

    python -m phaselab.bench            # d = 1000, p ∈ {2, 8, 32}, 8 learning rates × 4 seeds, 10·d steps
    python -m phaselab.bench --quick    # the same shape of workload, scaled down (< 2 min on 2 cores)

Both engines train the same members from the same initial weights on the same input stream (one fresh Gaussian
draw per step and seed), so their risks must agree to float tolerance; the check is printed. The last line is
``ratio: <number>x`` (batched member-steps/s over per-run member-steps/s, the whole workload).
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


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(prog="python -m phaselab.bench", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="scaled-down workload, under 2 minutes on 2 cores")
    parser.add_argument("--device", default="auto", help="auto | cpu | cuda")
    parser.add_argument("--backend", default="auto", help="auto | numba | torch")
    parser.add_argument("--threads", type=int, default=None, help="CPU threads (default: all cores)")
    parser.add_argument("--json", default=None, help="also write the results to this JSON file")
    args = parser.parse_args(argv)
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
