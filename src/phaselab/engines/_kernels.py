"""Fused CPU kernel of the batched engine (numba). Imported by phaselab.engines.committee; nothing else uses it."""

import math

import numba
import numpy as np

_INV_SQRT2 = np.float32(1.0 / math.sqrt(2.0))
_SQRT_2_OVER_PI = np.float32(math.sqrt(2.0 / math.pi))


@numba.njit(parallel=True, fastmath=True, cache=True, boundscheck=False)
def sgd_block(W, X, y, group, step_size):
    """n online-SGD steps for every member, in place.

    W (M, p, d) float32 students; X (S, n, d) float32 inputs already divided by √d; y (S, n) labels; group (M,)
    the seed group of each member; step_size (M,) γ/p (0 freezes a member). One pass over W per step: the update
    of step t−1 is applied while the fields of step t are accumulated.
    """
    M, p, d = W.shape
    n = X.shape[1]
    for m in numba.prange(M):
        c = step_size[m]
        if c == 0.0:
            continue
        s = group[m]
        Wm = W[m]
        lam = np.zeros(p, dtype=np.float32)
        coef = np.zeros(p, dtype=np.float32)
        for t in range(n):
            x = X[s, t]
            for j in range(p):
                acc = np.float32(0.0)
                cj = coef[j]
                if t > 0:
                    xp = X[s, t - 1]
                    for i in range(d):
                        w = Wm[j, i] + cj * xp[i]
                        Wm[j, i] = w
                        acc += w * x[i]
                else:
                    for i in range(d):
                        acc += Wm[j, i] * x[i]
                lam[j] = acc
            f = np.float32(0.0)
            for j in range(p):
                f += math.erf(lam[j] * _INV_SQRT2)
            err = y[s, t] - f / p
            for j in range(p):
                coef[j] = c * err * _SQRT_2_OVER_PI * math.exp(np.float32(-0.5) * lam[j] * lam[j])
        xp = X[s, n - 1]
        for j in range(p):
            cj = coef[j]
            for i in range(d):
                Wm[j, i] += cj * xp[i]
