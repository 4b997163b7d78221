"""Figures of the sgd_stability experiment (Liu, Papailiopoulos & Achlioptas 2020; Hardt, Recht & Singer 2016)."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import xarray as xr  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402
from matplotlib.patches import Patch  # noqa: E402

from phaselab.plots import CI_LABEL, fmt, mean_band, new_figure, ok_members, provenance, seed_stats  # noqa: E402

INIT_COLORS = {"random": "tab:blue", "pretrained": "tab:red"}
INIT_LABELS = {"random": "random initialisation", "pretrained": "pretrained on random labels of noisy inputs"}
REG_LABELS = {"none": "no regularisation", "weight_decay": "weight decay λ = {wd}",
              "momentum": "heavy-ball momentum β = {beta}", "augmentation": "random shifts of ±{shift} pixel",
              "all": "weight decay λ = {wd}, momentum β = {beta}, shifts ±{shift}"}
MODEL_COLORS = {"logistic": "tab:green", "mlp": "tab:purple"}


def sgd_bad_minima(metrics: xr.Dataset, theory: xr.Dataset) -> Figure:
    """Rows the regularisations (none first), columns test and training accuracy against epochs, both
    initialisations."""
    rows = metrics.sizes["regularisation"]
    fig, axes = new_figure(2, rows, panel_w=5.0, panel_h=3.5 if rows <= 2 else 3.0, extra_h=0.8)
    ok = ok_members(metrics)
    epoch = metrics["epoch"].values
    a = metrics.attrs
    settings = {"wd": fmt(a.get("weight_decay", "?")), "beta": fmt(a.get("momentum", "?")),
                "shift": a.get("shift", "?")}
    chance = float(theory["chance_accuracy"])  # the epoch-0 accuracies sit there (below the axes' range)
    for row, reg in enumerate(metrics["regularisation"].values):
        reg = str(reg)
        finals = {}
        for init in metrics["init"].values:
            init = str(init)
            keep = ok.sel(init=init, regularisation=reg).values
            for col, var in enumerate(("test_accuracy", "train_accuracy")):
                samples = metrics[var].sel(init=init, regularisation=reg).transpose("seed", "epoch").values[keep]
                mean = mean_band(axes[row, col], epoch, samples, INIT_COLORS[init], gid=f"{var}:{init}:{reg}")
                if col == 0 and len(mean):
                    m, lo, hi, _ = seed_stats(samples[:, -1:], axis=0)
                    finals[init] = (float(m[0]), float(hi[0] - m[0]))
        for col in (0, 1):
            axes[row, col].set_xlabel("epoch (passes over the training set)")
        axes[row, 1].axhline(1.0, color="0.2", linestyle="--", linewidth=1.0)
        axes[row, 0].set_ylabel("test accuracy (fraction)")
        axes[row, 1].set_ylabel("training accuracy (fraction)")
        name = REG_LABELS[reg].format(**settings)
        if len(finals) == 2:
            gap = finals["random"][0] - finals["pretrained"][0]
            name_test = (f"{name}: test accuracy\nfinal: random {finals['random'][0]:.3f}, pretrained "
                         f"{finals['pretrained'][0]:.3f} (gap {gap:+.3f})")
        else:
            name_test = f"{name}: test accuracy"
        axes[row, 0].set_title(name_test, fontsize=9.5)
        axes[row, 1].set_title(f"{name}: training accuracy (true labels)", fontsize=9.5)
        lo = np.nanmin(metrics["test_accuracy"].sel(regularisation=reg).isel(epoch=slice(1, None)).values)
        if np.isfinite(lo):
            axes[row, 0].set_ylim(max(chance, lo - 0.05), 1.0)
            axes[row, 1].set_ylim(max(chance, lo - 0.05), 1.01)
    handles = [Line2D([], [], color=INIT_COLORS[i], linewidth=1.6, label=INIT_LABELS[i]) for i in INIT_COLORS]
    handles += [Line2D([], [], color="0.2", linestyle="--", label="zero training error (accuracy 1)"),
                Patch(facecolor="0.6", alpha=0.35, label=CI_LABEL)]
    fig.legend(handles=handles, loc="outside lower center", ncol=2, fontsize=8.5, frameon=False)
    widths = str(a.get("bad_minima_widths", "")).strip("[]").replace(", ", "-")
    closes = "weight decay" if rows <= 2 else "explicit regularisation"
    fig.suptitle(f"SGD reaches bad global minima from an adversarial initialisation; {closes} closes the gap\n"
                 f"ReLU MLP 64-{widths}-10, {a.get('bad_minima_n_train', '?')} digits, "
                 f"{metrics.sizes['seed']} seeds", fontsize=11)
    fig.phaselab_metadata = provenance(metrics)
    return fig


def _pairs(metrics: xr.Dataset, model: str, values: xr.DataArray) -> np.ndarray:
    keep = (metrics["pair_status"].sel(model=model).astype(str) == "ok").values
    return values.sel(model=model).transpose("pair", "stability_epoch").values[keep]


def sgd_stability_coupled(metrics: xr.Dataset, theory: xr.Dataset) -> Figure:
    """Coupled-run distance against epochs for logistic regression (with the bound) and the MLP (with the convex
    bound's form as a reference), and the generalisation gap of both with ε_stab."""
    fig, axes = new_figure(3, panel_w=4.6, panel_h=3.9, extra_h=0.9)
    ax_log, ax_mlp, ax_gap = axes[0]
    epoch = metrics["stability_epoch"].values
    later = epoch > 0
    L = float(theory["lipschitz"])
    for ax, model, ref, ref_label in (
            (ax_log, "logistic", "distance_bound", "theory: bound (2L/n) Σ α_t"),
            (ax_mlp, "mlp", "mlp_reference", "reference: (2L/n) Σ α_t at the MLP's α (not a bound: non-convex)")):
        d = _pairs(metrics, model, metrics["distance"])
        mean_band(ax, epoch[later], d[:, later], MODEL_COLORS[model], gid=f"distance:{model}",
                  label=f"‖w_T − w′_T‖, {model} (α = {fmt(metrics['step_size'].sel(model=model))}, {len(d)} pairs)")
        ax.plot(epoch[later], theory[ref].values[later], color="0.2", linestyle="--", label=ref_label,
                gid=f"{ref}:{model}")
        ax.set_yscale("log")
        ax.set_ylim(top=ax.get_ylim()[1] * 5)  # room for the legend above the curves
        ax.set_xlabel("epoch (passes over the training set)")
        ax.set_ylabel("coupled-run distance ‖w_T − w′_T‖ (dimensionless)")
        ax.legend(fontsize=7.5, loc="upper left")
    ax_log.set_title("logistic regression (convex, L-Lipschitz)", fontsize=10)
    ax_mlp.set_title("one-hidden-layer tanh MLP (non-convex)", fontsize=10)
    for model in ("logistic", "mlp"):
        gap = _pairs(metrics, model, metrics["test_loss"] - metrics["train_loss"])
        mean_band(ax_gap, epoch[later], gap[:, later], MODEL_COLORS[model], gid=f"gap:{model}",
                  label=f"test − training loss, {model}")
    ax_gap.plot(epoch[later], theory["stability_bound"].values[later], color="0.2", linestyle="--",
                label="theory: ε_stab = (2L²/n) Σ α_t (logistic)", gid="stability_bound")
    ax_gap.set_yscale("log")
    ax_gap.set_ylim(top=ax_gap.get_ylim()[1] * 5)
    ax_gap.set_xlabel("epoch (passes over the training set)")
    ax_gap.set_ylabel("generalisation gap R(w_T) − R_S(w_T) (nats)")
    ax_gap.set_title("train–test gap (logistic loss)", fontsize=10)
    ax_gap.legend(fontsize=7.5, loc="upper left")
    fig.legend(handles=[Patch(facecolor="0.6", alpha=0.35, label=CI_LABEL.replace("seed", "pair"))],
               loc="outside lower center", fontsize=8.5, frameon=False)
    a = metrics.attrs
    fig.suptitle("Uniform stability of SGD: coupled runs on training sets differing in one example "
                 "(same initialisation, same order)\n"
                 f"digit parity, unit-norm inputs (L = {L:.3g}), n = {a.get('stability_n_train', '?')}, "
                 f"B = {a.get('stability_batch_size', '?')}, MLP width {a.get('stability_width', '?')}", fontsize=11)
    fig.phaselab_metadata = provenance(metrics)
    return fig
