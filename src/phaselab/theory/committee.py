"""Online SGD in two-layer erf committee machines: order-parameter ODEs and phase diagram.

Teacher-student setting of Saad & Solla (1995), "On-line learning in soft committee machines", Phys. Rev. E 52,
4225, in the conventions of Veiga, Stephan, Loureiro, Krzakala & Zdeborova (2022), "Phase diagram of stochastic
gradient descent in high-dimensional two-layer neural networks" (NeurIPS). Activation g(h) = erf(h/sqrt(2));
student f = (1/p) sum_j g(lambda_j), teacher f* = (1/k) sum_r g(nu_r); order parameters Q = W W^T/d (p x p),
M = W W*^T/d (p x k), P = W* W*^T/d (k x k); learning rate eta = gamma/p; time t = steps/d; label-noise variance
Delta ("noise"). Fields are ordered students first, then teachers, with weights u_c = -1/p (student) and
+1/k (teacher), so that f* - f = sum_c u_c g(c). Formulas: the project's theory reference, section 1.
"""
import numpy as np

__all__ = ["PHASES", "phase", "eta_scaling_exponent", "order_parameters", "risk", "rhs", "integrate", "ode_risk"]

PHASES = ("perfect learning", "Saad-Solla", "noise dominated", "no ODE limit")
_TOL = 1e-9


# ----------------------------------------------------------------------------------------------- phase diagram
def eta_scaling_exponent(kappa, delta):
    """Exponent of d in eta = gamma/p for p = d^kappa, gamma = gamma0 d^(-delta): eta ~ d^(-(kappa+delta))."""
    return -(kappa + delta)


def phase(kappa, delta):
    """Region of the (kappa, delta) phase diagram of Veiga et al. (2022), Fig. 1.

    kappa+delta > 0: "perfect learning" (eta -> 0, gradient flow on the population risk, R_inf ~ Delta*eta -> 0);
    kappa+delta = 0: "Saad-Solla" (the deterministic ODE of Saad & Solla 1995, finite R_inf when Delta > 0);
    -1/2 < kappa+delta < 0: "noise dominated" (the eta^2 terms dominate); kappa+delta <= -1/2: "no ODE limit"
    (order-parameter fluctuations stay O(1)).
    """
    s = kappa + delta
    if s > _TOL:
        return PHASES[0]
    if s >= -_TOL:
        return PHASES[1]
    if s > -0.5 + _TOL:
        return PHASES[2]
    return PHASES[3]


# ------------------------------------------------------------------------------------------ order parameters
def order_parameters(W, W_teacher):
    """(Q, M, P) = (W W^T/d, W W*^T/d, W* W*^T/d) for W (..., p, d) and W_teacher (k, d)."""
    W, Wt = np.asarray(W, float), np.asarray(W_teacher, float)
    d = W.shape[-1]
    return W @ np.swapaxes(W, -1, -2) / d, W @ Wt.T / d, Wt @ Wt.T / d


def _cov(Q, M, P):
    """Joint covariance C = [[Q, M], [M^T, P]] of (lambda, nu), broadcast over leading dims."""
    Q, M, P = np.asarray(Q, float), np.asarray(M, float), np.asarray(P, float)
    lead = np.broadcast_shapes(Q.shape[:-2], M.shape[:-2], P.shape[:-2])
    Q, M, P = (np.broadcast_to(x, lead + x.shape[-2:]) for x in (Q, M, P))
    top = np.concatenate([Q, M], -1)
    return np.concatenate([top, np.concatenate([np.swapaxes(M, -1, -2), P], -1)], -2)


def _u(p, k):
    return np.concatenate([np.full(p, -1.0 / p), np.full(k, 1.0 / k)])


def risk(Q, M, P, p=None, k=None):
    """Excess risk R = 1/2 E[(f* - f)^2] = 1/2 sum_{c,e} u_c u_e I2(c,e) (Saad & Solla 1995).

    Q (..., p, p), M (..., p, k), P (..., k, k); returns a float, or an array of the leading shape.
    """
    C = _cov(Q, M, P)
    p = C.shape[-1] - np.shape(P)[-1] if p is None else p
    k = np.shape(P)[-1] if k is None else k
    assert C.shape[-1] == p + k, "p, k do not match the shapes of Q, M, P"
    s = np.sqrt(1.0 + np.diagonal(C, axis1=-2, axis2=-1))
    I2 = (2 / np.pi) * np.arcsin(np.clip(C / (s[..., :, None] * s[..., None, :]), -1, 1))
    u = _u(p, k)
    R = 0.5 * (I2 @ u) @ u
    return float(R) if np.ndim(R) == 0 else R


# ------------------------------------------------------------------------------------------------------- ODEs
def rhs(Q, M, P, eta, noise=0.0):
    """(dQ/dt, dM/dt) of Saad & Solla (1995) for a batch: Q (B,p,p), M (B,p,k), P (k,k) or (B,k,k), eta (B,).

    dM_jr/dt = eta sum_c u_c I3(j, r, c),
    dQ_jl/dt = eta sum_c u_c [I3(j,l,c) + I3(l,j,c)] + eta^2 [sum_{c,e} u_c u_e I4(j,l,c,e) + Delta J2(j,l)].
    """
    C = _cov(Q, M, P)
    B, p, k = C.shape[0], np.shape(Q)[-1], np.shape(M)[-1]
    eta = np.broadcast_to(np.asarray(eta, float), (B,))[:, None, None]
    noise = np.broadcast_to(np.asarray(noise, float), (B,))[:, None, None]
    u = _u(p, k)
    d1 = 1.0 + np.diagonal(C, axis1=1, axis2=2)  # (B, n): 1 + C_cc
    S = C[:, :p, :]  # C_ac, a a student field, c any field: (B, p, n)
    da = d1[:, :p]

    # I3(a,b,c) = (2/pi) (C_bc (1+C_aa) - C_ab C_ac) / ((1+C_aa) sqrt(L3_ac)); contract c with w_ac = u_c/sqrt(L3_ac)
    w = u / np.sqrt(da[:, :, None] * d1[:, None, :] - S**2)
    y = (w * S).sum(-1) / da  # (B, p)
    U3 = (2 / np.pi) * (w @ C - S * y[:, :, None])  # U3[a,b] = sum_c u_c I3(a,b,c): (B, p, n)
    dM = eta * U3[:, :, p:]
    lin = U3[:, :, :p] + np.swapaxes(U3[:, :, :p], 1, 2)

    # eta^2 term. I4 and J2 are symmetric in (j, l) and I4 in (c, e): evaluate pairs j <= l (m of them) and c <= e
    # only, in a batch-last layout (c, m, B) so that numpy's inner loops run over long contiguous axes. With
    # X_c = (1+C_aa) C_bc - C_ab C_ac and Y_c = (1+C_bb) C_ac - C_ab C_bc (a = j, b = l):
    # L0(c,e) = L4 C_ce - X_c C_be - Y_c C_ae,  L1(c) = L4 (1+C_cc) - X_c C_bc - Y_c C_ac.
    ja, lb = np.triu_indices(p)
    ci, ei = np.triu_indices(p + k)
    uu = np.where(ci == ei, 1.0, 2.0) * u[ci] * u[ei]
    Ct = np.ascontiguousarray(C.transpose(1, 2, 0))  # (n, n, B)
    Ca, Cb = Ct[:, ja], Ct[:, lb]  # C_ac, C_bc: (n, m, B)
    Cab, Da, Db = Ct[ja, lb], 1.0 + Ct[ja, ja], 1.0 + Ct[lb, lb]  # (m, B)
    L4 = Da * Db - Cab**2
    X, Y = Da * Cb - Cab * Ca, Db * Ca - Cab * Cb
    r = 1.0 / np.sqrt(L4 * d1.T[:, None] - X * Cb - Y * Ca)  # 1/sqrt(L1): (n, m, B)
    Ca, Cb, X, Y = Ca * r, Cb * r, X * r, Y * r
    arg = L4 * Ct[ci, ei][:, None] * r[ci] * r[ei]  # L0 / sqrt(L1(c) L1(e)): (n(n+1)/2, m, B)
    arg -= X[ci] * Cb[ei]
    arg -= Y[ci] * Ca[ei]
    A = np.arcsin(np.clip(arg, -1.0, 1.0, out=arg), out=arg)
    quad_m = ((4 / np.pi**2) * np.tensordot(uu, A, 1) + noise.ravel() * (2 / np.pi)) / np.sqrt(L4)  # (m, B)
    quad = np.empty((p, p, B))
    quad[ja, lb] = quad_m
    quad[lb, ja] = quad_m
    quad = quad.transpose(2, 0, 1)
    return eta * lin + eta**2 * quad, dM


# DOPRI5(4) tableau (Dormand & Prince 1980); the 7th stage is f(y_new) (first same as last)
_A = [[], [1 / 5], [3 / 40, 9 / 40], [44 / 45, -56 / 15, 32 / 9],
      [19372 / 6561, -25360 / 2187, 64448 / 6561, -212 / 729],
      [9017 / 3168, -355 / 33, 46732 / 5247, 49 / 176, -5103 / 18656],
      [35 / 384, 0, 500 / 1113, 125 / 192, -2187 / 6784, 11 / 84]]
_E = np.array([71 / 57600, 0, -71 / 16695, 71 / 1920, -17253 / 339200, 22 / 525, -1 / 40])  # b5 - b4


def integrate(Q0, M0, P, times, eta, noise=0.0, rtol=1e-6, atol=1e-9, max_steps=1_000_000):
    """Integrate the Saad-Solla ODEs for a whole batch at once; returns {'risk' (B,T), 'Q' (B,T,p,p), 'M' (B,T,p,k)}.

    Q0 (B,p,p) or (p,p), M0 (B,p,k) or (p,k), P (k,k) or (B,k,k), eta and noise scalars or (B,); `times` is a 1-D
    increasing array of t >= 0. One vectorised Dormand-Prince 5(4) loop in which every batch element keeps its own
    time and adaptive step (so a large-eta element does not slow down the others), with steps clipped to land
    exactly on the requested times; the error of an element is the max-norm of err / (atol + rtol |y|).
    The risk is then accurate to roughly rtol * |Q| in absolute terms (a floor of ~1e-8 at the defaults: tighten
    rtol/atol to follow R -> 0). The ODE keeps permutation symmetry, so a symmetric start (e.g. Q0 = M0 = 0)
    never leaves the symmetric plateau: start from a generic (random) initial condition.
    """
    times = np.asarray(times, float)
    if times.ndim != 1 or np.any(np.diff(times) <= 0) or times[0] < 0:
        raise ValueError("times must be a 1-D increasing array of t >= 0")
    Q0, M0, P = np.asarray(Q0, float), np.asarray(M0, float), np.asarray(P, float)
    p, k = M0.shape[-2:]
    shape = np.broadcast_shapes(Q0.shape[:-2], M0.shape[:-2], P.shape[:-2], np.shape(eta), np.shape(noise))
    B = int(np.prod(shape)) if shape else 1
    if len(shape) > 1:
        raise ValueError("only one leading batch dimension is supported")
    Q0, M0, P = (np.broadcast_to(x, (B,) + x.shape[-2:]) for x in (Q0, M0, P))
    eta, noise = (np.broadcast_to(np.asarray(x, float), (B,)) for x in (eta, noise))

    def f(y, i):  # flattened state of the elements i -> flattened derivative
        dQ, dM = rhs(y[:, :p * p].reshape(-1, p, p), y[:, p * p:].reshape(-1, p, k), P[i], eta[i], noise[i])
        return np.concatenate([dQ.reshape(len(i), -1), dM.reshape(len(i), -1)], 1)

    T = len(times)
    y = np.concatenate([Q0.reshape(B, -1), M0.reshape(B, -1)], 1)
    out = np.empty((B, T, y.shape[1]))
    t, nxt = np.zeros(B), np.zeros(B, int)
    if times[0] == 0:
        out[:, 0], nxt[:] = y, 1
    allb = np.arange(B)
    k1 = f(y, allb)
    scale = atol + rtol * np.abs(y)  # initial step: 1% of |y|/|y'| in the error norm (Hairer et al.)
    d0, d1 = np.abs(y / scale).max(1), np.abs(k1 / scale).max(1)
    h = np.where((d0 > 1e-5) & (d1 > 1e-5), 0.01 * d0 / np.maximum(d1, 1e-300), 1e-6)
    for _ in range(max_steps):
        i = allb[nxt < T]
        if i.size == 0:
            break
        target = times[nxt[i]]
        hi = np.minimum(h[i], target - t[i])
        hit = hi >= target - t[i]
        yi, ks = y[i], [k1[i]]
        for a in _A[1:6]:
            ks.append(f(yi + hi[:, None] * sum(c * kk for c, kk in zip(a, ks) if c), i))
        ynew = yi + hi[:, None] * sum(c * kk for c, kk in zip(_A[-1], ks) if c)
        ks.append(f(ynew, i))
        err = np.abs(hi[:, None] * sum(e * kk for e, kk in zip(_E, ks) if e))
        err = (err / (atol + rtol * np.maximum(np.abs(yi), np.abs(ynew)))).max(1)
        ok = err <= 1.0
        fac = np.clip(0.9 * np.maximum(err, 1e-10) ** -0.2, 0.2, 5.0)
        h[i] = np.where(ok & hit, np.maximum(h[i], hi * fac), hi * np.where(ok, fac, np.minimum(fac, 1.0)))
        acc = i[ok]
        y[acc], k1[acc] = ynew[ok], ks[-1][ok]
        t[acc] = np.where(hit[ok], target[ok], t[acc] + hi[ok])
        rec = i[ok & hit]
        out[rec, nxt[rec]] = y[rec]
        nxt[rec] += 1
        if not np.all(h[i] >= 1e-14 * np.maximum(t[i], 1.0)):  # also catches NaN (invalid order parameters)
            raise RuntimeError("committee.integrate: step size underflow or non-finite state")
    else:
        raise RuntimeError("committee.integrate: max_steps exceeded")
    Q = out[..., :p * p].reshape(B, T, p, p)
    M = out[..., p * p:].reshape(B, T, p, k)
    return {"risk": risk(Q, M, P[:, None], p, k), "Q": Q, "M": M, "times": times}


def ode_risk(Q0, M0, P, times, gamma, p, k, noise=0.0):
    """Risk R(t) at `times` for one initial condition Q0 (p,p), M0 (p,k), with eta = gamma/p (Saad & Solla 1995)."""
    assert np.shape(Q0) == (p, p) and np.shape(M0) == (p, k) and np.shape(P) == (k, k)
    return integrate(np.asarray(Q0)[None], np.asarray(M0)[None], P, times, gamma / p, noise)["risk"][0]
