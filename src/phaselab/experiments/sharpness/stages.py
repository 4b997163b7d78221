"""The sharpness stages: a digits subset, SGD on the MLP per batch size (final sharpness, ε-sharpness, errors),
SGD on linear regression per batch size (stationary excess loss), and the exact η/B law beside them."""

from __future__ import annotations

import math

import numpy as np

from phaselab.experiment import Claim, Run, judge, largest
from phaselab.experiments.sharpness import LinregCell, MlpCell


def make_data(run: Run, data_id: str) -> dict[str, np.ndarray]:
    """A random subset of the digits (data id 'digits'): train and test arrays."""
    from phaselab import data

    return data.digits_subset(run.exp["mlp"]["n_train"], data.rng(run.seed, data.DIGITS_SUBSET))


def train(run: Run, cell: MlpCell | LinregCell, arrays: dict | None):
    if isinstance(cell, MlpCell):
        return _train_mlp(run, cell, arrays)
    return _train_linear_regression(run, cell)


def _status(diverged: np.ndarray) -> np.ndarray:
    from phaselab.vocabulary import STATUS_DIVERGED, STATUS_OK

    return np.where(diverged >= 0, STATUS_DIVERGED, STATUS_OK).astype(str)


def _train_mlp(run: Run, cell: MlpCell, arrays: dict):
    """SGD with batch B for every (η, seed) member; final sharpness, ε-sharpness and errors."""
    from functools import partial

    import torch
    import xarray as xr
    from torch.func import vmap

    from phaselab import curvature, data
    from phaselab.engines.ensemble import MLPSpec, train_ensemble
    from phaselab.models import deep_mlp

    exp, device = run.exp, run.device
    mlp = exp["mlp"]
    B, S, lrs = cell.batch_size, exp["seeds"], sorted(mlp["lr"])
    x, y, x_test, y_test = (torch.as_tensor(arrays[k], dtype=run.dtype, device=device)
                            for k in ("x_train", "y_train", "x_test", "y_test"))
    sizes = [x.shape[1], *mlp["widths"], y.shape[1]]
    member_seed = torch.arange(S, device=device).repeat(len(lrs))  # member m = (lr index m // S, seed m % S)
    init_seeds = [data.derive_seed(run.seed, data.MLP_INIT, s) for s in member_seed.tolist()]
    params = {k: v.to(device) for k, v in deep_mlp.init_mlp(sizes, init_seeds, mlp["activation"],
                                                             mlp["output_scale"], dtype=run.dtype).items()}
    lr = torch.tensor(np.repeat(lrs, S), dtype=run.dtype, device=device)
    loss = partial(deep_mlp.squared_loss, activation=mlp["activation"])
    outputs = vmap(partial(deep_mlp.forward, activation=mlp["activation"]), in_dims=(0, None))
    gen = torch.Generator().manual_seed(data.derive_seed(run.seed, data.MINIBATCHES, 1, B))

    def batches(step):
        idx = torch.randint(0, len(x), (S, B), generator=gen).to(device)[member_seed]  # with replacement
        return x[idx], y[idx]

    def evaluate(p):
        return {"train_loss": vmap(loss, in_dims=(0, None))(p, (x, y)),
                "train_error": (outputs(p, x).argmax(-1) != y.argmax(-1)).double().mean(-1),
                "test_error": (outputs(p, x_test).argmax(-1) != y_test.argmax(-1)).double().mean(-1)}

    run.log(f"MLP {sizes}, SGD with B = {B}, η ∈ {lrs}, {S} seeds, {mlp['steps']} steps")
    result = train_ensemble(params, loss, batches, lr, [0, mlp["steps"]], evaluate, batch_in_dims=0,
                            divergence_threshold=mlp["divergence_threshold"], log=run.log_file,
                            model=MLPSpec(mlp["activation"], "squared"))
    ok = result.diverged_step < 0
    lam = curvature.top_eigenvalue(loss, result.params, (x, y), iters=mlp["lanczos_iters"], seed=B).cpu().numpy()
    eps, eps_first = (v.cpu().numpy() for v in curvature.epsilon_sharpness(
        loss, result.params, (x, y), epsilon=mlp["epsilon"], steps=mlp["ascent_steps"]))
    run.log(f"done in {result.seconds:.1f}s, {int((~ok).sum())} diverged")

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
            **{k: (dims, grid(result.metrics[k][:, -1]),
                   {"long_name": f"{k.replace('_', ' ')} at the end", "units": "1"})
               for k in ("train_loss", "train_error", "test_error")},
            "status": (dims, _status(result.diverged_step).reshape(len(lrs), S),
                       {"long_name": "member status (ok / diverged)"}),
        },
        coords={"lr": np.asarray(lrs, dtype=float), "seed": np.arange(S)},
        attrs={"train_seconds": result.seconds},
    )
    return ds.expand_dims(batch_size=[B])


def _train_linear_regression(run: Run, cell: LinregCell):
    """SGD with fresh samples for every (η/B, seed) member; the time-averaged stationary excess loss."""
    import torch
    import xarray as xr

    from phaselab import data
    from phaselab.engines.ensemble import train_ensemble

    exp, device = run.exp, run.device
    lin = exp["linear_regression"]
    B, S, d, ratios = cell.batch_size, exp["seeds"], lin["d"], sorted(lin["eta_over_batch"])
    sigma = math.sqrt(lin["noise_variance"])
    teacher = torch.as_tensor(np.stack([data.rng(run.seed, data.REGRESSION_TEACHER, d, s).standard_normal(d)
                                        for s in range(S)]), dtype=run.dtype, device=device)
    w_star = teacher.repeat(len(ratios), 1)  # member m = (ratio index m // S, seed m % S)
    M = len(w_star)
    lr = torch.tensor(np.repeat(ratios, S) * B, dtype=run.dtype, device=device)
    gen = torch.Generator().manual_seed(data.derive_seed(run.seed, data.MINIBATCHES, 2, d, B))

    def loss(p, batch):
        x, y = batch
        return 0.5 * ((y - x @ p["w"]) ** 2).mean()

    def batches(step):
        x = torch.randn(M, B, d, generator=gen, dtype=run.dtype).to(device)
        noise = torch.randn(M, B, generator=gen, dtype=run.dtype).to(device)
        return x, torch.einsum("mbd,md->mb", x, w_star) + sigma * noise

    steps = cell.steps
    checkpoints = sorted({round(i * steps / lin["checkpoints"]) for i in range(lin["checkpoints"] + 1)})
    run.log(f"linear regression d = {d}, B = {B}, η/B ∈ {ratios}, {S} seeds, {steps} steps")
    result = train_ensemble({"w": torch.zeros(M, d, dtype=run.dtype, device=device)}, loss, batches, lr,
                            checkpoints, lambda p: {"excess_loss": 0.5 * ((p["w"] - w_star) ** 2).sum(1)},
                            batch_in_dims=0, log=run.log_file)
    stationary = np.asarray(checkpoints) >= lin["burn_in"] * steps
    excess = result.metrics["excess_loss"][:, stationary].mean(1).reshape(len(ratios), S)
    dims = ("eta_over_batch", "seed")
    ds = xr.Dataset(
        {
            "excess_loss": (dims, excess, {"long_name": "stationary excess loss E[L − L*] (time average after "
                                                        "burn-in)", "units": "1"}),
            "linreg_status": (dims, _status(result.diverged_step).reshape(len(ratios), S),
                              {"long_name": "member status (ok / diverged)"}),
            "linreg_steps": ((), steps, {"long_name": "SGD steps of the cell", "units": "steps"}),
        },
        coords={"eta_over_batch": np.asarray(ratios, dtype=float), "seed": np.arange(S)},
        attrs={"train_seconds": result.seconds},
    )
    return ds.expand_dims(linreg_batch_size=[B])


def collect(run: Run, cells: list):
    """One Dataset: the MLP part (batch_size, lr, seed), the linear-regression part (linreg_batch_size,
    eta_over_batch, seed), with η/B of the MLP and η of linear regression."""
    import xarray as xr

    exp = run.exp
    ds = xr.merge(cells, join="outer", compat="no_conflicts", combine_attrs="override")
    ds["linreg_steps"] = ds["linreg_steps"].astype(int)
    for status in ("status", "linreg_status"):
        ds[status] = ds[status].astype(str)
    ds["lr_linreg"] = (ds["eta_over_batch"] * ds["linreg_batch_size"]).assign_attrs(
        long_name="linear-regression learning rate η = (η/B)·B", units="1")
    ds["eta_over_b"] = (ds["lr"] / ds["batch_size"]).assign_attrs(long_name="MLP noise scale η/B", units="1")
    mlp, lin = exp["mlp"], exp["linear_regression"]
    ds.attrs = {
        "widths": str(mlp["widths"]),
        "activation": mlp["activation"],
        "n_train": mlp["n_train"],
        "mlp_steps": mlp["steps"],
        "epsilon": mlp["epsilon"],
        "linreg_d": lin["d"],
        "linreg_noise_variance": lin["noise_variance"],
    }
    return ds


def theory(run: Run, metrics):
    """Exact and small-η stationary excess loss of linear regression; the GD stability threshold 2/η of the MLP."""
    import xarray as xr

    from phaselab.theory.sgd_noise import excess_loss, excess_loss_small_eta

    lin = run.exp["linear_regression"]
    B, r = metrics["linreg_batch_size"], metrics["eta_over_batch"]
    exact = xr.apply_ufunc(excess_loss, r * B, B, lin["d"], lin["noise_variance"])
    return xr.Dataset({
        "excess_loss": exact.transpose("linreg_batch_size", "eta_over_batch").assign_attrs(
            long_name="exact stationary excess loss d η σ² / (2B(2 − η − η(d+1)/B))", units="1"),
        "excess_loss_small_eta": xr.apply_ufunc(excess_loss_small_eta, r, lin["d"], lin["noise_variance"]).assign_attrs(
            long_name="small-η excess loss η d σ² / (4B), a function of η/B only", units="1"),
        "stability_threshold": (2.0 / metrics["lr"]).assign_attrs(long_name="2/η, GD stability threshold", units="1"),
    }, attrs={"references": "shared/reference/theory.md sections 5 and 6"})


# Relative: the simulation follows the exact formula within 8 % (tests/test_sharpness.py,
# test_eta_over_b_formula_against_sgd_simulation: 8 seeds, 60 time units, 20 % burn-in).
EXCESS_LOSS_TOLERANCE = 0.08


def claims(metrics, theory) -> list[Claim]:
    """Seed-mean stationary excess loss of SGD on linear regression against the exact η/B formula: the largest
    relative deviation over the (B, η/B) grid, ± the standard error of the seed mean there (relative to the formula).
    The MLP sharpness has no closed form."""
    loss = metrics["excess_loss"].where(metrics["linreg_status"] == "ok")
    exact = theory["excess_loss"]
    rel = abs(loss.mean("seed") - exact) / exact
    sem = loss.std("seed", ddof=1) / np.sqrt(loss.count("seed")) / exact
    n = int(rel.notnull().sum())
    measured, uncertainty = largest(rel, sem)
    return [judge(
        "stationary excess loss of SGD on linear regression follows the exact η/B formula "
        "d η σ² / (2B(2 − η − η(d+1)/B)) (largest relative deviation of the seed mean)",
        "exact stationary state of SGD on isotropic linear regression (phaselab.theory.sgd_noise); "
        "Jastrzębski et al. 2017", theory=0.0, measured=measured,
        uncertainty=uncertainty, tolerance=EXCESS_LOSS_TOLERANCE,
        where=f"linear-regression excess loss at {n} (B, η/B) points "
              "(the MLP sharpness has no closed form); per point: "
              + ", ".join(f"B={int(b)}, η/B={float(r):g}: {float(rel.sel(linreg_batch_size=b, eta_over_batch=r)):.3g}"
                          for b in rel["linreg_batch_size"].values for r in rel["eta_over_batch"].values))]
