"""The hard-margin SVM solver against closed forms and scipy's SLSQP, gradient descent on the logistic loss against
Soudry et al.'s asymptote w(t) = ŵ log t + w̃, and the implicit_bias experiment end to end."""

from pathlib import Path

import numpy as np
import torch
import yaml
from scipy.optimize import minimize

import phaselab
from phaselab import data
from phaselab.engines.ensemble import train_ensemble
from phaselab.experiments import implicit_bias as experiment
from phaselab.theory import implicit_bias as ib

# two orthogonal points: both are support vectors, ŵ = Σ z_n/‖z_n‖², α_n = 1/‖z_n‖²
TWO = np.array([[0.8, 0.2], [-0.15, 0.6]])


def gd_reference(Z, lr, steps):
    """Plain numpy GD on the mean logistic loss from w = 0, the iterate at every step in ``steps``."""
    w, out, t = np.zeros(Z.shape[1]), [], 0
    for stop in steps:
        for _ in range(stop - t):
            w = w + lr / len(Z) * Z.T @ (1 / (1 + np.exp(Z @ w)))
        t = stop
        out.append(w.copy())
    return np.array(out)


def test_max_margin_of_two_orthogonal_points_in_closed_form():
    w_hat, alpha = ib.max_margin(TWO)
    norms2 = (TWO**2).sum(1)
    np.testing.assert_allclose(alpha, 1 / norms2, rtol=1e-12)
    np.testing.assert_allclose(w_hat, (TWO / norms2[:, None]).sum(0), rtol=1e-12)
    np.testing.assert_allclose(TWO @ w_hat, [1.0, 1.0], rtol=1e-12)


def test_max_margin_of_six_points_against_slsqp():
    """The NNLS least-distance solution against scipy's SLSQP on min ½‖w‖² s.t. Z w ≥ 1, and the KKT conditions."""
    x, y = data.separable_set(6, 2, 0, 1)
    Z = y[:, None] * x
    w_hat, alpha = ib.max_margin(Z)
    slsqp = minimize(lambda w: 0.5 * w @ w, np.ones(2) * 10, jac=lambda w: w, method="SLSQP",
                     constraints=[{"type": "ineq", "fun": lambda w: Z @ w - 1, "jac": lambda w: Z}],
                     options={"ftol": 1e-15, "maxiter": 500})
    assert slsqp.success
    np.testing.assert_allclose(w_hat, slsqp.x, rtol=1e-7)
    assert np.all(alpha >= 0) and np.all(Z @ w_hat >= 1 - 1e-10)
    np.testing.assert_allclose(Z.T @ alpha, w_hat, rtol=1e-10)  # stationarity
    np.testing.assert_allclose(alpha * (Z @ w_hat - 1), 0, atol=1e-10)  # complementary slackness


def test_gd_follows_the_asymptote_on_two_points():
    """On two orthogonal support vectors ρ(t) → w̃ like 1/t: at t = 10⁴ GD sits within 3·10⁻³ of ŵ log t + w̃
    (‖w‖ ≈ 18.5), while its angle to ŵ, 0.030 rad, is still far from 0: the 1/log t decay, exactly predicted."""
    w_hat, alpha = ib.max_margin(TWO)
    lr, t = 4.0, 10_000
    w = gd_reference(TWO, lr, [t])[-1]
    asymptote = ib.asymptote([t], w_hat, ib.residual(TWO, alpha, lr))[0]
    assert np.linalg.norm(w - asymptote) < 3e-3
    assert 0.025 < ib.angle(w, w_hat)[0] < 0.035
    np.testing.assert_allclose(ib.angle(w, w_hat), ib.angle(asymptote, w_hat), rtol=1e-2)
    np.testing.assert_allclose(ib.margin_gap(w, TWO, w_hat), ib.margin_gap(asymptote, TWO, w_hat), rtol=2e-2)


def test_gd_on_six_points_approaches_the_svm_direction():
    """Six points (four non-support vectors): the angle to the SVM direction falls like the asymptote's, within 10 %
    of it at t = 10⁵, and the norm grows by ‖ŵ‖ log 10 a decade."""
    x, y = data.separable_set(6, 2, 0, 1)
    Z = y[:, None] * x
    w_hat, alpha = ib.max_margin(Z)
    lr = 4.0
    w = gd_reference(Z, lr, [10_000, 100_000])
    asymptote = ib.asymptote([10_000, 100_000], w_hat, ib.residual(Z, alpha, lr))
    sim, theory = ib.angle(w, w_hat), ib.angle(asymptote, w_hat)
    assert sim[1] < sim[0]
    np.testing.assert_allclose(sim[1], theory[1], rtol=0.1)
    growth = np.diff(np.linalg.norm(w, axis=1))[0]
    np.testing.assert_allclose(growth, np.linalg.norm(w_hat) * np.log(10), rtol=0.05)


def test_train_ensemble_replays_the_reference_gd():
    """The experiment's GD (train_ensemble, two learning rates as members) equals the numpy reference loop."""
    Z = torch.as_tensor(TWO)
    run = train_ensemble({"w": torch.zeros(2, 2, dtype=torch.float64)},
                         lambda p, z: torch.nn.functional.softplus(-(z @ p["w"])).mean(), lambda step: Z,
                         torch.tensor([1.0, 4.0], dtype=torch.float64), [50], lambda p: {"w0": p["w"][:, 0]},
                         batch_in_dims=None)
    for m, lr in enumerate((1.0, 4.0)):
        np.testing.assert_allclose(run.params["w"][m].numpy(), gd_reference(TWO, lr, [50])[-1], rtol=1e-12)


def test_implicit_bias_end_to_end(tmp_path):
    config = yaml.safe_load((Path(__file__).parent / "configs" / "implicit_bias.yaml").read_text())
    result = phaselab.run(config, "ib", results=tmp_path)
    metrics, theory = result.metrics, result.theory
    assert dict(metrics["w"].sizes) == {"lr": 2, "seed": 2, "step": 15, "coord": 2}
    assert metrics["angle"].attrs["units"] == "rad"
    assert set(np.unique(metrics["status"].values)) == {"ok"}
    # the dataset's angle is the angle to the SVM solution the theory stage computes independently
    w = metrics["w"].isel(step=-1).values
    for j in range(2):
        np.testing.assert_allclose(metrics["angle"].isel(step=-1, seed=j).values,
                                   ib.angle(w[:, j], theory["w_hat"].isel(seed=j).values), rtol=1e-12)
    assert np.all(np.diff(metrics["weight_norm"].values, axis=-1) > 0)  # ‖w‖ grows monotonically
    assert set(result.figures) == set(experiment.FIGURES)
    for figure in experiment.FIGURES:
        assert result.figures[figure].stat().st_size > 20_000
    assert len(result.claims) == 1 and result.claims[0].measured is not None  # the asymptote is valid at t = 300
