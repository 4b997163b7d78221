"""The capacity experiment's stages: random dichotomies solved by the maximal-stability solver, Cover's and
Gardner's theory, and Cover's exact separable fraction as the claims."""

from __future__ import annotations

import numpy as np

from phaselab.experiment import Claim, Run, judge
from phaselab.experiments.capacity import DimensionCell
from phaselab.schedules import sizes


def train(run: Run, cell: DimensionCell, data=None):
    """Every (α, trial) problem at one N: draw the patterns, solve each α's trials as one batch."""
    import xarray as xr

    from phaselab import data as datasets
    from phaselab.solvers.perceptron import max_stability

    exp, N = run.exp, cell.N
    alphas, trials = sorted(exp["grid"]["alpha"]), exp["grid"]["trials"]
    run.log(f"{len(alphas)} values of α × {trials} trials")
    fields = {k: [] for k in ("status", "stability_lower", "stability_upper", "converged", "iterations")}
    for P in sizes(N, alphas):
        patterns, labels = datasets.random_dichotomies(N, P, trials, run.seed)
        res = max_stability(patterns, labels, max_iter=exp["solver"]["max_iter"], rtol=exp["solver"]["rtol"],
                            device=run.device, log=run.log_file)
        for k, values in fields.items():
            values.append(getattr(res, k))
    dims = ("alpha", "trial")
    stab = {"units": "1", "long_name": "maximal stability κ* = max_J min_μ y_μ J·ξ_μ/|J|"}
    return xr.Dataset(
        {
            "status": (dims, np.array(fields["status"]).astype(str),
                       {"long_name": "solver verdict (separable / non_separable / undecided)"}),
            "stability_lower": (dims, np.array(fields["stability_lower"]),
                                {**stab, "long_name": "certified lower bound on κ* (achieved by a weight vector); "
                                                      "NaN unless separable"}),
            "stability_upper": (dims, np.array(fields["stability_upper"]),
                                {**stab, "long_name": "certified upper bound on κ*; NaN unless separable"}),
            "converged": (dims, np.array(fields["converged"]).astype(np.int8),
                          {"long_name": "certificate complete (separable: bracket within solver.rtol; "
                                        "non_separable: Gordan certificate)", "units": "1"}),
            "iterations": (dims, np.array(fields["iterations"]), {"long_name": "interior-point iterations",
                                                                  "units": "1"}),
            "patterns": (("alpha",), np.array(sizes(N, alphas)), {"long_name": "number of patterns P = round(αN)",
                                                                  "units": "1"}),
        },
        coords={"alpha": alphas, "trial": np.arange(trials)},
    ).expand_dims(N=[N])


def collect(run: Run, cells: list):
    """One Dataset with dims (N, alpha, trial) and the separable fraction of the decided trials."""
    import xarray as xr

    exp = run.exp
    ds = xr.concat(cells, dim="N", combine_attrs="drop_conflicts").sortby("N")
    ds["fraction_separable"] = (ds["status"] == "separable").sum("trial") / (ds["status"] != "undecided").sum("trial")
    ds["fraction_separable"].attrs.update(long_name="fraction of the decided trials that are separable", units="1")
    ds.attrs = {
        "solver": "batched primal-dual interior-point maximal-stability solver "
                  "(phaselab.solvers.perceptron.max_stability)",
        "solver_rtol": exp["solver"]["rtol"],
        "solver_max_iter": exp["solver"]["max_iter"],
    }
    return ds


def theory(run: Run, metrics):
    """Cover's probability at every measured (N, P) and as curves; Gardner's α_c(κ) and its inverse κ_c(α)."""
    import xarray as xr

    from phaselab.theory import perceptron as tp

    exp, m = run.exp, metrics
    N = m["N"].values
    alpha_curve = np.linspace(0.0, max(float(m["alpha"].max()) * 1.05, 2.5), 401)
    cover_curve = tp.cover_continued(alpha_curve[None, :] * N[:, None], N[:, None])
    kappa_curve = np.linspace(0.0, 2.5, 251)
    return xr.Dataset(
        {
            "cover_probability": (("N", "alpha"), tp.cover_probability(m["patterns"].values, N[:, None]),
                                  {"long_name": "Cover's separable fraction 2^(1−P) Σ_{k<N} C(P−1, k) at the "
                                                "measured P", "units": "1"}),
            "cover_curve": (("N", "alpha_curve"), cover_curve,
                            {"long_name": "Cover's separable fraction, continued to real P = αN", "units": "1"}),
            "cover_limit": (("N", "alpha_curve"), tp.cover_limit(alpha_curve[None, :], N[:, None]),
                            {"long_name": "large-N form Φ(−(α − 2)√(N/2))", "units": "1"}),
            "critical_stability": (("alpha",), tp.gardner_stability(m["alpha"].values),
                                   {"long_name": "Gardner's largest stability κ_c(α) (inverse of α_c(κ))",
                                    "units": "1"}),
            "critical_stability_curve": (("alpha_curve",), tp.gardner_stability(alpha_curve),
                                         {"long_name": "Gardner's largest stability κ_c(α)", "units": "1"}),
            "capacity_curve": (("kappa_curve",), tp.gardner_capacity(kappa_curve),
                               {"long_name": "Gardner's capacity α_c(κ)", "units": "1"}),
            "capacity": (("kappa",), tp.gardner_capacity(np.asarray(exp["theory"]["kappa"], dtype=float)),
                         {"long_name": "Gardner's capacity α_c(κ) at the stabilities of theory.kappa", "units": "1"}),
        },
        coords={"N": m["N"], "alpha": m["alpha"],
                "alpha_curve": ("alpha_curve", alpha_curve, {"long_name": "load α = P/N", "units": "1"}),
                "kappa_curve": ("kappa_curve", kappa_curve, {"long_name": "stability κ", "units": "1"}),
                "kappa": ("kappa", np.asarray(exp["theory"]["kappa"], dtype=float),
                          {"long_name": "stability threshold κ", "units": "1"})},
        attrs={"critical_load": 2.0},
    )


def storable(metrics, kappa: float, status: np.ndarray):
    """(storable, decided) trials at stability κ of one N: κ* ≥ κ certified by the solver's bracket (yes), or
    certainly not (non-separable, or separable with κ* ≤ upper bound < κ); a bracket that straddles κ is undecided."""
    lower = np.nan_to_num(metrics["stability_lower"].values, nan=-np.inf)
    upper = np.nan_to_num(metrics["stability_upper"].values, nan=-np.inf)
    yes = (status == "separable") & (lower >= kappa)
    no = (status == "non_separable") | ((status == "separable") & (upper < kappa))
    return yes, yes | no


# The Cover claims compare counts of separable pattern sets with Cover's theorem, exact at every finite N and P for
# Gaussian patterns (points in general position): no finite-size allowance, only the binomial spread of a count of
# n decided trials, SE = √(p(1 − p)/n) at Cover's p. Tolerances are fixed a priori in units of that SE; the same
# rule (uncertainty 1 SE, tolerance 3 SE: agrees within 2 SE, disagrees beyond 4 SE) for the fitted loads.
POOLED_SIGMAS = 3.0  # pooled claims: 3 SE, the usual 3σ level (two-sided false alarm 0.27 % for one statistic)
FAMILY_ALPHA = 0.0027  # largest-deviation claims: the same 0.27 % family-wise, Bonferroni-split over the K points
# (exact binomial tails there: with 64 trials at p = 0.998 the normal z of one failure is already 3.9)


def claims(metrics, theory) -> list[Claim]:
    """Cover's exact separable fraction (pooled; largest deviation over every point; the same at each N), the
    exact ½ at α = 2 and the crossing load fitted to the curves, and Gardner's α_c(κ) at each κ of theory.kappa."""
    status = metrics["status"]
    k = (status == "separable").sum("trial").values.astype(float)
    n = (status != "undecided").sum("trial").values.astype(float)
    p = theory["cover_probability"].transpose(*metrics["fraction_separable"].dims).values
    undecided = int((status == "undecided").sum())
    has = n > 0
    total = float(n[has].sum())
    where = (f"{int(has.sum())} (N, P) points, {int(total)} decided trials"
             + (f", {undecided} undecided left out" if undecided else ""))
    out = []
    if total:
        se = float(np.sqrt((n * p * (1 - p))[has].sum())) / total
        z = abs(float(k[has].sum() - (n * p)[has].sum())) / total / se
        out.append(judge(
            "fraction of separable random pattern sets, pooled over every (N, P), equals Cover's exact count "
            "(tolerance 3 binomial SE)",
            "Cover 1965", theory=float((n * p)[has].sum()) / total, measured=float(k[has].sum()) / total,
            uncertainty=se, tolerance=POOLED_SIGMAS * se, where=where,
            note="" if z <= POOLED_SIGMAS - 1 else f"the pooled count is {z:.1f} binomial SE from Cover's expectation"
            + (": between the 2 SE that agree and the 4 SE that disagree, more trials would decide"
               if z <= POOLED_SIGMAS + 1 else "")))
    else:
        out.append(judge("fraction of separable random pattern sets equals Cover's exact count", "Cover 1965",
                         theory=None, measured=None, tolerance=0.0, where="no decided trial"))
    Ns, P = metrics["N"].values, metrics["patterns"].values
    worst = _largest_deviation(k, n, p, Ns, P)
    if worst is not None:
        out.append(worst)
    for i, N in enumerate(Ns):
        claim = _largest_deviation(k[i:i + 1], n[i:i + 1], p[i:i + 1], Ns[i:i + 1], P[i:i + 1], at_N=int(N))
        if claim is not None:
            out.append(claim)
    out.append(_one_half_at_twice_n(k, n, Ns, P))
    out.append(_crossing_load(k, n, Ns, P))
    out += [_gardner_capacity(metrics, theory, float(kappa), float(ac))
            for kappa, ac in zip(theory["kappa"].values, theory["capacity"].values)]
    return out


def _largest_deviation(k, n, p, Ns, P, at_N: int | None = None) -> Claim | None:
    """The single worst (N, P) point by its exact two-sided binomial tail probability under Cover's p, judged
    against the exact binomial acceptance interval of its count at the Bonferroni level FAMILY_ALPHA/K (K: the
    points where 0 < p < 1; where p is 0 or 1 the outcome is certain and any mismatch falls outside). Exact
    tails, not the normal approximation, which exaggerates a deviation where n·min(p, 1 − p) is below 1. The
    binomial spread is in the tolerance (the distance from p to the interval's end on the deviation's side), so
    the uncertainty is 0. None when no point is compared."""
    from scipy.stats import binom

    has = n > 0
    open_ = has & (p > 0) & (p < 1)
    K = int(open_.sum())
    if not has.any() or (K == 0 and not (has & (k != n * p)).any()):
        return None
    level = FAMILY_ALPHA / max(K, 1)
    nn = np.where(has, n, 1.0)
    tail = np.where(has, np.minimum(binom.cdf(k, nn, p), binom.sf(k - 1, nn, p)), np.inf)  # one-sided tails
    at = np.unravel_index(int(np.argmin(tail)), tail.shape)
    n_at, p_at, k_at = int(n[at]), float(p[at]), float(k[at])
    counts = np.arange(n_at + 1)
    inside = (binom.cdf(counts, n_at, p_at) > level / 2) & (binom.sf(counts - 1, n_at, p_at) > level / 2)
    lo, hi = (counts[inside].min(), counts[inside].max()) if inside.any() else (n_at * p_at, n_at * p_at)
    tol = hi / n_at - p_at if k_at / n_at >= p_at else p_at - lo / n_at
    N_at, P_at = int(Ns[at[0]]), int(P[at])
    scope = "every (N, P)" if at_N is None else f"N = {at_N} at every P"
    text = (f"separable fraction at {scope} equals Cover's exact count (the point of the smallest exact binomial "
            "tail probability, tolerance its exact binomial acceptance interval at a 0.27 % family-wise level, "
            "Bonferroni-split over the points with 0 < p < 1)")
    return judge(text, "Cover 1965", theory=p_at, measured=k_at / n_at, uncertainty=0.0, tolerance=max(tol, 0.0),
                 where=f"{K} points with 0 < p < 1; at N = {N_at}, P = {P_at}: {int(k_at)} of {n_at} separable, "
                       f"acceptance {int(lo)}–{int(hi)} at level {level:.2g}, tail probability "
                       f"{float(tail[at]):.2g}", figure="capacity_curves")


def _one_half_at_twice_n(k, n, Ns, P) -> Claim:
    """P(separable) = ½ exactly at P = 2N (Cover's count is symmetric there), pooled over the N that have it."""
    at = (P == 2 * Ns[:, None]) & (n > 0)
    text = ("the separable fraction is exactly ½ at α = 2 (P = 2N) at every finite N, pooled over N "
            "(tolerance 3 binomial SE, SE = ½/√n)")
    if not at.any():
        return judge(text, "Cover 1965", theory=0.5, measured=None, tolerance=0.0,
                     where="no point with P = 2N in the grid", note="the grid has no α = 2 point, P = 2N")
    kk, nn = float(k[at].sum()), float(n[at].sum())
    se = 0.5 / np.sqrt(nn)
    return judge(text, "Cover 1965", theory=0.5, measured=kk / nn, uncertainty=se, tolerance=POOLED_SIGMAS * se,
                 where=f"N = {', '.join(str(int(N)) for N in Ns[at.any(1)])}: {int(nn)} decided trials at P = 2N",
                 figure="capacity_curves")


def _crossing_load(k, n, Ns, P) -> Claim:
    """The load where the measured separable fraction crosses ½, fitted as Cover's exact curve rescaled in α,
    P(sep) = I_½(2P/a − N, N): one parameter a over every N by maximum likelihood, SE from the Fisher information."""
    from scipy import optimize

    from phaselab.theory import perceptron as tp

    has = n > 0
    Nb = np.broadcast_to(Ns[:, None], P.shape)[has]
    Pb, kb, nb = P[has].astype(float), k[has], n[has]
    text = ("the separable fraction crosses ½ at α = 2: Cover's exact curve rescaled in α, I_½(2P/a − N, N), "
            "fitted to every N by maximum likelihood, a against 2 (tolerance 3 SE of a, Fisher information)")

    def prob(a):
        return np.clip(tp.cover_continued(Pb * 2.0 / a, Nb), 1e-300, 1 - 1e-16)

    def nll(a):
        q = prob(a)
        return -float(np.sum(kb * np.log(q) + (nb - kb) * np.log1p(-q)))

    informative = (kb > 0) & (kb < nb)
    if not informative.any() and not ((kb == 0).any() and (kb == nb).any()):
        return judge(text, "Cover 1965", theory=2.0, measured=None, tolerance=0.0,
                     where="no point where the fraction is between 0 and 1", note="the grid misses the transition")
    a = float(optimize.minimize_scalar(nll, bounds=(1.0, 3.0), method="bounded",
                                       options={"xatol": 1e-10}).x)
    h = 1e-5
    dp = (prob(a + h) - prob(a - h)) / (2 * h)
    q = prob(a)
    info = float(np.sum(nb * dp * dp / (q * (1 - q))))
    se = 1.0 / np.sqrt(info) if info > 0 else float("nan")
    z = abs(a - 2.0) / se
    note = ""
    if z > POOLED_SIGMAS - 1:
        note = f"the fitted load is {z:.1f} SE from 2, " + (
            "between the 2 SE that agree and the 4 SE that disagree: more trials would decide"
            if z <= POOLED_SIGMAS + 1 else "beyond the 4 SE that disagree")
    return judge(text, "Cover 1965", theory=2.0, measured=a, uncertainty=se, tolerance=POOLED_SIGMAS * se,
                 where=f"N = {', '.join(str(int(N)) for N in Ns)}; {int(nb.sum())} decided trials", note=note,
                 figure="capacity_curves")


def _gardner_capacity(metrics, theory, kappa: float, alpha_c: float) -> Claim:
    """Measured capacity at stability κ: at each N the load α_½(κ, N) where half the pattern sets are storable at
    stability κ (probit fit, :func:`phaselab.theory.perceptron.half_load`), extrapolated to N → ∞ linearly in 1/N
    (weighted least squares, SE propagated from the fits), against Gardner's α_c(κ)."""
    from phaselab.plots import decoded
    from phaselab.theory import perceptron as tp

    status = decoded(metrics)
    Ns = metrics["N"].values
    fits = []
    for i, N in enumerate(Ns):
        yes, decided = storable(metrics.isel(N=i), kappa, status[i])
        a, se = tp.half_load(metrics["patterns"].values[i] / N, yes.sum(-1), decided.sum(-1))
        if np.isfinite(a) and np.isfinite(se) and se > 0:
            fits.append((int(N), a, se))
    text = (f"Gardner's capacity at stability κ = {kappa:g}: the load where half the pattern sets are storable at "
            "stability κ, fitted at each N (probit) and extrapolated linearly in 1/N, equals α_c(κ) = "
            "[∫_{−κ}^∞ Dt (t + κ)²]^(−1) (tolerance 3 SE of the extrapolation)")
    source = "Gardner 1988"
    if not fits:
        return judge(text, source, theory=alpha_c, measured=None, tolerance=0.0,
                     where=f"N = {', '.join(str(int(N)) for N in Ns)}: no N whose storable fraction crosses ½ "
                           "inside the α grid", note="the α grid does not reach the transition at this κ",
                     figure="gardner_capacity")
    listed = "; ".join(f"N = {N}: {a:.3f} ± {se:.3f}" for N, a, se in fits)
    if len(fits) == 1:
        N, a, se = fits[0]
        return judge(text, source, theory=alpha_c, measured=a, uncertainty=se, tolerance=POOLED_SIGMAS * se,
                     where=listed + " (one N: no extrapolation)",
                     note="" if abs(a - alpha_c) + se <= POOLED_SIGMAS * se else
                     f"a single N = {N}: its finite-size shift is not extrapolated away", figure="gardner_capacity")
    x = np.array([1.0 / f[0] for f in fits])
    y = np.array([f[1] for f in fits])
    w = np.array([1.0 / f[2] ** 2 for f in fits])
    X = np.stack([np.ones_like(x), x], 1)
    cov = np.linalg.inv(X.T @ (w[:, None] * X))
    a_inf = float((cov @ X.T @ (w * y))[0])
    se = float(np.sqrt(cov[0, 0]))
    note = ""
    if abs(a_inf - alpha_c) + se > POOLED_SIGMAS * se:
        note = (f"the extrapolated load is {abs(a_inf - alpha_c) / se:.1f} SE from α_c(κ); the 1/N extrapolation "
                f"from {len(fits)} N amplifies the per-N errors, and where the α grid is coarse around α_c(κ) a fit "
                "is only the bracket of two neighbouring loads (SE width/√12)")
    return judge(text, source, theory=alpha_c, measured=a_inf, uncertainty=se, tolerance=POOLED_SIGMAS * se,
                 where=listed, note=note, figure="gardner_capacity")
