"""sgd_stability: Hardt, Recht & Singer's stability bound against independent simulations (numpy coupled SGD,
where a linear loss attains the bound exactly), the logistic loss's constants against finite differences, the
shared batch order of coupled members, and the tiny config end to end (Liu et al. 2020; Hardt et al. 2016)."""

from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

import phaselab
from phaselab.experiment import VERDICTS
from phaselab.experiments.sgd_stability.stages import EpochBatches, stability_data, unit_inputs
from phaselab.runner import load
from phaselab.theory import stability

CONFIG = Path(__file__).parent / "configs" / "sgd_stability.yaml"


def coupled_sgd(grad, w0, x, y, x_new, y_new, replaced, lr, epochs, B, gen):
    """Plain numpy SGD on S and on S′ (example ``replaced`` swapped), same start, same permutation every epoch;
    returns ‖w_T − w′_T‖ after every epoch."""
    n = len(x)
    x2, y2 = x.copy(), y.copy()
    x2[replaced], y2[replaced] = x_new, y_new
    w, v, out = w0.copy(), w0.copy(), [0.0]
    for _ in range(epochs):
        perm = gen.permutation(n)
        for j in range(n // B):
            idx = perm[j * B:(j + 1) * B]
            w = w - lr * grad(w, x[idx], y[idx]).mean(0)
            v = v - lr * grad(v, x2[idx], y2[idx]).mean(0)
        out.append(np.linalg.norm(w - v))
    return np.array(out)


def linear_grad(w, x, y):
    """∇ of the linear loss −y wᵀx (convex, ‖x‖-Lipschitz, β = 0), per example."""
    return -(y[:, None] * x)


def test_a_linear_loss_attains_the_distance_bound_exactly():
    """For ℓ = −y wᵀx with the replaced example x′ = −x, every use of it moves the runs 2αL/B apart along one
    line: after E epochs (each uses it once) the distance is exactly (2L/n) Σ α_t — the bound is tight."""
    gen = np.random.default_rng(0)
    n, d, B, lr, epochs = 24, 5, 4, 0.3, 3
    x = unit_inputs(gen.standard_normal((n, d - 1)))
    y = np.where(gen.random(n) < 0.5, 1.0, -1.0)
    L = stability.logistic_lipschitz(x)
    assert L == pytest.approx(1.0)
    dist = coupled_sgd(linear_grad, np.zeros(d), x, y, -x[7], y[7], 7, lr, epochs, B, gen)
    steps = np.arange(epochs + 1) * (n // B)
    np.testing.assert_allclose(dist, stability.distance_bound(lr, steps, n, L), rtol=1e-12, atol=1e-15)


def test_sampling_with_replacement_attains_the_bound_in_expectation():
    """Hardt et al.'s setting, one uniformly random example a step: the linear loss's distance is 2αL × (uses of
    the replaced example), whose mean over Monte Carlo runs is (2L/n) α T within 4 standard errors."""
    gen = np.random.default_rng(1)
    n, T, lr, runs = 50, 400, 0.1, 4000
    uses = (gen.integers(0, n, (runs, T)) == 0).sum(1)
    dist = 2 * lr * 1.0 * uses  # L = 1, x′ = −x: each use adds 2 α L along the same direction
    bound = stability.distance_bound(lr, [T], n, 1.0)[0]
    assert abs(dist.mean() - bound) < 4 * dist.std(ddof=1) / np.sqrt(runs)


def test_logistic_constants_against_finite_differences():
    """The gradient of the logistic loss against central differences; its norm never exceeds L = max ‖x‖ and
    approaches it far out along −y x; the Hessian's top eigenvalue at w = 0 (finite differences of the gradient)
    is ‖x‖²/4 = β for the longest input."""
    gen = np.random.default_rng(2)
    x = gen.standard_normal((6, 4))
    y = np.where(gen.random(6) < 0.5, 1.0, -1.0)
    w = gen.standard_normal(4)
    h = 1e-6
    numeric = np.stack([(stability.logistic_loss(w + h * e, x, y) - stability.logistic_loss(w - h * e, x, y)) / (2 * h)
                        for e in np.eye(4)], -1)
    np.testing.assert_allclose(stability.logistic_gradient(w, x, y), numeric, rtol=1e-6, atol=1e-9)
    L = stability.logistic_lipschitz(x)
    norms = [np.linalg.norm(stability.logistic_gradient(gen.standard_normal(4) * s, x, y), axis=1).max()
             for s in (0.1, 1, 10) for _ in range(50)]
    assert max(norms) <= L + 1e-12
    k = int(np.argmax(np.linalg.norm(x, axis=1)))
    far = -50 * y[k] * x[k]
    assert np.linalg.norm(stability.logistic_gradient(far, x[k:k + 1], y[k:k + 1])) == pytest.approx(L, rel=1e-9)
    H = np.stack([(stability.logistic_gradient(h * e, x[k:k + 1], y[k:k + 1])[0]
                   - stability.logistic_gradient(-h * e, x[k:k + 1], y[k:k + 1])[0]) / (2 * h) for e in np.eye(4)])
    assert np.linalg.eigvalsh((H + H.T) / 2)[-1] == pytest.approx(stability.logistic_smoothness(x), rel=1e-6)


def test_coupled_logistic_sgd_stays_within_the_bound_and_step_sums():
    """Numpy coupled SGD on logistic regression (unit-norm inputs, α ≤ 2/β) stays below (2L/n) Σ α_t at every
    epoch for every pair; step_sum of per-step steps is their cumulative sum."""
    gen = np.random.default_rng(3)
    n, d, lr = 40, 6, 4.0
    x = unit_inputs(gen.standard_normal((n + 10, d - 1)))
    y = np.where(x[:, 0] + 0.3 * gen.standard_normal(n + 10) > 0, 1.0, -1.0)
    L, beta = stability.logistic_lipschitz(x), stability.logistic_smoothness(x)
    assert stability.step_size_allowed(lr, beta) and not stability.step_size_allowed(8.5, beta)
    bound = stability.distance_bound(lr, np.arange(6) * n, n, L)

    def grad(w, xs, ys):
        return stability.logistic_gradient(w, xs, ys)

    for p in range(10):
        dist = coupled_sgd(grad, np.zeros(d), x[:n], y[:n], x[n + p], y[n + p], p, lr, 5, 1, gen)
        assert np.all(dist <= bound + 1e-12)
    alphas = gen.random(7)
    np.testing.assert_allclose(stability.step_sum(alphas, [0, 3, 7]), [0.0, alphas[:3].sum(), alphas.sum()])
    np.testing.assert_allclose(stability.stability_bound(0.5, [10], 20, 2.0), [2 * 4 / 20 * 5.0])


def test_epoch_batches_share_the_order_within_a_group():
    """Coupled members (copies of a group, adjacent or tiled) gather the same indices; groups differ."""
    M, n = 6, 12
    arrays = (torch.arange(M * n).view(M, n) % n,)
    repeat = EpochBatches([np.random.default_rng(s) for s in range(3)], n, 4, arrays, copies=2)
    tiled = EpochBatches([np.random.default_rng(s) for s in range(3)], n, 4, arrays, copies=2, tiled=True)
    for step in range(7):
        a, b = repeat(step)[0], tiled(step)[0]
        assert torch.equal(a[0::2], a[1::2]) and torch.equal(b[:3], b[3:]) and torch.equal(a[0::2], b[:3])
    assert not torch.equal(a[0], a[2])


def test_stability_data_differs_in_one_example():
    """The two training sets of a pair differ in exactly one example: the replacement comes from outside S."""
    exp = load(CONFIG)["experiments"]["stab"]
    arrays = stability_data(0, exp)
    np.testing.assert_allclose(np.linalg.norm(arrays["x_train"], axis=1), 1.0, rtol=1e-12)
    train = {tuple(r) for r in arrays["x_train"].round(12)}
    assert not any(tuple(r) in train for r in arrays["x_replacement"].round(12))


def test_sgd_stability_end_to_end(tmp_path):
    config = yaml.safe_load(CONFIG.read_text())
    result = phaselab.run(config, "stab", results=tmp_path)
    m, th = result.metrics, result.theory
    exp = config["experiments"]["stab"]
    bad, stab = exp["bad_minima"], exp["stability"]
    assert dict(m["test_accuracy"].sizes) == {"init": 2, "regularisation": 2, "seed": bad["seeds"],
                                              "epoch": bad["epochs"] + 1}
    assert dict(m["distance"].sizes) == {"model": 2, "pair": stab["pairs"], "stability_epoch": stab["epochs"] + 1}
    for name in list(m.data_vars) + list(m.coords) + list(th.data_vars):
        assert "long_name" in (m[name] if name in m else th[name]).attrs, name
    assert set(np.unique(m["status"].values)) <= {"ok", "diverged"}
    # the coupled runs start together; the two initialisations of a seed start from different networks
    assert np.all(m["distance"].isel(stability_epoch=0).values == 0)
    ok = m["status"] == "ok"
    acc0 = m["test_accuracy"].isel(epoch=0).where(ok)
    np.testing.assert_allclose(acc0.sel(regularisation="none"), acc0.sel(regularisation="weight_decay"))
    # the bound with L = 1 (unit-norm inputs): 2 α T / n
    steps = np.arange(stab["epochs"] + 1) * (stab["n_train"] // stab["batch_size"])
    np.testing.assert_allclose(th["distance_bound"].values, 2 * stab["lr"] * steps / stab["n_train"], rtol=1e-9)
    assert np.all(m["distance"].sel(model="logistic").mean("pair").values <= th["distance_bound"].values + 1e-9)
    assert len(result.claims) == 6 and {c.verdict for c in result.claims} <= set(VERDICTS)
    for figure in ("sgd_bad_minima", "sgd_stability_coupled"):
        assert result.figures[figure].stat().st_size > 20_000
