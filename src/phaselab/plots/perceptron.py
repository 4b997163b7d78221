"""Figures of the perceptron experiments: capacity (Cover, Gardner) and teacher–student learning curves.

Statistics: a fraction of trials (separable, or storable at stability κ) is shown with its 95 % Wilson score
interval over the decided trials (undecided trials are left out and counted in the legend); the maximal stability
with its median over trials and the 95 % order-statistic interval of the median (the median is the finite-N
analogue of Gardner's capacity: at α = α_½(κ) half the pattern sets can be stored at stability κ); learning
curves with the seed mean and the 95 % Student-t interval (:func:`phaselab.plots.seed_stats`).
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import xarray as xr
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import NullFormatter
from scipy.stats import norm

from phaselab.plots import decode, fmt, new_figure, provenance, seed_stats

ALPHA_LABEL = "load α = P/N (dimensionless)"
STUDENT_STYLE = {  # colour, marker, label
    "hebb": ("tab:blue", "o", "Hebb"),
    "max_stability": ("tab:orange", "s", "maximal stability (SVM)"),
    "gibbs": ("tab:green", "^", "Gibbs (version-space HMC)"),
    "bayes": ("tab:green", None, "Bayes optimal (theory only)"),
    "online_perceptron": ("tab:red", "D", "online perceptron"),
}
BINARY_COLOR = "0.35"


def wilson(k, n, z: float = 1.959964):
    """Fraction k/n and its Wilson score interval (NaN where n = 0)."""
    k, n = np.asarray(k, dtype=float), np.asarray(n, dtype=float)
    with np.errstate(invalid="ignore", divide="ignore"):
        p = k / n
        centre = (p + z * z / (2 * n)) / (1 + z * z / n)
        half = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return p, centre - half, centre + half


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


def _status(metrics: xr.Dataset, name: str = "status") -> np.ndarray:
    st = metrics[name]
    return np.vectorize(decode, otypes=[object])(st.values) if st.size else st.values


def _errorbar(ax, x, mean, lo, hi, **kw):
    ok = np.isfinite(mean)
    yerr = np.vstack([mean[ok] - lo[ok], hi[ok] - mean[ok]])
    return ax.errorbar(np.asarray(x)[ok], mean[ok], yerr=np.clip(yerr, 0, None), linestyle="none", capsize=2.5,
                       **kw)


# --------------------------------------------------------------------------------------------------- capacity
def capacity_curves(metrics: xr.Dataset, theory: xr.Dataset) -> Figure:
    """P(separable) against α for each N beside Cover's exact curve; right: the same against (α − 2)√(N/2)."""
    Ns = metrics["N"].values
    colors = _n_colors(len(Ns))
    status = _status(metrics)  # (N, alpha, trial)
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
        _errorbar(left, alpha, p, lo, hi, color=c, marker="o", markersize=4.5, label=label, zorder=3)
        left.plot(x_curve, theory["cover_curve"].values[i], color=c, linewidth=1.3, zorder=2)
        scaled = (alpha - 2.0) * np.sqrt(N / 2.0)
        _errorbar(right, scaled, p, lo, hi, color=c, marker="o", markersize=4.5, zorder=3)
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


def _storable(metrics: xr.Dataset, kappa: float, status: np.ndarray):
    """(storable, decided) trials at stability κ: κ* ≥ κ certified by the bracket, or certainly not."""
    lower = np.nan_to_num(metrics["stability_lower"].values, nan=-np.inf)
    upper = np.nan_to_num(metrics["stability_upper"].values, nan=-np.inf)
    yes = (status == "separable") & (lower >= kappa)
    no = (status == "non_separable") | ((status == "separable") & (upper < kappa))
    return yes, yes | no


def gardner_capacity(metrics: xr.Dataset, theory: xr.Dataset) -> Figure:
    """Maximal stability κ* against α (median over trials) beside Gardner's κ_c(α); right: storable fractions."""
    Ns = metrics["N"].values
    colors = _n_colors(len(Ns))
    status = _status(metrics)
    fig, axes = new_figure(2, panel_w=5.2, panel_h=4.3, extra_h=1.4)
    left, right = axes[0]
    # a trial that is not separable lies below every κ ≥ 0; an undecided one is left out
    kappa_star = np.where(status == "separable", metrics["stability_lower"].values,
                          np.where(status == "non_separable", -np.inf, np.nan))
    med, lo, hi = median_ci(kappa_star, axis=-1)
    for i, N in enumerate(Ns):
        alpha = metrics["patterns"].values[i] / N
        _errorbar(left, alpha, med[i], np.nan_to_num(lo[i], nan=0.0), hi[i], color=colors[i], marker="o",
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
        yes, decided = _storable(metrics.isel(N=i), kappa, status[i])
        p, plo, phi = wilson(yes.sum(-1), decided.sum(-1))
        _errorbar(right, alpha, p, plo, phi, color=c, marker="o", markersize=4.5, zorder=3)
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


# --------------------------------------------------------------------------------------------- learning curves
def learning_curves(metrics: xr.Dataset, theory: xr.Dataset) -> Figure:
    """ε against α for every student (seed mean ± 95 % CI) on the RS theory lines, log–log inset for the tails;
    right: Gibbs learning of the binary perceptron, RS theory with its first-order jump and exact enumeration."""
    fig = plt.figure(figsize=(13.6, 7.5), layout="constrained")
    ax, bx = fig.subplots(1, 2, width_ratios=[1.75, 1])
    inset = ax.inset_axes([0.47, 0.44, 0.5, 0.53])
    status = _status(metrics)
    students = [decode(s) for s in metrics["student"].values]
    alpha = metrics["alpha"].values
    xc = theory["alpha_curve"].values
    handles = []
    for s in (decode(s) for s in theory["theory_student"].values):
        color, marker, label = STUDENT_STYLE[s]
        curve = theory["generalization_error_curve"].sel(theory_student=s).values
        style = {"color": color, "linewidth": 1.5, "linestyle": "--" if s == "bayes" else "-"}
        ax.plot(np.r_[0.0, xc], np.r_[0.5, curve], **style)  # ε = ½ at α = 0 for every student
        inset.plot(xc, curve, **style)
        if s in students:
            j = students.index(s)
            eps = np.where(status[j] == "ok", metrics["generalization_error"].values[j], np.nan)
            mean, lo, hi, _ = seed_stats(eps, axis=-1)
            kw = {"color": color, "marker": marker, "markersize": 5, "zorder": 4}
            _errorbar(ax, alpha, mean, lo, hi, **kw)
            _errorbar(inset, alpha, mean, lo, hi, **{**kw, "markersize": 3.5})
            left_out = int((status[j] != "ok").sum())
            label += f" ({left_out} not converged, left out)" if left_out else ""
            handles.append(Line2D([], [], marker=marker, **style, label=label))
        else:
            handles.append(Line2D([], [], **style, label=label))
    tails = theory["asymptotic_constant"]
    big = xc[xc >= 2]
    for s in ("gibbs", "max_stability", "bayes"):
        inset.plot(big, float(tails.sel(theory_student=s)) / big, color=STUDENT_STYLE[s][0], linewidth=0.9,
                   linestyle=":")
    inset.set_xscale("log")
    inset.set_yscale("log")
    for axis in (inset.xaxis, inset.yaxis):
        axis.set_minor_formatter(NullFormatter())
    inset.set_xlim(xc[0], xc[-1])
    inset.set_ylim(max(1e-3, 0.5 * np.nanmin(theory["generalization_error_curve"].values)), 0.55)
    inset.set_xlabel("α (log)", fontsize=8)
    inset.set_ylabel("ε (log)", fontsize=8)
    inset.tick_params(labelsize=7)
    inset.set_title("dotted: c/α with c = " + ", ".join(f"{float(tails.sel(theory_student=s)):.2f}"
                                                          for s in ("gibbs", "max_stability", "bayes"))
                    + " (Gibbs, SVM, Bayes)", fontsize=7.5)
    ax.set_xlim(0, alpha.max() * 1.04)
    ax.set_ylim(0, 0.52)
    ax.set_xlabel(ALPHA_LABEL)
    ax.set_ylabel("generalisation error ε = arccos(R)/π (dimensionless)")
    ax.set_title(f"N = {int(metrics.attrs['N'])}: seed mean over {metrics.sizes['seed']} seeds, 95 % CI; "
                 "lines: replica-symmetric theory, N → ∞", fontsize=9.5)
    ax.legend(handles=handles, fontsize=8.5, loc="lower left", bbox_to_anchor=(0.0, 0.0), frameon=True,
              framealpha=0.9)
    _binary_panel(bx, metrics, theory)
    fig.suptitle("Perceptron learning curves, teacher–student (Seung, Sompolinsky & Tishby 1992)", fontsize=11)
    fig.phaselab_metadata = provenance(metrics)
    return fig


def _binary_panel(ax, metrics: xr.Dataset, theory: xr.Dataset) -> None:
    """Binary teacher and students: RS Gibbs ε with Györgyi's jump to 0 at α_c, and exact enumeration at small N."""
    alpha_c = float(theory.attrs["binary_transition"])
    xb = theory["binary_alpha_curve"].values
    ax.plot(xb, theory["binary_generalization_error_curve"].values, color=BINARY_COLOR, linewidth=1.8,
            label="binary Gibbs, RS theory (Györgyi 1990)")
    cont = theory["generalization_error_curve"].sel(theory_student="gibbs")
    sel = theory["alpha_curve"].values <= xb.max()
    ax.plot(np.r_[0.0, theory["alpha_curve"].values[sel]], np.r_[0.5, cont.values[sel]],
            color=STUDENT_STYLE["gibbs"][0], linewidth=1.0, alpha=0.7, label="continuous Gibbs, RS theory")
    ax.axvline(alpha_c, color=BINARY_COLOR, linestyle=":", linewidth=1.2)
    ax.annotate(f"first-order transition to\nperfect generalisation,\nα_c = {alpha_c:.3f}", xy=(alpha_c, 0.01),
                xytext=(alpha_c + 0.3, 0.18), fontsize=8.5, arrowprops={"arrowstyle": "->", "color": "0.3"})
    if "binary_generalization_error" in metrics:
        Nb = int(metrics.attrs["binary_N"])
        ba = metrics["binary_alpha"].values
        mean, lo, hi, _ = seed_stats(metrics["binary_generalization_error"].values, axis=-1)
        _errorbar(ax, ba, mean, lo, hi, color="black", marker="o", markerfacecolor="white", markersize=5.5,
                  zorder=4, label=f"exact Gibbs average over all 2^{Nb} binary students, N = {Nb}")
        unique = (metrics["binary_version_space_size"].values == 1)
        p, plo, phi = wilson(unique.sum(-1), unique.shape[-1])
        twin = ax.twinx()
        _errorbar(twin, ba, p, plo, phi, color="tab:purple", marker="s", markersize=4, alpha=0.8, zorder=3)
        twin.plot(ba, p, color="tab:purple", linewidth=0.8, alpha=0.6)
        twin.set_ylim(-0.02, 1.02)
        twin.set_ylabel("P(version space = {teacher}) (dimensionless)", color="tab:purple")
        twin.tick_params(axis="y", colors="tab:purple")
        ax.plot([], [], color="tab:purple", marker="s", markersize=4,
                label=f"fraction of training sets that only the teacher fits (right axis), N = {Nb}")
        ax.set_title(f"binary (Ising) weights, {metrics.sizes['binary_seed']} seeds, 95 % CI", fontsize=9.5)
    ax.set_xlim(0, xb.max())
    ax.set_ylim(0, 0.52)
    ax.set_xlabel(ALPHA_LABEL)
    ax.set_ylabel("generalisation error ε (dimensionless)")
    ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.11), frameon=False)
