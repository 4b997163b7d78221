"""Figures of the information_plane experiment (Shwartz-Ziv & Tishby 2017; Saxe et al. 2018)."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import xarray as xr  # noqa: E402
from matplotlib.colors import LogNorm  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402
from matplotlib.patches import Patch  # noqa: E402

from phaselab.plots import CI_LABEL, mean_band, new_figure, ok_members, provenance, seed_stats  # noqa: E402

CMAP = "gnuplot"
IXT_LABEL = "I(X;T), binned estimate (bit)"
ITY_LABEL = "I(T;Y), binned estimate (bit)"


def _title(metrics: xr.Dataset) -> str:
    a = metrics.attrs
    return (f"12-bit task, {a.get('architecture', '')} network, SGD η = {a.get('lr', '?')}, B = "
            f"{a.get('batch_size', '?')}, {metrics.sizes['seed']} seeds; bins of width {a.get('bin_width', '?')} "
            "per neuron")


def _ceilings(ax, theory: xr.Dataset, horizontal=True, vertical=True):
    if horizontal:
        ax.axhline(float(theory["label_information"]), color="0.4", linestyle="--", linewidth=1.0,
                   gid="ceiling:I(X;Y)")
    if vertical:
        ax.axvline(float(theory["input_entropy"]), color="0.4", linestyle=":", linewidth=1.0, gid="ceiling:H(X)")


def information_plane(metrics: xr.Dataset, theory: xr.Dataset) -> Figure:
    """Seed-mean trajectories (I(X;T), I(T;Y)) of every layer over the epochs, one panel per activation."""
    acts = [str(a) for a in metrics["activation"].values]
    fig, axes = new_figure(len(acts), panel_w=5.0, panel_h=4.4, extra_w=1.0, extra_h=0.6, sharey=True)
    epochs = metrics["epoch"].values
    norm = LogNorm(vmin=max(epochs[epochs > 0].min(), 1), vmax=epochs.max())
    cmap = plt.get_cmap(CMAP)
    ok = ok_members(metrics)
    for ax, act in zip(axes[0], acts):
        keep = ok.sel(activation=act).values
        ixt = seed_stats(metrics["ixt"].sel(activation=act).transpose("seed", "epoch", "layer").values[keep])[0]
        ity = seed_stats(metrics["ity"].sel(activation=act).transpose("seed", "epoch", "layer").values[keep])[0]
        for k, layer in enumerate(metrics["layer"].values):
            ax.plot(ixt[:, k], ity[:, k], color="0.75", linewidth=0.8, zorder=1)
            ax.scatter(ixt[:, k], ity[:, k], c=cmap(norm(np.maximum(epochs, 1))), s=18, zorder=2,
                       edgecolor="none", gid=f"{act}:layer={layer}")
            ax.annotate(f"T{layer}", (ixt[-1, k], ity[-1, k]), textcoords="offset points", xytext=(4, -10),
                        fontsize=8)
        _ceilings(ax, theory)
        ax.set_title(f"{act} hidden layers", fontsize=10)
        ax.set_xlabel(IXT_LABEL)
        ax.set_xlim(0, float(theory["input_entropy"]) * 1.04)
    axes[0, 0].set_ylabel(ITY_LABEL)
    fig.colorbar(matplotlib.cm.ScalarMappable(norm=norm, cmap=cmap), ax=list(axes[0]), label="epoch (log scale)")
    handles = [Line2D([], [], color="0.4", linestyle="--", label="I(X;Y) = H(Y): ceiling of I(T;Y)"),
               Line2D([], [], color="0.4", linestyle=":", label="H(X) = 12 bits: ceiling of I(X;T)"),
               Line2D([], [], color="0.75", marker="o", markerfacecolor="0.3", markeredgecolor="none",
                      label="one layer's seed-mean trajectory, T1 (first hidden) … T6 (softmax output)")]
    fig.legend(handles=handles, loc="outside lower center", ncol=3, fontsize=8.5, frameon=False)
    fig.suptitle("Information plane, binned estimate (an estimate: see the caption)\n" + _title(metrics), fontsize=11)
    fig.phaselab_metadata = provenance(metrics)
    return fig


def information_plane_layers(metrics: xr.Dataset, theory: xr.Dataset) -> Figure:
    """I(X;T) and I(T;Y) of every layer against the epoch with their 95 % CI, one column per activation."""
    acts = [str(a) for a in metrics["activation"].values]
    fig, axes = new_figure(len(acts), 2, panel_w=4.8, panel_h=3.5, extra_h=0.8)
    epochs = metrics["epoch"].values.astype(float)
    shown = epochs > 0
    ok = ok_members(metrics)
    layers = metrics["layer"].values
    palette = [plt.get_cmap("tab10")(k % 10) for k in range(len(layers))]
    for j, act in enumerate(acts):
        keep = ok.sel(activation=act).values
        for row, (name, ylabel) in enumerate((("ixt", IXT_LABEL), ("ity", ITY_LABEL))):
            ax = axes[row, j]
            values = metrics[name].sel(activation=act).transpose("seed", "epoch", "layer").values[keep]
            for k, layer in enumerate(layers):
                mean_band(ax, epochs[shown], values[:, shown, k], palette[k], gid=f"{act}:{name}:layer={layer}")
            _ceilings(ax, theory, horizontal=name == "ity", vertical=False)
            if name == "ixt":
                ax.axhline(float(theory["input_entropy"]), color="0.4", linestyle=":", linewidth=1.0)
            ax.set_xscale("log")
            ax.set_xlabel("epoch")
            ax.set_ylabel(ylabel)
            ax.set_title(f"{act}: {'compression shows as a fall' if name == 'ixt' else 'fitting'}", fontsize=10)
    handles = [Line2D([], [], color=c, label=f"T{layer} ({int(w)} neurons)")
               for c, layer, w in zip(palette, layers, metrics["layer_width"].values)]
    handles += [Line2D([], [], color="0.4", linestyle="--", label="I(X;Y) = H(Y)"),
                Line2D([], [], color="0.4", linestyle=":", label="H(X) = 12 bits"),
                Patch(facecolor="0.6", alpha=0.35, label=CI_LABEL)]
    fig.legend(handles=handles, loc="outside lower center", ncol=5, fontsize=8.5, frameon=False)
    fig.suptitle("Per-layer information against the epoch (binned estimates)\n" + _title(metrics), fontsize=11)
    fig.phaselab_metadata = provenance(metrics)
    return fig
