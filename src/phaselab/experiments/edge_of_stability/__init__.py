"""Gradient descent at the edge of stability (Cohen, Kaur, Li, Kolter & Talwalkar, ICLR 2021).

Full-batch gradient descent with step η on the square loss of a small tanh MLP fitted to a subset of the digits.
On a quadratic, GD is stable iff the top Hessian eigenvalue (the *sharpness*) stays below 2/η; on a network the
sharpness first rises (progressive sharpening) and, once it reaches 2/η, hovers there while the loss keeps falling,
non-monotonically. The sharpness is measured at every checkpoint by Lanczos on Hessian-vector products
(``phaselab.curvature``), batched over the ensemble.

A cell is one seed (one initialisation, shared by all learning rates: common random numbers); its members are the
learning rates of the grid, trained together by ``train.train_ensemble`` on one shared full batch.
"""

from __future__ import annotations

import sys

import numpy as np

from phaselab.config import check_grid_axis

FIGURES = ("sharpness_trajectories",)


def check(key: str, exp: dict) -> None:
    check_grid_axis(f"{key}.grid.lr", exp["grid"]["lr"])


def checkpoints(exp: dict) -> list[int]:
    """Evenly spaced steps 0, Δ, 2Δ, …, steps (Δ = steps / train.checkpoints, rounded)."""
    steps, n = exp["train"]["steps"], exp["train"]["checkpoints"]
    return sorted({round(i * steps / n) for i in range(n + 1)})


def cells(exp: dict) -> list[dict]:
    return [{"id": f"seed{s}", "data": "digits", "seed": s} for s in range(exp["grid"]["seeds"])]


def make_data(config: dict, name: str, data_id: str, out: str) -> None:
    from phaselab import data

    exp = config["experiments"][name]
    subset = data.digits_subset(exp["data"]["n_train"], data.rng(config["seed"], data.DIGITS_SUBSET))
    data.save_npz_atomic(out, **subset)


def train_cell(config: dict, name: str, cell_id: str, data_path: str, out: str, threads: int = 1,
               log=sys.stderr) -> None:
    """Full-batch GD of every learning rate from one seed's initialisation; sharpness at every checkpoint."""
    from functools import partial

    import torch
    from torch.func import vmap

    from phaselab import curvature, data
    from phaselab.models import deep_mlp
    from phaselab.metrics import write_netcdf
    from phaselab.device import pick_device, set_threads
    from phaselab.engines.ensemble import train_ensemble

    set_threads(threads)
    exp = config["experiments"][name]
    model, train = exp["model"], exp["train"]
    cell = next(c for c in cells(exp) if c["id"] == cell_id)
    lrs = sorted(exp["grid"]["lr"])
    device = pick_device(config["device"])
    arrays = data.load_npz(data_path)
    x, y = (torch.as_tensor(arrays[k], dtype=torch.float64, device=device) for k in ("x_train", "y_train"))
    x_test, y_test = (torch.as_tensor(arrays[k], dtype=torch.float64, device=device) for k in ("x_test", "y_test"))
    sizes = [x.shape[1], *model["widths"], y.shape[1]]
    init_seed = data.derive_seed(config["seed"], data.MLP_INIT, cell["seed"])
    params = {k: v.to(device) for k, v in deep_mlp.init_mlp(sizes, [init_seed] * len(lrs), model["activation"],
                                                             model["output_scale"]).items()}
    loss = partial(deep_mlp.squared_loss, activation=model["activation"])
    outputs = vmap(partial(deep_mlp.forward, activation=model["activation"]), in_dims=(0, None))

    def evaluate(p):
        return {
            "loss": vmap(loss, in_dims=(0, None))(p, (x, y)),
            "sharpness": curvature.top_eigenvalue(loss, p, (x, y), iters=train["lanczos_iters"], seed=init_seed),
            "train_error": (outputs(p, x).argmax(-1) != y.argmax(-1)).double().mean(-1),
            "test_error": (outputs(p, x_test).argmax(-1) != y_test.argmax(-1)).double().mean(-1),
        }

    steps = checkpoints(exp)
    print(f"[train] experiment {name}, cell {cell_id}: MLP {sizes} ({model['activation']}), n = {len(x)}, "
          f"learning rates {lrs}, {steps[-1]} full-batch GD steps, device {device}", file=log, flush=True)
    run = train_ensemble(params, loss, lambda step: (x, y), torch.tensor(lrs, dtype=torch.float64, device=device),
                         steps, evaluate, batch_in_dims=None, divergence_threshold=train["divergence_threshold"],
                         log=log)
    print(f"[train] done in {run.seconds:.1f}s, {int((run.diverged_step >= 0).sum())} diverged", file=log, flush=True)
    write_netcdf(cell_dataset(cell["seed"], lrs, steps, run, {"device": str(device), "threads": threads}), out)


VARIABLES = {
    "loss": {"long_name": "training loss ½‖f − y‖² (mean over the training set)", "units": "1"},
    "sharpness": {"long_name": "sharpness λ_max of the training-loss Hessian (Lanczos)", "units": "1"},
    "train_error": {"long_name": "training classification error", "units": "1"},
    "test_error": {"long_name": "test classification error", "units": "1"},
}


def cell_dataset(seed: int, lrs, steps, run, attrs: dict):
    import xarray as xr

    from phaselab.metrics import STATUS_DIVERGED, STATUS_OK

    diverged = run.diverged_step
    ds = xr.Dataset(
        {name: (("lr", "step"), run.metrics[name], a) for name, a in VARIABLES.items()}
        | {
            "status": ("lr", np.where(diverged >= 0, STATUS_DIVERGED, STATUS_OK).astype(str),
                       {"long_name": "member status (ok / diverged)"}),
            "diverged_at": ("lr", np.where(diverged >= 0, diverged, np.nan).astype(float),
                            {"long_name": "checkpoint at which the member was found diverged", "units": "steps"}),
        },
        coords={"lr": np.asarray(lrs, dtype=float), "step": np.asarray(steps)},
        attrs={"train_seconds": run.seconds, **attrs},
    )
    return ds.expand_dims(seed=[seed]).transpose("lr", "seed", ...)


def collect(config: dict, name: str, cell_paths: list[str], out: str) -> None:
    import xarray as xr

    from phaselab.metrics import open_netcdf, provenance, write_netcdf

    exp = config["experiments"][name]
    parts = [open_netcdf(p) for p in cell_paths]
    ds = xr.merge(parts, join="outer", compat="no_conflicts", combine_attrs="override").transpose("lr", "seed", "step")
    ds["status"] = ds["status"].astype(str)
    for var, units, long_name in [("lr", "1", "learning rate η"), ("seed", "1", "seed index"),
                                  ("step", "steps", "gradient-descent step")]:
        ds[var].attrs.update(long_name=long_name, units=units)
    ds.attrs = {
        "title": f"phaselab experiment {name}: full-batch gradient descent at the edge of stability",
        "experiment": name,
        "experiment_type": exp["type"],
        "references": "Cohen, Kaur, Li, Kolter, Talwalkar, ICLR 2021",
        "widths": str(exp["model"]["widths"]),
        "activation": exp["model"]["activation"],
        "n_train": exp["data"]["n_train"],
        "train_seconds": sum(float(p.attrs["train_seconds"]) for p in parts),
        **provenance(config, ",".join(sorted({p.attrs["device"] for p in parts}))),
    }
    write_netcdf(ds, out)


def theory(config: dict, name: str, metrics_path: str, out: str) -> None:
    """The stability threshold 2/η of gradient descent on a quadratic, per learning rate."""
    import xarray as xr

    from phaselab.metrics import open_netcdf, write_netcdf

    lr = open_netcdf(metrics_path)["lr"]
    write_netcdf(xr.Dataset(
        {"stability_threshold": (2.0 / lr).assign_attrs(
            long_name="2/η: GD on a quadratic is stable iff λ_max < 2/η", units="1")},
        attrs={"experiment": name, "references": "Cohen et al. 2021; shared/reference/theory.md section 6"},
    ), out)


def agreement(metrics, theory_ds) -> dict:
    """Seed-mean sharpness over the second half of the run against 2/η, for the learning rates whose sharpness
    reached 0.9 · 2/η (those at the edge of stability)."""
    ok = metrics["status"] == "ok"
    late = metrics["sharpness"].where(ok).sel(step=metrics["step"] >= metrics["step"].max() / 2).mean(("seed", "step"))
    threshold = theory_ds["stability_threshold"]
    at_edge = (metrics["sharpness"].where(ok).max(("seed", "step")) >= 0.9 * threshold)
    rel = (abs(late - threshold) / threshold).where(at_edge)
    n = int(rel.notnull().sum())
    return {"max_rel_deviation": float(rel.max()) if n else None,
            "checked": f"second-half mean sharpness vs 2/η at the {n} learning rates that reached the edge: "
                       + ", ".join(f"η={float(lr):g}: {float(v):.3g}" for lr, v in zip(rel["lr"], rel) if v.notnull())}


def figure(figure_name: str, metrics, theory_ds):
    from phaselab.plots import edge_of_stability as plots

    return getattr(plots, figure_name)(metrics, theory_ds)
