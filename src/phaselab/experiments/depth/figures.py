"""Figures of the depth experiment: one a panel of issue 17, part 3."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import xarray as xr  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from phaselab.plots import (  # noqa: E402
    CI_LABEL,
    colors,
    errorbar,
    mean_band,
    new_figure,
    plain_log_axis,
    provenance,
    seed_stats,
)


def _ok(metrics, name):
    return metrics[name].astype(str) == "ok"


def depth_sawtooth(metrics: xr.Dataset, theory: xr.Dataset) -> Figure:
    """MSE against units for each k: shallow (random features and after GD) between the bounds; deep exact."""
    ks = metrics["k"].values
    fig, axes = new_figure(len(ks), panel_w=4.4, panel_h=3.9, extra_h=0.6)
    N = metrics["units"].values
    for ax, k in zip(axes[0], ks):
        ok = _ok(metrics, "tent_status").sel(k=k)
        for name, color, label in (("tent_mse_random_features", "tab:gray",
                                    "shallow: random breakpoints + least squares"),
                                   ("tent_mse", "tab:blue", "shallow: then full-batch GD")):
            v = metrics[name].sel(k=k).where(ok).transpose("tent_seed", "units").values
            mean, lo, hi, _ = seed_stats(v, 0)
            errorbar(ax, N, mean, lo, hi, color=color, marker="o", markersize=4, label=label + " (mean, 95 % CI)")
            ax.plot(N, np.nanmin(v, 0), color=color, marker="v", linestyle="none", markersize=4, alpha=0.6,
                    label=label + ": best seed")
        ax.plot(N, theory["tent_upper"].sel(k=k), "k--", label="theory: constructive upper bound")
        ax.plot(N, theory["tent_lower"].sel(k=k), "k:", label="theory: lower bound, t = N + 1 pieces")
        worst = float(metrics["deep_max_error"].sel(k=k))
        ax.axvline(2 * k, color="tab:red", linewidth=1.2,
                   label=f"deep net: 2 units × k layers, MSE 0 (max error {worst:.0e})")
        ax.axvline(2.0**k, color="0.5", linewidth=0.8, linestyle="-.", label="N = 2^k: shallow exact")
        ax.set_xscale("log", base=2)
        ax.set_yscale("symlog", linthresh=1e-4)
        ax.set_ylim(0, 0.12)
        ax.set_xlabel("hidden units N (dimensionless)")
        ax.set_ylabel("MSE against Δ^k (dimensionless)")
        ax.set_title(f"k = {int(k)}: Δ^k has {2 ** int(k)} pieces")
    handles, labels = axes[0][0].get_legend_handles_labels()
    fig.legend(handles, [lb.replace(f"{int(ks[0])} layers", "k layers") for lb in labels], loc="outside lower center",
               ncol=2, fontsize=8, frameon=False)
    fig.suptitle("What depth buys (Telgarsky 2016): the sawtooth Δ^k is exact with 2k deep units, "
                 "a shallow net needs ≈ 2^k", fontsize=11)
    fig.phaselab_metadata = provenance(metrics)
    return fig


def depth_regions(metrics: xr.Dataset, theory: xr.Dataset) -> Figure:
    fig, axes = new_figure(1, panel_w=8.6, panel_h=4.6, extra_h=0.9)
    ax = axes[0][0]
    L = metrics["depth"].values
    w = int(metrics.attrs.get("regions_width", 4))
    units = w * L
    ax.plot(units, theory["regions_max_deep"], "-o", color="tab:red", label="theory: deep maximum (Montúfar 2014, ≥)")
    ax.plot(units, theory["regions_upper_deep"], ":", color="tab:red", label="theory: deep upper bound Π Σ binom")
    ax.plot(units, theory["regions_max_shallow"], "-s", color="tab:blue", label="theory: shallow maximum Σ binom(N, j)")
    for arch, color in (("deep", "tab:red"), ("shallow", "tab:blue")):
        for state, marker, alpha in (("random", "^", 1.0), ("trained", "D", 0.6)):
            v = metrics[f"regions_{state}_{arch}"].transpose("regions_seed", "depth").values
            mean, lo, hi, _ = seed_stats(v, 0)
            errorbar(ax, units * (1.03 if state == "trained" else 0.97), mean, lo, hi, color=color, marker=marker,
                     alpha=alpha, label=f"measured: {state} {arch} (grid count, a lower bound)")
    ax.set_yscale("log")
    ax.set_xlabel(f"hidden units (deep: L layers × {w}; shallow: one layer)")
    ax.set_ylabel("linear regions (dimensionless)")
    ax.set_title(f"2 inputs, [−1, 1]², {metrics.attrs.get('regions_grid', '?')}² grid; {CI_LABEL}", fontsize=8)
    fig.legend(loc="outside lower center", ncol=2, fontsize=8, frameon=False)
    fig.suptitle("Linear regions: the deep maximum vs what random and trained networks realise (Hanin & Rolnick 2019)",
                 fontsize=10)
    fig.phaselab_metadata = provenance(metrics)
    return fig


def depth_product(metrics: xr.Dataset, theory: xr.Dataset) -> Figure:
    fig, axes = new_figure(2, panel_w=4.6, panel_h=3.9, extra_h=0.5)
    ax, ax2 = axes[0]
    lam = metrics["lam"].values
    ax.loglog(lam, metrics["product_gate_error"], "o", color="tab:blue", label="measured: 4 softplus neurons")
    ax.loglog(lam, theory["product_gate_theory"], "k--", label="theory: λ²·|σ''''(0)|/(3σ''(0)) = λ²/6")
    ax.set_xlabel("input scale λ (dimensionless)")
    ax.set_ylabel("largest |gate − xy| on [−1, 1]² (dimensionless)")
    ax.set_title("product gate: error ∝ λ²")
    ax.legend(fontsize=8)
    n = metrics["n_inputs"].values
    ax2.semilogy(n, np.maximum(metrics["product_identity_error"].values, 1e-18), "o", color="tab:green",
                 label="measured: 2^n neurons of u ↦ u^n")
    ax2.axhline(1e-10, color="k", linestyle="--", label="theory: exact (0); dashed: claim tolerance 1e-10")
    ax2.set_xlabel("inputs n (dimensionless)")
    ax2.set_ylabel("largest |identity − Π x_i| (dimensionless)")
    ax2.set_title("Π x_i from one hidden layer of 2^n neurons")
    ax2.legend(fontsize=8)
    fig.suptitle("Multiplication (Lin, Tegmark & Rolnick 2017)", fontsize=11)
    fig.phaselab_metadata = provenance(metrics)
    return fig


def depth_multiply(metrics: xr.Dataset, theory: xr.Dataset) -> Figure:
    """Trained tanh nets of 1–4 hidden layers at equal neurons, one panel an n; the tree of gates against C_n λ⁴."""
    pn = metrics["product_n"].values
    fig, axes = new_figure(len(pn) + 1, panel_w=4.2, panel_h=3.9, extra_h=0.9)
    layers = metrics["layers"].values
    cols = colors(len(layers), "plasma")
    best = metrics["product_net_best"].values
    floor = max(1e-4, 0.5 * float(np.nanmin(best))) if np.isfinite(best).any() else 1e-3  # one y range for all n
    for ax, n in zip(axes[0], pn):
        N = metrics["product_net_neurons"].sel(product_n=n)
        for color, L in zip(cols, layers):
            v = metrics["product_net_best"].sel(product_n=n, layers=L).transpose("product_seed", "budget").values
            mean, lo, hi, _ = seed_stats(v, 0)
            errorbar(ax, N.sel(layers=L).values * (1 + 0.02 * (L - 1)), mean, lo, hi, color=color, marker="o",
                     markersize=4, label=f"trained: {int(L)} hidden layer{'s' if L > 1 else ''} (seed mean, 95 % CI)")
        ax.axhline(1.0, color="0.4", linestyle=":", label="f = 0 (initialisation): MSE = Var Π x_i")
        tree_n = int(theory["product_tree_neurons"].sel(product_n=n))
        ax.axvline(tree_n, color="k", linestyle="--",
                   label="theory: tree of gates, 4(n − 1) neurons in ⌈log2 n⌉ layers, MSE C_n λ⁴ → 0")
        ax.axvline(float(theory["product_shallow_neurons"].sel(product_n=n)), color="tab:green", linestyle="-.",
                   label="theory: one layer exact from 2^n neurons (smooth σ)")
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        plain_log_axis(ax.yaxis)
        ax.set_ylim(floor, 2.0)
        ax.set_xlabel("hidden neurons N in total (dimensionless)")
        ax.set_ylabel("test MSE / Var Π x_i (dimensionless)")
        ax.set_title(f"n = {int(n)}: target Π x_i, x ~ U[−1, 1]^{int(n)}", fontsize=9)
    ax = axes[0][-1]
    lam = metrics["lam"].values
    for color, n in zip(colors(len(pn)), pn):
        mc, se = metrics["product_tree_mse"].sel(product_n=n), metrics["product_tree_mse_se"].sel(product_n=n)
        ax.errorbar(lam, mc, yerr=2 * se, fmt="o", color=color, markersize=4,
                    label=f"measured (Monte Carlo ± 2 s.e.): n = {int(n)}")
        ax.plot(lam, theory["product_tree_theory"].sel(product_n=n), "--", color=color)
    ax.plot([], [], "k--", label="theory: C_n λ⁴ (closed form)")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("gate input scale λ (dimensionless)")
    ax.set_ylabel("tree MSE / Var Π x_i (dimensionless)")
    ax.set_title("the constructive deep network: n − 1 softplus gates", fontsize=9)
    ax.legend(fontsize=7)
    handles, labels = axes[0][0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncol=2, fontsize=8, frameon=False)
    fig.suptitle("Products of n inputs at equal neuron counts (Lin, Tegmark & Rolnick 2017): trained tanh networks "
                 "by online SGD, each at its best learning rate", fontsize=10)
    fig.phaselab_metadata = provenance(metrics)
    return fig


def depth_parity(metrics: xr.Dataset, theory: xr.Dataset) -> Figure:
    fig, axes = new_figure(2, panel_w=4.8, panel_h=3.9, extra_h=0.6)
    ax, ax2 = axes[0]
    d = metrics["d"].values
    norm = metrics["grad_parseval"] * 2.0**metrics["d"]  # E‖g‖²
    for name, color, marker, label in (("grad_variance", "tab:blue", "o", "measured: exact over all 2^d parities"),
                                       ("grad_variance_mc", "tab:orange", "s",
                                        "measured: parities drawn by degree (MC)")):
        v = (metrics[name] / norm).transpose("parity_seed", "d").values
        mean, lo, hi, _ = seed_stats(v, 0)
        errorbar(ax, d + (0.15 if marker == "s" else 0), mean, lo, hi, color=color, marker=marker, label=label)
    ax.semilogy(d, theory["parity_fraction"], "k--", label="theory: 2^−d (Parseval)")
    b = (metrics["grad_bound"] / norm).mean("parity_seed")
    ax.semilogy(d, b, "k:", label="theory: G² 2^−d / E‖∇p‖² (paper's bound)")
    ax.set_xlabel("input dimension d (bits)")
    ax.set_ylabel("Var_v ∇F_v / E‖∇p‖² (dimensionless)")
    ax.set_title("gradient carries 2^−d of the signal")
    ax.legend(fontsize=7.5)
    step = metrics["step"].values
    for color, dd in zip(colors(len(d)), d):
        acc = metrics["parity_accuracy"].sel(d=dd).where(_ok(metrics, "parity_status").sel(d=dd))
        mean_band(ax2, step, acc.transpose("parity_seed", "step").values, color, label=f"d = {int(dd)}")
    ax2.axhline(0.5, color="k", linestyle="--", label="theory: chance 0.5")
    ax2.set_xlabel("SGD step (steps)")
    ax2.set_ylabel("test accuracy (dimensionless)")
    ax2.set_title(f"parity of ⌊d/2⌋ bits; {CI_LABEL}", fontsize=7.5)
    ax2.legend(fontsize=7.5)
    fig.suptitle("Parities (Shalev-Shwartz, Shamir & Shammah 2017): gradient-based learning fails as d grows",
                 fontsize=10.5)
    fig.phaselab_metadata = provenance(metrics)
    return fig
