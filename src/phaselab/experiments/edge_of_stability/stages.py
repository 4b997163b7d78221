"""The edge-of-stability stages: a digits subset, full-batch GD of every learning rate per seed with the sharpness
(Lanczos) at every checkpoint, and the stability threshold 2/η."""

from __future__ import annotations

import numpy as np

from phaselab.experiment import Claim, Run, judge, largest
from phaselab.experiments.edge_of_stability import SeedCell, checkpoints

VARIABLES = {
    "loss": {"long_name": "training loss ½‖f − y‖² (mean over the training set)", "units": "1"},
    "sharpness": {"long_name": "sharpness λ_max of the training-loss Hessian (Lanczos)", "units": "1"},
    "train_error": {"long_name": "training classification error", "units": "1"},
    "test_error": {"long_name": "test classification error", "units": "1"},
}


def make_data(run: Run, data_id: str) -> dict[str, np.ndarray]:
    """A random subset of the digits (data id 'digits'): train and test arrays."""
    from phaselab import data

    return data.digits_subset(run.exp["data"]["n_train"], data.rng(run.seed, data.DIGITS_SUBSET))


def train(run: Run, cell: SeedCell, arrays: dict):
    """Full-batch GD of every learning rate from one seed's initialisation; sharpness at every checkpoint."""
    from functools import partial

    import torch
    from torch.func import vmap

    from phaselab import curvature, data
    from phaselab.engines.ensemble import MLPSpec, train_ensemble
    from phaselab.models import deep_mlp

    exp, device = run.exp, run.device
    model, train = exp["model"], exp["train"]
    lrs = sorted(exp["grid"]["lr"])
    x, y = (torch.as_tensor(arrays[k], dtype=run.dtype, device=device) for k in ("x_train", "y_train"))
    x_test, y_test = (torch.as_tensor(arrays[k], dtype=run.dtype, device=device) for k in ("x_test", "y_test"))
    sizes = [x.shape[1], *model["widths"], y.shape[1]]
    init_seed = data.derive_seed(run.seed, data.MLP_INIT, cell.seed)
    params = {k: v.to(device) for k, v in deep_mlp.init_mlp(sizes, [init_seed] * len(lrs), model["activation"],
                                                             model["output_scale"], dtype=run.dtype).items()}
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
    run.log(f"MLP {sizes} ({model['activation']}), n = {len(x)}, learning rates {lrs}, "
            f"{steps[-1]} full-batch GD steps")
    result = train_ensemble(params, loss, lambda step: (x, y), torch.tensor(lrs, dtype=run.dtype, device=device),
                            steps, evaluate, batch_in_dims=None, divergence_threshold=train["divergence_threshold"],
                            log=run.log_file, model=MLPSpec(model["activation"], "squared"))
    run.log(f"done in {result.seconds:.1f}s, {int((result.diverged_step >= 0).sum())} diverged")
    return cell_dataset(cell.seed, lrs, steps, result, {"train_seconds": result.seconds})


def cell_dataset(seed: int, lrs, steps, result, attrs: dict):
    import xarray as xr

    from phaselab.vocabulary import STATUS_DIVERGED, STATUS_OK

    diverged = result.diverged_step
    ds = xr.Dataset(
        {name: (("lr", "step"), result.metrics[name], a) for name, a in VARIABLES.items()}
        | {
            "status": ("lr", np.where(diverged >= 0, STATUS_DIVERGED, STATUS_OK).astype(str),
                       {"long_name": "member status (ok / diverged)"}),
            "diverged_at": ("lr", np.where(diverged >= 0, diverged, np.nan).astype(float),
                            {"long_name": "checkpoint at which the member was found diverged", "units": "steps"}),
        },
        coords={"lr": np.asarray(lrs, dtype=float), "step": np.asarray(steps)},
        attrs=attrs,
    )
    return ds.expand_dims(seed=[seed]).transpose("lr", "seed", ...)


def collect(run: Run, cells: list):
    """One Dataset (dims lr, seed, step) with the model and data attributes."""
    import xarray as xr

    exp = run.exp
    ds = xr.merge(cells, join="outer", compat="no_conflicts", combine_attrs="override").transpose("lr", "seed", "step")
    ds["status"] = ds["status"].astype(str)
    ds.attrs = {
        "widths": str(exp["model"]["widths"]),
        "activation": exp["model"]["activation"],
        "n_train": exp["data"]["n_train"],
    }
    return ds


def theory(run: Run, metrics):
    """The stability threshold 2/η of gradient descent on a quadratic, per learning rate."""
    import xarray as xr

    return xr.Dataset(
        {"stability_threshold": (2.0 / metrics["lr"]).assign_attrs(
            long_name="2/η: GD on a quadratic is stable iff λ_max < 2/η", units="1")},
        attrs={"references": "Cohen et al. 2021; shared/reference/theory.md section 6"},
    )


# Relative: the edge is the band 0.9 · 2/η ≤ λ_max, the same 10 % within which a learning rate counts as having
# reached 2/η (Cohen et al. 2021: the sharpness "hovers just above 2/η", oscillating about it, not pinned to it).
EDGE_TOLERANCE = 0.1


def claims(metrics, theory) -> list[Claim]:
    """Seed-mean sharpness over the second half of the run against 2/η, for the learning rates whose sharpness
    reached 0.9 · 2/η (those at the edge of stability): the largest relative deviation, ± the standard error of
    the seed mean there (relative to 2/η)."""
    ok = metrics["status"] == "ok"
    sharp = metrics["sharpness"].where(ok)
    second_half = sharp.sel(step=metrics["step"] >= metrics["step"].max() / 2)
    late = second_half.mean(("seed", "step"))
    per_seed = second_half.mean("step")
    threshold = theory["stability_threshold"]
    at_edge = sharp.max(("seed", "step")) >= 0.9 * threshold
    rel = (abs(late - threshold) / threshold).where(at_edge)
    sem = per_seed.std("seed", ddof=1) / np.sqrt(per_seed.count("seed")) / threshold
    n = int(rel.notnull().sum())
    measured, uncertainty = largest(rel, sem)
    return [judge(
        "sharpness of full-batch GD hovers at the stability threshold 2/η once it reaches it "
        "(largest relative deviation of the second-half seed-mean sharpness)",
        "Cohen, Kaur, Li, Kolter & Talwalkar, ICLR 2021", theory=0.0, measured=measured, uncertainty=uncertainty,
        tolerance=EDGE_TOLERANCE,
        where=f"second-half mean sharpness vs 2/η at the {n} learning rates that reached the edge: "
              + ", ".join(f"η={float(lr):g}: {float(v):.3g}" for lr, v in zip(rel["lr"], rel) if v.notnull()))]
