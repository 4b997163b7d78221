"""Finite-size errors of the d → ∞ theories: how far a simulation at finite input dimension d may sit from the
Saad–Solla ODE (Saad & Solla 1995; theory.md §1 and §8).

The ODE is the d → ∞ limit of online SGD: the order parameters of one run fluctuate by O(1/√d) around their ODE
values, and the seed-mean risk carries finite-d corrections of that order. A comparison of a finite-d simulation
with the ODE is therefore judged with a relative tolerance of a few 1/√d, fixed before any run — a property of the
comparison, shared by every experiment type that makes it (sgd_trade_off, sgd_phase_diagram).
"""

from __future__ import annotations

import numpy as np

FINITE_SIZE_SIGMAS = 2.0  # the tolerance in units of 1/√d


def finite_size_tolerance(d) -> float:
    """Relative tolerance 2/√d of a simulation at input dimension ``d`` against the Saad–Solla ODE: the order
    parameters of one run fluctuate by O(1/√d) around the ODE, and the seed-mean risk carries finite-d corrections
    of that order; fixed before any run."""
    return FINITE_SIZE_SIGMAS / np.sqrt(d)
