"""Tests of the phase diagram's theory (every cell with an ODE limit gets its curve; which theory applies to each)
and of its claims, against independent routes: a direct scipy solve of the Saad–Solla ODE, the orange ODE at the
paper's time τ, weighted least squares in closed form, and synthetic simulations with a known finite-size law."""
import numpy as np
import pytest
import xarray as xr
from scipy.integrate import solve_ivp

from phaselab.experiments.sgd_phase_diagram import stages
from phaselab.theory import committee as cm
from phaselab.theory import phase_diagram as pdt
from phaselab.theory.trade_off import orange_limit, plateau

D, KAPPA, DELTA, SEEDS = [100, 400, 1600], [0.0], [-0.75, -0.25, 0.0, 0.5], 4
TIMES = [0.0, 0.1, 0.3, 1.0, 3.0, 10.0, 30.0]
K, NOISE, GAMMA0 = 1, 0.01, 1.0


def test_theory_regime_of_every_region():
    assert pdt.theory_regime(0.0, 0.0, 1, 16) == pdt.SAAD_SOLLA
    assert pdt.theory_regime(0.25, -0.25, 4, 16) == pdt.SAAD_SOLLA
    assert pdt.theory_regime(0.0, 0.25, 1, 16) == pdt.PERFECT
    assert pdt.theory_regime(0.5, -0.25, 8, 16) == pdt.PERFECT
    assert pdt.theory_regime(0.0, -0.25, 1, 16) == pdt.ORANGE
    assert pdt.theory_regime(0.25, -0.7, 2, 16) == pdt.ORANGE
    assert pdt.theory_regime(0.0, -0.5, 1, 16) == pdt.NO_LIMIT  # the boundary has no ODE limit
    assert pdt.theory_regime(0.0, -0.75, 1, 16) == pdt.NO_LIMIT
    assert pdt.theory_regime(0.5, 0.0, 32, 16) == pdt.TOO_WIDE
    assert pdt.theory_regime(0.5, -1.25, 32, 16) == pdt.NO_LIMIT  # no limit wins over the width


def _metrics(seed=0):
    """A phase-diagram metrics Dataset with real initial order parameters (p = 1, k = 1) and no simulation yet."""
    rng = np.random.default_rng(seed)
    shape = (len(D), len(KAPPA), len(DELTA), SEEDS)
    W = rng.normal(size=(len(D), len(KAPPA), SEEDS, 1, 3))  # unit-variance student in 3 directions, teacher e_1
    Q0 = np.einsum("...id,...jd->...ij", W, W) / 3
    M0 = W[..., :1] * 0.3
    eta = np.array([[[GAMMA0 * d ** (-dl) for dl in DELTA] for _ in KAPPA] for d in D])
    m = xr.Dataset(
        {"risk": (("d", "kappa", "delta", "seed", "time"), np.full(shape + (len(TIMES),), np.nan)),
         "final_risk": (("d", "kappa", "delta", "seed"), np.full(shape, np.nan)),
         "status": (("d", "kappa", "delta", "seed"), np.full(shape, "ok")),
         "width": (("d", "kappa"), np.ones((len(D), len(KAPPA)), int)),
         "eta": (("d", "kappa", "delta"), eta),
         "horizon": (("d", "kappa"), np.full((len(D), len(KAPPA)), TIMES[-1])),
         "capped": (("d", "kappa", "delta"), np.zeros(eta.shape, bool)),
         "Q0": (("d", "kappa", "seed", "student", "student_"), Q0),
         "M0": (("d", "kappa", "seed", "student", "teacher"), M0)},
        coords={"d": D, "kappa": KAPPA, "delta": DELTA, "seed": np.arange(SEEDS), "time": TIMES},
        attrs={"teacher_k": K, "noise": NOISE, "gamma0": GAMMA0})
    return m


@pytest.fixture(scope="module")
def theory():
    m = _metrics()
    return m, pdt.phase_diagram_theory(m, max_width=16)


def test_every_cell_with_an_ode_limit_gets_its_curve(theory):
    m, th = theory
    regime = th["theory_regime"].sel(d=400, kappa=0.0)
    assert list(regime.values) == [pdt.NO_LIMIT, pdt.ORANGE, pdt.SAAD_SOLLA, pdt.PERFECT]
    ode = th["ode_risk"]
    assert ode.sel(delta=-0.75).isnull().all()  # κ + δ ≤ −½: no curve
    for dl in (-0.25, 0.0, 0.5):
        assert ode.sel(delta=dl).notnull().all()
    lim = th["orange_limit_risk"]
    assert lim.sel(delta=-0.25).notnull().all() and lim.drop_sel(delta=-0.25).isnull().all()
    # the ODE starts where each seed's simulation starts: the risk of its own (Q0, M0)
    r0 = cm.risk(m["Q0"].values.reshape(-1, 1, 1), m["M0"].values.reshape(-1, 1, 1), np.eye(K), 1, K)
    np.testing.assert_allclose(ode.isel(time=0).sel(delta=-0.25).values.ravel(), r0, rtol=1e-12)


@pytest.mark.parametrize("d, delta", [(1600, -0.25), (100, 0.5)])
def test_ode_of_a_cell_against_a_direct_scipy_solve(theory, d, delta):
    """The cell's own η: orange region (η = d^¼ ≈ 6.3) and perfect-learning region alike."""
    m, th = theory
    Q0, M0 = m["Q0"].sel(d=d, kappa=0.0, seed=2).values, m["M0"].sel(d=d, kappa=0.0, seed=2).values
    eta, P = float(m["eta"].sel(d=d, kappa=0.0, delta=delta)), np.eye(K)

    def f(_, y):
        dQ, dM = cm.rhs(y[:1].reshape(1, 1, 1), y[1:].reshape(1, 1, 1), P, eta, NOISE)
        return np.concatenate([dQ.ravel(), dM.ravel()])

    sol = solve_ivp(f, (0, TIMES[-1]), np.concatenate([Q0.ravel(), M0.ravel()]), t_eval=TIMES, method="DOP853",
                    rtol=1e-10, atol=1e-12)
    ref = cm.risk(sol.y[0].reshape(-1, 1, 1), sol.y[1].reshape(-1, 1, 1), P, 1, K)
    got = th["ode_risk"].sel(d=d, kappa=0.0, delta=delta, seed=2).values
    np.testing.assert_allclose(got, ref, rtol=1e-4, atol=1e-8)


def test_orange_limit_is_read_at_the_papers_time(theory):
    """d → ∞ orange ODE at τ = t d^(−2(κ+δ)) with η̃ = η d^(κ+δ) (= γ0 at κ = 0): M stays at M0."""
    m, th = theory
    d, s = 400, -0.25
    Q0, M0 = m["Q0"].sel(d=d, kappa=0.0).values, m["M0"].sel(d=d, kappa=0.0).values
    ref = orange_limit(Q0, M0, np.eye(K), np.asarray(TIMES) * d ** (-2 * s), GAMMA0, NOISE)
    np.testing.assert_allclose(th["orange_limit_risk"].sel(d=d, kappa=0.0, delta=s).values, ref, rtol=1e-10)
    # with M frozen and Q growing, the limit's risk only rises (the noise inflates the student)
    assert np.all(np.diff(ref, axis=1) > 0)


def test_power_law_is_weighted_least_squares():
    d = np.array([100.0, 400.0, 1600.0, 6400.0])
    y, sy = 3 * d**-0.5, 0.1 * 3 * d**-0.5
    b, se = stages.power_law(d, y, sy)
    assert b == pytest.approx(-0.5, abs=1e-12)
    x = np.log(d)  # σ(log y) = 0.1 everywhere: se = 0.1 / √Σ(x − x̄)²
    assert se == pytest.approx(0.1 / np.sqrt(np.sum((x - x.mean()) ** 2)), rel=1e-12)
    y2 = y * np.array([1.3, 0.8, 1.25, 0.85])  # scatter well beyond the errors: SE inflated by √(χ²/dof)
    b2, se2 = stages.power_law(d, y2, 0.1 * y2)
    assert b2 == pytest.approx(np.polyfit(x, np.log(y2), 1)[0], rel=1e-12)  # equal weights: the plain fit
    resid = np.log(y2) - np.polyval(np.polyfit(x, np.log(y2), 1), x)
    assert se2 == pytest.approx(np.sqrt(np.sum(resid**2) / 2 / np.sum((x - x.mean()) ** 2)), rel=1e-12)
    assert np.isnan(stages.power_law(d[:1], y[:1], sy[:1])[0])


def test_measured_phase():
    assert stages.measured_phase(1e-5, 1e-6, 0, 4, 1e-4) == ("perfect learning", False)
    assert stages.measured_phase(1e-3, 1e-5, 0, 4, 1e-4) == ("plateau", False)
    assert stages.measured_phase(1.1e-4, 1e-5, 0, 4, 1e-4) == ("plateau", True)  # within 2 SEM of the threshold
    assert stages.measured_phase(np.nan, np.nan, 4, 4, 1e-4) == ("diverged", False)
    assert stages.measured_phase(1e-3, 1e-5, 5, 6, 1e-4) == ("diverged", False)
    assert stages.measured_phase(1e-3, 1e-5, 3, 4, 1e-4) == ("diverged", True)  # one seed fewer: no majority
    assert stages.measured_phase(1e-3, 1e-5, 2, 4, 1e-4) == ("plateau", True)  # one seed more: a majority


def _simulate(m, th, exponent, seed=1):
    """Each seed's risk = its ODE × (1 + ε), ε ~ N(0, (0.5 d^exponent)²) per seed and checkpoint (a known law)."""
    rng = np.random.default_rng(seed)
    d = m["d"].values[:, None, None, None, None]
    eps = 0.5 * d**exponent * rng.standard_normal(m["risk"].shape)
    sim = th["ode_risk"] * (1 + np.where(m["time"].values > 0, eps, 0.0))
    out = m.copy()
    out["risk"] = sim.fillna(0.3)  # the κ + δ ≤ −½ cells have no ODE: a high, noisy risk
    out["final_risk"] = out["risk"].isel(time=-1)
    return out


def test_line_claim_recovers_the_finite_size_exponent(theory):
    m, th = theory
    good = stages._line_scaling(_simulate(m, th, -0.5), th, pdt.SAAD_SOLLA)
    assert good.verdict == "agrees" and good.measured == pytest.approx(-0.5, abs=3 * good.uncertainty)
    bad = stages._line_scaling(_simulate(m, th, 0.0), th, pdt.SAAD_SOLLA)  # deviations that do not shrink
    assert bad.verdict == "disagrees" and abs(bad.measured) < 0.2
    two = stages._line_scaling(_simulate(m, th, -0.5).isel(d=[0, 1]), th.isel(d=[0, 1]), pdt.SAAD_SOLLA)
    assert two.verdict == "inconclusive" and two.measured is None and "needs 3" in two.note


def test_claims_of_a_grid_and_the_phase_of_every_cell(theory):
    m, th = theory
    sim = _simulate(m, th, -0.5)
    out = stages.claims(sim, th)
    # the line, R∞ at δ = 0 and δ = 0.5, perfect learning, the phase of every cell, the orange region
    assert len(out) == 6 and sum(c.text.startswith("R∞ ∝ d^−δ") for c in out) == 2
    phase = next(c for c in out if c.text.startswith("the phase of every cell"))
    # δ = −0.75 has no prediction; δ = 0.5 runs end (t = 30, η t ≤ 3) before the ODE learns perfectly
    assert phase.measured == 1.0 and phase.verdict == "agrees" and "untested" in phase.where
    threshold = stages.PERFECT_FRACTION * plateau(GAMMA0, NOISE, K, K)[0]
    assert f"{threshold:.3g}" in phase.where
    # a κ + δ = 0 cell that learned "too well" is a mismatch, and the claim says so
    wrong = sim.copy()
    wrong["final_risk"] = wrong["final_risk"].where(~((wrong["delta"] == 0.0) & (wrong["d"] == 400)), 1e-7)
    bad = next(c for c in stages.claims(wrong, th) if c.text.startswith("the phase of every cell"))
    assert bad.measured == pytest.approx(5 / 6) and bad.verdict == "disagrees" and "d=400 κ=0 δ=0" in bad.where
    # the orange plateau: the simulation is its ODE × (1 + ε), |ε| ~ 0.5/√d < 2/√d, so it agrees in every cell
    orange = next(c for c in out if c.text.startswith("orange region"))
    assert orange.verdict == "agrees" and orange.measured < orange.tolerance
    assert orange.tolerance in [pytest.approx(2 / np.sqrt(d)) for d in D]


def test_claims_say_what_the_grid_cannot_test(theory):
    m, th = theory
    line = dict(delta=[0.0])
    out = stages.claims(_simulate(m, th, -0.5).sel(line), th.sel(line))
    notes = {c.text.split(":")[0][:20]: c for c in out}
    assert notes["orange region −½ < κ"].verdict == "inconclusive"
    assert notes["orange region −½ < κ"].note.startswith("not in this grid")
    assert notes["perfect learning for"].note.startswith("untestable in this grid")


def test_perfect_learning_is_tested_only_where_the_ode_says_the_run_is_long_enough():
    """A κ + δ > 0 cell tests perfect learning only where its own ODE falls below the threshold by the end of the run:
    a run that stays above it then disagrees; without an ODE curve (p > theory.max_width) nothing says the run is
    long enough (over-parameterised students need far longer than train.time / η), so the cell is not tested."""
    m = _metrics().reindex(time=TIMES + [300.0, 3000.0])
    m["horizon"] = m["horizon"] * 0 + 3000.0
    th = pdt.phase_diagram_theory(m, max_width=16)
    sim = _simulate(m, th, -0.5)
    threshold = stages.PERFECT_FRACTION * plateau(GAMMA0, NOISE, K, K)[0]
    assert float(th["ode_final_risk"].sel(delta=0.5).max()) < threshold  # η t ≥ 75: the ODE learned perfectly

    def perfect_and_phase(metrics, theory):
        out = stages.claims(metrics, theory)
        return [next(c for c in out if c.text.startswith(s)) for s in ("perfect learning for", "the phase of")]

    good, phase = perfect_and_phase(sim, th)
    assert good.verdict == "agrees" and good.measured < 1.0 and "3 cells" in good.where
    stuck = sim.copy()
    stuck["final_risk"] = stuck["final_risk"].where(stuck["delta"] != 0.5, 10 * threshold)
    bad, bad_phase = perfect_and_phase(stuck, th)
    assert bad.verdict == "disagrees" and bad.measured == pytest.approx(10.0)
    assert "although the ODE from the same start falls below it" in bad.note
    assert bad_phase.verdict == "disagrees" and bad_phase.measured == pytest.approx(6 / 9)
    no_ode = pdt.phase_diagram_theory(m, max_width=0)  # every cell too wide for the ODE
    untested, phase = perfect_and_phase(stuck, no_ode)
    assert untested.verdict == "inconclusive" and "none is known to be long enough" in untested.note
    assert "without an ODE curve" in phase.where and phase.measured == 1.0  # only the κ + δ ≤ 0 cells are judged
