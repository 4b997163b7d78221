"""The trade-off and orange-region theory (Veiga et al. 2022, figures 6 and 7) against independent routes, and the
sgd_trade_off experiment end to end on its tiny config."""

from pathlib import Path

import numpy as np
import yaml
from scipy.special import erf

import phaselab
from phaselab.theory.committee import integrate
from phaselab.theory.trade_off import (
    crossing_time,
    full_ode_in_tau,
    informed_order_parameters,
    noise_term,
    orange_limit,
    orange_times,
    plateau,
)

CONFIG = Path(__file__).parent / "configs" / "sgd_trade_off.yaml"


def g(h):
    return erf(h / np.sqrt(2))


def g_prime(h):
    return np.sqrt(2 / np.pi) * np.exp(-h**2 / 2)


def test_noise_term_against_monte_carlo():
    """η² bracket = E[g'(λ_j) g'(λ_l) ((f* − f)² + Δ)] over jointly Gaussian fields (section 1), by sampling."""
    rng = np.random.default_rng(0)
    p, k, noise, n = 2, 2, 0.05, 1_000_000
    A = rng.standard_normal((p + k, p + k + 2))
    C = A @ A.T / (p + k + 2)
    Q, M, P = C[:p, :p], C[:p, p:], C[p:, p:]
    fields = rng.multivariate_normal(np.zeros(p + k), C, size=n)
    lam, nu = fields[:, :p], fields[:, p:]
    err2 = (g(nu).mean(1) - g(lam).mean(1)) ** 2 + noise
    gp = g_prime(lam)
    samples = gp[:, :, None] * gp[:, None, :] * err2[:, None, None]
    mc, se = samples.mean(0), samples.std(0) / np.sqrt(n)
    exact = noise_term(Q[None], M[None], P, noise)[0]
    assert np.all(np.abs(exact - mc) < 5 * se), (exact, mc, se)


def test_informed_start_against_sampled_weights():
    """Q, M of W_j = a w*_{j mod k} + b z_j at large d against the closed form, within O(1/√d)."""
    rng = np.random.default_rng(1)
    p, k, d, a, b = 6, 3, 40_000, 0.7, 1.3
    teacher = np.sqrt(d) * np.linalg.qr(rng.standard_normal((d, k)))[0].T
    W = a * teacher[np.arange(p) % k] + b * rng.standard_normal((p, d))
    Q, M = informed_order_parameters(p, k, a, b)
    assert np.abs(W @ W.T / d - Q).max() < 6 * (a + b) ** 2 / np.sqrt(d)
    assert np.abs(W @ teacher.T / d - M).max() < 6 * b / np.sqrt(d)


def test_orange_limit_is_the_large_d_limit_of_the_full_ode():
    """The full Saad–Solla ODE at η = γ0 d^−δ/p, run in τ = t d^−2δ, tends to the noise-only ODE as d → ∞ (its drift
    is suppressed by d^δ); at d = 10^3 it is far from it (the finite-size effect)."""
    p, k, gamma0, delta, noise = 2, 1, 2.0, -0.375, 1e-3
    Q0, M0 = informed_order_parameters(p, k, 1.0, 1.0)
    tau = np.array([0.0, 0.5, 2.0, 8.0, 30.0])
    limit = orange_limit(Q0, M0, np.eye(k), tau, gamma0 / p, noise)[0]
    huge = full_ode_in_tau(Q0[None], M0[None], np.eye(k), tau, 10**16, delta, gamma0, noise)[0]
    small = full_ode_in_tau(Q0[None], M0[None], np.eye(k), tau, 10**3, delta, gamma0, noise)[0]
    assert limit[-1] > 2 * limit[0]  # the noise drives the risk up
    np.testing.assert_allclose(huge, limit, rtol=2e-3)
    assert abs(small[-1] - limit[-1]) > 0.2 * limit[-1]
    np.testing.assert_allclose(orange_times([1.0, 2.0], 10**4, -0.375), [1e-3, 2e-3])


def test_plateau_is_where_the_ode_settles():
    """The stationary point found by root finding against a long integration of the ODE (p = 2, k = 1), and
    R∞ ≈ c η Δ: R∞/(ηΔ) is nearly the same at two small η. The ODE approaches the fixed point slowly: at η t = 8000
    successive doublings of the time still move it by ≈ 0.05 %, hence rtol 2e-3."""
    p, k, noise = 2, 1, 1e-3
    Q0, M0 = informed_order_parameters(p, k, 1.0, 0.5)
    eta = 0.5
    long = integrate(Q0, M0, np.eye(k), [8e3 / eta], eta, noise, rtol=1e-8, atol=1e-13)["risk"][0, -1]
    np.testing.assert_allclose(plateau([eta], noise, p, k)[0], long, rtol=2e-3)
    c = plateau([0.01, 0.002], noise, p, k) / np.array([0.01, 0.002]) / noise
    assert abs(c[0] / c[1] - 1) < 0.05


def test_crossing_time_on_an_exponential():
    t = np.geomspace(0.1, 10, 13)
    np.testing.assert_allclose(crossing_time(t, np.exp(-t), np.exp(-2.0)), 2.0, rtol=0.02)
    assert np.isnan(crossing_time(t, np.exp(-t), 1e-9))


def test_sgd_trade_off_end_to_end(tmp_path):
    config = yaml.safe_load(CONFIG.read_text())
    result = phaselab.run(config, "tiny", results=tmp_path)
    metrics, theory = result.metrics, result.theory
    exp = config["experiments"]["tiny"]
    assert dict(metrics["risk"].sizes) == {"delta": 2, "seed": 2, "eta_time": metrics.sizes["eta_time"]}
    assert dict(metrics["orange_risk"].sizes)["d"] == 2
    for name in list(metrics.data_vars) + list(metrics.coords):
        assert "long_name" in metrics[name].attrs, name
    assert set(np.unique(metrics["status"].values)) <= {"ok", "diverged"}
    # the ODEs start where the runs start (the seeds' measured Q0, M0)
    np.testing.assert_allclose(theory["ode_risk"].isel(eta_time=0), metrics["risk"].isel(eta_time=0), rtol=1e-5)
    np.testing.assert_allclose(theory["orange_full_risk"].isel(tau=0), metrics["orange_risk"].isel(tau=0), rtol=1e-5)
    # η = γ0 d^−δ / p and the same η t at every δ
    d = exp["trade_off"]["d"]
    np.testing.assert_allclose(metrics["eta_delta"].values,
                               [exp["student"]["gamma0"] * d ** -x / exp["student"]["p"] for x in (0.0, 0.5)])
    steps = metrics["steps"].values
    np.testing.assert_allclose(steps[1, -1] / steps[0, -1], d ** 0.5, rtol=1e-3)
    assert len(result.claims) == 5 and all(c.verdict in ("agrees", "disagrees", "inconclusive") for c in result.claims)
    assert all(path.stat().st_size > 20_000 for path in result.figures.values())
