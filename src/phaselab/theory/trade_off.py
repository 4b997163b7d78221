"""The headline paper's last two plots: the fundamental trade-off and the orange region (Veiga, Stephan, Loureiro,
Krzakala & Zdeborová, NeurIPS 2022, figures 6 and 7), from the Saad–Solla ODE of :mod:`phaselab.theory.committee`.

Conventions as in the theory reference, sections 1 and 8: width p fixed (κ = 0), γ = γ0 d^−δ, η = γ/p, time
t = steps/d. In the orange region −½ < κ + δ < 0 the paper's time is τ = steps/d^(1+2(κ+δ)); writing the ODE in τ,
the drift (I3) terms carry a factor η d^(−2(κ+δ)) = (γ0/p) d^(κ+δ) → 0 and the noise terms a factor
η̃² = (η d^(κ+δ))² = (γ0/p)² (κ = 0), so as d → ∞

    dM/dτ = 0,   dQ_jl/dτ = η̃² [Σ_{c,e} u_c u_e I4(λ_j, λ_l, c, e) + Δ J2(λ_j, λ_l)]      (section 8)

(the "orange ODE"). At finite d the full ODE at the cell's own η, integrated in t = τ d^(2(κ+δ)), keeps the drift
suppressed only by d^(κ+δ): a strong finite-size effect.

Informed starts. Each student unit j is assigned the teacher unit j mod k. Two starts are offered:

- ``isotropic`` (:func:`informed_order_parameters`): W_j = a w*_{j mod k} + b z_j, z_j ~ N(0, I_d), so that
  Q = b² I + a² [j ≡ l mod k], M_jr = a [j ≡ r mod k]; a = b = 1 gives R0 = 0.0173 at p = 8, k = 4 (Q_jj = 2).
- ``teacher_span`` (:func:`span_coefficients`), the authors' start (their code, github.com/rodsveiga/phdiag_sgd,
  sim.set_W0(lin_coeff): W0 = A W* with unit-norm rows of A): W_j = Σ_r A_jr w*_r, A_j ∝ a e_{j mod k} + b g_j,
  g_j ~ N(0, I_k), |A_j| = 1, so that Q = A Aᵀ (Q_jj = 1) and M = A exactly, at every d.

The peaks of the orange-region risk are set by (Q0, M0), not by the initial risk alone: at p = 8, k = 4, γ0 = p,
Δ = 1e-3, δ = −3/8, both starts at R0 ≈ 0.017 give (full ODE at d = 1000, at d = 4000; d → ∞ orange ODE)
0.044, 0.077, 0.170 (isotropic, a = b = 1) and 0.082, 0.120, 0.204 (teacher_span, a = 1, b = 0.55: mean of 16
draws, R0 = 0.020; R0 over 400 draws: mean 0.016, 10–90 % 0.005–0.030). The authors' random unit-norm A
(normalised N(0, I_k) rows) at R0 ≈ 0.015–0.02 gives 0.081–0.086, 0.119–0.124, 0.201–0.207. Direct online SGD
(numpy, 8 seeds) peaks at 0.045 and 0.077 (isotropic, a = b = 1), 0.079 and 0.117 (teacher_span, R0 = 0.013; ODE 0.080,
0.118) and 0.083 and 0.122 (isotropic a = 0.6, b = 0.68: R0 = 0.017 too, Q_jj = 0.82; ODE 0.084, 0.121): the ODE
is right for each start. The time, learning-rate, noise and risk conventions are the authors' in both
(η = γ0 d^−δ/p, τ = steps/d^(1+2δ), y = f* + √Δ ξ, R = ½E[(f* − f)²] without Δ); the η̃ of the orange ODE only
rescales τ, so its peak depends on (Q0, M0) alone.
"""

from __future__ import annotations

import numpy as np

from phaselab.theory.committee import integrate, rhs, risk

__all__ = ["learning_rate", "orange_times", "informed_order_parameters", "span_coefficients", "noise_term",
           "orange_limit", "full_ode_in_tau", "plateau", "crossing_time"]


def learning_rate(gamma0: float, d: int, delta: float, p: int) -> float:
    """η = γ/p with γ = γ0 d^−δ (κ = 0: p fixed)."""
    return gamma0 * float(d) ** (-delta) / p


def orange_times(tau, d: int, kappa_plus_delta: float):
    """t = steps/d of the orange-region time τ = steps/d^(1+2(κ+δ)): t = τ d^(2(κ+δ))."""
    return np.asarray(tau, float) * float(d) ** (2 * kappa_plus_delta)


def informed_order_parameters(p: int, k: int, overlap: float, noise_scale: float):
    """(Q, M) of the informed start W_j = a w*_{j mod k} + b z_j as d → ∞ (P = I):
    Q_jl = b² δ_jl + a² [j ≡ l mod k], M_jr = a [j ≡ r mod k]. The finite-d start deviates by O(1/√d); the
    experiment integrates from the measured one."""
    pi = np.arange(p) % k
    same = (pi[:, None] == pi[None, :]).astype(float)
    assign = (pi[:, None] == np.arange(k)[None, :]).astype(float)
    return noise_scale**2 * np.eye(p) + overlap**2 * same, overlap * assign


def span_coefficients(p: int, k: int, overlap: float, noise_scale: float, generator: np.random.Generator):
    """A (p, k) of the authors' informed start W = A W* (Veiga et al. 2022, code phdiag_sgd: sim.set_W0(lin_coeff),
    rows of A of unit norm): A_j = v_j/|v_j|, v_j = a e_{j mod k} + b g_j, g_j ~ N(0, I_k) from ``generator``.
    With the orthogonal teacher of row norm √d (P = I), Q = A Aᵀ (Q_jj = 1: |w_j|² = d) and M = A, exactly."""
    v = overlap * (np.arange(p)[:, None] % k == np.arange(k)[None, :]) + noise_scale * generator.standard_normal((p, k))
    norm = np.linalg.norm(v, axis=1, keepdims=True)
    if np.any(norm == 0):
        raise ValueError("span_coefficients: a student row is zero (overlap = 0 and no noise)")
    return v / norm


def noise_term(Q, M, P, noise):
    """The η² bracket of dQ/dt, Σ_{c,e} u_c u_e I4(j,l,c,e) + Δ J2(j,l) = E[g'(λ_j) g'(λ_l) ((f* − f)² + Δ)], for a
    batch Q (B,p,p), M (B,p,k). phaselab.theory.committee.rhs returns η·drift + η²·bracket, so the bracket is
    (rhs(η=2) − 2 rhs(η=1)) / 2 exactly (the same closed forms, section 1)."""
    one = rhs(Q, M, P, 1.0, noise)[0]
    two = rhs(Q, M, P, 2.0, noise)[0]
    return 0.5 * (two - 2.0 * one)


def orange_limit(Q0, M0, P, tau, eta_tilde: float, noise: float, rtol: float = 1e-8, atol: float = 1e-10):
    """Risk R(τ) (B, T) of the d → ∞ orange ODE (M frozen, dQ/dτ = η̃² · noise_term) from Q0 (B,p,p), M0 (B,p,k).

    ``tau``: increasing times ≥ 0. η̃ = η d^(κ+δ) (= γ0/p on κ = 0). Integrated by scipy's DOP853.
    """
    from scipy.integrate import solve_ivp

    Q0, M0 = np.asarray(Q0, float), np.asarray(M0, float)
    if Q0.ndim == 2:
        Q0, M0 = Q0[None], M0[None]
    tau = np.asarray(tau, float)
    B, p = Q0.shape[:2]
    out = np.empty((B, len(tau)))
    for b in range(B):
        def f(_, y, b=b):
            return eta_tilde**2 * noise_term(y.reshape(1, p, p), M0[b:b + 1], P, noise).ravel()

        sol = solve_ivp(f, (0.0, float(tau[-1])), Q0[b].ravel(), t_eval=tau, method="DOP853", rtol=rtol, atol=atol)
        if not sol.success:
            raise RuntimeError(f"orange_limit: {sol.message}")
        Q = sol.y.T.reshape(len(tau), p, p)
        out[b] = risk(Q, np.broadcast_to(M0[b], (len(tau),) + M0[b].shape), P)
    return out


def full_ode_in_tau(Q0, M0, P, tau, d: int, delta: float, gamma0: float, noise: float, rtol=1e-7, atol=1e-10):
    """Risk (B, T) of the full Saad–Solla ODE at the cell's own η = γ0 d^−δ / p (κ = 0), at the orange times τ."""
    Q0 = np.asarray(Q0, float)
    p = Q0.shape[-1]
    tau = np.asarray(tau, float)
    t = orange_times(tau, d, delta)
    pos = t > 0
    res = integrate(Q0, M0, P, t[pos], learning_rate(gamma0, d, delta, p), noise, rtol=rtol, atol=atol)["risk"]
    Q0b = Q0 if Q0.ndim == 3 else Q0[None]
    M0b = np.asarray(M0, float) if np.ndim(M0) == 3 else np.asarray(M0, float)[None]
    out = np.empty((res.shape[0], len(t)))
    out[:, pos] = res
    out[:, ~pos] = np.reshape(risk(Q0b, M0b, P), (-1, 1))
    return out


def plateau(eta, noise: float, p: int, k: int, start=None, tol: float = 1e-13):
    """Asymptotic risk R∞(η) of the noisy Saad–Solla ODE (section 8: R∞ ≈ c η Δ) for every η of ``eta``: the risk
    at a stationary point of (dQ/dt, dM/dt) (section 1, η² terms included) with P = I, found by Levenberg–Marquardt
    from ``start`` (Q, M) (default: the perfect student Q = [j ≡ l mod k], M_jr = [j ≡ r mod k], which the noise
    moves by O(ηΔ)); NaN where the residual does not vanish. Milliseconds to seconds, where the ODE, stiff near the
    fixed point, needs η t ~ 10⁴ and tens of seconds to settle. Near η ~ 1 more than one stationary point lies
    close to the perfect student (risks within a few per mille): the one found depends on ``start``."""
    from scipy.optimize import root

    P = np.eye(k)
    Qs, Ms = informed_order_parameters(p, k, 1.0, 0.0) if start is None else start
    iu = np.triu_indices(p)

    def unpack(x):
        Q = np.zeros((p, p))
        Q[iu] = x[: len(iu[0])]
        Q = Q + np.triu(Q, 1).T
        return Q, x[len(iu[0]):].reshape(p, k)

    out = []
    for e in np.atleast_1d(np.asarray(eta, float)):
        def f(x, e=e):
            Q, M = unpack(x)
            dQ, dM = rhs(Q[None], M[None], P, e, noise)
            return np.concatenate([dQ[0][iu], dM[0].ravel()]) / e

        sol = root(f, np.concatenate([Qs[iu], Ms.ravel()]), method="lm", tol=tol)
        Q, M = unpack(sol.x)
        ok = bool(np.abs(f(sol.x)).max() < 1e-10 * max(1.0, noise))
        out.append(risk(Q, M, P, p, k) if ok else np.nan)
    return np.array(out)


def crossing_time(times, risk_curve, level: float) -> float:
    """First time at which the curve falls below ``level`` (log-linear interpolation between checkpoints); NaN if
    it never does or starts below it."""
    times, r = np.asarray(times, float), np.asarray(risk_curve, float)
    below = np.flatnonzero(np.isfinite(r) & (r < level))
    if below.size == 0 or below[0] == 0 or not np.isfinite(r[below[0] - 1]):
        return float("nan")
    i = below[0]
    t0, t1, r0, r1 = times[i - 1], times[i], np.log(r[i - 1]), np.log(r[i])
    return float(t0 + (np.log(level) - r0) / (r1 - r0) * (t1 - t0))


def phase_diagram_orange_curves(metrics, max_width: int = 16, full: bool = True):
    """Theory curves for the phase diagram's cells in the orange region −½ < κ + δ < 0 (phaselab.theory.phase_diagram
    draws them in its theory stage): for every (d, κ, δ, seed) with p ≤ ``max_width``, the full
    Saad–Solla ODE at the cell's own η from the seed's measured (Q0, M0) (the better prediction at finite d,
    theory.md §8), and the d → ∞ orange ODE at η̃ = η d^(κ+δ), read at τ = t d^(−2(κ+δ)). Takes the sgd_phase_diagram
    metrics Dataset (dims d, kappa, delta, seed, time; width, eta, horizon, Q0, M0; attrs teacher_k, noise) and
    returns ``orange_ode_risk`` and ``orange_limit_risk`` (d, kappa, delta, seed, time), NaN outside the region.
    ``full=False`` skips the full ODE (``orange_ode_risk`` all NaN): phaselab.theory.phase_diagram integrates it
    with the other cells' ODE."""
    import xarray as xr

    k, noise = int(metrics.attrs["teacher_k"]), float(metrics.attrs["noise"])
    P = np.eye(k)
    times = metrics["time"].values
    shape = tuple(metrics.sizes[n] for n in ("d", "kappa", "delta", "seed", "time"))
    full_risk, limit = np.full(shape, np.nan), np.full(shape, np.nan)
    for i, d in enumerate(metrics["d"].values):
        for j, kappa in enumerate(metrics["kappa"].values):
            p = int(metrics["width"].values[i, j])
            for m, delta in enumerate(metrics["delta"].values):
                s = float(kappa + delta)
                if not (-0.5 < s < -1e-9) or p > max_width:
                    continue
                eta = float(metrics["eta"].values[i, j, m])
                upto = times <= float(metrics["horizon"].values[i, j]) * (1 + 1e-9)
                t = times[upto]
                Q0 = metrics["Q0"].values[i, j][:, :p, :p]
                M0 = metrics["M0"].values[i, j][:, :p, :]
                if full:
                    full_risk[i, j, m, :, 0] = risk(Q0, M0, P)
                    full_risk[i, j, m, :, 1:upto.sum()] = integrate(Q0, M0, P, t[1:], eta, noise)["risk"]
                limit[i, j, m, :, :upto.sum()] = orange_limit(Q0, M0, P, t * float(d) ** (-2 * s),
                                                              eta * float(d) ** s, noise)
    dims = ("d", "kappa", "delta", "seed", "time")
    return xr.Dataset(
        {"orange_ode_risk": (dims, full_risk, {"long_name": "full Saad–Solla ODE at the cell's own η (κ + δ < 0)",
                                               "units": "1"}),
         "orange_limit_risk": (dims, limit, {"long_name": "d → ∞ orange ODE (noise terms only, M frozen)",
                                             "units": "1"})},
        coords={n: metrics[n] for n in dims})
