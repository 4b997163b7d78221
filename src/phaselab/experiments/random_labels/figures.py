"""Figures of the random_labels experiment (Zhang et al. 2017; Bartlett, Foster & Telgarsky 2017).

- ``random_label_training``: training loss against steps for every variant;
- ``random_label_fit_time``: steps until every training label is fitted, against the corruption q;
- ``random_label_test_error``: test error on clean labels against q, beside the interpolating 1-NN reference;
- ``normalised_margins``: the distribution of normalised margins per variant and the spectral complexity R_A.

Seed statistics: mean and 95 % Student-t interval over non-diverged seeds (:func:`phaselab.plots.seed_stats`).
"""

from __future__ import annotations

import numpy as np
import xarray as xr
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from phaselab.plots import fmt, new_figure, provenance, seed_stats

TASK_TITLES = {"digits": "digits (scikit-learn, 8×8)", "teacher": "synthetic teacher task"}
INPUT_STYLES = {"shuffled_pixels": ("C3", "--", "D", "shuffled pixels (true labels)"),
                "gaussian": ("C1", ":", "X", "Gaussian inputs (labels independent of inputs)")}
CI_NOTE = "seed mean, 95 % CI of the seed mean (Student t)"


def _q_colors(qs):
    import matplotlib.pyplot as plt

    cmap = plt.get_cmap("viridis")
    return {q: cmap(0.9 * q) for q in qs}


def _styles(metrics: xr.Dataset):
    """(variant, colour, linestyle, marker, label) of every variant."""
    qs = metrics["corruption"].values
    colors = _q_colors(sorted(set(qs[metrics["inputs"].values == "original"])))
    out = []
    for v, inputs, q in zip(metrics["variant"].values, metrics["inputs"].values, qs):
        if inputs == "original":
            label = ("true labels" if q == 0 else "random labels (q = 1)" if q == 1
                     else f"labels corrupted, q = {fmt(q)}")
            out.append((str(v), colors[q], "-", "o", label))
        else:
            c, ls, m, label = INPUT_STYLES[str(inputs)]
            out.append((str(v), c, ls, m, label))
    return out


def _ok(metrics):
    return metrics["status"] == "ok"


def _title(metrics: xr.Dataset, what: str) -> str:
    a = metrics.attrs
    return (f"{what}\ntwo-layer ReLU network, width {a['width']}, n = {a['n_train']} training samples, {a['loss']} "
            f"loss, full-batch GD at lr {fmt(a['lr'])}, {metrics.sizes['seed']} seeds")


def _original(metrics: xr.Dataset) -> xr.Dataset:
    keep = metrics["inputs"].values == "original"
    return metrics.isel(variant=np.flatnonzero(keep)).sortby("corruption")


# --------------------------------------------------------------------------------------------------------------
def random_label_training(metrics: xr.Dataset, theory: xr.Dataset) -> Figure:
    """Training loss against steps, one panel per task, one line per variant (band: 95 % CI over seeds); the
    dotted line is the loss of the constant prediction (log C for the cross-entropy)."""
    tasks = [str(t) for t in metrics["task"].values]
    fig, axes = new_figure(len(tasks), panel_w=5.2, panel_h=4.2, extra_h=1.2, sharey=True)
    steps = metrics["step"].values
    styles = _styles(metrics)
    for ax, task in zip(axes[0], tasks):
        ok = _ok(metrics).sel(task=task)
        for v, c, ls, _, label in styles:
            vals = metrics["train_loss"].sel(task=task, variant=v).where(ok.sel(variant=v))
            mean, lo, hi, _ = seed_stats(vals.transpose("seed", "step").values, axis=0)
            ax.fill_between(steps, lo, hi, color=c, alpha=0.2, linewidth=0)
            ax.plot(steps, mean, color=c, linestyle=ls, linewidth=1.6, label=label, gid=f"sim:{task}:{v}")
        ax.axhline(float(theory["chance_loss"].sel(task=task)), color="black", linestyle=":", linewidth=1.2,
                   gid=f"chance:{task}")
        ax.set_yscale("log")
        ax.set_xlabel("gradient-descent step (steps)")
        ax.set_title(TASK_TITLES.get(task, task), fontsize=10)
    axes[0, 0].set_ylabel("training loss (dimensionless)")
    handles = [Line2D([], [], color=c, linestyle=ls, linewidth=1.6, label=label) for _, c, ls, _, label in styles]
    handles.append(Line2D([], [], color="black", linestyle=":", label="loss of the constant prediction (log C)"))
    fig.legend(handles=handles, loc="outside lower center", ncol=3, fontsize=8, frameon=False,
               title=f"lines: {CI_NOTE} (bands)", title_fontsize=8)
    fig.suptitle(_title(metrics, "Fitting random labels: training loss against steps (Zhang et al. 2017)"),
                 fontsize=10)
    fig.phaselab_metadata = provenance(metrics)
    return fig


def _errorbar(ax, x, vals, color, marker, label=None, gid=None, linestyle="-"):
    mean, lo, hi, _ = seed_stats(vals, axis=-1)
    ok = np.isfinite(mean)
    if not ok.any():
        return mean
    eb = ax.errorbar(np.asarray(x)[ok], mean[ok], yerr=[(mean - lo)[ok], (hi - mean)[ok]], color=color,
                     marker=marker, linestyle=linestyle, capsize=3, markersize=6, label=label)
    eb.lines[0].set_gid(gid)
    return mean


def random_label_fit_time(metrics: xr.Dataset, theory: xr.Dataset) -> Figure:
    """Steps until every training label is fitted against q (original inputs), one panel per task; the input
    variants are drawn as horizontal lines. Runs that never fit are left out of the mean and counted."""
    tasks = [str(t) for t in metrics["task"].values]
    fig, axes = new_figure(len(tasks), panel_w=5.0, panel_h=4.0, extra_h=1.0)
    orig = _original(metrics)
    n_seeds = metrics.sizes["seed"]
    for ax, task in zip(axes[0], tasks):
        fit = orig["steps_to_fit"].sel(task=task).where(_ok(orig).sel(task=task))
        q = orig["corruption"].values
        _errorbar(ax, q, fit.transpose("variant", "seed").values, "C0", "o", gid=f"sim:{task}")
        never = (fit.isnull() & _ok(orig).sel(task=task)).sum("seed").values
        for qi, k in zip(q, never):
            if k:
                ax.annotate(f"{k}/{n_seeds} not fitted", (qi, 0.02), xycoords=("data", "axes fraction"),
                            ha="center", fontsize=7, color="C3")
        for v, inputs in zip(metrics["variant"].values, metrics["inputs"].values):
            if inputs == "original":
                continue
            c, ls, _, _ = INPUT_STYLES[str(inputs)]
            vals = metrics["steps_to_fit"].sel(task=task, variant=v).where(_ok(metrics).sel(task=task, variant=v))
            mean, lo, hi, _ = seed_stats(vals.values[None], axis=-1)
            if np.isfinite(mean[0]):
                ax.axhline(mean[0], color=c, linestyle=ls, linewidth=1.3, gid=f"sim:{task}:{v}")
                ax.axhspan(lo[0], hi[0], color=c, alpha=0.12, linewidth=0)
        ax.set_ylim(0, None)
        ax.set_xlabel("label-corruption probability q (dimensionless)")
        ax.set_title(TASK_TITLES.get(task, task), fontsize=10)
    axes[0, 0].set_ylabel("steps to fit every training label (steps)")
    handles = [Line2D([], [], color="C0", marker="o", label="corrupted labels, original inputs")]
    handles += [Line2D([], [], color=c, linestyle=ls, label=label) for inputs, (c, ls, _, label)
                in INPUT_STYLES.items() if inputs in metrics["inputs"].values]
    fig.legend(handles=handles, loc="outside lower center", ncol=3, fontsize=8, frameon=False,
               title=f"{CI_NOTE}; resolution: one checkpoint. No closed-form theory: Zhang et al. find a "
                     "constant-factor slowdown", title_fontsize=8)
    fig.suptitle(_title(metrics, "Time to fit: first checkpoint with zero training error"), fontsize=10)
    fig.phaselab_metadata = provenance(metrics)
    return fig


def random_label_test_error(metrics: xr.Dataset, theory: xr.Dataset) -> Figure:
    """Final test error on clean labels against q, one panel per task, beside the interpolating 1-NN reference
    ε(q) = 1 − (1 − ε₀)(1 − q(C − 1)/C) − ε₀q/C and the chance level 1 − 1/C; input variants as markers at q = 0."""
    tasks = [str(t) for t in metrics["task"].values]
    fig, axes = new_figure(len(tasks), panel_w=5.0, panel_h=4.0, extra_h=1.0, sharey=True)
    orig = _original(metrics)
    final = metrics["test_error"].isel(step=-1).where(_ok(metrics))
    for ax, task in zip(axes[0], tasks):
        q = orig["corruption"].values
        _errorbar(ax, q, final.sel(task=task, variant=orig["variant"].values).transpose("variant", "seed").values,
                  "C0", "o", gid=f"sim:{task}")
        nn = theory["nn_test_error"].sel(task=task).mean("seed")
        ax.plot(theory["corruption"].values, nn.values, color="black", linewidth=1.5, gid=f"theory:{task}")
        ax.axhline(float(theory["chance_error"].sel(task=task)), color="0.5", linestyle=":", linewidth=1.2)
        for k, (v, inputs) in enumerate(zip(metrics["variant"].values, metrics["inputs"].values)):
            if inputs == "original":
                continue
            c, _, m, _ = INPUT_STYLES[str(inputs)]
            _errorbar(ax, [0.02 * (k + 1)], final.sel(task=task, variant=v).values[None], c, m, linestyle="none",
                      gid=f"sim:{task}:{v}")
        ax.set_xlabel("label-corruption probability q (dimensionless)")
        ax.set_ylim(0, 1)
        ax.set_title(TASK_TITLES.get(task, task), fontsize=10)
    axes[0, 0].set_ylabel("test error on clean labels (dimensionless)")
    handles = [Line2D([], [], color="C0", marker="o", label="network, corrupted labels"),
               Line2D([], [], color="black", label="interpolating 1-NN: 1 − (1 − ε₀)(1 − q(C−1)/C) − ε₀q/C"),
               Line2D([], [], color="0.5", linestyle=":", label="chance 1 − 1/C")]
    handles += [Line2D([], [], color=c, marker=m, linestyle="none", label=label) for inputs, (c, _, m, label)
                in INPUT_STYLES.items() if inputs in metrics["inputs"].values]
    fig.legend(handles=handles, loc="outside lower center", ncol=2, fontsize=8, frameon=False,
               title=f"{CI_NOTE}; ε₀: 1-NN error with clean labels on the same split", title_fontsize=8)
    fig.suptitle(_title(metrics, "Generalisation after fitting corrupted labels: test error against q"),
                 fontsize=10)
    fig.phaselab_metadata = provenance(metrics)
    return fig


def normalised_margins(metrics: xr.Dataset, theory: xr.Dataset) -> Figure:
    """Top: density of the normalised training margins margin/(R_A‖X‖_F/n), pooled over seeds, per variant.
    Bottom: the spectral complexity R_A against q (original inputs), input variants as horizontal lines."""
    tasks = [str(t) for t in metrics["task"].values]
    fig, axes = new_figure(len(tasks), 2, panel_w=5.2, panel_h=3.6, extra_h=1.2)
    styles = _styles(metrics)
    ok = _ok(metrics)
    orig = _original(metrics)
    for k, task in enumerate(tasks):
        ax = axes[0, k]
        nm = metrics["normalised_margin"].sel(task=task).where(ok.sel(task=task))
        finite = nm.values[np.isfinite(nm.values)]
        if finite.size:
            lo, hi = np.percentile(finite, [0.5, 99.5])
            bins = np.linspace(lo, hi, 60)
            for v, c, ls, _, label in styles:
                vals = nm.sel(variant=v).values.ravel()
                vals = vals[np.isfinite(vals)]
                if vals.size:
                    dens, edges = np.histogram(vals, bins=bins, density=True)
                    ax.stairs(dens, edges, color=c, linestyle=ls, linewidth=1.5, label=label,
                              gid=f"sim:{task}:{v}")
        ax.axvline(0.0, color="0.6", linewidth=0.8)
        ax.set_xlabel("normalised margin (f(x)_y − max_{j≠y} f(x)_j) / (R_A‖X‖_F/n) (dimensionless)", fontsize=8)
        ax.set_ylabel("density (dimensionless)")
        ax.set_title(TASK_TITLES.get(task, task), fontsize=10)

        ax = axes[1, k]
        ra = orig["spectral_complexity"].sel(task=task).where(_ok(orig).sel(task=task))
        _errorbar(ax, orig["corruption"].values, ra.transpose("variant", "seed").values, "C0", "o",
                  gid=f"complexity:{task}")
        for v, inputs in zip(metrics["variant"].values, metrics["inputs"].values):
            if inputs == "original":
                continue
            c, ls, _, _ = INPUT_STYLES[str(inputs)]
            vals = metrics["spectral_complexity"].sel(task=task, variant=v).where(ok.sel(task=task, variant=v))
            ax.axhline(float(vals.mean()), color=c, linestyle=ls, linewidth=1.3)
        ax.set_yscale("log")
        ax.set_xlabel("label-corruption probability q (dimensionless)")
        ax.set_ylabel("spectral complexity R_A (dimensionless)")
    handles = [Line2D([], [], color=c, linestyle=ls, linewidth=1.5, label=label) for _, c, ls, _, label in styles]
    handles.append(Patch(facecolor="none", edgecolor="none",
                         label=f"reference matrices M_i = {metrics.attrs['margin_reference']}, ρ_i = 1"))
    fig.legend(handles=handles, loc="outside lower center", ncol=3, fontsize=8, frameon=False,
               title="top: margins on the training set w.r.t. the labels trained on, pooled over seeds; "
                     f"bottom: {CI_NOTE}", title_fontsize=8)
    fig.suptitle(_title(metrics, "Spectrally-normalised margins (Bartlett, Foster & Telgarsky 2017): "
                                 "random labels give smaller margins"), fontsize=10)
    fig.phaselab_metadata = provenance(metrics)
    return fig
