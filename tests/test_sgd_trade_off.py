"""The trade-off and orange-region theory (Veiga et al. 2022, figures 6 and 7) against independent routes, and the
sgd_trade_off experiment end to end on its tiny config."""

from pathlib import Path

import numpy as np
import yaml
from scipy.special import erf

import phaselab
from phaselab.theory.committee import integrate, risk
from phaselab.theory.trade_off import (
    crossing_time,
    full_ode_in_tau,
    informed_order_parameters,
    noise_term,
    orange_limit,
    orange_times,
    plateau,
    span_coefficients,
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


def test_span_start_is_exact_at_every_d():
    """The authors' start W = A W* (unit-norm rows of A) against sampled weights: Q = AAᵀ with Q_jj = 1 and M = A,
    exactly (no 1/√d error), at any d; b = 0 is the perfect student."""
    rng = np.random.default_rng(2)
    p, k = 6, 3
    A = span_coefficients(p, k, 1.0, 0.7, rng)
    np.testing.assert_allclose(np.linalg.norm(A, axis=1), 1.0, rtol=1e-12)
    for d in (7, 300):
        teacher = np.sqrt(d) * np.linalg.qr(rng.standard_normal((d, k)))[0].T
        W = A @ teacher
        np.testing.assert_allclose(W @ W.T / d, A @ A.T, atol=1e-12)
        np.testing.assert_allclose(W @ teacher.T / d, A, atol=1e-12)
    Q, M = informed_order_parameters(p, k, 1.0, 0.0)
    np.testing.assert_array_equal(span_coefficients(p, k, 2.0, 0.0, rng), M)


def test_informed_start_stage_follows_the_config():
    """The train stage's students: ``teacher_span`` gives the same (Q0, M0) at every d with Q_jj = 1; ``isotropic``
    gives Q_jj ≈ a² + b², M ≈ a on the assigned unit (within O(1/√d))."""
    from phaselab import data
    from phaselab.experiment import Run
    from phaselab.experiments.sgd_trade_off.stages import informed_start

    def order(start, d):
        exp = {"seeds": 3, "teacher": {"k": 2}, "student": {"p": 4, "overlap": 1.0, "init_scale": 0.5, "start": start}}
        run = Run(config={"seed": 0, "experiments": {"x": exp}}, name="x")
        teacher = data.teacher_student_data(d, 2, 3, 1, 0)["teacher"]
        W = informed_start(run, d, teacher).astype(float)
        return W @ np.swapaxes(W, 1, 2) / d, W @ np.swapaxes(teacher, 1, 2) / d

    Q1, M1 = order("teacher_span", 64)
    Q2, M2 = order("teacher_span", 2048)
    np.testing.assert_allclose(np.einsum("sjj->sj", Q1), 1.0, atol=1e-5)
    np.testing.assert_allclose(Q1, Q2, atol=1e-5)
    np.testing.assert_allclose(M1, M2, atol=1e-5)
    assert np.abs(Q1 - Q1[:1]).max() > 1e-2  # seeds differ
    Q, M = order("isotropic", 4096)
    Qa, Ma = informed_order_parameters(4, 2, 1.0, 0.5)
    assert np.abs(Q - Qa).max() < 0.15 and np.abs(M - Ma).max() < 0.1


def _online_sgd(W, teacher, eta, steps, noise, rng):
    """Plain online SGD of the erf committee (theory.md §1), every seed at once: w_j += (η/√d)(y − f) g'(λ_j) x;
    the exact risk (from the order parameters) at the checkpoints ``steps``."""
    S, _, d = W.shape
    out, n = np.empty((S, len(steps))), 0
    for i, stop in enumerate(steps):
        while n < stop:
            x = rng.standard_normal((S, d))
            lam = np.einsum("spd,sd->sp", W, x) / np.sqrt(d)
            nu = np.einsum("skd,sd->sk", teacher, x) / np.sqrt(d)
            err = g(nu).mean(1) + np.sqrt(noise) * rng.standard_normal(S) - g(lam).mean(1)
            W += (eta / np.sqrt(d)) * (err[:, None] * g_prime(lam))[:, :, None] * x[:, None, :]
            n += 1
        out[:, i] = risk(W @ np.swapaxes(W, 1, 2) / d, W @ np.swapaxes(teacher, 1, 2) / d, np.eye(teacher.shape[1]))
    return out


def test_orange_full_ode_against_direct_sgd():
    """Orange region (δ = −3/8, γ0 = p = 8, k = 4, Δ = 1e-3, d = 500): the peak of the seed-mean risk of direct online
    SGD follows the full ODE at the cell's own η for both informed starts, and the two starts, at similar initial
    risk, peak at different heights (0.029 vs 0.058 here): the start, not a convention, sets the peak."""
    p, k, gamma0, delta, noise, d, seeds = 8, 4, 8.0, -0.375, 1e-3, 500, 8
    rng = np.random.default_rng(3)
    teacher = np.stack([np.sqrt(d) * np.linalg.qr(rng.standard_normal((d, k)))[0].T for _ in range(seeds)])
    starts = {"isotropic": 1.0 * teacher[:, np.arange(p) % k] + 1.0 * rng.standard_normal((seeds, p, d)),
              "teacher_span": np.stack([span_coefficients(p, k, 1.0, 0.55, rng) for _ in range(seeds)]) @ teacher}
    tau = np.concatenate([[0.0], np.geomspace(10, 300, 12)])
    steps = np.round(tau * d ** (1 + 2 * delta)).astype(int)
    peaks = {}
    for name, W in starts.items():
        Q0, M0 = W @ np.swapaxes(W, 1, 2) / d, W @ np.swapaxes(teacher, 1, 2) / d
        sim = _online_sgd(W.copy(), teacher, gamma0 * d ** -delta / p, steps, noise, rng)
        ode = full_ode_in_tau(Q0, M0, np.eye(k), tau, d, delta, gamma0, noise).mean(0)
        mean, sem = sim.mean(0), sim.std(0, ddof=1) / np.sqrt(seeds)
        i = mean.argmax()
        assert abs(mean[i] - ode.max()) < 2 / np.sqrt(d) * ode.max() + 3 * sem[i], (name, mean[i], sem[i], ode.max())
        peaks[name] = (mean[i], ode.max())
    assert peaks["teacher_span"][0] > 1.5 * peaks["isotropic"][1]


def test_orange_peak_depends_on_the_start_not_on_the_initial_risk():
    """Two isotropic starts of equal initial risk (a = b = 1, Q_jj = 2; a = 0.6, Q_jj ≈ 0.82) give orange-ODE peaks
    more than 15 % apart: R0 does not fix the peak (p = 8, k = 4)."""
    from scipy.optimize import brentq

    p, k, P = 8, 4, np.eye(4)
    tau = np.geomspace(1, 3000, 40)
    Q1, M1 = informed_order_parameters(p, k, 1.0, 1.0)
    b = brentq(lambda b: risk(*informed_order_parameters(p, k, 0.6, b), P) - risk(Q1, M1, P), 0.1, 2.0)
    Q2, M2 = informed_order_parameters(p, k, 0.6, b)
    np.testing.assert_allclose(risk(Q2, M2, P), risk(Q1, M1, P), rtol=1e-9)
    one = orange_limit(Q1, M1, P, tau, 1.0, 1e-3).max()
    two = orange_limit(Q2, M2, P, tau, 1.0, 1e-3).max()
    assert two > 1.15 * one, (one, two)


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
