"""One-pass SGD phase diagram of two-layer erf committee machines (Veiga, Stephan, Loureiro, Krzakala &
Zdeborová, NeurIPS 2022).

Grid: input dimension d, width exponent κ (p = round(d^κ) ≥ 1), learning-rate exponent δ (γ = γ0 d^−δ), seeds.
A cell is one shape (d, κ): its δ × seed members are trained together as one batched ensemble. Each run lasts
``train.time`` in units of its slowest member's time scale 1/min(1, η), η = γ/p, at most ``train.max_time``,
rounded up to the experiment's log-spaced checkpoint grid of t = steps/d.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from phaselab.config import check_grid_axis, fail, milli
from phaselab.experiment import Cell

TITLE = "online SGD phase diagram of the erf committee machine"
REFERENCES = "Veiga, Stephan, Loureiro, Krzakala, Zdeborová, NeurIPS 2022; Saad & Solla 1995"
FIGURES = ("phase_diagram", "risk_curves", "asymptotic_risk")
COORDS = {
    "kappa": {"long_name": "width exponent κ, p = d^κ", "units": "1"},
    "delta": {"long_name": "learning-rate exponent δ, γ = γ0 d^−δ", "units": "1"},
    "student": {"long_name": "student hidden unit", "units": "1"},
    "student_": {"long_name": "student hidden unit", "units": "1"},
    "teacher": {"long_name": "teacher hidden unit", "units": "1"},
}


@dataclass(frozen=True, kw_only=True)
class ShapeCell(Cell):
    """One shape (d, κ): width p, the run's horizon and its checkpoints (times t = steps/d and their steps)."""

    d: int
    kappa: float
    p: int
    horizon: float
    times: tuple[float, ...]
    steps: tuple[int, ...]


def width(d: int, kappa: float) -> int:
    """p = d^κ rounded, at least 1."""
    return max(1, round(d**kappa))


def learning_rate(gamma0: float, d: int, delta: float) -> float:
    """γ = γ0 d^(−δ)."""
    return gamma0 * d ** (-delta)


def check(key: str, exp: dict) -> None:
    grid = exp["grid"]
    for axis in ("d", "kappa", "delta"):
        check_grid_axis(f"{key}.grid.{axis}", grid[axis])
    for axis in ("kappa", "delta"):
        for v in grid[axis]:
            milli(v, f"{key}.grid.{axis}")
    k = exp["teacher"]["k"]
    for d in grid["d"]:
        if k > d:
            fail(f"{key}.teacher.k", k, f"exceeds d = {d}")
        for kappa in grid["kappa"]:
            if width(d, kappa) > d:
                fail(f"{key}.grid.kappa", kappa, f"gives width p = {width(d, kappa)} > d = {d}")


def time_grid(t_max: float, per_decade: int, t_min: float = 0.1) -> list[float]:
    """Checkpoint times t = steps/d: 0, then log-spaced from t_min to the first grid point ≥ t_max."""
    top = math.ceil(round(math.log10(t_max / t_min) * per_decade, 9))
    return [0.0] + [t_min * 10 ** (i / per_decade) for i in range(top + 1)]


def cells(exp: dict) -> list[ShapeCell]:
    """One cell per (d, κ) with its width, horizon, checkpoint times and steps; ids carry integers only."""
    grid, train = exp["grid"], exp["train"]
    shapes = []
    for d in sorted(grid["d"]):
        for kappa in sorted(grid["kappa"]):
            p = width(d, kappa)
            eta_min = min(learning_rate(train["gamma0"], d, delta) / p for delta in grid["delta"])
            shapes.append((d, kappa, p, min(train["time"] / min(1.0, eta_min), train["max_time"])))
    times = time_grid(max(h for *_, h in shapes), train["checkpoints_per_decade"])
    rows = []
    for d, kappa, p, horizon in shapes:
        end = next(i for i, t in enumerate(times) if t >= horizon * (1 - 1e-9))
        rows.append(ShapeCell(id=f"d{d}_kappa{milli(kappa, 'kappa')}", data=f"d{d}", d=d, kappa=kappa, p=p,
                              horizon=times[end], times=tuple(times[: end + 1]),
                              steps=tuple(round(t * d) for t in times[: end + 1])))
    return rows


def experiment_times(exp: dict) -> list[float]:
    """The experiment's full checkpoint grid (the ``time`` coordinate of its dataset)."""
    return list(max((c.times for c in cells(exp)), key=len))
