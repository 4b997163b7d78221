"""The capacity and learning_curves experiment types end to end in-process (cells → data → train → metrics →
theory → figures, no Snakemake), their configs against the schema, and the cross-field checks."""

import copy
import sys

import numpy as np
import pytest
import xarray as xr
import yaml
from conftest import ROOT, SCHEMA
from snakemake.utils import validate

from phaselab import config as cfg
from phaselab import experiments
from phaselab.metrics import open_netcdf


def tiny(results) -> dict:
    return {
        "results": str(results), "seed": 0, "device": "cpu", "threads": 1,
        "experiments": {
            "cap": {"type": "capacity", "grid": {"N": [8, 16], "alpha": [0.5, 1.5, 2.0, 3.0], "trials": 12},
                    "theory": {"kappa": [0.0, 0.5]}},
            "lc": {"type": "learning_curves", "grid": {"N": 24, "alpha": [0.5, 2.0], "seeds": 4},
                   "gibbs": {"trajectories": 3, "burn_in": 1},
                   "binary": {"N": 9, "alpha": [0.5, 1.0, 2.0], "seeds": 5}, "theory": {"points": 12}},
        },
    }


def run(config: dict, name: str, root) -> tuple[xr.Dataset, xr.Dataset]:
    mod = experiments.get(config["experiments"][name]["type"])
    exp, base = config["experiments"][name], root / name
    paths = []
    for cell in mod.cells(exp):
        data_path = None
        if cell["data"]:
            data_path = base / "data" / f"{cell['data']}.npz"
            if not data_path.exists():
                data_path.parent.mkdir(parents=True, exist_ok=True)
                mod.make_data(config, name, cell["data"], str(data_path))
        out = base / "cells" / f"{cell['id']}.nc"
        out.parent.mkdir(parents=True, exist_ok=True)
        mod.train_cell(config, name, cell["id"], data_path and str(data_path), str(out), 1, sys.stderr)
        paths.append(str(out))
    mod.collect(config, name, paths, str(base / "metrics.nc"))
    mod.theory(config, name, str(base / "metrics.nc"), str(base / "theory.nc"))
    from phaselab.stages import make_figure

    for figure in mod.FIGURES:
        png = base / "figures" / f"{figure}.png"
        make_figure(config, name, figure, str(base / "metrics.nc"), str(base / "theory.nc"), str(png))
        assert png.stat().st_size > 10_000
        assert (ROOT / "workflow" / "report" / f"{figure}.rst").exists()
    return open_netcdf(base / "metrics.nc"), open_netcdf(base / "theory.nc")


@pytest.fixture(scope="module")
def tiny_config(tmp_path_factory):
    config = tiny(tmp_path_factory.mktemp("perceptron") / "results")
    validate(config, str(SCHEMA))  # fills the defaults
    return cfg.check(config)


def test_capacity_end_to_end(tiny_config, tmp_path):
    metrics, theory = run(tiny_config, "cap", tmp_path)
    assert dict(metrics["status"].sizes) == {"N": 2, "alpha": 4, "trial": 12}
    assert list(metrics["status"].dims) == ["N", "alpha", "trial"]
    assert set(np.unique(metrics["status"].values)) <= {"separable", "non_separable", "undecided"}
    assert (metrics["status"].sel(alpha=0.5) == "separable").all()  # P < N: always separable
    sep = metrics["status"] == "separable"
    assert np.isfinite(metrics["stability_lower"].where(sep)).sum() == sep.sum()
    assert (metrics["stability_lower"] <= metrics["stability_upper"] * (1 + 1e-9)).where(sep, True).all()
    np.testing.assert_array_equal(metrics["patterns"].sel(N=16).values, [8, 24, 32, 48])
    for key in ("config_json", "config_sha256", "git_revision", "device"):
        assert metrics.attrs[key]
    assert metrics["alpha"].attrs["units"] == "1" and metrics["stability_lower"].attrs["units"] == "1"
    np.testing.assert_allclose(theory["cover_probability"].sel(N=16, alpha=2.0), 0.5)
    assert theory["capacity"].sel(kappa=0.0) == 2.0


def test_learning_curves_end_to_end(tiny_config, tmp_path):
    metrics, theory = run(tiny_config, "lc", tmp_path)
    assert list(metrics["generalization_error"].dims) == ["student", "alpha", "seed"]
    assert sorted(map(str, metrics["student"].values)) == sorted(
        ["hebb", "max_stability", "gibbs", "online_perceptron"])
    assert dict(metrics["generalization_error"].sizes) == {"student": 4, "alpha": 2, "seed": 4}
    assert set(np.unique(metrics["status"].values)) <= {"ok", "not_converged"}
    eps = metrics["generalization_error"].values
    assert np.isfinite(eps).all() and (eps >= 0).all() and (eps <= 1).all()
    point = metrics["student"] != "gibbs"  # Gibbs: ε is the mean over the version-space samples, not ε(mean R)
    np.testing.assert_allclose(metrics["generalization_error"].where(point),
                               np.arccos(metrics["overlap"].where(point)) / np.pi)
    np.testing.assert_allclose(metrics["generalization_error"].sel(student="gibbs"),
                               np.arccos(metrics["overlap"].sel(student="gibbs")) / np.pi, atol=0.05)
    assert dict(metrics["binary_generalization_error"].sizes) == {"binary_alpha": 3, "binary_seed": 5}
    assert (metrics["binary_version_space_size"] >= 1).all()
    assert metrics["gibbs_overlap_trace"].sel(student="gibbs").sizes["trajectory"] == 3
    assert theory["generalization_error"].sizes == {"theory_student": 5, "alpha": 2}
    assert theory.attrs["binary_transition"] == pytest.approx(1.245, abs=0.002)


@pytest.mark.parametrize("name", ["capacity", "learning_curves"])
def test_shipped_configs_are_valid_and_small(name):
    config = yaml.safe_load((ROOT / "config" / f"{name}.yaml").read_text())
    validate(config, str(SCHEMA))
    cfg.check(config)
    exp = config["experiments"][name]
    assert len(experiments.get(exp["type"]).cells(exp)) <= 6


@pytest.mark.parametrize("name,path,value,text", [
    ("cap", ("grid", "alpha"), [1.0, 1.01], "same P"),
    ("cap", ("grid", "N"), [8, 8], "duplicate"),
    ("lc", ("gibbs", "burn_in"), 3, "leaves no sample"),
    ("lc", ("binary", "alpha"), [1.0, 1.02], "same P"),
])
def test_bad_configs_are_rejected(tiny_config, name, path, value, text):
    config = copy.deepcopy(tiny_config)
    config["experiments"][name][path[0]][path[1]] = value
    with pytest.raises(cfg.ConfigError, match=text):
        cfg.check(config)
