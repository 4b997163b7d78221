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
    linear, rf = result.claims
    assert linear.tolerance == dds.LINEAR_SIGMAS and linear.where.startswith("linear min-norm at 2 γ, 3 seeds")
    assert rf.tolerance == dds.RF_FINITE_D and rf.where.startswith("random features at 4 (N/n, λ)")
    lin_rel, rf_rel = dds.relative_deviations(metrics, theory)
    assert 0 <= max(float(lin_rel.max()), float(rf_rel.max())) < 10
    kind = resolve("double_descent")
    for figure in dd.FIGURES:
        assert result.figures[figure].stat().st_size > 20_000
        assert kind.caption_path(figure).exists()
