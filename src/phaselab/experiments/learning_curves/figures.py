"""Figures of the learning_curves experiment: teacher–student learning curves of the perceptron (Seung,
Sompolinsky & Tishby 1992; Engel & Van den Broeck 2001; Györgyi 1990 for binary weights).

Statistics: learning curves with the seed mean and the 95 % Student-t interval (:func:`phaselab.plots.seed_stats`);
the fraction of binary training sets that only the teacher fits with its 95 % Wilson score interval.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import xarray as xr
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import NullFormatter

from phaselab.plots import ALPHA_LABEL, decode, decoded, errorbar, provenance, seed_stats, wilson

STUDENT_STYLE = {  # colour, marker, label
    "hebb": ("tab:blue", "o", "Hebb"),
    "max_stability": ("tab:orange", "s", "maximal stability (SVM)"),
    "gibbs": ("tab:green", "^", "Gibbs (version-space HMC)"),
    "bayes": ("tab:green", None, "Bayes optimal (theory only)"),
    "online_perceptron": ("tab:red", "D", "online perceptron"),
}
BINARY_COLOR = "0.35"


def learning_curves(metrics: xr.Dataset, theory: xr.Dataset) -> Figure:
    """ε against α for every student (seed mean ± 95 % CI) on the RS theory lines, log–log inset for the tails;
    right: Gibbs learning of the binary perceptron, RS theory with its first-order jump and exact enumeration."""
    fig = plt.figure(figsize=(13.6, 7.5), layout="constrained")
    ax, bx = fig.subplots(1, 2, width_ratios=[1.75, 1])
    inset = ax.inset_axes([0.47, 0.44, 0.5, 0.53])
    status = decoded(metrics)
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
            errorbar(ax, alpha, mean, lo, hi, **kw)
            errorbar(inset, alpha, mean, lo, hi, **{**kw, "markersize": 3.5})
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
        errorbar(ax, ba, mean, lo, hi, color="black", marker="o", markerfacecolor="white", markersize=5.5,
                  zorder=4, label=f"exact Gibbs average over all 2^{Nb} binary students, N = {Nb}")
        unique = (metrics["binary_version_space_size"].values == 1)
        p, plo, phi = wilson(unique.sum(-1), unique.shape[-1])
        twin = ax.twinx()
        errorbar(twin, ba, p, plo, phi, color="tab:purple", marker="s", markersize=4, alpha=0.8, zorder=3)
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
