"""Figures of the sgd_trade_off experiment (Veiga et al. 2022, figures 6 and 7): simulation (seed mean, 95 % CI
band over non-diverged seeds) beside the Saad–Solla ODE from the same initial order parameters."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402

from phaselab.plots import CI_LABEL, colors, fmt, mean_band, new_figure, provenance, seed_stats  # noqa: E402

RISK = "excess risk R (dimensionless)"


def _ok(metrics, name, status):
    return metrics[name].where(metrics[status] == "ok")


def _ctx(metrics) -> str:
    a = metrics.attrs
    return (f"p = {a.get('p')}, k = {a.get('teacher_k')}, Δ = {fmt(a.get('noise', float('nan')))}, "
            f"γ0 = {fmt(a.get('gamma0', float('nan')))}")


def trade_off_curves(metrics, theory) -> Figure:
    """Risk against samples per dimension α = steps/d for every δ, and against α d^−δ (the collapse)."""
    d = int(metrics.attrs["trade_off_d"])
    noise = float(metrics.attrs["noise"])
    fig, axes = new_figure(2, panel_w=5.2, panel_h=4.2, extra_h=1.2)
    deltas = metrics["delta"].values
    cols = colors(len(deltas), "plasma")
    risk = _ok(metrics, "risk", "status")
    for ax, collapse in zip(axes[0], (False, True)):
        for i, delta in enumerate(deltas):
            alpha = metrics["steps"].values[i] / d
            x = alpha * d ** (-delta) if collapse else alpha
            pos = x > 0
            sim = risk.isel(delta=i).values[:, pos]
            eta = fmt(round(float(metrics["eta_delta"][i]), 4))
            mean_band(ax, x[pos], sim, cols[i], label=f"δ = {fmt(delta)}, η = {eta}")
            ax.plot(x[pos], theory["ode_risk"].isel(delta=i).mean("seed").values[pos], color="k", linestyle="--",
                    linewidth=1.0)
            plat = float(theory["ode_plateau_at_delta"].values[i])
            if np.isfinite(plat):
                ax.axhline(plat, color=cols[i], linestyle=":", linewidth=1.0)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_ylabel(RISK)
        ax.set_xlabel("samples per dimension α · d^−δ (dimensionless)" if collapse
                      else "samples per dimension α = steps/d (dimensionless)")
        ax.set_title("collapse: α rescaled by d^δ" if collapse else f"risk against samples, d = {d}", fontsize=10)
    handles, labels = axes[0, 0].get_legend_handles_labels()
    handles += [Line2D([], [], color="k", linestyle="--", label="Saad–Solla ODE (η² terms), same start"),
                Line2D([], [], color="0.4", linestyle=":", label="ODE plateau R∞ (stationary point)")]
    fig.legend(handles=handles, loc="outside lower center", ncol=3, fontsize=8, frameon=False, title=CI_LABEL,
               title_fontsize=8)
    fig.suptitle(f"The fundamental trade-off of online SGD (κ = 0, γ = γ0 d^−δ): {_ctx(metrics)}, Δ·η plateau "
                 f"{fmt(noise)}·η", fontsize=10)
    fig.phaselab_metadata = provenance(metrics)
    return fig


def trade_off_plateau(metrics, theory) -> Figure:
    """R∞ against η: simulation (window mean), ODE over the same window, ODE stationary point line."""
    from phaselab.experiments.sgd_trade_off.stages import window_mean

    fig, axes = new_figure(1, panel_w=6.0, panel_h=4.4, extra_h=0.6)
    ax = axes[0, 0]
    noise = float(metrics.attrs["noise"])
    sim = window_mean(_ok(metrics, "risk", "status"), metrics.attrs).transpose("delta", "seed").values
    ode = window_mean(theory["ode_risk"], metrics.attrs).mean("seed").values
    eta = metrics["eta_delta"].values
    mean, lo, hi, _ = seed_stats(sim, axis=1)
    ax.errorbar(eta, mean, yerr=[mean - lo, hi - mean], marker="o", linestyle="none", color="C0", capsize=3,
                label="simulation: mean over the last window (95 % CI of the seed mean)")
    ax.plot(eta, ode, marker="s", markerfacecolor="none", linestyle="none", color="C3", markersize=9,
            label="ODE over the same window, same starts")
    line = theory["ode_plateau"]
    ax.plot(line["eta"].values, line.values, color="k", linewidth=1.3, label="ODE stationary point R∞(η)")
    ex = np.geomspace(line["eta"].values.min(), line["eta"].values.max(), 50)
    ax.plot(ex, 0.1 * ex * noise, color="0.5", linestyle=":", label="0.1·η·Δ (theory.md §8: c ≈ 0.09–0.11)")
    for e, delta in zip(eta, metrics["delta"].values):
        ax.annotate(f"δ = {fmt(delta)}", (e, mean[list(eta).index(e)]), textcoords="offset points", xytext=(5, 6),
                    fontsize=8)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("effective learning rate η = γ/p (dimensionless)")
    ax.set_ylabel("asymptotic excess risk R∞ (dimensionless)")
    ax.set_title(f"plateau R∞ ≈ c η Δ, d = {int(metrics.attrs['trade_off_d'])}, {_ctx(metrics)}", fontsize=9)
    ax.legend(fontsize=8, frameon=False)
    fig.phaselab_metadata = provenance(metrics)
    return fig


def orange_region(metrics, theory) -> Figure:
    """R(τ) for every d: simulation, full ODE at the cell's own η, d → ∞ orange ODE; peaks against d."""
    fig, axes = new_figure(2, panel_w=5.2, panel_h=4.2, extra_h=1.3)
    ax, bx = axes[0]
    tau = metrics["tau"].values
    pos = tau > 0
    ds_ = metrics["d"].values
    cols = colors(len(ds_), "viridis")
    risk = _ok(metrics, "orange_risk", "orange_status")
    peaks = []
    for i, d in enumerate(ds_):
        sim = risk.isel(d=i).values[:, pos]
        eta = fmt(round(float(metrics["orange_eta"][i]), 3))
        m = mean_band(ax, tau[pos], sim, cols[i], label=f"simulation d = {int(d)} (η = {eta})")
        full = theory["orange_full_risk"].isel(d=i).mean("seed").values[pos]
        ax.plot(tau[pos], full, color=cols[i], linestyle="--", linewidth=1.2)
        _, lo, hi, _ = seed_stats(sim, axis=0)
        j = int(np.nanargmax(m))
        peaks.append((np.nanmax(m), m[j] - lo[j], hi[j] - m[j], np.nanmax(full)))
    limit = theory["orange_limit_risk"].mean(("d", "seed")).values[pos]
    ax.plot(tau[pos], limit, color="C3", linewidth=1.8, linestyle="-.", label="d → ∞ orange ODE (noise terms only)")
    ax.set_xscale("log")
    ax.set_xlabel(f"time τ = steps/d^(1+2δ), δ = {fmt(metrics.attrs['orange_delta'])} (steps/d^(1+2δ))")
    ax.set_ylabel(RISK)
    ax.set_title("risk in the orange region −½ < κ + δ < 0", fontsize=10)
    pk = np.array(peaks)
    bx.errorbar(ds_, pk[:, 0], yerr=[pk[:, 1], pk[:, 2]], marker="o", color="C0", capsize=3, label="simulation peak")
    bx.plot(ds_, pk[:, 3], marker="s", markerfacecolor="none", markersize=9, linestyle="--", color="k",
            label="full ODE at the cell's η")
    bx.axhline(float(np.nanmax(limit)), color="C3", linestyle="-.", label="d → ∞ orange ODE")
    bx.set_xscale("log")
    bx.set_xticks(ds_, [str(int(v)) for v in ds_])
    bx.minorticks_off()
    bx.set_xlabel("input dimension d (dimensionless)")
    bx.set_ylabel("peak excess risk (dimensionless)")
    bx.set_title("finite-size effect on the peak", fontsize=10)
    bx.legend(fontsize=8, frameon=False)
    handles, _ = ax.get_legend_handles_labels()
    handles += [Line2D([], [], color="k", linestyle="--", label="full Saad–Solla ODE at the cell's own η (dashed)")]
    fig.legend(handles=handles, loc="outside lower center", ncol=3, fontsize=8, frameon=False, title=CI_LABEL,
               title_fontsize=8)
    fig.suptitle(f"The orange region (Veiga et al. 2022, fig. 7): {_ctx(metrics)}", fontsize=10)
    fig.phaselab_metadata = provenance(metrics)
    return fig
