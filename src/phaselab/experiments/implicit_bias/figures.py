"""Figures of the implicit_bias experiment: GD on separable data converges to the max-margin direction (Soudry et al.
2018)."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import xarray as xr  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402
from matplotlib.patches import Patch  # noqa: E402

from phaselab.plots import (  # noqa: E402
    CI_LABEL,
    colors,
    fmt,
    mean_band,
    new_figure,
    ok_members,
    plain_log_axis,
    provenance,
)

STEP_LABEL = "gradient-descent step t (dimensionless)"


def implicit_bias_rates(metrics: xr.Dataset, theory: xr.Dataset) -> Figure:
    """Angle to ŵ, normalised-margin gap and ‖w‖ against t (log axis), simulation beside ŵ log t + w̃; and the
    ratio of simulation to asymptote, which tends to 1."""
    fig, axes = new_figure(4, panel_w=4.2, panel_h=3.9, extra_h=0.9)
    panels = [("angle", "angle between w(t) and ŵ (rad)", "direction: angle to the SVM solution"),
              ("margin_gap", "γ̂ − normalised margin of w(t) (dimensionless)", "normalised-margin gap"),
              ("weight_norm", "‖w(t)‖ (dimensionless)", "norm: grows like ‖ŵ‖ log t")]
    ok = ok_members(metrics)
    step = metrics["step"].values.astype(float)
    t = step > 1
    ax_ratio = axes[0, 3]
    handles, asymptotic = [], False
    for color, lr in zip(colors(len(metrics["lr"])), metrics["lr"].values):
        keep = ok.sel(lr=lr).values
        for ax, (name, _, _) in zip(axes[0], panels):
            sim = metrics[name].sel(lr=lr).transpose("seed", "step").values[keep][:, t]
            th = theory[name].sel(lr=lr).transpose("seed", "step").values[keep][:, t]
            th[:, ~np.isfinite(th).all(0)] = np.nan  # the asymptote where it holds for every data set
            asymptotic |= np.isfinite(th).any()
            mean_band(ax, step[t], sim, color, gid=f"sim:{name}:lr={lr:g}")
            ax.plot(step[t], th.mean(0), color=color, linestyle="--", linewidth=1.4, gid=f"theory:{name}:lr={lr:g}")
            if name != "weight_norm":
                mean_band(ax_ratio, step[t], sim / th, color, gid=f"ratio:{name}:lr={lr:g}",
                          linestyle="-" if name == "angle" else "-.")
        handles.append(Line2D([], [], color=color, linewidth=1.6, label=f"GD, η = {fmt(lr)}"))
    # the 1/log t rate itself, through the last simulated point of the first learning rate
    lr0 = metrics["lr"].values[0]
    for ax, name in zip(axes[0, :2], ("angle", "margin_gap")):
        end = float(np.nanmean(metrics[name].sel(lr=lr0).isel(step=-1)))
        ax.plot(step[t], end * np.log(step[-1]) / np.log(step[t]), color="black", linestyle=":", linewidth=1.3,
                gid=f"rate:{name}")
    ax_ratio.axhline(1.0, color="black", linewidth=1.0, linestyle="--")
    for ax, (_name, ylabel, title) in zip(axes[0], panels + [(None, "simulation / asymptote (dimensionless)",
                                                             "ratio: solid angle, dash-dot margin gap")]):
        ax.set_xscale("log" if ax is not ax_ratio or asymptotic else "linear")
        ax.set_xlabel(STEP_LABEL)
        ax.set_ylabel(ylabel)
        ax.set_title(title, fontsize=10)
    axes[0, 0].set_yscale("log")
    axes[0, 1].set_yscale("log")
    if asymptotic:
        ax_ratio.set_yscale("log")
        ax_ratio.set_ylim(0.25, 4)
        plain_log_axis(ax_ratio.yaxis)
    else:
        ax_ratio.text(0.5, 0.5, "the run ends before the asymptote holds", ha="center", va="center",
                      transform=ax_ratio.transAxes, fontsize=9)
    handles += [Line2D([], [], color="0.3", linestyle="--", label="theory: w(t) ≈ ŵ log t + w̃ (Soudry et al.), "
                                                                   "ŵ the hard-margin SVM"),
                Line2D([], [], color="black", linestyle=":", label="rate ∝ 1/log t (through the last point)"),
                Patch(facecolor="0.6", alpha=0.35, label=CI_LABEL + " over data sets")]
    fig.legend(handles=handles, loc="outside lower center", ncol=min(len(handles), 3), fontsize=8.5, frameon=False)
    a = metrics.attrs
    fig.suptitle(f"Implicit bias of gradient descent on the logistic loss: {a.get('n', '?')} separable points in "
                 f"R^{a.get('d', '?')}, {metrics.sizes['seed']} data sets", fontsize=11)
    fig.phaselab_metadata = provenance(metrics)
    return fig


def implicit_bias_2d(metrics: xr.Dataset, theory: xr.Dataset) -> Figure:
    """Seed 0's data in the plane, the SVM boundary and margins, and the GD boundaries at the checkpoints."""
    fig, axes = new_figure(1, panel_w=6.4, panel_h=5.6, extra_w=1.2)
    ax = axes[0, 0]
    seed, lr = metrics["seed"].values[0], metrics["lr"].values[-1]
    x, y = metrics["x"].sel(seed=seed).values, metrics["y"].sel(seed=seed).values
    if x.shape[1] != 2:
        ax.text(0.5, 0.5, f"d = {x.shape[1]}: the 2-D picture needs d = 2", ha="center", transform=ax.transAxes)
        return fig
    w_hat = theory["w_hat"].sel(seed=seed).values
    lim = 1.15
    s = np.linspace(-lim, lim, 2)

    def line(w, offset=0.0):
        """Points of w·x = offset across the panel."""
        u = np.array([-w[1], w[0]]) / np.linalg.norm(w)
        base = offset * w / (w @ w)
        return base[0] + s * u[0] * 2, base[1] + s * u[1] * 2

    steps = metrics["step"].values
    shown = [i for i, st in enumerate(steps) if st >= 1]
    cmap = plt.get_cmap("viridis")
    norm = matplotlib.colors.LogNorm(vmin=max(steps[shown[0]], 1), vmax=steps[-1])
    w = metrics["w"].sel(seed=seed, lr=lr).values
    for i in shown:
        if np.all(np.isfinite(w[i])) and np.linalg.norm(w[i]) > 0:
            ax.plot(*line(w[i]), color=cmap(norm(steps[i])), linewidth=1.0, alpha=0.8, gid=f"gd:step={steps[i]}")
    ax.plot(*line(w_hat), color="black", linewidth=2.2, gid="svm")
    for off in (-1, 1):
        ax.plot(*line(w_hat, off), color="black", linewidth=1.0, linestyle="--", gid=f"svm-margin:{off}")
    ax.scatter(*x[y > 0].T, marker="o", color="tab:red", edgecolor="black", zorder=5, label="y = +1")
    ax.scatter(*x[y < 0].T, marker="s", color="tab:blue", edgecolor="black", zorder=5, label="y = −1")
    z = y[:, None] * x
    support = np.isclose(z @ w_hat, 1.0, atol=1e-6)
    ax.scatter(*x[support].T, s=160, facecolor="none", edgecolor="black", linewidth=1.5, zorder=6,
               label="support vectors (ŵ·z = 1)")
    ax.set_xlim(-lim, lim)
    ax.set_ylim(-lim, lim)
    ax.set_aspect("equal")
    ax.set_xlabel("x₁ (dimensionless)")
    ax.set_ylabel("x₂ (dimensionless)")
    handles, _ = ax.get_legend_handles_labels()
    handles += [Line2D([], [], color="black", linewidth=2.2, label="hard-margin SVM boundary ŵ·x = 0 (theory)"),
                Line2D([], [], color="black", linestyle="--", label="SVM margins ŵ·x = ±1"),
                Line2D([], [], color=cmap(0.5), label=f"GD boundary w(t)·x = 0, η = {fmt(lr)}")]
    ax.legend(handles=handles, fontsize=8, loc="upper left", framealpha=0.9)
    fig.colorbar(matplotlib.cm.ScalarMappable(norm=norm, cmap=cmap), ax=ax, label="GD step t (log scale)")
    fig.suptitle(f"GD boundaries turn towards the maximum-margin boundary (data set {seed}); "
                 f"final angle {float(metrics['angle'].sel(seed=seed, lr=lr).isel(step=-1)):.3g} rad", fontsize=11)
    fig.phaselab_metadata = provenance(metrics)
    return fig
