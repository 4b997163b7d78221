"""The fundamental trade-off and the orange region of online SGD in two-layer erf committee machines (Veiga,
Stephan, Loureiro, Krzakala & Zdeborová, NeurIPS 2022, figures 6 and 7).

Width p fixed (κ = 0), teacher of k units, learning rate γ = γ0 d^−δ, η = γ/p, label noise Δ. Two parts:

- ``trade_off``: one d, several δ ≥ 0. Lowering γ by d^−δ lowers the plateau R∞ ≈ c η Δ by d^−δ and costs d^δ
  more samples: risk against samples per dimension α = steps/d, its collapse against α d^−δ, and R∞ against η
  beside the ODE. Every δ runs the same length in η t (``trade_off.time``), so checkpoints are shared in η t.
- ``orange``: δ < 0 with −½ < δ < 0 (the noise-dominated region), several d, time τ = steps/d^(1+2δ): simulation
  against the full Saad–Solla ODE at each cell's own η and the d → ∞ orange ODE (noise terms only, M frozen).

Every run starts from the informed student W_j = a w*_{j mod k} + b z_j (``student.overlap`` a,
``student.init_scale`` b); the ODEs start from each seed's measured order parameters. A cell is one (part, d, δ);
its members are the seeds (one teacher, stream and start each, the phase diagram's data seeds).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from phaselab.config import check_grid_axis, fail, milli
from phaselab.experiment import Cell

TITLE = "the fundamental trade-off and the orange region of online SGD in erf committee machines"
REFERENCES = "Veiga, Stephan, Loureiro, Krzakala, Zdeborová, NeurIPS 2022 (figures 6, 7); Saad & Solla 1995"
FIGURES = ("trade_off_curves", "trade_off_plateau", "orange_region")
COORDS = {
    "delta": {"long_name": "learning-rate exponent δ, γ = γ0 d^−δ", "units": "1"},
    "eta_time": {"long_name": "η t = η · steps/d", "units": "1"},
    "tau": {"long_name": "orange-region time τ = steps/d^(1+2δ)", "units": "steps/d^(1+2δ)"},
    "eta": {"long_name": "effective learning rate η = γ/p", "units": "1"},
    "student": {"long_name": "student hidden unit", "units": "1"},
    "student_": {"long_name": "student hidden unit", "units": "1"},
    "teacher": {"long_name": "teacher hidden unit", "units": "1"},
}
PARTS = ("trade_off", "orange")


@dataclass(frozen=True, kw_only=True)
class TradeOffCell(Cell):
    """One (part, d, δ): its η, its checkpoints (``clock``: η t for trade_off, τ for orange) and their steps."""

    part: str
    d: int
    delta: float
    eta: float
    clock: tuple[float, ...]
    steps: tuple[int, ...]


def learning_rate(gamma0: float, d: int, delta: float, p: int) -> float:
    """η = γ/p, γ = γ0 d^−δ."""
    return gamma0 * d ** (-delta) / p


def log_grid(t_max: float, per_decade: int, t_min: float) -> list[float]:
    """0, then log-spaced from t_min to the first grid point ≥ t_max."""
    top = math.ceil(round(math.log10(t_max / t_min) * per_decade, 9))
    return [0.0] + [t_min * 10 ** (i / per_decade) for i in range(top + 1)]


def trade_off_clock(exp: dict) -> list[float]:
    part = exp["trade_off"]
    return log_grid(part["time"], part["checkpoints_per_decade"], part["time"] * 1e-4)


def orange_clock(exp: dict) -> list[float]:
    part = exp["orange"]
    return log_grid(part["tau"], part["checkpoints_per_decade"], part["tau"] * 1e-4)


def check(key: str, exp: dict) -> None:
    k, p = exp["teacher"]["k"], exp["student"]["p"]
    check_grid_axis(f"{key}.trade_off.delta", exp["trade_off"]["delta"])
    check_grid_axis(f"{key}.orange.d", exp["orange"]["d"])
    for v in exp["trade_off"]["delta"]:
        milli(v, f"{key}.trade_off.delta")
        if v < 0:
            fail(f"{key}.trade_off.delta", v, "the trade-off is drawn for δ ≥ 0 (κ + δ ≥ 0)")
    delta = exp["orange"]["delta"]
    milli(delta, f"{key}.orange.delta")
    if not -0.5 < delta < 0:
        fail(f"{key}.orange.delta", delta, "the orange region needs −½ < κ + δ < 0 (κ = 0 here)")
    for d in [exp["trade_off"]["d"], *exp["orange"]["d"]]:
        if max(k, p) > d:
            fail(f"{key}.teacher.k", k, f"k and p must not exceed d = {d}")


def cells(exp: dict) -> list[TradeOffCell]:
    p, gamma0 = exp["student"]["p"], exp["student"]["gamma0"]
    rows = []
    d = exp["trade_off"]["d"]
    clock = trade_off_clock(exp)
    for delta in sorted(exp["trade_off"]["delta"]):
        eta = learning_rate(gamma0, d, delta, p)
        rows.append(TradeOffCell(id=f"trade_off_d{d}_delta{milli(delta, 'delta')}", data=f"d{d}", part="trade_off",
                                 d=d, delta=delta, eta=eta, clock=tuple(clock),
                                 steps=tuple(round(c * d / eta) for c in clock)))
    delta = exp["orange"]["delta"]
    clock = orange_clock(exp)
    for d in sorted(exp["orange"]["d"]):
        rows.append(TradeOffCell(id=f"orange_d{d}_delta{milli(delta, 'delta')}", data=f"d{d}", part="orange",
                                 d=d, delta=delta, eta=learning_rate(gamma0, d, delta, p), clock=tuple(clock),
                                 steps=tuple(round(c * d ** (1 + 2 * delta)) for c in clock)))
    return rows
