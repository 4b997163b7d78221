"""The capacity and learning_curves experiment types end to end in-process (phaselab.run: cells → data → train →
metrics → theory → figures and claims, no Snakemake), their configs against the schema, and the cross-field
checks."""

import copy
from pathlib import Path

import numpy as np
import pytest
import yaml
from conftest import ROOT
from scipy import stats

import phaselab
from phaselab import config as cfg
from phaselab import experiments
from phaselab.theory import perceptron as tp

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
    claims = result.claims
    for c in claims:
        assert_verdict_follows_the_numbers(c)
    pooled, worst, *rest = claims
    # the pooled claim: all decided trials against Cover's expectation, within 3 binomial standard errors
    decided = (metrics["status"] != "undecided").sum("trial")
    assert pooled.measured == pytest.approx(float(sep.sum() / decided.sum()))
    assert pooled.tolerance == pytest.approx(3 * pooled.uncertainty) and pooled.uncertainty > 0
    # the worst point: exact binomial tails under Cover's p, against the Bonferroni level over the open points
    k = (metrics["status"] == "separable").sum("trial").values
    n = decided.values
    p = theory["cover_probability"].values
    tails = np.minimum(stats.binom.cdf(k, n, p), stats.binom.sf(k - 1, n, p))
    level = 0.0027 / int(((p > 0) & (p < 1)).sum())
    assert worst.uncertainty == 0 and 0 < worst.theory < 1
    assert worst.verdict == ("agrees" if tails.min() > level / 2 else "disagrees")
    per_n = [c for c in rest if c.text.startswith("separable fraction at N = ")]
    assert [c.text.split()[5] for c in per_n] == ["8", "16"]
    # exactly ½ at P = 2N: the pooled count at α = 2 against ½ with its binomial SE ½/√n
    [half] = [c for c in rest if "exactly ½ at α = 2" in c.text]
    at2 = metrics.sel(alpha=2.0)
    n2 = float((at2["status"] != "undecided").sum())
    assert half.measured == pytest.approx(float((at2["status"] == "separable").sum()) / n2)
    assert half.uncertainty == pytest.approx(0.5 / np.sqrt(n2)) and half.theory == 0.5
    # the crossing load: Cover's curve rescaled in α, fitted by a brute-force scan of the likelihood
    [cross] = [c for c in rest if "crosses ½ at α = 2" in c.text]
    P, N = metrics["patterns"].values, metrics["N"].values[:, None]
    grid = np.linspace(1.2, 2.8, 16001)
    loglik = [np.sum(k * np.log(np.clip(q, 1e-300, 1)) + (n - k) * np.log(np.clip(1 - q, 1e-300, 1)))
              for q in (tp.cover_continued(P * 2 / a, N) for a in grid)]
    assert cross.measured == pytest.approx(grid[int(np.argmax(loglik))], abs=2e-4)
    # Gardner's α_c(κ) at each κ: two N, so the 1/N extrapolation is 2 a(16) − a(8), SE √(4 s16² + s8²)
    gardner = [c for c in rest if c.text.startswith("Gardner's capacity")]
    assert [c.theory for c in gardner] == pytest.approx(tp.gardner_capacity(np.array([0.0, 0.5])))
    status = metrics["status"].values.astype(str)
    for c, kappa in zip(gardner, (0.0, 0.5)):
        lower = np.nan_to_num(metrics["stability_lower"].values, nan=-np.inf)
        upper = np.nan_to_num(metrics["stability_upper"].values, nan=-np.inf)
        yes = (status == "separable") & (lower >= kappa)
        no = (status == "non_separable") | ((status == "separable") & (upper < kappa))
        fits = [tp.half_load(P[i] / metrics["N"].values[i], yes[i].sum(-1), (yes | no)[i].sum(-1)) for i in range(2)]
        if all(np.isfinite(f).all() for f in fits):
            (a8, s8), (a16, s16) = fits
            assert c.measured == pytest.approx(2 * a16 - a8)
            assert c.uncertainty == pytest.approx(np.sqrt(4 * s16**2 + s8**2))
            assert c.tolerance == pytest.approx(3 * c.uncertainty)


def assert_verdict_follows_the_numbers(c):
    """The verdict is the judge rule applied to the claim's own numbers (agrees within, disagrees beyond)."""
    assert c.figure in ("", "capacity_curves", "gardner_capacity", "learning_curves") and c.note
    if c.theory is None or c.measured is None:
        assert c.verdict == "inconclusive"
        return
    gap = abs(c.measured - c.theory)
    expected = ("agrees" if gap + c.uncertainty <= c.tolerance else
                "disagrees" if gap - c.uncertainty > c.tolerance else "inconclusive")
    assert c.verdict == expected


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
    claims = result.claims
    for c in claims:
        assert_verdict_follows_the_numbers(c)
    assert len(claims) == 4 + 4 + 1  # each student's curve and large-α limit, the binary transition
    N = 24
    for c, student in zip(claims[:4], ["hebb", "gibbs", "max_stability", "online_perceptron"]):
        eps = metrics["generalization_error"].sel(student=student)
        mean = eps.mean("seed").values
        se = eps.std("seed", ddof=1).values / 2  # 4 seeds, all converged at this size
        i = int(np.argmax(np.abs(mean - theory["generalization_error"].sel(theory_student=student).values) / se))
        assert c.measured == pytest.approx(mean[i]) and c.uncertainty == pytest.approx(se[i])
        assert c.theory == pytest.approx(float(theory["generalization_error"].sel(theory_student=student)[i]))
        assert c.tolerance == pytest.approx(3 * se[i] + 0.3 / N)
    for c, student in zip(claims[4:8], ["hebb", "gibbs", "max_stability", "online_perceptron"]):
        gamma, limit = tp.large_alpha_limit(student)
        eps = metrics["generalization_error"].sel(student=student, alpha=2.0)
        assert c.theory == pytest.approx(limit)
        assert c.measured == pytest.approx(2.0**gamma * float(eps.mean()))
        pre_asymptotic = abs(2.0**gamma * float(theory["generalization_error"].sel(theory_student=student,
                                                                                   alpha=2.0)) - limit)
        assert c.uncertainty == pytest.approx(2.0**gamma * float(eps.std(ddof=1)) / 2 + pre_asymptotic)
    binary = claims[8]
    assert binary.theory == pytest.approx(theory.attrs["binary_transition"])
    unique = (metrics["binary_version_space_size"] == 1).sum("binary_seed").values
    P = np.round(np.array([0.5, 1.0, 2.0]) * 9)
    assert (binary.measured, binary.uncertainty) == pytest.approx(tp.half_load(P / 9, unique, [5, 5, 5],
                                                                               increasing=True))


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
