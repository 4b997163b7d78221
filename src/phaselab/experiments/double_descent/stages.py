"""Double descent's stages: the digits split, closed-form linear and random-features solvers batched over seeds,
the two-layer network trained by full-batch GD, the HMRT and Mei–Montanari theory, and the claims."""

from __future__ import annotations

import math

import numpy as np

from phaselab.experiment import Claim, Run, exceeds, judge, largest, seed_interval, student_t_quantile
from phaselab.experiments.double_descent import COORDS, DIGITS_CLASSES, DIGITS_DIM, PartCell, linear_dims, rf_features


# ----------------------------------------------------------------------------------------------------------------
# data
# ----------------------------------------------------------------------------------------------------------------
def digits_split(config_seed: int, exp: dict) -> dict[str, np.ndarray]:
    """The digits, a train/test split per seed and the noisy training labels of every label-noise level."""
    from phaselab import data

    net = exp["network"]
    x, labels = data.load_digits_standardised()
    train_idx, test_idx, noisy = [], [], []
    for s in range(net["seeds"]):
        tr, te = data.split(len(labels), net["n_train"], data.rng(config_seed, data.DIGITS_SPLIT, s))
        train_idx.append(tr)
        test_idx.append(te)
        noisy.append([data.corrupt_labels(labels[tr], q, DIGITS_CLASSES,
                                          data.rng(config_seed, data.LABEL_CORRUPTION, 0, s))
                      for q in sorted(net["label_noise"])])
    return {"x": x, "labels": labels, "train_idx": np.stack(train_idx), "test_idx": np.stack(test_idx),
            "train_labels": np.stack(noisy, axis=1)}  # (label_noise, seed, n_train)


def make_data(run: Run, data_id: str) -> dict[str, np.ndarray]:
    """The digits split of every seed (data id 'digits'), read by the network cells."""
    if data_id != "digits":
        raise ValueError(f"unknown data id {data_id!r} of experiment {run.name}")
    return digits_split(run.seed, run.exp)


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
def train(run: Run, cell: PartCell, data: dict | None):
    """One part: the linear or random-features solvers over every seed, or one network width's members."""
    from threadpoolctl import threadpool_limits

    # BLAS threads beyond the job's own cores spin against the other jobs (100× slower eigh on a busy 2-core box)
    with threadpool_limits(limits=run.threads):
        if cell.part == "linear":
            return linear_cell(run.seed, run.exp["linear"])
        if cell.part == "random_features":
            return rf_cell(run.seed, run.exp["random_features"])
        return network_cell(run, run.exp["network"], cell.width, data)


def linear_cell(config_seed: int, lin: dict):
    import xarray as xr

    ps = linear_dims(lin)
    ridge = sorted(lin["ridge"])
    risks = np.stack([linear_risks(lin["n"], p, lin["signal"], lin["noise"], ridge, lin["seeds"], config_seed)
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


def rf_cell(config_seed: int, rf: dict):
    import xarray as xr

    ns = rf_features(rf)
    ridge = sorted(rf["ridge"])
    errors = np.stack([rf_test_errors(rf["d"], rf["n"], n_features, rf["signal"], rf["noise"], ridge, rf["seeds"],
                                      rf["n_test"], config_seed) for n_features in ns])  # (ratio, seed, ridge)
    return xr.Dataset(
        {
            "rf_test_error": (("rf_ratio", "rf_ridge", "rf_seed"), errors.transpose(0, 2, 1),
                              {"units": "1", "long_name": "random-features test error E(f* − f)²"}),
            "rf_features": (("rf_ratio",), ns, {"units": "1", "long_name": "number of random features N"}),
        },
        coords={"rf_ratio": np.array(ns) / rf["n"], "rf_ridge": ridge, "rf_seed": np.arange(rf["seeds"])},
    )


def network_cell(run: Run, net: dict, width: int, arrays: dict):
    import torch
    import xarray as xr

    from phaselab import data
    from phaselab.models import two_layer
    from phaselab.schedules import log_schedule
    from phaselab.vocabulary import STATUS_DIVERGED, STATUS_OK

    device = run.device
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
    params = two_layer.init([data.derive_seed(run.seed, data.NETWORK_INIT, width, s) for s in seed_of],
                            DIGITS_DIM, width, DIGITS_CLASSES)
    params = {k: v.to(device) for k, v in params.items()}
    steps = log_schedule(net["steps"], net["checkpoints_per_decade"])
    run.log(f"width {width}: {n_noise} label-noise levels × {n_seeds} seeds, n = {net['n_train']}, "
            f"{net['steps']} full-batch GD steps, lr {net['lr']}, {net['loss']} loss, device {device}")
    result = two_layer.train(params, net["loss"], x_train, y_train, net["lr"], steps,
                             {"train": (x_train, y_train), "test": (x_test, y_test)},
                             divergence_threshold=net["divergence_threshold"], log=run.log_file)
    shape = (n_noise, n_seeds)

    def curve(key):
        return result.metrics[key].reshape(*shape, len(steps))[:, None]

    diverged = result.diverged_step.reshape(shape)[:, None]
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
    )


# ----------------------------------------------------------------------------------------------------------------
# metrics, theory, claims
# ----------------------------------------------------------------------------------------------------------------
def collect(run: Run, cells: list):
    """One Dataset of the three parts (each with its own seed dim), with the parameters of each part."""
    import xarray as xr

    exp = run.exp
    ds = xr.merge(cells, join="outer", compat="no_conflicts", combine_attrs="override")
    ds["n_parameters"] = ds["n_parameters"].astype(int)
    ds.attrs = {
        "linear_n": exp["linear"]["n"], "linear_signal": exp["linear"]["signal"],
        "linear_noise": exp["linear"]["noise"],
        "rf_d": exp["random_features"]["d"], "rf_n": exp["random_features"]["n"],
        "rf_signal": exp["random_features"]["signal"], "rf_noise": exp["random_features"]["noise"],
        "rf_n_test": exp["random_features"]["n_test"],
        "network_n_train": exp["network"]["n_train"], "network_loss": exp["network"]["loss"],
        "network_lr": exp["network"]["lr"], "network_steps": exp["network"]["steps"],
        "input_dim": DIGITS_DIM, "n_classes": DIGITS_CLASSES,
    }
    return ds


def dense(values, lo: float, hi: float, num: int = 400) -> np.ndarray:
    """A log-spaced grid from lo to hi joined with the simulated coordinate values."""
    return np.unique(np.concatenate([np.geomspace(lo, hi, num), np.asarray(values, dtype=float)]))


def theory(run: Run, metrics):
    """HMRT curves on γ, Mei–Montanari curves on N/n (simulated values and a dense grid) and the width at which
    the network's parameter count h(d + C) reaches the nC fitted values (the interpolation threshold)."""
    import xarray as xr

    from phaselab.theory import double_descent as dd
    from phaselab.vocabulary import coordinate_attrs

    exp = run.exp
    lin, rf, net = exp["linear"], exp["random_features"], exp["network"]
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
    )
    for var in ("gamma", "ridge", "rf_ratio", "rf_ridge"):
        ds[var].attrs.update(coordinate_attrs(var, COORDS))
    return ds


# Statistical cuts. A seed-mean deviation is held to the false-alarm rate of the Gaussian 3σ criterion (0.27 %,
# two-sided) with the Student-t quantile of its seeds − 1 degrees of freedom (3σ alone is far too strict at 3 seeds:
# t = 3 has a two-sided p of 0.095 there), shared (Bonferroni) by the points a claim takes its largest deviation over.
FALSE_ALARM = 0.0027
# The random-features curve is the N, n, d → ∞ limit: at d = 100 finite-d corrections are a few per cent (Mei &
# Montanari 2019, Fig. 1; the 5 % of tests/test_double_descent.py test_rf_theory_matches_simulation). Relative.
RF_FINITE_D = 0.05
# Confidence level of the seed intervals of the width peak's one-sided claims (the figures' 95 % bars).
CONFIDENCE = 0.95


def t_cut(n_seeds: int, n_points: int = 1) -> float:
    """Critical |t| of a seed mean over ``n_seeds`` seeds at the two-sided false-alarm rate FALSE_ALARM shared by
    ``n_points`` compared points (Student t with n_seeds − 1 degrees of freedom); inf below 2 seeds."""
    if n_seeds < 2:
        return math.inf
    return student_t_quantile(n_seeds, 1.0 - FALSE_ALARM / max(n_points, 1))


def _seed_t(mean, sem, reference, allowance=0.0):
    """|seed mean − reference| / √(sem² + allowance²): the deviation in standard errors."""
    return abs(mean - reference) / np.sqrt(sem**2 + allowance**2)


def finite_n_allowance(metrics, theory_values):
    """The finite-n allowance of an asymptotic HMRT risk at the simulated (n, p): the exact relative finite-n
    correction of the min-norm risk at the same (n, p), 1/(|p − n| − 1) (σ²p/(n − p − 1) against σ²γ/(1 − γ), and
    the variance term's n/(p − n − 1) against 1/(γ − 1)), the λ → 0 end of the ridge family, times the theory."""
    n, p = float(metrics.attrs["linear_n"]), metrics["n_features"].astype(float)
    return theory_values / (abs(p - n) - 1.0)


def relative_deviations(metrics, theory):
    """|seed mean − theory| / reference of the linear min-norm risk (against its exact finite-n expectation,
    relative to the seed mean) and of the random-features test error (against the asymptotic curve, relative to
    it; NaN at the ridgeless peak: ridge 0 and ½ < N/n < 2)."""
    lin = metrics["minnorm_risk"].mean("linear_seed")
    lin_rel = abs(lin - theory["minnorm_risk_finite"].sel(gamma=lin["gamma"])) / lin
    rf = metrics["rf_test_error"].mean("rf_seed")
    rf_th = theory["rf_test_error"].sel(rf_ratio=rf["rf_ratio"])
    away = (rf["rf_ridge"] > 0) | (rf["rf_ratio"] <= 0.5) | (rf["rf_ratio"] >= 2)
    return lin_rel, (abs(rf - rf_th) / rf_th).where(away)


def _seed_moments(values, dim):
    count = values.count(dim)
    return values.mean(dim), values.std(dim, ddof=1) / np.sqrt(count), int(count.min())


def linear_claims(metrics, theory) -> list[Claim]:
    """HMRT: min-norm against its exact finite-n expectation; ridge and optimal ridge against the asymptotic risk
    (finite-n allowance in quadrature); the risk at λ* has no peak (no significant decrease along γ)."""
    source = "Hastie, Montanari, Rosset & Tibshirani 2019"
    out = []
    lin_rel, _ = relative_deviations(metrics, theory)
    mean, sem, S = _seed_moments(metrics["minnorm_risk"], "linear_seed")
    z = _seed_t(mean, sem, theory["minnorm_risk_finite"].sel(gamma=mean["gamma"]))
    K = int(z.size)
    at = float(z["gamma"][int(np.argmax(z.values))])
    out.append(judge(
        f"seed-mean min-norm least-squares risk equals its exact finite-n expectation: the largest |deviation| in "
        f"standard errors of the seed mean, cut at the Student-t quantile of the 3σ false-alarm rate 0.27 % shared by "
        f"the {K} γ", source, theory=0.0, measured=float(z.max()), uncertainty=0.0, tolerance=t_cut(S, K),
        where=f"linear min-norm at {K} γ, {S} seeds; largest at γ = {at:g} (max relative deviation "
              f"{float(lin_rel.max()):.3g})", figure="linear_double_descent"))

    ridge_mean, ridge_sem, S = _seed_moments(metrics["ridge_risk"], "linear_seed")
    ridge_th = theory["ridge_risk"].sel(gamma=ridge_mean["gamma"], ridge=ridge_mean["ridge"])
    z = _seed_t(ridge_mean, ridge_sem, ridge_th, finite_n_allowance(metrics, ridge_th))
    K = int(z.size)
    g, lam = np.unravel_index(int(np.argmax(z.values)), z.shape)
    out.append(judge(
        "seed-mean ridge risk equals HMRT's asymptotic R(λ) at every (γ, λ): the largest |deviation| over "
        "√(SE² + finite-n allowance²), cut at the Student-t quantile of the 0.27 % false-alarm rate shared by the "
        f"{K} points; allowance = R/(|p − n| − 1), the exact finite-n correction of the min-norm risk at that (n, p)",
        source, theory=0.0, measured=float(z.max()), uncertainty=0.0, tolerance=t_cut(S, K),
        where=f"{z.sizes['gamma']} γ × λ ∈ {[float(v) for v in z['ridge'].values]}, {S} seeds; largest at γ = "
              f"{float(z['gamma'][g]):g}, λ = {float(z['ridge'][lam]):g}", figure="linear_double_descent"))

    opt_mean, opt_sem, S = _seed_moments(metrics["optimal_ridge_risk"], "linear_seed")
    opt_th = theory["optimal_ridge_risk"].sel(gamma=opt_mean["gamma"])
    z = _seed_t(opt_mean, opt_sem, opt_th, finite_n_allowance(metrics, opt_th))
    K = int(z.size)
    out.append(judge(
        "seed-mean risk at the optimal ridge λ* = σ²γ/r² equals HMRT's σ²γ m(−λ*) at every γ, the two next to γ = 1 "
        "included (finite: optimal ridge removes the peak); largest |deviation| over √(SE² + allowance²), Student-t "
        f"cut at 0.27 % shared by the {K} γ", source, theory=0.0, measured=float(z.max()), uncertainty=0.0,
        tolerance=t_cut(S, K),
        where=f"{K} γ, {S} seeds; largest at γ = {float(z['gamma'][int(np.argmax(z.values))]):g}; seed mean "
              f"nearest γ = 1: "
              f"{float(opt_mean.sel(gamma=1.0, method='nearest')):.4g} against "
              f"{float(opt_th.sel(gamma=1.0, method='nearest')):.4g}", figure="linear_double_descent"))
    if opt_mean.sizes["gamma"] > 1:
        drop = opt_mean.values[:-1] - opt_mean.values[1:]  # a peak shows as a decrease beyond it
        se = np.sqrt(opt_sem.values[:-1] ** 2 + opt_sem.values[1:] ** 2)
        t = drop / se
        i = int(np.argmax(t))
        out.append(judge(
            "the risk at the optimal ridge λ* has no peak: it does not decrease between consecutive γ (HMRT: "
            "R(λ*) increases monotonically in γ); the largest decrease in standard errors (0 when none), Student-t "
            f"cut at the 0.27 % false-alarm rate shared by the {len(t)} steps", source, theory=0.0,
            measured=max(0.0, float(t[i])), uncertainty=0.0, tolerance=t_cut(S, len(t)),
            where=f"largest decrease from γ = {float(opt_mean['gamma'][i]):g} to "
                  f"{float(opt_mean['gamma'][i + 1]):g}: {float(drop[i]):.3g} ± {float(se[i]):.2g}",
            figure="linear_double_descent"))
    return out


def rf_claims(metrics, theory) -> list[Claim]:
    """Random features against the Mei–Montanari asymptotic curve (largest relative deviation, ± the relative
    standard error there), where it is finite: ridge > 0, or N/n ≤ ½ or ≥ 2 when ridgeless, away from the peak."""
    _, rf_rel = relative_deviations(metrics, theory)
    rf_seeds = metrics["rf_test_error"]
    rf_th = theory["rf_test_error"].sel(rf_ratio=rf_seeds["rf_ratio"])
    rf_sem = rf_seeds.std("rf_seed", ddof=1) / np.sqrt(rf_seeds.sizes["rf_seed"]) / rf_th
    n_rf = int(rf_rel.notnull().sum())
    measured, uncertainty = largest(rf_rel, rf_sem)
    S = rf_seeds.sizes["rf_seed"]
    note = ""
    if measured is not None and measured + uncertainty > RF_FINITE_D:
        note = (f"{S} seeds at d = {metrics.attrs.get('rf_d', '?')}: the largest relative deviation "
                f"{measured:.3g} ± {uncertainty:.2g} "
                + ("straddles" if measured - uncertainty <= RF_FINITE_D else "exceeds")
                + " the 5 % finite-d tolerance")
    return [judge("seed-mean random-features test error follows the Mei–Montanari asymptotic curve (largest relative "
                  "deviation, ± one relative standard error; tolerance 5 %, the finite-d correction at d ≈ 100)",
                  "Mei & Montanari 2019", theory=0.0, measured=measured, uncertainty=uncertainty,
                  tolerance=RF_FINITE_D,
                  where=f"random features at {n_rf} (N/n, λ) away from the ridgeless peak, d = "
                        f"{metrics.attrs.get('rf_d', '?')}, {rf_seeds.sizes['rf_seed']} seeds (max "
                        f"{float(rf_rel.max()):.3g})", note=note, figure="random_features")]


def claims(metrics, theory) -> list[Claim]:
    """HMRT (linear), Mei–Montanari (random features) and the width peak of the network (model-wise double
    descent)."""
    return linear_claims(metrics, theory) + rf_claims(metrics, theory) + width_claims(metrics, theory)


def interpolation_width(metrics, noise: float) -> float:
    """Smallest width whose seed-mean final training error is below half a sample (every label fitted), NaN if
    none: the effective interpolation threshold of the trained networks (Nakkiran et al.'s effective model
    complexity reaching n)."""
    train = metrics["train_error"].sel(label_noise=noise).isel(step=-1)
    mean = train.where(metrics["status"].sel(label_noise=noise) == "ok").mean("seed")
    fitted = mean.values < 0.5 / float(metrics.attrs["network_n_train"])
    return float(metrics["width"].values[np.argmax(fitted)]) if fitted.any() else float("nan")


def width_peak(metrics, noise: float) -> dict:
    """The test-error peak of the network at one label-noise level, from the final clean test error E[seed, h]:
    for every interior width i the excess Δ_i = M_i − max(M_{i−1}, min_{j>i} M_j) of the seed mean M over the
    larger of its left neighbour and the lowest error beyond it; the peak is the width of largest Δ. Its interval:
    the paired per-seed differences (every width of a seed shares its split and noisy labels) against the comparator
    that sets Δ, 95 % Student t over the seeds finite at both widths. Keys: width, excess, half_width, seeds,
    left, beyond (the comparator widths), mean (M over widths)."""
    error = metrics["test_error"].sel(label_noise=noise).isel(step=-1)
    error = error.where(metrics["status"].sel(label_noise=noise) == "ok").transpose("seed", "width").values
    widths = metrics["width"].values
    mean = np.nanmean(error, axis=0)
    H = len(widths)
    best = None
    for i in range(1, H - 1):
        j = i + 1 + int(np.nanargmin(mean[i + 1:]))
        excess = mean[i] - max(mean[i - 1], mean[j])
        if best is None or excess > best[0]:
            best = (excess, i, j)
    if best is None:
        return {"width": math.nan, "excess": math.nan, "half_width": math.nan, "seeds": 0, "mean": mean}
    _, i, j = best
    comparator = i - 1 if mean[i - 1] >= mean[j] else j
    diff = error[:, i] - error[:, comparator]
    excess, half_width, seeds = seed_interval(diff, CONFIDENCE)
    return {"width": float(widths[i]), "excess": excess, "half_width": half_width, "seeds": seeds,
            "left": float(widths[i - 1]), "beyond": float(widths[j]), "comparator": float(widths[comparator]),
            "mean": mean}


def width_claims(metrics, theory) -> list[Claim]:
    """Model-wise double descent at the largest label-noise level (where the papers' peak is strongest): a test-error
    peak above its neighbours (one-sided, on the 95 % seed interval), located at the interpolation threshold
    h* = nC/(d + C) within the grid's resolution there, and beside it the measured smallest fitting width."""
    if "test_error" not in metrics or metrics.sizes.get("width", 0) < 3:
        return []
    source = "Belkin, Hsu, Ma & Mandal 2019; Nakkiran et al. 2019"
    q = float(metrics["label_noise"].max())
    peak = width_peak(metrics, q)
    widths = metrics["width"].values.astype(float)
    h_star = float(theory["interpolation_threshold"])
    h_fit = interpolation_width(metrics, q)
    S = int(metrics.sizes["seed"])
    where = (f"label noise q = {q:g}, widths {[int(w) for w in widths]}, {S} seeds; peak at h = {peak['width']:g}"
             + (f" against the larger of h = {peak['left']:g} (left) and the lowest beyond, h = {peak['beyond']:g}"
                if peak["seeds"] else "") + f"; h* = {h_star:.3g}, smallest fitting width {h_fit:g}")
    out = [exceeds(
        "the network's clean test error peaks at an interior width: peak minus the larger of its left neighbour and "
        "the lowest error beyond it, paired over seeds (the peak is chosen on the same seed means) > 0 (seed mean ± "
        "95 % Student-t half-width)", source, measured=peak["excess"], uncertainty=peak["half_width"],
        where=where + f"; {peak['seeds']} seeds paired",
        note="" if not np.isfinite(peak["excess"]) or peak["excess"] - peak["half_width"] > 0 else
        f"{peak['seeds']} seeds: the peak's 95 % interval ({peak['excess']:.3g} ± {peak['half_width']:.2g}) reaches "
        "below its neighbours'", figure="width_double_descent")]
    if np.isfinite(peak["width"]):
        i = int(np.flatnonzero(widths == peak["width"])[0])
        resolution = float(max(np.log2(widths[i] / widths[i - 1]), np.log2(widths[i + 1] / widths[i])))
        out.append(judge(
            "the test-error peak sits at the interpolation threshold h* = nC/(d + C), where the parameters h(d + C) "
            "equal the nC fitted values: log2(h_peak/h*), within the grid's resolution at the peak (the larger "
            "log2 spacing to its neighbours)", source, theory=0.0, measured=float(np.log2(peak["width"] / h_star)),
            uncertainty=0.0, tolerance=resolution,
            where=where + (f"; log2(h_peak/h_fit) = {np.log2(peak['width'] / h_fit):.2f}" if np.isfinite(h_fit)
                           else "; no width fits every label"),
            figure="width_double_descent"))
    return out
