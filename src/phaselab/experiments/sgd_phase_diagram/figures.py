"""Figures of the sgd_phase_diagram experiment: the phase diagram of online SGD in two-layer erf committee machines.

All functions take the two xarray Datasets written by the pipeline
(``results/<experiment>/metrics.nc`` and ``results/<experiment>/theory.nc``)
and return a :class:`matplotlib.figure.Figure`; :func:`save` writes a figure
to PNG atomically.

Conventions (Veiga, Stephan, Loureiro, Krzakala, Zdeborova, NeurIPS 2022):
width ``p = round(d**kappa)``, learning rate ``gamma = gamma0 * d**(-delta)``,
``eta = gamma / p``, time ``t = steps / d`` and excess population risk ``R``
(dimensionless).  Phases by ``kappa + delta``: ``> 0`` perfect learning,
``= 0`` Saad-Solla, ``(-1/2, 0)`` noise dominated, ``<= -1/2`` no ODE limit.

Statistics used throughout:

* a member (one seed of one cell) is *diverged* when ``status == "diverged"``
  or ``diverged_at`` is finite; diverged members are excluded from every
  simulation mean, spread and fit;
* simulation spread is the 95 % Student-t interval of the mean over the non-diverged seeds;
* ODE curves are the mean over *all* seeds where the ODE was computed (the ODE
  itself never diverges, it only depends on each seed's initial order
  parameters).
"""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.cm as mcm  # noqa: E402
import matplotlib.colors as mcolors  # noqa: E402
import matplotlib.patheffects as mpe  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import xarray as xr  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402
from matplotlib.patches import Patch, Rectangle  # noqa: E402

from phaselab.plots import (  # noqa: E402
    LINE_TOL,
    decode,
    empty_panel,
    fit_slope,
    fmt,
    new_figure,
    provenance,
    seed_stats,
    sel_cell,
)

RISK_LABEL = "final excess risk R (dimensionless)"
KAPPA_LABEL = "width exponent κ (p = d^κ)"
DELTA_LABEL = "learning-rate exponent δ (γ = γ0 d^−δ)"
TIME_LABEL = "time t = steps/d (dimensionless)"
CURVE_RISK_LABEL = "excess risk R(t) (dimensionless)"
D_LABEL = "input dimension d (dimensionless)"

ALL_DIVERGED_COLOR = "0.55"
NO_DATA_HATCH = "////"
CMAP = "viridis"

PHASE_NOTE = (
    "κ+δ > 0: perfect learning  |  κ+δ = 0: Saad–Solla  |  "
    "−½ < κ+δ < 0: noise dominated  |  κ+δ ≤ −½: no ODE limit"
)
# the theory drawn for each cell (theory.nc ``theory_regime``), as a short code in the cell's corner
REGIME_CODES = {
    "Saad-Solla ODE": ("SS", "Saad–Solla ODE"),
    "ODE at the cell's eta (perfect learning)": ("PL", "ODE at the cell's η (R → c·η·Δ → 0)"),
    "finite-d ODE and d->inf orange ODE": ("OR", "finite-d ODE + d→∞ orange ODE"),
    "no ODE limit": ("–", "no ODE limit, no theory curve"),
    "ODE not computed (p > max_width)": ("W", "p > theory.max_width: ODE not computed"),
}


# --------------------------------------------------------------------------- #
# helpers
# --------------------------------------------------------------------------- #
CAPPED_MARKER = "s"
CAPPED_LABEL = "run capped by max_time before t = time/η (not yet asymptotic)"


def _sorted(ds: xr.Dataset | None) -> xr.Dataset | None:
    if ds is None:
        return None
    dims = [k for k in ("d", "kappa", "delta", "seed", "time") if k in ds.dims and k in ds.coords]
    return ds.sortby(dims) if dims else ds


def _member_masks(metrics: xr.Dataset) -> tuple[xr.DataArray, xr.DataArray]:
    """Boolean DataArrays ``(ok, diverged)`` over (d, kappa, delta, seed)."""
    ref = metrics["final_risk"]
    if "status" in metrics:
        st = metrics["status"]
        vals = np.vectorize(decode, otypes=[object])(st.values) if st.size else st.values
        status = xr.DataArray(np.asarray(vals, dtype=object), dims=st.dims, coords=st.coords)
        div = status == "diverged"
        ok = status == "ok"
    else:
        div = xr.zeros_like(ref, dtype=bool)
        ok = xr.ones_like(ref, dtype=bool)
    if "diverged_at" in metrics:
        div = div | np.isfinite(metrics["diverged_at"])
    ok = ok & ~div
    ok, div, _ = xr.broadcast(ok, div, ref)
    return ok.astype(bool), div.astype(bool)


def _capped(metrics: xr.Dataset) -> xr.DataArray:
    """Cells whose run was cut by max_time before reaching its asymptotic regime (False if not recorded)."""
    if "capped" not in metrics:
        return xr.zeros_like(metrics["eta"], dtype=bool)
    return metrics["capped"].astype(bool)


def _edges(v) -> np.ndarray:
    """Cell edges so that cells are centred at the (sorted) grid values."""
    v = np.asarray(v, dtype=float)
    if v.size == 1:
        return np.array([v[0] - 0.25, v[0] + 0.25])
    mid = 0.5 * (v[1:] + v[:-1])
    return np.concatenate([[v[0] - (mid[0] - v[0])], mid, [v[-1] + (v[-1] - mid[-1])]])


def _title_context(metrics: xr.Dataset) -> str:
    a = metrics.attrs
    parts = []
    if "experiment" in a:
        parts.append(f"experiment {a['experiment']}")
    if "teacher_k" in a:
        parts.append(f"teacher k = {a['teacher_k']}")
    if "noise" in a:
        parts.append(f"Δ = {fmt(a['noise'])}")
    if "gamma0" in a:
        parts.append(f"γ0 = {fmt(a['gamma0'])}")
    return ", ".join(parts)


def _d_colors(n: int):
    cmap = plt.get_cmap("plasma")
    if n == 1:
        return [cmap(0.15)]
    return [cmap(x) for x in np.linspace(0.05, 0.8, n)]


def _darken(color, amount: float = 0.45):
    r, g, b = mcolors.to_rgb(color)
    return (r * (1 - amount), g * (1 - amount), b * (1 - amount))


def _cell_colors(n: int):
    if n <= 10:
        cmap = plt.get_cmap("tab10")
        return [cmap(i) for i in range(n)]
    if n <= 20:
        cmap = plt.get_cmap("tab20")
        return [cmap(i) for i in range(n)]
    cmap = plt.get_cmap("viridis")
    return [cmap(x) for x in np.linspace(0.0, 0.95, n)]


# --------------------------------------------------------------------------- #
# phase diagram
# --------------------------------------------------------------------------- #
def phase_diagram(metrics: xr.Dataset, theory: xr.Dataset | None = None) -> Figure:
    """Heatmap of the seed-mean final excess risk over the (κ, δ) grid, one panel per d.

    * colour: mean of ``final_risk`` over non-diverged seeds, ``LogNorm`` shared by all
      panels with vmin/vmax = min/max of the finite positive seed means;
    * '×' marker with an ``n/N`` annotation: cell where n of N seeds diverged
      (gid ``"diverged"``, data = the cells' (κ, δ));
    * grey cell (gid ``"all-diverged"``): every seed diverged, no mean exists;
    * white hatched cell (gid ``"no-data"``): no finite positive mean for another reason;
    * lines κ+δ = 0 (gid ``"kappa+delta=0"``) and κ+δ = −½ (gid ``"kappa+delta=-1/2"``).

    ``theory`` is accepted for a uniform signature; the phase boundaries are
    drawn from their definition and do not need it.
    """
    metrics = _sorted(metrics)
    ok, div = _member_masks(metrics)
    n_seed = int(metrics.sizes.get("seed", 1))
    order = ("d", "delta", "kappa")
    fr = metrics["final_risk"].where(ok)
    fr_vals = fr.transpose(*order, "seed").values.astype(float)
    mean, _, _, _ = seed_stats(fr_vals, axis=-1)
    n_div = div.sum("seed").transpose(*order).values.astype(int)
    capped = _capped(metrics).transpose(*order).values

    ds_ = metrics["d"].values
    kappas = metrics["kappa"].values.astype(float)
    deltas = metrics["delta"].values.astype(float)
    ke, de = _edges(kappas), _edges(deltas)
    regimes = None
    if theory is not None and "theory_regime" in theory:
        reg = _sorted(theory)["theory_regime"].transpose(*order)
        regimes = np.vectorize(decode, otypes=[object])(reg.values) if reg.size else reg.values

    good = np.isfinite(mean) & (mean > 0)
    if good.any():
        vmin, vmax = float(mean[good].min()), float(mean[good].max())
        if vmin == vmax:  # degenerate colour range: widen symmetrically in log
            vmin, vmax = vmin / 2.0, vmax * 2.0
    else:
        vmin, vmax = 1e-3, 1.0
    norm = mcolors.LogNorm(vmin=vmin, vmax=vmax)
    # never paint NaN: masked cells are transparent, special cells get explicit patches
    cmap = plt.get_cmap(CMAP).with_extremes(bad=(0, 0, 0, 0))

    nd = max(len(ds_), 1)
    fig, axes = new_figure(nd, panel_w=4.0, panel_h=4.0, extra_w=1.2 + (1.6 if nd < 2 else 0.0),
                            extra_h=1.3 + (1.0 if nd < 2 else 0.0), sharey=True)
    axes = axes[0]

    any_partial = any_all = any_nodata = False
    for k, d in enumerate(ds_):
        ax = axes[k]
        m = np.ma.masked_where(~good[k], mean[k])
        ax.pcolormesh(ke, de, m, norm=norm, cmap=cmap, shading="flat", gid="heatmap",
                      edgecolors=(1, 1, 1, 0.6), linewidth=0.4)

        div_pts, div_txt = [], []
        for i, dl in enumerate(deltas):
            for j, kp in enumerate(kappas):
                x0, x1, y0, y1 = ke[j], ke[j + 1], de[i], de[i + 1]
                if not good[k, i, j]:
                    all_div = n_div[k, i, j] >= n_seed and n_seed > 0
                    if all_div:
                        any_all = True
                        ax.add_patch(Rectangle((x0, y0), x1 - x0, y1 - y0,
                                               facecolor=ALL_DIVERGED_COLOR, edgecolor="white",
                                               linewidth=0.5, gid="all-diverged"))
                    else:
                        any_nodata = True
                        ax.add_patch(Rectangle((x0, y0), x1 - x0, y1 - y0, facecolor="white",
                                               edgecolor="0.5", hatch=NO_DATA_HATCH,
                                               linewidth=0.5, gid="no-data"))
                if n_div[k, i, j] > 0:
                    if n_div[k, i, j] < n_seed:
                        any_partial = True
                    div_pts.append((kp, dl))
                    div_txt.append((kp + 0.3 * (x1 - x0), dl + 0.3 * (y1 - y0),
                                    f"{n_div[k, i, j]}/{n_seed}"))
        if div_pts:
            xs, ys = zip(*div_pts)
            ax.plot(xs, ys, linestyle="none", marker="X", markersize=9,
                    markerfacecolor="white", markeredgecolor="black", gid="diverged",
                    zorder=5)
            for x, y, s in div_txt:
                ax.text(x, y, s, ha="center", va="center", fontsize=7, zorder=6,
                        bbox=dict(boxstyle="round,pad=0.15", facecolor="white",
                                  edgecolor="none", alpha=0.8))

        if regimes is not None:
            for i in range(len(deltas)):
                for j in range(len(kappas)):
                    code = REGIME_CODES.get(regimes[k, i, j], ("?", ""))[0]
                    ax.text(ke[j] + 0.06 * (ke[j + 1] - ke[j]), de[i] + 0.06 * (de[i + 1] - de[i]), code,
                            ha="left", va="bottom", fontsize=6.5, color="black", zorder=6, gid="theory-regime",
                            bbox=dict(boxstyle="round,pad=0.1", facecolor="white", edgecolor="none", alpha=0.7))

        cap_pts = [(kp, dl) for i, dl in enumerate(deltas) for j, kp in enumerate(kappas) if capped[k, i, j]]
        if cap_pts:
            xs, ys = zip(*cap_pts)
            ax.plot(xs, ys, linestyle="none", marker=CAPPED_MARKER, markersize=6, markerfacecolor="none",
                    markeredgecolor="white", gid="capped", zorder=5)

        kx = np.array([ke[0], ke[-1]])
        stroke = [mpe.withStroke(linewidth=3.5, foreground="white")]
        ax.plot(kx, -kx, color="black", linewidth=1.8, path_effects=stroke,
                gid="kappa+delta=0", label="κ+δ = 0 (Saad–Solla line)", zorder=4)
        ax.plot(kx, -0.5 - kx, color="black", linewidth=1.8, linestyle="--",
                path_effects=stroke, gid="kappa+delta=-1/2",
                label="κ+δ = −½ (edge of the ODE limit)", zorder=4)
        ax.set_xlim(ke[0], ke[-1])
        ax.set_ylim(de[0], de[-1])
        if len(kappas) <= 12:
            ax.set_xticks(kappas, [fmt(v) for v in kappas])
        if len(deltas) <= 14:
            ax.set_yticks(deltas, [fmt(v) for v in deltas])
        ax.set_title(f"d = {int(d)}")
        ax.set_xlabel(KAPPA_LABEL)
        if k == 0:
            ax.set_ylabel(DELTA_LABEL)
        ax.set_gid(f"panel d={int(d)}")

    if len(ds_) == 0:
        empty_panel(axes[0], "no d values in this grid", KAPPA_LABEL, DELTA_LABEL)

    sm = mcm.ScalarMappable(norm=norm, cmap=cmap)
    cbar = fig.colorbar(sm, ax=list(axes), label=RISK_LABEL, shrink=0.95, pad=0.02)
    cbar.ax.set_gid("colorbar")

    handles = [
        Line2D([], [], color="black", linewidth=1.8, label="κ+δ = 0 (Saad–Solla line)"),
        Line2D([], [], color="black", linewidth=1.8, linestyle="--",
               label="κ+δ = −½ (edge of the ODE limit)"),
    ]
    if any_partial or any_all:
        handles.append(Line2D([], [], linestyle="none", marker="X", markersize=9,
                              markerfacecolor="white", markeredgecolor="black",
                              label="diverged (n/seeds); mean over the other seeds"))
    if capped.any():
        handles.append(Line2D([], [], linestyle="none", marker=CAPPED_MARKER, markersize=6,
                              markerfacecolor="none", markeredgecolor="black", label=CAPPED_LABEL))
    if any_all:
        handles.append(Patch(facecolor=ALL_DIVERGED_COLOR, edgecolor="white",
                             label="all seeds diverged (no mean)"))
    if any_nodata:
        handles.append(Patch(facecolor="white", edgecolor="0.5", hatch=NO_DATA_HATCH,
                             label="no finite positive result"))
    narrow = nd < 2
    note = PHASE_NOTE.replace("  |  −½", "\n−½") if narrow else PHASE_NOTE
    if regimes is not None:
        used = [c for c in REGIME_CODES if c in set(regimes.ravel())]
        note += "\ntheory drawn per cell (corner code): " + "  |  ".join(
            f"{REGIME_CODES[c][0]} {REGIME_CODES[c][1]}" for c in used)
    fig.legend(handles=handles, loc="outside lower center",
               ncol=1 if narrow else min(len(handles), 3),
               fontsize=8.5, title=note, title_fontsize=8.5, frameon=False)
    ctx = _title_context(metrics)
    fig.suptitle("Phase diagram of online SGD: seed-mean final excess risk"
                 + (f"\n{ctx}" if ctx else ""), fontsize=11)
    fig.phaselab_metadata = provenance(metrics)
    return fig


# --------------------------------------------------------------------------- #
# risk curves on the Saad-Solla line
# --------------------------------------------------------------------------- #
def _line_cells(metrics: xr.Dataset, predicate) -> list[tuple[float, float]]:
    cells = []
    for kp in metrics["kappa"].values.astype(float):
        for dl in metrics["delta"].values.astype(float):
            if predicate(kp, dl):
                cells.append((kp, dl))
    return cells


def risk_curves(metrics: xr.Dataset, theory: xr.Dataset | None = None) -> Figure:
    """R(t) on the κ+δ = 0 line: one panel per (κ, δ = −κ) cell, one colour per d; then one panel (gid
    ``"orange panel kappa=<κ> delta=<δ>"``) per cell of the orange region −½ < κ+δ < 0 that has theory.

    Simulation: mean over non-diverged seeds (solid, gid ``"sim:d=<d>"``) with a
    95 % CI band of the seed mean over the same seeds; ODE: mean of ``theory.ode_risk`` over all
    seeds where computed (dashed dark line, gid ``"ode:d=<d>"``; in the orange panels the full ODE at the
    cell's own η); d → ∞ orange ODE: mean of ``theory.orange_limit_risk`` (dotted, gid
    ``"orange-limit:d=<d>"``). Each panel's title names the theory drawn. ``time == 0``
    and non-positive / NaN values are not drawn (log-log axes).
    """
    metrics = _sorted(metrics)
    theory = _sorted(theory)
    cells = _line_cells(metrics, lambda k, d: abs(k + d) < LINE_TOL)
    limit_var = theory["orange_limit_risk"] if theory is not None and "orange_limit_risk" in theory else None
    orange = [] if limit_var is None else _line_cells(
        metrics, lambda k, d: -0.5 + LINE_TOL < k + d < -LINE_TOL
        and bool(np.isfinite(sel_cell(limit_var, kappa=k, delta=d).values).any()))
    ctx = _title_context(metrics)
    title = "Excess risk R(t) on the Saad–Solla line κ+δ = 0: simulation vs ODE"
    if orange:
        title += "; orange region −½ < κ+δ < 0: vs the finite-d ODE and the d → ∞ orange ODE"
    if ctx:
        title += f"\n{ctx}"

    if not cells and not orange:
        fig, axes = new_figure(1, panel_w=6.0, panel_h=4.0, extra_h=0.6)
        empty_panel(axes[0, 0], "no cells on the κ+δ=0 line in this grid",
                     TIME_LABEL, CURVE_RISK_LABEL)
        axes[0, 0].set_title("κ+δ = 0")
        fig.suptitle(title, fontsize=11)
        fig.phaselab_metadata = provenance(metrics)
        return fig

    ok, div = _member_masks(metrics)
    n_seed = int(metrics.sizes.get("seed", 1))
    ds_ = metrics["d"].values
    colors = _d_colors(len(ds_))
    time = metrics["time"].values.astype(float)
    tpos = time > 0

    panels = [(kp, dl, False) for kp, dl in cells] + [(kp, dl, True) for kp, dl in orange]
    ncols = min(len(panels), 3)
    nrows = int(np.ceil(len(panels) / ncols))
    fig, axes = new_figure(ncols, nrows, panel_w=4.6, panel_h=3.8, extra_h=1.0)
    flat = axes.ravel()
    ode_var = theory["ode_risk"] if theory is not None and "ode_risk" in theory else None
    any_ode = False

    for ax, (kp, dl, in_orange) in zip(flat, panels):
        widths, notes = [], []
        drew = False
        for k, d in enumerate(ds_):
            c = colors[k]
            r = sel_cell(metrics["risk"], d=d, kappa=kp, delta=dl)
            okm = sel_cell(ok, d=d, kappa=kp, delta=dl)
            ndv = int(sel_cell(div, d=d, kappa=kp, delta=dl).sum())
            if "width" in metrics:
                w = sel_cell(metrics["width"], d=d, kappa=kp)
                widths.append(f"{int(w)}" if w is not None and np.isfinite(w) else "?")
            if ndv:
                notes.append(f"d = {int(d)}: {ndv}/{n_seed} diverged, excluded")
            sim = r.transpose("seed", "time").values.astype(float)[okm.values.astype(bool)]
            mean, lo, hi, _ = seed_stats(sim[:, tpos], axis=0)
            t = time[tpos]
            valid = np.isfinite(mean) & (mean > 0)
            if valid.any():
                drew = True
                band = valid & np.isfinite(lo) & (lo > 0) & np.isfinite(hi)
                ax.fill_between(t, np.where(band, lo, np.nan), np.where(band, hi, np.nan),
                                where=band, color=c, alpha=0.25, linewidth=0,
                                gid=f"band:d={int(d)}")
                ax.plot(t[valid], mean[valid], color=c, linewidth=1.8, gid=f"sim:d={int(d)}")
            if ode_var is not None:
                o = sel_cell(ode_var, d=d, kappa=kp, delta=dl)
                if o is not None:
                    to = o["time"].values.astype(float)
                    op = to > 0
                    om, _, _, _ = seed_stats(o.transpose("seed", "time").values[:, op], axis=0)
                    ov = np.isfinite(om) & (om > 0)
                    if ov.any():
                        any_ode = drew = True
                        ax.plot(to[op][ov], om[ov], color=_darken(c), linestyle="--",
                                linewidth=1.6, gid=f"ode:d={int(d)}", zorder=4)
            if in_orange:
                o = sel_cell(limit_var, d=d, kappa=kp, delta=dl)
                to = o["time"].values.astype(float)
                op = to > 0
                om, _, _, _ = seed_stats(o.transpose("seed", "time").values[:, op], axis=0)
                ov = np.isfinite(om) & (om > 0)
                if ov.any():
                    drew = True
                    ax.plot(to[op][ov], om[ov], color=_darken(c), linestyle=":", linewidth=1.8,
                            gid=f"orange-limit:d={int(d)}", zorder=4)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel(TIME_LABEL)
        ax.set_ylabel(CURVE_RISK_LABEL)
        ptxt = f"; p = {', '.join(widths)}" if widths else ""
        which = "theory: finite-d ODE (--), d→∞ orange ODE (:)" if in_orange else "theory: Saad–Solla ODE (--)"
        ax.set_title(f"κ = {fmt(kp)}, δ = {fmt(dl)}{ptxt}\n{which}", fontsize=9.5)
        ax.set_gid(f"{'orange ' if in_orange else ''}panel kappa={kp:g} delta={dl:g}")
        if notes:
            ax.text(0.03, 0.03, "\n".join(notes), transform=ax.transAxes, fontsize=7.5,
                    va="bottom", ha="left",
                    bbox=dict(boxstyle="round,pad=0.2", facecolor="white", alpha=0.8,
                              edgecolor="0.7"))
        if not drew:
            ax.text(0.5, 0.5, "no finite risk values in this cell", ha="center",
                    va="center", transform=ax.transAxes)
    for ax in flat[len(panels):]:
        ax.set_visible(False)

    handles = [Line2D([], [], color=colors[k], linewidth=1.8,
                      label=f"simulation, d = {int(d)}") for k, d in enumerate(ds_)]
    handles.append(Patch(facecolor="0.6", alpha=0.35,
                         label="band: 95 % CI of the seed mean (Student t) over non-diverged seeds (line: seed mean)"))
    handles.append(Line2D([], [], color="black", linestyle="--", linewidth=1.6,
                          label="ODE (Saad & Solla), seed mean" + ("" if any_ode else " — not computed")
                          + ("; orange panels: the full ODE at the cell's own η" if orange else "")))
    if orange:
        handles.append(Line2D([], [], color="black", linestyle=":", linewidth=1.8,
                              label="d → ∞ orange ODE (noise terms only, M frozen), seed mean"))
    fig.legend(handles=handles, loc="outside lower center",
               ncol=2 if orange else min(len(handles), 4), fontsize=8.5, frameon=False)
    fig.suptitle(title, fontsize=11)
    fig.phaselab_metadata = provenance(metrics)
    return fig


# --------------------------------------------------------------------------- #
# asymptotic risk in the perfect-learning region
# --------------------------------------------------------------------------- #
def asymptotic_risk(metrics: xr.Dataset, theory: xr.Dataset | None = None) -> Figure:
    """Seed-mean final risk against d for every κ+δ > 0 cell, log-log.

    Filled markers + error bars (95 % CI of the seed mean (Student t) over non-diverged seeds), gid
    ``"sim:kappa=<κ>,delta=<δ>"``; ODE prediction (mean of ``ode_final_risk``
    over seeds) as open squares on dashed lines, gid ``"ode:..."``; for κ = 0
    cells a dotted guide of slope −δ (R∞ ∝ Δ·η, η ∝ d^−δ at fixed p) anchored at
    the cell's first finite point, gid ``"guide:..."``.  The least-squares
    slope of log R against log d is reported in each cell's legend entry.
    """
    metrics = _sorted(metrics)
    theory = _sorted(theory)
    cells = _line_cells(metrics, lambda k, d: k + d > LINE_TOL)
    ctx = _title_context(metrics)
    title = "Final excess risk against d in the perfect-learning region κ+δ > 0"
    if ctx:
        title += f"\n{ctx}"
    fig, axes = new_figure(1, panel_w=6.2, panel_h=4.6, extra_w=3.6, extra_h=0.6)
    ax = axes[0, 0]
    fig.suptitle(title, fontsize=11)
    fig.phaselab_metadata = provenance(metrics)
    if not cells:
        empty_panel(ax, "no cells with κ+δ > 0 in this grid", D_LABEL, RISK_LABEL)
        ax.set_title("κ+δ > 0")
        return fig

    ok, div = _member_masks(metrics)
    ds_ = metrics["d"].values.astype(float)
    capped = _capped(metrics)
    fr = metrics["final_risk"].where(ok & ~capped)
    ode_var = (theory["ode_final_risk"]
               if theory is not None and "ode_final_risk" in theory else None)
    colors = _cell_colors(len(cells))
    any_ode = any_guide = False
    cell_handles = []
    for c, (kp, dl) in zip(colors, cells):
        vals = sel_cell(fr, kappa=kp, delta=dl).transpose("d", "seed").values.astype(float)
        mean, lo, hi, _ = seed_stats(vals, axis=1)
        ndv = int(sel_cell(div, kappa=kp, delta=dl).sum())
        fin = np.isfinite(mean) & (mean > 0)
        tag = f"kappa={kp:g},delta={dl:g}"
        if fin.any():
            lo_f = np.where(np.isfinite(lo) & (lo > 0), lo, mean)
            hi_f = np.where(np.isfinite(hi), hi, mean)
            yerr = np.vstack([mean[fin] - lo_f[fin], hi_f[fin] - mean[fin]])
            eb = ax.errorbar(ds_[fin], mean[fin], yerr=yerr, color=c, marker="o", markersize=6,
                             linestyle="-", linewidth=1.4, capsize=3, zorder=3)
            eb.lines[0].set_gid(f"sim:{tag}")
        slope = fit_slope(ds_, mean)
        label = f"κ = {fmt(kp)}, δ = {fmt(dl)}: fitted slope "
        label += "n/a (< 2 d)" if not np.isfinite(slope) else fmt(round(slope, 2))
        if abs(kp) < LINE_TOL:
            label += f" (guide {fmt(-dl)})"
        if ndv:
            label += f"; {ndv} diverged run{'s' if ndv > 1 else ''} excluded"
        n_cap = int(sel_cell(capped, kappa=kp, delta=dl).sum())
        if n_cap:
            label += f"; {n_cap} d capped by max_time, left out"
        cell_handles.append(Line2D([], [], color=c, marker="o", linestyle="-", label=label))

        if ode_var is not None:
            o = sel_cell(ode_var.where(~capped), kappa=kp, delta=dl)
            if o is not None:
                om, _, _, _ = seed_stats(o.transpose("d", "seed").values, axis=1)
                ov = np.isfinite(om) & (om > 0)
                if ov.any():
                    any_ode = True
                    ax.plot(ds_[ov], om[ov], color=c, linestyle="--", linewidth=1.2,
                            marker="s", markersize=8, markerfacecolor="none",
                            gid=f"ode:{tag}", zorder=2)
        if abs(kp) < LINE_TOL and fin.any():
            any_guide = True
            i0 = int(np.argmax(fin))
            dx = ds_[i0:]
            ax.plot(dx, mean[i0] * (dx / ds_[i0]) ** (-dl), color=c, linestyle=":",
                    linewidth=1.6, gid=f"guide:{tag}", zorder=1)

    ax.set_xscale("log")
    ax.set_yscale("log")
    if len(ds_) <= 10:
        ax.set_xticks(ds_, [f"{int(v)}" for v in ds_])
        ax.minorticks_off()
    ax.set_xlabel(D_LABEL)
    ax.set_ylabel(RISK_LABEL)
    ax.set_title("seed mean, error bars: 95 % CI of the seed mean (Student t) over non-diverged seeds", fontsize=9)
    handles = list(cell_handles)
    handles.append(Line2D([], [], color="0.3", linestyle="--", marker="s", markerfacecolor="none",
                          label="ODE prediction (seed mean)" + ("" if any_ode else " — not computed")))
    if any_guide:
        handles.append(Line2D([], [], color="0.3", linestyle=":", linewidth=1.6,
                              label="slope −δ (κ = 0: R∞ ∝ Δη, η ∝ d^−δ)"))
    ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.02, 1.0), fontsize=8,
              frameon=False, borderaxespad=0.0)
    return fig


