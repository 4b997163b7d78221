"""Landscape: spurious minima and over-parameterisation (Safran & Shamir, ICML 2018; Saad & Solla 1995;
Choromanska, Henaff, Mathieu, Ben Arous & LeCun, AISTATS 2015).

Three parts, each its own kind of cell:

- ``relu`` (Safran & Shamir 2018): gradient descent on the exact population loss of a two-layer ReLU student of n
  units against the teacher Σ_{i≤k} relu(e_i·x), x ~ N(0, I_k), from many random initialisations at once; each end
  point classified as global minimum / spurious minimum / saddle / not converged (loss, gradient norm and the
  smallest eigenvalue of the finite-difference Hessian of the closed form). One cell per (k, n = k + extra).
- ``committee`` (the contrast): erf soft committees under gradient flow on the population risk (the Saad–Solla
  ODE without its η² terms) in reduced coordinates, p = k and over-parameterised p = m·k, many random inits; the
  same classification. One cell per (k, p).
- ``digits`` (Choromanska et al. 2015): one-hidden-layer networks on the scikit-learn digits, many seeds per width
  trained as one ensemble by minibatch SGD (``engines.ensemble.train_ensemble``); the spread of the final
  training and test losses over seeds against width. One cell per width.
"""

from __future__ import annotations

from dataclasses import dataclass

from phaselab.config import check_grid_axis, fail
from phaselab.experiment import Cell

TITLE = "the loss landscape: spurious minima, over-parameterisation and the spread of trained losses"
REFERENCES = ("Safran & Shamir, ICML 2018; Saad & Solla 1995; "
              "Choromanska, Henaff, Mathieu, Ben Arous & LeCun, AISTATS 2015")
FIGURES = ("landscape_spurious_minima", "landscape_committee_flow", "landscape_loss_spread")
COORDS = {
    "k": {"long_name": "teacher units k (ReLU teacher Σ relu(e_i·x))", "units": "1"},
    "extra": {"long_name": "student units beyond the teacher's, n − k", "units": "1"},
    "init": {"long_name": "random initialisation index (ReLU landscape)", "units": "1"},
    "erf_k": {"long_name": "teacher units k of the erf committee", "units": "1"},
    "p_over_k": {"long_name": "student units per teacher unit, p/k (erf committee)", "units": "1"},
    "erf_init": {"long_name": "random initialisation index (erf committee)", "units": "1"},
    "tau": {"long_name": "gradient-flow time τ = η t (t = steps/d; the O(η) Saad–Solla ODE)", "units": "1"},
    "width": {"long_name": "hidden units of the digits network", "units": "1"},
    "boot": {"long_name": "bootstrap resample over seeds", "units": "1"},
}

# derive_seed purposes of this type (101–119)
RELU_INIT, COMMITTEE_INIT, DIGITS_SPLIT, DIGITS_INIT, DIGITS_ORDER, BOOTSTRAP = 101, 102, 103, 104, 105, 106


@dataclass(frozen=True, kw_only=True)
class ReluCell(Cell):
    """Safran & Shamir: k teacher units, n = k + extra student units, all inits of the config."""

    k: int
    n: int


@dataclass(frozen=True, kw_only=True)
class CommitteeCell(Cell):
    """erf committee gradient flow: k teacher units, p = m·k student units."""

    k: int
    p: int


@dataclass(frozen=True, kw_only=True)
class DigitsCell(Cell):
    """One hidden-layer width; its members are the seeds."""

    width: int


def check(key: str, exp: dict) -> None:
    check_grid_axis(f"{key}.relu.k", exp["relu"]["k"])
    check_grid_axis(f"{key}.relu.extra", exp["relu"]["extra"])
    check_grid_axis(f"{key}.committee.k", exp["committee"]["k"])
    check_grid_axis(f"{key}.committee.p_over_k", exp["committee"]["p_over_k"])
    check_grid_axis(f"{key}.digits.widths", exp["digits"]["widths"])
    if exp["digits"]["batch_size"] > exp["digits"]["n_train"]:
        fail(f"{key}.digits.batch_size", exp["digits"]["batch_size"], "exceeds digits.n_train")
    if 0 not in exp["relu"]["extra"]:
        fail(f"{key}.relu.extra", exp["relu"]["extra"], "must contain 0 (n = k, the reference of every claim)")
    if 1 not in exp["committee"]["p_over_k"]:
        fail(f"{key}.committee.p_over_k", exp["committee"]["p_over_k"], "must contain 1 (p = k)")


def cells(exp: dict) -> list[Cell]:
    out: list[Cell] = []
    for k in sorted(exp["relu"]["k"]):
        for e in sorted(exp["relu"]["extra"]):
            out.append(ReluCell(id=f"relu_k{k}_n{k + e}", k=k, n=k + e))
    for k in sorted(exp["committee"]["k"]):
        for m in sorted(exp["committee"]["p_over_k"]):
            out.append(CommitteeCell(id=f"erf_k{k}_p{m * k}", k=k, p=m * k))
    for w in sorted(exp["digits"]["widths"]):
        out.append(DigitsCell(id=f"digits_w{w}", data="digits", width=w))
    return out
