"""Storage capacity of the perceptron: Cover's counting theorem (1965) and Gardner's capacity at stability κ (1988).

Random patterns ξ^μ ~ N(0, I_N) with random labels ±1, α = P/N with P = round(αN). Every trial is solved by the
batched maximal-stability solver (:func:`phaselab.solvers.perceptron.max_stability`), which certifies each trial as
separable (a weight vector storing every pattern) or non-separable (Gordan's alternative: a convex combination of
the signed patterns equal to zero), or leaves it undecided within its iteration budget, and brackets the largest
stability κ* of the separable ones. Cells: one per N, its α × trial problems solved as batches of trials.
"""

from __future__ import annotations

from dataclasses import dataclass

from phaselab.config import check_grid_axis, fail
from phaselab.experiment import Cell
from phaselab.schedules import sizes

TITLE = "perceptron storage capacity (Cover 1965, Gardner 1988)"
REFERENCES = "Cover 1965, IEEE Trans. Electron. Comput. 14, 326; Gardner 1988, J. Phys. A 21, 257"
FIGURES = ("capacity_curves", "gardner_capacity")


@dataclass(frozen=True, kw_only=True)
class DimensionCell(Cell):
    """One input dimension N: its α × trial problems, drawn by the cell itself (no data file)."""

    N: int


def check(key: str, exp: dict) -> None:
    grid = exp["grid"]
    for axis in ("N", "alpha"):
        check_grid_axis(f"{key}.grid.{axis}", grid[axis])
    check_grid_axis(f"{key}.theory.kappa", exp["theory"]["kappa"])
    for N in grid["N"]:
        P = sizes(N, grid["alpha"])
        if len(set(P)) != len(P):
            fail(f"{key}.grid.alpha", grid["alpha"], f"two values give the same P = round(αN) at N = {N}")


def cells(exp: dict) -> list[DimensionCell]:
    """One cell per N (id 'n<N>'), in increasing N."""
    return [DimensionCell(id=f"n{N}", N=N) for N in sorted(exp["grid"]["N"])]
