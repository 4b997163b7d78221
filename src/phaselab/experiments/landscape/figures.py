"""Figures of the landscape experiment (Safran & Shamir 2018; Saad & Solla 1995; Choromanska et al. 2015)."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import xarray as xr  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402

from phaselab.plots import colors, decoded, errorbar, fmt, new_figure, provenance  # noqa: E402

CLASSES = ("global minimum", "spurious minimum", "saddle", "not converged")
CLASS_COLORS = {"global minimum": "tab:green", "spurious minimum": "tab:red", "saddle": "tab:orange",
                "not converged": "tab:gray"}


def landscape_spurious_minima(metrics: xr.Dataset, theory: xr.Dataset) -> Figure:
    """Fraction of GD runs ending in a spurious minimum against k for each n − k; the classes at n = k; the losses
    of the spurious minima against the zero student's loss."""
    fig, axes = new_figure(3, panel_w=4.6, panel_h=3.9, extra_h=0.5)
    ax_frac, ax_cls, ax_loss = axes[0]
    k = theory["k"].values
    extras = theory["extra"].values
    for color, e in zip(colors(len(extras), "plasma"), extras):
        sel = {"extra": e}
        f = theory["relu_frac_spurious_minimum"].sel(sel).values
        lo = theory["relu_frac_spurious_minimum_lo"].sel(sel).values
        hi = theory["relu_frac_spurious_minimum_hi"].sel(sel).values
        errorbar(ax_frac, k + 0.08 * (e - extras.mean()), f, lo, hi, color=color, marker="o", markersize=4,
                 label=f"n = k + {int(e)}" if e else "n = k")
        ax_frac.plot(k + 0.08 * (e - extras.mean()), f, color=color, linewidth=1.0, alpha=0.6)
    ax_frac.set_xlabel("teacher units k (dimensionless)")
    ax_frac.set_ylabel("fraction of inits ending in a spurious minimum (dimensionless)")
    ax_frac.set_title("spurious minima vs k (bars: 95 % Wilson)")
    ax_frac.legend(fontsize=8, frameon=False)
    bottom = np.zeros(len(k))
    for c in CLASSES:
        f = theory[f"relu_frac_{c.replace(' ', '_')}"].sel(extra=0).values
        ax_cls.bar(k, f, bottom=bottom, color=CLASS_COLORS[c], label=c, width=0.7)
        bottom += np.nan_to_num(f)
    ax_cls.set_xlabel("teacher units k (dimensionless)")
    ax_cls.set_ylabel("fraction of inits, n = k (dimensionless)")
    ax_cls.set_title("end points of GD at n = k")
    ax_cls.legend(fontsize=8, frameon=False, loc="lower left")
    cls = decoded(metrics, "relu_class")
    loss = metrics["relu_loss"].transpose("k", "extra", "init").values
    for color, (j, e) in zip(colors(len(extras), "plasma"), enumerate(metrics["extra"].values)):
        for i, kk in enumerate(metrics["k"].values):
            m = cls[i, j] == "spurious minimum"
            if m.any():
                ax_loss.scatter(np.full(m.sum(), kk) + 0.08 * (e - extras.mean()), loss[i, j][m], s=10,
                                color=color, alpha=0.5)
    ax_loss.plot(k, theory["relu_zero_loss"].values, "k--", linewidth=1.2)
    ax_loss.axhline(metrics.attrs.get("relu_loss_tol", 1e-4), color="tab:green", linestyle=":", linewidth=1.2)
    ax_loss.set_yscale("log")
    ax_loss.set_xlabel("teacher units k (dimensionless)")
    ax_loss.set_ylabel("exact population loss F at the end point (dimensionless)")
    ax_loss.set_title("loss of the spurious minima found")
    handles = [Line2D([], [], color="k", linestyle="--", label="theory: loss of the zero student F(0)"),
               Line2D([], [], color="tab:green", linestyle=":", label="global minimum F = 0 (threshold shown)"),
               Line2D([], [], color="0.4", marker="o", linestyle="none", markersize=4,
                      label="spurious minima (colour: n − k as left)")]
    ax_loss.legend(handles=handles, fontsize=7.5, frameon=False, loc="center right")
    fig.suptitle("Gradient descent on the exact ReLU population loss (Safran & Shamir 2018): teacher Σ relu(e_i·x), "
                 f"{int(theory['relu_count'].max())} random inits per (k, n)", fontsize=10.5)
    fig.phaselab_metadata = provenance(metrics)
    return fig


def landscape_committee_flow(metrics: xr.Dataset, theory: xr.Dataset) -> Figure:
    """Risk along the gradient flow of erf committees (p = k and over-parameterised), and the end-point classes."""
    fig, axes = new_figure(2, panel_w=5.2, panel_h=4.0, extra_h=0.5)
    ax_r, ax_cls = axes[0]
    tau = metrics["tau"].values
    ks, ms = metrics["erf_k"].values, metrics["p_over_k"].values
    handles = []
    palette = colors(len(ks) * len(ms), "viridis")
    labels = []
    for i, (k, m) in enumerate((k, m) for k in ks for m in ms):
        r = metrics["erf_risk"].sel(erf_k=k, p_over_k=m).transpose("erf_init", "tau").values
        if not np.isfinite(r).any():
            continue
        for row in r:
            ax_r.plot(tau[1:], row[1:], color=palette[i], alpha=0.25, linewidth=0.7)
        with np.errstate(all="ignore"):
            med = np.nanmedian(np.where(np.isfinite(r), r, np.nan), 0)
        ax_r.plot(tau[1:], med[1:], color=palette[i], linewidth=2.0)
        handles.append(Line2D([], [], color=palette[i], linewidth=2, label=f"k = {int(k)}, p = {int(m * k)} "
                                                                             "(thin: inits, thick: median)"))
        ax_r.axhline(float(theory["erf_zero_risk"].sel(erf_k=k)), color=palette[i], linestyle="--", linewidth=0.9)
        labels.append(f"k={int(k)}\np={int(m * k)}")
    tol = metrics.attrs.get("erf_loss_tol", 1e-8)
    ax_r.axhline(tol, color="tab:green", linestyle=":", linewidth=1.2)
    handles += [Line2D([], [], color="0.3", linestyle="--", label="theory: zero student R = 1/(6k)"),
                Line2D([], [], color="tab:green", linestyle=":", label=f"zero risk (threshold {fmt(tol)})")]
    ax_r.set_xscale("log")
    ax_r.set_yscale("log")
    ax_r.set_xlabel("gradient-flow time τ = η t (dimensionless)")
    ax_r.set_ylabel("population risk R = ½E[(f* − f)²] (dimensionless)")
    ax_r.set_title("risk along the gradient flow (Saad–Solla ODE, O(η) terms)")
    ax_r.legend(handles=handles, fontsize=7.5, frameon=False, loc="lower left")
    x = np.arange(len(labels))
    bottom = np.zeros(len(labels))
    for c in CLASSES:
        f = np.array([float(theory[f"erf_frac_{c.replace(' ', '_')}"].sel(erf_k=k, p_over_k=m))
                      for k in ks for m in ms])[:len(labels)]
        ax_cls.bar(x, f, bottom=bottom, color=CLASS_COLORS[c], label=c, width=0.6)
        bottom += np.nan_to_num(f)
    ax_cls.set_xticks(x, labels)
    ax_cls.set_ylabel("fraction of inits (dimensionless)")
    ax_cls.set_xlabel("teacher units k, student units p")
    ax_cls.set_title("end points (by risk, gradient and Hessian)")
    ax_cls.legend(fontsize=8, frameon=False, loc="lower right")
    fig.suptitle("erf soft committees under gradient flow on the population risk: no spurious minima at p = k;\n"
                 f"over-parameterised students converge slowly ({metrics.attrs.get('erf_inits', '?')} inits each)",
                 fontsize=10.5)
    fig.phaselab_metadata = provenance(metrics)
    return fig


def landscape_loss_spread(metrics: xr.Dataset, theory: xr.Dataset) -> Figure:
    """Final training and test losses of every seed against width, and their interquartile ranges."""
    fig, axes = new_figure(3, panel_w=4.5, panel_h=3.9, extra_h=0.5)
    widths = metrics["width"].values
    ok = decoded(metrics, "digits_status") == "ok"
    gen = np.random.default_rng(0)  # horizontal jitter of the points only
    for ax, name, title in ((axes[0][0], "train_loss", "final training loss"),
                            (axes[0][1], "test_loss", "final test loss")):
        v = metrics[f"digits_{name}"].transpose("width", "seed").values
        for i, w in enumerate(widths):
            vals = v[i][ok[i]]
            ax.scatter(w * np.exp(0.06 * gen.standard_normal(vals.size)), vals, s=6, color="tab:blue", alpha=0.35)
            q25, q50, q75 = np.percentile(vals, [25, 50, 75]) if vals.size else (np.nan,) * 3
            ax.plot([w, w], [q25, q75], color="k", linewidth=3, alpha=0.7)
            ax.plot(w, q50, "o", color="k", markersize=4)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("hidden units (dimensionless)")
        ax.set_ylabel(f"{title}, cross-entropy (nats)")
        ax.set_title(f"{title} of every seed")
    ax = axes[0][2]
    for name, color in (("train_loss", "tab:blue"), ("test_loss", "tab:red")):
        iqr = theory[f"digits_{name}_iqr"].values
        se = theory[f"digits_{name}_iqr_se"].values
        ax.errorbar(widths, iqr, yerr=2 * se, color=color, marker="o", capsize=2.5, label=name.replace("_", " "))
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("hidden units (dimensionless)")
    ax.set_ylabel("interquartile range over seeds (nats)")
    ax.set_title("spread of the final losses (bars: ±2 bootstrap SE)")
    axes[0][0].legend(handles=[
        Line2D([], [], color="tab:blue", marker="o", linestyle="none", markersize=4, alpha=0.5, label="one seed"),
        Line2D([], [], color="k", linewidth=3, alpha=0.7, label="interquartile range"),
        Line2D([], [], color="k", marker="o", linestyle="none", markersize=4, label="median")],
        fontsize=8, frameon=False)
    ax.legend(fontsize=8, frameon=False)
    a = metrics.attrs
    fig.suptitle("Spread of trained losses over seeds against width (Choromanska et al. 2015): 64-width-10 ReLU "
                 f"networks, {a.get('digits_n_train', '?')} digits, {a.get('digits_epochs', '?')} epochs of SGD, "
                 f"{metrics.sizes['seed']} seeds per width", fontsize=10.5)
    fig.phaselab_metadata = provenance(metrics)
    return fig
