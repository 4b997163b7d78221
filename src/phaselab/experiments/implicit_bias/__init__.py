"""The implicit bias of gradient descent towards the maximum margin (Soudry, Hoffer, Nacson, Gunasekar & Srebro,
JMLR 2018).

Full-batch GD on the mean logistic loss of a linear classifier, from w = 0, on a small data set separable through
the origin (``data.separable_set``: two Gaussian clouds, support vectors spanning R^d). The theory
(``theory.implicit_bias``): w(t)/‖w(t)‖ → ŵ/‖ŵ‖, ŵ the hard-margin SVM solution (computed independently by
non-negative least squares), with the angle and the normalised-margin gap decaying like 1/log t and
‖w(t)‖ ≈ ‖ŵ‖ log t; more precisely w(t) ≈ ŵ log t + w̃.

One cell: its members are the learning rates × data sets (seeds), each member full-batch GD on its own data set.
"""

from __future__ import annotations

import sys

import numpy as np

from phaselab.config import check_grid_axis
from phaselab.schedules import log_schedule

FIGURES = ("implicit_bias_rates", "implicit_bias_2d")


def check(key: str, exp: dict) -> None:
    check_grid_axis(f"{key}.grid.lr", exp["grid"]["lr"])


def checkpoints(exp: dict) -> list[int]:
    """Steps 0 and log-spaced from 1 to train.steps, ``checkpoints_per_decade`` a decade."""
    return log_schedule(exp["train"]["steps"], exp["train"]["checkpoints_per_decade"])


def cells(exp: dict) -> list[dict]:
    """One cell: every (η, data set) member in one ensemble (a step costs little more for 10 members than for 1)."""
    return [{"id": "ensemble", "data": None}]


def make_data(config: dict, name: str, data_id: str, out: str) -> None:
    raise NotImplementedError("implicit_bias cells draw their data sets themselves")


def train_cell(config: dict, name: str, cell_id: str, data_path: str | None, out: str, threads: int = 1,
               log=sys.stderr) -> None:
    """GD from w = 0 for every (η, data set) member; w(t), its angle and margin gap to the SVM solution."""
    import torch
    import xarray as xr

    from phaselab import data
    from phaselab.metrics import STATUS_DIVERGED, STATUS_OK, write_netcdf
    from phaselab.theory.implicit_bias import angle, margin_gap, max_margin
    from phaselab.device import pick_device, set_threads
    from phaselab.engines.ensemble import train_ensemble

    set_threads(threads)
    exp = config["experiments"][name]
    n, d, S = exp["data"]["n"], exp["data"]["d"], exp["grid"]["seeds"]
    lrs = sorted(exp["grid"]["lr"])
    device = pick_device(config["device"])
    x, y = (np.stack(a) for a in zip(*(data.separable_set(n, d, config["seed"], s) for s in range(S))))
    z = y[..., None] * x  # (seed, n, d)
    z_members = torch.as_tensor(np.tile(z, (len(lrs), 1, 1)), dtype=torch.float64, device=device)  # m = (lr, seed)

    def loss(p, z_):
        return torch.nn.functional.softplus(-(z_ @ p["w"])).mean()  # mean of log(1 + exp(−y w·x))

    def evaluate(p):
        return {"loss": torch.func.vmap(loss)(p, z_members)} | {f"w{i}": p["w"][:, i] for i in range(d)}

    steps = checkpoints(exp)
    print(f"[train] experiment {name}: logistic regression on {S} separable sets of {n} points in R^{d}, "
          f"η ∈ {lrs}, {steps[-1]} GD steps, device {device}", file=log, flush=True)
    lr = torch.tensor(np.repeat(lrs, S), dtype=torch.float64, device=device)
    run = train_ensemble({"w": torch.zeros(len(lr), d, dtype=torch.float64, device=device)}, loss,
                         lambda step: z_members, lr, steps, evaluate, batch_in_dims=0, log=log)
    w = np.stack([run.metrics[f"w{i}"] for i in range(d)], axis=-1).reshape(len(lrs), S, len(steps), d)
    angles, gaps = np.full(w.shape[:-1], np.nan), np.full(w.shape[:-1], np.nan)
    with np.errstate(invalid="ignore", divide="ignore"):
        for j in range(S):
            w_hat, _ = max_margin(z[j])
            for i in range(len(lrs)):
                angles[i, j], gaps[i, j] = angle(w[i, j], w_hat), margin_gap(w[i, j], z[j], w_hat)
    dims = ("lr", "seed", "step")
    ds = xr.Dataset(
        {
            "w": (dims + ("coord",), w, {"long_name": "GD iterate w(t)", "units": "1"}),
            "weight_norm": (dims, np.linalg.norm(w, axis=-1), {"long_name": "‖w(t)‖", "units": "1"}),
            "angle": (dims, angles, {"long_name": "angle between w(t) and the SVM direction ŵ", "units": "rad"}),
            "margin_gap": (dims, gaps, {"long_name": "normalised-margin gap γ̂ − min_n y_n w·x_n/‖w‖", "units": "1"}),
            "loss": (dims, run.metrics["loss"].reshape(len(lrs), S, -1),
                     {"long_name": "training logistic loss", "units": "nat"}),
            "status": (("lr", "seed"), np.where(run.diverged_step >= 0, STATUS_DIVERGED, STATUS_OK).astype(str)
                       .reshape(len(lrs), S), {"long_name": "member status (ok / diverged)"}),
            "x": (("seed", "sample", "coord"), x, {"long_name": "inputs x_n (rescaled to max ‖x‖ = 1)", "units": "1"}),
            "y": (("seed", "sample"), y, {"long_name": "labels y_n = ±1", "units": "1"}),
        },
        coords={"lr": np.asarray(lrs, dtype=float), "seed": np.arange(S), "step": np.asarray(steps),
                "coord": np.arange(d), "sample": np.arange(n)},
        attrs={"train_seconds": run.seconds, "device": str(device), "threads": threads},
    )
    write_netcdf(ds, out)


def collect(config: dict, name: str, cell_paths: list[str], out: str) -> None:
    import xarray as xr

    from phaselab.metrics import open_netcdf, provenance, write_netcdf

    exp = config["experiments"][name]
    parts = [open_netcdf(p) for p in cell_paths]
    ds = xr.merge(parts, join="outer", compat="no_conflicts", combine_attrs="override")
    ds["status"] = ds["status"].astype(str)
    for var, units, long_name in [("lr", "1", "learning rate η"), ("seed", "1", "seed index (data set)"),
                                  ("step", "steps", "gradient-descent step t"), ("coord", "1", "input coordinate"),
                                  ("sample", "1", "training point")]:
        ds[var].attrs.update(long_name=long_name, units=units)
    ds.attrs = {
        "title": f"phaselab experiment {name}: implicit bias of GD on separable data",
        "experiment": name,
        "experiment_type": exp["type"],
        "references": "Soudry, Hoffer, Nacson, Gunasekar, Srebro, JMLR 2018",
        "n": exp["data"]["n"],
        "d": exp["data"]["d"],
        "train_seconds": sum(float(p.attrs["train_seconds"]) for p in parts),
        **provenance(config, ",".join(sorted({p.attrs["device"] for p in parts}))),
    }
    write_netcdf(ds, out)


def theory(config: dict, name: str, metrics_path: str, out: str) -> None:
    """ŵ (SVM), the margin γ̂ = 1/‖ŵ‖, w̃ and the angle, margin gap and norm of the asymptote ŵ log t + w̃
    (NaN before its leading term dominates)."""
    import xarray as xr

    from phaselab.metrics import open_netcdf, write_netcdf
    from phaselab.theory import implicit_bias as ib

    m = open_netcdf(metrics_path)
    lrs, seeds, steps = m["lr"].values, m["seed"].values, m["step"].values
    t = np.where(steps > 1, steps, np.nan).astype(float)  # log t > 0 from t = 2 on
    shape = (len(lrs), len(seeds), len(steps))
    w_hat = np.zeros((len(seeds), m.sizes["coord"]))
    w_tilde = np.zeros((len(lrs), len(seeds), m.sizes["coord"]))
    predicted = {k: np.full(shape, np.nan) for k in ("angle", "margin_gap", "weight_norm")}
    for j, seed in enumerate(seeds):
        z = (m["y"].sel(seed=seed).values[:, None] * m["x"].sel(seed=seed).values)
        w_hat[j], alpha = ib.max_margin(z)
        for i, lr in enumerate(lrs):
            w_tilde[i, j] = ib.residual(z, alpha, float(lr))
            # where the leading term dominates: ŵ log t + w̃ = ŵ (log t + c) + w̃⊥ with log t + c ≥ max(1, 2‖w̃⊥‖/‖ŵ‖)
            c = w_tilde[i, j] @ w_hat[j] / (w_hat[j] @ w_hat[j])
            perp = np.linalg.norm(w_tilde[i, j] - c * w_hat[j]) / np.linalg.norm(w_hat[j])
            valid = np.log(t) + c >= max(1.0, 2 * perp)
            w_t = np.where(valid[:, None], ib.asymptote(t, w_hat[j], w_tilde[i, j]), np.nan)
            with np.errstate(invalid="ignore"):
                predicted["angle"][i, j] = ib.angle(w_t, w_hat[j])
                predicted["margin_gap"][i, j] = ib.margin_gap(w_t, z, w_hat[j])
            predicted["weight_norm"][i, j] = np.linalg.norm(w_t, axis=-1)
    dims = ("lr", "seed", "step")
    ds = xr.Dataset(
        {
            "w_hat": (("seed", "coord"), w_hat, {"long_name": "hard-margin SVM solution ŵ (min ‖w‖, y w·x ≥ 1)",
                                                 "units": "1"}),
            "max_margin": ("seed", 1.0 / np.linalg.norm(w_hat, axis=1), {"long_name": "maximum margin γ̂ = 1/‖ŵ‖",
                                                                         "units": "1"}),
            "w_tilde": (("lr", "seed", "coord"), w_tilde, {"long_name": "residual w̃ of w(t) ≈ ŵ log t + w̃",
                                                           "units": "1"}),
            "angle": (dims, predicted["angle"], {"long_name": "angle of ŵ log t + w̃ to ŵ (∝ 1/log t)",
                                                 "units": "rad"}),
            "margin_gap": (dims, predicted["margin_gap"], {"long_name": "normalised-margin gap of ŵ log t + w̃",
                                                          "units": "1"}),
            "weight_norm": (dims, predicted["weight_norm"], {"long_name": "‖ŵ log t + w̃‖", "units": "1"}),
        },
        coords={"lr": lrs, "seed": seeds, "step": steps, "coord": m["coord"].values},
        attrs={"experiment": name, "references": "Soudry et al. JMLR 2018, Theorem 3 and eq. (8)"},
    )
    write_netcdf(ds, out)


def agreement(metrics, theory_ds) -> dict:
    """Seed-mean angle between w(t) and ŵ at the last step against that of the asymptote ŵ log t + w̃."""
    last = {"step": metrics["step"].values[-1]}
    sim = metrics["angle"].where(metrics["status"] == "ok").sel(last).mean("seed")
    rel = abs(sim - theory_ds["angle"].sel(last).mean("seed")) / theory_ds["angle"].sel(last).mean("seed")
    n = int(rel.notnull().sum())
    return {"max_rel_deviation": float(rel.max()) if n else None,
            "checked": f"angle to the SVM direction at t = {int(last['step'])}, {n} learning rates"}


def figure(figure_name: str, metrics, theory_ds):
    from phaselab.plots import implicit_bias as plots

    return getattr(plots, figure_name)(metrics, theory_ds)
