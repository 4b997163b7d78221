"""Flat and sharp minima of SGD, and the η/B law of its noise.

Two parts, one experiment:

- ``mlp``: minibatch SGD (sampling with replacement) on the square loss of a small tanh MLP fitted to a subset of
  the digits, over a grid of batch sizes B and learning rates η. At the end: the sharpness λ_max of the
  full training loss (Lanczos, ``phaselab.curvature``), Keskar et al.'s ε-sharpness (ICLR 2017), and the test error
  (Keskar, Mudigere, Nocedal, Smelyanskiy & Tang 2017; Hochreiter & Schmidhuber 1997; Jastrzębski et al. 2017:
  the SGD noise scale η/B selects flatter minima). A cell is one batch size; its members are η × seeds, every
  member drawing its own minibatches (members of one seed share init and minibatch indices across η).
- ``linear_regression``: SGD on isotropic linear regression with fresh samples, where the stationary excess loss is
  exact, E[L − L*] = d η σ² / (2B (2 − η − η(d + 1)/B)) ≈ η d σ² / (4B) (``theory.sgd_noise``): a function of
  η/B alone at small η. A cell is one batch size B; its members are the ratios η/B of the grid × seeds.
"""

from __future__ import annotations

import math
import sys

import numpy as np

from phaselab.config import check_grid_axis, fail

FIGURES = ("sharpness_vs_batch", "eta_over_b")


def check(key: str, exp: dict) -> None:
    mlp, lin = exp["mlp"], exp["linear_regression"]
    for axis in ("batch_size", "lr"):
        check_grid_axis(f"{key}.mlp.{axis}", mlp[axis])
    for axis in ("batch_size", "eta_over_batch"):
        check_grid_axis(f"{key}.linear_regression.{axis}", lin[axis])
    for b in mlp["batch_size"]:
        if b > mlp["n_train"]:
            fail(f"{key}.mlp.batch_size", b, f"exceeds mlp.n_train = {mlp['n_train']}")
    from phaselab.theory.sgd_noise import stability_limit

    for b in lin["batch_size"]:
        limit = float(stability_limit(b, lin["d"]))
        for r in lin["eta_over_batch"]:
            if r * b >= limit:
                fail(f"{key}.linear_regression.eta_over_batch", r,
                     f"with B = {b} gives η = {r * b:g} ≥ 2/(1 + (d+1)/B) = {limit:.4g}: SGD has no stationary state")


def cells(exp: dict) -> list[dict]:
    mlp = [{"id": f"mlp_b{b}", "data": "digits", "part": "mlp", "batch_size": b}
           for b in sorted(exp["mlp"]["batch_size"])]
    lin = exp["linear_regression"]
    linreg = []
    for b in sorted(lin["batch_size"]):
        steps = math.ceil(lin["time"] / (min(lin["eta_over_batch"]) * b))
        linreg.append({"id": f"linreg_b{b}", "data": None, "part": "linreg", "batch_size": b, "steps": steps})
    return mlp + linreg


def make_data(config: dict, name: str, data_id: str, out: str) -> None:
    from phaselab import data

    exp = config["experiments"][name]
    data.save_npz_atomic(out, **data.digits_subset(exp["mlp"]["n_train"], data.rng(config["seed"], data.DIGITS_SUBSET)))


def train_cell(config: dict, name: str, cell_id: str, data_path: str | None, out: str, threads: int = 1,
               log=sys.stderr) -> None:
    from phaselab.metrics import write_netcdf
    from phaselab.device import pick_device, set_threads

    set_threads(threads)
    exp = config["experiments"][name]
    cell = next(c for c in cells(exp) if c["id"] == cell_id)
    device = pick_device(config["device"])
    trainer = _train_mlp if cell["part"] == "mlp" else _train_linear_regression
    ds = trainer(config, exp, cell, data_path, device, log)
    ds.attrs.update(device=str(device), threads=threads)
    write_netcdf(ds, out)


def _status(diverged: np.ndarray) -> np.ndarray:
    from phaselab.metrics import STATUS_DIVERGED, STATUS_OK

    return np.where(diverged >= 0, STATUS_DIVERGED, STATUS_OK).astype(str)


def _train_mlp(config, exp, cell, data_path, device, log):
    """SGD with batch B for every (η, seed) member; final sharpness, ε-sharpness and errors."""
    from functools import partial

    import torch
    import xarray as xr
    from torch.func import vmap

    from phaselab import curvature, data
    from phaselab.models import deep_mlp
    from phaselab.engines.ensemble import train_ensemble

    mlp = exp["mlp"]
    B, S, lrs = cell["batch_size"], exp["seeds"], sorted(mlp["lr"])
    arrays = data.load_npz(data_path)
    x, y, x_test, y_test = (torch.as_tensor(arrays[k], dtype=torch.float64, device=device)
                            for k in ("x_train", "y_train", "x_test", "y_test"))
    sizes = [x.shape[1], *mlp["widths"], y.shape[1]]
    member_seed = torch.arange(S, device=device).repeat(len(lrs))  # member m = (lr index m // S, seed m % S)
    init_seeds = [data.derive_seed(config["seed"], data.MLP_INIT, s) for s in member_seed.tolist()]
    params = {k: v.to(device) for k, v in deep_mlp.init_mlp(sizes, init_seeds, mlp["activation"],
                                                             mlp["output_scale"]).items()}
    lr = torch.tensor(np.repeat(lrs, S), dtype=torch.float64, device=device)
    loss = partial(deep_mlp.squared_loss, activation=mlp["activation"])
    outputs = vmap(partial(deep_mlp.forward, activation=mlp["activation"]), in_dims=(0, None))
    gen = torch.Generator().manual_seed(data.derive_seed(config["seed"], data.MINIBATCHES, 1, B))

    def batches(step):
        idx = torch.randint(0, len(x), (S, B), generator=gen).to(device)[member_seed]  # with replacement
        return x[idx], y[idx]

    def evaluate(p):
        return {"train_loss": vmap(loss, in_dims=(0, None))(p, (x, y)),
                "train_error": (outputs(p, x).argmax(-1) != y.argmax(-1)).double().mean(-1),
                "test_error": (outputs(p, x_test).argmax(-1) != y_test.argmax(-1)).double().mean(-1)}

    print(f"[train] cell {cell['id']}: MLP {sizes}, SGD with B = {B}, η ∈ {lrs}, {S} seeds, {mlp['steps']} steps",
          file=log, flush=True)
    run = train_ensemble(params, loss, batches, lr, [0, mlp["steps"]], evaluate, batch_in_dims=0,
                         divergence_threshold=mlp["divergence_threshold"], log=log)
    ok = run.diverged_step < 0
    lam = curvature.top_eigenvalue(loss, run.params, (x, y), iters=mlp["lanczos_iters"], seed=B).cpu().numpy()
    eps, eps_first = (v.cpu().numpy() for v in curvature.epsilon_sharpness(
        loss, run.params, (x, y), epsilon=mlp["epsilon"], steps=mlp["ascent_steps"]))
    print(f"[train] done in {run.seconds:.1f}s, {int((~ok).sum())} diverged", file=log, flush=True)

    def grid(values):
        return np.where(ok, values, np.nan).reshape(len(lrs), S)

    dims = ("lr", "seed")
    ds = xr.Dataset(
        {
            "sharpness": (dims, grid(lam), {"long_name": "sharpness λ_max of the training-loss Hessian at the end",
                                            "units": "1"}),
            "eps_sharpness": (dims, grid(eps), {"long_name": f"Keskar ε-sharpness (ε = {mlp['epsilon']:g})",
                                                "units": "percent"}),
            "eps_sharpness_first_order": (dims, grid(eps_first), {
                "long_name": "first-order part of the ε-sharpness, 100 ε Σ|∂f|(|x|+1)/(1+f)", "units": "percent"}),
            **{k: (dims, grid(run.metrics[k][:, -1]), {"long_name": f"{k.replace('_', ' ')} at the end", "units": "1"})
               for k in ("train_loss", "train_error", "test_error")},
            "status": (dims, _status(run.diverged_step).reshape(len(lrs), S),
                       {"long_name": "member status (ok / diverged)"}),
        },
        coords={"lr": np.asarray(lrs, dtype=float), "seed": np.arange(S)},
        attrs={"train_seconds": run.seconds},
    )
    return ds.expand_dims(batch_size=[B])


def _train_linear_regression(config, exp, cell, data_path, device, log):
    """SGD with fresh samples for every (η/B, seed) member; the time-averaged stationary excess loss."""
    import torch
    import xarray as xr

    from phaselab import data
    from phaselab.engines.ensemble import train_ensemble

    lin = exp["linear_regression"]
    B, S, d, ratios = cell["batch_size"], exp["seeds"], lin["d"], sorted(lin["eta_over_batch"])
    sigma = math.sqrt(lin["noise_variance"])
    teacher = torch.as_tensor(np.stack([data.rng(config["seed"], data.REGRESSION_TEACHER, d, s).standard_normal(d)
                                        for s in range(S)]), dtype=torch.float64, device=device)
    w_star = teacher.repeat(len(ratios), 1)  # member m = (ratio index m // S, seed m % S)
    M = len(w_star)
    lr = torch.tensor(np.repeat(ratios, S) * B, dtype=torch.float64, device=device)
    gen = torch.Generator().manual_seed(data.derive_seed(config["seed"], data.MINIBATCHES, 2, d, B))

    def loss(p, batch):
        x, y = batch
        return 0.5 * ((y - x @ p["w"]) ** 2).mean()

    def batches(step):
        x = torch.randn(M, B, d, generator=gen, dtype=torch.float64).to(device)
        noise = torch.randn(M, B, generator=gen, dtype=torch.float64).to(device)
        return x, torch.einsum("mbd,md->mb", x, w_star) + sigma * noise

    steps = cell["steps"]
    checkpoints = sorted({round(i * steps / lin["checkpoints"]) for i in range(lin["checkpoints"] + 1)})
    print(f"[train] cell {cell['id']}: linear regression d = {d}, B = {B}, η/B ∈ {ratios}, {S} seeds, {steps} steps",
          file=log, flush=True)
    run = train_ensemble({"w": torch.zeros(M, d, dtype=torch.float64, device=device)}, loss, batches, lr,
                         checkpoints, lambda p: {"excess_loss": 0.5 * ((p["w"] - w_star) ** 2).sum(1)},
                         batch_in_dims=0, log=log)
    stationary = np.asarray(checkpoints) >= lin["burn_in"] * steps
    excess = run.metrics["excess_loss"][:, stationary].mean(1).reshape(len(ratios), S)
    dims = ("eta_over_batch", "seed")
    ds = xr.Dataset(
        {
            "excess_loss": (dims, excess, {"long_name": "stationary excess loss E[L − L*] (time average after "
                                                        "burn-in)", "units": "1"}),
            "linreg_status": (dims, _status(run.diverged_step).reshape(len(ratios), S),
                              {"long_name": "member status (ok / diverged)"}),
            "linreg_steps": ((), steps, {"long_name": "SGD steps of the cell", "units": "steps"}),
        },
        coords={"eta_over_batch": np.asarray(ratios, dtype=float), "seed": np.arange(S)},
        attrs={"train_seconds": run.seconds},
    )
    return ds.expand_dims(linreg_batch_size=[B])


def collect(config: dict, name: str, cell_paths: list[str], out: str) -> None:
    import xarray as xr

    from phaselab.metrics import open_netcdf, provenance, write_netcdf

    exp = config["experiments"][name]
    parts = [open_netcdf(p) for p in cell_paths]
    ds = xr.merge(parts, join="outer", compat="no_conflicts", combine_attrs="override")
    ds["linreg_steps"] = ds["linreg_steps"].astype(int)
    for status in ("status", "linreg_status"):
        ds[status] = ds[status].astype(str)
    ds["lr_linreg"] = (ds["eta_over_batch"] * ds["linreg_batch_size"]).assign_attrs(
        long_name="linear-regression learning rate η = (η/B)·B", units="1")
    ds["eta_over_b"] = (ds["lr"] / ds["batch_size"]).assign_attrs(long_name="MLP noise scale η/B", units="1")
    for var, units, long_name in [
        ("batch_size", "1", "MLP minibatch size B"), ("lr", "1", "MLP learning rate η"), ("seed", "1", "seed index"),
        ("linreg_batch_size", "1", "linear-regression minibatch size B"),
        ("eta_over_batch", "1", "linear-regression noise scale η/B"),
    ]:
        ds[var].attrs.update(long_name=long_name, units=units)
    mlp, lin = exp["mlp"], exp["linear_regression"]
    ds.attrs = {
        "title": f"phaselab experiment {name}: sharpness of SGD minima against B and η/B",
        "experiment": name,
        "experiment_type": exp["type"],
        "references": "Keskar et al. ICLR 2017; Hochreiter & Schmidhuber 1997; Jastrzebski et al. 2017; "
                      "Cohen et al. ICLR 2021",
        "widths": str(mlp["widths"]),
        "activation": mlp["activation"],
        "n_train": mlp["n_train"],
        "mlp_steps": mlp["steps"],
        "epsilon": mlp["epsilon"],
        "linreg_d": lin["d"],
        "linreg_noise_variance": lin["noise_variance"],
        "train_seconds": sum(float(p.attrs["train_seconds"]) for p in parts),
        **provenance(config, ",".join(sorted({p.attrs["device"] for p in parts}))),
    }
    write_netcdf(ds, out)


def theory(config: dict, name: str, metrics_path: str, out: str) -> None:
    """Exact and small-η stationary excess loss of linear regression; the GD stability threshold 2/η of the MLP."""
    import xarray as xr

    from phaselab.metrics import open_netcdf, write_netcdf
    from phaselab.theory.sgd_noise import excess_loss, excess_loss_small_eta

    lin = config["experiments"][name]["linear_regression"]
    m = open_netcdf(metrics_path)
    B, r = m["linreg_batch_size"], m["eta_over_batch"]
    exact = xr.apply_ufunc(excess_loss, r * B, B, lin["d"], lin["noise_variance"])
    ds = xr.Dataset({
        "excess_loss": exact.transpose("linreg_batch_size", "eta_over_batch").assign_attrs(
            long_name="exact stationary excess loss d η σ² / (2B(2 − η − η(d+1)/B))", units="1"),
        "excess_loss_small_eta": xr.apply_ufunc(excess_loss_small_eta, r, lin["d"], lin["noise_variance"]).assign_attrs(
            long_name="small-η excess loss η d σ² / (4B), a function of η/B only", units="1"),
        "stability_threshold": (2.0 / m["lr"]).assign_attrs(long_name="2/η, GD stability threshold", units="1"),
    }, attrs={"experiment": name, "references": "shared/reference/theory.md sections 5 and 6"})
    write_netcdf(ds, out)


def agreement(metrics, theory_ds) -> dict:
    """Seed-mean stationary excess loss of SGD on linear regression against the exact η/B formula."""
    sim = metrics["excess_loss"].where(metrics["linreg_status"] == "ok").mean("seed")
    rel = abs(sim - theory_ds["excess_loss"]) / theory_ds["excess_loss"]
    return {"max_rel_deviation": float(rel.max()),
            "checked": f"linear-regression excess loss at {int(rel.notnull().sum())} (B, η/B) points "
                       "(the MLP sharpness has no closed form)"}


def figure(figure_name: str, metrics, theory_ds):
    from phaselab.plots import sharpness as plots

    return getattr(plots, figure_name)(metrics, theory_ds)
