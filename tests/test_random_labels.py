"""Random labels and spectrally-normalised margins: R_A and margins against hand computations, the data variants,
the interpolating 1-NN reference against simulation, and the experiment end to end in-process."""

import copy
import math
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from conftest import ROOT
from scipy.stats import t as student_t
from threadpoolctl import threadpool_limits

import phaselab
from phaselab import data
from phaselab.config import ConfigError, validate
from phaselab.experiments import random_labels as rl
from phaselab.experiments import resolve
from phaselab.experiments.random_labels import stages as rls
from phaselab.models import two_layer
from phaselab.theory import margins

TINY = yaml.safe_load((Path(__file__).parent / "configs" / "random_labels.yaml").read_text())


@pytest.fixture(autouse=True)
def one_blas_thread():
    with threadpool_limits(limits=1):
        yield


# ---------------------------------------------------------------------------------------------------------------
# margin bound (Bartlett, Foster & Telgarsky 2017)
# ---------------------------------------------------------------------------------------------------------------
A1 = np.array([[3.0, 0.0], [0.0, 4.0]])
A2 = np.array([[1.0, 1.0], [2.0, 0.0]])


def test_norms_by_hand():
    assert margins.spectral_norm(A1) == pytest.approx(4.0)
    # A2 A2ᵀ = [[2, 2], [2, 4]] has eigenvalues 3 ± √5
    assert margins.spectral_norm(A2) == pytest.approx(math.sqrt(3 + math.sqrt(5)))
    # ‖Bᵀ‖_{2,1} sums the Euclidean norms of the rows of B
    assert margins.norm_2_1(A1.T) == pytest.approx(7.0)
    assert margins.norm_2_1(A2.T) == pytest.approx(math.sqrt(2) + 2)
    assert margins.norm_2_1(A2) == pytest.approx(math.sqrt(5) + 1)  # columns (1, 2) and (1, 0)


def test_spectral_complexity_of_a_two_layer_toy_net_by_hand():
    s1, s2 = 4.0, math.sqrt(3 + math.sqrt(5))  # 4, 2.2882
    hand = s1 * s2 * ((7 / s1) ** (2 / 3) + ((math.sqrt(2) + 2) / s2) ** (2 / 3)) ** 1.5
    # 9.1530 · (1.75^(2/3) + 1.49206^(2/3))^(3/2) = 9.1530 · (1.45219 + 1.30574)^(3/2) = 9.1530 · 4.5801
    assert hand == pytest.approx(41.922, rel=1e-4)
    assert margins.spectral_complexity([A1, A2]) == pytest.approx(hand, rel=1e-12)
    # reference M₁ = I: ‖(A₁ − I)ᵀ‖_{2,1} = 2 + 3; Lipschitz constants multiply the product
    hand_ref = 2.0 * s1 * s2 * ((5 / s1) ** (2 / 3) + ((math.sqrt(2) + 2) / s2) ** (2 / 3)) ** 1.5
    assert margins.spectral_complexity([A1, A2], [np.eye(2), None], [2.0, 1.0]) == pytest.approx(hand_ref)
    # batched over members: a second net, both layers scaled by 2, has R_A four times larger
    batch = margins.spectral_complexity([np.stack([A1, 2 * A1]), np.stack([A2, 2 * A2])])
    np.testing.assert_allclose(batch, [hand, 4 * hand])


def test_margins_and_normalised_margins_by_hand():
    outputs = np.array([[2.0, 1.0, 0.5], [0.0, 3.0, 1.0]])
    labels = np.array([0, 0])
    np.testing.assert_allclose(margins.margins(outputs, labels), [1.0, -3.0])
    x = np.array([[3.0, 4.0], [0.0, 0.0]])  # ‖X‖_F = 5, n = 2: scale R_A · 5/2
    np.testing.assert_allclose(margins.normalised_margins(outputs, labels, 2.0, x), [0.2, -0.6])


def test_layer_matrices_are_the_network():
    params = two_layer.init([1, 2], d=5, width=7, n_classes=3)
    x = torch.randn(2, 4, 5)
    a1, a2 = two_layer.layer_matrices(params)
    direct = np.maximum(x.double().numpy() @ np.swapaxes(a1, -1, -2), 0) @ np.swapaxes(a2, -1, -2)
    np.testing.assert_allclose(two_layer.forward(params, x).double().numpy(), direct, rtol=1e-5, atol=1e-6)
    # a member's own loss, as train_ensemble sees it, equals its slice of the stacked loss
    one = {k: v[1] for k, v in params.items()}
    targets = two_layer.one_hot(torch.tensor([[0, 1, 2, 0]] * 2), 3)
    stacked = two_layer.loss_values("cross_entropy", two_layer.forward(params, x), targets)
    assert float(two_layer.loss_values("cross_entropy", two_layer.forward(one, x[1]), targets[1])) == pytest.approx(
        float(stacked[1]), rel=1e-6)
    assert two_layer.chance_loss("cross_entropy", 10) == pytest.approx(math.log(10))


# ---------------------------------------------------------------------------------------------------------------
# data variants (Zhang et al. 2017)
# ---------------------------------------------------------------------------------------------------------------
def test_label_corruption_rate_and_nesting():
    labels = np.zeros(20000, dtype=np.int64)
    low = data.corrupt_labels(labels, 0.3, 10, np.random.default_rng(7))
    high = data.corrupt_labels(labels, 0.6, 10, np.random.default_rng(7))
    for q, out in ((0.3, low), (0.6, high)):
        rate, expected = (out != labels).mean(), q * 9 / 10  # a redrawn label keeps its class w.p. 1/C
        assert abs(rate - expected) < 4 * math.sqrt(expected * (1 - expected) / labels.size)
    assert np.all(high[low != labels] == low[low != labels])  # nested: every label changed at q = 0.3 stays so
    np.testing.assert_array_equal(data.corrupt_labels(labels, 0.0, 10, np.random.default_rng(1)), labels)
    assert np.bincount(data.corrupt_labels(labels, 1.0, 10, np.random.default_rng(1))).min() > 1800


def test_shuffled_pixels_and_gaussian_inputs():
    x = 100.0 * np.arange(50)[:, None] + np.arange(64)[None, :]
    shuffled = data.shuffle_pixels(x, np.random.default_rng(0))
    perm = shuffled - 100.0 * np.arange(50)[:, None]
    assert np.all(perm == perm[0]) and sorted(perm[0]) == list(range(64)) and (perm[0] != np.arange(64)).any()
    digits, _ = data.load_digits_standardised()
    noise = data.gaussian_inputs(digits, np.random.default_rng(0))
    np.testing.assert_allclose(noise.mean(0), digits.mean(0), atol=0.1)
    np.testing.assert_allclose(noise.std(0), digits.std(0), atol=0.1)


def test_interpolating_reference_matches_1nn_on_corrupted_digits():
    x, labels = data.load_digits_standardised()
    tr, te = data.split(len(labels), 300, np.random.default_rng(3))
    x_tr, y_tr, x_te, y_te = x[tr].astype(float), labels[tr], x[te].astype(float), labels[te]
    eps0 = float(rls.nearest_neighbour_error(x_tr, y_tr, x_te, y_te))
    assert 0.02 < eps0 < 0.1  # 1-NN on 300 digits
    q, draws = 0.5, 40
    noisy = np.stack([data.corrupt_labels(y_tr, q, 10, np.random.default_rng(100 + k)) for k in range(draws)])
    errors = rls.nearest_neighbour_error(x_tr[None], noisy, x_te[None], y_te[None])
    predicted = float(rls.interpolating_error(q, eps0, 10))  # 1 − (1 − ε₀)(0.55) − ε₀·0.05
    assert abs(errors.mean() - predicted) < 3 * errors.std(ddof=1) / math.sqrt(draws)
    assert float(rls.interpolating_error(1.0, eps0, 10)) == pytest.approx(0.9)


# ---------------------------------------------------------------------------------------------------------------
# config and the experiment end to end
# ---------------------------------------------------------------------------------------------------------------
def test_shipped_config_is_valid():
    config = yaml.safe_load((ROOT / "config" / "random_labels.yaml").read_text())
    validate(config)
    assert [v[0] for v in rl.variants(config["experiments"]["random_labels"])][-2:] == ["shuffled_pixels",
                                                                                       "gaussian"]


def test_check_rejects_bad_config():
    config = copy.deepcopy(TINY)
    config["experiments"]["rl"]["network"]["checkpoint_every"] = 1000
    with pytest.raises(ConfigError, match="checkpoint_every"):
        validate(config)


def test_end_to_end_in_process(tmp_path):
    result = phaselab.run(TINY, "rl", results=tmp_path / "results")  # defaults: both tasks, both input variants
    metrics, theory = result.metrics, result.theory
    assert [(c.id, c.data, c.task) for c in rl.cells(validate(copy.deepcopy(TINY))["experiments"]["rl"])] == [
        ("digits", "digits", "digits"), ("teacher", "teacher", "teacher")]
    assert list(metrics["task"].values) == ["digits", "teacher"]
    assert list(metrics["variant"].values) == ["q=0", "q=1", "shuffled_pixels", "gaussian"]
    assert metrics["train_loss"].dims == ("task", "variant", "seed", "step")
    assert metrics["normalised_margin"].sizes == {"task": 2, "variant": 4, "seed": 2, "sample": 40}
    assert metrics["train_loss"].attrs["units"] == "1" and metrics["step"].attrs["units"] == "steps"
    assert set(np.unique(metrics["status"].values)) == {"ok"}
    for key in ("config_sha256", "git_revision", "torch_version", "device"):
        assert metrics.attrs[key], key
    # every member fits its 40 training labels, random ones included, and starts near the chance loss log 10
    assert np.isfinite(metrics["steps_to_fit"].values).all()
    np.testing.assert_allclose(metrics["train_loss"].isel(step=0).mean(), math.log(10), rtol=0.3)
    # R_A in the dataset is the one of the trained weights: recompute it from the margins' normalisation
    m = metrics.sel(task="digits", variant="q=1", seed=0)
    arrays = np.load(result.folder / "data" / "digits.npz")
    x = arrays["x_train"][1, 0].astype(float)
    scale = float(m["spectral_complexity"]) * np.linalg.norm(x) / x.shape[0]
    np.testing.assert_allclose(m["normalised_margin"].values * scale, m["margin"].values, rtol=1e-9)
    assert (m["margin"] > 0).all()  # fitted: every training margin is positive
    # theory: chance levels and the 1-NN reference, which reaches chance at q = 1
    np.testing.assert_allclose(theory["chance_error"], [0.9, 0.9])
    np.testing.assert_allclose(theory["nn_test_error"].sel(corruption=1.0), 0.9)
    # claims per task, recomputed from the numbers: fitted, fit time, margins, R_A (trends over q ∈ {0, 1}: the
    # per-seed slope is the difference q = 1 minus q = 0), chance at q = 1
    assert len(result.claims) == 10
    for k, task in enumerate(["digits", "teacher"]):
        fitted, fit_time, margin, complexity, chance = result.claims[5 * k: 5 * k + 5]
        assert all(c.text.startswith(task) for c in (fitted, fit_time, margin, complexity, chance))
        m = metrics.sel(task=task)
        assert fitted.measured == pytest.approx(float(m["train_error"].isel(step=-1).mean("seed").max()))
        assert fitted.tolerance == pytest.approx(1 / 40) and fitted.verdict == "agrees"
        steps = m["steps_to_fit"].sel(variant=["q=0", "q=1"]).transpose("seed", "variant").values
        slope = steps[:, 1] - steps[:, 0]
        assert fit_time.measured == pytest.approx(slope.mean())
        assert fit_time.uncertainty == pytest.approx(student_t.ppf(0.975, 1) * slope.std(ddof=1) / math.sqrt(2))
        ra = np.log(m["spectral_complexity"].sel(variant=["q=0", "q=1"]).transpose("seed", "variant").values)
        assert complexity.measured == pytest.approx((ra[:, 1] - ra[:, 0]).mean())
        med = m["normalised_margin"].sel(variant=["q=0", "q=1"]).median("sample").transpose("seed", "variant").values
        assert margin.measured == pytest.approx(-(med[:, 1] - med[:, 0]).mean())
        err = m["test_error"].sel(variant="q=1").isel(step=-1).values
        se = max(err.std(ddof=1) / math.sqrt(2), math.sqrt(0.9 * 0.1 / (2 * int(m["n_test"]))))
        assert chance.measured == pytest.approx(abs(err.mean() - 0.9) / se)
        binomial = se > err.std(ddof=1) / math.sqrt(2)
        assert chance.tolerance == pytest.approx(3.0 if binomial else student_t.ppf(1 - 0.0027 / 2, 1), rel=1e-3)
        assert [c.figure for c in (fitted, fit_time, margin, complexity, chance)] == [
            "random_label_training", "random_label_fit_time", "normalised_margins", "normalised_margins",
            "random_label_test_error"]
    kind = resolve("random_labels")
    for figure in rl.FIGURES:
        assert result.figures[figure].stat().st_size > 20_000
        assert kind.caption_path(figure).exists()


# ---------------------------------------------------------------------------------------------------------------
# claims from known numbers
# ---------------------------------------------------------------------------------------------------------------
def test_slopes_and_one_sided_claims_from_known_numbers():
    q = np.array([0.0, 0.5, 1.0])
    y = np.array([[100.0, 200.0, 300.0], [100.0, 150.0, 400.0], [0.0, 0.0, 0.0]])
    np.testing.assert_allclose(rls.slopes(q, y), [200.0, 300.0, 0.0])  # Σ(q − q̄)(y − ȳ)/Σ(q − q̄)²
    up = rls.seeds_exceed_zero("x", "s", [200.0, 300.0, 250.0], where="w")
    half = student_t.ppf(0.975, 2) * 50.0 / math.sqrt(3)  # mean 250, SD 50: 250 ± 124
    assert up.measured == pytest.approx(250.0) and up.uncertainty == pytest.approx(half) and up.verdict == "agrees"
    assert (up.relation, up.theory, up.tolerance) == (">", 0.0, 0.0)
    assert rls.seeds_exceed_zero("x", "s", [-200.0, -300.0, -250.0], where="w").verdict == "disagrees"
    assert rls.seeds_exceed_zero("x", "s", [200.0, -150.0, 100.0], where="w").verdict == "inconclusive"
    one = rls.seeds_exceed_zero("x", "s", [200.0, np.nan], where="w")  # one seed: no interval
    assert one.verdict == "inconclusive" and "fewer than 2 seeds" in one.note
