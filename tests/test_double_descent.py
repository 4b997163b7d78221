"""Double descent: HMRT linear theory and Mei–Montanari random features against simulation, the solvers against
numpy, the digits offline, and the experiment end to end in-process."""

import copy
import math
import socket
from pathlib import Path

import numpy as np
import pytest
import yaml
from conftest import ROOT
from scipy.stats import t as student_t
from threadpoolctl import threadpool_limits

import phaselab
from phaselab import data
from phaselab.config import ConfigError, validate
from phaselab.experiments import double_descent as dd
from phaselab.experiments import resolve
from phaselab.experiments.double_descent import stages as dds
from phaselab.schedules import log_schedule
from phaselab.theory import double_descent as th

TINY = yaml.safe_load((Path(__file__).parent / "configs" / "double_descent.yaml").read_text())


@pytest.fixture(autouse=True)
def one_blas_thread():
    # OpenBLAS threads spinning against other processes make small eigh calls ~100× slower on a busy machine
    with threadpool_limits(limits=1):
        yield


def sem(x):
    return np.std(x, ddof=1) / math.sqrt(len(x))


# ---------------------------------------------------------------------------------------------------------------
# linear regression (Hastie, Montanari, Rosset & Tibshirani 2019)
# ---------------------------------------------------------------------------------------------------------------
def test_ridge_solutions_match_numpy():
    rng = np.random.default_rng(3)
    for n, p in [(30, 12), (12, 30), (20, 21)]:
        x, y = rng.standard_normal((2, n, p)), rng.standard_normal((2, n))
        sol = dds.ridge_solutions(x, y, [0.0, 0.7])
        for s in range(2):
            np.testing.assert_allclose(sol[s, 0], np.linalg.lstsq(x[s], y[s], rcond=None)[0], atol=1e-10)
            np.testing.assert_allclose(sol[s, 1], np.linalg.solve(x[s].T @ x[s] + 0.7 * np.eye(p), x[s].T @ y[s]),
                                       atol=1e-10)


@pytest.mark.parametrize("p", [20, 80])  # γ = 0.5 and γ = 2 at n = 40
def test_minnorm_risk_matches_exact_finite_n_expectation(p):
    n, r2, s2, seeds = 40, 1.0, 0.5, 600
    risk = dds.linear_risks(n, p, r2, s2, [], seeds, config_seed=11)[:, 0]
    expected = float(th.minnorm_risk_finite(n, p, r2, s2))  # 0.526 (γ = 0.5), 1.0128 (γ = 2)
    assert expected == pytest.approx(0.5 * 20 / 19 if p == 20 else 0.5 + 0.5 * 40 / 39)
    assert abs(risk.mean() - expected) < 3 * sem(risk), (risk.mean(), sem(risk), expected)


@pytest.mark.parametrize("gamma", [0.5, 2.0])
def test_minnorm_risk_approaches_the_asymptotic_curve(gamma):
    n, r2, s2 = 400, 1.0, 0.5
    risk = dds.linear_risks(n, round(gamma * n), r2, s2, [], 40, config_seed=5)[:, 0]
    asymptotic = float(th.minnorm_risk(gamma, r2, s2))  # 0.5 and 1.0
    assert asymptotic == pytest.approx(0.5 if gamma < 1 else 1.0)
    # the finite-n correction at n = 400 is below 0.5 %: the seed error dominates
    assert abs(risk.mean() - asymptotic) < 3 * sem(risk) + 0.005 * asymptotic


def test_marchenko_pastur_stieltjes_against_wishart_eigenvalues():
    rng = np.random.default_rng(0)
    n, p, lam = 800, 1600, 0.3  # γ = 2: half the eigenvalues of XᵀX/n are zero
    x = rng.standard_normal((n, p))
    nonzero = np.linalg.eigvalsh(x @ x.T / n)
    empirical = (np.sum(1.0 / (nonzero + lam)) + (p - n) / lam) / p
    assert float(th.mp_stieltjes(lam, p / n)) == pytest.approx(empirical, rel=5e-3)
    h = 1e-5  # m'(z) at z = −λ is −d/dλ m(−λ)
    fd = -(th.mp_stieltjes(lam + h, 2.0) - th.mp_stieltjes(lam - h, 2.0)) / (2 * h)
    assert float(th.mp_stieltjes_derivative(lam, 2.0)) == pytest.approx(float(fd), rel=1e-6)
    # γ → 0: the law concentrates at 1, m(−λ) → 1/(1 + λ)
    assert float(th.mp_stieltjes(lam, 1e-9)) == pytest.approx(1 / (1 + lam), rel=1e-6)


@pytest.mark.parametrize("gamma", [0.5, 2.0])
def test_ridge_optimum_is_the_closed_form(gamma):
    from scipy.optimize import minimize_scalar

    r2, s2 = 1.0, 0.5
    best = minimize_scalar(lambda t: float(th.ridge_risk(gamma, math.exp(t), r2, s2)), bounds=(-8, 4),
                           method="bounded", options={"xatol": 1e-9})
    assert math.exp(best.x) == pytest.approx(s2 * gamma / r2, rel=1e-3)  # λ* = σ²γ/r²
    assert best.fun == pytest.approx(float(th.optimal_ridge_risk(gamma, r2, s2)), rel=1e-9)
    # by hand, R(λ*) = σ²γ m(−λ*), m = 2/(b + √(b² + 4γλ*)), b = 1 − γ + λ*: γ = 0.5 (λ* = 0.25, b = 0.75) gives
    # 0.25 · 2/(0.75 + √1.0625) = 0.2808; γ = 2 (λ* = 1, b = 0) gives 1 · 2/√8 = 1/√2
    assert float(th.optimal_ridge_risk(gamma, r2, s2)) == pytest.approx(
        {0.5: 0.280776406, 2.0: 1 / math.sqrt(2)}[gamma], rel=1e-8)
    # simulation at n = 200: risk at λ* matches the closed form and beats λ*/4 and 4λ* on the same problems
    n, lam_star = 200, s2 * gamma / r2
    risks = dds.linear_risks(n, round(gamma * n), r2, s2, [lam_star / 4, 4 * lam_star], 60, config_seed=2)
    at_opt = risks[:, -1]
    assert abs(at_opt.mean() - float(th.optimal_ridge_risk(gamma, r2, s2))) < 3 * sem(at_opt) + 0.01
    for k in (1, 2):
        assert (risks[:, k] - at_opt).mean() > 0


# ---------------------------------------------------------------------------------------------------------------
# random features (Mei & Montanari 2019)
# ---------------------------------------------------------------------------------------------------------------
def test_relu_coefficients_by_quadrature():
    from scipy.integrate import quad

    def gauss(f):
        return quad(lambda g: f(g) * math.exp(-g * g / 2) / math.sqrt(2 * math.pi), -np.inf, np.inf)[0]

    mu0, mu1, mu_star = th.relu_coefficients()
    assert mu0 == pytest.approx(gauss(lambda g: max(g, 0.0)), rel=1e-8)
    assert mu1 == pytest.approx(gauss(lambda g: g * max(g, 0.0)), rel=1e-8)
    assert mu_star**2 == pytest.approx(gauss(lambda g: max(g, 0.0) ** 2) - mu0**2 - mu1**2, rel=1e-8)


@pytest.mark.parametrize("psi1,psi2,lam_bar", [(0.5, 3.0, 0.01), (3.0, 1.5, 0.1), (6.0, 3.0, 1.0), (2.0, 2.0, 0.05)])
def test_rf_scalar_root_solves_the_fixed_point_equations(psi1, psi2, lam_bar):
    _, mu1, mu_star = th.relu_coefficients()
    zeta = mu1 / mu_star
    nu1, nu2 = th.rf_fixed_point(1j * math.sqrt(psi1 * psi2 * lam_bar), psi1, psi2, zeta)
    assert nu1.imag > 0 and nu2.imag > 0
    assert th.rf_chi(psi1, psi2, lam_bar, zeta) == pytest.approx((nu1 * nu2).real, rel=1e-8, abs=1e-12)
    assert abs((nu1 * nu2).imag) < 1e-10


def test_rf_ridgeless_chi_is_the_closed_form_of_their_theorem_3():
    _, mu1, mu_star = th.relu_coefficients()
    zeta = mu1 / mu_star
    for psi1, psi2 in [(0.5, 3.0), (3.0, 1.5), (2.0, 2.0)]:
        psi = min(psi1, psi2)
        b = psi * zeta**2 - zeta**2 - 1
        closed = -(b + math.sqrt(b * b + 4 * zeta**2 * psi)) / (2 * zeta**2)
        assert th.rf_chi(psi1, psi2, 0.0, zeta) == pytest.approx(closed, rel=1e-12)
        assert th.rf_chi(psi1, psi2, 1e-12, zeta) == pytest.approx(closed, rel=1e-4)


@pytest.mark.parametrize("n_features,ridge,seeds", [(150, 1e-3, 30), (900, 1e-3, 6), (900, 0.0, 6)])
def test_rf_theory_matches_simulation(n_features, ridge, seeds):
    d, n, signal, noise = 100, 300, 1.0, 0.25
    err = dds.rf_test_errors(d, n, n_features, signal, noise, [ridge], seeds, 2000, config_seed=4)[:, 0]
    theory = float(th.rf_risk(n_features / d, n / d, ridge, signal, noise))
    # finite d = 100 corrections are a few per cent (Mei & Montanari 2019, Fig. 1 at d = 100)
    assert abs(err.mean() - theory) < 3 * sem(err) + 0.05 * theory, (err.mean(), sem(err), theory)


def test_rf_ridgeless_peak_is_infinite_and_ridge_tames_it():
    below, at, above = th.rf_risk([0.9, 1.0, 1.1], 1.0, 0.0, 1.0, 0.25)
    assert math.isinf(at) and below > 1 and above > 1
    assert float(th.rf_risk(1.0, 1.0, 0.1, 1.0, 0.25)) < 1.0


# ---------------------------------------------------------------------------------------------------------------
# data and config
# ---------------------------------------------------------------------------------------------------------------
def test_digits_load_offline(monkeypatch):
    # import scikit-learn first: its import chain (joblib → asyncio → ssl) subclasses socket.socket, which the
    # patch below replaces; the test is about the loader reaching the network, not about module imports
    import sklearn.datasets  # noqa: F401

    def no_network(*args, **kwargs):
        raise OSError("network access attempted")

    monkeypatch.setattr(socket, "socket", no_network)
    monkeypatch.setattr(socket, "create_connection", no_network)
    x, labels = data.load_digits_standardised()
    assert x.shape == (1797, 64) and x.dtype == np.float32
    assert set(np.unique(labels)) == set(range(10)) and np.bincount(labels).min() >= 170
    std = x.std(axis=0)
    np.testing.assert_allclose(x.mean(axis=0), 0.0, atol=1e-5)
    assert np.all((np.abs(std - 1) < 1e-4) | (std == 0)) and (std == 0).sum() == 3  # 3 pixels are always blank


def test_shipped_config_is_valid():
    config = yaml.safe_load((ROOT / "config" / "double_descent.yaml").read_text())
    validate(config)
    exp = config["experiments"]["double_descent"]
    assert [c.id for c in dd.cells(exp)][:2] == ["linear", "random_features"]


def test_cells_are_typed():
    config = validate(copy.deepcopy(TINY))
    cells = dd.cells(config["experiments"]["dd"])
    assert [(c.id, c.data, c.part, c.width) for c in cells] == [
        ("linear", None, "linear", None), ("random_features", None, "random_features", None),
        ("width4", "digits", "network", 4), ("width32", "digits", "network", 32)]


def test_check_rejects_bad_grids():
    for path, value, message in [("linear.gamma", [1.0], "within 1 of n"), ("linear.gamma", [0.5, 0.51], "same p"),
                                 ("random_features.ratio", [2.0, 2.0], "duplicate")]:
        bad = copy.deepcopy(TINY)
        section, key = path.split(".")
        bad["experiments"]["dd"][section][key] = value
        with pytest.raises(ConfigError, match=message):
            validate(bad)


def test_end_to_end_in_process(tmp_path):
    result = phaselab.run(TINY, "dd", results=tmp_path / "results")
    metrics, theory = result.metrics, result.theory
    assert metrics["minnorm_risk"].dims == ("gamma", "linear_seed")
    assert metrics["ridge_risk"].sizes == {"gamma": 2, "ridge": 1, "linear_seed": 3}
    assert metrics["rf_test_error"].sizes == {"rf_ratio": 2, "rf_ridge": 2, "rf_seed": 2}
    assert metrics["test_error"].dims == ("label_noise", "width", "seed", "step")
    assert metrics["test_error"].sizes["step"] == len(log_schedule(30, 4))
    assert set(np.unique(metrics["status"].values)) <= {"ok", "diverged"}
    np.testing.assert_allclose(metrics["gamma"], [0.5, 2.0])
    for var in ("gamma", "rf_ratio", "width", "step", "minnorm_risk", "test_error"):
        assert metrics[var].attrs["units"] and metrics[var].attrs["long_name"], var
    for key in ("config_sha256", "git_revision", "torch_version", "device"):
        assert metrics.attrs[key], key
    # theory on the simulated coordinates (and a dense grid around them)
    assert set(metrics["gamma"].values) <= set(theory["gamma"].values)
    assert set(metrics["rf_ratio"].values) <= set(theory["rf_ratio"].values)
    assert float(theory["interpolation_threshold"]) == pytest.approx(60 * 10 / 74)
    # the untrained network is at chance; training lowers the training loss of every member
    assert float(metrics["train_error"].isel(step=0).mean()) > 0.7
    ok = metrics["status"] == "ok"
    assert ok.sum() >= 6  # lr 8 may blow up a width-4 member: it is then recorded, not averaged
    assert ((metrics["train_loss"].isel(step=-1) < metrics["train_loss"].isel(step=0)) | ~ok).all()
    assert metrics["train_loss"].isel(step=-1).where(~ok).isnull().all()
    # claims, recomputed from the numbers: HMRT min-norm, ridge, optimal ridge, no peak at λ*, Mei–Montanari (no
    # width claims: two widths have no interior peak)
    names = [c.text.split(":")[0] for c in result.claims]
    assert len(result.claims) == 5, names
    minnorm, ridge, optimal, monotone, rf = result.claims
    risk = metrics["minnorm_risk"].transpose("gamma", "linear_seed").values
    exact = th.minnorm_risk_finite(40, np.array([20, 80]), 1.0, 0.25)
    z = np.abs(risk.mean(1) - exact) / (risk.std(1, ddof=1) / math.sqrt(3))
    assert minnorm.measured == pytest.approx(z.max(), rel=1e-9)
    assert minnorm.tolerance == pytest.approx(student_t.ppf(1 - 0.0027 / 4, 2))  # 3 seeds, 2 γ: 17.1
    opt = metrics["optimal_ridge_risk"].transpose("gamma", "linear_seed").values
    drop = (opt[0].mean() - opt[1].mean()) / math.hypot(*(opt.std(1, ddof=1) / math.sqrt(3)))
    assert monotone.measured == pytest.approx(max(drop, 0.0), abs=1e-12)
    assert ridge.tolerance == optimal.tolerance == pytest.approx(student_t.ppf(1 - 0.0027 / 4, 2))
    for claim in (minnorm, ridge, optimal, monotone):
        assert claim.figure == "linear_double_descent" and claim.verdict == "agrees", claim
    assert rf.tolerance == dds.RF_FINITE_D and rf.where.startswith("random features at 4 (N/n, λ)")
    assert rf.figure == "random_features"
    lin_rel, rf_rel = dds.relative_deviations(metrics, theory)
    assert 0 <= max(float(lin_rel.max()), float(rf_rel.max())) < 10
    kind = resolve("double_descent")
    for figure in dd.FIGURES:
        assert result.figures[figure].stat().st_size > 20_000
        assert kind.caption_path(figure).exists()


# ---------------------------------------------------------------------------------------------------------------
# theory against independent routes over the whole documented domain, tails included
# ---------------------------------------------------------------------------------------------------------------
def mp_moments_by_quadrature(lam, gamma):
    """(∫ dμ_c/(s + λ), ∫ dμ_c/(s + λ)², atom) of the continuous part μ_c of the Marchenko–Pastur law of ratio γ,
    by quadrature of its density √((b − s)(s − a))/(2πγs) on [a, b] = [(1 ∓ √γ)²], and its atom 1 − 1/γ at 0."""
    from scipy.integrate import quad

    a, b = (1 - math.sqrt(gamma)) ** 2, (1 + math.sqrt(gamma)) ** 2

    def moment(k):  # s = a + (b − a) sin²(θ/2) removes the square-root endpoints
        def f(theta):
            s = a + (b - a) * math.sin(theta / 2) ** 2
            return (b - a) ** 2 * math.sin(theta) ** 2 / 4 / (2 * math.pi * gamma * s) / (s + lam) ** k

        return quad(f, 0, math.pi, epsabs=0, epsrel=1e-11, limit=400)[0]

    return moment(1), moment(2), max(0.0, 1 - 1 / gamma)


GAMMAS = [1e-4, 0.01, 0.3, 0.9, 0.999, 1.0, 1.001, 1.5, 4.0, 100.0, 1e4]
LAMBDAS = [1e-6, 1e-3, 0.1, 1.0, 30.0, 1e4]


@pytest.mark.parametrize("gamma", GAMMAS)
def test_mp_stieltjes_and_ridge_risk_against_quadrature_of_the_density(gamma):
    r2, s2 = 1.3, 0.4
    for lam in LAMBDAS:
        m, dm, atom = mp_moments_by_quadrature(lam, gamma)
        assert float(th.mp_stieltjes(lam, gamma)) == pytest.approx(m + atom / lam, rel=1e-7), lam
        assert float(th.mp_stieltjes_derivative(lam, gamma)) == pytest.approx(dm + atom / lam**2, rel=1e-6), lam
        # HMRT Theorem 5 from the spectrum: bias r²λ²∫dμ/(s+λ)², variance σ²γ∫s dμ/(s+λ)² (the atom at 0 adds r²
        # to the bias and nothing to the variance)
        risk = r2 * (lam**2 * dm + atom) + s2 * gamma * (m - lam * dm)
        assert float(th.ridge_risk(gamma, lam, r2, s2)) == pytest.approx(risk, rel=1e-6), lam


@pytest.mark.parametrize("gamma", [1e-4, 0.2, 0.9, 1.1, 3.0, 1e3])
def test_ridge_risk_tends_to_the_minnorm_risk_and_to_the_null_risk(gamma):
    r2, s2 = 1.0, 0.25
    # λ → 0+: min-norm least squares (HMRT Theorem 1); relative error O(λ/|1 − √γ|²)
    assert float(th.ridge_risk(gamma, 1e-9, r2, s2)) == pytest.approx(float(th.minnorm_risk(gamma, r2, s2)),
                                                                          rel=1e-5)
    # λ → ∞: β̂ → 0, risk → r²
    assert float(th.ridge_risk(gamma, 1e9, r2, s2)) == pytest.approx(r2, rel=1e-6)
    # the optimum lies below both ends and below the min-norm risk
    opt = float(th.optimal_ridge_risk(gamma, r2, s2))
    assert opt < min(r2, float(th.minnorm_risk(gamma, r2, s2)))


def test_minnorm_risk_tails_and_finite_n_limit():
    r2, s2 = 1.0, 0.25
    assert float(th.minnorm_risk(1e-8, r2, s2)) == pytest.approx(s2 * 1e-8, rel=1e-6)  # σ²γ/(1 − γ)
    assert float(th.minnorm_risk(1e8, r2, s2)) == pytest.approx(r2, rel=1e-7)  # r²(1 − 1/γ) + σ²/(γ − 1)
    assert math.isinf(float(th.minnorm_risk(1.0, r2, s2)))
    # the exact finite-n risk tends to the asymptotic one as n → ∞ at fixed γ, with a 1/(|p − n| − 1) correction
    for gamma in (0.3, 0.8, 1.25, 4.0):
        n = 10**6
        p = gamma * n
        exact, limit = float(th.minnorm_risk_finite(n, p, r2, s2)), float(th.minnorm_risk(gamma, r2, s2))
        assert exact == pytest.approx(limit, rel=2.0 / abs(p - n))


def test_optimal_ridge_risk_is_monotone_in_gamma_no_peak():
    gamma = np.geomspace(1e-4, 1e4, 4001)
    risk = th.optimal_ridge_risk(gamma, 1.0, 0.25)
    assert np.all(np.diff(risk) > 0) and np.all(np.isfinite(risk))
    assert risk[0] == pytest.approx(0.25 * 1e-4, rel=1e-3) and risk[-1] == pytest.approx(1.0, rel=1e-3)
    # it is the smallest ridge risk at every γ (checked on a λ grid)
    lam = np.geomspace(1e-4, 1e4, 161)[None, :]
    g = np.geomspace(1e-2, 1e2, 41)[:, None]
    assert np.all(th.ridge_risk(g, lam, 1.0, 0.25) >= th.optimal_ridge_risk(g, 1.0, 0.25) * (1 - 1e-12))


@pytest.mark.parametrize("psi1,psi2,lam_bar", [(1e-3, 3.0, 0.1), (0.5, 3.0, 1e-4), (3.0, 1.5, 10.0),
                                               (300.0, 3.0, 0.01), (3.0, 300.0, 0.01), (2.0, 2.0, 1e-3)])
def test_rf_chi_against_the_fixed_point_iteration_over_the_domain(psi1, psi2, lam_bar):
    _, mu1, mu_star = th.relu_coefficients()
    zeta = mu1 / mu_star
    nu1, nu2 = th.rf_fixed_point(1j * math.sqrt(psi1 * psi2 * lam_bar), psi1, psi2, zeta)
    assert th.rf_chi(psi1, psi2, lam_bar, zeta) == pytest.approx((nu1 * nu2).real, rel=1e-7, abs=1e-12)


def test_rf_risk_limits():
    r2, t2 = 1.0, 0.25
    # no features (ψ₁ → 0) or infinite ridge: f = 0, error F₁²
    assert float(th.rf_risk(1e-6, 3.0, 0.1, r2, t2)) == pytest.approx(r2, rel=1e-4)
    assert float(th.rf_risk(3.0, 3.0, 1e6, r2, t2)) == pytest.approx(r2, rel=1e-4)
    # ψ₁ → ∞ (kernel limit) is finite and the curve flattens; the ridgeless peak is at ψ₁ = ψ₂
    far = th.rf_risk([1e3, 1e4], 3.0, 0.0, r2, t2)
    assert np.all(np.isfinite(far)) and abs(far[1] - far[0]) < 1e-2 * far[1]
    near = th.rf_risk([2.9, 2.99, 3.01, 3.1], 3.0, 0.0, r2, t2)
    assert near[1] > near[0] > 1 and near[2] > near[3] > 1


# ---------------------------------------------------------------------------------------------------------------
# the width peak's claims, computed from known numbers
# ---------------------------------------------------------------------------------------------------------------
def width_dataset(errors, widths, train=None, n_train=200):
    """A metrics dataset of final test errors errors[seed, width] at label noise 0.4 (one step)."""
    import xarray as xr

    errors = np.asarray(errors, dtype=float)
    train = np.zeros_like(errors) if train is None else np.asarray(train, dtype=float)
    dims = ("label_noise", "width", "seed", "step")
    return xr.Dataset(
        {"test_error": (dims, errors.T[None, :, :, None]), "train_error": (dims, train.T[None, :, :, None]),
         "status": (dims[:3], np.full((1, len(widths), errors.shape[0]), "ok"))},
        coords={"label_noise": [0.4], "width": widths, "seed": np.arange(errors.shape[0]), "step": [10]},
        attrs={"network_n_train": n_train})


def test_width_peak_claims_from_known_numbers():
    import xarray as xr

    widths = [8, 16, 32, 64, 128]
    base = np.array([0.50, 0.45, 0.60, 0.52, 0.40])  # the peak at 32: its left neighbour 0.45, the lowest beyond 0.40
    wiggle = np.array([[0.01, -0.01, 0.02, 0.0, 0.01], [-0.01, 0.01, -0.02, 0.01, 0.0], [0.0, 0.0, 0.03, -0.01, 0.0],
                       [0.0, 0.0, -0.01, 0.0, -0.01]])
    train = np.where(np.array(widths) >= 32, 0.0, 0.1) * np.ones((4, 1))
    metrics = width_dataset(base + wiggle, widths, train)
    theory = xr.Dataset({"interpolation_threshold": ((), 200 * 10 / 74)})
    peak, where = dds.width_claims(metrics, theory)
    diff = (base + wiggle)[:, 2] - (base + wiggle)[:, 1]  # the left neighbour (0.45) is above the lowest beyond
    half = student_t.ppf(0.975, 3) * diff.std(ddof=1) / 2  # 4 seeds
    assert peak.measured == pytest.approx(diff.mean()) == pytest.approx(0.15 + 0.005)
    assert peak.uncertainty == pytest.approx(half) and peak.verdict == "agrees"
    assert "peak at h = 32" in peak.where and "smallest fitting width 32" in peak.where
    assert where.measured == pytest.approx(math.log2(32 / (2000 / 74)))  # 0.244
    assert where.tolerance == pytest.approx(1.0) and where.verdict == "agrees"  # log2 spacing of the grid
    # a curve that only descends has no peak: the best interior excess is negative and its interval below 0
    falling = width_dataset(np.array([0.6, 0.5, 0.4, 0.3, 0.2]) + wiggle, widths)
    peak, where = dds.width_claims(falling, theory)
    assert peak.measured < 0 and peak.verdict == "disagrees"
    # one seed wild at the peak: the interval straddles 0
    noisy = base + wiggle
    noisy[0, 2] = 1.2
    noisy[1:, 2] = 0.40
    assert dds.width_claims(width_dataset(noisy, widths), theory)[0].verdict == "inconclusive"


def test_t_cut_is_the_student_quantile_of_the_3_sigma_rate():
    assert dds.t_cut(10**6) == pytest.approx(3.0, abs=1e-3)  # Gaussian limit: 3σ
    assert dds.t_cut(3) == pytest.approx(19.21, abs=0.01)  # 2 degrees of freedom, p = 0.0027
    assert dds.t_cut(20, 14) > dds.t_cut(20) > 3.0  # Bonferroni over 14 points, 19 degrees of freedom
    assert math.isinf(dds.t_cut(1))


def test_finite_n_allowance_is_the_exact_minnorm_correction():
    import xarray as xr

    n, ps = 200, np.array([20, 100, 180, 220, 400])
    metrics = xr.Dataset({"n_features": (("gamma",), ps)}, coords={"gamma": ps / n}, attrs={"linear_n": n})
    asymptotic = xr.DataArray(th.minnorm_risk(ps / n, 1.0, 0.25), dims="gamma", coords={"gamma": ps / n})
    allowance = dds.finite_n_allowance(metrics, asymptotic).values
    exact = th.minnorm_risk_finite(n, ps, 1.0, 0.25)
    under = ps < n  # σ²p/(n − p − 1) − σ²γ/(1 − γ) is exactly σ²γ/(1 − γ) · 1/(n − p − 1)
    np.testing.assert_allclose(allowance[under], (exact - asymptotic.values)[under], rtol=1e-12)
    variance = 0.25 / (ps / n - 1)  # over-parameterised: the variance term σ²/(γ − 1) carries the correction
    np.testing.assert_allclose((exact - asymptotic.values)[~under], (variance / (ps - n - 1))[~under], rtol=1e-12)
    assert np.all(allowance[~under] >= (exact - asymptotic.values)[~under])
