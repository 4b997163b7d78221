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
from phaselab.experiments.implicit_bias import stages
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
    assert len(result.claims) == 4 and result.claims[0].measured is not None  # the asymptote is valid at t = 300
    # the rate claims recomputed: the slope of ‖w‖ against log t over the last decade (where the asymptote is
    # valid), over ‖ŵ‖, by a second route (the fit written out as covariance over variance)
    valid = theory["angle"].transpose("lr", "seed", "step").notnull().values
    steps = metrics["step"].values
    norms = metrics["weight_norm"].transpose("lr", "seed", "step").values
    slopes = np.full((2, 2), np.nan)
    for i in range(2):
        for j in range(2):
            keep = valid[i, j] & (steps >= steps[-1] / 10)
            if keep.sum() >= 3:
                L, n = np.log(steps[keep]), norms[i, j, keep]
                slopes[i, j] = np.cov(L, n)[0, 1] / L.var(ddof=1) / np.linalg.norm(theory["w_hat"].values[j]) - 1
    norm_claim = result.claims[3]
    worst = np.nanmean(slopes, axis=1)
    np.testing.assert_allclose(norm_claim.measured, worst[np.nanargmax(abs(worst))], rtol=1e-9)


def asymptote_dataset(Z, lr, steps, w):
    """metrics and theory datasets of one (η, data set) member with iterates ``w`` (steps, d) on data ``Z``."""
    import xarray as xr

    w_hat, alpha = ib.max_margin(Z)
    w_tilde = ib.residual(Z, alpha, lr)
    steps = np.asarray(steps)
    theory_angle = ib.angle(ib.asymptote(steps, w_hat, w_tilde), w_hat)
    metrics = xr.Dataset({"angle": (("lr", "seed", "step"), ib.angle(w, w_hat)[None, None]),
                          "weight_norm": (("lr", "seed", "step"), np.linalg.norm(w, axis=1)[None, None]),
                          "status": (("lr", "seed"), [["ok"]])},
                         coords={"lr": [lr], "seed": [0], "step": steps})
    theory = xr.Dataset({"w_hat": (("seed", "coord"), w_hat[None]),
                         "w_tilde": (("lr", "seed", "coord"), w_tilde[None, None]),
                         "angle": (("lr", "seed", "step"), theory_angle[None, None])})
    return metrics, theory


def test_rate_fits_of_the_exact_asymptote_and_of_a_wrong_direction():
    """Iterates that are exactly ŵ log t + w̃: the fit in 1/(log t + c) extrapolates to a limit angle ≈ 0 (the
    arctan's cubic term only), its slope is ‖w̃⊥‖/‖ŵ‖ and d‖w‖/d log t = ‖ŵ‖ cos θ; iterates v log t along a wrong
    direction v: a constant angle, so the limit is the whole last angle, the slope 0, and the norm slope ‖v‖."""
    Z = TWO
    w_hat, alpha = ib.max_margin(Z)
    lr, steps = 4.0, np.unique(np.round(np.logspace(3, 6, 31)).astype(int))
    w = ib.asymptote(steps, w_hat, ib.residual(Z, alpha, lr))
    fits = stages.rate_fits(*asymptote_dataset(Z, lr, steps, w))
    theta = ib.angle(w, w_hat)
    late = steps >= steps[-1] / 10
    assert abs(fits["limit"][0, 0]) < theta[-1] ** 2
    assert abs(fits["prefactor"][0, 0]) < theta[late].max() ** 2
    # second route for the norm: the least-squares slope of the exact norm over the same checkpoints
    expected = np.polyfit(np.log(steps[late]), np.linalg.norm(w[late], axis=1), 1)[0] / np.linalg.norm(w_hat) - 1
    np.testing.assert_allclose(fits["norm_slope"][0, 0], expected, rtol=1e-9)
    assert -theta[late].max() ** 2 < fits["norm_slope"][0, 0] <= 0  # cos θ − 1
    v = np.array([1.0, 0.3]) * 2 * np.linalg.norm(w_hat)
    wrong = np.log(steps)[:, None] * v
    fits = stages.rate_fits(*asymptote_dataset(Z, lr, steps, wrong))
    np.testing.assert_allclose(fits["limit"][0, 0], 1.0, rtol=1e-9)
    np.testing.assert_allclose(fits["prefactor"][0, 0], -1.0, atol=1e-9)
    np.testing.assert_allclose(fits["norm_slope"][0, 0], np.linalg.norm(v) / np.linalg.norm(w_hat) - 1, rtol=1e-9)


def test_gd_norm_grows_like_the_svm_norm_times_log_t():
    """Plain numpy GD on two orthogonal support vectors (η = 4) to t = 10⁴: over the last decade the norm grows
    at ‖ŵ‖ per unit log t within 5 % and the fitted limit angle is under a tenth of the last angle."""
    w_hat, _ = ib.max_margin(TWO)
    lr, steps = 4.0, np.unique(np.round(np.logspace(0, 4, 41)).astype(int))
    w = gd_reference(TWO, lr, steps)
    metrics, theory = asymptote_dataset(TWO, lr, steps, w)
    fits = stages.rate_fits(metrics, theory)
    assert abs(fits["norm_slope"][0, 0]) < 0.05
    assert abs(fits["limit"][0, 0]) < 0.1
    assert abs(fits["prefactor"][0, 0]) < 0.1
    claims = stages.rate_claims(metrics, theory)  # one data set: measured, but no interval, so inconclusive
    assert [c.verdict for c in claims] == ["inconclusive"] * 3 and "fewer than two" in claims[0].note


def test_residual_solves_the_support_vector_equations():
    """w̃ of eq. (8) against its definition, (η/N) exp(−z_n·w̃) = α_n on the support vectors, for a 5-D set and
    η across four decades (the log's argument from 10⁻² to 10²)."""
    x, y = data.separable_set(12, 5, 0, 3)
    Z = y[:, None] * x
    w_hat, alpha = ib.max_margin(Z)
    sv = ib.support(alpha)
    assert ib.support_spans_data(Z, alpha)
    for lr in (1e-2, 1.0, 1e2):
        w_tilde = ib.residual(Z, alpha, lr)
        np.testing.assert_allclose(lr / len(Z) * np.exp(-Z[sv] @ w_tilde), alpha[sv], rtol=1e-9)
