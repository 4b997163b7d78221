"""Figures of the sharpness experiment: flat vs sharp minima of SGD against B and η/B (Keskar et al. 2017)."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import xarray as xr  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402

from phaselab.plots import colors, fmt, new_figure, ok_members, plain_log_axis, provenance, seed_stats  # noqa: E402

MARKERS = "osD^vP*X"
CI_NOTE = ("error bars: 95 % CI of the seed mean (Student t); diverged members and members that did not reach the "
           "training-loss target left out")


def _errorbar(ax, x, samples, **kw):
    """Seed mean with its 95 % CI as error bars; samples (len(x), seed)."""
    mean, lo, hi, _ = seed_stats(np.asarray(samples, dtype=float), axis=1)
    yerr = np.vstack([mean - lo, hi - mean])
    return ax.errorbar(x, mean, yerr=np.where(np.isfinite(yerr), yerr, 0), capsize=3, **kw)


def _mlp(metrics: xr.Dataset, name: str) -> xr.DataArray:
    """Members that did not diverge and reached the training-loss target."""
    good = ok_members(metrics) & metrics["reached_target"].astype(bool)
    return metrics[name].where(good).transpose("lr", "batch_size", "seed")


def sharpness_vs_batch(metrics: xr.Dataset, theory: xr.Dataset) -> Figure:
    """At the training-loss target: sharpness λ_max (with 2/η), ε-sharpness, test error and generalisation gap
    against the batch size, one line per η."""
    fig, axes = new_figure(4, panel_w=4.2, panel_h=3.9, extra_h=0.8)
    batch = metrics["batch_size"].values.astype(float)
    lrs = metrics["lr"].values
    panels = [("sharpness", "sharpness λ_max at the target (dimensionless)", "top Hessian eigenvalue; dashed: 2/η"),
              ("eps_sharpness", f"ε-sharpness, ε = {fmt(metrics.attrs.get('epsilon', np.nan))} (percent)",
               "Keskar ε-sharpness; dotted: its first-order part"),
              ("test_error", "test error (dimensionless)", "test error"),
              ("generalisation_gap", "test − training error (dimensionless)", "generalisation gap")]
    handles = []
    for k, (color, lr) in enumerate(zip(colors(len(lrs)), lrs)):
        for ax, (name, _, _) in zip(axes[0], panels):
            _errorbar(ax, batch, _mlp(metrics, name).sel(lr=lr).values, color=color, marker=MARKERS[k % 8],
                      linewidth=1.5, gid=f"{name}:lr={lr:g}")
        first = seed_stats(_mlp(metrics, "eps_sharpness_first_order").sel(lr=lr).values, axis=1)[0]
        axes[0, 1].plot(batch, first, color=color, linestyle=":", linewidth=1.5, gid=f"first-order:lr={lr:g}")
        axes[0, 0].axhline(float(theory["stability_threshold"].sel(lr=lr)), color=color, linestyle="--",
                           linewidth=1.1, gid=f"2/eta:lr={lr:g}")
        handles.append(Line2D([], [], color=color, marker=MARKERS[k % 8], label=f"SGD, η = {fmt(lr)}"))
    for ax, (_, ylabel, title) in zip(axes[0], panels):
        ax.set_xscale("log", base=2)
        ax.set_xticks(batch, [str(int(b)) for b in batch])
        ax.set_xlabel("batch size B (samples)")
        ax.set_ylabel(ylabel)
        ax.set_title(title, fontsize=10)
    axes[0, 0].set_yscale("log")
    plain_log_axis(axes[0, 0].yaxis)
    handles.append(Line2D([], [], color="0.3", linestyle="--", label="theory: GD stability threshold 2/η"))
    handles.append(Line2D([], [], color="0.3", linestyle=":", label="first-order part 100 ε Σ|∂f|(|x|+1)/(1+f)"))
    fig.legend(handles=handles, loc="outside lower center", ncol=min(len(handles), 4), fontsize=8.5,
               frameon=False, title=CI_NOTE, title_fontsize=8.5)
    a = metrics.attrs
    fig.suptitle(f"Sharp and flat minima (Keskar et al. 2017): SGD with batch size B to training loss "
                 f"{fmt(a.get('target_loss', np.nan))}, tanh MLP {a.get('widths', '')}, square loss, "
                 f"{a.get('n_train', '?')} digits, {metrics.sizes['seed']} seeds", fontsize=11)
    fig.phaselab_metadata = provenance(metrics)
    return fig


def eta_over_b(metrics: xr.Dataset, theory: xr.Dataset) -> Figure:
    """Left: MLP sharpness and test error against η/B. Right: linear-regression excess loss against η/B with the
    exact theory."""
    fig, axes = new_figure(3, panel_w=5.0, panel_h=4.3, extra_h=0.5)
    ax_mlp, ax_err, ax_lin = axes[0]

    # MLP: every (B, η) point at its η/B, colour by B, marker by η
    batch, lrs = metrics["batch_size"].values, metrics["lr"].values
    handles = [Line2D([], [], color=color, linestyle=":", marker="o", label=f"B = {int(b)}")
               for color, b in zip(colors(len(batch), "plasma"), batch)]
    handles += [Line2D([], [], color="0.3", marker=MARKERS[k % 8], linestyle="none", label=f"η = {fmt(lr)}")
                for k, lr in enumerate(lrs)]
    for ax, name, ylabel in ((ax_mlp, "sharpness", "sharpness λ_max at the target (dimensionless)"),
                             (ax_err, "test_error", "test error at the target (dimensionless)")):
        values = _mlp(metrics, name)
        for color, b in zip(colors(len(batch), "plasma"), batch):
            _errorbar(ax, lrs / b, values.sel(batch_size=b).values, color=color, linestyle=":", marker="none",
                      linewidth=1.0)
            for k, lr in enumerate(lrs):
                mean = seed_stats(values.sel(batch_size=b, lr=lr).values[None], axis=1)[0]
                ax.plot([lr / b], mean, marker=MARKERS[k % 8], color=color, linestyle="none", markersize=7,
                        gid=f"mlp:{name}:B={int(b)},lr={lr:g}")
        ax.set_xscale("log")
        ax.set_xlabel("noise scale η/B (dimensionless)")
        ax.set_ylabel(ylabel)
    ax_mlp.set_yscale("log")
    plain_log_axis(ax_mlp.yaxis)
    ax_mlp.set_title("MLP on digits: sharpness against η/B", fontsize=10)
    ax_err.set_title("MLP on digits: test error against η/B\n(Jastrzębski: equal η/B → equal values)", fontsize=10)
    ax_mlp.legend(handles=handles, fontsize=8, frameon=False, ncol=2)

    # linear regression: simulation vs the exact η/B law
    ok = metrics["linreg_status"] == "ok"
    loss = metrics["excess_loss"].where(ok).transpose("linreg_batch_size", "eta_over_batch", "seed")
    ratios = metrics["eta_over_batch"].values
    lin_handles = []
    for color, b in zip(colors(metrics.sizes["linreg_batch_size"], "plasma"), metrics["linreg_batch_size"].values):
        _errorbar(ax_lin, ratios, loss.sel(linreg_batch_size=b).values, color=color, marker="o", linestyle="none",
                  markersize=6, gid=f"sim:B={int(b)}")
        ax_lin.plot(ratios, theory["excess_loss"].sel(linreg_batch_size=b).values, color=color, linestyle="--",
                    linewidth=1.3, gid=f"exact:B={int(b)}")
        lin_handles.append(Line2D([], [], color=color, marker="o", linestyle="--",
                                  label=f"B = {int(b)}: simulation (points), exact theory (dashed)"))
    grid = np.geomspace(ratios.min(), ratios.max(), 50)
    ax_lin.plot(grid, np.interp(grid, ratios, theory["excess_loss_small_eta"].values), color="black",
                linewidth=1.2, gid="small-eta")
    lin_handles.append(Line2D([], [], color="black", label="small η: η d σ² / (4B), a function of η/B only"))
    ax_lin.set_xscale("log")
    ax_lin.set_yscale("log")
    ax_lin.set_xticks(ratios, [fmt(r) for r in ratios], minor=False)
    ax_lin.minorticks_off()
    ax_lin.set_xlabel("noise scale η/B (dimensionless)")
    ax_lin.set_ylabel("stationary excess loss E[L − L*] (dimensionless)")
    a = metrics.attrs
    ax_lin.set_title(f"SGD on linear regression, d = {a.get('linreg_d', '?')}, "
                     f"σ² = {fmt(a.get('linreg_noise_variance', np.nan))}", fontsize=10)
    ax_lin.legend(handles=lin_handles, fontsize=8, frameon=False, loc="upper left")
    fig.suptitle("The SGD noise scale η/B: sharpness of the minimum reached and stationary excess loss\n" + CI_NOTE,
                 fontsize=11)
    fig.phaselab_metadata = provenance(metrics)
    return fig
