"""Stationary excess loss of minibatch SGD on isotropic linear regression: the η/B law.

Population loss L(w) = ½ E[(y − w·x)²], x ~ N(0, I_d), y = w*·x + σ ξ (label-noise variance σ²); SGD with step η
on minibatches of B fresh samples (sampling with replacement from the population). With e = w − w* and
S = E[e eᵀ], one step gives S' = S − 2ηS + η²[(1 + 1/B) S + tr(S) I/B] + η²σ² I/B (Gaussian fourth moments),
so s = tr S obeys s' = s (1 − 2η + η²(1 + (d + 1)/B)) + η² d σ²/B and at stationarity

    E[L − L*] = s/2 = d η σ² / (2B (2 − η − η(d + 1)/B))  ≈  η d σ² / (4B)  for small η,

which depends on η/B only (to leading order): the SGD "temperature" of Jastrzębski et al. (2017), Smith & Le
(2018). The stationary state exists iff η (1 + (d + 1)/B) < 2 (shared/reference/theory.md, section 5).
"""

from __future__ import annotations

import numpy as np


def stability_limit(batch, d: int):
    """Largest step η for which the second moment of the SGD iterates stays bounded: 2 / (1 + (d + 1)/B)."""
    return 2.0 / (1.0 + (d + 1) / np.asarray(batch, dtype=float))


def excess_loss(eta, batch, d: int, noise_variance: float):
    """Exact stationary E[L − L*] of SGD with step η and batch B; inf beyond the stability limit."""
    eta, batch = np.asarray(eta, dtype=float), np.asarray(batch, dtype=float)
    denominator = 2 * batch * (2 - eta - eta * (d + 1) / batch)
    with np.errstate(divide="ignore"):
        return np.where(denominator > 0, d * eta * noise_variance / denominator, np.inf)


def excess_loss_small_eta(eta_over_batch, d: int, noise_variance: float):
    """Leading order in η at fixed η/B: η d σ² / (4B), a function of η/B alone."""
    return np.asarray(eta_over_batch, dtype=float) * d * noise_variance / 4
