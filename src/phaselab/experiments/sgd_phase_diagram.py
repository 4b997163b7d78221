"""One-pass SGD phase diagram of two-layer erf committee machines (Veiga, Stephan, Loureiro, Krzakala &
Zdeborová, NeurIPS 2022).

Grid: input dimension d, width exponent κ (p = round(d^κ) ≥ 1), learning-rate exponent δ (γ = γ0 d^−δ), seeds.
A cell is one shape (d, κ): its δ × seed members are trained together as one batched ensemble. Each run lasts
``train.time`` in units of its slowest member's time scale 1/min(1, η), η = γ/p, at most ``train.max_time``,
rounded up to the experiment's log-spaced checkpoint grid of t = steps/d.
"""

from __future__ import annotations

import math
import sys

import numpy as np

from phaselab.config import check_grid_axis, fail, milli

FIGURES = ("phase_diagram", "risk_curves", "asymptotic_risk")


def width(d: int, kappa: float) -> int:
    """p = d^κ rounded, at least 1."""
    return max(1, round(d**kappa))


def learning_rate(gamma0: float, d: int, delta: float) -> float:
    """γ = γ0 d^(−δ)."""
    return gamma0 * d ** (-delta)


def check(key: str, exp: dict) -> None:
    grid = exp["grid"]
    for axis in ("d", "kappa", "delta"):
        check_grid_axis(f"{key}.grid.{axis}", grid[axis])
    for axis in ("kappa", "delta"):
        for v in grid[axis]:
            milli(v, f"{key}.grid.{axis}")
    k = exp["teacher"]["k"]
    for d in grid["d"]:
        if k > d:
            fail(f"{key}.teacher.k", k, f"exceeds d = {d}")
        for kappa in grid["kappa"]:
            if width(d, kappa) > d:
                fail(f"{key}.grid.kappa", kappa, f"gives width p = {width(d, kappa)} > d = {d}")


def time_grid(t_max: float, per_decade: int, t_min: float = 0.1) -> list[float]:
    """Checkpoint times t = steps/d: 0, then log-spaced from t_min to the first grid point ≥ t_max."""
    top = math.ceil(round(math.log10(t_max / t_min) * per_decade, 9))
    return [0.0] + [t_min * 10 ** (i / per_decade) for i in range(top + 1)]


def cells(exp: dict) -> list[dict]:
    """One row per (d, κ) with its width, horizon, checkpoint times and steps; ids carry integers only."""
    grid, train = exp["grid"], exp["train"]
    rows = []
    for d in sorted(grid["d"]):
        for kappa in sorted(grid["kappa"]):
            p = width(d, kappa)
            eta_min = min(learning_rate(train["gamma0"], d, delta) / p for delta in grid["delta"])
            horizon = min(train["time"] / min(1.0, eta_min), train["max_time"])
            rows.append({"id": f"d{d}_kappa{milli(kappa, 'kappa')}", "data": f"d{d}", "d": d, "kappa": kappa,
                         "p": p, "horizon": horizon})
    times = time_grid(max(r["horizon"] for r in rows), train["checkpoints_per_decade"])
    for r in rows:
        end = next(i for i, t in enumerate(times) if t >= r["horizon"] * (1 - 1e-9))
        r["times"] = times[: end + 1]
        r["steps"] = [round(t * r["d"]) for t in r["times"]]
        r["horizon"] = r["times"][-1]
    return rows


def experiment_times(exp: dict) -> list[float]:
    """The experiment's full checkpoint grid (the ``time`` coordinate of its dataset)."""
    return max((c["times"] for c in cells(exp)), key=len)


def make_data(config: dict, name: str, data_id: str, out: str) -> None:
    """Teachers and held-out test sets of every seed at dimension d (data id 'd<d>')."""
    from phaselab import data

    exp = config["experiments"][name]
    d = int(data_id.removeprefix("d"))
    arrays = data.teacher_student_data(d, exp["teacher"]["k"], exp["grid"]["seeds"], exp["train"]["n_test"],
                                       config["seed"])
    data.save_npz_atomic(out, **arrays)


def train_cell(config: dict, name: str, cell_id: str, data_path: str, out: str, threads: int = 1,
               log=sys.stderr) -> None:
    """Train every (δ, seed) member of one shape cell as one ensemble and write its per-cell netCDF."""
    import torch

    from phaselab import data
    from phaselab.metrics import write_netcdf
    from phaselab.train import pick_device, set_threads, train_committee_ensemble

    set_threads(threads)
    exp = config["experiments"][name]
    cell = next(c for c in cells(exp) if c["id"] == cell_id)
    d, p, n_seeds = cell["d"], cell["p"], exp["grid"]["seeds"]
    deltas = sorted(exp["grid"]["delta"])
    lr = [learning_rate(exp["train"]["gamma0"], d, delta) for delta in deltas]
    device = pick_device(config["device"])
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = exp["train"]["tf32"]
    print(f"[train] experiment {name}, cell {cell_id}: d = {d}, κ = {cell['kappa']}, p = {p}, "
          f"{len(deltas)} learning rates × {n_seeds} seeds, {cell['steps'][-1]} steps, device {device}",
          file=log, flush=True)
    arrays = data.load_npz(data_path)
    result = train_committee_ensemble(
        data.student_init(d, p, n_seeds, exp["train"]["init_scale"], config["seed"]),
        arrays["teacher"],
        np.asarray(lr),
        np.asarray(cell["steps"]),
        [data.derive_seed(config["seed"], data.STREAM, d, s) for s in range(n_seeds)],
        noise=exp["teacher"]["noise"],
        test_x=arrays["test_x"],
        test_f=arrays["test_f"],
        device=device,
        divergence_threshold=exp["train"]["divergence_threshold"],
        memory_budget_mb=exp["train"]["memory_budget_mb"],
        log=log,
    )
    print(f"[train] done in {result.seconds:.1f}s ({result.backend}), {result.member_steps_per_s:.3g} "
          f"member-steps/s, {int((result.diverged_step >= 0).sum())} diverged", file=log, flush=True)
    attrs = {"device": str(device), "backend": result.backend, "threads": threads,
             "tf32": int(device.type == "cuda" and exp["train"]["tf32"]), "train_seconds": result.seconds}
    write_netcdf(cell_dataset(cell, deltas, n_seeds, result, lr, attrs), out)


RISK_ATTRS = {"long_name": "excess population risk ½E[(f* − f)²]", "units": "1"}


def cell_dataset(cell: dict, deltas, n_seeds: int, result, lr, attrs: dict):
    """The results of one shape cell (d, κ) as a Dataset with dims (d, kappa, delta, seed, time)."""
    import xarray as xr

    from phaselab.metrics import STATUS_DIVERGED, STATUS_OK

    d, p = cell["d"], cell["p"]
    risk = result.risk.transpose(1, 0, 2)  # (delta, seed, time)
    diverged = result.diverged_step.T
    ds = xr.Dataset(
        {
            "risk": (("delta", "seed", "time"), risk, RISK_ATTRS),
            "final_risk": (("delta", "seed"), risk[..., -1], {**RISK_ATTRS, "long_name": "excess risk at the horizon"}),
            "test_risk": (("delta", "seed"), result.test_risk.T,
                          {"long_name": "held-out estimate of the excess risk at the horizon", "units": "1"}),
            "status": (("delta", "seed"), np.where(diverged >= 0, STATUS_DIVERGED, STATUS_OK).astype(str),
                       {"long_name": "member status (ok / diverged)"}),
            "diverged_at": (("delta", "seed"), np.where(diverged >= 0, diverged / d, np.nan),
                            {"long_name": "time of divergence", "units": "steps/d"}),
            "lr": (("delta",), np.asarray(lr, dtype=float), {"long_name": "learning rate γ = γ0 d^−δ", "units": "1"}),
            "Q0": (("seed", "student", "student_"), result.Q0, {"long_name": "initial Q = WWᵀ/d", "units": "1"}),
            "M0": (("seed", "student", "teacher"), result.M0, {"long_name": "initial M = WW*ᵀ/d", "units": "1"}),
        },
        coords={"delta": list(deltas), "seed": np.arange(n_seeds), "time": cell["times"], "student": np.arange(p),
                "student_": np.arange(p), "teacher": np.arange(result.M0.shape[-1])},
        attrs={"cell": cell["id"], **attrs},
    ).expand_dims(d=[d], kappa=[cell["kappa"]])
    ds["width"] = (("d", "kappa"), [[p]], {"long_name": "hidden units p = round(d^κ)", "units": "1"})
    ds["horizon"] = (("d", "kappa"), [[cell["horizon"]]], {"long_name": "end of the run", "units": "steps/d"})
    return ds


def collect(config: dict, name: str, cell_paths: list[str], out: str) -> None:
    """Merge the per-cell files into the experiment's one Dataset (dims d, kappa, delta, seed, time)."""
    import xarray as xr

    from phaselab.metrics import STATUS_OK, open_netcdf, provenance, write_netcdf

    exp = config["experiments"][name]
    cells_ = [open_netcdf(path) for path in cell_paths]
    devices = sorted({c.attrs["device"] for c in cells_})
    backends = sorted({c.attrs["backend"] for c in cells_})
    tf32 = any(int(c.attrs["tf32"]) for c in cells_)
    ds = xr.merge(cells_, join="outer", compat="no_conflicts", combine_attrs="override")
    ds = ds.reindex(time=experiment_times(exp))
    ds["status"] = ds["status"].fillna(STATUS_OK).astype(str)
    ds["width"] = ds["width"].astype(int)
    ds["eta"] = (ds["lr"] / ds["width"]).assign_attrs(long_name="effective learning rate η = γ/p", units="1")
    needed = exp["train"]["time"] / np.minimum(1.0, ds["eta"])
    ds["capped"] = (ds["horizon"] < needed * (1 - 1e-9)).assign_attrs(
        long_name="run cut by train.max_time before t = train.time / min(1, η): not yet asymptotic")
    for var, units, long_name in [("d", "1", "input dimension"), ("kappa", "1", "width exponent κ, p = d^κ"),
                                  ("delta", "1", "learning-rate exponent δ, γ = γ0 d^−δ"),
                                  ("seed", "1", "seed index"), ("time", "steps/d", "time t = steps/d")]:
        ds[var].attrs.update(long_name=long_name, units=units)
    ds.attrs = {
        "title": f"phaselab experiment {name}: online SGD phase diagram of the erf committee machine",
        "experiment": name,
        "experiment_type": exp["type"],
        "references": "Veiga, Stephan, Loureiro, Krzakala, Zdeborová, NeurIPS 2022; Saad & Solla 1995",
        "teacher_k": exp["teacher"]["k"],
        "noise": exp["teacher"]["noise"],
        "gamma0": exp["train"]["gamma0"],
        "divergence_threshold": exp["train"]["divergence_threshold"],
        **provenance(config, ",".join(devices)),
        "backend": ",".join(backends),
        "tf32": int(tf32),
    }
    write_netcdf(ds, out)


def theory(config: dict, name: str, metrics_path: str, out: str) -> None:
    """ODE curves where the deterministic limit holds, and the phase of every cell."""
    from phaselab.metrics import open_netcdf, write_netcdf
    from phaselab.theory.phase_diagram import phase_diagram_theory

    exp = config["experiments"][name]
    write_netcdf(phase_diagram_theory(open_netcdf(metrics_path), max_width=exp["theory"]["max_width"]), out)


def figure(figure_name: str, metrics, theory_ds):
    from phaselab.plots import phase_diagram as plots

    return getattr(plots, figure_name)(metrics, theory_ds)


def agreement(metrics, theory_ds) -> dict:
    """Seed-mean simulated risk against the seed-mean ODE, at every checkpoint t > 0 where the ODE was computed."""
    sim = metrics["risk"].where(metrics["status"] == "ok").mean("seed")
    ode = theory_ds["ode_risk"].mean("seed")
    rel = (abs(sim - ode) / ode).where(ode["time"] > 0)
    n = int(rel.notnull().sum())
    per_d = {int(d): float(rel.sel(d=d).max()) for d in rel["d"].values if rel.sel(d=d).notnull().any()}
    return {
        "max_rel_deviation": float(rel.max()) if n else None,
        "checked": f"{n} (cell, t) points with an ODE curve; max per d: "
                   + ", ".join(f"d={d}: {v:.3g}" for d, v in per_d.items()),
    }
