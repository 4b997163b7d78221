"""Figures of the edge_of_stability experiment (Cohen, Kaur, Li, Kolter & Talwalkar, ICLR 2021)."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

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


def sharpness_trajectories(metrics: xr.Dataset, theory: xr.Dataset) -> Figure:
    """Training loss, sharpness λ_max with the 2/η lines, and η λ_max / 2 against the step, one colour per η."""
    fig, axes = new_figure(3, panel_w=4.6, panel_h=3.9, extra_h=0.9)
    ax_loss, ax_sharp, ax_ratio = axes[0]
    ok = ok_members(metrics)
    step = metrics["step"].values
    lrs = metrics["lr"].values
    handles = []
    for color, lr in zip(colors(len(lrs)), lrs):
        keep = ok.sel(lr=lr).values
        n_div = int((~keep).sum())
        label = f"η = {fmt(lr)}" + (f" ({n_div} of {keep.size} seeds diverged, left out)" if n_div else "")
        sel = {name: metrics[name].sel(lr=lr).transpose("seed", "step").values[keep] for name in ("loss", "sharpness")}
        mean_band(ax_loss, step, sel["loss"], color, gid=f"loss:lr={lr:g}")
        mean_band(ax_sharp, step, sel["sharpness"], color, gid=f"sharpness:lr={lr:g}")
        mean_band(ax_ratio, step, sel["sharpness"] * lr / 2, color, gid=f"ratio:lr={lr:g}")
        threshold = float(theory["stability_threshold"].sel(lr=lr))
        ax_sharp.axhline(threshold, color=color, linestyle="--", linewidth=1.2, gid=f"2/eta:lr={lr:g}")
        handles.append(Line2D([], [], color=color, linewidth=1.6, label=label))
    ax_ratio.axhline(1.0, color="black", linestyle="--", linewidth=1.2, gid="edge")
    ax_loss.set_yscale("log")
    ax_sharp.set_yscale("log")
    plain_log_axis(ax_sharp.yaxis)
    for ax in axes[0]:
        ax.set_xlabel("gradient-descent step (dimensionless)")
    ax_loss.set_ylabel("training loss ½‖f − y‖² (dimensionless)")
    ax_sharp.set_ylabel("sharpness λ_max of the Hessian (dimensionless)")
    ax_ratio.set_ylabel("η λ_max / 2 (dimensionless)")
    ax_loss.set_title("training loss")
    ax_sharp.set_title("sharpness; dashed: 2/η")
    ax_ratio.set_title("sharpness in units of 2/η; dashed: the edge")
    handles += [Line2D([], [], color="0.3", linestyle="--", label="theory: stability threshold λ_max = 2/η"),
                Patch(facecolor="0.6", alpha=0.35, label=CI_LABEL)]
    fig.legend(handles=handles, loc="outside lower center", ncol=min(len(handles), 3), fontsize=8.5, frameon=False)
    a = metrics.attrs
    fig.suptitle("Full-batch gradient descent at the edge of stability: progressive sharpening up to 2/η\n"
                 f"tanh MLP {a.get('widths', '')}, square loss, {a.get('n_train', '?')} digits, "
                 f"{metrics.sizes['seed']} seeds", fontsize=11)
    fig.phaselab_metadata = provenance(metrics)
    return fig
