"""Theory beside a phase-diagram experiment: ODE curves where the deterministic limit holds, and every cell's phase.

The Saad–Solla ODE (theory.committee) is the d → ∞ limit of online SGD at fixed p and η = γ/p. On the κ + δ = 0
line it is the prediction itself; for κ + δ > 0 it is integrated at the cell's own small η, which gives the
approach to perfect learning and the asymptotic risk ∝ Δ·η (Veiga et al. 2022). For κ + δ < 0 the η² terms
dominate (and beyond κ + δ = −½ no ODE limit exists), so no curve is drawn there. Each seed's ODE starts from
that seed's measured initial order parameters (Q0, M0), so simulation and theory share their initial condition.
"""

from __future__ import annotations

import numpy as np
import xarray as xr

from phaselab.theory.committee import integrate, phase

ODE_TOLERANCE = 1e-9  # |κ + δ| below this counts as the κ + δ = 0 line


def phase_diagram_theory(metrics: xr.Dataset, max_width: int = 16) -> xr.Dataset:
    """ode_risk (d, kappa, delta, seed, time), ode_final_risk (d, kappa, delta, seed), phase (kappa, delta)."""
    k = int(metrics.attrs["teacher_k"])
    noise = float(metrics.attrs["noise"])
    P = np.eye(k)  # orthogonal teacher rows of norm √d
    times = metrics["time"].values
    shape = tuple(metrics.sizes[n] for n in ("d", "kappa", "delta", "seed", "time"))
    ode = np.full(shape, np.nan)

    jobs: dict[int, list[tuple]] = {}  # batch every (cell, δ, seed) of one width into one integration
    for i, _d in enumerate(metrics["d"].values):
        for j, kappa in enumerate(metrics["kappa"].values):
            p = int(metrics["width"].values[i, j])
            for l, delta in enumerate(metrics["delta"].values):
                if kappa + delta < -ODE_TOLERANCE or p > max_width:
                    continue
                for s in range(metrics.sizes["seed"]):
                    jobs.setdefault(p, []).append((i, j, l, s))
    for p, index in jobs.items():
        i, j, l, s = (np.array(a) for a in zip(*index))
        Q0 = metrics["Q0"].values[i, j, s][:, :p, :p]
        M0 = metrics["M0"].values[i, j, s][:, :p, :]
        eta = metrics["eta"].values[i, j, l]
        horizon = metrics["horizon"].values[i, j]
        upto = times <= horizon.max() * (1 + 1e-9)
        out = integrate(Q0, M0, P, times[upto], eta, noise=noise)["risk"]  # (B, T')
        out = np.where(times[upto][None, :] <= horizon[:, None] * (1 + 1e-9), out, np.nan)
        ode[i, j, l, s, : upto.sum()] = out

    final = np.full(shape[:-1], np.nan)
    last = np.isfinite(ode).cumsum(-1).argmax(-1)  # index of the last finite point (the horizon)
    final = np.take_along_axis(ode, last[..., None], -1)[..., 0]
    labels = np.array([[phase(kappa, delta) for delta in metrics["delta"].values] for kappa in metrics["kappa"].values])
    risk_attrs = {"long_name": "ODE excess risk (Saad & Solla 1995)", "units": "1"}
    return xr.Dataset(
        {
            "ode_risk": (("d", "kappa", "delta", "seed", "time"), ode, risk_attrs),
            "ode_final_risk": (("d", "kappa", "delta", "seed"), final,
                               {**risk_attrs, "long_name": "ODE risk at the horizon"}),
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
