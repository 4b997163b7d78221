"""Double descent in closed form: linear regression (Hastie, Montanari, Rosset & Tibshirani 2019) and random
features regression (Mei & Montanari 2019).

Linear (HMRT): x ~ N(0, I_p), n samples, γ = p/n, ‖β‖² = r² (``signal``), noise variance σ² (``noise``); the risk
is E‖β̂ − β‖², the test error without the test noise. Ridge β̂_λ = (XᵀX/n + λI)⁻¹Xᵀy/n; min-norm least squares is
its λ → 0+ limit.

Random features (Mei & Montanari 2019): x, θ_j uniform on the sphere of radius √d, features σ(⟨θ_j, x⟩/√d),
j ≤ N, ridge â = argmin (1/n) Σ_i (y_i − Σ_j a_j σ_ij)² + (Nλ/d)‖a‖², target y = ⟨β₁, x⟩ + f_NL(x) + ε with
‖β₁‖² = F₁² (``signal``), Var f_NL = F⋆² (``nonlinear``), Var ε = τ² (``noise``); N/d → ψ₁, n/d → ψ₂. Test error
R = F₁² B + (τ² + F⋆²) V + F⋆², with B, V rational in χ = ν₁ν₂ at ξ = i√(ψ₁ψ₂λ̄), λ̄ = λ/μ⋆², ζ = μ₁/μ⋆, where
(ν₁, ν₂) solve the paper's fixed-point equations (their Definition 1 / Theorem 1).
"""

from __future__ import annotations

import numpy as np


# ----------------------------------------------------------------------------------------------------------------
# Linear regression with isotropic features (HMRT 2019)
# ----------------------------------------------------------------------------------------------------------------
def mp_stieltjes(lam, gamma):
    """m(−λ) of the Marchenko–Pastur law of ratio γ (variance 1), λ > 0: the root of γλm² + (1 − γ + λ)m − 1 = 0."""
    lam, gamma = np.asarray(lam, dtype=float), np.asarray(gamma, dtype=float)
    b = 1.0 - gamma + lam
    root = np.sqrt(b * b + 4.0 * gamma * lam)
    with np.errstate(divide="ignore", invalid="ignore"):  # the two forms of one root, each free of cancellation
        return np.where(b > 0, 2.0 / (b + root), (root - b) / (2.0 * gamma * lam))


def _mp_discriminant(lam, gamma):
    """√((1 − γ + λ)² + 4γλ), written (1 − γ)² + λ(λ + 2 + 2γ) under the root: a sum of non-negative terms, free
    of cancellation at every γ and λ > 0. It is 2γλm + 1 − γ + λ at m = m(−λ)."""
    return np.sqrt((1.0 - gamma) ** 2 + lam * (lam + 2.0 + 2.0 * gamma))


def mp_stieltjes_derivative(lam, gamma):
    """m'(z) at z = −λ, from implicit differentiation of the Marchenko–Pastur equation: (γm² + m)/(2γλm + 1 − γ + λ),
    the denominator the discriminant √((1 − γ + λ)² + 4γλ)."""
    lam, gamma = np.asarray(lam, dtype=float), np.asarray(gamma, dtype=float)
    m = mp_stieltjes(lam, gamma)
    return (gamma * m * m + m) / _mp_discriminant(lam, gamma)


def ridge_risk(gamma, lam, signal: float, noise: float):
    """Asymptotic ridge risk R(λ) = r²λ²m'(−λ) + σ²γ[m(−λ) − λm'(−λ)] (HMRT 2019, Theorem 5), λ > 0.

    Evaluated without cancellation (the direct form loses digits where γ ≫ 1 and λ → 0, m ≈ (1 − 1/γ)/λ): with
    D = √((1 − γ + λ)² + 4γλ) and u = λm, λ²m' = (γu² + λu)/D and m − λm' = (1 − u)/D, where 1 − u is the small
    root 2/(1 + γ + λ + D) of γw² − (1 + γ + λ)w + 1 = 0 (the Marchenko–Pastur equation in w = 1 − λm)."""
    lam, gamma = np.asarray(lam, dtype=float), np.asarray(gamma, dtype=float)
    root = _mp_discriminant(lam, gamma)
    u = lam * mp_stieltjes(lam, gamma)
    w = 2.0 / (1.0 + gamma + lam + root)
    return (signal * (gamma * u * u + lam * u) + noise * gamma * w) / root


def minnorm_risk(gamma, signal: float, noise: float):
    """Asymptotic min-norm least-squares risk (HMRT 2019, Theorem 1): σ²γ/(1 − γ) for γ < 1,
    r²(1 − 1/γ) + σ²/(γ − 1) for γ > 1, infinite at γ = 1."""
    gamma = np.asarray(gamma, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        under = noise * gamma / (1.0 - gamma)
        over = signal * (1.0 - 1.0 / gamma) + noise / (gamma - 1.0)
    return np.where(gamma < 1, under, np.where(gamma > 1, over, np.inf))


def minnorm_risk_finite(n, p, signal: float, noise: float):
    """Exact expected min-norm risk at finite n, p (Gaussian design; inverse-Wishart moments):
    σ²p/(n − p − 1) for p < n − 1, r²(1 − n/p) + σ²n/(p − n − 1) for p > n + 1, infinite in between."""
    n, p = np.asarray(n, dtype=float), np.asarray(p, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        under = noise * p / (n - p - 1.0)
        over = signal * (1.0 - n / p) + noise * n / (p - n - 1.0)
    return np.where(p < n - 1, under, np.where(p > n + 1, over, np.inf))


def optimal_ridge(gamma, signal: float, noise: float):
    """The risk-minimising penalty λ* = σ²γ/r² (HMRT 2019, Corollary 5; Dicker 2016)."""
    return noise * np.asarray(gamma, dtype=float) / signal


def optimal_ridge_risk(gamma, signal: float, noise: float):
    """R(λ*) = σ²γ m(−λ*): at λ* the r² and σ² terms with m' cancel."""
    gamma = np.asarray(gamma, dtype=float)
    return noise * gamma * mp_stieltjes(optimal_ridge(gamma, signal, noise), gamma)


# ----------------------------------------------------------------------------------------------------------------
# Random features regression (Mei & Montanari 2019)
# ----------------------------------------------------------------------------------------------------------------
def relu_coefficients() -> tuple[float, float, float]:
    """(μ₀, μ₁, μ⋆) of σ = ReLU for G ~ N(0, 1): μ₀ = Eσ(G) = 1/√(2π), μ₁ = E Gσ(G) = 1/2,
    μ⋆² = Eσ(G)² − μ₀² − μ₁² = 1/4 − 1/(2π)."""
    return 1.0 / np.sqrt(2.0 * np.pi), 0.5, float(np.sqrt(0.25 - 0.5 / np.pi))


def rf_fixed_point(xi: complex, psi1: float, psi2: float, zeta: float, tol: float = 1e-13, max_iter: int = 100000):
    """(ν₁, ν₂) at ξ ∈ C₊ by damped iteration of the fixed-point equations (Mei & Montanari 2019, Definition 1)

        ν₁ = ψ₁ (−ξ − ν₂ − ζ²ν₂/(1 − ζ²ν₁ν₂))⁻¹,   ν₂ = ψ₂ (−ξ − ν₁ − ζ²ν₁/(1 − ζ²ν₁ν₂))⁻¹,

    on the branch Im ν_i > 0 (started from ν_i = iψ_i/Im ξ). A direct check of :func:`rf_chi`."""
    nu1, nu2 = 1j * psi1 / xi.imag, 1j * psi2 / xi.imag
    for _ in range(max_iter):
        den = 1.0 - zeta**2 * nu1 * nu2
        new1 = psi1 / (-xi - nu2 - zeta**2 * nu2 / den)
        new2 = psi2 / (-xi - nu1 - zeta**2 * nu1 / den)
        if abs(new1 - nu1) + abs(new2 - nu2) < tol:
            return new1, new2
        nu1, nu2 = 0.5 * (nu1 + new1), 0.5 * (nu2 + new2)
    raise RuntimeError(f"random-features fixed point did not converge at ξ = {xi}, ψ = ({psi1}, {psi2})")


def rf_chi(psi1: float, psi2: float, lam_bar: float, zeta: float) -> float:
    """χ = ν₁ν₂ at ξ = i s, s = √(ψ₁ψ₂λ̄), solved numerically.

    On the imaginary axis ν_k = i a_k with a_k > 0; writing u = a₁a₂ = −χ and h(u) = u + ζ²u/(1 + ζ²u), the two
    fixed-point equations become s a_k = ψ_k − h(u), hence the scalar equation s²u = (ψ₁ − h(u))(ψ₂ − h(u)), whose
    root is unique in 0 ≤ h(u) ≤ min(ψ₁, ψ₂) (left side increasing, right side decreasing) and is bracketed by
    Brent's method. At λ̄ = 0 the root is h(u) = min(ψ₁, ψ₂), the ridgeless χ of the paper's Theorem 3."""
    from scipy.optimize import brentq

    z2 = zeta**2
    psi = min(psi1, psi2)
    b = 1.0 + z2 - psi * z2
    u_max = 2.0 * psi / (b + np.sqrt(b * b + 4.0 * z2 * psi))  # h(u_max) = min(ψ₁, ψ₂)
    s2 = psi1 * psi2 * lam_bar
    if s2 == 0.0:
        return -u_max

    def h(u):
        return u + z2 * u / (1.0 + z2 * u)

    u = brentq(lambda u: s2 * u - (psi1 - h(u)) * (psi2 - h(u)), 0.0, u_max, xtol=1e-15, rtol=1e-13)
    return -u


def rf_bias_variance(psi1: float, psi2: float, lam_bar: float, zeta: float) -> tuple[float, float]:
    """(B, V) = (E₁/E₀, E₂/E₀) of Mei & Montanari (2019, Definition 1), polynomials in χ, ζ, ψ₁, ψ₂."""
    chi = rf_chi(psi1, psi2, lam_bar, zeta)
    z2, z4, z6 = zeta**2, zeta**4, zeta**6
    p1, p2 = psi1, psi2
    c2, c3, c4, c5 = chi**2, chi**3, chi**4, chi**5
    e0 = (-c5 * z6 + 3 * c4 * z4 + (p1 * p2 - p2 - p1 + 1) * c3 * z6 - 2 * c3 * z4 - 3 * c3 * z2
          + (p1 + p2 - 3 * p1 * p2 + 1) * c2 * z4 + 2 * c2 * z2 + c2 + 3 * p1 * p2 * chi * z2 - p1 * p2)
    e1 = p2 * c3 * z4 - p2 * c2 * z2 + p1 * p2 * chi * z2 - p1 * p2
    e2 = (c5 * z6 - 3 * c4 * z4 + (p1 - 1) * c3 * z6 + 2 * c3 * z4 + 3 * c3 * z2 + (-p1 - 1) * c2 * z4
          - 2 * c2 * z2 - c2)
    return e1 / e0, e2 / e0


def rf_risk(psi1, psi2: float, lam: float, signal: float, noise: float, nonlinear: float = 0.0):
    """Asymptotic test error of ReLU random-features ridge regression (Mei & Montanari 2019, Theorem 1):
    R = F₁²B + (τ² + F⋆²)V + F⋆² at λ̄ = λ/μ⋆², for each ψ₁ = N/d in ``psi1``; λ = 0 is the ridgeless limit."""
    _, mu1, mu_star = relu_coefficients()
    zeta, lam_bar = mu1 / mu_star, lam / mu_star**2
    out = []
    for p1 in np.atleast_1d(np.asarray(psi1, dtype=float)):
        if lam_bar == 0.0 and np.isclose(p1, psi2, rtol=1e-12):
            out.append(np.inf)  # the ridgeless interpolation peak N = n
            continue
        bias, variance = rf_bias_variance(float(p1), psi2, lam_bar, zeta)
        out.append(signal * bias + (noise + nonlinear) * variance + nonlinear)
    return np.reshape(out, np.shape(psi1))
