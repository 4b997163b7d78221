"""Figures of the width × learning-rate sweep: loss against learning rate per width, and η* against width.

Both take the metrics and theory Datasets (``results/<experiment>/metrics.nc``, ``theory.nc``). Diverged
members are left out of every mean and band and marked on their own; the band is the 95 % Student-t interval
of the seed mean (:func:`phaselab.plots.seed_stats`).
"""

from __future__ import annotations

import numpy as np
from matplotlib.lines import Line2D
from matplotlib.ticker import NullFormatter

from mylab.width_lr_transfer import PARAMETRISATIONS
from phaselab.plots import CI_LABEL, colors, fmt, mean_band, new_figure, ok_members, provenance

LR_LABEL = "global learning rate η (dimensionless)"
WIDTH_LABEL = "hidden-layer width n (hidden units)"
MARKERS = {"sp": "o", "mup": "s"}
PARAM_COLORS = {"sp": "tab:red", "mup": "tab:blue"}


def loss_vs_lr(metrics, theory):
    """Final loss (the one η* is taken from) against η, one curve per width, one panel per parametrisation."""
    which = theory.attrs["loss"]
    loss = metrics[f"final_{which}"]
    ok = ok_members(metrics)
    params, widths, lrs = [str(p) for p in metrics["param"].values], metrics["width"].values, metrics["lr"].values
    fig, axes = new_figure(len(params), panel_w=5.0, panel_h=4.2, sharey=True, extra_h=0.5)
    cols = colors(len(widths))
    finite = loss.where(ok).values
    top = float(np.nanmax(finite)) if np.isfinite(finite).any() else 1.0
    for ax, p in zip(axes[0], params, strict=True):
        for color, n in zip(cols, widths, strict=True):
            samples = loss.sel(param=p, width=n).where(ok.sel(param=p, width=n)).transpose("seed", "lr").values
            mean_band(ax, lrs, samples, color, label=f"n = {int(n)}")
            bad = ~ok.sel(param=p, width=n).transpose("seed", "lr").values
            if bad.any():  # one row of crosses per width above the curves
                row = top * 1.5 * 1.25 ** list(widths).index(n)
                ax.scatter(lrs[bad.any(0)], np.full(bad.any(0).sum(), row), marker="x", color=color, s=22,
                           linewidths=1.3, zorder=4)
            t = theory.sel(param=p, width=n)
            if np.isfinite(float(t["eta_star"])):
                ax.scatter([float(t["eta_star"])], [float(t["loss_at_eta_star"])], marker="*", s=140, color=color,
                           edgecolors="black", linewidths=0.7, zorder=5)
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.set_xlabel(LR_LABEL)
        ax.set_title(f"{PARAMETRISATIONS.get(p, p)}")
        ax.grid(True, which="major", alpha=0.3)
    axes[0, 0].set_ylabel(f"final {which.replace('_', ' ')} ½⟨(f − y)²⟩ (dimensionless)")
    handles, labels = axes[0, 0].get_legend_handles_labels()
    handles += [Line2D([], [], marker="*", ls="none", color="0.5", markeredgecolor="black", markersize=11),
                Line2D([], [], marker="x", ls="none", color="0.3")]
    labels += ["η* (seed mean, parabolic fit)", "some seed diverged (not usable; one row per width)"]
    fig.legend(handles, labels, loc="outside lower center", ncol=min(len(labels), 4), fontsize=8, frameon=False,
               title=CI_LABEL, title_fontsize=8)
    attrs = metrics.attrs
    fig.suptitle(f"Loss after {attrs.get('steps', '?')} SGD steps (B = {attrs.get('batch_size', '?')}), "
                 f"{attrs.get('hidden_layers', '?')}-hidden-layer {attrs.get('activation', '')} MLP, "
                 f"μP base width n0 = {attrs.get('base_width', '?')}", fontsize=10)
    fig.phaselab_metadata = provenance(metrics)
    return fig


def optimal_lr(metrics, theory):
    """η* against width (log-log) per parametrisation, with the fitted power law and the theory's slope."""
    fig, axes = new_figure(1, panel_w=5.6, panel_h=4.4)
    ax = axes[0, 0]
    widths = theory["width"].values.astype(float)
    for p in [str(v) for v in theory["param"].values]:
        t, color = theory.sel(param=p), PARAM_COLORS.get(p, "0.3")
        eta, se, edge = t["eta_star"].values, t["log_eta_star_se"].values, t["eta_star_at_edge"].values.astype(bool)
        se = np.nan_to_num(se)
        err = np.stack([eta - eta * np.exp(-se), eta * np.exp(se) - eta])
        inner = ~edge & np.isfinite(eta)
        name = PARAMETRISATIONS.get(p, p)
        ax.errorbar(widths[inner], eta[inner], yerr=err[:, inner], fmt=MARKERS.get(p, "o"), color=color,
                    capsize=3, label=f"{name}: η* ± bootstrap s.e.", zorder=3)
        if edge.any():
            ax.scatter(widths[edge], eta[edge], marker=MARKERS.get(p, "o"), facecolors="none", edgecolors=color,
                       zorder=3, label=f"{name}: η* at the grid edge (bound, not fitted)")
        slope, sse, th = float(t["slope"]), float(t["slope_se"]), float(t["theory_slope"])
        if np.isfinite(slope):
            ax.plot(widths, t["eta_star_fit"].values, color=color, lw=1.4,
                    label=f"{name}: fit, slope {fmt(round(slope, 2))} ± {fmt(round(sse, 2))} (s.e.)")
        if np.isfinite(t["eta_star_theory"].values).any():
            ax.plot(widths, t["eta_star_theory"].values, color=color, lw=1.2, ls="--",
                    label=f"{name}: theory, slope {fmt(th)}")
    ax.set_xscale("log", base=2)
    ax.set_yscale("log", base=2)
    ax.set_xticks(widths, [f"{int(w)}" for w in widths])
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.set_xlabel(WIDTH_LABEL)
    ax.set_ylabel("optimal global learning rate η* (dimensionless)")
    lr = metrics["lr"].values
    ax.axhspan(lr.min(), lr.max(), color="0.93", zorder=0)
    ax.text(0.99, 0.01, f"grey: learning-rate grid {fmt(round(lr.min(), 4))} … {fmt(round(lr.max(), 3))}",
            transform=ax.transAxes, ha="right", va="bottom", fontsize=7, color="0.35")
    ax.grid(True, which="major", alpha=0.3)
    ax.legend(fontsize=7, loc="best")
    ax.set_title("Optimal learning rate against width\n(theory: SP ∝ n⁻¹, Yang & Hu 2021; μP ∝ n⁰, Yang et al. "
                 "2022)", fontsize=9)
    fig.phaselab_metadata = provenance(metrics)
    return fig
