"""Double descent: test risk against over-parameterisation in three models, each beside its theory.

- ``linear``: min-norm least squares and ridge on isotropic Gaussian features, risk against γ = p/n at fixed n
  (Hastie, Montanari, Rosset & Tibshirani 2019): asymptotic and exact finite-n curves, ridge and optimal ridge.
- ``random_features``: ReLU random-features ridge(less) regression on the sphere, test error against N/n
  (Mei & Montanari 2019), the asymptotic curve from their fixed-point equations.
- ``network``: the two-layer ReLU network of :mod:`phaselab.models.two_layer` on the scikit-learn digits with label
  noise, trained by full-batch gradient descent through ``train_ensemble``, test error against the width h across the
  interpolation threshold h(d + C) ≈ nC (model-wise double descent: Belkin, Hsu, Ma & Mandal 2019; Nakkiran
  et al. 2019).

Cells: ``linear`` and ``random_features`` (closed-form solvers, batched over seeds), and one ``width<h>`` cell per
network width whose label-noise × seed members are trained together. Each part has its own number of seeds and
its own seed dimension: ``linear_seed``, ``rf_seed`` and ``seed`` (network).
"""

from __future__ import annotations

from dataclasses import dataclass

from phaselab.config import check_grid_axis, fail
from phaselab.experiment import Cell
from phaselab.schedules import sizes

TITLE = "double descent (linear, random features, two-layer network)"
REFERENCES = "Hastie, Montanari, Rosset & Tibshirani 2019; Mei & Montanari 2019; Belkin, Hsu, Ma & Mandal 2019; " \
             "Nakkiran et al. 2019"
FIGURES = ("linear_double_descent", "random_features", "width_double_descent")
COORDS = {
    "gamma": {"long_name": "over-parameterisation γ = p/n", "units": "1"},
    "rf_ratio": {"long_name": "random features per sample N/n", "units": "1"},
    "rf_ridge": {"long_name": "ridge penalty λ (0: ridgeless, min-norm)", "units": "1"},
    "linear_seed": {"long_name": "seed index of the linear problems", "units": "1"},
    "rf_seed": {"long_name": "seed index of the random-features problems", "units": "1"},
}
DIGITS_DIM, DIGITS_CLASSES = 64, 10
PARTS = ("linear", "random_features", "network")


@dataclass(frozen=True, kw_only=True)
class PartCell(Cell):
    """One part of the experiment: ``linear``, ``random_features`` or one ``network`` width h."""

    part: str
    width: int | None = None


def linear_dims(lin: dict) -> list[int]:
    """p = round(γ n) for every γ of the config, sorted."""
    return sizes(lin["n"], sorted(lin["gamma"]))


def rf_features(rf: dict) -> list[int]:
    """N = round((N/n) n) for every ratio of the config, sorted."""
    return sizes(rf["n"], sorted(rf["ratio"]))


def check(key: str, exp: dict) -> None:
    lin, rf, net = exp["linear"], exp["random_features"], exp["network"]
    for axis in ("gamma", "ridge"):
        check_grid_axis(f"{key}.linear.{axis}", lin[axis])
    for axis in ("ratio", "ridge"):
        check_grid_axis(f"{key}.random_features.{axis}", rf[axis])
    for axis in ("widths", "label_noise"):
        check_grid_axis(f"{key}.network.{axis}", net[axis])
    for g in lin["gamma"]:
        p = round(g * lin["n"])
        if p < 1:
            fail(f"{key}.linear.gamma", g, f"gives p = {p} < 1 features at n = {lin['n']}")
        if abs(p - lin["n"]) <= 1:
            fail(f"{key}.linear.gamma", g, f"gives p = {p} within 1 of n = {lin['n']}, where the expected "
                                           "min-norm risk is infinite")
    if len(set(linear_dims(lin))) != len(lin["gamma"]):
        fail(f"{key}.linear.gamma", lin["gamma"], f"two values give the same p at n = {lin['n']}")
    if len(set(rf_features(rf))) != len(rf["ratio"]):
        fail(f"{key}.random_features.ratio", rf["ratio"], f"two values give the same N at n = {rf['n']}")
    if net["n_train"] > 1797 - 100:
        fail(f"{key}.network.n_train", net["n_train"], "leaves fewer than 100 of the 1797 digits for testing")


def cells(exp: dict) -> list[PartCell]:
    """``linear`` and ``random_features`` (closed-form solvers, no data file), then one ``width<h>`` cell per
    network width, reading the digits."""
    rows = [PartCell(id="linear", part="linear"), PartCell(id="random_features", part="random_features")]
    rows += [PartCell(id=f"width{h}", data="digits", part="network", width=h) for h in sorted(exp["network"]["widths"])]
    return rows
