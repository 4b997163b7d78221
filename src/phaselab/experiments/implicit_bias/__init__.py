"""The implicit bias of gradient descent towards the maximum margin (Soudry, Hoffer, Nacson, Gunasekar & Srebro,
JMLR 2018).

Full-batch GD on the mean logistic loss of a linear classifier, from w = 0, on a small data set separable through
the origin (``data.separable_set``: two Gaussian clouds, support vectors spanning R^d). The theory
(``theory.implicit_bias``): w(t)/‖w(t)‖ → ŵ/‖ŵ‖, ŵ the hard-margin SVM solution (computed independently by
non-negative least squares), with the angle and the normalised-margin gap decaying like 1/log t and
‖w(t)‖ ≈ ‖ŵ‖ log t; more precisely w(t) ≈ ŵ log t + w̃.

One cell: its members are the learning rates × data sets (seeds), each member full-batch GD on its own data set.
"""

from __future__ import annotations

from dataclasses import dataclass

from phaselab.config import check_grid_axis
from phaselab.experiment import Cell
from phaselab.schedules import log_schedule

TITLE = "implicit bias of GD on separable data"
REFERENCES = "Soudry, Hoffer, Nacson, Gunasekar, Srebro, JMLR 2018"
FIGURES = ("implicit_bias_rates", "implicit_bias_2d")
COORDS = {
    "seed": {"long_name": "seed index (data set)", "units": "1"},
    "step": {"long_name": "gradient-descent step t", "units": "steps"},
    "coord": {"long_name": "input coordinate", "units": "1"},
    "sample": {"long_name": "training point", "units": "1"},
}


@dataclass(frozen=True, kw_only=True)
class EnsembleCell(Cell):
    """Every (η, data set) member of the experiment: the learning rates (sorted), the data sets, their size and
    dimension, and the checkpoint steps."""

    lrs: tuple[float, ...]
    seeds: int
    n: int
    d: int
    steps: tuple[int, ...]


def check(key: str, exp: dict) -> None:
    check_grid_axis(f"{key}.grid.lr", exp["grid"]["lr"])


def checkpoints(exp: dict) -> list[int]:
    """Steps 0 and log-spaced from 1 to train.steps, ``checkpoints_per_decade`` a decade."""
    return log_schedule(exp["train"]["steps"], exp["train"]["checkpoints_per_decade"])


def cells(exp: dict) -> list[EnsembleCell]:
    """One cell: every (η, data set) member in one ensemble (a step costs little more for 10 members than for 1)."""
    return [EnsembleCell(id="ensemble", data=None, lrs=tuple(sorted(exp["grid"]["lr"])), seeds=exp["grid"]["seeds"],
                         n=exp["data"]["n"], d=exp["data"]["d"], steps=tuple(checkpoints(exp)))]
