"""Perceptron capacity and learning curves: the theory against published values and independent evaluations, the
batched solvers against exact reference solvers, and simulation against theory at small N."""

import math
from fractions import Fraction

import numpy as np
import pytest
import torch
from scipy import integrate, stats

from phaselab import data
from phaselab.solvers import perceptron as pc
from phaselab.theory import perceptron as tp
from phaselab.theory.implicit_bias import max_margin


# ------------------------------------------------------------------------------------------------ theory: capacity
def test_cover_is_exact_and_one_half_at_twice_n():
    for N in range(1, 40):
        assert tp.cover_probability(2 * N, N) == pytest.approx(0.5, abs=1e-14)
        assert tp.cover_probability(N, N) == 1.0
    # against exact rational arithmetic, 2^(1−P) Σ_{k<N} C(P−1, k)
    for P, N in [(7, 3), (30, 12), (45, 20), (61, 25), (100, 40)]:
        exact = Fraction(sum(math.comb(P - 1, k) for k in range(N)), 2 ** (P - 1))
        assert tp.cover_probability(P, N) == pytest.approx(float(exact), rel=1e-12)


def test_gardner_capacity():
    assert tp.gardner_capacity(0.0) == 2.0  # α_c(0) = 2 (Gardner 1988)
    for kappa in (0.3, 1.0, 2.5):
        integral = integrate.quad(lambda t, k=kappa: stats.norm.pdf(t) * (t + k) ** 2, -kappa, np.inf)[0]
        assert tp.gardner_capacity(kappa) == pytest.approx(1 / integral, rel=1e-10)
        assert tp.gardner_stability(tp.gardner_capacity(kappa)) == pytest.approx(kappa, rel=1e-10)
    assert tp.gardner_capacity(1.0) == pytest.approx(0.5196, abs=1e-4)
    assert tp.gardner_stability(2.0) == 0.0 and np.isnan(tp.gardner_stability(2.5))


# ------------------------------------------------------------------------------------------ theory: learning curves
def test_hebb_and_gibbs_published_values():
    assert tp.generalization_error(tp.hebb_overlap(1.0)) == pytest.approx(0.2856, abs=1e-4)
    assert tp.gibbs_error(0.0) == 0.5
    # large α: α ε_Gibbs → 0.62, α ε_Bayes → 0.44 (Engel & Van den Broeck; theory reference §3)
    assert 1000 * tp.gibbs_error(1000.0) == pytest.approx(0.625, abs=0.003)
    assert 1000 * tp.bayes_error(1000.0) == pytest.approx(0.442, abs=0.003)
    # the Gibbs equation, checked with H written out directly (no erfcx) where that is still accurate
    for alpha in (0.5, 2.0, 6.0):
        R = float(tp.gibbs_overlap(alpha))
        rhs = integrate.quad(lambda t, R=R: stats.norm.pdf(t) * np.exp(-R * t * t / 2) / tp.H(-np.sqrt(R) * t),
                             -12, 12, limit=200)[0]
        assert R / np.sqrt(1 - R) == pytest.approx(alpha / np.pi * rhs, rel=1e-8)


def test_max_stability_theory():
    # the closed forms of the two integrals against quadrature of their definitions
    for R, kappa in [(0.3, 1.0), (0.9, 0.2), (0.999, 0.01)]:
        s = math.sqrt(1 - R * R)

        def f0(t, R=R, kappa=kappa, s=s):
            return stats.norm.pdf(t) * (kappa - t) ** 2 * tp.H(-R * t / s)

        def f1(t, R=R, kappa=kappa, s=s):
            return stats.norm.pdf(t) * (kappa - t) ** 2 * -t * stats.norm.pdf(R * t / s) / s**3

        i0 = integrate.quad(f0, -np.inf, kappa, limit=400, epsabs=1e-15)[0]
        i1 = integrate.quad(f1, -np.inf, kappa, limit=400, epsabs=1e-15)[0]
        np.testing.assert_allclose(tp._max_stability_integrals(R, kappa), [i0, i1], rtol=1e-7)
    # at R = 0 the first saddle-point equation is Gardner's capacity: 2 α_c(κ) I0(0, κ) = 1
    for kappa in (0.1, 0.7, 2.0):
        assert 2 * tp.gardner_capacity(kappa) * tp._max_stability_integrals(0.0, kappa)[0] == pytest.approx(1.0)
    R, kappa = tp.max_stability(np.array([1.0, 300.0]))
    assert 300 * tp.generalization_error(R[1]) == pytest.approx(0.500, abs=0.003)  # α ε → 0.50
    # better than Hebb and Gibbs at α = 1, stability below Gardner's random-label value
    assert tp.generalization_error(R[0]) < tp.generalization_error(tp.hebb_overlap(1.0)) < tp.gibbs_error(1.0)
    assert 0 < kappa[0] < tp.gardner_stability(1.0) + 0.5


def test_online_perceptron_theory_decays_like_cube_root():
    eps = tp.generalization_error(tp.online_perceptron(np.array([1e4, 1e5])))
    assert np.log(eps[1] / eps[0]) / np.log(10) == pytest.approx(-1 / 3, abs=0.01)


def test_binary_first_order_transition():
    alpha_c = tp.binary_transition()
    assert alpha_c == pytest.approx(1.245, abs=0.002)  # Györgyi (1990)
    assert tp.binary_entropy(0.0) == pytest.approx(math.log(2))
    assert tp.binary_entropy(1.0) > 0 > tp.binary_entropy(1.35)
    assert np.isfinite(tp.binary_gibbs_branch(1.4)) and np.isnan(tp.binary_gibbs_branch(1.6))  # spinodal ≈ 1.49
    eps = tp.binary_gibbs_error(np.array([0.5, alpha_c - 1e-6, alpha_c + 1e-6]), alpha_c)
    assert eps[1] > 0.2 and eps[2] == 0.0


# ------------------------------------------------------------------------------------------------ batched solvers
def ldp_stability(X, y):
    """Independent exact solver: the least-distance program min ‖w‖ s.t. y_μ w·ξ_μ/√N ≥ 1 through NNLS (Lawson &
    Hanson 1974, ch. 23; phaselab.theory.implicit_bias.max_margin). Returns κ* = √N/‖w‖, or None if infeasible."""
    N = X.shape[1]
    try:
        w, _ = max_margin(y[:, None] * X / np.sqrt(N))
    except ValueError:
        return None
    return np.sqrt(N) / np.linalg.norm(w)


def test_max_stability_against_exact_least_distance_solver():
    rng = np.random.default_rng(3)
    N, T = 16, 24
    for alpha in (0.5, 1.5, 2.0, 2.5):
        P = int(alpha * N)
        X, y = rng.standard_normal((T, P, N)), rng.choice([-1.0, 1.0], (T, P))
        res = pc.max_stability(X, y, rtol=1e-9)
        for t in range(T):
            ref = ldp_stability(X[t], y[t])
            if ref is None:
                assert res.status[t] == pc.NON_SEPARABLE
            else:
                assert res.status[t] == pc.SEPARABLE and res.converged[t]
                assert res.stability_lower[t] == pytest.approx(ref, rel=1e-6)
                assert res.stability_upper[t] == pytest.approx(ref, rel=1e-6)
                # the certificate is a real weight vector with that stability
                J = res.weights[t]
                assert np.min(y[t] * (X[t] @ J)) / np.linalg.norm(J) == pytest.approx(res.stability_lower[t])


def test_iteration_cap_is_recorded():
    """Stopped early, trials near α = 2 keep what is certified: undecided, or separable with an open bracket."""
    patterns, labels = data.random_dichotomies(20, 40, 30, config_seed=5)
    early = pc.max_stability(patterns, labels, max_iter=3)
    full = pc.max_stability(patterns, labels)
    assert (early.status == pc.UNDECIDED).any() and not early.converged[early.status == pc.UNDECIDED].any()
    assert (full.status != pc.UNDECIDED).all() and full.converged.all()
    sep = early.status == pc.SEPARABLE
    assert (full.status[sep] == pc.SEPARABLE).all()  # a certificate is never revised
    assert (early.stability_lower[sep] <= full.stability_lower[sep] * (1 + 1e-6)).all()
    assert (early.stability_upper[sep] >= full.stability_upper[sep] * (1 - 1e-6)).all()


def test_separable_fraction_matches_cover_within_binomial_error():
    N, trials = 10, 300
    for alpha in (1.5, 2.0, 2.5):
        P = round(alpha * N)
        patterns, labels = data.random_dichotomies(N, P, trials, config_seed=7)
        status = pc.max_stability(patterns, labels).status
        assert (status != pc.UNDECIDED).all()
        p, expected = (status == pc.SEPARABLE).mean(), tp.cover_probability(P, N)
        assert abs(p - expected) < 3.5 * math.sqrt(expected * (1 - expected) / trials), (alpha, p, expected)


def test_hmc_is_uniform_on_the_version_space():
    """Against rejection sampling of uniform directions (exact) on one small version space."""
    rng = np.random.default_rng(0)
    N, P = 5, 6
    teacher = rng.standard_normal(N)
    X = rng.standard_normal((P, N))
    y = np.sign(X @ teacher)
    Z = rng.standard_normal((400_000, N))
    inside = Z[(np.sign(Z @ X.T) == y).all(1)]
    R_ref = pc.overlap(inside, teacher)
    chains = 400
    samples = pc.version_space_hmc(np.broadcast_to(X, (chains, P, N)), np.broadcast_to(y, (chains, P)),
                                   np.broadcast_to(teacher, (chains, N)), 4, torch.Generator().manual_seed(1))
    R = pc.overlap(samples[1:], teacher).ravel()
    assert ((samples[-1] @ X.T) * y > 0).all()
    assert stats.ks_2samp(R, R_ref).pvalue > 1e-3
    assert R.mean() == pytest.approx(R_ref.mean(), abs=4 * R_ref.std() / math.sqrt(chains))


def test_online_perceptron_engine_matches_a_plain_loop():
    d = data.perceptron_teacher_student(12, 40, 3, config_seed=1)
    sizes = [5, 17, 40]
    R = pc.online_perceptron(d["teacher"], d["inputs"], d["labels"], sizes)
    for s in range(3):
        J, out = np.zeros(12), []
        for mu in range(40):
            x, label = d["inputs"][s, mu].astype(float), d["labels"][s, mu]
            if label * (J @ x) <= 0:
                J += label * x / np.sqrt(12)
            if mu + 1 in sizes:
                out.append(pc.overlap(J, d["teacher"][s]))
        np.testing.assert_allclose(R[:, s], out, rtol=1e-12)


def test_binary_enumeration_against_a_plain_count():
    d = data.perceptron_teacher_student(6, 12, 2, config_seed=2, binary=True)
    eps, count = pc.binary_gibbs_exact(d["teacher"], d["inputs"], d["labels"], [3, 12])
    W = pc.all_binary_vectors(6).astype(float)
    for s in range(2):
        for i, P in enumerate([3, 12]):
            ok = (np.sign(W @ d["inputs"][s, :P].T.astype(float)) == d["labels"][s, :P]).all(1)
            assert count[i, s] == ok.sum() >= 1  # the teacher is always consistent
            assert eps[i, s] == pytest.approx(tp.generalization_error(W[ok] @ d["teacher"][s] / 6).mean())


def test_data_is_reproducible_and_nested():
    a, la = data.random_dichotomies(8, 5, 3, config_seed=0)
    b, lb = data.random_dichotomies(8, 5, 6, config_seed=0)
    np.testing.assert_array_equal(a, b[:3])
    np.testing.assert_array_equal(la, lb[:3])
    assert set(np.unique(lb)) == {-1.0, 1.0}
    d = data.perceptron_teacher_student(9, 20, 2, config_seed=0)
    assert d["inputs"].shape == (2, 20, 9) and d["inputs"].dtype == np.float32
    np.testing.assert_array_equal(d["labels"], np.sign(np.einsum("spn,sn->sp", d["inputs"].astype(float),
                                                                 d["teacher"])))


# ------------------------------------------------------------------------------------ simulation against theory
def _seed_error(eps):
    return 3 * eps.std(ddof=1) / math.sqrt(eps.size)


@pytest.fixture(scope="module")
def stream():
    return data.perceptron_teacher_student(60, 240, 40, config_seed=11)


def test_students_match_theory_at_small_n(stream):
    """N = 60, 40 seeds: within three standard errors plus 0.005 for the O(1/N) finite-size bias."""
    N, t, x, y = 60, stream["teacher"], stream["inputs"], stream["labels"]
    alphas = np.array([1.0, 4.0])
    sizes = [int(a * N) for a in alphas]
    hebb = tp.generalization_error(pc.overlap(pc.hebb(x, y, sizes), t[None]))
    online = tp.generalization_error(pc.online_perceptron(t, x, y, sizes))
    svm = np.stack([tp.generalization_error(pc.overlap(pc.max_stability(x[:, :P], y[:, :P]).weights, t))
                    for P in sizes])
    gibbs = np.stack([tp.generalization_error(pc.overlap(
        pc.version_space_hmc(x[:, :P], y[:, :P], t, 4, torch.Generator().manual_seed(P))[2:], t[None])).mean(0)
        for P in sizes])
    theory = {"hebb": tp.generalization_error(tp.hebb_overlap(alphas)),
              "online": tp.generalization_error(tp.online_perceptron(alphas)),
              "svm": tp.generalization_error(tp.max_stability(alphas)[0]),
              "gibbs": tp.gibbs_error(alphas)}
    for name, sim in [("hebb", hebb), ("online", online), ("svm", svm), ("gibbs", gibbs)]:
        for i in range(len(alphas)):
            assert abs(sim[i].mean() - theory[name][i]) < _seed_error(sim[i]) + 0.005, (name, alphas[i],
                                                                                       sim[i].mean(),
                                                                                       theory[name][i])
