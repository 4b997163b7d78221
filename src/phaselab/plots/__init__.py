"""Figures: shared helpers here, one module per experiment (phase_diagram, ...).

Every figure function takes the experiment's metrics and theory Datasets and returns a matplotlib Figure;
:func:`save` writes it to PNG atomically with the dataset's provenance in the PNG metadata. Seed statistics are
the mean and the 95 % Student-t interval of the mean (:func:`seed_stats`).
"""

from __future__ import annotations

import warnings
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import xarray as xr  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter  # noqa: E402

from phaselab.atomic import replacing  # noqa: E402

DPI = 120
LINE_TOL = 1e-9  # tolerance for "on a line" tests of grid values


def fmt(v: float) -> str:
    """Compact number with a typographic minus sign."""
    return f"{float(v):g}".replace("-", "−")

def decode(s) -> str:
    if isinstance(s, bytes):
        return s.decode()
    return str(s)

def seed_stats(values: np.ndarray, axis: int = 0):
    """nan-aware (mean, CI low, CI high, count) along ``axis``: the 95 % Student-t interval of the seed mean.

    On log axes an interval reaching 0 is clipped at the smallest seed value (CI_NOTE says so in the legends).
    """
    from scipy.stats import t as student_t

    values = np.asarray(values, dtype=float)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", category=RuntimeWarning)
        mean = np.nanmean(values, axis=axis)
        count = np.sum(np.isfinite(values), axis=axis)
        sem = np.nanstd(values, axis=axis, ddof=1) / np.sqrt(count)
        half = np.where(count > 1, student_t.ppf(0.975, np.maximum(count - 1, 1)) * sem, 0.0)
        lo, hi = mean - half, mean + half
        floor = np.nanmin(np.where(values > 0, values, np.nan), axis=axis) if values.shape[axis] else mean
    lo = np.where(lo > 0, lo, np.fmin(floor, mean))
    return mean, lo, hi, count

def provenance(metrics: xr.Dataset) -> dict[str, str]:
    """PNG metadata from a dataset's provenance attributes."""
    keys = ("experiment", "config_sha256", "phaselab_version", "git_revision",
            "torch_version", "device", "teacher_k", "noise", "gamma0")
    meta = {f"phaselab:{k}": str(metrics.attrs[k]) for k in keys if k in metrics.attrs}
    return meta

def new_figure(ncols: int, nrows: int = 1, panel_w: float = 4.4, panel_h: float = 3.9,
                extra_w: float = 0.0, extra_h: float = 0.0, sharey: bool = False):
    fig, axes = plt.subplots(
        nrows, ncols, figsize=(panel_w * ncols + extra_w, panel_h * nrows + extra_h),
        squeeze=False, layout="constrained", sharey=sharey,
    )
    return fig, axes

def empty_panel(ax, message: str, xlabel: str, ylabel: str) -> None:
    ax.text(0.5, 0.5, message, ha="center", va="center", transform=ax.transAxes,
            fontsize=11, wrap=True,
            bbox=dict(boxstyle="round", facecolor="0.95", edgecolor="0.6"))
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_gid("empty-panel")

def sel_cell(da: xr.DataArray, **idx) -> xr.DataArray | None:
    """Select by coordinate value with a float tolerance; None when absent."""
    try:
        return da.sel({k: v for k, v in idx.items() if k in da.dims},
                      method="nearest", tolerance=1e-9)
    except (KeyError, ValueError):
        return None

def fit_slope(x: np.ndarray, y: np.ndarray) -> float:
    m = np.isfinite(x) & np.isfinite(y) & (x > 0) & (y > 0)
    if np.unique(x[m]).size < 2:
        return float("nan")
    return float(np.polyfit(np.log(x[m]), np.log(y[m]), 1)[0])


CI_LABEL = "band: 95 % CI of the seed mean (Student t), line: seed mean"


def colors(n: int, cmap: str = "viridis"):
    return [plt.get_cmap(cmap)(v) for v in np.linspace(0.0, 0.85, max(n, 1))][:n]


def ok_members(metrics: xr.Dataset) -> xr.DataArray:
    """True where a member did not diverge."""
    status = xr.apply_ufunc(np.vectorize(decode, otypes=[object]), metrics["status"])
    return status == "ok"


def plain_log_axis(axis) -> None:
    """Log-scale ticks at 1, 2, 3, 5 × 10^k written as plain numbers, minor ticks unlabelled."""
    axis.set_major_locator(LogLocator(subs=(1.0, 2.0, 3.0, 5.0)))
    axis.set_major_formatter(FuncFormatter(lambda v, _: fmt(v)))
    axis.set_minor_formatter(NullFormatter())


def mean_band(ax, x, samples, color, label=None, gid=None, **line):
    """Seed mean of ``samples`` (seed, len(x)) with its 95 % CI band; NaN (diverged) samples are left out."""
    mean, lo, hi, _ = seed_stats(np.asarray(samples, dtype=float), axis=0)
    x = np.asarray(x, dtype=float)
    ax.fill_between(x, lo, hi, color=color, alpha=0.22, linewidth=0)
    ax.plot(x, mean, color=color, label=label, gid=gid, **{"linewidth": 1.6, **line})
    return mean


def save(fig: Figure, path, dpi: int = DPI, metadata: dict | None = None) -> Path:
    """Write ``fig`` as PNG to ``path`` atomically; PNG text metadata carries the dataset's provenance."""
    from phaselab import __version__

    meta = {"Software": f"phaselab {__version__} / matplotlib {matplotlib.__version__}"}
    meta.update(getattr(fig, "phaselab_metadata", {}) or {})
    meta.update({str(k): str(v) for k, v in (metadata or {}).items()})
    with replacing(path) as tmp:
        fig.savefig(tmp, format="png", dpi=dpi, metadata=meta)
    plt.close(fig)
    return Path(path)


# ------------------------------------------------------ shared by the perceptron figures (capacity, learning_curves)
ALPHA_LABEL = "load α = P/N (dimensionless)"


def wilson(k, n, z: float = 1.959964):
    """Fraction k/n and its Wilson score interval (NaN where n = 0)."""
    k, n = np.asarray(k, dtype=float), np.asarray(n, dtype=float)
    with np.errstate(invalid="ignore", divide="ignore"):
        p = k / n
        centre = (p + z * z / (2 * n)) / (1 + z * z / n)
        half = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return p, centre - half, centre + half


def decoded(metrics: xr.Dataset, name: str = "status") -> np.ndarray:
    """A string variable of ``metrics`` as an array of str (bytes decoded)."""
    st = metrics[name]
    return np.vectorize(decode, otypes=[object])(st.values) if st.size else st.values


def errorbar(ax, x, mean, lo, hi, **kw):
    """Points with asymmetric error bars from an interval [lo, hi]; NaN means are left out."""
    ok = np.isfinite(mean)
    yerr = np.vstack([mean[ok] - lo[ok], hi[ok] - mean[ok]])
    return ax.errorbar(np.asarray(x)[ok], mean[ok], yerr=np.clip(yerr, 0, None), linestyle="none", capsize=2.5,
                       **kw)
