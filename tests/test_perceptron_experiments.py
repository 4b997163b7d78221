"""The capacity and learning_curves experiment types end to end in-process (phaselab.run: cells → data → train →
metrics → theory → figures and claims, no Snakemake), their configs against the schema, and the cross-field
checks."""

import copy
from pathlib import Path

import numpy as np
import pytest
import yaml
from conftest import ROOT

import phaselab
from phaselab import config as cfg
from phaselab import experiments

CONFIGS = Path(__file__).parent / "configs"


def tiny(type_name: str) -> dict:
    return yaml.safe_load((CONFIGS / f"{type_name}.yaml").read_text())


def run(type_name: str, name: str, tmp_path):
    result = phaselab.run(tiny(type_name), name, results=tmp_path)
    kind = experiments.resolve(type_name)
    assert set(result.figures) == set(kind.light.FIGURES)
    for figure, png in result.figures.items():
        assert png.stat().st_size > 10_000
        assert kind.caption_path(figure).exists()
    assert result.claims and all(c.verdict in ("agrees", "disagrees", "inconclusive") for c in result.claims)
    return result


def test_capacity_end_to_end(tmp_path):
    result = run("capacity", "cap", tmp_path)
    metrics, theory = result.metrics, result.theory
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
    pooled, worst = result.claims
    # the pooled claim: all decided trials against Cover's expectation, within 3 binomial standard errors
    decided = (metrics["status"] != "undecided").sum("trial")
    assert pooled.measured == pytest.approx(float(sep.sum() / decided.sum()))
    assert pooled.tolerance == pytest.approx(3 * pooled.uncertainty) and pooled.uncertainty > 0
    assert 0 < worst.theory < 1 and worst.tolerance > worst.uncertainty > 0


def test_learning_curves_end_to_end(tmp_path):
    result = run("learning_curves", "lc", tmp_path)
    metrics, theory = result.metrics, result.theory
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
    [hebb] = result.claims
    assert hebb.theory in theory["generalization_error"].sel(theory_student="hebb").values
    assert hebb.tolerance == pytest.approx(3 * hebb.uncertainty + 0.3 / 24)


@pytest.mark.parametrize("name", ["capacity", "learning_curves"])
def test_shipped_configs_are_valid_and_small(name):
    config = cfg.validate(yaml.safe_load((ROOT / "config" / f"{name}.yaml").read_text()))
    exp = config["experiments"][name]
    assert len(experiments.resolve(exp["type"]).cells(exp)) <= 6


def test_cells_keep_their_ids_and_data():
    cap = cfg.validate(tiny("capacity"))["experiments"]["cap"]
    assert [(c.id, c.data, c.N) for c in experiments.resolve("capacity").cells(cap)] == [("n8", None, 8),
                                                                                        ("n16", None, 16)]
    lc = cfg.validate(tiny("learning_curves"))["experiments"]["lc"]
    assert [(c.id, c.data, c.student) for c in experiments.resolve("learning_curves").cells(lc)] == [
        ("hebb", "n24", "hebb"), ("max_stability", "n24", "max_stability"), ("gibbs", "n24", "gibbs"),
        ("online_perceptron", "n24", "online_perceptron"), ("binary", "binary_n9", "binary")]


@pytest.mark.parametrize("type_name,name,path,value,text", [
    ("capacity", "cap", ("grid", "alpha"), [1.0, 1.01], "same P"),
    ("capacity", "cap", ("grid", "N"), [8, 8], "duplicate"),
    ("learning_curves", "lc", ("gibbs", "burn_in"), 3, "leaves no sample"),
    ("learning_curves", "lc", ("binary", "alpha"), [1.0, 1.02], "same P"),
])
def test_bad_configs_are_rejected(type_name, name, path, value, text):
    config = copy.deepcopy(tiny(type_name))
    config["experiments"][name][path[0]][path[1]] = value
    with pytest.raises(cfg.ConfigError, match=text):
        cfg.validate(config)
