"""Figures of the double_descent experiment: simulation (seed mean, 95 % Student-t CI) beside theory.

- ``linear_double_descent``: min-norm and ridge risk against γ = p/n (Hastie, Montanari, Rosset & Tibshirani 2019);
- ``random_features``: ReLU random-features test error against N/n (Mei & Montanari 2019);
- ``width_double_descent``: the two-layer network on the digits, test error against the width h across the
  interpolation threshold (Belkin et al. 2019; Nakkiran et al. 2019).
"""

from __future__ import annotations

import numpy as np
import xarray as xr
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from phaselab.experiments.double_descent.stages import interpolation_width
from phaselab.plots import fmt, new_figure, provenance, seed_stats

RISK_LABEL = "risk E‖β̂ − β‖² (dimensionless)"
GAMMA_LABEL = "over-parameterisation γ = p/n (dimensionless)"
CI_NOTE = "markers: seed mean, bars: 95 % CI of the seed mean (Student t)"


def _colors(n: int, cmap: str = "viridis"):
    import matplotlib.pyplot as plt

    return [plt.get_cmap(cmap)(x) for x in np.linspace(0.1, 0.85, max(n, 1))]


def _sim(ax, x, values, seed_axis: int, color, marker="o", label=None, fill=True, gid=None):
    """Seed mean with 95 % CI error bars; non-finite or non-positive means are left out (log axes)."""
    mean, lo, hi, _ = seed_stats(values, axis=seed_axis)
    ok = np.isfinite(mean) & (mean > 0)
    if not ok.any():
        return None
    lo, hi = np.where(np.isfinite(lo), lo, mean), np.where(np.isfinite(hi), hi, mean)
    eb = ax.errorbar(np.asarray(x)[ok], mean[ok], yerr=[mean[ok] - lo[ok], hi[ok] - mean[ok]], color=color,
                     marker=marker, markersize=5, linestyle="none", capsize=2.5, label=label,
                     markerfacecolor=color if fill else "white", zorder=3)
    eb.lines[0].set_gid(gid)
    return mean


def _curve(ax, x, y, split_at=None, **kw):
    """A theory curve, broken at ``split_at`` (a pole) and where it is not finite."""
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    y = np.where(np.isfinite(y) & (y > 0), y, np.nan)
    if split_at is not None:
        y = np.where(np.isclose(x, split_at), np.nan, y)
        left = x < split_at
        ax.plot(x[left], y[left], **kw)
        kw = {k: v for k, v in kw.items() if k != "label"}
        ax.plot(x[~left], y[~left], **kw)
    else:
        ax.plot(x, y, **kw)


def _limits(ax, values, floor_factor=0.5, top_factor=2.5):
    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v) & (v > 0)]
    if v.size:
        ax.set_ylim(v.min() * floor_factor, v.max() * top_factor)


# --------------------------------------------------------------------------------------------------------------
def linear_double_descent(metrics: xr.Dataset, theory: xr.Dataset) -> Figure:
    """Left: min-norm least squares, simulation vs the asymptotic HMRT curve and the exact finite-n expectation.
    Right: ridge at each λ of the config and at the optimal λ* = σ²γ/r², simulation vs the asymptotic curves."""
    a = metrics.attrs
    n, r2, s2 = int(a["linear_n"]), float(a["linear_signal"]), float(a["linear_noise"])
    gamma = metrics["gamma"].values
    g_th = theory["gamma"].values
    fig, axes = new_figure(2, panel_w=5.2, panel_h=4.3, extra_h=0.9, sharey=True)
    ax = axes[0, 0]
    means = [_sim(ax, gamma, metrics["minnorm_risk"].transpose("gamma", "linear_seed").values, 1, "C0",
                  label="simulation (min-norm least squares)", gid="sim:minnorm")]
    _curve(ax, g_th, theory["minnorm_risk"].values, split_at=1.0, color="black", linewidth=1.6,
           label="HMRT 2019, n, p → ∞", gid="theory:minnorm")
    _curve(ax, g_th, theory["minnorm_risk_finite"].values, split_at=1.0, color="C3", linestyle="--",
           linewidth=1.4, label=f"exact expectation at n = {n}", gid="theory:minnorm_finite")
    ax.set_title("min-norm least squares (ridgeless)", fontsize=10)

    ax = axes[0, 1]
    colors = _colors(metrics.sizes["ridge"], "plasma")
    for c, lam in zip(colors, metrics["ridge"].values):
        means.append(_sim(ax, gamma, metrics["ridge_risk"].sel(ridge=lam).transpose("gamma", "linear_seed").values,
                          1, c, label=f"λ = {fmt(lam)}", gid=f"sim:ridge={lam:g}"))
        _curve(ax, g_th, theory["ridge_risk"].sel(ridge=lam).values, color=c, linewidth=1.4,
               gid=f"theory:ridge={lam:g}")
    means.append(_sim(ax, gamma, metrics["optimal_ridge_risk"].transpose("gamma", "linear_seed").values, 1,
                      "black", marker="s", label="λ* = σ²γ/r² (optimal)", gid="sim:optimal"))
    _curve(ax, g_th, theory["optimal_ridge_risk"].values, color="black", linewidth=1.6,
           gid="theory:optimal")
    _curve(ax, g_th, theory["minnorm_risk"].values, split_at=1.0, color="0.6", linewidth=1.0, linestyle=":",
           label="min-norm, n, p → ∞", gid="theory:minnorm-ref")
    ax.set_title("ridge: markers simulation, lines HMRT 2019 (n, p → ∞)", fontsize=10)
    for ax in axes[0]:
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.axvline(1.0, color="0.5", linestyle=":", linewidth=1.0)
        ax.axhline(r2, color="0.7", linewidth=0.9, linestyle="-.")
        ax.set_xlabel(GAMMA_LABEL)
        ax.legend(fontsize=8, loc="lower right", frameon=False)
    axes[0, 0].set_ylabel(RISK_LABEL)
    _limits(axes[0, 0], np.concatenate([m for m in means if m is not None] + [[r2]]))
    fig.legend(handles=[Line2D([], [], color="0.5", linestyle=":", label="γ = 1 (interpolation threshold p = n)"),
                        Line2D([], [], color="0.7", linestyle="-.", label="r² (risk of β̂ = 0)")],
               loc="outside lower center", ncol=2, fontsize=8.5, frameon=False, title=CI_NOTE, title_fontsize=8.5)
    fig.suptitle(f"Linear double descent: isotropic Gaussian features, n = {n}, r² = {fmt(r2)}, σ² = {fmt(s2)}, "
                 f"{metrics.sizes['linear_seed']} seeds", fontsize=11)
    fig.phaselab_metadata = provenance(metrics)
    return fig


# --------------------------------------------------------------------------------------------------------------
def random_features(metrics: xr.Dataset, theory: xr.Dataset) -> Figure:
    """Test error against N/n for each ridge λ (0: ridgeless), simulation vs Mei & Montanari (2019)."""
    a = metrics.attrs
    d, n = int(a["rf_d"]), int(a["rf_n"])
    ratio, r_th = metrics["rf_ratio"].values, theory["rf_ratio"].values
    fig, axes = new_figure(1, panel_w=7.0, panel_h=4.8, extra_h=1.6)
    ax = axes[0, 0]
    colors = _colors(metrics.sizes["rf_ridge"], "viridis")
    means = []
    for c, lam in zip(colors, metrics["rf_ridge"].values):
        label = "ridgeless (min-norm)" if lam == 0 else f"λ = {fmt(lam)}"
        means.append(_sim(ax, ratio, metrics["rf_test_error"].sel(rf_ridge=lam).transpose("rf_ratio", "rf_seed")
                          .values, 1, c, label=f"simulation, {label}", gid=f"sim:ridge={lam:g}"))
        _curve(ax, r_th, theory["rf_test_error"].sel(rf_ridge=lam).values, split_at=1.0 if lam == 0 else None,
               color=c, linewidth=1.5, label=f"Mei & Montanari 2019, {label}", gid=f"theory:ridge={lam:g}")
    ax.axvline(1.0, color="0.5", linestyle=":", linewidth=1.0, label="N = n (interpolation threshold)")
    ax.axhline(float(a["rf_signal"]), color="0.7", linestyle="-.", linewidth=0.9, label="F₁² (error of f = 0)")
    ax.set_xscale("log")
    ax.set_yscale("log")
    _limits(ax, np.concatenate([m for m in means if m is not None]), 0.6, 3.0)
    ax.set_xlabel("random features per sample N/n (dimensionless)")
    ax.set_ylabel("test error E(f* − f)² (dimensionless)")
    fig.legend(*ax.get_legend_handles_labels(), loc="outside lower center", ncol=2, fontsize=8, frameon=False,
               title=CI_NOTE, title_fontsize=8)
    fig.suptitle(f"Random-features regression, ReLU features on the sphere\nd = {d}, n = {n} (ψ₂ = {fmt(n / d)}), "
                 f"F₁² = {fmt(a['rf_signal'])}, τ² = {fmt(a['rf_noise'])}, {metrics.sizes['rf_seed']} seeds, "
                 f"{a['rf_n_test']} test points", fontsize=10)
    fig.phaselab_metadata = provenance(metrics)
    return fig


# --------------------------------------------------------------------------------------------------------------
def width_double_descent(metrics: xr.Dataset, theory: xr.Dataset) -> Figure:
    """Left: final test error (filled) and training error (open) against width, one colour per label-noise level.
    Right: the final test and training loss. Lines: h* where h(d + C) = nC, and the smallest width that fits
    every training label (per noise level)."""
    a = metrics.attrs
    widths = metrics["width"].values.astype(float)
    threshold = float(theory["interpolation_threshold"])
    ok = metrics["status"] == "ok"
    final = metrics.isel(step=-1)
    fig, axes = new_figure(2, panel_w=5.3, panel_h=4.3, extra_h=1.1)
    colors = _colors(metrics.sizes["label_noise"], "plasma")
    handles = []
    for c, q in zip(colors, metrics["label_noise"].values):
        for ax, kind in zip(axes[0], ("error", "loss")):
            for split, fill in (("test", True), ("train", False)):
                vals = final[f"{split}_{kind}"].where(ok).sel(label_noise=q).transpose("width", "seed").values
                mean = _sim(ax, widths, vals, 1, c, marker="o" if fill else "^", fill=fill,
                            gid=f"sim:{split}_{kind}:q={q:g}")
                if mean is not None:
                    ax.plot(widths, mean, color=c, linestyle="-" if fill else "--", linewidth=1.0, alpha=0.8)
        n_div = int((metrics["status"].sel(label_noise=q) == "diverged").sum())
        h_fit = interpolation_width(metrics, q)
        if np.isfinite(h_fit):
            for ax in axes[0]:
                ax.axvline(h_fit, color=c, linestyle="--", linewidth=1.0, alpha=0.8, gid=f"fit-width:q={q:g}")
        handles.append(Line2D([], [], color=c, marker="o", label=f"label noise q = {fmt(q)}: test"
                              + (f"; all labels fitted from h = {h_fit:g} (dashed)" if np.isfinite(h_fit) else "")
                              + (f"; {n_div} diverged run{'s' if n_div > 1 else ''} excluded" if n_div else "")))
    for ax in axes[0]:
        ax.axvline(threshold, color="black", linestyle=":", linewidth=1.4, gid="threshold")
        ax.set_xscale("log")
        ax.set_xlabel("hidden units h (dimensionless)")
    axes[0, 0].set_ylabel("classification error (dimensionless)")
    axes[0, 0].set_ylim(0, None)
    loss = "½‖f − e_y‖²" if a["network_loss"] == "squared" else "cross-entropy"
    axes[0, 1].set_ylabel(f"loss {loss} (dimensionless)")
    axes[0, 1].set_yscale("log")
    axes[0, 0].set_title("final test error (filled) and training error (open)", fontsize=10)
    axes[0, 1].set_title("final test loss (filled) and training loss (open)", fontsize=10)
    handles += [Line2D([], [], color="0.4", marker="^", markerfacecolor="white", linestyle="--",
                       label="training (noisy labels)"),
                Line2D([], [], color="black", linestyle=":",
                       label=f"h* = nC/(d + C) = {threshold:.3g}: parameters h(d + C) = nC fitted values")]
    fig.legend(handles=handles, loc="outside lower center", ncol=2, fontsize=8, frameon=False, title=CI_NOTE,
               title_fontsize=8)
    fig.suptitle(f"Model-wise double descent of a two-layer ReLU network on the digits: n = {a['network_n_train']} "
                 f"training images, {a['network_loss']} loss, {a['network_steps']} full-batch GD steps at lr "
                 f"{fmt(a['network_lr'])}, {metrics.sizes['seed']} seeds", fontsize=10)
    fig.phaselab_metadata = provenance(metrics)
    return fig
