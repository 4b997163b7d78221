"""The perceptron: storage capacity and teacher–student learning curves (the project's theory reference, §2–§3).

Conventions: patterns ξ ~ N(0, I_N), α = P/N, Dt the standard Gaussian measure, H(x) = ∫_x^∞ Dt = ½ erfc(x/√2),
stability of pattern μ under weights J: y_μ J·ξ_μ / |J| (Gardner's normalisation, |J|² = N → y J·ξ/√N).
Generalisation error of a student at normalised teacher overlap R: ε = arccos(R)/π.

- Cover (1965), "Geometrical and statistical properties of systems of linear inequalities", IEEE Trans. Electron.
  Comput. 14, 326: the separable fraction of the 2^P dichotomies of P points in general position in R^N.
- Gardner (1988), "The space of interactions in neural network models", J. Phys. A 21, 257: capacity at stability κ.
- Engel & Van den Broeck (2001), "Statistical Mechanics of Learning", ch. 2–4 and 9: Hebb, Gibbs and Bayes learning
  (replica symmetric, Seung, Sompolinsky & Tishby 1992, Phys. Rev. A 45, 6056), the maximal-stability student
  (Opper, Kinzel, Kleinz & Nehl 1990, J. Phys. A 23, L581) and the online perceptron rule.
- Györgyi (1990), "First-order transition to perfect generalization in a neural network with binary synapses",
  Phys. Rev. A 41, 7097: the Ising teacher–student perceptron.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import integrate, optimize, special, stats

SQRT2 = math.sqrt(2.0)
_GAUSS_T, _GAUSS_W = np.polynomial.hermite_e.hermegauss(201)  # ∫ Dt f(t) ≈ Σ w f(t) / √(2π)
_GAUSS_W = _GAUSS_W / math.sqrt(2 * math.pi)


def _phi(x: float) -> float:
    """The standard Gaussian density at a scalar x."""
    return math.exp(-0.5 * x * x) / math.sqrt(2 * math.pi)


def H(x):
    """H(x) = ∫_x^∞ Dt, the Gaussian tail."""
    return 0.5 * special.erfc(np.asarray(x, dtype=float) / SQRT2)


def generalization_error(R):
    """ε = arccos(R)/π: the probability that student and teacher disagree on a Gaussian input."""
    return np.arccos(np.clip(R, -1.0, 1.0)) / np.pi


# --------------------------------------------------------------------------------------------------- capacity
def cover_probability(P, N):
    """Cover's fraction of separable dichotomies, 2^(1−P) Σ_{k<N} C(P−1, k) = Prob[Binomial(P−1, ½) ≤ N−1].

    Exact at every N (1 for P ≤ N, ½ at P = 2N); P and N broadcast.
    """
    P, N = np.broadcast_arrays(np.asarray(P), np.asarray(N))
    return np.where(P <= N, 1.0, stats.binom.cdf(N - 1, np.maximum(P - 1, 0), 0.5))


def cover_continued(P, N):
    """Cover's fraction continued to real P: Prob[Binomial(P − 1, ½) ≤ N − 1] = I_½(P − N, N) for P > N (the
    regularised incomplete beta function), 1 for P ≤ N; equals :func:`cover_probability` at integer P and ½ at
    P = 2N. P and N broadcast."""
    P, N = np.broadcast_arrays(np.asarray(P, dtype=float), np.asarray(N, dtype=float))
    return np.where(P <= N, 1.0, special.betainc(np.maximum(P - N, 1e-300), N, 0.5))


def cover_limit(alpha, N):
    """Cover's curve near α = 2 for large N (de Moivre–Laplace): Φ(−(α − 2) √(N/2)), a step at α_c = 2 as N → ∞."""
    return stats.norm.cdf(-(np.asarray(alpha, dtype=float) - 2.0) * np.sqrt(np.asarray(N, dtype=float) / 2.0))


def gardner_capacity(kappa):
    """α_c(κ) = [∫_{−κ}^∞ Dt (t + κ)²]^(−1) = 1/((1 + κ²) Φ(κ) + κ φ(κ)) (Gardner 1988; RS, exact for κ ≥ 0)."""
    k = np.asarray(kappa, dtype=float)
    return 1.0 / ((1.0 + k * k) * stats.norm.cdf(k) + k * stats.norm.pdf(k))


def gardner_stability(alpha):
    """The largest stability κ_c(α) ≥ 0 at which α·N random patterns can be stored: the inverse of α_c(κ), α ≤ 2.

    NaN for α > 2 (no positive stability; the RS result is wrong for κ < 0) and +inf at α = 0.
    """
    def one(a):
        if not a > 0:
            return math.inf if a == 0 else math.nan
        if a > 2.0:
            return math.nan
        if a == 2.0:
            return 0.0
        hi = 1.0
        while gardner_capacity(hi) > a:  # α_c(κ) decreases from 2 at κ = 0 to 0 as κ → ∞
            hi *= 2.0
        return optimize.brentq(lambda k: gardner_capacity(k) - a, 0.0, hi, xtol=1e-14, rtol=1e-14)

    return np.vectorize(one, otypes=[float])(np.asarray(alpha, dtype=float))


# ----------------------------------------------------------------------------------------- learning curves
def hebb_overlap(alpha):
    """Hebb's rule J = Σ_μ y_μ ξ_μ: R = √(2α/π) / √(1 + 2α/π)."""
    a = 2.0 * np.asarray(alpha, dtype=float) / np.pi
    return np.sqrt(a / (1.0 + a))


def _gibbs_integral(R):
    """∫ Dt exp(−R t²/2) / H(−√R t) = (2/√(2π)) ∫ dt exp(−t²/2) / erfcx(−√(R/2) t), written with erfcx (no 0/0)."""
    def f(t):
        return 2.0 * math.exp(-0.5 * t * t) / special.erfcx(-math.sqrt(R / 2.0) * t)

    lo = integrate.quad(f, -np.inf, 0.0, epsabs=1e-13, epsrel=1e-12, limit=200)[0]
    hi = integrate.quad(f, 0.0, np.inf, epsabs=1e-13, epsrel=1e-12, limit=200)[0]
    return (lo + hi) / math.sqrt(2 * math.pi)


def conjugate_overlap(R, alpha):
    """The sign channel's conjugate order parameter q̂ = α/(π√(1 − R)) ∫ Dt exp(−R t²/2)/H(−√R t) at q = R
    (Nishimori)."""
    return alpha / (math.pi * math.sqrt(1.0 - R)) * _gibbs_integral(R)


def gibbs_overlap(alpha):
    """Gibbs learning (RS, q = R): R/√(1 − R) = (α/π) ∫ Dt exp(−R t²/2)/H(−√R t) (Engel & Van den Broeck eq. 2.42).

    Returns R; ε_Gibbs = arccos(R)/π and the Bayes-optimal ε_Bayes = arccos(√R)/π.
    """
    def one(a):
        if a <= 0:
            return 0.0
        def g(R):  # R/(1 − R) = q̂  ⇔  R − q̂ (1 − R) = 0
            return R - conjugate_overlap(R, a) * (1.0 - R)

        return optimize.brentq(g, 0.0, 1.0 - 1e-15, xtol=1e-15, rtol=1e-13)

    return np.vectorize(one, otypes=[float])(np.asarray(alpha, dtype=float))


def gibbs_error(alpha):
    return generalization_error(gibbs_overlap(alpha))


def bayes_error(alpha):
    """ε_Bayes = arccos(√R_Gibbs)/π: the centre of mass of the version space (Opper & Haussler 1991)."""
    return generalization_error(np.sqrt(gibbs_overlap(alpha)))


def _max_stability_integrals(R, kappa):
    """I0 = ∫_{−∞}^{κ} Dt (κ − t)² H(−R t/s) and I1 = ∫_{−∞}^{κ} Dt (κ − t)² (−t) φ(R t/s)/s³, s = √(1 − R²).

    Closed forms (H(−x) = Φ(x); b = R/s; J_n = ∫_{−∞}^{κ} Dt tⁿ Φ(b t), by parts, with Owen's T function):
      J0 = Φ(κ)/2 − T(κ, b),  J1 = R Φ(κ/s)/√(2π) − φ(κ) Φ(b κ),  J2 = J0 − κ φ(κ) Φ(b κ) − R s φ(κ/s)/√(2π),
      I0 = κ² J0 − 2κ J1 + J2,  I1 = 2(κ Φ(κ/s) + s φ(κ/s))/√(2π).
    """
    s = math.sqrt((1.0 - R) * (1.0 + R))
    b, c = R / s, kappa / s
    Phi, phi = special.ndtr, _phi
    j0 = 0.5 * Phi(kappa) - special.owens_t(kappa, b)
    j1 = R * Phi(c) / math.sqrt(2 * math.pi) - phi(kappa) * Phi(b * kappa)
    j2 = j0 - kappa * phi(kappa) * Phi(b * kappa) - R * s * phi(c) / math.sqrt(2 * math.pi)
    i0 = kappa * kappa * j0 - 2 * kappa * j1 + j2
    i1 = 2.0 * (kappa * Phi(c) + s * phi(c)) / math.sqrt(2 * math.pi)
    return i0, i1


def max_stability(alpha):
    """The maximal-stability (hard-margin SVM) student: (R, κ) at each α from the q → 1 RS equations.

    Opper, Kinzel, Kleinz & Nehl (1990); Engel & Van den Broeck §4.3. In the Gardner volume at stability κ and
    teacher overlap R the RS entropy diverges as q → 1 like C(R, κ)/(1 − q) with
    C = ½(1 − R²) − α ∫_{−∞}^{κ} Dt (κ − t)² H(−R t/√(1 − R²)); the maximal stability solves C = 0, ∂C/∂R = 0:
      1 − R² = 2α I0(R, κ),  R = α I1(R, κ)   (see _max_stability_integrals).
    At R = 0 the first is Gardner's capacity, α = α_c(κ). Eliminating α leaves (1 − R²) I1 = 2R I0 for κ(R);
    then α(R) = R/I1 is inverted by root finding. α ε → 0.50 for large α. Returns (R, κ).
    """
    def kappa_of(R):
        def g(lk):
            i0, i1 = _max_stability_integrals(R, math.exp(lk))
            return (1 - R * R) * i1 - 2 * R * i0

        lo, hi = math.log(1e-12), 0.0
        while g(hi) > 0:
            hi += 1.0
        return math.exp(optimize.brentq(g, lo, hi, xtol=1e-13))

    def alpha_of(x):  # x = logit R
        R = 1.0 / (1.0 + math.exp(-x))
        return R / _max_stability_integrals(R, kappa_of(R))[1]

    def one(a):
        if a <= 0:
            return 0.0, math.inf
        lo, hi = -8.0, 0.0
        while alpha_of(lo) > a:
            lo -= 4.0
        while alpha_of(hi) < a:
            hi += 2.0
        x = optimize.brentq(lambda x: alpha_of(x) - a, lo, hi, xtol=1e-12)
        R = 1.0 / (1.0 + math.exp(-x))
        return R, kappa_of(R)

    alpha = np.asarray(alpha, dtype=float)
    out = [one(a) for a in alpha.ravel()]
    R = np.array([o[0] for o in out]).reshape(alpha.shape)
    kappa = np.array([o[1] for o in out]).reshape(alpha.shape)
    return R, kappa


def online_perceptron(alpha, alpha0: float = 1e-9):
    """The online perceptron rule J ← J + y ξ Θ(−y J·ξ)/√N from J = 0, each example seen once (N → ∞).

    With ρ = J·w*/N, Q = J·J/N and R = ρ/√Q (Engel & Van den Broeck ch. 9):
      dρ/dα = (1 − R)/√(2π),  dQ/dα = arccos(R)/π − 2√Q (1 − R)/√(2π);
    ε ∝ α^(−1/3) for large α. Integrated in log α from the small-α solution ρ = α/√(2π), Q = α/2. Returns R.
    """
    alpha = np.asarray(alpha, dtype=float)
    c = 1.0 / math.sqrt(2 * math.pi)

    def rhs(s, y):  # s = ln α, y = (ρ, Q)
        a = math.exp(s)
        rho, Q = y
        R = min(1.0, rho / math.sqrt(Q))
        return [a * c * (1 - R), a * (math.acos(R) / math.pi - 2 * math.sqrt(Q) * c * (1 - R))]

    pos = alpha > 0
    R = np.zeros_like(alpha)
    if pos.any():
        s_eval = np.log(np.sort(np.unique(alpha[pos])))
        sol = integrate.solve_ivp(rhs, (math.log(alpha0), s_eval[-1]), [alpha0 * c, alpha0 / 2], t_eval=s_eval,
                                  method="LSODA", rtol=1e-10, atol=1e-14)
        Rs = sol.y[0] / np.sqrt(sol.y[1])
        R[pos] = np.interp(np.log(alpha[pos]), s_eval, Rs)
    return R


# ------------------------------------------------------------------------------------ binary (Ising) weights
def binary_overlap_of(qhat):
    """Overlap of the binary (±1) Bayes channel at signal-to-noise q̂: R = E_z tanh(q̂ + √q̂ z)."""
    return float(np.sum(_GAUSS_W * np.tanh(qhat + math.sqrt(qhat) * _GAUSS_T)))


def binary_gibbs_branch(alpha):
    """The R < 1 replica-symmetric branch of Gibbs learning with binary teacher and student (Györgyi 1990).

    Fixed point R = E_z tanh(q̂ + √q̂ z), q̂ = conjugate_overlap(R, α), by damped iteration from R = 0. Returns R,
    or NaN where the branch no longer exists (beyond the spinodal, α ≈ 1.49).
    """
    def one(a):
        R = 0.0
        for _ in range(20000):
            new = binary_overlap_of(conjugate_overlap(R, a)) if R < 1 - 1e-13 else 1.0
            if new > 1 - 1e-9:
                return math.nan
            if abs(new - R) < 1e-13:
                return new
            R = 0.5 * R + 0.5 * new
        return math.nan

    return np.vectorize(one, otypes=[float])(np.asarray(alpha, dtype=float))


def binary_entropy(alpha, R=None):
    """Quenched entropy per weight (nats) of the binary version space on the R < 1 branch, s = ln 2 + f_RS:

    f_RS = E_z ln cosh(q̂ + √q̂ z) − q̂/2 − q̂ R/2 + α · 2 ∫ Dt H(√(R/(1−R)) t) ln H(√(R/(1−R)) t)
    (Barbier, Krzakala, Macris, Miolane & Zdeborová 2019, Bayes-optimal GLM free entropy with the Rademacher prior
    and the noiseless sign channel). The teacher alone is always consistent, so s ≥ 0: where s reaches 0 the
    Gibbs student jumps to R = 1 (Györgyi's first-order transition, α ≈ 1.245).
    """
    a = float(alpha)
    R = float(binary_gibbs_branch(a)) if R is None else R
    if not np.isfinite(R):
        return math.nan
    qhat = conjugate_overlap(R, a)
    psi = float(np.sum(_GAUSS_W * np.log(np.cosh(qhat + math.sqrt(qhat) * _GAUSS_T)))) - qhat / 2
    x = math.sqrt(R / (1 - R))
    def integrand(t):
        return math.exp(-t * t / 2) / math.sqrt(2 * math.pi) * H(x * t) * math.log(max(H(x * t), 1e-300))

    out = 2 * integrate.quad(integrand, -np.inf, np.inf, epsabs=1e-13, limit=200)[0]
    return math.log(2) + psi - qhat * R / 2 + a * out


def binary_transition() -> float:
    """Györgyi's first-order transition to perfect generalisation: the α where the R < 1 branch's entropy is 0."""
    return optimize.brentq(binary_entropy, 1.0, 1.45, xtol=1e-10)


def binary_gibbs_error(alpha, alpha_c: float | None = None):
    """ε of the binary Gibbs student: the R < 1 branch below α_c, 0 (perfect generalisation) above."""
    alpha_c = binary_transition() if alpha_c is None else alpha_c
    alpha = np.asarray(alpha, dtype=float)
    below = alpha < alpha_c
    R = np.ones_like(alpha)
    if below.any():
        R[below] = binary_gibbs_branch(alpha[below])
    return generalization_error(R)


# --------------------------------------------------------------------------------------------- large-α limits
def gibbs_limit() -> float:
    """c in ε_Gibbs ≈ c/α (α → ∞): at R → 1 the Gibbs equation reads 1/√(1 − R) = (α/π) I with
    I = ∫ Dt exp(−t²/2)/H(−t), and ε = arccos(R)/π ≈ √(2(1 − R))/π, so c = √2/I ≈ 0.6246 (Bayes: c/√2 ≈ 0.442)."""
    return SQRT2 / _gibbs_integral(1.0)


def online_perceptron_limit() -> float:
    """c in ε ≈ c α^(−1/3) of the online perceptron (α → ∞), from the flow of online_perceptron at R → 1:
    with Q ≈ A α^(2/3), 1 − R ≈ B α^(−2/3): B = √(2π A)/3 and (4/3) A^(3/4) = u/π, u = √(2√(2π)/3), so
    c = √(2B)/π = u (3u/(4π))^(1/3)/π ≈ 0.2780."""
    u = math.sqrt(2.0 * math.sqrt(2 * math.pi) / 3.0)
    return u * (3.0 * u / (4.0 * math.pi)) ** (1.0 / 3.0) / math.pi


def large_alpha_limit(student: str) -> tuple[float, float]:
    """(γ, c) with α^γ ε → c as α → ∞ for a learning rule (Engel & Van den Broeck ch. 2–4, 9):
    Hebb γ = ½, c = 1/√(2π) (ε ≈ √(1 − R²)/π with 1 − R² = 1/(1 + 2α/π)); Gibbs and Bayes γ = 1, c from
    :func:`gibbs_limit`; maximal stability γ = 1, c = α ε at α = 10⁴ of :func:`max_stability` (≈ 0.5005; its
    root finding loses accuracy far beyond); online perceptron γ = ⅓, c from :func:`online_perceptron_limit`."""
    if student == "hebb":
        return 0.5, 1.0 / math.sqrt(2 * math.pi)
    if student == "gibbs":
        return 1.0, gibbs_limit()
    if student == "bayes":
        return 1.0, gibbs_limit() / SQRT2
    if student == "max_stability":
        big = 1e4
        return 1.0, big * float(generalization_error(max_stability(np.array([big]))[0][0]))
    if student == "online_perceptron":
        return 1.0 / 3.0, online_perceptron_limit()
    raise ValueError(f"no large-α limit for student {student!r}")


# ------------------------------------------------------------------------- estimators: where a fraction is ½
def half_load(x, k, n, increasing: bool = False) -> tuple[float, float]:
    """The load x_½ where a binomial fraction k/n (of n trials at each x) crosses ½, and its standard error.

    Maximum likelihood of the probit curve p(x) = Φ(±(x − x_½)/w) (− for a fraction that falls with x), the
    standard error of x_½ from the observed information (inverse Hessian of the log-likelihood). Where the grid
    does not resolve the transition (fewer than two points strictly between 0 and 1, the fitted width w below a
    quarter of the smallest spacing of x, or a standard error that is not finite or exceeds the bracket's width),
    x_½ is the middle of the bracket of the two neighbouring points between which the fraction crosses ½, with
    standard error half its width / √3 (the standard deviation of a uniform on the bracket). (NaN, NaN) when the
    fraction does not cross ½ inside the data.
    """
    x, k, n = (np.asarray(v, dtype=float).ravel() for v in (x, k, n))
    keep = n > 0
    order = np.argsort(x[keep])
    x, k, n = x[keep][order], k[keep][order], n[keep][order]
    f = k / n if increasing else 1 - k / n  # the fraction made increasing
    above = np.flatnonzero(f >= 0.5)
    if x.size < 2 or not above.size or above[0] == 0:
        return math.nan, math.nan
    j = int(above[0])
    bracket = 0.5 * (x[j - 1] + x[j]), 0.5 * (x[j] - x[j - 1]) / math.sqrt(3.0)
    sign = 1.0 if increasing else -1.0

    def nll(theta):
        z = sign * (x - theta[0]) / math.exp(theta[1])
        return -float(np.sum(k * special.log_ndtr(z) + (n - k) * special.log_ndtr(-z)))

    if int(((f > 0) & (f < 1)).sum()) < 2:  # one point inside the transition fixes neither centre nor width
        return bracket
    a0 = float(np.interp(0.5, f[j - 1:j + 1], x[j - 1:j + 1])) if f[j] > f[j - 1] else float(x[j])
    res = optimize.minimize(nll, [a0, math.log(max(float(np.ptp(x)) / 8, 1e-3))], method="Nelder-Mead",
                            options={"xatol": 1e-10, "fatol": 1e-12, "maxiter": 4000})
    if math.exp(res.x[1]) < 0.25 * float(np.diff(x).min()):
        return bracket
    steps = np.array([1e-4 * math.exp(res.x[1]), 1e-3])
    h = np.empty((2, 2))
    for i in range(2):
        for m in range(2):
            def at(di, dm, i=i, m=m):
                t = np.array(res.x, dtype=float)
                t[i] += di * steps[i]
                t[m] += dm * steps[m]
                return nll(t)
            h[i, m] = (at(1, 1) - at(1, -1) - at(-1, 1) + at(-1, -1)) / (4 * steps[i] * steps[m])
    with np.errstate(all="ignore"):
        var = np.linalg.pinv(h)[0, 0] if np.all(np.isfinite(h)) else math.nan
    if not var > 0 or not math.isfinite(var) or math.sqrt(var) > x[j] - x[j - 1]:  # ill-conditioned: the bracket
        return bracket
    return float(res.x[0]), math.sqrt(var)
