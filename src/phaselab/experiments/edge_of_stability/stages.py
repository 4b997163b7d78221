"""The edge-of-stability stages: a digits subset, full-batch GD of every learning rate per seed with the sharpness
(Lanczos) at every checkpoint, and the stability threshold 2/η."""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from phaselab.experiment import Claim, Run, exceeds, judge, largest, seed_interval
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
# The hovering band of η λ_max / 2, fixed a priori: [1 − 0.1, 1 + 0.1] about the edge, the same 10 % as the arrival
# rule; judged on the median over the second half of training of each seed (robust to the spikes of the
# catapult-like excursions above 2/η), seed mean ± the 95 % Student-t half-width over seeds.
HOVER_TOLERANCE = 0.1
# "Rises" is a sign: the relative rise 1 − λ_max(0)/λ_max(t*) > 0 (phaselab.experiment.exceeds), with the 95 %
# Student-t half-width of the seed mean as the uncertainty: agrees when the whole interval is above 0.
SOURCE = "Cohen, Kaur, Li, Kolter & Talwalkar, ICLR 2021"


def edge_arrival(metrics, theory):
    """η λ_max / 2 (dims lr, seed, step; NaN for diverged members) and the first checkpoint at which it reaches
    1 − EDGE_TOLERANCE, per (η, seed) (NaN where it never does)."""
    ratio = (metrics["sharpness"] / theory["stability_threshold"]).where(metrics["status"] == "ok")
    ratio = ratio.transpose("lr", "seed", "step")
    at_edge = (ratio >= 1 - EDGE_TOLERANCE).values
    steps = metrics["step"].values.astype(float)
    first = np.where(at_edge.any(-1), steps[np.argmax(at_edge, axis=-1)], np.nan)
    return ratio, first


def claims(metrics, theory) -> list[Claim]:
    """Cohen et al.'s two statements. (1) Hovering: seed-mean sharpness over the second half of the run against
    2/η, for the learning rates whose sharpness reached 0.9 · 2/η: the largest relative deviation, ± the standard
    error of the seed mean there (relative to 2/η); and, per learning rate, the second-half median of η λ_max / 2
    in the band 1 ± HOVER_TOLERANCE — judged where every seed reached the edge in the first half of training,
    inconclusive (with the reason) where one did not. (2) Progressive sharpening: the sharpness rises from its
    initial value until it reaches the edge (or to the end of the run where it never does), at every η."""
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
    ratio, first = edge_arrival(metrics, theory)
    steps = metrics["step"].values
    half = steps.max() / 2
    late_arrivals = [f"η = {float(lr):g} (step {int(np.nanmax(a))})" for lr, a, e in zip(rel["lr"].values, first,
                                                                                       at_edge.values)
                     if e and np.isfinite(a).any() and np.nanmax(a) > half]
    out = [judge(
        "sharpness of full-batch GD hovers at the stability threshold 2/η once it reaches it "
        "(largest relative deviation of the second-half seed-mean sharpness)",
        SOURCE, theory=0.0, measured=measured, uncertainty=uncertainty,
        tolerance=EDGE_TOLERANCE,
        note="" if not late_arrivals else
        f"reached the edge only after the half-way step {half:g} (latest arrival): {', '.join(late_arrivals)}, so the "
        "second-half mean includes the approach to the edge",
        where=f"second-half mean sharpness vs 2/η at the {n} learning rates that reached the edge: "
              + ", ".join(f"η={float(lr):g}: {float(v):.3g}" for lr, v in zip(rel["lr"], rel) if v.notnull()))]

    medians = ratio.sel(step=steps >= half).median("step").values  # (lr, seed)
    for i, lr in enumerate(ratio["lr"].values):
        alive = ok.sel(lr=lr).values
        arrived = first[i][alive]
        m, u, note = None, None, ""
        if not alive.any():
            note = "every seed diverged at this learning rate"
        elif np.isnan(arrived).any():
            note = (f"{int(np.isnan(arrived).sum())} of {arrived.size} seeds never reached the edge "
                    f"{1 - EDGE_TOLERANCE:g} · 2/η in {int(steps.max())} steps (largest η λ_max / 2: "
                    f"{float(np.nanmax(ratio.values[i][alive])):.3g}): the run ends, or the loss converges, before "
                    f"progressive sharpening brings the sharpness to 2/η")
        elif arrived.max() > half:
            note = (f"the last seed reached the edge only at step {int(arrived.max())}, after the half-way step "
                    f"{half:g}: too little of the run at the edge to judge the hovering")
        else:
            m, u, k = seed_interval(medians[i][alive])
            if k < 2:
                note = "one seed: no confidence interval for the seed mean"
        out.append(judge(
            f"at η = {lr:g} the sharpness hovers at 2/η = {2 / lr:.3g}: the median of η λ_max / 2 over the second "
            f"half of training lies in 1 ± {HOVER_TOLERANCE:g} (seed mean ± 95 % Student-t half-width)",
            SOURCE, theory=1.0, measured=m, uncertainty=u, tolerance=HOVER_TOLERANCE, note=note,
            where=f"η = {lr:g}, steps ≥ {half:g}; first arrival at {1 - EDGE_TOLERANCE:g} · 2/η per seed: "
                  + ", ".join("never" if np.isnan(a) else f"step {int(a)}" for a in first[i])))

    initial = ratio.isel(step=0).values  # (lr, seed)
    last = np.where(np.isnan(first), steps.max(), first)  # t*: arrival at the edge, else the end of the run
    at_t = np.take_along_axis(ratio.values, np.searchsorted(steps, last)[..., None], axis=-1)[..., 0]
    rise = 1.0 - initial / at_t  # (lr, seed)
    # a seed already at the edge at step 0 has no rise to observe (t* = 0): left out, and said so
    starts_at_edge = first == steps[0]
    rise = np.where(starts_at_edge, np.nan, rise)
    means, halves, _ = np.array([seed_interval(r) for r in rise]).reshape(-1, 3).T
    weakest = int(np.nanargmin(means - halves)) if np.isfinite(means - halves).any() else None
    left_out = [f"η = {lr:g} ({int(n)} of {len(row)} seeds)" for lr, row, n in
                zip(ratio["lr"].values, starts_at_edge, starts_at_edge.sum(-1)) if n]
    left_out_note = ("" if not left_out else "left out, already at the edge 0.9 · 2/η at step 0 (nothing to "
                     "sharpen): " + ", ".join(left_out))
    sharpening = exceeds(
        "progressive sharpening: at every η the sharpness rises from initialisation until it reaches 2/η (or to "
        "the end of the run where it never does): the relative rise 1 − λ_max(0)/λ_max(t*) > 0 (seed mean ± 95 % "
        "Student-t half-width); the η with the lowest lower 95 % bound", SOURCE,
        measured=None if weakest is None else float(means[weakest]),
        uncertainty=None if weakest is None else float(halves[weakest]),
        note="" if weakest is not None and np.isfinite(halves[weakest]) else
        "fewer than two finite seeds at some η: no confidence interval",
        where="relative rise (seed mean ± 95 % half-width): " + ", ".join(
            f"η={lr:g}: {m:.3g} ± {h:.2g}" if np.isfinite(m) else f"η={lr:g}: left out"
            for lr, m, h in zip(ratio["lr"].values, means, halves)))
    if left_out_note:
        sharpening = replace(sharpening, note=f"{sharpening.note}; {left_out_note}")
    out.append(sharpening)
    return out
