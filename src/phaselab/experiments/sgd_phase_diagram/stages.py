"""The phase diagram's stages: teachers and test sets per d, one batched ensemble per shape cell, the ODE."""

from __future__ import annotations

import numpy as np

from phaselab.experiment import Claim, Run, judge, largest
from phaselab.experiments.sgd_phase_diagram import ShapeCell, experiment_times, learning_rate

RISK_ATTRS = {"long_name": "excess population risk ½E[(f* − f)²]", "units": "1"}


def make_data(run: Run, data_id: str) -> dict[str, np.ndarray]:
    """Teachers and held-out test sets of every seed at dimension d (data id 'd<d>')."""
    from phaselab import data

    exp = run.exp
    d = int(data_id.removeprefix("d"))
    return data.teacher_student_data(d, exp["teacher"]["k"], exp["grid"]["seeds"], exp["train"]["n_test"], run.seed)


def train(run: Run, cell: ShapeCell, arrays: dict):
    """Every (δ, seed) member of one shape cell (d, κ), trained as one ensemble."""
    import torch

    from phaselab import data
    from phaselab.engines.committee import train_committee_ensemble

    exp, device = run.exp, run.device
    d, p, n_seeds = cell.d, cell.p, exp["grid"]["seeds"]
    deltas = sorted(exp["grid"]["delta"])
    lr = [learning_rate(exp["train"]["gamma0"], d, delta) for delta in deltas]
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = exp["train"]["tf32"]
    run.log(f"{len(deltas)} learning rates × {n_seeds} seeds, {cell.steps[-1]} steps")
    result = train_committee_ensemble(
        data.student_init(d, p, n_seeds, exp["train"]["init_scale"], run.seed),
        arrays["teacher"],
        np.asarray(lr),
        np.asarray(cell.steps),
        [data.derive_seed(run.seed, data.STREAM, d, s) for s in range(n_seeds)],
        noise=exp["teacher"]["noise"],
        test_x=arrays["test_x"],
        test_f=arrays["test_f"],
        device=device,
        divergence_threshold=exp["train"]["divergence_threshold"],
        memory_budget_mb=exp["train"]["memory_budget_mb"],
        log=run.log_file,
    )
    run.log(f"{result.backend} backend, {result.member_steps_per_s:.3g} member-steps/s, "
            f"{int((result.diverged_step >= 0).sum())} diverged")
    attrs = {"backend": result.backend, "tf32": int(device.type == "cuda" and exp["train"]["tf32"]),
             "train_seconds": result.seconds}
    return cell_dataset(cell, deltas, n_seeds, result, lr, attrs)


def cell_dataset(cell: ShapeCell, deltas, n_seeds: int, result, lr, attrs: dict):
    """The results of one shape cell (d, κ) as a Dataset with dims (d, kappa, delta, seed, time)."""
    import xarray as xr

    from phaselab.vocabulary import STATUS_DIVERGED, STATUS_OK

    d, p = cell.d, cell.p
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
        coords={"delta": list(deltas), "seed": np.arange(n_seeds), "time": list(cell.times), "student": np.arange(p),
                "student_": np.arange(p), "teacher": np.arange(result.M0.shape[-1])},
        attrs=attrs,
    ).expand_dims(d=[d], kappa=[cell.kappa])
    ds["width"] = (("d", "kappa"), [[p]], {"long_name": "hidden units p = round(d^κ)", "units": "1"})
    ds["horizon"] = (("d", "kappa"), [[cell.horizon]], {"long_name": "end of the run", "units": "steps/d"})
    return ds


def collect(run: Run, cells: list):
    """One Dataset (dims d, kappa, delta, seed, time), with η = γ/p and the cells cut by train.max_time."""
    import xarray as xr

    from phaselab.vocabulary import STATUS_OK

    exp = run.exp
    backends = sorted({c.attrs["backend"] for c in cells})
    tf32 = any(int(c.attrs["tf32"]) for c in cells)
    ds = xr.merge(cells, join="outer", compat="no_conflicts", combine_attrs="override")
    ds = ds.reindex(time=experiment_times(exp))
    ds["status"] = ds["status"].fillna(STATUS_OK).astype(str)
    ds["width"] = ds["width"].astype(int)
    ds["eta"] = (ds["lr"] / ds["width"]).assign_attrs(long_name="effective learning rate η = γ/p", units="1")
    needed = exp["train"]["time"] / np.minimum(1.0, ds["eta"])
    ds["capped"] = (ds["horizon"] < needed * (1 - 1e-9)).assign_attrs(
        long_name="run cut by train.max_time before t = train.time / min(1, η): not yet asymptotic")
    ds.attrs = {
        "teacher_k": exp["teacher"]["k"],
        "noise": exp["teacher"]["noise"],
        "gamma0": exp["train"]["gamma0"],
        "divergence_threshold": exp["train"]["divergence_threshold"],
        "backend": ",".join(backends),
        "tf32": int(tf32),
    }
    return ds


def theory(run: Run, metrics):
    """ODE curves where the deterministic limit holds, and the phase of every cell."""
    from phaselab.theory.phase_diagram import phase_diagram_theory

    return phase_diagram_theory(metrics, max_width=run.exp["theory"]["max_width"])


ODE_TOLERANCE = 0.1  # relative: the engine follows the ODE within 10 % at d = 400 (tests/test_train.py)


def claims(metrics, theory) -> list[Claim]:
    """Seed-mean simulated risk against the seed-mean ODE, at every checkpoint t > 0 where the ODE was computed:
    the largest relative deviation, ± the standard error of the seed mean there (relative to the ODE)."""
    ok = metrics["risk"].where(metrics["status"] == "ok")
    sim, ode = ok.mean("seed"), theory["ode_risk"].mean("seed")
    rel = (abs(sim - ode) / ode).where(ode["time"] > 0)
    sem = ok.std("seed", ddof=1) / np.sqrt(ok.count("seed")) / ode
    n = int(rel.notnull().sum())
    per_d = {int(d): float(rel.sel(d=d).max()) for d in rel["d"].values if rel.sel(d=d).notnull().any()}
    measured, uncertainty = largest(rel, sem)
    return [judge(
        "seed-mean excess risk of online SGD follows the Saad–Solla ODE (largest relative deviation)",
        "Saad & Solla 1995; Veiga et al. 2022", theory=0.0, measured=measured, uncertainty=uncertainty,
        tolerance=ODE_TOLERANCE,
        where=f"{n} (cell, t) points with an ODE curve; max per d: "
              + ", ".join(f"d={d}: {v:.3g}" for d, v in per_d.items()))]
