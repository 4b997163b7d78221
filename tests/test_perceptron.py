"""Perceptron capacity and learning curves: the theory against published values and independent evaluations, the
batched solvers against exact reference solvers, and simulation against theory at small N."""

import math
from fractions import Fraction

import numpy as np
import pytest
import torch
from scipy import integrate, optimize, special, stats

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


# ------------------------------------------------------------- theory over its whole domain, by a second route
def test_cover_far_tails_against_exact_rational_sums():
    """Relative accuracy down to 1e-280 (P up to 100 N) and the exact ½ at P = 2N up to the schema's N = 2000."""
    for N in (1, 2, 5, 10, 40):
        for P in sorted({N + 1, 2 * N - 1, 3 * N, 10 * N, 30 * N, 100 * N}):
            exact = Fraction(sum(math.comb(P - 1, k) for k in range(N)), 2 ** (P - 1))
            if float(exact) > 1e-300:
                assert tp.cover_probability(P, N) == pytest.approx(float(exact), rel=1e-11), (P, N)
    for N in (100, 500, 2000):
        assert tp.cover_probability(2 * N, N) == pytest.approx(0.5, abs=1e-13)
        assert tp.cover_continued(2 * N, N) == pytest.approx(0.5, abs=1e-13)
    # the continuation to real P is Cover's count at integer P
    P, N = np.meshgrid(np.arange(1, 120), [3, 17, 40])
    np.testing.assert_allclose(tp.cover_continued(P, N), tp.cover_probability(P, N), rtol=1e-11, atol=1e-300)


def test_gardner_capacity_over_its_domain():
    """κ ∈ [0, 5] (the schema's range) against quadrature of the definition; κ_c(α) down to α = 1e-6, where
    Φ(κ) = 1 and φ(κ) = 0 in double precision leave α_c = 1/(1 + κ²)."""
    for kappa in np.linspace(0.0, 5.0, 21):
        integral = integrate.quad(lambda t, k=kappa: stats.norm.pdf(t) * (t + k) ** 2, -kappa, np.inf,
                                  epsabs=0, epsrel=1e-13)[0]
        assert tp.gardner_capacity(kappa) == pytest.approx(1 / integral, rel=1e-10), kappa
    alpha = np.geomspace(1e-3, 2.0, 25)
    np.testing.assert_allclose(tp.gardner_capacity(tp.gardner_stability(alpha)), alpha, rtol=1e-10)
    small = np.array([1e-6, 1e-5, 1e-4])
    np.testing.assert_allclose(tp.gardner_stability(small), np.sqrt(1 / small - 1), rtol=1e-9)


def test_gibbs_tails_small_and_large_alpha():
    # small α: R/√(1 − R) = (α/π) ∫ Dt · 2 at R = 0, so R = 2α/π (1 + O(α))
    for alpha in (1e-5, 1e-4):
        assert tp.gibbs_overlap(alpha) == pytest.approx(2 * alpha / np.pi, rel=3 * alpha)
    # large α: α ε → √2/I, I = ∫ Dt exp(−t²/2)/H(−t) written with log Φ (no erfcx), and the published 0.62
    integral = integrate.quad(lambda t: np.exp(-t * t - special.log_ndtr(t)) / math.sqrt(2 * np.pi), -np.inf, np.inf,
                              epsabs=1e-14)[0]
    assert tp.gibbs_limit() == pytest.approx(math.sqrt(2) / integral, rel=1e-10)
    assert tp.gibbs_limit() == pytest.approx(0.625, abs=0.001)
    for alpha in (1e3, 1e4):
        assert alpha * tp.gibbs_error(alpha) == pytest.approx(tp.gibbs_limit(), rel=3 / alpha)
    assert tp.large_alpha_limit("bayes")[1] == pytest.approx(0.442, abs=0.001)
    # the Gibbs equation with H written directly, also close to R = 1
    for alpha in (50.0, 500.0):
        R = float(tp.gibbs_overlap(alpha))
        rhs = integrate.quad(lambda t, R=R: stats.norm.pdf(t) * np.exp(-R * t * t / 2) / tp.H(-np.sqrt(R) * t),
                             -14, 14, limit=400, epsabs=0, epsrel=1e-12)[0]
        assert R / np.sqrt(1 - R) == pytest.approx(alpha / np.pi * rhs, rel=1e-7)


def test_hebb_large_alpha_limit():
    alpha = np.array([1e2, 1e4, 1e6])
    scaled = np.sqrt(alpha) * tp.generalization_error(tp.hebb_overlap(alpha))
    for a, value in zip(alpha, scaled):
        assert value == pytest.approx(tp.large_alpha_limit("hebb")[1], rel=2 / a)


def test_max_stability_tails():
    """Small α: R → Hebb's overlap and κ → Gardner's κ_c(α) (the R = 0 saddle point), with corrections of order
    R²; large α: α ε → 0.5005 (Opper et al. 1990; Engel & Van den Broeck §4.3)."""
    alpha = np.array([1e-3, 1e-2, 0.1])
    R, kappa = tp.max_stability(alpha)
    np.testing.assert_allclose(R, tp.hebb_overlap(alpha), rtol=0.02)
    assert (np.abs(kappa / tp.gardner_stability(alpha) - 1) < R**2).all()
    assert tp.large_alpha_limit("max_stability")[1] == pytest.approx(0.5005, abs=2e-4)
    R, _ = tp.max_stability(np.array([1e3]))
    assert 1e3 * tp.generalization_error(R[0]) == pytest.approx(0.5005, abs=5e-4)


def test_online_perceptron_against_direct_integration_and_its_limit():
    """The log-α flow against an explicit integration in α itself from a different small-α start; the large-α
    constant of the asymptotic analysis against the flow at α = 10⁶."""
    c = 1 / math.sqrt(2 * math.pi)

    def rhs(a, y):
        rho, Q = y
        R = min(1.0, rho / math.sqrt(Q))
        return [c * (1 - R), math.acos(R) / math.pi - 2 * math.sqrt(Q) * c * (1 - R)]

    checkpoints = np.array([0.5, 4.0, 16.0, 100.0])
    a0 = 1e-6
    sol = integrate.solve_ivp(rhs, (a0, 100.0), [a0 * c, a0 / 2], t_eval=checkpoints, method="DOP853",
                              rtol=1e-11, atol=1e-14)
    np.testing.assert_allclose(tp.online_perceptron(checkpoints), sol.y[0] / np.sqrt(sol.y[1]), rtol=1e-6)
    big = 1e6
    eps = tp.generalization_error(tp.online_perceptron(np.array([big])))[0]
    assert big ** (1 / 3) * eps == pytest.approx(tp.online_perceptron_limit(), rel=1e-3)


def _binary_entropy_by_quadrature(alpha):
    """The binary RS entropy with every Gaussian average by adaptive quadrature (log cosh and log H written with
    logaddexp and log_ndtr) instead of Gauss–Hermite and erfc."""
    R = float(tp.binary_gibbs_branch(alpha))
    qh = tp.conjugate_overlap(R, alpha)

    def dz(f):
        return integrate.quad(lambda z: math.exp(-z * z / 2) / math.sqrt(2 * math.pi) * f(z), -np.inf, np.inf,
                              epsabs=1e-14, limit=200)[0]

    log_cosh = dz(lambda z: np.logaddexp(qh + math.sqrt(qh) * z, -qh - math.sqrt(qh) * z) - math.log(2))
    x = math.sqrt(R / (1 - R))
    channel = dz(lambda t: math.exp(special.log_ndtr(-x * t)) * special.log_ndtr(-x * t))
    return math.log(2) + log_cosh - qh / 2 - qh * R / 2 + 2 * alpha * channel, R, qh


def test_binary_entropy_and_transition_by_quadrature():
    for alpha in (0.25, 1.0, 1.2):
        s, R, qh = _binary_entropy_by_quadrature(alpha)
        assert tp.binary_entropy(alpha) == pytest.approx(s, abs=1e-10)
        # the fixed point R = E_z tanh(q̂ + √q̂ z), by quadrature
        tanh = integrate.quad(lambda z, q=qh: stats.norm.pdf(z) * np.tanh(q + math.sqrt(q) * z), -np.inf, np.inf)[0]
        assert R == pytest.approx(tanh, abs=1e-10)
    alpha_c = optimize.brentq(lambda a: _binary_entropy_by_quadrature(a)[0], 1.2, 1.3, xtol=1e-9)
    assert tp.binary_transition() == pytest.approx(alpha_c, abs=1e-7)


def test_half_load_recovers_a_known_crossing():
    """Probit data with a known crossing: the estimate lies within 2 SE in about 95 % of replicates; a perfectly
    separated fraction gives the middle of its bracket."""
    rng = np.random.default_rng(4)
    x = np.linspace(0.5, 3.0, 11)
    p = stats.norm.sf((x - 1.7) / 0.3)  # falls through ½ at 1.7
    within = []
    for _ in range(200):
        a, se = tp.half_load(x, rng.binomial(64, p), np.full(x.size, 64))
        within.append(abs(a - 1.7) < 2 * se)
    assert 0.9 <= np.mean(within) <= 0.99  # 0.954 expected; binomial SD 0.015
    a, se = tp.half_load([1.0, 2.0, 3.0, 4.0], [0, 0, 10, 10], [10, 10, 10, 10], increasing=True)
    assert (a, se) == pytest.approx((2.5, 0.5 / math.sqrt(3)))
    assert np.isnan(tp.half_load([1.0, 2.0], [10, 9], [10, 10])[0])  # never falls to ½
