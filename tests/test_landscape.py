"""The exact population losses of the landscape experiment against independent routes (Monte Carlo, finite
differences, the Saad–Solla ODE), the end-point classification, and the tiny config end to end."""

from pathlib import Path

import numpy as np

import phaselab
from phaselab.theory import committee as C
from phaselab.theory import landscape as L

CONFIG = Path(__file__).parent / "configs" / "landscape.yaml"


def test_relu_loss_against_monte_carlo():
    """The arc-cosine closed form F(W) against a Monte Carlo average over Gaussian inputs (within 4 SE)."""
    gen = np.random.default_rng(0)
    V = L.teacher(5)
    W = gen.standard_normal((4, 6, 5)) / np.sqrt(5)
    mc, se = L.relu_monte_carlo(W, V, 400_000, gen)
    assert np.all(np.abs(L.relu_loss(W, V) - mc) < 4 * se)
    # the zero student: F(0) = ½ Σ κ(v_i, v_m) = k/4 + k(k − 1)/(4π)
    assert np.isclose(L.relu_loss(np.zeros((1, 1, 5)), V)[0], 5 / 4 + 20 / (4 * np.pi))


def test_relu_kernel_against_monte_carlo():
    gen = np.random.default_rng(1)
    w, u = gen.standard_normal((2, 1, 1, 3))
    x = gen.standard_normal((1_000_000, 3))
    mc = np.mean(np.maximum(x @ w[0, 0], 0) * np.maximum(x @ u[0, 0], 0))
    assert abs(L.relu_kernel(w, u)[0, 0, 0] - mc) < 0.01 * abs(mc) + 3e-3


def _fd_grad(loss, X, h=1e-6):
    g = np.zeros_like(X)
    for idx in np.ndindex(X.shape[1:]):
        E = np.zeros_like(X)
        E[(slice(None),) + idx] = h
        g[(slice(None),) + idx] = (loss(X + E) - loss(X - E)) / (2 * h)
    return g


def test_relu_gradient_against_finite_differences():
    gen = np.random.default_rng(2)
    V = L.teacher(4)
    W = gen.standard_normal((3, 5, 4))
    g = L.relu_grad(W, V)
    np.testing.assert_allclose(g, _fd_grad(lambda X: L.relu_loss(X, V), W), atol=1e-7)
    assert np.abs(g).max() > 0.05


def test_committee_risk_and_gradient():
    """Reduced-coordinate erf risk against committee.risk; its gradient against finite differences; the gradient
    flow da/dτ = −p∇R against the O(η) part of the Saad–Solla ODE (committee.rhs at η = ±1)."""
    gen = np.random.default_rng(3)
    k, p = 3, 4
    a = 0.7 * gen.standard_normal((2, p, k + p))
    Q, M = L.committee_order_parameters(a, k)
    np.testing.assert_allclose(L.committee_risk(a, k), C.risk(Q, M, np.eye(k)), rtol=1e-12)
    g = L.committee_grad(a, k)
    np.testing.assert_allclose(g, _fd_grad(lambda X: L.committee_risk(X, k), a), atol=1e-8)
    (dq_plus, dm), (dq_minus, _) = C.rhs(Q, M, np.eye(k), 1.0), C.rhs(Q, M, np.eye(k), -1.0)
    da = -p * g
    np.testing.assert_allclose(da @ a.transpose(0, 2, 1) + a @ da.transpose(0, 2, 1), (dq_plus - dq_minus) / 2,
                               atol=1e-12)
    np.testing.assert_allclose(da[..., :k], dm, atol=1e-12)
    # the finite-d initialisation reduces exactly: Q = aaᵀ, M = a[:, :k]
    d = 50
    W = gen.standard_normal((2, p, d))
    Wt = np.sqrt(d) * np.linalg.qr(gen.standard_normal((d, k)))[0].T
    Q0, M0, _ = C.order_parameters(W, Wt)
    Qa, Ma = L.committee_order_parameters(L.committee_reduce(W, Wt), k)
    np.testing.assert_allclose(Qa, Q0, atol=1e-12)
    np.testing.assert_allclose(Ma, M0, atol=1e-12)


def test_hessian_and_classification():
    """The finite-difference Hessian of a quadratic is exact; GD from the teacher's permutation stays at the global
    minimum; the classes follow loss, gradient and the smallest eigenvalue."""
    A = np.diag([2.0, -1.0, 0.5])

    def grad(X):
        return X @ A

    H = L.hessian_fd(grad, np.ones((2, 3)))
    np.testing.assert_allclose(H[0], A, atol=1e-8)
    assert np.allclose(L.min_hessian_eigenvalue(grad, np.ones((2, 3))), -1.0)
    V = L.teacher(6)
    out = L.descend(lambda X: L.relu_loss(X, V), lambda X: L.relu_grad(X, V), V[None, ::-1], 0.3, 100,
                    loss_tol=1e-10, grad_tol=1e-12)
    assert out["loss"][0] < 1e-10 and out["steps"][0] == 0 or out["loss"][0] < 1e-10
    cls = L.classify([0.0, 0.1, 0.1, 0.1], [1.0, 1e-9, 1e-9, 1e-3], [np.nan, 1e-3, -1e-2, 0.0], loss_tol=1e-4,
                     grad_tol=1e-7, eig_tol=1e-6)
    assert list(cls) == [L.GLOBAL, L.SPURIOUS, L.SADDLE, L.NOT_CONVERGED]


def test_relu_spurious_minimum_is_a_minimum():
    """At k = n = 8 gradient descent from random inits finds a point of positive loss, zero gradient and
    positive-semidefinite Hessian (Safran & Shamir 2018): a spurious minimum, not a saddle."""
    gen = np.random.default_rng(5)
    V = L.teacher(8)
    out = L.descend(lambda X: L.relu_loss(X, V), lambda X: L.relu_grad(X, V),
                    gen.standard_normal((40, 8, 8)) / np.sqrt(8), 0.25, 20000, loss_tol=1e-6, grad_tol=1e-7)
    stuck = (out["loss"] > 1e-3) & (out["grad_norm"] < 1e-7)
    assert stuck.any()
    lam = L.min_hessian_eigenvalue(lambda X: L.relu_grad(X, V), out["X"][stuck])
    assert np.all(lam > -1e-6)
    # and the loss of a spurious minimum is the exact closed form at its point, confirmed by Monte Carlo
    mc, se = L.relu_monte_carlo(out["X"][stuck][:1], V, 400_000, gen)
    assert abs(mc[0] - out["loss"][stuck][0]) < 4 * se[0]


def test_tiny_config_end_to_end(tmp_path):
    result = phaselab.run(str(CONFIG), results=tmp_path)
    assert all(path.exists() for path in result.figures.values()) and len(result.figures) == 3
    assert len(result.claims) == 6
    m = result.metrics
    # every init classified, the classes are the four named ones, fractions sum to 1
    assert set(np.unique(m["relu_class"].values)) <= set(L.CLASSES) | {"diverged"}
    total = sum(result.theory[f"relu_frac_{c.replace(' ', '_')}"] for c in L.CLASSES)
    np.testing.assert_allclose(total.values, 1.0)
    # p = k erf committees reach zero risk (k = 3: no spurious minima)
    assert (m["erf_class"].sel(p_over_k=1) == L.GLOBAL).all()
    for var in list(m.data_vars) + list(m.coords):
        assert "long_name" in m[var].attrs, var
