"""Sharpness by Lanczos on Hessian-vector products, the 2/η stability threshold, and the edge_of_stability
experiment end to end (Cohen, Kaur, Li, Kolter & Talwalkar, ICLR 2021)."""

from pathlib import Path

import numpy as np
import torch
import yaml

import phaselab
from phaselab.curvature import Flat, top_eigenvalue
from phaselab.engines.ensemble import train_ensemble
from phaselab.models.deep_mlp import init_mlp, squared_loss

CONFIG = Path(__file__).parent / "configs" / "edge_of_stability.yaml"


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
    config = yaml.safe_load(CONFIG.read_text())
    assert config["experiments"]["eos"]["grid"] == {"lr": [0.1, 0.8], "seeds": 2}
    result = phaselab.run(config, "eos", results=tmp_path)
    metrics, theory = result.metrics, result.theory
    assert dict(metrics["sharpness"].sizes) == {"lr": 2, "seed": 2, "step": 7}
    assert metrics["sharpness"].attrs["units"] == "1" and metrics["step"].attrs["units"] == "steps"
    assert set(np.unique(metrics["status"].values)) <= {"ok", "diverged"}
    assert metrics.attrs["config_sha256"] and metrics.attrs["git_revision"]
    assert np.all(metrics["sharpness"].values > 0)
    np.testing.assert_allclose(theory["stability_threshold"].values, [20.0, 2.5])
    assert result.figures["sharpness_trajectories"].stat().st_size > 20_000
    [claim] = result.claims
    assert claim.tolerance == 0.1 and claim.theory == 0.0
    assert claim.measured is not None  # η = 0.8 reaches the edge 0.9 · 2/η within 60 steps
