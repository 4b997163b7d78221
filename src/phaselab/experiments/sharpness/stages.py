"""The sharpness stages: a digits subset, SGD on the MLP per batch size (final sharpness, ε-sharpness, errors),
SGD on linear regression per batch size (stationary excess loss), and the exact η/B law beside them."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np

from phaselab.experiment import AGREES, DISAGREES, INCONCLUSIVE, Claim, Run, exceeds, judge, largest, seed_interval
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
    """SGD with batch B for every (η, seed) member until its full training loss reaches the target (Keskar et al.'s
    protocol: small and large batches compared at a comparable training loss); then λ_max, ε-sharpness and errors.

    The members train together in segments of ``check_every`` steps; after each segment a member whose full training
    loss is at or below ``target_loss`` stops there (its step recorded) and leaves the ensemble, so that every member
    costs only its own steps. Every member draws the minibatch indices of its seed at every step, as in one long
    run; members of one seed share init and minibatch indices across η."""
    from functools import partial

    import torch
    import xarray as xr
    from torch.func import vmap

    from phaselab import curvature, data
    from phaselab.engines.ensemble import MLPSpec, train_ensemble
    from phaselab.models import deep_mlp

    exp, device = run.exp, run.device
    mlp = exp["mlp"]
    B, S, lrs = cell.batch_size, mlp.get("seeds", exp["seeds"]), sorted(mlp["lr"])
    target, every, max_steps = mlp["target_loss"], mlp["check_every"], mlp["max_steps"]
    x, y, x_test, y_test = (torch.as_tensor(arrays[k], dtype=run.dtype, device=device)
                            for k in ("x_train", "y_train", "x_test", "y_test"))
    sizes = [x.shape[1], *mlp["widths"], y.shape[1]]
    member_seed = torch.arange(S, device=device).repeat(len(lrs))  # member m = (lr index m // S, seed m % S)
    M = len(member_seed)
    init_seeds = [data.derive_seed(run.seed, data.MLP_INIT, s) for s in member_seed.tolist()]
    params = {k: v.to(device) for k, v in deep_mlp.init_mlp(sizes, init_seeds, mlp["activation"],
                                                             mlp["output_scale"], dtype=run.dtype).items()}
    lr = torch.tensor(np.repeat(lrs, S), dtype=run.dtype, device=device)
    loss = partial(deep_mlp.squared_loss, activation=mlp["activation"])
    full_loss = vmap(loss, in_dims=(0, None))
    outputs = vmap(partial(deep_mlp.forward, activation=mlp["activation"]), in_dims=(0, None))
    gen = torch.Generator().manual_seed(data.derive_seed(run.seed, data.MINIBATCHES, 1, B))
    spec = MLPSpec(mlp["activation"], "squared")

    run.log(f"MLP {sizes}, SGD with B = {B}, η ∈ {lrs}, {S} seeds, until the training loss ≤ {target:g} "
            f"(checked every {every} steps, at most {max_steps})")
    stopped = np.full(M, max_steps, dtype=np.int64)  # the step where each member stopped
    reached = np.zeros(M, dtype=bool)
    diverged = np.full(M, -1, dtype=np.int64)
    active, step, seconds, logged = np.arange(M), 0, 0.0, 0
    while active.size and step < max_steps:
        seg = min(every, max_steps - step)
        ia = torch.as_tensor(active, device=device)
        seeds_active = member_seed[ia]

        def batches(_, seeds_active=seeds_active):
            idx = torch.randint(0, len(x), (S, B), generator=gen).to(device)[seeds_active]  # with replacement
            return x[idx], y[idx]

        sub = {k: v[ia] for k, v in params.items()}
        result = train_ensemble(sub, loss, batches, lr[ia], [seg], lambda p: {"train_loss": full_loss(p, (x, y))},
                                batch_in_dims=0, divergence_threshold=mlp["divergence_threshold"], model=spec)
        step, seconds = step + seg, seconds + result.seconds
        for k in params:
            params[k][ia] = result.params[k]
        bad = result.diverged_step >= 0
        done = ~bad & (result.metrics["train_loss"][:, -1] <= target)
        diverged[active[bad]] = step
        stopped[active[bad | done]] = step
        reached[active[done]] = True
        active = active[~bad & ~done]
        if step >= logged + max(max_steps // 10, every) or not active.size:
            logged = step
            run.log(f"step {step}: {int(reached.sum())} of {M} members at the target, {int((diverged >= 0).sum())} "
                    f"diverged, {seconds:.1f}s")
    ok = diverged < 0
    with torch.no_grad():
        final = {"train_loss": full_loss(params, (x, y)), "test_loss": full_loss(params, (x_test, y_test)),
                 "train_error": (outputs(params, x).argmax(-1) != y.argmax(-1)).double().mean(-1),
                 "test_error": (outputs(params, x_test).argmax(-1) != y_test.argmax(-1)).double().mean(-1)}
    lam = curvature.top_eigenvalue(loss, params, (x, y), iters=mlp["lanczos_iters"], seed=B).cpu().numpy()
    eps, eps_first = (v.cpu().numpy() for v in curvature.epsilon_sharpness(
        loss, params, (x, y), epsilon=mlp["epsilon"], steps=mlp["ascent_steps"]))
    run.log(f"done in {seconds:.1f}s of SGD: {int(reached.sum())} members at the target, {int((~ok).sum())} "
            f"diverged, {int((ok & ~reached).sum())} stopped at max_steps")

    def grid(values, fill=np.nan):
        return np.where(ok, values, fill).reshape(len(lrs), S)

    dims = ("lr", "seed")
    ds = xr.Dataset(
        {
            "sharpness": (dims, grid(lam), {"long_name": "sharpness λ_max of the training-loss Hessian at the stop",
                                            "units": "1"}),
            "eps_sharpness": (dims, grid(eps), {"long_name": f"Keskar ε-sharpness (ε = {mlp['epsilon']:g})",
                                                "units": "percent"}),
            "eps_sharpness_first_order": (dims, grid(eps_first), {
                "long_name": "first-order part of the ε-sharpness, 100 ε Σ|∂f|(|x|+1)/(1+f)", "units": "percent"}),
            **{k: (dims, grid(v.double().cpu().numpy()), {"long_name": f"{k.replace('_', ' ')} at the stop",
                                                           "units": "1"})
               for k, v in final.items()},
            "steps": (dims, stopped.reshape(len(lrs), S), {
                "long_name": "SGD steps to the training-loss target (max_steps where not reached)", "units": "steps"}),
            "reached_target": (dims, (reached & ok).reshape(len(lrs), S), {
                "long_name": "training loss reached the target", "units": "1"}),
            "status": (dims, _status(diverged).reshape(len(lrs), S), {"long_name": "member status (ok / diverged)"}),
        },
        coords={"lr": np.asarray(lrs, dtype=float), "seed": np.arange(S)},
        attrs={"train_seconds": seconds},
    )
    ds["generalisation_gap"] = (ds["test_error"] - ds["train_error"]).assign_attrs(
        long_name="generalisation gap: test error − training error at the stop", units="1")
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
    for status in ("status", "linreg_status"):  # the parts may have different seed counts: "absent" pads
        attrs = ds[status].attrs
        ds[status] = ds[status].fillna("absent").astype(str).assign_attrs(
            attrs, long_name="member status (ok / diverged; absent: no such seed in this part)")
    ds["lr_linreg"] = (ds["eta_over_batch"] * ds["linreg_batch_size"]).assign_attrs(
        long_name="linear-regression learning rate η = (η/B)·B", units="1")
    ds["eta_over_b"] = (ds["lr"] / ds["batch_size"]).assign_attrs(long_name="MLP noise scale η/B", units="1")
    mlp, lin = exp["mlp"], exp["linear_regression"]
    ds.attrs = {
        "widths": str(mlp["widths"]),
        "activation": mlp["activation"],
        "n_train": mlp["n_train"],
        "target_loss": mlp["target_loss"],
        "max_steps": mlp["max_steps"],
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


# Tolerances, fixed before any result was seen.
# Relative: the simulation follows the exact formula within 8 % (tests/test_sharpness.py,
# test_eta_over_b_formula_against_sgd_simulation: 8 seeds, 60 time units, 20 % burn-in).
EXCESS_LOSS_TOLERANCE = 0.08
# Keskar et al.'s statements are signs ("large batch → sharper, larger test error"): the paired (same seed, hence
# same init) difference large − small batch, seed mean ± its 95 % Student-t half-width as the uncertainty: a claim
# "X > 0" (phaselab.experiment.exceeds) agrees when the whole interval is above 0, disagrees when it is all below 0,
# else is inconclusive. Sharpness values differ in scale, so their difference is normalised per seed,
# (L − S)/(L + S) ∈ (−1, 1); error differences and differences of generalisation gaps are taken as they are.
KESKAR_QUANTITIES = ("sharpness", "eps_sharpness", "test_error", "generalisation_gap")
# Jastrzębski et al.'s statement is an equality ("equal η/B → equal sharpness and test error"): the paired
# difference between the smallest and largest B at one η/B, judged against 0 with tolerance twice its 95 %
# half-width h: agrees when 0 lies in the 95 % interval, disagrees when the difference is more than 3 h from 0.
EQUAL_HALF_WIDTHS = 2.0
NORMALISED = ("sharpness", "eps_sharpness")
KESKAR = "Keskar, Mudigere, Nocedal, Smelyanskiy & Tang, ICLR 2017"
JASTRZEBSKI = "Jastrzębski, Kenton, Arpit, Ballas, Fischer, Bengio & Storkey 2017 (arXiv:1711.04623)"
WORDS = {"sharpness": "sharpness λ_max", "eps_sharpness": "ε-sharpness", "test_error": "test error",
         "generalisation_gap": "generalisation gap (test − training error)"}


def paired_difference(large, small, normalise: bool = False) -> tuple[float | None, float | None, int]:
    """Seed mean of large − small (or of (large − small)/(large + small) with ``normalise``) over the seeds where both
    are finite, its 95 % Student-t half-width, and the number of pairs; (None, None, n) with fewer than 2 pairs."""
    large, small = np.asarray(large, dtype=float), np.asarray(small, dtype=float)
    both = np.isfinite(large) & np.isfinite(small)
    d = large[both] - small[both]
    if normalise:
        d = d / (large[both] + small[both])
    mean, half, n = seed_interval(d)
    return (None, None, n) if n < 2 else (mean, half, n)


def _fmt(v) -> str:
    return "—" if v is None else f"{v:.3g}"


def _sign_note(verdict: str, n: int, mean, half, side: str) -> str:
    if verdict == AGREES:
        return f"the whole 95 % interval of the difference, {_fmt(mean)} ± {_fmt(half)} ({n} seed pairs), is above 0"
    if mean is None:
        return f"fewer than 2 seed pairs reached the training-loss target at both batch sizes ({n})"
    if verdict == DISAGREES:
        return (f"the opposite sign: the {side} is the larger at the small batch in all of the 95 % interval "
                f"({_fmt(mean)} ± {_fmt(half)}, {n} seed pairs)")
    return f"{n} seed pairs: the 95 % interval of the difference, {_fmt(mean)} ± {_fmt(half)}, contains 0"


def _keskar(ok, lr: float, name: str) -> Claim:
    b = ok["batch_size"].values
    small, large = ok[name].sel(lr=lr, batch_size=b.min()), ok[name].sel(lr=lr, batch_size=b.max())
    mean, half, n = paired_difference(large.values, small.values, normalise=name in NORMALISED)
    what = (f"({WORDS[name]}_L − {WORDS[name]}_S)/(sum), per seed" if name in NORMALISED
            else f"{WORDS[name]}_L − {WORDS[name]}_S")
    effect = "a sharper minimum" if name in NORMALISED else f"a larger {WORDS[name]}"
    steps_s, steps_l = (float(ok["steps"].sel(lr=lr, batch_size=bb).mean()) for bb in (b.min(), b.max()))
    claim = exceeds(
        f"Keskar: at equal η, the large batch B = {int(b.max())} reaches {effect} than the small batch "
        f"B = {int(b.min())} at the same training loss: {what} > 0 (seed mean ± 95 % Student-t half-width over "
        "seed pairs)", KESKAR, measured=mean, uncertainty=half,
        where=f"η = {lr:g}, {n} seed pairs (same init): {WORDS[name]} {_fmt(float(small.mean()))} (B = "
              f"{int(b.min())}) vs {_fmt(float(large.mean()))} (B = {int(b.max())}); steps to the target "
              f"{_fmt(steps_s)} vs {_fmt(steps_l)}",
        figure="sharpness_vs_batch")
    note = _sign_note(claim.verdict, n, mean, half, WORDS[name])
    if name == "eps_sharpness" and claim.verdict != AGREES and mean is not None:
        first = ok["eps_sharpness_first_order"].sel(lr=lr)
        rest = ok["eps_sharpness"].sel(lr=lr) - first
        f_s, f_l, r_s, r_l = (float(v.sel(batch_size=bb).mean()) for v in (first, rest) for bb in (b.min(), b.max()))
        note += (f"; its first-order (gradient) part is {_fmt(f_s)} (B = {int(b.min())}) against {_fmt(f_l)} "
                 f"(B = {int(b.max())}): the runs stop off the minimum, and the rest, the curvature part, is "
                 f"{_fmt(r_s)} against {_fmt(r_l)}")
    return replace(claim, note=note) if note else claim


def equal_eta_over_b_pairs(batch_sizes, lrs) -> list[tuple[tuple[int, float], tuple[int, float]]]:
    """The (B, η) pairs of the grid at equal η/B: for each η/B met at two or more batch sizes, the smallest-B point
    and the largest-B point."""
    points = [(int(b), float(lr)) for b in batch_sizes for lr in lrs]
    out = []
    for ratio in sorted({lr / b for b, lr in points}):
        on = sorted(p for p in points if math.isclose(p[1] / p[0], ratio, rel_tol=1e-9))
        if len(on) > 1 and (on[0], on[-1]) not in out:
            out.append((on[0], on[-1]))
    return out


def _eta_over_b(ok, name: str) -> Claim:
    """The equal-η/B pair with the largest |difference| in units of its half-width (the most discrepant)."""
    rows = []
    for (bs, lrs_), (bl, lrl) in equal_eta_over_b_pairs(ok["batch_size"].values, ok["lr"].values):
        small, large = ok[name].sel(batch_size=bs, lr=lrs_).values, ok[name].sel(batch_size=bl, lr=lrl).values
        mean, half, n = paired_difference(large, small, normalise=name in NORMALISED)
        z = abs(mean) / half if mean is not None and half > 0 else (np.inf if mean else 0.0) if mean is not None \
            else -1.0
        rows.append((z, mean, half, n, (bs, lrs_), (bl, lrl), float(np.nanmean(small)), float(np.nanmean(large))))
    what = (f"({WORDS[name]}_L − {WORDS[name]}_S)/(sum), per seed" if name in NORMALISED
            else f"{WORDS[name]}_L − {WORDS[name]}_S")
    text = (f"Jastrzębski: runs at equal η/B reach equal {WORDS[name]} across batch sizes at the same training loss: "
            f"{what} = 0 between the smallest and largest B at one η/B (tolerance {EQUAL_HALF_WIDTHS:g}× the 95 % "
            "Student-t half-width over seed pairs: agrees when 0 is in the 95 % interval, disagrees beyond 3 "
            "half-widths; the most discrepant η/B of the grid)")
    if not rows:
        return judge(text, JASTRZEBSKI, theory=None, measured=None, tolerance=0.0, figure="eta_over_b",
                     where="no two batch sizes of the grid share an η/B",
                     note="the grid has no equal-η/B pair: choose learning rates in the ratio of the batch sizes")
    z, mean, half, n, (bs, lrs_), (bl, lrl), ms, ml = max(rows, key=lambda r: r[0])
    claim = judge(text, JASTRZEBSKI, theory=0.0, measured=mean, uncertainty=half,
                  tolerance=EQUAL_HALF_WIDTHS * half if half is not None else 0.0, figure="eta_over_b",
                  where=f"η/B = {lrs_ / bs:.3g}: B = {bs}, η = {lrs_:g} vs B = {bl}, η = {lrl:g}, {n} seed pairs: "
                        f"{WORDS[name]} {_fmt(ms)} vs {_fmt(ml)}; {len(rows)} equal-η/B pair(s) in the grid")
    if claim.verdict == AGREES:
        return replace(claim, note=f"0 lies in the 95 % interval of the difference, {_fmt(mean)} ± {_fmt(half)} "
                                   f"({n} seed pairs, η/B = {lrs_ / bs:.3g})")
    if mean is None:
        note = _sign_note(INCONCLUSIVE, n, mean, half, WORDS[name])
    else:
        note = (f"at η/B = {lrs_ / bs:.3g} the {WORDS[name]} is {_fmt(ml)} at B = {bl} against {_fmt(ms)} at "
                f"B = {bs}, {_fmt(z)} half-widths apart over {n} seed pairs" +
                (": η/B alone does not fix it here" if claim.verdict == DISAGREES
                 else ": the 95 % interval excludes 0 but lies within 3 half-widths of it"))
    if name == "sharpness" and mean is not None:
        for bb, eta, value in ((bs, lrs_, ms), (bl, lrl, ml)):
            if value >= 0.95 * 2 / eta:
                note += (f"; the B = {bb} run sits at the stability limit 2/η = {2 / eta:.3g} of its η = {eta:g} "
                         "(edge of stability), a bound set by η, not by η/B")
    return replace(claim, note=note)


def claims(metrics, theory) -> list[Claim]:
    """The exact η/B law of SGD on linear regression; Keskar's large batch → sharper minimum (λ_max, ε-sharpness),
    larger test error and generalisation gap at every η of the grid; Jastrzębski's equal η/B → equal sharpness and
    test error. MLP members count where they reached the training-loss target without diverging."""
    loss = metrics["excess_loss"].where(metrics["linreg_status"] == "ok")
    exact = theory["excess_loss"]
    rel = abs(loss.mean("seed") - exact) / exact
    sem = loss.std("seed", ddof=1) / np.sqrt(loss.count("seed")) / exact
    n = int(rel.notnull().sum())
    measured, uncertainty = largest(rel, sem)
    out = [judge(
        "stationary excess loss of SGD on linear regression follows the exact η/B formula "
        "d η σ² / (2B(2 − η − η(d+1)/B)) (largest relative deviation of the seed mean)",
        "exact stationary state of SGD on isotropic linear regression (phaselab.theory.sgd_noise); "
        "Jastrzębski et al. 2017", theory=0.0, measured=measured,
        uncertainty=uncertainty, tolerance=EXCESS_LOSS_TOLERANCE, figure="eta_over_b",
        where=f"linear-regression excess loss at {n} (B, η/B) points; per point: "
              + ", ".join(f"B={int(b)}, η/B={float(r):g}: {float(rel.sel(linreg_batch_size=b, eta_over_batch=r)):.3g}"
                          for b in rel["linreg_batch_size"].values for r in rel["eta_over_batch"].values))]
    good = (metrics["status"] == "ok") & metrics["reached_target"].astype(bool)
    ok = metrics[["steps", "eps_sharpness_first_order", *KESKAR_QUANTITIES]].where(good)
    if metrics.sizes["batch_size"] > 1:
        for lr in ok["lr"].values:
            out += [_keskar(ok, float(lr), name) for name in KESKAR_QUANTITIES]
    out += [_eta_over_b(ok, name) for name in ("sharpness", "test_error")]
    return out
