"""Theory beside a phase-diagram experiment: the ODE curve of every cell that has a deterministic limit, which theory
applies to each cell, and every cell's phase (Veiga, Stephan, Loureiro, Krzakala & Zdeborová, NeurIPS 2022).

The Saad–Solla ODE (theory.committee) is the d → ∞ limit of online SGD at fixed p and η = γ/p. Which theory a cell
(d, κ, δ) gets depends on κ + δ (theory.md §1 and §8):

- κ + δ = 0: the Saad–Solla ODE is the prediction itself (``ode_risk``);
- κ + δ > 0: the ODE integrated at the cell's own small η = γ0 d^−(κ+δ) gives the approach to perfect learning
  and the asymptotic risk R∞ ≈ c·η·Δ → 0 (``ode_risk``);
- −½ < κ + δ < 0 (the "orange" region): the full ODE at the cell's own η (finite d: it keeps the drift terms,
  suppressed by d^(κ+δ) only, and tracks finite-d simulations; ``ode_risk``) and the paper's d → ∞ orange ODE
  (noise terms only, M frozen; ``orange_limit_risk``), both from :mod:`phaselab.theory.trade_off`;
- κ + δ ≤ −½: no ODE limit (order-parameter fluctuations stay O(1)): no curve.

Cells wider than ``max_width`` get no curve (the ODE's cost grows like p⁴); ``theory_regime`` names, per cell,
which of these applies. Each seed's ODE starts from that seed's measured initial order parameters (Q0, M0), so
simulation and theory share their initial condition.
"""

from __future__ import annotations

import numpy as np
import xarray as xr

from phaselab.theory.committee import PHASES, integrate, phase

ODE_TOLERANCE = 1e-9  # |κ + δ| below this counts as the κ + δ = 0 line

# theory_regime: which theory a cell (d, κ, δ) gets, keyed by the phase of committee.PHASES
SAAD_SOLLA = "Saad-Solla ODE"
PERFECT = "ODE at the cell's eta (perfect learning)"
ORANGE = "finite-d ODE and d->inf orange ODE"
NO_LIMIT = "no ODE limit"
TOO_WIDE = "ODE not computed (p > max_width)"
THEORY_REGIMES = (SAAD_SOLLA, PERFECT, ORANGE, NO_LIMIT, TOO_WIDE)
_REGIME = {PHASES[0]: PERFECT, PHASES[1]: SAAD_SOLLA, PHASES[2]: ORANGE, PHASES[3]: NO_LIMIT}


def theory_regime(kappa: float, delta: float, p: int, max_width: int) -> str:
    """The theory that applies to a cell of width p at (κ, δ): one of THEORY_REGIMES."""
    regime = _REGIME[phase(kappa, delta)]
    return TOO_WIDE if regime != NO_LIMIT and p > max_width else regime


def phase_diagram_theory(metrics: xr.Dataset, max_width: int = 16) -> xr.Dataset:
    """ode_risk (d, kappa, delta, seed, time) on every cell with an ODE limit (κ + δ > −½, p ≤ max_width),
    orange_limit_risk (same dims; −½ < κ + δ < 0 only), ode_final_risk (d, kappa, delta, seed),
    theory_regime (d, kappa, delta) and phase (kappa, delta)."""
    from phaselab.theory.trade_off import phase_diagram_orange_curves

    k = int(metrics.attrs["teacher_k"])
    noise = float(metrics.attrs["noise"])
    P = np.eye(k)  # orthogonal teacher rows of norm √d
    times = metrics["time"].values
    shape = tuple(metrics.sizes[n] for n in ("d", "kappa", "delta", "seed", "time"))
    ode = np.full(shape, np.nan)
    regimes = np.empty(shape[:3], dtype=object)

    # batch every (cell, δ, seed) of one width and one side of κ + δ = 0 into one integration (each element keeps
    # its own adaptive step, so the batching does not change any element's numbers)
    jobs: dict[tuple[int, bool], list[tuple]] = {}
    for i, _d in enumerate(metrics["d"].values):
        for j, kappa in enumerate(metrics["kappa"].values):
            p = int(metrics["width"].values[i, j])
            for l, delta in enumerate(metrics["delta"].values):
                regimes[i, j, l] = theory_regime(float(kappa), float(delta), p, max_width)
                if regimes[i, j, l] not in (SAAD_SOLLA, PERFECT, ORANGE):
                    continue
                for s in range(metrics.sizes["seed"]):
                    jobs.setdefault((p, regimes[i, j, l] == ORANGE), []).append((i, j, l, s))
    for (p, _), index in jobs.items():
        i, j, l, s = (np.array(a) for a in zip(*index))
        Q0 = metrics["Q0"].values[i, j, s][:, :p, :p]
        M0 = metrics["M0"].values[i, j, s][:, :p, :]
        eta = metrics["eta"].values[i, j, l]
        horizon = metrics["horizon"].values[i, j]
        upto = times <= horizon.max() * (1 + 1e-9)
        out = integrate(Q0, M0, P, times[upto], eta, noise=noise)["risk"]  # (B, T')
        out = np.where(times[upto][None, :] <= horizon[:, None] * (1 + 1e-9), out, np.nan)
        ode[i, j, l, s, : upto.sum()] = out

    last = np.isfinite(ode).cumsum(-1).argmax(-1)  # index of the last finite point (the horizon)
    final = np.take_along_axis(ode, last[..., None], -1)[..., 0]
    orange = phase_diagram_orange_curves(metrics, max_width, full=False)["orange_limit_risk"]
    labels = np.array([[phase(kappa, delta) for delta in metrics["delta"].values] for kappa in metrics["kappa"].values])
    risk_attrs = {"long_name": "ODE excess risk at the cell's own η (Saad & Solla 1995), every cell with an ODE "
                               "limit", "units": "1"}
    return xr.Dataset(
        {
            "ode_risk": (("d", "kappa", "delta", "seed", "time"), ode, risk_attrs),
            "ode_final_risk": (("d", "kappa", "delta", "seed"), final,
                               {**risk_attrs, "long_name": "ODE risk at the horizon"}),
            "orange_limit_risk": orange.variable,
            "theory_regime": (("d", "kappa", "delta"), regimes.astype(str),
                              {"long_name": "theory drawn for the cell: " + "; ".join(THEORY_REGIMES)}),
            "phase": (("kappa", "delta"), labels.astype(str), {"long_name": "phase of SGD (Veiga et al. 2022)"}),
        },
        coords={n: metrics[n] for n in ("d", "kappa", "delta", "seed", "time")},
        attrs={
            "title": "theory beside " + metrics.attrs.get("experiment", "?"),
            "references": "Saad & Solla 1995; Veiga, Stephan, Loureiro, Krzakala, Zdeborová, NeurIPS 2022",
            "ode_max_width": max_width,
            "config_sha256": metrics.attrs.get("config_sha256", ""),
        },
    )
