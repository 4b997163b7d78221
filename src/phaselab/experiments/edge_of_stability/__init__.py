"""Gradient descent at the edge of stability (Cohen, Kaur, Li, Kolter & Talwalkar, ICLR 2021).

Full-batch gradient descent with step η on the square loss of a small tanh MLP fitted to a subset of the digits.
On a quadratic, GD is stable iff the top Hessian eigenvalue (the *sharpness*) stays below 2/η; on a network the
sharpness first rises (progressive sharpening) and, once it reaches 2/η, hovers there while the loss keeps falling,
non-monotonically. The sharpness is measured at every checkpoint by Lanczos on Hessian-vector products
(``phaselab.curvature``), batched over the ensemble.

A cell is one seed (one initialisation, shared by all learning rates: common random numbers); its members are the
learning rates of the grid, trained together by ``engines.ensemble.train_ensemble`` on one shared full batch.
"""

from __future__ import annotations

from dataclasses import dataclass

from phaselab.config import check_grid_axis
from phaselab.experiment import Cell

TITLE = "full-batch gradient descent at the edge of stability"
REFERENCES = "Cohen, Kaur, Li, Kolter, Talwalkar, ICLR 2021"
FIGURES = ("sharpness_trajectories",)


@dataclass(frozen=True, kw_only=True)
class SeedCell(Cell):
    """One initialisation seed; its members are the learning rates of the grid."""

    seed: int


def check(key: str, exp: dict) -> None:
    check_grid_axis(f"{key}.grid.lr", exp["grid"]["lr"])


def checkpoints(exp: dict) -> list[int]:
    """Evenly spaced steps 0, Δ, 2Δ, …, steps (Δ = steps / train.checkpoints, rounded)."""
    steps, n = exp["train"]["steps"], exp["train"]["checkpoints"]
    return sorted({round(i * steps / n) for i in range(n + 1)})


def cells(exp: dict) -> list[SeedCell]:
    return [SeedCell(id=f"seed{s}", data="digits", seed=s) for s in range(exp["grid"]["seeds"])]
