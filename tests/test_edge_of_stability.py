"""Sharpness by Lanczos on Hessian-vector products, the 2/η stability threshold, and the edge_of_stability
experiment end to end (Cohen, Kaur, Li, Kolter & Talwalkar, ICLR 2021)."""

import copy
from pathlib import Path

import numpy as np
import torch
from conftest import SCHEMA
from snakemake.utils import validate

from phaselab import config as cfg
from phaselab import experiments, stages
from phaselab.curvature import Flat, top_eigenvalue
from phaselab.metrics import open_netcdf
from phaselab.models.deep_mlp import init_mlp, squared_loss
from phaselab.engines.ensemble import train_ensemble


def run_experiment(config: dict, name: str, workdir: Path):
    """One experiment in-process, without Snakemake: cells → data → train → collect → theory → figures."""
    config = copy.deepcopy(config)
    validate(config, str(SCHEMA))  # fills the schema's defaults
    cfg.check(config)
    exp = config["experiments"][name]
    module = experiments.get(exp["type"])
    root = Path(workdir) / name
    cells = []
    for cell in module.cells(exp):
        data_path = None
        if cell["data"]:
            data_path = root / "data" / f"{cell['data']}.npz"
            if not data_path.exists():
                data_path.parent.mkdir(parents=True, exist_ok=True)
                stages.make_data(config, name, cell["data"], str(data_path))
        out = root / "cells" / f"{cell['id']}.nc"
        out.parent.mkdir(parents=True, exist_ok=True)
        with open(root / "train.log", "a") as log:
            stages.train_cell(config, name, cell["id"], data_path and str(data_path), str(out), log=log)
        cells.append(str(out))
    stages.collect_metrics(config, name, cells, str(root / "metrics.nc"))
    stages.make_theory(config, name, str(root / "metrics.nc"), str(root / "theory.nc"))
    for figure in module.FIGURES:
        stages.make_figure(config, name, figure, str(root / "metrics.nc"), str(root / "theory.nc"),
                           str(root / "figures" / f"{figure}.png"))
    return open_netcdf(root / "metrics.nc"), open_netcdf(root / "theory.nc"), root / "figures"


def quadratic(p, A):
    return 0.5 * p["w"] @ A @ p["w"] + p["w"].sum()


def test_lanczos_gives_the_top_eigenvalue_of_a_quadratic():
    """λ_max of ½θᵀAθ + Σθ is the largest eigenvalue of A, also when a negative one is larger in magnitude."""
    gen = torch.Generator().manual_seed(0)
    M, P = 3, 30
    A = torch.randn(M, P, P, generator=gen, dtype=torch.float64)
    A = (A + A.transpose(1, 2)) / 2 - 8 * torch.eye(P, dtype=torch.float64)  # |λ_min| ≫ λ_max: power iteration fails
    exact = torch.linalg.eigvalsh(A)
    assert (exact[:, 0].abs() > 3 * exact[:, -1].abs()).all()
    params = {"w": torch.randn(M, P, generator=gen, dtype=torch.float64)}
    full = top_eigenvalue(quadratic, params, A, batch_in_dims=0, iters=P)
    np.testing.assert_allclose(full.numpy(), exact[:, -1].numpy(), rtol=1e-10)
    # a Krylov space that closes early (3 parameters, 10 steps asked) restarts and still finds it
    small = torch.diag(torch.tensor([3.0, -5.0, 1.0], dtype=torch.float64)).expand(2, 3, 3)
    lam = top_eigenvalue(quadratic, {"w": torch.ones(2, 3, dtype=torch.float64)}, small, batch_in_dims=0, iters=10)
    np.testing.assert_allclose(lam.numpy(), [3.0, 3.0], rtol=1e-12)


def test_lanczos_sharpness_of_an_mlp_against_the_full_hessian():
    """Batched Lanczos on a tanh MLP's loss against the eigenvalues of its Hessian from torch.autograd."""
    gen = torch.Generator().manual_seed(1)
    x = torch.randn(40, 5, generator=gen, dtype=torch.float64)
    y = torch.randn(40, 3, generator=gen, dtype=torch.float64)
    params = init_mlp([5, 6, 4, 3], [1, 2, 3])
    lam = top_eigenvalue(squared_loss, params, (x, y), iters=40)
    flat = Flat(params)
    theta = flat.flatten(params)
    for m in range(3):
        H = torch.autograd.functional.hessian(lambda t: squared_loss(flat.unflatten_one(t), (x, y)), theta[m])
        np.testing.assert_allclose(lam[m].item(), torch.linalg.eigvalsh(H)[-1].item(), rtol=1e-8)


def test_gradient_descent_on_a_quadratic_is_stable_iff_sharpness_below_two_over_eta():
    """GD with η just below 2/λ_max (λ_max from Lanczos) converges, just above it diverges."""
    gen = torch.Generator().manual_seed(2)
    Q = torch.linalg.qr(torch.randn(8, 8, generator=gen, dtype=torch.float64))[0]
    A = Q @ torch.diag(torch.linspace(0.5, 4.0, 8, dtype=torch.float64)) @ Q.T
    params = {"w": torch.ones(1, 8, dtype=torch.float64)}
    sharpness = top_eigenvalue(quadratic, params, A, iters=8).item()
    assert abs(sharpness - 4.0) < 1e-10
    lr = torch.tensor([0.95, 1.05], dtype=torch.float64) * 2 / sharpness
    run = train_ensemble({"w": torch.ones(2, 8, dtype=torch.float64)}, quadratic, lambda step: A, lr, [0, 400],
                         lambda p: {"grad_norm": (p["w"] @ A + 1).norm(dim=1)}, batch_in_dims=None,
                         divergence_threshold=1e6)
    assert run.diverged_step.tolist() == [-1, 400]
    assert run.metrics["grad_norm"][0, -1] < 1e-6


def test_edge_of_stability_end_to_end(tmp_path):
    config = {"seed": 0, "device": "cpu", "experiments": {"eos": {
        "type": "edge_of_stability", "grid": {"lr": [0.1, 0.8], "seeds": 2}, "data": {"n_train": 100},
        "model": {"widths": [8, 8]}, "train": {"steps": 60, "checkpoints": 6, "lanczos_iters": 6}}}}
    metrics, theory, figures = run_experiment(config, "eos", tmp_path)
    assert dict(metrics["sharpness"].sizes) == {"lr": 2, "seed": 2, "step": 7}
    assert metrics["sharpness"].attrs["units"] == "1" and metrics["step"].attrs["units"] == "steps"
    assert set(np.unique(metrics["status"].values)) <= {"ok", "diverged"}
    assert metrics.attrs["config_sha256"] and metrics.attrs["git_revision"]
    assert np.all(metrics["sharpness"].values > 0)
    np.testing.assert_allclose(theory["stability_threshold"].values, [20.0, 2.5])
    assert (figures / "sharpness_trajectories.png").stat().st_size > 20_000
