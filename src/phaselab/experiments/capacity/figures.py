"""Figures of the capacity experiment: the perceptron's storage capacity (Cover 1965, Gardner 1988).

Statistics: a fraction of trials (separable, or storable at stability κ) is shown with its 95 % Wilson score
interval over the decided trials (undecided trials are left out and counted in the legend); the maximal stability
with its median over trials and the 95 % order-statistic interval of the median (the median is the finite-N
analogue of Gardner's capacity: at α = α_½(κ) half the pattern sets can be stored at stability κ).
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import xarray as xr
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from scipy.stats import norm

from phaselab.experiments.capacity.stages import storable
from phaselab.plots import ALPHA_LABEL, decoded, errorbar, fmt, new_figure, provenance, wilson


def median_ci(values: np.ndarray, axis: int = -1):
    """Median and its distribution-free 95 % interval (order statistics of Binomial(n, ½)) along ``axis``.

    ``values`` may hold −inf (a trial below every threshold); NaN entries are left out. Where the median or an
    end of the interval is −inf, NaN is returned for it.
    """
    from scipy.stats import binom

    v = np.moveaxis(np.asarray(values, dtype=float), axis, -1)
    med, lo, hi = (np.full(v.shape[:-1], np.nan) for _ in range(3))
    for i in np.ndindex(v.shape[:-1]):
        x = np.sort(v[i][~np.isnan(v[i])])
        n = len(x)
        if n == 0:
            continue
        j = max(int(binom.ppf(0.025, n, 0.5)) - 1, 0)  # 0-based ranks of the interval ends
        k = min(n - 1 - j, n - 1)
        med[i], lo[i], hi[i] = np.median(x), x[j], x[k]
    med, lo, hi = (np.where(np.isfinite(a), a, np.nan) for a in (med, lo, hi))
    return med, lo, hi


def _n_colors(n: int):
    cmap = plt.get_cmap("viridis")
    return [cmap(x) for x in np.linspace(0.1, 0.85, max(n, 1))]


def capacity_curves(metrics: xr.Dataset, theory: xr.Dataset) -> Figure:
    """P(separable) against α for each N beside Cover's exact curve; right: the same against (α − 2)√(N/2)."""
    Ns = metrics["N"].values
    colors = _n_colors(len(Ns))
    status = decoded(metrics)  # (N, alpha, trial)
    fig, axes = new_figure(2, panel_w=5.2, panel_h=4.3, extra_h=0.9)
    left, right = axes[0]
    x_curve = theory["alpha_curve"].values
    for i, N in enumerate(Ns):
        alpha = metrics["patterns"].values[i] / N  # the exact α = P/N of each point
        sep = (status[i] == "separable").sum(-1)
        decided = (status[i] != "undecided").sum(-1)
        undecided = int((status[i] == "undecided").sum())
        p, lo, hi = wilson(sep, decided)
        label = f"N = {int(N)}" + (f" ({undecided} undecided left out)" if undecided else "")
        c = colors[i]
        errorbar(left, alpha, p, lo, hi, color=c, marker="o", markersize=4.5, label=label, zorder=3)
        left.plot(x_curve, theory["cover_curve"].values[i], color=c, linewidth=1.3, zorder=2)
        scaled = (alpha - 2.0) * np.sqrt(N / 2.0)
        errorbar(right, scaled, p, lo, hi, color=c, marker="o", markersize=4.5, zorder=3)
        right.plot((x_curve - 2.0) * np.sqrt(N / 2.0), theory["cover_curve"].values[i], color=c, linewidth=0.9,
                   alpha=0.7, zorder=2)
    left.plot([0, 2, 2, x_curve[-1]], [1, 1, 0, 0], color="black", linestyle="--", linewidth=1.3, zorder=1)
    left.axhline(0.5, color="0.6", linestyle=":", linewidth=1)
    left.axvline(2.0, color="0.6", linestyle=":", linewidth=1)
    left.annotate("every N crosses ½ at α = 2", xy=(2.0, 0.5), xytext=(2.35, 0.72), fontsize=8.5,
                  arrowprops={"arrowstyle": "->", "color": "0.3"})
    left.set_xlim(0, x_curve[-1])
    left.set_ylim(-0.03, 1.03)
    left.set_xlabel(ALPHA_LABEL)
    left.set_ylabel("P(separable) (dimensionless)")
    left.set_title("fraction of separable pattern sets", fontsize=10)
    handles, _ = left.get_legend_handles_labels()
    handles += [Line2D([], [], color="0.3", linewidth=1.3, label="Cover (1965), exact at each N"),
                Line2D([], [], color="black", linestyle="--", linewidth=1.3, label="N → ∞: step at α_c = 2")]
    left.legend(handles=handles, fontsize=8, loc="lower left", frameon=False)

    xs = np.linspace(-4, 4, 201)
    right.plot(xs, norm.cdf(-xs), color="black", linewidth=1.8, label="Φ(−x), large-N limit of Cover's curve")
    right.axhline(0.5, color="0.6", linestyle=":", linewidth=1)
    right.axvline(0.0, color="0.6", linestyle=":", linewidth=1)
    right.set_xlim(-4, 4)
    right.set_ylim(-0.03, 1.03)
    right.set_xlabel("scaled load x = (α − 2)·√(N/2) (dimensionless)")
    right.set_ylabel("P(separable) (dimensionless)")
    right.set_title("finite-size scaling: the transition sharpens like 1/√N", fontsize=10)
    right.legend(handles=[Line2D([], [], color="black", linewidth=1.8, label="Φ(−x): large-N limit of Cover"),
                          Line2D([], [], color="0.5", linewidth=0.9, label="Cover, exact at each N")],
                 fontsize=8, loc="lower left", frameon=False)
    trials = metrics.sizes["trial"]
    fig.suptitle(f"Perceptron capacity: Cover's counting theorem against {trials} random pattern sets per point\n"
                 "points: fraction separable, 95 % Wilson interval", fontsize=11)
    fig.phaselab_metadata = provenance(metrics)
    return fig


def gardner_capacity(metrics: xr.Dataset, theory: xr.Dataset) -> Figure:
    """Maximal stability κ* against α (median over trials) beside Gardner's κ_c(α); right: storable fractions."""
    Ns = metrics["N"].values
    colors = _n_colors(len(Ns))
    status = decoded(metrics)
    fig, axes = new_figure(2, panel_w=5.2, panel_h=4.3, extra_h=1.4)
    left, right = axes[0]
    # a trial that is not separable lies below every κ ≥ 0; an undecided one is left out
    kappa_star = np.where(status == "separable", metrics["stability_lower"].values,
                          np.where(status == "non_separable", -np.inf, np.nan))
    med, lo, hi = median_ci(kappa_star, axis=-1)
    for i, N in enumerate(Ns):
        alpha = metrics["patterns"].values[i] / N
        errorbar(left, alpha, med[i], np.nan_to_num(lo[i], nan=0.0), hi[i], color=colors[i], marker="o",
                  markersize=4.5, label=f"N = {int(N)}", zorder=3)
    xc = theory["alpha_curve"].values
    kc = theory["critical_stability_curve"].values
    left.plot(xc[xc > 0.08], kc[xc > 0.08], color="black", linewidth=1.8, zorder=2,
              label="Gardner (1988): κ_c(α), the inverse of α_c(κ)")
    left.axvline(2.0, color="0.6", linestyle=":", linewidth=1)
    left.set_xlim(0, 2.3)
    left.set_ylim(0, None)
    left.set_xlabel(ALPHA_LABEL)
    left.set_ylabel("maximal stability κ* (dimensionless)")
    left.set_title("median κ* over trials, 95 % order-statistic interval", fontsize=10)
    left.legend(fontsize=8, loc="upper right", frameon=False)

    i = int(np.argmax(Ns))
    N = Ns[i]
    alpha = metrics["patterns"].values[i] / N
    kappas = theory["kappa"].values
    kcolors = plt.get_cmap("plasma")(np.linspace(0.05, 0.8, len(kappas)))
    for kappa, ac, c in zip(kappas, theory["capacity"].values, kcolors):
        yes, decided = storable(metrics.isel(N=i), kappa, status[i])
        p, plo, phi = wilson(yes.sum(-1), decided.sum(-1))
        errorbar(right, alpha, p, plo, phi, color=c, marker="o", markersize=4.5, zorder=3)
        right.plot(alpha, p, color=c, linewidth=0.8, alpha=0.6)
        right.axvline(ac, color=c, linestyle="--", linewidth=1.3)
    right.set_xlim(0, float(alpha.max()) + 0.1)
    right.set_ylim(-0.03, 1.03)
    right.set_xlabel(ALPHA_LABEL)
    right.set_ylabel("P(κ* ≥ κ) (dimensionless)")
    right.set_title(f"pattern sets storable at stability κ, N = {int(N)}", fontsize=10)
    handles = [Line2D([], [], color=c, marker="o", linestyle="-", label=f"κ = {fmt(k)}: α_c(κ) = {ac:.3f}")
               for k, ac, c in zip(kappas, theory["capacity"].values, kcolors)]
    handles.append(Line2D([], [], color="0.3", linestyle="--", label="Gardner's α_c(κ) (dashed)"))
    right.legend(handles=handles, fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.13), ncol=2,
                 frameon=False)
    fig.suptitle("Gardner's capacity with stability κ: α_c(κ) = [∫_{−κ}^∞ Dt (t + κ)²]^(−1) against the "
                 "maximal-stability solver", fontsize=11)
    fig.phaselab_metadata = provenance(metrics)
    return fig
