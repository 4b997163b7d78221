"""The workflow's stages as plain functions: each Snakemake script is a thin call of one of these.

data → train (one job per shape cell, all δ × seeds as one batched ensemble) → metrics (one Dataset per
experiment) → theory (ODE curves, phases) → figures.
"""

from __future__ import annotations

import sys

import numpy as np

from phaselab import config as cfg
from phaselab import data


def make_data(config: dict, experiment: str, d: int, out: str) -> None:
    """Teachers and held-out test sets of every seed at dimension d, saved as .npz."""
    exp = config["experiments"][experiment]
    arrays = data.teacher_student_data(
        d, exp["teacher"]["k"], exp["grid"]["seeds"], exp["train"]["n_test"], config["seed"]
    )
    data.save_npz_atomic(out, **arrays)


def train_cell(config: dict, experiment: str, cell_id: str, data_path: str, out: str, threads: int = 1,
               log=sys.stderr) -> None:
    """Train every (δ, seed) member of one shape cell as one ensemble and write its per-cell netCDF."""
    import torch

    from phaselab.metrics import cell_dataset, write_netcdf
    from phaselab.train import pick_device, train_committee_ensemble

    torch.set_num_threads(max(1, int(threads)))
    exp = config["experiments"][experiment]
    cell = next(c for c in cfg.shape_cells(exp) if c["id"] == cell_id)
    d, p, n_seeds = cell["d"], cell["p"], exp["grid"]["seeds"]
    deltas = sorted(exp["grid"]["delta"])
    lr = [cfg.learning_rate(exp["train"]["gamma0"], d, delta) for delta in deltas]
    device = pick_device(config["device"])
    print(f"[train] experiment {experiment}, cell {cell_id}: d = {d}, κ = {cell['kappa']}, p = {p}, "
          f"{len(deltas)} learning rates × {n_seeds} seeds, {cell['steps'][-1]} steps, device {device}",
          file=log, flush=True)
    arrays = np.load(data_path)
    result = train_committee_ensemble(
        data.student_init(d, p, n_seeds, exp["train"]["init_scale"], config["seed"]),
        arrays["teacher"],
        np.asarray(lr),
        np.asarray(cell["steps"]),
        [data.derive_seed(config["seed"], data.STREAM, d, s) for s in range(n_seeds)],
        noise=exp["teacher"]["noise"],
        test_x=arrays["test_x"],
        test_f=arrays["test_f"],
        device=device,
        divergence_threshold=exp["train"]["divergence_threshold"],
        log=log,
    )
    print(f"[train] done in {result.seconds:.1f}s, {result.member_steps_per_s:.3g} member-steps/s, "
          f"{int((result.diverged_step >= 0).sum())} diverged", file=log, flush=True)
    write_netcdf(cell_dataset(cell, deltas, n_seeds, result, lr, str(device), threads), out)


def collect_metrics(config: dict, experiment: str, cell_paths: list[str], out: str) -> None:
    """Merge the per-cell files into results/<experiment>/metrics.nc."""
    from phaselab.metrics import combine_cells, open_netcdf, write_netcdf

    exp = config["experiments"][experiment]
    cells = [open_netcdf(path) for path in cell_paths]
    write_netcdf(combine_cells(cells, config, experiment, cfg.experiment_times(exp)), out)


def make_theory(config: dict, experiment: str, metrics_path: str, out: str) -> None:
    """ODE curves for the cells where the deterministic limit holds, and the phase of every cell."""
    from phaselab.metrics import open_netcdf, write_netcdf
    from phaselab.theory.phase_diagram import phase_diagram_theory

    ds = open_netcdf(metrics_path)
    exp = config["experiments"][experiment]
    write_netcdf(phase_diagram_theory(ds, max_width=exp["theory"]["max_width"]), out)


FIGURES = {
    "phase_diagram": "phase_diagram",
    "risk_curves": "risk_curves",
    "asymptotic_risk": "asymptotic_risk",
}


def make_figure(name: str, metrics_path: str, theory_path: str, out: str) -> None:
    """One of the experiment's figures as PNG."""
    from phaselab import plots
    from phaselab.metrics import open_netcdf

    fig = getattr(plots, FIGURES[name])(open_netcdf(metrics_path), open_netcdf(theory_path))
    plots.save(fig, out)
