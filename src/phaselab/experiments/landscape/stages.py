"""The landscape stages: gradient descent on exact population losses (ReLU, Safran & Shamir 2018; erf committee
gradient flow, Saad & Solla 1995) with the end points classified, and seed ensembles on the digits (Choromanska
et al. 2015)."""

from __future__ import annotations

import numpy as np

from phaselab.experiment import Claim, Run, exceeds, judge
from phaselab.experiments.landscape import (
    BOOTSTRAP,
    COMMITTEE_INIT,
    DIGITS_INIT,
    DIGITS_ORDER,
    DIGITS_SPLIT,
    RELU_INIT,
    CommitteeCell,
    DigitsCell,
    ReluCell,
)

CLASS_ATTRS = {"long_name": "end point: global minimum / spurious minimum / saddle / not converged"}


def make_data(run: Run, data_id: str) -> dict[str, np.ndarray]:
    """One random split of the digits (data id 'digits'): standardised inputs, integer labels."""
    from phaselab import data

    x, labels = data.load_digits_standardised()
    train, test = data.split(len(x), run.exp["digits"]["n_train"], data.rng(run.seed, DIGITS_SPLIT))
    return {"x_train": x[train], "y_train": labels[train], "x_test": x[test], "y_test": labels[test]}


def train(run: Run, cell, arrays):
    if isinstance(cell, ReluCell):
        return _train_relu(run, cell)
    if isinstance(cell, CommitteeCell):
        return _train_committee(run, cell)
    if isinstance(cell, DigitsCell):
        return _train_digits(run, cell, arrays)
    raise TypeError(f"unknown cell {cell!r}")


# ----------------------------------------------------------------------------------------------------- ReLU
def _train_relu(run: Run, cell: ReluCell):
    import xarray as xr

    from phaselab import data
    from phaselab.theory import landscape as L

    cfg = run.exp["relu"]
    k, n, B = cell.k, cell.n, cfg["inits"]
    V = L.teacher(k)
    W0 = cfg["init_scale"] / np.sqrt(k) * data.rng(run.seed, RELU_INIT, k, n).standard_normal((B, n, k))
    lr = cfg["lr_times_n"] / n
    run.log(f"GD on the exact ReLU loss, k = {k}, n = {n}, {B} inits, η = {lr:.4g}, ≤ {cfg['max_steps']} steps")

    def loss(X):
        return L.relu_loss(X, V)

    def grad(X):
        return L.relu_grad(X, V)

    with np.errstate(all="ignore"):
        out = L.descend(loss, grad, W0, lr, cfg["max_steps"], loss_tol=cfg["loss_tol"], grad_tol=cfg["grad_tol"],
                        check_every=100, log=run.log)
        finite = np.isfinite(out["loss"])
        critical = finite & (out["loss"] >= cfg["loss_tol"]) & (out["grad_norm"] < cfg["grad_tol"])
        min_eig = np.full(B, np.nan)
        if critical.any():
            min_eig[critical] = L.min_hessian_eigenvalue(grad, out["X"][critical])
    cls = L.classify(out["loss"], out["grad_norm"], np.nan_to_num(min_eig, nan=-np.inf), loss_tol=cfg["loss_tol"],
                     grad_tol=cfg["grad_tol"], eig_tol=cfg["eig_tol"])
    cls = np.where(finite, cls, "diverged").astype(str)
    counts = {c: int((cls == c).sum()) for c in np.unique(cls)}
    run.log(f"k = {k}, n = {n}: {counts}")
    dims = ("k", "extra", "init")

    def var(values, attrs):
        return (dims, np.asarray(values)[None, None], attrs)

    return xr.Dataset(
        {
            "relu_loss": var(out["loss"], {"long_name": "exact population loss at the end point", "units": "1"}),
            "relu_grad_norm": var(out["grad_norm"], {"long_name": "gradient norm ‖∇F‖ at the end point",
                                                     "units": "1"}),
            "relu_min_eig": var(min_eig, {"long_name": "smallest Hessian eigenvalue at a critical end point of "
                                                       "positive loss (finite differences of the exact gradient)",
                                          "units": "1"}),
            "relu_steps": var(out["steps"], {"long_name": "gradient-descent steps taken", "units": "steps"}),
            "relu_class": var(cls, CLASS_ATTRS),
            "relu_lr": (("k", "extra"), [[lr]], {"long_name": "gradient-descent step η = lr_times_n / n",
                                                 "units": "1"}),
        },
        coords={"k": [k], "extra": [n - k], "init": np.arange(B)},
    )


# ------------------------------------------------------------------------------------------------ committee
def _train_committee(run: Run, cell: CommitteeCell):
    import xarray as xr

    from phaselab import data
    from phaselab.theory import landscape as L

    cfg = run.exp["committee"]
    k, p, B, d = cell.k, cell.p, cfg["inits"], cfg["init_d"]
    gen = data.rng(run.seed, COMMITTEE_INIT, k, p)
    W = gen.standard_normal((B, p, d))
    W_teacher = np.sqrt(d) * np.linalg.qr(gen.standard_normal((d, k)))[0].T
    a0 = L.committee_reduce(W, W_teacher)
    steps = int(np.ceil(cfg["max_tau"] / cfg["dtau"]))
    run.log(f"gradient flow of the erf committee, k = {k}, p = {p}, {B} inits, dτ = {cfg['dtau']}, "
            f"τ ≤ {steps * cfg['dtau']:g}")

    def loss(a):
        return L.committee_risk(a, k)

    def grad(a):
        return L.committee_grad(a, k)

    # da/dτ = −p ∇R: Euler steps of dτ are GD on R with step p dτ; stopping on ‖∇R‖ < grad_tol
    out = L.descend(loss, lambda a: p * grad(a), a0, cfg["dtau"], steps, loss_tol=cfg["loss_tol"],
                    grad_tol=p * cfg["grad_tol"], check_every=cfg["check_every"], log=run.log)
    grad_norm = out["grad_norm"] / p
    critical = (out["loss"] >= cfg["loss_tol"]) & (grad_norm < cfg["grad_tol"])
    min_eig = np.full(B, np.nan)
    if critical.any():
        min_eig[critical] = L.min_hessian_eigenvalue(grad, out["X"][critical], h=1e-6)
    cls = L.classify(out["loss"], grad_norm, np.nan_to_num(min_eig, nan=-np.inf), loss_tol=cfg["loss_tol"],
                     grad_tol=cfg["grad_tol"], eig_tol=cfg["eig_tol"]).astype(str)
    hist = out["history"]
    # the local decay exponent −d ln R / d ln τ over the last factor 2 of the flow: ≈ 0 when stuck
    tau = out["check_steps"] * cfg["dtau"]
    last = np.where(np.isfinite(hist), np.arange(hist.shape[1]), -1).max(1)
    half = np.array([np.searchsorted(tau, tau[i] / 2) for i in last])
    r_end, r_half = hist[np.arange(B), last], hist[np.arange(B), half]
    with np.errstate(all="ignore"):
        exponent = np.where(tau[last] > tau[half], -np.log(r_end / r_half) / np.log(tau[last] / tau[half]), np.nan)
    run.log(f"k = {k}, p = {p}: {({c: int((cls == c).sum()) for c in np.unique(cls)})}")
    dims = ("erf_k", "p_over_k", "erf_init")

    def var(values, attrs):
        return (dims, np.asarray(values)[None, None], attrs)

    return xr.Dataset(
        {
            "erf_risk": (dims + ("tau",), hist[None, None],
                         {"long_name": "population risk R = ½E[(f* − f)²] along the gradient flow (NaN after the "
                                       "flow stopped)", "units": "1"}),
            "erf_final_risk": var(out["loss"], {"long_name": "population risk at the end point", "units": "1"}),
            "erf_grad_norm": var(grad_norm, {"long_name": "gradient norm ‖∇_a R‖ at the end point", "units": "1"}),
            "erf_min_eig": var(min_eig, {"long_name": "smallest Hessian eigenvalue of R at a critical end point of "
                                                      "positive risk", "units": "1"}),
            "erf_tau_end": var(out["steps"] * cfg["dtau"], {"long_name": "flow time at the end point",
                                                            "units": "1"}),
            "erf_decay_exponent": var(exponent, {"long_name": "local decay exponent −d ln R/d ln τ over the last "
                                                              "factor 2 of the flow", "units": "1"}),
            "erf_class": var(cls, CLASS_ATTRS),
        },
        coords={"erf_k": [k], "p_over_k": [p // k], "erf_init": np.arange(B), "tau": tau},
    )


# --------------------------------------------------------------------------------------------------- digits
def _train_digits(run: Run, cell: DigitsCell, arrays: dict):
    import torch
    import xarray as xr
    from torch.func import vmap

    from phaselab import data
    from phaselab.engines.ensemble import train_ensemble
    from phaselab.models import deep_mlp
    from phaselab.vocabulary import STATUS_DIVERGED, STATUS_OK

    cfg, device = run.exp["digits"], run.device
    S, h = cfg["seeds"], cell.width
    x, y = (torch.as_tensor(arrays[k], device=device) for k in ("x_train", "y_train"))
    x_test, y_test = (torch.as_tensor(arrays[k], device=device) for k in ("x_test", "y_test"))
    n, bs = len(x), cfg["batch_size"]
    per_epoch = n // bs
    total = per_epoch * cfg["epochs"]
    seeds = [data.derive_seed(run.seed, DIGITS_INIT, h, s) for s in range(S)]
    params = {k: v.to(device) for k, v in deep_mlp.init_mlp([x.shape[1], h, 10], seeds, "relu",
                                                              dtype=torch.float32).items()}
    orders = torch.as_tensor(np.stack([
        np.concatenate([g.permutation(n)[:per_epoch * bs] for _ in range(cfg["epochs"])])
        for g in (data.rng(run.seed, DIGITS_ORDER, h, s) for s in range(S))]), device=device)

    def batches(step):
        idx = orders[:, step * bs:(step + 1) * bs]
        return x[idx], y[idx]

    def loss(p, batch):
        return deep_mlp.cross_entropy(p, batch, "relu")

    out_fn = vmap(lambda p, xs: deep_mlp.forward(p, xs, "relu"), in_dims=(0, None))

    def evaluate(p):
        res = {}
        for name, (xs, ys) in {"train": (x, y), "test": (x_test, y_test)}.items():
            f = out_fn(p, xs)
            res[f"{name}_loss"] = (torch.logsumexp(f, -1) - f.gather(-1, ys.expand(len(f), -1)[..., None])[..., 0]
                                   ).mean(-1)
            res[f"{name}_error"] = (f.argmax(-1) != ys).float().mean(-1)
        return res

    run.log(f"64-{h}-10 ReLU network, {S} seeds, {cfg['epochs']} epochs of SGD (B = {bs}, η = {cfg['lr']})")
    result = train_ensemble(params, loss, batches, torch.full((S,), float(cfg["lr"])), [0, total], evaluate,
                            batch_in_dims=0, divergence_threshold=cfg["divergence_threshold"], log=run.log_file)
    diverged = result.diverged_step
    run.log(f"done in {result.seconds:.1f}s, {int((diverged >= 0).sum())} diverged")
    names = {"train_loss": "final training cross-entropy", "test_loss": "final test cross-entropy",
             "train_error": "final training error", "test_error": "final test error"}
    return xr.Dataset(
        {f"digits_{k}": (("width", "seed"), result.metrics[k][None, :, -1], {"long_name": v, "units": "1"})
         for k, v in names.items()}
        | {"digits_status": (("width", "seed"), np.where(diverged >= 0, STATUS_DIVERGED, STATUS_OK)[None].astype(str),
                             {"long_name": "member status (ok / diverged)"})},
        coords={"width": [h], "seed": np.arange(S)},
        attrs={"train_seconds": result.seconds},
    )


def collect(run: Run, cells: list):
    import xarray as xr

    exp = run.exp
    ds = xr.merge(cells, join="outer", compat="no_conflicts", combine_attrs="drop_conflicts")
    for name in ("relu_class", "erf_class", "digits_status"):
        ds[name] = ds[name].astype(str)
    ds.attrs = {
        "relu_loss_tol": exp["relu"]["loss_tol"], "relu_grad_tol": exp["relu"]["grad_tol"],
        "relu_eig_tol": exp["relu"]["eig_tol"], "relu_inits": exp["relu"]["inits"],
        "erf_loss_tol": exp["committee"]["loss_tol"], "erf_grad_tol": exp["committee"]["grad_tol"],
        "erf_inits": exp["committee"]["inits"], "erf_init_d": exp["committee"]["init_d"],
        "digits_n_train": exp["digits"]["n_train"], "digits_epochs": exp["digits"]["epochs"],
        "digits_lr": exp["digits"]["lr"], "digits_batch_size": exp["digits"]["batch_size"],
        "digits_bootstrap": exp["digits"]["bootstrap"], "seed_root": run.seed,
    }
    return ds


# --------------------------------------------------------------------------------------------------- theory
def _wilson(k, n, z: float = 1.959964):
    k, n = np.asarray(k, float), np.asarray(n, float)
    with np.errstate(invalid="ignore", divide="ignore"):
        p = k / n
        centre = (p + z * z / (2 * n)) / (1 + z * z / n)
        half = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return p, centre - half, centre + half


def _iqr(values: np.ndarray, axis: int = -1) -> np.ndarray:
    q75, q25 = np.nanpercentile(values, [75, 25], axis=axis)
    return q75 - q25


def theory(run: Run, metrics):
    """Class fractions with Wilson intervals; the exact loss of the zero student (ReLU: F(0) = ½Σ_{i,m} κ(v_i, v_m)
    = k/4 + k(k − 1)/(4π); erf: R(0) = 1/(6k)), the value every global minimum beats; the interquartile ranges
    of the final digits losses over seeds with bootstrap standard errors."""
    import xarray as xr

    from phaselab import data
    from phaselab.theory import landscape as L

    out = {}
    for prefix, dims in (("relu", ("k", "extra")), ("erf", ("erf_k", "p_over_k"))):
        cls = metrics[f"{prefix}_class"]
        init = cls.dims[-1]
        n = (cls != "nan").sum(init)
        for c in L.CLASSES:
            key = c.replace(" ", "_")
            frac, lo, hi = _wilson((cls == c).sum(init).transpose(*dims).values, n.transpose(*dims).values)
            out[f"{prefix}_frac_{key}"] = (dims, frac, {"long_name": f"fraction of inits ending at a {c}",
                                                               "units": "1"})
            out[f"{prefix}_frac_{key}_lo"] = (dims, lo, {"long_name": f"95 % Wilson lower bound ({c})",
                                                                "units": "1"})
            out[f"{prefix}_frac_{key}_hi"] = (dims, hi, {"long_name": f"95 % Wilson upper bound ({c})",
                                                                "units": "1"})
        out[f"{prefix}_count"] = (dims, n.transpose(*dims).values, {"long_name": "inits classified", "units": "1"})
    k = metrics["k"].values
    out["relu_zero_loss"] = (("k",), np.array([float(L.relu_loss(np.zeros((1, 1, kk)), L.teacher(kk))[0]) for kk in k]),
                             {"long_name": "exact loss of the zero student F(0) = k/4 + k(k − 1)/(4π)", "units": "1"})
    ek = metrics["erf_k"].values
    out["erf_zero_risk"] = (("erf_k",), 1.0 / (6.0 * ek), {"long_name": "risk of the zero student R = 1/(6k)",
                                                           "units": "1"})
    ok = metrics["digits_status"] == "ok"
    B = int(metrics.attrs.get("digits_bootstrap", 400))
    gen = data.rng(int(metrics.attrs.get("seed_root", 0)), BOOTSTRAP)
    for name in ("train_loss", "test_loss"):
        v = metrics[f"digits_{name}"].where(ok).transpose("width", "seed").values
        iqr = _iqr(v)
        idx = gen.integers(0, v.shape[1], (B, v.shape[1]))
        boot = np.stack([_iqr(v[:, i]) for i in idx])  # (B, width)
        out[f"digits_{name}_iqr"] = (("width",), iqr, {"long_name": f"interquartile range over seeds of the "
                                                                    f"{name.replace('_', ' ')}", "units": "1"})
        out[f"digits_{name}_iqr_se"] = (("width",), boot.std(0, ddof=1),
                                        {"long_name": "bootstrap standard error of that interquartile range",
                                         "units": "1"})
        out[f"digits_{name}_log_iqr_boot"] = (("boot", "width"), np.log(boot),
                                              {"long_name": "log interquartile range, bootstrap resamples",
                                               "units": "1"})
    return xr.Dataset(out, coords={"k": k, "extra": metrics["extra"].values, "erf_k": ek,
                                   "p_over_k": metrics["p_over_k"].values, "width": metrics["width"].values,
                                   "boot": np.arange(B)},
                      attrs={"references": "Safran & Shamir 2018; Saad & Solla 1995; Choromanska et al. 2015; "
                                           "shared/reference/theory.md sections 1 and 9"})


# --------------------------------------------------------------------------------------------------- claims
# One-sided statements ("grows", "shrinks", "at most") X > 0 are judged on X ± SIGMAS standard errors (binomial or
# bootstrap; phaselab.experiment.exceeds): the claim agrees when X > 2 SE (true at the ~97.7 % one-sided level),
# disagrees when X < −2 SE (the opposite sign at the same level), and is inconclusive in between. Fixed before looking
# at any result.
SIGMAS = 2.0
# "drastically reduce" (Safran & Shamir 2018) read as: two extra units cut the spurious fraction to < 1/4 of n = k
# (at the largest k of the grid, where there are most spurious minima to remove).
REDUCTION = 0.25
# "reach zero risk from random inits": every init but a resolution-limited few; with tens of inits the Wilson
# interval of 100 % reaches ~ 0.9, so 0.1 is the smallest tolerance the quick config can resolve.
ALL_TOLERANCE = 0.1


def _one_sided(text, source, value, se, where):
    """The claim value > 0, judged on value ± SIGMAS standard errors (see above); inconclusive without a positive
    standard error."""
    if value is None or se is None or not np.isfinite(value) or not np.isfinite(se) or se <= 0:
        return exceeds(text, source, measured=value, uncertainty=None, where=where)
    return exceeds(text + f" (X ± {SIGMAS:g} standard errors)", source, measured=float(value),
                   uncertainty=SIGMAS * float(se),
                   where=where + f"; X = {float(value):.4g}, SE = {float(se):.3g}, X/SE = {value / se:.3g}")


def claims(metrics, theory) -> list[Claim]:
    out = []
    ss = "Safran & Shamir, ICML 2018"
    spur = theory["relu_frac_spurious_minimum"]
    count = theory["relu_count"]
    se = np.sqrt(spur * (1 - spur) / count).clip(min=1.0 / count)  # a 0 or 1 fraction: one run's worth
    ks = [int(k) for k in spur["k"].values]
    f0 = spur.sel(extra=0)
    kmin, kmax = ks[0], ks[-1]
    if kmax > kmin:
        value = float(f0.sel(k=kmax) - f0.sel(k=kmin))  # X > 0: grows
        unc = float(np.hypot(se.sel(extra=0, k=kmin), se.sel(extra=0, k=kmax)))
    else:
        value = unc = None
    out.append(_one_sided(
        "at n = k the fraction of GD runs ending in a spurious minimum grows with k: X = fraction at the "
        "largest k − fraction at the smallest > 0", ss, value, unc,
        f"n = k, {int(count.max())} inits each: " + ", ".join(f"k={k}: {float(f0.sel(k=k)):.3g}" for k in ks)))
    if 2 in metrics["extra"].values:
        f2 = spur.sel(extra=2)
        value = float(REDUCTION * f0.sel(k=kmax) - f2.sel(k=kmax))
        unc = float(np.hypot(se.sel(extra=2, k=kmax), REDUCTION * se.sel(extra=0, k=kmax)))
        where = "n = k + 2 against n = k: " + ", ".join(
            f"k={k}: {float(f2.sel(k=k)):.3g} vs {float(f0.sel(k=k)):.3g}" for k in ks)
    else:
        value = unc = None
        where = "no n = k + 2 in the grid"
    out.append(_one_sided(
        f"two extra units drastically reduce spurious minima: at the largest k, X = {REDUCTION:g} × fraction at "
        f"n = k − fraction at n = k + 2 > 0", ss, value, unc, where))
    # the erf committee: p = k always reaches zero risk; over-parameterised students are never stuck
    g = theory["erf_frac_global_minimum"]
    cnt = theory["erf_count"]
    k1 = int((g.sel(p_over_k=1) * cnt.sel(p_over_k=1)).sum())
    n1 = int(cnt.sel(p_over_k=1).sum())
    frac, lo, _ = _wilson(k1, n1)
    out.append(judge(
        "erf soft committees with p = k reach zero population risk from every random init under gradient flow "
        "(fraction pooled over k, ± Wilson half-width below)", "Saad & Solla 1995; Safran & Shamir 2018 (contrast)",
        theory=1.0, measured=float(frac), uncertainty=float(frac - lo), tolerance=ALL_TOLERANCE,
        where=f"{k1} of {n1} inits below R = {metrics.attrs.get('erf_loss_tol')}"))
    over = metrics["p_over_k"] > 1
    if bool(over.any()):
        cls = metrics["erf_class"].where(over, "nan")
        stuck = int(((cls == "spurious minimum") | (cls == "saddle")).sum())
        total = int((cls != "nan").sum())
        frac, _, hi = _wilson(stuck, total)
        desc = int((cls == "not converged").sum())
        out.append(judge(
            "over-parameterised erf committees (p = m k, m > 1) are not stuck: no init ends at a critical point of "
            "positive risk (fraction pooled, ± Wilson half-width above)", "Saad & Solla 1995; Goldt et al. 2019",
            theory=0.0, measured=float(frac), uncertainty=float(hi - frac), tolerance=ALL_TOLERANCE,
            where=f"{stuck} stuck, {desc} still descending, {total - stuck - desc} at zero risk, of {total}"))
    # Choromanska et al.: the spread of the final losses shrinks with width
    widths = metrics["width"].values
    for name in ("train_loss", "test_loss"):
        boot = theory[f"digits_{name}_log_iqr_boot"]
        diff = boot.isel(width=0) - boot.isel(width=-1)
        iqr = theory[f"digits_{name}_iqr"]
        value = float(np.log(iqr.isel(width=0) / iqr.isel(width=-1)))
        out.append(_one_sided(
            f"the interquartile range over seeds of the final {name.replace('_', ' ')} shrinks with width: "
            f"X = log of the IQR ratio narrowest/widest width > 0 (bootstrap SE)",
            "Choromanska, Henaff, Mathieu, Ben Arous & LeCun, AISTATS 2015", value, float(diff.std(ddof=1)),
            "IQR at width " + ", ".join(f"{int(w)}: {float(v):.3g}" for w, v in zip(widths, iqr.values))))
    return out
