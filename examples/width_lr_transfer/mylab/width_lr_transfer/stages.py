"""The width × learning-rate sweep's stages: the teacher task, one SGD ensemble per (parametrisation, width) cell,
the optimal learning rate η* per width and its slope against width, and the two claims.

The model is written functionally (torch.func style, vmapped by the engine): parameters ``{"W0", "b0", …}`` are
the STORED tensors w; the network uses the effective weights W = m·w with the multipliers m = √c of
:func:`mylab.width_lr_transfer.layer_factors`, so one global rate η per member is per-layer SGD with rates η·c.
"""

from __future__ import annotations

import math
from functools import partial

import numpy as np

from mylab.width_lr_transfer import PARAMETRISATIONS, WidthCell, layer_factors
from phaselab.experiment import Claim, Run, judge

# Seed purposes of this experiment (phaselab.data.derive_seed(root, purpose, *keys)); apart from phaselab's own.
TEACHER, TRAIN_SET, TEST_SET, INIT, BATCHES, BOOTSTRAP = 9101, 9102, 9103, 9104, 9105, 9106
LOSS_ATTRS = {"units": "1"}
THEORY_SLOPE = {"sp": -1.0, "mup": 0.0}
THEORY_SOURCE = {"sp": "Yang & Hu 2021 §3 (SP: largest stable SGD rate ∝ 1/n); Yang et al. 2022 Fig. 1",
                 "mup": "Yang & Hu 2021 (μP has a width-independent limit); Yang et al. 2022 Table 3, Fig. 1"}
# Tolerance on the slope of ln η* against ln n, fixed before any run: the two predictions (0 and −1) are one unit
# apart, and 0.25 makes a measurement agree with at most one of them, leaving the band (−0.75, −0.25) where it
# agrees with neither. It is also the size of the discretisation error: an η* off by a quarter of an octave
# (ln 2 / 4 ≈ 0.17, the residual of the parabolic interpolation on a grid of 2 points per octave) at both ends
# of a width range of 16× moves the slope by 2·0.17 / ln 16 ≈ 0.13, so 0.25 leaves room for that and for the
# finite-width drift of μP at small widths, without letting a slope of −1/2 pass as either prediction.
SLOPE_TOLERANCE = 0.25


# --------------------------------------------------------------------------- data


def make_data(run: Run, data_id: str) -> dict[str, np.ndarray]:
    """The teacher (shared by every seed, width and learning rate) and each seed's training and test sets."""
    from phaselab import data

    task, S = run.exp["task"], run.exp["grid"]["seeds"]
    d, k = task["d"], task["teacher_width"]
    teacher = data.rng(run.seed, TEACHER)
    w_star, a_star = teacher.standard_normal((k, d)), teacher.standard_normal(k)
    scale = float(np.std(teacher_output(w_star, a_star, teacher.standard_normal((20000, d)))))

    def draw(purpose, n, s):
        x = data.rng(run.seed, purpose, s).standard_normal((n, d))
        return x, teacher_output(w_star, a_star, x) / scale

    out = {"teacher_w": w_star, "teacher_a": a_star / scale}
    train_sets = [draw(TRAIN_SET, task["n_train"], s) for s in range(S)]
    test_sets = [draw(TEST_SET, task["n_test"], s) for s in range(S)]
    noise = [task["noise"] * data.rng(run.seed, TRAIN_SET, s, 1).standard_normal(task["n_train"]) for s in range(S)]
    out["x_train"] = np.stack([x for x, _ in train_sets])
    out["y_train"] = np.stack([y + e for (_, y), e in zip(train_sets, noise, strict=True)])
    out["x_test"] = np.stack([x for x, _ in test_sets])
    out["y_test"] = np.stack([y for _, y in test_sets])
    return out


def teacher_output(w_star: np.ndarray, a_star: np.ndarray, x: np.ndarray) -> np.ndarray:
    """y = Σ_j a_j tanh(w_j·x/√d) (before the scaling to unit variance)."""
    return np.tanh(x @ w_star.T / np.sqrt(x.shape[-1])) @ a_star


# --------------------------------------------------------------------------- model


def multipliers(factors: dict) -> dict[str, float]:
    """m = √c for every parameter: SGD at rate η on w = W/m is SGD at rate η·c on W."""
    return {name: math.sqrt(c) for name, (_, c) in factors.items()}


def init_params(factors: dict, sizes: list[int], seeds: list[int], dtype) -> dict:
    """Stored parameters w = W/m, one member per seed: W ~ N(0, σ²) (biases zero), so w ~ N(0, σ²/c)."""
    import torch

    rngs = [np.random.default_rng(int(s)) for s in seeds]
    params = {}
    for layer in range(len(sizes) - 1):
        fan_in, fan_out = sizes[layer], sizes[layer + 1]
        var, c = factors[f"W{layer}"]
        W = np.stack([math.sqrt(var / c) * r.standard_normal((fan_out, fan_in)) for r in rngs])
        params[f"W{layer}"] = torch.as_tensor(W, dtype=dtype)
        params[f"b{layer}"] = torch.zeros(len(seeds), fan_out, dtype=dtype)
    return params


def effective(params: dict, mult: dict) -> dict:
    """The network's weights W = m·w (any leading member dims)."""
    return {name: mult[name] * p for name, p in params.items()}


def forward(params: dict, x, mult: dict, activation: str = "tanh"):
    """f(x) of one member, a scalar per input row."""
    import torch

    act = torch.tanh if activation == "tanh" else torch.relu
    L, h = sum(1 for n in params if n.startswith("W")) - 1, x
    for layer in range(L + 1):
        h = h @ (mult[f"W{layer}"] * params[f"W{layer}"]).T + mult[f"b{layer}"] * params[f"b{layer}"]
        if layer < L:
            h = act(h)
    return h[..., 0]


def square_loss(params: dict, batch, mult: dict, activation: str = "tanh"):
    """½ ⟨(f(x) − y)²⟩ over the batch (x, y), one member."""
    x, y = batch
    return 0.5 * ((forward(params, x, mult, activation) - y) ** 2).mean()


# --------------------------------------------------------------------------- train


def train(run: Run, cell: WidthCell, arrays: dict):
    """Every (η, seed) member of one (parametrisation, width) cell, trained as one ensemble by minibatch SGD."""
    import torch
    import xarray as xr
    from torch.func import vmap

    from phaselab import data
    from phaselab.engines.ensemble import train_ensemble
    from phaselab.vocabulary import STATUS_DIVERGED, STATUS_OK

    exp, device = run.exp, run.device
    task, model, tr = exp["task"], exp["model"], exp["train"]
    dtype = getattr(torch, tr["dtype"])
    S, lrs, n, B, T = exp["grid"]["seeds"], list(cell.lrs), cell.width, tr["batch_size"], tr["steps"]
    act = model["activation"]
    sizes = [task["d"], *[n] * model["hidden_layers"], 1]
    factors = layer_factors(cell.param, n, model["base_width"], model["hidden_layers"], task["d"], act)
    mult = multipliers(factors)

    member_seed = np.tile(np.arange(S), len(lrs))  # member m = (lr index m // S, seed m % S)
    init = init_params(factors, sizes, [data.derive_seed(run.seed, INIT, n, s) for s in range(S)], dtype)
    params = {k: v[member_seed].to(device) for k, v in init.items()}  # same start for every η of a seed
    x_train, y_train, x_test, y_test = (torch.as_tensor(arrays[k], dtype=dtype, device=device)[member_seed]
                                        for k in ("x_train", "y_train", "x_test", "y_test"))
    full_batch = B >= task["n_train"]
    # Minibatch indices, drawn with replacement: one sequence per seed, the same at every width and η.
    idx = None if full_batch else torch.as_tensor(np.stack(
        [data.rng(run.seed, BATCHES, s).integers(0, task["n_train"], (T, B)) for s in range(S)]), device=device)
    rows = torch.arange(len(member_seed), device=device)[:, None]
    seed_of = torch.as_tensor(member_seed, device=device)

    def batches(step):
        if full_batch:
            return x_train, y_train
        at = idx[seed_of, step]  # (M, B)
        return x_train[rows, at], y_train[rows, at]

    loss = partial(square_loss, mult=mult, activation=act)
    batch_loss = vmap(loss, in_dims=(0, 0))

    def evaluate(p):
        return {"train_loss": batch_loss(p, (x_train, y_train)), "test_loss": batch_loss(p, (x_test, y_test))}

    run.log(f"{PARAMETRISATIONS[cell.param]}, width {n}: {len(lrs)} learning rates × {S} seeds, {T} steps of "
            f"{'full-batch GD' if full_batch else f'SGD with B = {B}'}; rate factors "
            + ", ".join(f"{k} {c:.3g}" for k, (_, c) in factors.items()))
    result = train_ensemble(params, loss, batches, np.repeat(lrs, S), list(cell.steps), evaluate,
                            batch_in_dims=None if full_batch else 0,
                            divergence_threshold=tr["divergence_threshold"], log=run.log_file)

    train_loss, test_loss = result.metrics["train_loss"], result.metrics["test_loss"]  # (M, T)
    diverged_at = np.where(result.diverged_step >= 0, result.diverged_step, -1).astype(float)
    blown = ~(train_loss <= tr["divergence_loss"] * train_loss[:, :1])  # NaN counts as blown up
    for m in np.flatnonzero(blown[:, -1] & (diverged_at < 0)):
        stays = np.flatnonzero(~np.logical_and.accumulate(blown[m, ::-1])[::-1])  # last checkpoint not blown
        diverged_at[m] = cell.steps[stays[-1] + 1 if stays.size else 0]
    status = np.where(diverged_at >= 0, STATUS_DIVERGED, STATUS_OK)
    run.log(f"{int((status == STATUS_DIVERGED).sum())} of {len(status)} members diverged")

    def grid(values):  # (M, ...) → (lr, seed, ...)
        return np.asarray(values).reshape(len(lrs), S, *np.shape(values)[1:])

    names = list(factors)
    L_attrs = {"long_name": "training loss ½⟨(f(x) − y)²⟩ over the training set", **LOSS_ATTRS}
    T_attrs = {"long_name": "test loss ½⟨(f(x) − y)²⟩ over the held-out set (clean targets)", **LOSS_ATTRS}
    ds = xr.Dataset(
        {
            "train_loss": (("lr", "seed", "step"), grid(train_loss), L_attrs),
            "test_loss": (("lr", "seed", "step"), grid(test_loss), T_attrs),
            "final_train_loss": (("lr", "seed"), grid(train_loss[:, -1]),
                                 {**L_attrs, "long_name": f"training loss after {T} steps"}),
            "final_test_loss": (("lr", "seed"), grid(test_loss[:, -1]),
                                {**T_attrs, "long_name": f"test loss after {T} steps"}),
            "status": (("lr", "seed"), grid(status).astype(str), {"long_name": "member status (ok / diverged)"}),
            "diverged_at": (("lr", "seed"), grid(np.where(diverged_at >= 0, diverged_at, np.nan)),
                            {"long_name": "checkpoint at which the member was recorded as diverged",
                             "units": "steps"}),
            "rate_factor": (("tensor",), [factors[k][1] for k in names],
                            {"long_name": "per-layer learning-rate factor c (effective rate η·c)", "units": "1"}),
            "init_variance": (("tensor",), [factors[k][0] for k in names],
                              {"long_name": "initial variance of the effective weights", "units": "1"}),
        },
        coords={"lr": np.asarray(lrs, dtype=float), "seed": np.arange(S), "step": np.asarray(cell.steps),
                "tensor": names},
        attrs={"d": task["d"], "teacher_width": task["teacher_width"], "label_noise_std": task["noise"],
               "n_train": task["n_train"], "n_test": task["n_test"], "hidden_layers": model["hidden_layers"],
               "activation": act, "base_width": model["base_width"], "batch_size": min(B, task["n_train"]),
               "steps": T, "dtype": tr["dtype"], "divergence_threshold": tr["divergence_threshold"],
               "divergence_loss": tr["divergence_loss"]},
    )
    return ds.expand_dims(param=[cell.param], width=[n])


def collect(run: Run, cells: list):
    """One Dataset (dims param, width, lr, seed, step, tensor), parametrisations in the config's order."""
    import xarray as xr

    ds = xr.merge(cells, join="outer", compat="no_conflicts", combine_attrs="drop_conflicts")
    ds["status"] = ds["status"].astype(str)
    return ds.sortby(["width", "lr"]).reindex(param=run.exp["grid"]["parametrisation"])  # the config's order


# --------------------------------------------------------------------------- theory


def optimum(loss: np.ndarray, ok: np.ndarray, log_lr: np.ndarray) -> tuple[float, bool, float]:
    """(ln η*, at the grid's edge, seed-mean loss at η*) from the final losses (lr, seed) of one cell.

    The seed mean is over the members that did not diverge; a learning rate where any seed diverged is not
    usable (in practice it is not an option). η* is the grid minimum of the mean, refined by the vertex of the
    parabola through ln(mean loss) at it and its two neighbours (when both are usable), kept within half a grid
    step. A minimum at the first or last learning rate of the grid is flagged: η* is then only a bound.
    """
    usable = ok.all(axis=1) & (ok.sum(axis=1) > 0)
    with np.errstate(invalid="ignore", divide="ignore"):
        y = np.where(usable, np.log(np.where(ok, loss, np.nan).mean(axis=1)), np.nan)
    if not np.isfinite(y).any():
        return math.nan, False, math.nan
    i = int(np.nanargmin(y))
    edge = i == 0 or i == len(y) - 1
    if edge or not (np.isfinite(y[i - 1]) and np.isfinite(y[i + 1])):
        return float(log_lr[i]), edge, float(math.exp(y[i]))
    h = (log_lr[i + 1] - log_lr[i - 1]) / 2
    curv = y[i + 1] - 2 * y[i] + y[i - 1]
    shift = 0.0 if curv <= 0 else float(np.clip(-h * (y[i + 1] - y[i - 1]) / (2 * curv), -h / 2, h / 2))
    value = y[i] + shift * (y[i + 1] - y[i - 1]) / (2 * h) + curv * shift**2 / (2 * h**2)
    return float(log_lr[i] + shift), False, float(math.exp(value))


def slope_fit(log_width: np.ndarray, log_eta: np.ndarray, edge: np.ndarray) -> tuple[float, float, float]:
    """Least-squares (slope, intercept, standard error of the slope from the residuals; NaN with fewer than 3
    points) of ln η* against ln n over the widths whose η* is not at the grid edge."""
    use = np.isfinite(log_eta) & ~edge
    if use.sum() < 2:
        return math.nan, math.nan, math.nan
    x, y = log_width[use], log_eta[use]
    slope, intercept = np.polyfit(x, y, 1)
    if use.sum() < 3:
        return float(slope), float(intercept), math.nan
    resid = y - (intercept + slope * x)
    se = math.sqrt(float(resid @ resid) / (len(x) - 2) / float(((x - x.mean()) ** 2).sum()))
    return float(slope), float(intercept), se


def theory(run: Run, metrics):
    """η* per (parametrisation, width), its bootstrap-over-seeds standard error, the slope of ln η* against ln n
    with its bootstrap standard error, and the theory's slopes (SP −1, μP 0) drawn through the measured points."""
    import xarray as xr

    from phaselab import data

    which = run.exp["theory"]["loss"]
    n_boot = run.exp["theory"]["bootstrap"]
    loss = metrics[f"final_{which}"].transpose("param", "width", "lr", "seed").values
    ok = (metrics["status"].transpose("param", "width", "lr", "seed").values.astype(str) == "ok") & np.isfinite(loss)
    params, widths = [str(p) for p in metrics["param"].values], metrics["width"].values.astype(float)
    log_lr, log_w = np.log(metrics["lr"].values), np.log(widths)
    P, W, S = len(params), len(widths), loss.shape[-1]

    def estimate(seeds):
        est = np.array([[optimum(loss[p, w][:, seeds], ok[p, w][:, seeds], log_lr) for w in range(W)]
                        for p in range(P)])  # (P, W, 3)
        log_eta, edge = est[..., 0], est[..., 1].astype(bool)
        slopes = np.array([slope_fit(log_w, log_eta[p], edge[p]) for p in range(P)])
        return log_eta, edge, est[..., 2], slopes

    log_eta, edge, loss_star, fit = estimate(np.arange(S))
    gen = data.rng(run.seed, BOOTSTRAP)
    boot = [estimate(gen.integers(0, S, S)) for _ in range(n_boot)]  # the same seeds resampled at every width
    boot_eta = np.stack([b[0] for b in boot])
    boot_slope = np.stack([b[3][:, 0] for b in boot])  # (bootstrap, param)
    with np.errstate(invalid="ignore"):
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            eta_se = np.nanstd(boot_eta, axis=0, ddof=1)
            boot_se = np.nanstd(boot_slope, axis=0, ddof=1)
    slope, intercept, fit_se = fit[:, 0], fit[:, 1], fit[:, 2]
    # The seed bootstrap sees the seeds' noise only; the residuals of the fit also see how far the η* scatter
    # about a power law (grid discretisation, finite-width drift). The claim takes the larger of the two.
    slope_se = np.where(np.isnan(fit_se), boot_se, np.fmax(boot_se, fit_se))
    th_slope = np.array([THEORY_SLOPE[p] for p in params])
    use = np.isfinite(log_eta) & ~edge
    anchor = np.array([np.mean(log_eta[p][use[p]] - th_slope[p] * log_w[use[p]]) if use[p].any() else np.nan
                       for p in range(P)])
    pw = ("param", "width")
    return xr.Dataset(
        {
            "eta_star": (pw, np.exp(log_eta), {"long_name": f"optimal global learning rate η* (seed-mean final "
                                                            f"{which.replace('_', ' ')})", "units": "1"}),
            "log_eta_star_se": (pw, eta_se, {"long_name": "bootstrap-over-seeds standard error of ln η*",
                                             "units": "1"}),
            "eta_star_at_edge": (pw, edge, {"long_name": "η* at the edge of the learning-rate grid (only a bound; "
                                                         "left out of the slope fit)"}),
            "loss_at_eta_star": (pw, loss_star, {"long_name": f"seed-mean final {which.replace('_', ' ')} at η* "
                                                              "(parabolic interpolation)", "units": "1"}),
            "slope": (("param",), slope, {"long_name": "fitted slope of ln η* against ln n", "units": "1"}),
            "slope_se": (("param",), slope_se, {"long_name": "standard error of the slope (larger of slope_se_"
                                                             "bootstrap and slope_se_fit)", "units": "1"}),
            "slope_se_bootstrap": (("param",), boot_se, {"long_name": "bootstrap-over-seeds standard error of the "
                                                                      "slope", "units": "1"}),
            "slope_se_fit": (("param",), fit_se, {"long_name": "least-squares standard error of the slope from the "
                                                              "fit's residuals", "units": "1"}),
            "intercept": (("param",), intercept, {"long_name": "fitted intercept of ln η* against ln n",
                                                  "units": "1"}),
            "theory_slope": (("param",), th_slope, {"long_name": "slope of ln η* against ln n the theory predicts "
                                                                 "(SP −1, μP 0)", "units": "1"}),
            "eta_star_fit": (pw, np.exp(intercept[:, None] + slope[:, None] * log_w[None]),
                             {"long_name": "fitted power law η* ∝ n^slope", "units": "1"}),
            "eta_star_theory": (pw, np.exp(anchor[:, None] + th_slope[:, None] * log_w[None]),
                                {"long_name": "theory power law η* ∝ n^theory_slope, least-squares through the "
                                              "measured η*", "units": "1"}),
        },
        coords={"param": params, "width": metrics["width"].values},
        attrs={"loss": which, "bootstrap": n_boot, "slope_tolerance": SLOPE_TOLERANCE,
               "valid_bootstrap_slopes": ",".join(f"{p}: {int(np.isfinite(boot_slope[:, i]).sum())}"
                                                  for i, p in enumerate(params))},
    )


def claims(metrics, theory) -> list[Claim]:
    """The slope of ln η* against ln n in each parametrisation, against the theory's, within SLOPE_TOLERANCE."""
    text = {"mup": "μP: the optimal learning rate is width-independent (slope of ln η* against ln n)",
            "sp": "SP: the optimal learning rate shifts with width as η* ∝ n⁻¹ (slope of ln η* against ln n)"}
    out = []
    for p in [str(v) for v in theory["param"].values]:
        t = theory.sel(param=p)
        edge = [int(w) for w, e in zip(t["width"].values, t["eta_star_at_edge"].values, strict=True) if e]
        used = [int(w) for w, e in zip(t["width"].values, t["eta_star_at_edge"].values, strict=True) if not e]
        out.append(judge(
            text[p], THEORY_SOURCE[p], theory=float(t["theory_slope"]), measured=float(t["slope"]),
            uncertainty=float(t["slope_se"]), tolerance=SLOPE_TOLERANCE,
            where=f"widths {used} fitted (η* from the seed-mean final {theory.attrs['loss'].replace('_', ' ')}); "
                  f"at the learning-rate grid's edge, left out: {edge or 'none'}; uncertainty: the larger of the "
                  f"bootstrap over seeds ({theory.attrs['bootstrap']} resamples, "
                  f"{float(t['slope_se_bootstrap']):.3g}) and the fit's residual standard error "
                  f"({float(t['slope_se_fit']):.3g})"))
    return out
