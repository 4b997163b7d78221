"""Tests for phaselab.theory.committee (Saad & Solla 1995; Veiga et al. 2022), against closed forms, Monte Carlo
estimates from correlated Gaussian fields, a naive per-index implementation and a tight-tolerance scipy solve."""
import itertools

import numpy as np
import pytest
from scipy.integrate import solve_ivp
from scipy.special import erf

from phaselab.theory import committee as cm


def _g(h):
    return erf(h / np.sqrt(2))


def _dg(h):
    return np.sqrt(2 / np.pi) * np.exp(-h**2 / 2)


def _random_params(p, k, seed, scale=0.8):
    """A valid (Q, M, P): Gram matrices of p + k random vectors in d = p + k + 1 dims (positive definite)."""
    rng = np.random.default_rng(seed)
    d = p + k + 1
    W, Wt = scale * rng.normal(size=(p, d)), rng.normal(size=(k, d))
    return cm.order_parameters(W, Wt)


def _fields(Q, M, P, n, seed):
    C = np.block([[Q, M], [M.T, P]])
    z = np.random.default_rng(seed).standard_normal((n, len(C))) @ np.linalg.cholesky(C).T
    p = len(Q)
    return z[:, :p], z[:, p:]


@pytest.mark.parametrize("k", [1, 2, 4])
@pytest.mark.parametrize("p", [1, 3])
def test_zero_student_risk(p, k):
    assert cm.risk(np.zeros((p, p)), np.zeros((p, k)), np.eye(k), p, k) == pytest.approx(1 / (6 * k), rel=1e-12)


def test_student_equals_teacher_and_is_a_fixed_point():
    I = np.eye(3)
    assert abs(cm.risk(I, I, I, 3, 3)) < 1e-14
    dQ, dM = cm.rhs(I[None], I[None], I, eta=np.array([0.7]), noise=0.0)
    assert np.abs(dQ).max() < 1e-14 and np.abs(dM).max() < 1e-14
    # with label noise the teacher is no longer fixed: dQ_jj = eta^2 Delta J2(j, j) = eta^2 Delta (2/pi)/sqrt(3)
    dQ, dM = cm.rhs(I[None], I[None], I, eta=np.array([0.5]), noise=0.2)
    assert np.abs(dM).max() < 1e-14
    np.testing.assert_allclose(np.diag(dQ[0]), 0.25 * 0.2 * (2 / np.pi) / np.sqrt(3), rtol=1e-12)


def test_order_parameters_and_batched_risk():
    rng = np.random.default_rng(0)
    W, Wt = rng.normal(size=(5, 3, 50)), rng.normal(size=(2, 50))
    Q, M, P = cm.order_parameters(W, Wt)
    assert Q.shape == (5, 3, 3) and M.shape == (5, 3, 2) and P.shape == (2, 2)
    np.testing.assert_allclose(Q[1], W[1] @ W[1].T / 50)
    R = cm.risk(Q, M, P, 3, 2)
    assert R.shape == (5,)
    np.testing.assert_allclose(R, [cm.risk(Q[b], M[b], P, 3, 2) for b in range(5)], rtol=1e-14)


def test_risk_vs_monte_carlo():
    p, k, n = 3, 2, 2_000_000
    Q, M, P = _random_params(p, k, seed=1)
    lam, nu = _fields(Q, M, P, n, seed=2)
    x = 0.5 * (_g(nu).mean(1) - _g(lam).mean(1)) ** 2
    mc, se = x.mean(), x.std() / np.sqrt(n)
    R = cm.risk(Q, M, P, p, k)
    assert R > 0.02 and se < 0.01 * R  # a non-trivial value, resolved to better than 1%
    assert abs(R - mc) < 4 * se, (R, mc, se)


def test_rhs_vs_monte_carlo():
    """dM = eta E[g'(l_j)(f*-f) nu_r];
    dQ = eta E[g'(l_j)(f*-f) l_l + (j<->l)] + eta^2 E[g'(l_j) g'(l_l)((f*-f)^2 + Delta)]."""
    p, k, n, noise = 2, 2, 2_000_000, 0.3
    Q, M, P = _random_params(p, k, seed=3)
    lam, nu = _fields(Q, M, P, n, seed=4)
    e = _g(nu).mean(1) - _g(lam).mean(1)
    gp = _dg(lam)
    # split the rhs into its eta and eta^2 parts from two learning rates
    (dQ1, dM1), (dQ2, _) = (cm.rhs(Q[None], M[None], P, np.array([eta]), noise) for eta in (1.0, 2.0))
    quad, lin = (dQ2[0] - 2 * dQ1[0]) / 2, dQ1[0] - (dQ2[0] - 2 * dQ1[0]) / 2
    checks = []
    for j, r in itertools.product(range(p), range(k)):
        checks.append((dM1[0, j, r], gp[:, j] * e * nu[:, r]))
    for j, l in itertools.product(range(p), range(p)):
        checks.append((lin[j, l], gp[:, j] * e * lam[:, l] + gp[:, l] * e * lam[:, j]))
        checks.append((quad[j, l], gp[:, j] * gp[:, l] * (e**2 + noise)))
    for exact, x in checks:
        mc, se = x.mean(), x.std() / np.sqrt(n)
        assert abs(exact - mc) < 4.5 * se, (exact, mc, se)
    assert max(abs(ex) for ex, _ in checks) > 0.05  # the test compares non-trivial numbers


def _naive_rhs(Q, M, P, eta, noise):
    """Per-index loops over theory.md section 1 (reference for the vectorised rhs)."""
    p, k = M.shape
    C = np.block([[Q, M], [M.T, P]])
    u = np.r_[np.full(p, -1 / p), np.full(k, 1 / k)]

    def I3(a, b, c):
        L3 = (1 + C[a, a]) * (1 + C[c, c]) - C[a, c] ** 2
        return 2 / np.pi * (C[b, c] * (1 + C[a, a]) - C[a, b] * C[a, c]) / ((1 + C[a, a]) * np.sqrt(L3))

    def I4(a, b, c, e):
        L4 = (1 + C[a, a]) * (1 + C[b, b]) - C[a, b] ** 2
        L0 = (L4 * C[c, e] - C[b, c] * C[b, e] * (1 + C[a, a]) - C[a, c] * C[a, e] * (1 + C[b, b])
              + C[a, b] * C[a, c] * C[b, e] + C[a, b] * C[a, e] * C[b, c])
        L1 = (L4 * (1 + C[c, c]) - C[b, c] ** 2 * (1 + C[a, a]) - C[a, c] ** 2 * (1 + C[b, b])
              + 2 * C[a, b] * C[a, c] * C[b, c])
        L2 = (L4 * (1 + C[e, e]) - C[b, e] ** 2 * (1 + C[a, a]) - C[a, e] ** 2 * (1 + C[b, b])
              + 2 * C[a, b] * C[a, e] * C[b, e])
        return 4 / np.pi**2 / np.sqrt(L4) * np.arcsin(L0 / np.sqrt(L1 * L2))

    def J2(a, b):
        return 2 / np.pi / np.sqrt((1 + C[a, a]) * (1 + C[b, b]) - C[a, b] ** 2)

    fields = range(p + k)
    dM = np.array([[eta * sum(u[c] * I3(j, p + r, c) for c in fields) for r in range(k)] for j in range(p)])
    dQ = np.array([[eta * sum(u[c] * (I3(j, l, c) + I3(l, j, c)) for c in fields)
                    + eta**2 * (sum(u[c] * u[e] * I4(j, l, c, e) for c in fields for e in fields) + noise * J2(j, l))
                    for l in range(p)] for j in range(p)])
    return dQ, dM


def test_rhs_matches_naive_loops_batched():
    p, k = 3, 2
    params = [_random_params(p, k, seed=s) for s in (5, 6)]
    Q, M = np.stack([q for q, _, _ in params]), np.stack([m for _, m, _ in params])
    P = np.stack([pp for _, _, pp in params])
    eta, noise = np.array([0.3, 1.7]), np.array([0.0, 0.5])
    dQ, dM = cm.rhs(Q, M, P, eta, noise)
    for b in range(2):
        rQ, rM = _naive_rhs(Q[b], M[b], P[b], eta[b], noise[b])
        np.testing.assert_allclose(dQ[b], rQ, rtol=1e-11, atol=1e-14)
        np.testing.assert_allclose(dM[b], rM, rtol=1e-11, atol=1e-14)


def _reference_solution(Q0, M0, P, times, eta, noise):
    p, k = M0.shape

    def fun(t, y):
        dQ, dM = cm.rhs(y[:p * p].reshape(1, p, p), y[p * p:].reshape(1, p, k), P, np.array([eta]), noise)
        return np.r_[dQ.ravel(), dM.ravel()]

    sol = solve_ivp(fun, (0, times[-1]), np.r_[Q0.ravel(), M0.ravel()], method="DOP853", t_eval=times,
                    rtol=1e-11, atol=1e-13)
    Q, M = sol.y[:p * p].T.reshape(-1, p, p), sol.y[p * p:].T.reshape(-1, p, k)
    return Q, M, cm.risk(Q, M, P, p, k)


def test_integrate_vs_tight_reference():
    p = k = 2
    Q0, M0, P = _random_params(p, k, seed=7, scale=0.3)
    times = np.linspace(0, 20, 41)
    out = cm.integrate(Q0[None], M0[None], P, times, eta=0.8, noise=0.1)
    Qr, Mr, Rr = _reference_solution(Q0, M0, P, times, 0.8, 0.1)
    assert Rr[0] / Rr[-1] > 3  # the horizon covers real learning
    np.testing.assert_allclose(out["risk"][0], Rr, rtol=1e-5, atol=1e-8)
    np.testing.assert_allclose(out["Q"][0], Qr, rtol=0, atol=1e-6)
    np.testing.assert_allclose(out["M"][0], Mr, rtol=0, atol=1e-6)
    late = cm.integrate(Q0, M0, P, [7.5, 20.0], eta=0.8, noise=0.1)  # output grid not starting at t = 0
    np.testing.assert_allclose(late["risk"][0], Rr[[15, 40]], rtol=1e-5)


def test_integrate_batch_equals_separate_runs():
    p = k = 2
    Q0, M0, P = _random_params(p, k, seed=8, scale=0.3)
    times = np.r_[0.0, np.logspace(-1, 2, 20)]
    etas = np.array([0.01, 0.5, 2.0])
    out = cm.integrate(Q0, M0, P, times, eta=etas, noise=0.05)
    assert out["risk"].shape == (3, len(times)) and out["Q"].shape == (3, len(times), 2, 2)
    for b, eta in enumerate(etas):
        one = cm.integrate(Q0[None], M0[None], P, times, eta=eta, noise=0.05)
        np.testing.assert_allclose(out["risk"][b], one["risk"][0], rtol=1e-9, atol=1e-14)
        np.testing.assert_allclose(out["M"][b], one["M"][0], rtol=1e-9, atol=1e-14)
    assert abs(out["risk"][0, -1] - out["risk"][2, -1]) > 1e-3  # the learning rates really differ


def test_ode_risk_initial_value_and_decay():
    p = k = 2
    rng = np.random.default_rng(9)
    d = 400
    Wt = rng.normal(size=(k, d))
    Q0, M0, P = cm.order_parameters(Wt + 0.3 * rng.normal(size=(p, d)), Wt)
    times = np.r_[0.0, np.logspace(0, 2.5, 11)]  # R stays above the ~1e-8 round-off floor of the arcsin forms
    R = cm.ode_risk(Q0, M0, P, times, gamma=1.0, p=p, k=k, noise=0.0)
    assert R.shape == times.shape
    assert R[0] == pytest.approx(cm.risk(Q0, M0, P, p, k), rel=1e-14)
    assert np.all(np.diff(R) < 0)
    assert R[-1] < 1e-3 * R[0]
    # with label noise the risk stays finite: an O(eta * Delta) plateau (Saad & Solla 1995)
    Rn = cm.ode_risk(Q0, M0, P, times, gamma=1.0, p=p, k=k, noise=0.5)
    assert Rn[-1] > 10 * R[-1]


def test_phase_regions_and_boundaries():
    assert cm.PHASES == ("perfect learning", "Saad-Solla", "noise dominated", "no ODE limit")
    assert cm.phase(0.5, 0.0) == "perfect learning"
    assert cm.phase(0.0, 1e-6) == "perfect learning"
    assert cm.phase(0.0, 0.0) == "Saad-Solla"
    assert cm.phase(0.3, -0.3) == "Saad-Solla"
    assert cm.phase(0.1, -0.1 + 1e-12) == "Saad-Solla"
    assert cm.phase(0.0, -0.25) == "noise dominated"
    assert cm.phase(0.2, -0.6) == "noise dominated"
    assert cm.phase(0.0, -0.4999) == "noise dominated"
    assert cm.phase(0.0, -0.5) == "no ODE limit"
    assert cm.phase(0.25, -0.75) == "no ODE limit"
    assert cm.phase(0.0, -2.0) == "no ODE limit"
    assert cm.eta_scaling_exponent(0.5, 0.25) == -0.75
    assert cm.eta_scaling_exponent(0.3, -0.3) == pytest.approx(0.0)
