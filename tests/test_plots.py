"""Tests for phaselab.plots on small synthetic metrics/theory Datasets."""

from __future__ import annotations

import json
import os
import warnings
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

from phaselab import plots as common
from phaselab.experiments.sgd_phase_diagram import figures as plots

matplotlib = pytest.importorskip("matplotlib")
from matplotlib.colors import LogNorm  # noqa: E402
from matplotlib.patches import Rectangle  # noqa: E402

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"

D = [64, 256]
KAPPA = [0.0, 0.5]
DELTA = [-0.5, 0.0, 0.5]
SEEDS = [0, 1, 2]
TIME = np.concatenate([[0.0], np.logspace(-1, 2, 16)])
GAMMA0 = 0.5
NOISE = 1e-3

# (d, kappa, delta, seed) -> t at divergence
DIVERGED = {
    (64, 0.5, -0.5, 1): 3.0,  # one of three seeds, on the kappa+delta = 0 line
    (256, 0.0, -0.5, 0): 1.0,  # all seeds of this cell (kappa+delta = -1/2)
    (256, 0.0, -0.5, 1): 1.5,
    (256, 0.0, -0.5, 2): 2.0,
    (256, 0.0, 0.5, 2): 50.0,  # one seed in the kappa+delta > 0 region
}


def _phase(k: float, dl: float) -> str:
    s = k + dl
    if abs(s) < 1e-9:
        return "Saad-Solla"
    if s > 0:
        return "perfect learning"
    if s > -0.5:
        return "noise dominated"
    return "no ODE limit"


def make_datasets(d=D, kappa=KAPPA, delta=DELTA, seeds=SEEDS, time=TIME, diverged=DIVERGED):
    """Synthetic (metrics, theory) following the metrics.nc / theory.nc layout."""
    d, kappa, delta, seeds = (np.asarray(x) for x in (d, kappa, delta, seeds))
    nd, nk, ndl, ns, nt = len(d), len(kappa), len(delta), len(seeds), len(time)
    shape = (nd, nk, ndl, ns, nt)
    risk = np.full(shape, np.nan)
    ode = np.full(shape, np.nan)
    status = np.full(shape[:4], "ok", dtype=object)
    div_at = np.full(shape[:4], np.nan)
    width = np.maximum(1, np.rint(d[:, None].astype(float) ** kappa[None, :])).astype(int)
    horizon = np.where(kappa[None, :] > 0.25, 30.0, 100.0) * np.ones((nd, 1))
    lr = GAMMA0 * d[:, None, None].astype(float) ** (-delta[None, None, :]) * np.ones((nd, nk, ndl))
    eta = lr / width[:, :, None]
    for a, dv in enumerate(d):
        for b, kp in enumerate(kappa):
            inside = time <= horizon[a, b]
            for c, dl in enumerate(delta):
                for e, s in enumerate(seeds):
                    floor = 1e-3 * (dv / 64.0) ** (-dl) * (1.0 + kp) * (1.0 + 0.1 * s)
                    r = (0.5 + 0.05 * s) * np.exp(-time / (2.0 + kp)) + floor
                    key = (int(dv), float(kp), float(dl), int(s))
                    if key in diverged:
                        status[a, b, c, e] = "diverged"
                        div_at[a, b, c, e] = diverged[key]
                        r = 10.0 * r  # large before blowing up: must not enter the means
                        r[time > diverged[key]] = np.nan
                    r[~inside] = np.nan
                    risk[a, b, c, e] = r
                    feasible = abs(kp + dl) < 1e-9 or (kp == 0 and dl > 0)
                    if feasible:
                        o = 1.1 * (0.5 + 0.04 * s) * np.exp(-time / (2.0 + kp)) + 0.9 * floor
                        o[~inside] = np.nan
                        ode[a, b, c, e] = o
    last = np.array([np.flatnonzero(time <= h)[-1] for h in horizon.ravel()]).reshape(nd, nk)
    final = np.take_along_axis(risk, last[:, :, None, None, None] * np.ones(shape[:4] + (1,), int),
                               axis=4)[..., 0]
    ode_final = np.take_along_axis(ode, last[:, :, None, None, None] * np.ones(shape[:4] + (1,), int),
                                   axis=4)[..., 0]
    coords = dict(d=d, kappa=kappa, delta=delta, seed=seeds, time=time)
    dims5 = ("d", "kappa", "delta", "seed", "time")
    dims4 = dims5[:4]
    metrics = xr.Dataset(
        dict(
            risk=(dims5, risk),
            final_risk=(dims4, final),
            test_risk=(dims4, final * 1.01),
            status=(dims4, status.astype(str)),
            diverged_at=(dims4, div_at),
            width=(("d", "kappa"), width),
            lr=(("d", "kappa", "delta"), lr),
            eta=(("d", "kappa", "delta"), eta),
            horizon=(("d", "kappa"), horizon),
        ),
        coords=coords,
        attrs=dict(experiment="synthetic", config_json=json.dumps({"gamma0": GAMMA0}),
                   config_sha256="0" * 64, phaselab_version="0.1.0", git_revision="deadbeef",
                   torch_version="none", device="cpu", teacher_k=2, noise=NOISE, gamma0=GAMMA0),
    )
    phase = np.array([[_phase(k, dl) for dl in delta] for k in kappa], dtype=str)
    theory = xr.Dataset(
        dict(ode_risk=(dims5, ode), ode_final_risk=(dims4, ode_final),
             phase=(("kappa", "delta"), phase)),
        coords=coords, attrs=dict(metrics.attrs),
    )
    return metrics, theory


@pytest.fixture(scope="module")
def data():
    return make_datasets()


def _expected_seed_mean(metrics):
    """Seed mean of final_risk over non-diverged members, dims (d, kappa, delta)."""
    fr = metrics["final_risk"].transpose("d", "kappa", "delta", "seed").values.copy()
    div = metrics["status"].transpose("d", "kappa", "delta", "seed").values == "diverged"
    fr[div] = np.nan
    out = np.full(fr.shape[:3], np.nan)
    for idx in np.ndindex(out.shape):
        v = fr[idx][np.isfinite(fr[idx])]
        if v.size:
            out[idx] = v.mean()
    return out


def _check_png(path, min_bytes=15_000):
    assert path.exists()
    raw = path.read_bytes()
    assert raw[:8] == PNG_SIGNATURE
    assert len(raw) > min_bytes
    assert not [p for p in os.listdir(path.parent) if p.endswith(".tmp")]
    return raw


def _panel(fig, gid):
    found = [ax for ax in fig.axes if ax.get_gid() == gid]
    assert len(found) == 1, f"no single axes with gid {gid!r}: {[a.get_gid() for a in fig.axes]}"
    return found[0]


def _lines(ax, gid):
    return [ln for ln in ax.get_lines() if ln.get_gid() == gid]


def _all_text(fig):
    texts = [t.get_text() for t in fig.findobj(matplotlib.text.Text)]
    return "\n".join(texts)


# --------------------------------------------------------------------------- #
def test_phase_diagram(data, tmp_path):
    metrics, theory = data
    fig = plots.phase_diagram(metrics, theory)
    raw = _check_png(common.save(fig, tmp_path / "phase.png"))
    assert b"phaselab:experiment" in raw and b"synthetic" in raw

    expected = _expected_seed_mean(metrics)  # (d, kappa, delta)
    finite = expected[np.isfinite(expected)]
    # the all-diverged cell has no mean, the others do
    assert np.isnan(expected[1, 0, 0]) and finite.size == expected.size - 1

    norms = []
    for a, d in enumerate(D):
        ax = _panel(fig, f"panel d={d}")
        assert ax.get_title() == f"d = {d}"
        assert ax.get_xlabel() == "width exponent κ (p = d^κ)"
        meshes = [c for c in ax.collections if c.get_gid() == "heatmap"]
        assert len(meshes) == 1
        mesh = meshes[0]
        assert isinstance(mesh.norm, LogNorm)
        norms.append((mesh.norm.vmin, mesh.norm.vmax))
        # cell values: rows delta, columns kappa, masked where no mean
        arr = np.ma.masked_invalid(expected[a].T)
        got = np.ma.asarray(mesh.get_array()).reshape(len(DELTA), len(KAPPA))
        np.testing.assert_array_equal(np.ma.getmaskarray(got), np.ma.getmaskarray(arr))
        np.testing.assert_allclose(got.compressed(), arr.compressed(), rtol=1e-12)

        # phase boundaries
        l0 = _lines(ax, "kappa+delta=0")
        lh = _lines(ax, "kappa+delta=-1/2")
        assert len(l0) == 1 and len(lh) == 1
        x0, y0 = (np.asarray(v, float) for v in l0[0].get_data())
        xh, yh = (np.asarray(v, float) for v in lh[0].get_data())
        np.testing.assert_allclose(x0 + y0, 0.0, atol=1e-12)
        np.testing.assert_allclose(xh + yh, -0.5, atol=1e-12)
        assert x0.min() <= min(KAPPA) and x0.max() >= max(KAPPA)

    # one shared norm spanning exactly the finite seed means
    assert all(n == norms[0] for n in norms)
    assert norms[0][0] == pytest.approx(finite.min(), rel=1e-12)
    assert norms[0][1] == pytest.approx(finite.max(), rel=1e-12)

    # diverged markers: d=64 has the partially diverged Saad-Solla cell only
    ax64 = _panel(fig, "panel d=64")
    (m64,) = _lines(ax64, "diverged")
    assert sorted(zip(*m64.get_data())) == [(0.5, -0.5)]
    assert not [p for p in ax64.patches if p.get_gid() == "all-diverged"]
    ax256 = _panel(fig, "panel d=256")
    (m256,) = _lines(ax256, "diverged")
    assert sorted(zip(*m256.get_data())) == [(0.0, -0.5), (0.0, 0.5)]
    grey = [p for p in ax256.patches if p.get_gid() == "all-diverged"]
    assert len(grey) == 1 and isinstance(grey[0], Rectangle)
    cx = grey[0].get_x() + grey[0].get_width() / 2
    cy = grey[0].get_y() + grey[0].get_height() / 2
    assert (cx, cy) == pytest.approx((0.0, -0.5))
    texts = [t.get_text() for t in ax64.texts]
    assert "1/3" in texts
    assert "3/3" in [t.get_text() for t in ax256.texts]

    txt = _all_text(fig)
    assert "diverged (n/seeds)" in txt and "all seeds diverged" in txt
    assert "κ+δ = 0" in txt and "κ+δ = −½" in txt
    cbar = [ax for ax in fig.axes if ax.get_gid() == "colorbar"]
    assert len(cbar) == 1
    assert "final excess risk R (dimensionless)" in (cbar[0].get_ylabel() + cbar[0].get_xlabel())
    assert fig.get_suptitle()


def test_risk_curves(data, tmp_path):
    metrics, theory = data
    fig = plots.risk_curves(metrics, theory)
    _check_png(common.save(fig, tmp_path / "curves.png"))
    assert "ODE (Saad & Solla)" in _all_text(fig)
    assert "95 % CI of the seed mean (Student t)" in _all_text(fig)
    tpos = TIME > 0
    cells = [(0.0, 0.0), (0.5, -0.5)]  # the kappa+delta = 0 cells of the grid
    panels = [ax for ax in fig.axes if (ax.get_gid() or "").startswith("panel kappa=")]
    assert len(panels) == len(cells)
    for kp, dl in cells:
        ax = _panel(fig, f"panel kappa={kp:g} delta={dl:g}")
        assert ax.get_xscale() == "log" and ax.get_yscale() == "log"
        assert ax.get_xlabel() == "time t = steps/d (dimensionless)"
        for d in D:
            cell_ode = theory["ode_risk"].sel(d=d, kappa=kp, delta=dl).transpose("seed", "time").values
            exp_ode = cell_ode[:, tpos].mean(axis=0)
            keep = np.isfinite(exp_ode)
            assert keep.sum() >= 5
            (ode_line,) = _lines(ax, f"ode:d={d}")
            assert ode_line.get_linestyle() == "--"
            np.testing.assert_allclose(ode_line.get_xdata(), TIME[tpos][keep])
            np.testing.assert_allclose(ode_line.get_ydata(), exp_ode[keep], rtol=1e-12)

            sim = metrics["risk"].sel(d=d, kappa=kp, delta=dl).transpose("seed", "time").values
            ok = metrics["status"].sel(d=d, kappa=kp, delta=dl).values == "ok"
            exp_sim = sim[ok][:, tpos].mean(axis=0)
            keep = np.isfinite(exp_sim)
            (sim_line,) = _lines(ax, f"sim:d={d}")
            assert np.all(np.asarray(sim_line.get_xdata()) > 0)
            np.testing.assert_allclose(sim_line.get_xdata(), TIME[tpos][keep])
            np.testing.assert_allclose(sim_line.get_ydata(), exp_sim[keep], rtol=1e-12)
            if not ok.all():
                # the diverged member would change the mean if it were included
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", RuntimeWarning)
                    incl = np.nanmean(sim[:, tpos], axis=0)[keep]
                assert not np.allclose(incl, exp_sim[keep])


def test_asymptotic_risk(data, tmp_path):
    metrics, theory = data
    fig = plots.asymptotic_risk(metrics, theory)
    _check_png(common.save(fig, tmp_path / "asym.png"))
    (ax,) = [a for a in fig.axes if a.get_visible()]
    assert ax.get_xscale() == "log" and ax.get_yscale() == "log"
    assert ax.get_xlabel().startswith("input dimension d")
    expected = _expected_seed_mean(metrics)
    legend_txt = "\n".join(t.get_text() for t in ax.get_legend().get_texts())
    cells = [(0.0, 0.5), (0.5, 0.0), (0.5, 0.5)]
    for kp, dl in cells:
        tag = f"kappa={kp:g},delta={dl:g}"
        b, c = KAPPA.index(kp), DELTA.index(dl)
        mean = expected[:, b, c]
        (sim,) = _lines(ax, f"sim:{tag}")
        np.testing.assert_allclose(sim.get_xdata(), D)
        np.testing.assert_allclose(sim.get_ydata(), mean, rtol=1e-12)
        slope = np.log(mean[1] / mean[0]) / np.log(D[1] / D[0])
        assert f"κ = {common.fmt(kp)}, δ = {common.fmt(dl)}: fitted slope {common.fmt(round(slope, 2))}" \
            in legend_txt
        guides = _lines(ax, f"guide:{tag}")
        if kp == 0.0:
            (g,) = guides
            x = np.asarray(g.get_xdata(), float)
            np.testing.assert_allclose(g.get_ydata(), mean[0] * (x / D[0]) ** (-dl), rtol=1e-12)
            gx, gy = np.log(x), np.log(np.asarray(g.get_ydata(), float))
            assert (gy[-1] - gy[0]) / (gx[-1] - gx[0]) == pytest.approx(-dl)
        else:
            assert guides == []
        odes = _lines(ax, f"ode:{tag}")
        of = theory["ode_final_risk"].sel(kappa=kp, delta=dl).transpose("d", "seed").values
        if np.isfinite(of).any():
            (o,) = odes
            assert o.get_markerfacecolor() == "none"
            np.testing.assert_allclose(o.get_ydata(), of.mean(axis=1), rtol=1e-12)
        else:
            assert odes == []
    # the kappa+delta <= 0 cells are not drawn
    assert not _lines(ax, "sim:kappa=0,delta=0") and not _lines(ax, "sim:kappa=0.5,delta=-0.5")
    assert "slope −δ" in legend_txt and "1 diverged run excluded" in legend_txt


def test_empty_regions(tmp_path):
    m, t = make_datasets(kappa=[0.0], delta=[0.25, 0.5])
    fig = plots.risk_curves(m, t)
    assert "no cells on the κ+δ=0 line in this grid" in _all_text(fig)
    _check_png(common.save(fig, tmp_path / "empty_curves.png"), min_bytes=5_000)

    m, t = make_datasets(kappa=[0.0], delta=[-0.75, -0.25])
    fig = plots.asymptotic_risk(m, t)
    assert "no cells with κ+δ > 0 in this grid" in _all_text(fig)
    _check_png(common.save(fig, tmp_path / "empty_asym.png"), min_bytes=5_000)
    # a grid with only kappa+delta <= 0 cells still gets a phase diagram
    fig = plots.phase_diagram(m, t)
    _check_png(common.save(fig, tmp_path / "phase_neg.png"))


def test_netcdf_roundtrip(data, tmp_path):
    metrics, theory = data
    metrics.to_netcdf(tmp_path / "metrics.nc")
    theory.to_netcdf(tmp_path / "theory.nc")
    with xr.open_dataset(tmp_path / "metrics.nc") as m, xr.open_dataset(tmp_path / "theory.nc") as t:
        fig = plots.phase_diagram(m, t)
        mesh = [c for c in _panel(fig, "panel d=64").collections if c.get_gid() == "heatmap"][0]
        finite = _expected_seed_mean(metrics)
        assert mesh.norm.vmin == pytest.approx(np.nanmin(finite), rel=1e-12)
        (mk,) = _lines(_panel(fig, "panel d=64"), "diverged")
        assert sorted(zip(*mk.get_data())) == [(0.5, -0.5)]
        plots.risk_curves(m, t)
        plots.asymptotic_risk(m, t)


def test_save_is_atomic(data, tmp_path):
    metrics, theory = data
    fig = plots.risk_curves(metrics, theory)
    out = tmp_path / "sub" / "fig.png"
    common.save(fig, out)
    first = _check_png(out)

    def broken_savefig(path, **kwargs):
        Path(path).write_bytes(b"partial")
        raise RuntimeError("disk full")

    fig.savefig = broken_savefig
    with pytest.raises(RuntimeError, match="disk full"):
        common.save(fig, out)
    assert out.read_bytes() == first  # old file untouched
    assert os.listdir(out.parent) == ["fig.png"]  # temp file removed


def test_seed_band_is_the_student_t_interval():
    values = np.array([[10.0, 2.0], [11.0, 4.0], [12.0, 9.0]])  # 3 seeds × 2 points
    mean, lo, hi, count = common.seed_stats(values, axis=0)
    half = 4.302652729911275 * values.std(axis=0, ddof=1) / np.sqrt(3)  # t_{0.975, 2}
    np.testing.assert_allclose(mean, [11.0, 5.0])
    np.testing.assert_allclose(hi, mean + half)
    # the first interval stays positive; the second reaches below 0 and is clipped at the smallest seed value
    np.testing.assert_allclose(lo, [11.0 - half[0], 2.0])
    np.testing.assert_array_equal(count, [3, 3])
