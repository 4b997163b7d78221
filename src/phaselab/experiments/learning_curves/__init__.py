"""Teacher–student learning curves of the perceptron (Seung, Sompolinsky & Tishby 1992; Engel & Van den Broeck).

A teacher w* ∈ R^N labels Gaussian inputs by sign(w*·x); students learn from P = round(αN) examples, the first P of
one nested stream per seed. Students (each one cell, all seeds and α batched):
- ``hebb``: J = Σ y ξ;
- ``max_stability``: the maximal-stability perceptron (hard-margin SVM), batched interior-point solver;
- ``gibbs``: a draw from the version space, by exact HMC (phaselab.solvers.perceptron.version_space_hmc) started at the
  teacher, averaged over the trajectories after ``gibbs.burn_in``;
- ``online_perceptron``: the perceptron rule, each example once, through ``train.train_ensemble``.
The generalisation error is exact for Gaussian inputs, ε = arccos(R)/π, R the normalised teacher overlap.
A ``binary`` cell enumerates all 2^N binary students at small N (Györgyi 1990's Ising perceptron): the mean ε of
the version space, exact Gibbs learning at that N.
"""

from __future__ import annotations

import sys
import time

import numpy as np

from phaselab.config import check_grid_axis, fail

FIGURES = ("learning_curves",)
STUDENTS = ("hebb", "max_stability", "gibbs", "online_perceptron")
STATUS_OK, STATUS_NOT_CONVERGED = "ok", "not_converged"


def sizes(N: int, alphas) -> list[int]:
    """Training-set sizes P = round(αN)."""
    return [max(1, round(a * N)) for a in sorted(alphas)]


def check(key: str, exp: dict) -> None:
    grid, binary = exp["grid"], exp["binary"]
    check_grid_axis(f"{key}.grid.alpha", grid["alpha"])
    check_grid_axis(f"{key}.binary.alpha", binary["alpha"])
    check_grid_axis(f"{key}.students", exp["students"])
    for k, (N, alphas) in {"grid": (grid["N"], grid["alpha"]), "binary": (binary["N"], binary["alpha"])}.items():
        P = sizes(N, alphas)
        if len(set(P)) != len(P):
            fail(f"{key}.{k}.alpha", alphas, f"two values give the same P = round(αN) at N = {N}")
    if exp["gibbs"]["burn_in"] >= exp["gibbs"]["trajectories"]:
        fail(f"{key}.gibbs.burn_in", exp["gibbs"]["burn_in"],
             f"leaves no sample of the {exp['gibbs']['trajectories']} trajectories")


def cells(exp: dict) -> list[dict]:
    N, Nb = exp["grid"]["N"], exp["binary"]["N"]
    rows = [{"id": s, "data": f"n{N}", "student": s} for s in STUDENTS if s in exp["students"]]
    return rows + [{"id": "binary", "data": f"binary_n{Nb}", "student": "binary"}]


def make_data(config: dict, name: str, data_id: str, out: str) -> None:
    """Teachers and nested input streams for every seed: data ids 'n<N>' (Gaussian teacher), 'binary_n<N>'."""
    from phaselab import data

    exp = config["experiments"][name]
    part = exp["binary"] if data_id.startswith("binary_") else exp["grid"]
    P_max = max(sizes(part["N"], part["alpha"]))
    data.save_npz_atomic(out, **data.perceptron_teacher_student(part["N"], P_max, part["seeds"], config["seed"],
                                                               binary=data_id.startswith("binary_")))


def train_cell(config: dict, name: str, cell_id: str, data_path: str, out: str, threads: int = 1,
               log=sys.stderr) -> None:
    """One student at every α and seed (or the binary enumeration); writes the cell's Dataset."""
    import torch
    import xarray as xr

    from phaselab import data
    from phaselab.solvers import perceptron
    from phaselab.metrics import write_netcdf
    from phaselab.theory.perceptron import generalization_error
    from phaselab.device import pick_device, set_threads

    set_threads(threads)
    exp = config["experiments"][name]
    device = pick_device(config["device"])
    arrays = np.load(data_path)
    teacher, inputs, labels = arrays["teacher"], arrays["inputs"], arrays["labels"]
    student = cell_id
    part = exp["binary"] if student == "binary" else exp["grid"]
    N, alphas, n_seeds = part["N"], sorted(part["alpha"]), part["seeds"]
    P = sizes(N, alphas)
    print(f"[train] experiment {name}, student {student}: N = {N}, α ∈ {alphas}, {n_seeds} seeds, device {device}",
          file=log, flush=True)
    started = time.perf_counter()
    attrs = {"cell": cell_id, "device": str(device), "threads": threads}

    if student == "binary":
        eps, count = perceptron.binary_gibbs_exact(teacher, inputs, labels, P, device=device)
        seconds = time.perf_counter() - started
        ds = xr.Dataset(
            {"binary_generalization_error": (("binary_alpha", "binary_seed"), eps,
                                             {"long_name": "mean ε = arccos(R)/π over the binary version space "
                                                           "(exact Gibbs learning)", "units": "1"}),
             "binary_version_space_size": (("binary_alpha", "binary_seed"), count,
                                           {"long_name": "number of binary students consistent with the "
                                                         "training set", "units": "1"})},
            coords={"binary_alpha": alphas, "binary_seed": np.arange(n_seeds)},
            attrs={**attrs, "train_seconds": seconds, "binary_N": N},
        )
        print(f"[train] done in {seconds:.1f}s", file=log, flush=True)
        write_netcdf(ds, out)
        return

    status = np.full((len(P), n_seeds), STATUS_OK, dtype=object)
    extra = {}
    if student == "hebb":
        R = perceptron.overlap(perceptron.hebb(inputs, labels, P), teacher[None])
        eps = generalization_error(R)
    elif student == "online_perceptron":
        R = perceptron.online_perceptron(teacher, inputs, labels, P, device=device, log=log)
        eps = generalization_error(R)
    elif student == "max_stability":
        R = np.empty((len(P), n_seeds))
        for i, p in enumerate(P):
            res = perceptron.max_stability(inputs[:, :p], labels[:, :p], max_iter=exp["solver"]["max_iter"],
                                           rtol=exp["solver"]["rtol"], device=device, log=log)
            R[i] = perceptron.overlap(res.weights, teacher)
            status[i, ~res.converged] = STATUS_NOT_CONVERGED
        eps = generalization_error(R)
    elif student == "gibbs":
        n_traj, burn_in = exp["gibbs"]["trajectories"], exp["gibbs"]["burn_in"]
        trace = np.empty((n_traj, len(P), n_seeds))
        for i, p in enumerate(P):
            gen = torch.Generator().manual_seed(data.derive_seed(config["seed"], data.GIBBS_SAMPLER, N, p))
            samples = perceptron.version_space_hmc(inputs[:, :p], labels[:, :p], teacher, n_traj, gen,
                                                   device=device)
            trace[:, i] = perceptron.overlap(samples, teacher[None])
            print(f"[train] α = {p / N:g}: overlap per trajectory (seed mean) "
                  f"{np.round(trace[:, i].mean(-1), 4).tolist()}", file=log, flush=True)
        R = trace[burn_in:].mean(0)
        eps = generalization_error(trace[burn_in:]).mean(0)  # the version-space average of ε
        extra["gibbs_overlap_trace"] = (("student", "trajectory", "alpha", "seed"), trace[None],
                                        {"long_name": "teacher overlap at the end of each HMC trajectory "
                                                      "(from the teacher; mixing diagnostic)", "units": "1"})
    else:
        raise ValueError(f"unknown student {student!r}")
    seconds = time.perf_counter() - started
    print(f"[train] done in {seconds:.1f}s", file=log, flush=True)
    dims = ("student", "alpha", "seed")
    ds = xr.Dataset(
        {
            "overlap": (dims, np.asarray(R)[None], {"long_name": "normalised teacher–student overlap R",
                                                    "units": "1"}),
            "generalization_error": (dims, np.asarray(eps)[None],
                                     {"long_name": "generalisation error ε = arccos(R)/π", "units": "1"}),
            "status": (dims, status.astype(str)[None], {"long_name": "ok / not_converged (max-stability "
                                                                    "bracket not closed within solver.max_iter)"}),
            **extra,
        },
        coords={"student": [student], "alpha": alphas, "seed": np.arange(n_seeds),
                **({"trajectory": np.arange(exp["gibbs"]["trajectories"])} if extra else {})},
        attrs={**attrs, "train_seconds": seconds, "N": N},
    )
    write_netcdf(ds, out)


def collect(config: dict, name: str, cell_paths: list[str], out: str) -> None:
    """One Dataset: (student, alpha, seed) for the continuous students, (binary_alpha, binary_seed) for binary."""
    import xarray as xr

    from phaselab.metrics import open_netcdf, provenance, write_netcdf

    exp = config["experiments"][name]
    parts = [open_netcdf(p) for p in cell_paths]
    devices = sorted({p.attrs["device"] for p in parts})
    students = [p.assign(status=p["status"].astype(object)).assign_coords(student=p["student"].astype(object))
                for p in parts if "student" in p.dims]  # object strings: no truncation to the first cell's width
    binary = [p for p in parts if "binary_alpha" in p.dims]
    ds = xr.merge([xr.concat(students, dim="student", data_vars="minimal", coords="minimal",
                             combine_attrs="drop_conflicts"), *binary], combine_attrs="drop_conflicts")
    for var, long_name in [("alpha", "α = P/N (nominal; P = round(αN))"), ("seed", "seed index"),
                           ("student", "learning rule"), ("binary_alpha", "α = P/N of the binary students"),
                           ("binary_seed", "seed index (binary teacher)"), ("trajectory", "HMC trajectory")]:
        if var in ds.coords:
            ds[var].attrs.update(long_name=long_name, units="1")
    ds["student"].attrs.pop("units")
    ds["status"] = ds["status"].astype(str)
    ds.attrs = {
        "title": f"phaselab experiment {name}: perceptron teacher–student learning curves",
        "experiment": name,
        "experiment_type": exp["type"],
        "references": "Seung, Sompolinsky & Tishby 1992; Engel & Van den Broeck 2001; Györgyi 1990",
        "N": exp["grid"]["N"],
        "binary_N": exp["binary"]["N"],
        "gibbs_trajectories": exp["gibbs"]["trajectories"],
        "gibbs_burn_in": exp["gibbs"]["burn_in"],
        "solver_rtol": exp["solver"]["rtol"],
        "train_seconds": float(sum(p.attrs["train_seconds"] for p in parts)),
        "train_seconds_by_cell": ", ".join(f"{p.attrs['cell']}: {p.attrs['train_seconds']:.1f} s" for p in parts),
        **provenance(config, ",".join(devices)),
    }
    write_netcdf(ds, out)


THEORY_STUDENTS = ("hebb", "max_stability", "gibbs", "bayes", "online_perceptron")
ONE_OVER_ALPHA = ("max_stability", "gibbs", "bayes")  # ε ≈ c/α for large α


def theory(config: dict, name: str, metrics_path: str, out: str) -> None:
    """ε(α) of every student (N → ∞) on the measured α and on a log-spaced curve; the binary Gibbs curve."""
    import xarray as xr

    from phaselab.metrics import open_netcdf, write_netcdf
    from phaselab.theory import perceptron as tp

    exp = config["experiments"][name]
    m = open_netcdf(metrics_path)
    points = exp["theory"]["points"]
    alpha_curve = np.geomspace(m["alpha"].values.min() / 8, m["alpha"].values.max() * 1.5, points)

    def errors(alpha):
        R_gibbs = tp.gibbs_overlap(alpha)
        return {"hebb": tp.generalization_error(tp.hebb_overlap(alpha)),
                "max_stability": tp.generalization_error(tp.max_stability(alpha)[0]),
                "gibbs": tp.generalization_error(R_gibbs),
                "bayes": tp.generalization_error(np.sqrt(R_gibbs)),
                "online_perceptron": tp.generalization_error(tp.online_perceptron(alpha))}

    large = 1e4
    at_points, on_curve, tail = errors(m["alpha"].values), errors(alpha_curve), errors(np.array([large]))
    alpha_c = tp.binary_transition()
    b_hi = max(float(m["binary_alpha"].max()) if "binary_alpha" in m else 0.0, 2.0)
    binary_curve = np.union1d(np.linspace(0.0, b_hi, points), [alpha_c * (1 - 1e-9), alpha_c])  # the jump at α_c
    eps_attrs = {"long_name": "generalisation error ε = arccos(R)/π, N → ∞ (replica symmetric)", "units": "1"}
    ds = xr.Dataset(
        {
            "generalization_error": (("theory_student", "alpha"), np.stack([at_points[s] for s in THEORY_STUDENTS]),
                                     eps_attrs),
            "generalization_error_curve": (("theory_student", "alpha_curve"),
                                           np.stack([on_curve[s] for s in THEORY_STUDENTS]), eps_attrs),
            "binary_generalization_error_curve": (("binary_alpha_curve",), tp.binary_gibbs_error(binary_curve,
                                                                                                 alpha_c),
                                                  {**eps_attrs, "long_name": "Gibbs ε of the binary perceptron "
                                                                             "(Györgyi 1990; 0 beyond α_c)"}),
            "asymptotic_constant": (("theory_student",), [large * tail[s][0] if s in ONE_OVER_ALPHA else np.nan
                                                          for s in THEORY_STUDENTS],
                                    {"long_name": "α ε at α = 10⁴, the constant of the 1/α tail (NaN for Hebb, "
                                                  "ε ∝ α^(−1/2), and the online perceptron, ε ∝ α^(−1/3))",
                                     "units": "1"}),
        },
        coords={"theory_student": list(THEORY_STUDENTS), "alpha": m["alpha"],
                "alpha_curve": ("alpha_curve", alpha_curve, {"long_name": "α = P/N", "units": "1"}),
                "binary_alpha_curve": ("binary_alpha_curve", binary_curve, {"long_name": "α = P/N", "units": "1"})},
        attrs={"binary_transition": alpha_c, "references": "Engel & Van den Broeck 2001; Györgyi 1990"},
    )
    write_netcdf(ds, out)


def figure(figure_name: str, metrics, theory_ds):
    from phaselab.plots import perceptron as plots

    return getattr(plots, figure_name)(metrics, theory_ds)
