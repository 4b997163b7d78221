"""Double descent: test risk against over-parameterisation in three models, each beside its theory.

- ``linear``: min-norm least squares and ridge on isotropic Gaussian features, risk against γ = p/n at fixed n
  (Hastie, Montanari, Rosset & Tibshirani 2019): asymptotic and exact finite-n curves, ridge and optimal ridge.
- ``random_features``: ReLU random-features ridge(less) regression on the sphere, test error against N/n
  (Mei & Montanari 2019), the asymptotic curve from their fixed-point equations.
- ``network``: the two-layer ReLU network of :mod:`phaselab.models.two_layer` on the scikit-learn digits with label noise,
  trained by full-batch gradient descent through ``train_ensemble``, test error against the width h across the
  interpolation threshold h(d + C) ≈ nC (model-wise double descent: Belkin, Hsu, Ma & Mandal 2019; Nakkiran
  et al. 2019).

Cells: ``linear`` and ``random_features`` (closed-form solvers, batched over seeds), and one ``width<h>`` cell per
network width whose label-noise × seed members are trained together. Each part has its own number of seeds and
its own seed dimension: ``linear_seed``, ``rf_seed`` and ``seed`` (network).
"""

from __future__ import annotations

import math
import sys

import numpy as np

from phaselab.config import check_grid_axis, fail

FIGURES = ("linear_double_descent", "random_features", "width_double_descent")
DIGITS_DIM, DIGITS_CLASSES = 64, 10


def linear_dims(lin: dict) -> list[int]:
    """p = round(γ n) for every γ of the config, sorted."""
    return sorted(round(g * lin["n"]) for g in lin["gamma"])


def rf_features(rf: dict) -> list[int]:
    """N = round((N/n) n) for every ratio of the config, sorted."""
    return sorted(max(1, round(r * rf["n"])) for r in rf["ratio"])


def check(key: str, exp: dict) -> None:
    lin, rf, net = exp["linear"], exp["random_features"], exp["network"]
    for axis in ("gamma", "ridge"):
        check_grid_axis(f"{key}.linear.{axis}", lin[axis])
    for axis in ("ratio", "ridge"):
        check_grid_axis(f"{key}.random_features.{axis}", rf[axis])
    for axis in ("widths", "label_noise"):
        check_grid_axis(f"{key}.network.{axis}", net[axis])
    for g in lin["gamma"]:
        p = round(g * lin["n"])
        if p < 1:
            fail(f"{key}.linear.gamma", g, f"gives p = {p} < 1 features at n = {lin['n']}")
        if abs(p - lin["n"]) <= 1:
            fail(f"{key}.linear.gamma", g, f"gives p = {p} within 1 of n = {lin['n']}, where the expected "
                                           "min-norm risk is infinite")
    if len(set(linear_dims(lin))) != len(lin["gamma"]):
        fail(f"{key}.linear.gamma", lin["gamma"], f"two values give the same p at n = {lin['n']}")
    if len(set(rf_features(rf))) != len(rf["ratio"]):
        fail(f"{key}.random_features.ratio", rf["ratio"], f"two values give the same N at n = {rf['n']}")
    if net["n_train"] > 1797 - 100:
        fail(f"{key}.network.n_train", net["n_train"], "leaves fewer than 100 of the 1797 digits for testing")


def cells(exp: dict) -> list[dict]:
    rows = [{"id": "linear", "data": None, "part": "linear"},
            {"id": "random_features", "data": None, "part": "random_features"}]
    rows += [{"id": f"width{h}", "data": "digits", "part": "network", "width": h}
             for h in sorted(exp["network"]["widths"])]
    return rows


def checkpoints(steps: int, per_decade: int) -> list[int]:
    """0, then log-spaced integer steps up to ``steps`` (included)."""
    top = math.log10(steps)
    grid = {0, steps} | {round(10 ** (k / per_decade)) for k in range(int(top * per_decade) + 1)}
    return sorted(s for s in grid if s <= steps)


# ----------------------------------------------------------------------------------------------------------------
# data
# ----------------------------------------------------------------------------------------------------------------
def digits_split(config: dict, exp: dict) -> dict[str, np.ndarray]:
    """The digits, a train/test split per seed and the noisy training labels of every label-noise level."""
    from phaselab import data

    net = exp["network"]
    x, labels = data.load_digits_standardised()
    train_idx, test_idx, noisy = [], [], []
    for s in range(net["seeds"]):
        tr, te = data.split(len(labels), net["n_train"], data.rng(config["seed"], data.DIGITS_SPLIT, s))
        train_idx.append(tr)
        test_idx.append(te)
        noisy.append([data.corrupt_labels(labels[tr], q, DIGITS_CLASSES,
                                          data.rng(config["seed"], data.LABEL_CORRUPTION, 0, s))
                      for q in sorted(net["label_noise"])])
    return {"x": x, "labels": labels, "train_idx": np.stack(train_idx), "test_idx": np.stack(test_idx),
            "train_labels": np.stack(noisy, axis=1)}  # (label_noise, seed, n_train)


def make_data(config: dict, name: str, data_id: str, out: str) -> None:
    from phaselab import data

    if data_id != "digits":
        raise ValueError(f"unknown data id {data_id!r} of experiment {name}")
    data.save_npz_atomic(out, **digits_split(config, config["experiments"][name]))


# ----------------------------------------------------------------------------------------------------------------
# closed-form solvers, batched over seeds
# ----------------------------------------------------------------------------------------------------------------
def ridge_solutions(x: np.ndarray, y: np.ndarray, shrink) -> np.ndarray:
    """Ridge solutions (xᵀx + ν I)⁻¹ xᵀ y for a batch of problems x (S, n, p), y (S, n) and each penalty ν of
    ``shrink`` (L,); ν = 0 gives the min-norm least-squares solution pinv(x) y. From the eigendecomposition of the
    Gram matrix on the smaller side (n × n or p × p), batched over S. Returns (S, L, p)."""
    shrink = np.asarray(shrink, dtype=float)[None, :, None]
    n, p = x.shape[-2:]
    wide = p >= n
    gram = x @ x.transpose(0, 2, 1) if wide else x.transpose(0, 2, 1) @ x
    s2, vecs = np.linalg.eigh(gram)  # (S, k), (S, k, k)
    keep = s2 > s2[:, -1:] * max(n, p) * np.finfo(float).eps
    with np.errstate(divide="ignore"):
        inverse = np.where(keep[:, None], 1.0 / (s2[:, None] + shrink), 0.0)  # (S, L, k)
    if wide:  # xᵀ U (S² + ν)⁻¹ Uᵀ y
        coef = (vecs.transpose(0, 2, 1) @ y[..., None])[..., 0]
        return (inverse * coef[:, None]) @ vecs.transpose(0, 2, 1) @ x
    coef = (vecs.transpose(0, 2, 1) @ (x.transpose(0, 2, 1) @ y[..., None]))[..., 0]  # V (S² + ν)⁻¹ Vᵀ xᵀ y
    return (inverse * coef[:, None]) @ vecs.transpose(0, 2, 1)


def linear_risks(n: int, p: int, signal: float, noise: float, ridge, seeds: int, config_seed: int) -> np.ndarray:
    """E‖β̂ − β‖² of min-norm least squares, ridge at each λ of ``ridge`` and at λ* = σ²γ/r², per seed:
    array (S, 2 + len(ridge)) ordered [min-norm, *ridge, optimal]."""
    from phaselab import data
    from phaselab.theory.double_descent import optimal_ridge

    problems = [data.linear_problem(n, p, signal, noise, data.rng(config_seed, data.LINEAR_PROBLEM, n, p, s))
                for s in range(seeds)]
    x, y, beta = (np.stack(a) for a in zip(*problems))
    lam = np.array([0.0, *ridge, float(optimal_ridge(p / n, signal, noise))])
    beta_hat = ridge_solutions(x, y, n * lam)
    return ((beta_hat - beta[:, None]) ** 2).sum(-1)


def rf_test_errors(d: int, n: int, n_features: int, signal: float, noise: float, ridge, seeds: int, n_test: int,
                   config_seed: int) -> np.ndarray:
    """Test error E_x(⟨β, x⟩ − f(x; â))² of ReLU random-features ridge regression (Mei & Montanari 2019
    normalisation: penalty (Nλ/d)‖a‖² on the mean squared training error), per seed and λ: (S, len(ridge))."""
    from phaselab import data

    xs, ys, xt, ft, th = [], [], [], [], []
    for s in range(seeds):
        gen = data.rng(config_seed, data.RANDOM_FEATURES, d, n, n_features, s)
        beta = math.sqrt(signal) * data.sphere((), d, gen) / math.sqrt(d)
        x, x_test, theta = data.sphere((n,), d, gen), data.sphere((n_test,), d, gen), data.sphere((n_features,), d, gen)
        xs.append(x)
        ys.append(x @ beta + math.sqrt(noise) * gen.standard_normal(n))
        xt.append(x_test)
        ft.append(x_test @ beta)
        th.append(theta)
    x, y, x_test, f_test, theta = (np.stack(a) for a in (xs, ys, xt, ft, th))
    features = np.maximum(x @ theta.transpose(0, 2, 1) / math.sqrt(d), 0.0)
    a_hat = ridge_solutions(features, y, n * n_features / d * np.asarray(ridge, dtype=float))  # (S, L, N)
    test_features = np.maximum(x_test @ theta.transpose(0, 2, 1) / math.sqrt(d), 0.0)
    predictions = np.einsum("stn,sln->slt", test_features, a_hat)
    return ((predictions - f_test[:, None]) ** 2).mean(-1)


# ----------------------------------------------------------------------------------------------------------------
# training jobs
# ----------------------------------------------------------------------------------------------------------------
def train_cell(config: dict, name: str, cell_id: str, data_path: str | None, out: str, threads: int = 1,
               log=sys.stderr) -> None:
    import time

    from threadpoolctl import threadpool_limits

    from phaselab.metrics import write_netcdf
    from phaselab.device import set_threads

    set_threads(threads)
    exp = config["experiments"][name]
    cell = next(c for c in cells(exp) if c["id"] == cell_id)
    started = time.perf_counter()
    # BLAS threads beyond the job's own cores spin against the other jobs (100× slower eigh on a busy 2-core box)
    with threadpool_limits(limits=threads):
        if cell["part"] == "linear":
            ds = linear_cell(config, exp["linear"])
        elif cell["part"] == "random_features":
            ds = rf_cell(config, exp["random_features"])
        else:
            ds = network_cell(config, exp["network"], cell["width"], data_path, log)
    seconds = time.perf_counter() - started
    print(f"[train] experiment {name}, cell {cell_id}: done in {seconds:.1f}s", file=log, flush=True)
    ds.attrs.update(cell=cell_id, train_seconds=seconds)
    write_netcdf(ds, out)


def linear_cell(config: dict, lin: dict):
    import xarray as xr

    ps = linear_dims(lin)
    ridge = sorted(lin["ridge"])
    risks = np.stack([linear_risks(lin["n"], p, lin["signal"], lin["noise"], ridge, lin["seeds"], config["seed"])
                      for p in ps])  # (gamma, seed, 2 + L)
    attrs = {"units": "1"}
    return xr.Dataset(
        {
            "minnorm_risk": (("gamma", "linear_seed"), risks[..., 0],
                             {**attrs, "long_name": "min-norm least-squares risk ‖β̂ − β‖²"}),
            "ridge_risk": (("gamma", "ridge", "linear_seed"), risks[..., 1:-1].transpose(0, 2, 1),
                           {**attrs, "long_name": "ridge risk ‖β̂_λ − β‖²"}),
            "optimal_ridge_risk": (("gamma", "linear_seed"), risks[..., -1],
                                   {**attrs, "long_name": "ridge risk at λ* = σ²γ/r²"}),
            "n_features": (("gamma",), ps, {"units": "1", "long_name": "number of features p"}),
        },
        coords={"gamma": np.array(ps) / lin["n"], "ridge": ridge, "linear_seed": np.arange(lin["seeds"])},
    )


def rf_cell(config: dict, rf: dict):
    import xarray as xr

    ns = rf_features(rf)
    ridge = sorted(rf["ridge"])
    errors = np.stack([rf_test_errors(rf["d"], rf["n"], n_features, rf["signal"], rf["noise"], ridge, rf["seeds"],
                                      rf["n_test"], config["seed"]) for n_features in ns])  # (ratio, seed, ridge)
    return xr.Dataset(
        {
            "rf_test_error": (("rf_ratio", "rf_ridge", "rf_seed"), errors.transpose(0, 2, 1),
                              {"units": "1", "long_name": "random-features test error E(f* − f)²"}),
            "rf_features": (("rf_ratio",), ns, {"units": "1", "long_name": "number of random features N"}),
        },
        coords={"rf_ratio": np.array(ns) / rf["n"], "rf_ridge": ridge, "rf_seed": np.arange(rf["seeds"])},
    )


def network_cell(config: dict, net: dict, width: int, data_path: str, log):
    import torch
    import xarray as xr

    from phaselab import data
    from phaselab.models import two_layer
    from phaselab.metrics import STATUS_DIVERGED, STATUS_OK
    from phaselab.device import pick_device

    device = pick_device(config["device"])
    arrays = np.load(data_path)
    x, labels = torch.as_tensor(arrays["x"]), torch.as_tensor(arrays["labels"])
    noise = sorted(net["label_noise"])
    n_noise, n_seeds = len(noise), net["seeds"]
    # members: label noise major, seed minor; a seed's init and split are shared by its noise levels
    seed_of = np.tile(np.arange(n_seeds), n_noise)
    train_idx, test_idx = torch.as_tensor(arrays["train_idx"]), torch.as_tensor(arrays["test_idx"])
    x_train, x_test = x[train_idx][seed_of], x[test_idx][seed_of]
    y_train = torch.as_tensor(arrays["train_labels"]).reshape(n_noise * n_seeds, -1)
    y_test = labels[test_idx][seed_of]
    x_train, y_train, x_test, y_test = (a.to(device) for a in (x_train, y_train, x_test, y_test))
    params = two_layer.init([data.derive_seed(config["seed"], data.NETWORK_INIT, width, s) for s in seed_of],
                      DIGITS_DIM, width, DIGITS_CLASSES)
    params = {k: v.to(device) for k, v in params.items()}
    steps = checkpoints(net["steps"], net["checkpoints_per_decade"])
    print(f"[train] width {width}: {n_noise} label-noise levels × {n_seeds} seeds, n = {net['n_train']}, "
          f"{net['steps']} full-batch GD steps, lr {net['lr']}, {net['loss']} loss, device {device}", file=log,
          flush=True)
    run = two_layer.train(params, net["loss"], x_train, y_train, net["lr"], steps,
                    {"train": (x_train, y_train), "test": (x_test, y_test)},
                    divergence_threshold=net["divergence_threshold"], log=log)
    shape = (n_noise, n_seeds)

    def curve(key):
        return run.metrics[key].reshape(*shape, len(steps))[:, None]

    diverged = run.diverged_step.reshape(shape)[:, None]
    loss_name = "½‖f − e_y‖²" if net["loss"] == "squared" else "cross-entropy"
    dims = ("label_noise", "width", "seed", "step")
    return xr.Dataset(
        {
            "train_loss": (dims, curve("train_loss"), {"units": "1", "long_name": f"training loss ({loss_name})"}),
            "test_loss": (dims, curve("test_loss"), {"units": "1", "long_name": f"test loss ({loss_name})"}),
            "train_error": (dims, curve("train_error"),
                            {"units": "1", "long_name": "training error on the noisy labels"}),
            "test_error": (dims, curve("test_error"), {"units": "1", "long_name": "test error on clean labels"}),
            "status": (dims[:3], np.where(diverged >= 0, STATUS_DIVERGED, STATUS_OK).astype(str),
                       {"long_name": "member status (ok / diverged)"}),
            "diverged_at": (dims[:3], np.where(diverged >= 0, diverged, np.nan).astype(float),
                            {"units": "steps", "long_name": "checkpoint at which the member diverged"}),
            "n_parameters": (("width",), [width * (DIGITS_DIM + DIGITS_CLASSES)],
                             {"units": "1", "long_name": "parameters h(d + C)"}),
        },
        coords={"label_noise": noise, "width": [width], "seed": np.arange(n_seeds), "step": steps},
        attrs={"device": str(device)},
    )


# ----------------------------------------------------------------------------------------------------------------
# metrics, theory, figures
# ----------------------------------------------------------------------------------------------------------------
COORD_ATTRS = {
    "gamma": ("1", "over-parameterisation γ = p/n"),
    "ridge": ("1", "ridge penalty λ"),
    "rf_ratio": ("1", "random features per sample N/n"),
    "rf_ridge": ("1", "ridge penalty λ (0: ridgeless, min-norm)"),
    "label_noise": ("1", "label-noise probability q (label redrawn uniformly over the classes)"),
    "width": ("1", "hidden units h"),
    "linear_seed": ("1", "seed index of the linear problems"),
    "rf_seed": ("1", "seed index of the random-features problems"),
    "seed": ("1", "seed index of the network runs (split, label noise, initialisation)"),
    "step": ("steps", "full-batch gradient-descent step"),
}


def collect(config: dict, name: str, cell_paths: list[str], out: str) -> None:
    import xarray as xr

    from phaselab.metrics import open_netcdf, provenance, write_netcdf

    exp = config["experiments"][name]
    parts = [open_netcdf(path) for path in cell_paths]
    seconds = {c.attrs["cell"]: float(c.attrs["train_seconds"]) for c in parts}
    devices = sorted({c.attrs.get("device", "cpu") for c in parts})
    ds = xr.merge(parts, join="outer", compat="no_conflicts", combine_attrs="override")
    ds["n_parameters"] = ds["n_parameters"].astype(int)
    for var, (units, long_name) in COORD_ATTRS.items():
        ds[var].attrs.update(units=units, long_name=long_name)
    ds.attrs = {
        "title": f"phaselab experiment {name}: double descent (linear, random features, two-layer network)",
        "experiment": name,
        "experiment_type": exp["type"],
        "references": "Hastie, Montanari, Rosset & Tibshirani 2019; Mei & Montanari 2019; Belkin, Hsu, Ma & "
                      "Mandal 2019; Nakkiran et al. 2019",
        "linear_n": exp["linear"]["n"], "linear_signal": exp["linear"]["signal"],
        "linear_noise": exp["linear"]["noise"],
        "rf_d": exp["random_features"]["d"], "rf_n": exp["random_features"]["n"],
        "rf_signal": exp["random_features"]["signal"], "rf_noise": exp["random_features"]["noise"],
        "rf_n_test": exp["random_features"]["n_test"],
        "network_n_train": exp["network"]["n_train"], "network_loss": exp["network"]["loss"],
        "network_lr": exp["network"]["lr"], "network_steps": exp["network"]["steps"],
        "input_dim": DIGITS_DIM, "n_classes": DIGITS_CLASSES,
        "train_seconds": ", ".join(f"{k}: {v:.1f}" for k, v in seconds.items()),
        **provenance(config, ",".join(devices)),
    }
    write_netcdf(ds, out)


def dense(values, lo: float, hi: float, num: int = 400) -> np.ndarray:
    """A log-spaced grid from lo to hi joined with the simulated coordinate values."""
    return np.unique(np.concatenate([np.geomspace(lo, hi, num), np.asarray(values, dtype=float)]))


def theory(config: dict, name: str, metrics_path: str, out: str) -> None:
    """HMRT curves on γ, Mei–Montanari curves on N/n (simulated values and a dense grid) and the width at which
    the network's parameter count h(d + C) reaches the nC fitted values (the interpolation threshold)."""
    import xarray as xr

    from phaselab.metrics import open_netcdf, write_netcdf
    from phaselab.theory import double_descent as dd

    exp = config["experiments"][name]
    lin, rf, net = exp["linear"], exp["random_features"], exp["network"]
    metrics = open_netcdf(metrics_path)
    gamma = dense(metrics["gamma"].values, min(0.05, float(metrics["gamma"].min())),
                  max(20.0, float(metrics["gamma"].max())))
    ridge = metrics["ridge"].values
    r2, s2, n = lin["signal"], lin["noise"], lin["n"]
    ratio = dense(metrics["rf_ratio"].values, min(0.05, float(metrics["rf_ratio"].min())),
                  max(10.0, float(metrics["rf_ratio"].max())))
    rf_ridge = metrics["rf_ridge"].values
    psi1, psi2 = ratio * rf["n"] / rf["d"], rf["n"] / rf["d"]
    rf_curve = np.stack([dd.rf_risk(psi1, psi2, lam, rf["signal"], rf["noise"]) for lam in rf_ridge], axis=1)
    threshold = net["n_train"] * DIGITS_CLASSES / (DIGITS_DIM + DIGITS_CLASSES)
    one = {"units": "1"}
    ds = xr.Dataset(
        {
            "minnorm_risk": (("gamma",), dd.minnorm_risk(gamma, r2, s2),
                             {**one, "long_name": "min-norm risk, n, p → ∞ (HMRT 2019)"}),
            "minnorm_risk_finite": (("gamma",), dd.minnorm_risk_finite(n, gamma * n, r2, s2),
                                    {**one, "long_name": f"exact expected min-norm risk at n = {n}"}),
            "ridge_risk": (("gamma", "ridge"), dd.ridge_risk(gamma[:, None], ridge[None, :], r2, s2),
                           {**one, "long_name": "ridge risk, n, p → ∞ (HMRT 2019)"}),
            "optimal_ridge_risk": (("gamma",), dd.optimal_ridge_risk(gamma, r2, s2),
                                   {**one, "long_name": "ridge risk at λ* = σ²γ/r² (HMRT 2019)"}),
            "optimal_ridge": (("gamma",), dd.optimal_ridge(gamma, r2, s2),
                              {**one, "long_name": "optimal ridge penalty λ* = σ²γ/r²"}),
            "rf_test_error": (("rf_ratio", "rf_ridge"), rf_curve,
                              {**one, "long_name": "random-features test error, N, n, d → ∞ (Mei & Montanari 2019)"}),
            "interpolation_threshold": ((), threshold,
                                        {**one, "long_name": "width h at which h(d + C) = nC"}),
        },
        coords={"gamma": gamma, "ridge": ridge, "rf_ratio": ratio, "rf_ridge": rf_ridge},
        attrs={"references": metrics.attrs["references"]},
    )
    for var in ("gamma", "ridge", "rf_ratio", "rf_ridge"):
        ds[var].attrs.update(units=COORD_ATTRS[var][0], long_name=COORD_ATTRS[var][1])
    write_netcdf(ds, out)


def agreement(metrics, theory_ds) -> dict:
    """Seed-mean simulation against theory: linear min-norm vs its exact finite-n expectation, random features
    vs the asymptotic curve (ridge > 0, or N/n ≤ ½ or ≥ 2 when ridgeless, away from the peak)."""
    lin = metrics["minnorm_risk"].mean("linear_seed")
    lin_rel = abs(lin - theory_ds["minnorm_risk_finite"].sel(gamma=lin["gamma"])) / lin
    rf = metrics["rf_test_error"].mean("rf_seed")
    rf_th = theory_ds["rf_test_error"].sel(rf_ratio=rf["rf_ratio"])
    away = (rf["rf_ridge"] > 0) | (rf["rf_ratio"] <= 0.5) | (rf["rf_ratio"] >= 2)
    rf_rel = (abs(rf - rf_th) / rf_th).where(away)
    return {
        "max_rel_deviation": float(max(lin_rel.max(), rf_rel.max())),
        "checked": f"linear min-norm at {lin.size} γ (max {float(lin_rel.max()):.3g}); random features at "
                   f"{int(rf_rel.notnull().sum())} (N/n, λ) (max {float(rf_rel.max()):.3g})",
    }


def figure(figure_name: str, metrics, theory_ds):
    from phaselab.plots import double_descent as plots

    return getattr(plots, figure_name)(metrics, theory_ds)
