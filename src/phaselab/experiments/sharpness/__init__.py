"""Flat and sharp minima of SGD, and the η/B law of its noise.

Two parts, one experiment:

- ``mlp``: Keskar et al.'s protocol (Keskar, Mudigere, Nocedal, Smelyanskiy & Tang, ICLR 2017): minibatch SGD
  (sampling with replacement) on the square loss of a small tanh MLP fitted to a subset of the digits, over a grid of
  batch sizes B (a small one against a large fraction of the training set) and learning rates η, every run until its
  full training loss reaches a common target (its step recorded), so that batch sizes are compared at the same
  training loss. There: the sharpness λ_max of the full training loss (Lanczos, ``phaselab.curvature``), Keskar's
  ε-sharpness, the test error and the generalisation gap. Claims: large batch → sharper minimum and larger test error
  at equal η (Keskar); equal η/B → equal sharpness and test error (Jastrzębski et al. 2017: the SGD noise scale η/B
  selects the minimum; Hochreiter & Schmidhuber 1997). A cell is one batch size; its members are η × seeds
  (``mlp.seeds``, default the experiment's), members of one seed sharing the init across η and B (and the minibatch
  indices across η), so that differences between batch sizes are paired by seed.
- ``linear_regression``: SGD on isotropic linear regression with fresh samples, where the stationary excess loss is
  exact, E[L − L*] = d η σ² / (2B (2 − η − η(d + 1)/B)) ≈ η d σ² / (4B) (``theory.sgd_noise``): a function of
  η/B alone at small η. A cell is one batch size B; its members are the ratios η/B of the grid × seeds.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

from phaselab.config import check_grid_axis, fail
from phaselab.experiment import Cell

TITLE = "sharpness of SGD minima against B and η/B"
REFERENCES = "Keskar et al. ICLR 2017; Hochreiter & Schmidhuber 1997; Jastrzebski et al. 2017; Cohen et al. ICLR 2021"
FIGURES = ("sharpness_vs_batch", "eta_over_b")
COORDS = {
    "linreg_batch_size": {"long_name": "linear-regression minibatch size B", "units": "1"},
    "eta_over_batch": {"long_name": "linear-regression noise scale η/B", "units": "1"},
}


@dataclass(frozen=True, kw_only=True)
class MlpCell(Cell):
    """One MLP batch size B; its members are η × seeds, trained on the digits subset."""

    part: ClassVar[str] = "mlp"
    batch_size: int


@dataclass(frozen=True, kw_only=True)
class LinregCell(Cell):
    """One linear-regression batch size B and its number of SGD steps; its members are the ratios η/B × seeds."""

    part: ClassVar[str] = "linreg"
    batch_size: int
    steps: int


def check(key: str, exp: dict) -> None:
    mlp, lin = exp["mlp"], exp["linear_regression"]
    for axis in ("batch_size", "lr"):
        check_grid_axis(f"{key}.mlp.{axis}", mlp[axis])
    for axis in ("batch_size", "eta_over_batch"):
        check_grid_axis(f"{key}.linear_regression.{axis}", lin[axis])
    for b in mlp["batch_size"]:
        if b > mlp["n_train"]:
            fail(f"{key}.mlp.batch_size", b, f"exceeds mlp.n_train = {mlp['n_train']}")
    from phaselab.theory.sgd_noise import stability_limit

    for b in lin["batch_size"]:
        limit = float(stability_limit(b, lin["d"]))
        for r in lin["eta_over_batch"]:
            if r * b >= limit:
                fail(f"{key}.linear_regression.eta_over_batch", r,
                     f"with B = {b} gives η = {r * b:g} ≥ 2/(1 + (d+1)/B) = {limit:.4g}: SGD has no stationary state")


def cells(exp: dict) -> list[MlpCell | LinregCell]:
    """One MLP cell per batch size (reading the digits), then one linear-regression cell per batch size, its steps
    = ⌈time / (min η/B · B)⌉."""
    mlp = [MlpCell(id=f"mlp_b{b}", data="digits", batch_size=b) for b in sorted(exp["mlp"]["batch_size"])]
    lin = exp["linear_regression"]
    linreg = [LinregCell(id=f"linreg_b{b}", data=None, batch_size=b,
                         steps=math.ceil(lin["time"] / (min(lin["eta_over_batch"]) * b)))
              for b in sorted(lin["batch_size"])]
    return mlp + linreg
