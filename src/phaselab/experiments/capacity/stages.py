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
    from scipy import special

    from phaselab.theory import perceptron as tp

    exp, m = run.exp, metrics
    N = m["N"].values
    alpha_curve = np.linspace(0.0, max(float(m["alpha"].max()) * 1.05, 2.5), 401)
    # Cover's count continued to real P: Prob[Bin(P−1, ½) ≤ N−1] = I_½(P − N, N) for P > N (regularised beta)
    P_curve = alpha_curve[None, :] * N[:, None]
    cover_curve = np.where(P_curve <= N[:, None], 1.0,
                           special.betainc(np.maximum(P_curve - N[:, None], 1e-300), N[:, None], 0.5))
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


# Both claims compare counts of separable pattern sets with Cover's theorem, exact at every finite N and P for
# Gaussian patterns (points in general position): no finite-size allowance, only the binomial spread of a count of
# n decided trials, SE = √(p(1 − p)/n) at Cover's p. Tolerances are fixed a priori in units of that SE.
POOLED_SIGMAS = 3.0  # pooled claim: 3 SE, the usual 3σ level (two-sided false alarm 0.27 % for one statistic)
FAMILY_ALPHA = 0.0027  # largest-deviation claim: the same 0.27 % family-wise, Bonferroni-split over the K points


def claims(metrics, theory) -> list[Claim]:
    """Measured separable fraction against Cover's exact probability at the measured P: pooled over every
    (N, P), and at the point of the largest deviation in units of its binomial standard error."""
    from scipy.stats import norm

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
        out.append(judge(
            "fraction of separable random pattern sets, pooled over every (N, P), equals Cover's exact count",
            "Cover 1965", theory=float((n * p)[has].sum()) / total, measured=float(k[has].sum()) / total,
            uncertainty=se, tolerance=POOLED_SIGMAS * se, where=where))
    else:
        out.append(judge("fraction of separable random pattern sets equals Cover's exact count", "Cover 1965",
                         theory=None, measured=None, tolerance=0.0, where="no decided trial"))
    # the single worst point in units of its binomial SE, among the points where Cover's p is strictly between 0
    # and 1; where p is 0 or 1 the outcome is certain (SE 0) and any mismatch disagrees outright (tolerance 0)
    open_ = has & (p > 0) & (p < 1)
    certain = has & ~open_ & (k != n * p)
    K = int(open_.sum())
    nn = np.where(has, n, 1.0)
    se_i = np.sqrt(p * (1 - p) / nn)
    if certain.any():
        at = np.unravel_index(int(np.argmax(certain)), certain.shape)
        z_crit, note = 0.0, f"{int(certain.sum())} points where Cover's p is 0 or 1 and the count differs"
    elif K:
        z = np.where(open_, np.abs(k / nn - p) / np.where(open_, se_i, 1.0), -1.0)
        at = np.unravel_index(int(np.argmax(z)), z.shape)
        z_crit = float(norm.isf(FAMILY_ALPHA / (2 * K)))
        note = f"|z| = {float(z[at]):.2f}, Bonferroni bound {z_crit:.2f} SE"
    else:
        return out
    N_at, P_at = int(metrics["N"].values[at[0]]), int(metrics["patterns"].values[at])
    out.append(judge(
        "separable fraction at every (N, P) equals Cover's exact count (largest deviation, in binomial SE)",
        "Cover 1965", theory=float(p[at]), measured=float(k[at] / n[at]), uncertainty=float(se_i[at]),
        tolerance=z_crit * float(se_i[at]),
        where=f"{K} points with 0 < p < 1; at N = {N_at}, P = {P_at} ({int(n[at])} decided trials): " + note))
    return out
