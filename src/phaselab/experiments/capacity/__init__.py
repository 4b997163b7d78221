"""Storage capacity of the perceptron: Cover's counting theorem (1965) and Gardner's capacity at stability κ (1988).

Random patterns ξ^μ ~ N(0, I_N) with random labels ±1, α = P/N with P = round(αN). Every trial is solved by the
batched maximal-stability solver (:func:`phaselab.solvers.perceptron.max_stability`), which certifies each trial as
separable (a weight vector storing every pattern) or non-separable (Gordan's alternative: a convex combination of
the signed patterns equal to zero), or leaves it undecided within its iteration budget, and brackets the largest
stability κ* of the separable ones. Cells: one per N, its α × trial problems solved as batches of trials.
"""

from __future__ import annotations

import sys
import time

import numpy as np

from phaselab.config import check_grid_axis, fail

FIGURES = ("capacity_curves", "gardner_capacity")


def sizes(N: int, alphas) -> list[int]:
    """P = round(αN) for each α."""
    return [max(1, round(a * N)) for a in alphas]


def check(key: str, exp: dict) -> None:
    grid = exp["grid"]
    for axis in ("N", "alpha"):
        check_grid_axis(f"{key}.grid.{axis}", grid[axis])
    check_grid_axis(f"{key}.theory.kappa", exp["theory"]["kappa"])
    for N in grid["N"]:
        P = sizes(N, grid["alpha"])
        if len(set(P)) != len(P):
            fail(f"{key}.grid.alpha", grid["alpha"], f"two values give the same P = round(αN) at N = {N}")


def cells(exp: dict) -> list[dict]:
    return [{"id": f"n{N}", "data": None, "N": N} for N in sorted(exp["grid"]["N"])]


def make_data(config: dict, name: str, data_id: str, out: str) -> None:  # cells draw their own patterns
    raise RuntimeError(f"experiment {name} ({config['experiments'][name]['type']}) has no data files")


def train_cell(config: dict, name: str, cell_id: str, data_path, out: str, threads: int = 1, log=sys.stderr) -> None:
    """Every (α, trial) problem at one N: draw the patterns, solve each α's trials as one batch, write the cell."""
    import xarray as xr

    from phaselab import data
    from phaselab.metrics import write_netcdf
    from phaselab.solvers.perceptron import max_stability
    from phaselab.device import pick_device, set_threads

    set_threads(threads)
    exp = config["experiments"][name]
    N = next(c for c in cells(exp) if c["id"] == cell_id)["N"]
    alphas, trials = sorted(exp["grid"]["alpha"]), exp["grid"]["trials"]
    device = pick_device(config["device"])
    print(f"[train] experiment {name}, cell {cell_id}: N = {N}, {len(alphas)} values of α × {trials} trials, "
          f"device {device}", file=log, flush=True)
    started = time.perf_counter()
    fields = {k: [] for k in ("status", "stability_lower", "stability_upper", "converged", "iterations")}
    for a, P in zip(alphas, sizes(N, alphas)):
        patterns, labels = data.random_dichotomies(N, P, trials, config["seed"])
        res = max_stability(patterns, labels, max_iter=exp["solver"]["max_iter"], rtol=exp["solver"]["rtol"],
                            device=device, log=log)
        for k, values in fields.items():
            values.append(getattr(res, k))
    seconds = time.perf_counter() - started
    print(f"[train] done in {seconds:.1f}s", file=log, flush=True)
    dims = ("alpha", "trial")
    stab = {"units": "1", "long_name": "maximal stability κ* = max_J min_μ y_μ J·ξ_μ/|J|"}
    ds = xr.Dataset(
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
        attrs={"cell": cell_id, "device": str(device), "train_seconds": seconds, "threads": threads},
    ).expand_dims(N=[N])
    write_netcdf(ds, out)


def collect(config: dict, name: str, cell_paths: list[str], out: str) -> None:
    """One Dataset with dims (N, alpha, trial)."""
    import xarray as xr

    from phaselab.metrics import open_netcdf, provenance, write_netcdf

    exp = config["experiments"][name]
    parts = [open_netcdf(p) for p in cell_paths]
    devices = sorted({p.attrs["device"] for p in parts})
    ds = xr.concat(parts, dim="N", combine_attrs="drop_conflicts").sortby("N")
    ds["fraction_separable"] = (ds["status"] == "separable").sum("trial") / (ds["status"] != "undecided").sum("trial")
    ds["fraction_separable"].attrs.update(long_name="fraction of the decided trials that are separable", units="1")
    for var, long_name in [("N", "input dimension N"), ("alpha", "load α = P/N (nominal; P = round(αN))"),
                           ("trial", "trial index (one random pattern set each)")]:
        ds[var].attrs.update(long_name=long_name, units="1")
    ds.attrs = {
        "title": f"phaselab experiment {name}: perceptron storage capacity (Cover 1965, Gardner 1988)",
        "experiment": name,
        "experiment_type": exp["type"],
        "references": "Cover 1965, IEEE Trans. Electron. Comput. 14, 326; Gardner 1988, J. Phys. A 21, 257",
        "solver": "batched primal-dual interior-point maximal-stability solver (phaselab.solvers.perceptron.max_stability)",
        "solver_rtol": exp["solver"]["rtol"],
        "solver_max_iter": exp["solver"]["max_iter"],
        "train_seconds": float(sum(p.attrs["train_seconds"] for p in parts)),
        **provenance(config, ",".join(devices)),
    }
    write_netcdf(ds, out)


def theory(config: dict, name: str, metrics_path: str, out: str) -> None:
    """Cover's probability at every measured (N, P) and as curves; Gardner's α_c(κ) and its inverse κ_c(α)."""
    import xarray as xr
    from scipy import special

    from phaselab.metrics import open_netcdf, write_netcdf
    from phaselab.theory import perceptron as tp

    exp = config["experiments"][name]
    m = open_netcdf(metrics_path)
    N = m["N"].values
    alpha_curve = np.linspace(0.0, max(float(m["alpha"].max()) * 1.05, 2.5), 401)
    # Cover's count continued to real P: Prob[Bin(P−1, ½) ≤ N−1] = I_½(P − N, N) for P > N (regularised beta)
    P_curve = alpha_curve[None, :] * N[:, None]
    cover_curve = np.where(P_curve <= N[:, None], 1.0,
                           special.betainc(np.maximum(P_curve - N[:, None], 1e-300), N[:, None], 0.5))
    kappa_curve = np.linspace(0.0, 2.5, 251)
    ds = xr.Dataset(
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
        attrs={"critical_load": 2.0, "references": "Cover 1965; Gardner 1988"},
    )
    write_netcdf(ds, out)


def figure(figure_name: str, metrics, theory_ds):
    from phaselab.plots import perceptron as plots

    return getattr(plots, figure_name)(metrics, theory_ds)
