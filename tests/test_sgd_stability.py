"""sgd_stability: Hardt, Recht & Singer's stability bound against independent simulations (numpy coupled SGD,
where a linear loss attains the bound exactly), the logistic loss's constants against finite differences, the
shared batch order of coupled members, heavy-ball momentum of train_ensemble against torch.optim.SGD and the closed
form on a quadratic, the pixel-shift augmentation, the regularisation claims from known gaps, and the tiny config end
to end (Liu et al. 2020; Hardt et al. 2016)."""

from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

import phaselab
from phaselab.engines.ensemble import train_ensemble
from phaselab.experiment import VERDICTS
from phaselab.experiments.sgd_stability.stages import (
    EpochBatches,
    ShiftedBatches,
    _regularisation_claims,
    _seed_gaps,
    pixel_shifts,
    stability_data,
    unit_inputs,
)
from phaselab.models import deep_mlp
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
    assert dict(m["test_accuracy"].sizes) == {"init": 2, "regularisation": len(bad["regularisations"]),
                                              "seed": bad["seeds"],
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
    regs = bad["regularisations"]
    assert list(m["regularisation"].values) == regs and regs[0] == "none"
    assert len(result.claims) == 2 + 2 * (len(regs) - 1) + 2 and {c.verdict for c in result.claims} <= set(VERDICTS)
    # momentum and shifts change the training: after the first epoch their members leave the plain ones
    final = m["test_accuracy"].isel(epoch=-1).where(ok)
    for reg in ("momentum", "augmentation"):
        assert reg in regs and not np.allclose(final.sel(regularisation=reg), final.sel(regularisation="none"))
    for figure in ("sgd_bad_minima", "sgd_stability_coupled"):
        assert result.figures[figure].stat().st_size > 20_000


def test_momentum_equals_torch_sgd_per_member():
    """Heavy-ball train_ensemble (a β per member, β = 0 among them) against one torch.optim.SGD(momentum=β) per
    member on the same minibatches, float64; and the engine without momentum equals β = 0 bitwise."""
    gen = np.random.default_rng(5)
    x = torch.as_tensor(gen.standard_normal((40, 6)))
    y = torch.as_tensor(gen.integers(0, 3, 40))
    betas, lrs = [0.0, 0.5, 0.9], [0.1, 0.05, 0.02]
    alpha = torch.tensor(lrs, dtype=torch.float64)
    params = deep_mlp.init_mlp([6, 7, 3], [1, 2, 3], "relu")
    idx = torch.as_tensor(gen.integers(0, 40, (25, 3, 8)))

    def batches(step):
        return x[idx[step]], y[idx[step]]

    def loss(p, batch):
        return deep_mlp.cross_entropy(p, batch, "relu")

    def evaluate(p):
        return {"w": p["W0"][:, 0, 0]}

    run = train_ensemble(params, loss, batches, alpha, [0, 25], evaluate,
                         momentum=torch.tensor(betas, dtype=torch.float64))
    for m in range(3):
        own = {k: v[m].clone().requires_grad_(True) for k, v in params.items()}
        opt = torch.optim.SGD(own.values(), lr=lrs[m], momentum=betas[m])
        for step in range(25):
            opt.zero_grad()
            loss(own, (x[idx[step, m]], y[idx[step, m]])).backward()
            opt.step()
        for k in own:
            torch.testing.assert_close(run.params[k][m], own[k].detach(), rtol=1e-10, atol=1e-12)
    plain = train_ensemble(params, loss, batches, alpha, [0, 25], evaluate)
    zero = train_ensemble(params, loss, batches, alpha, [0, 25], evaluate, momentum=0.0)
    assert all(torch.equal(plain.params[k], zero.params[k]) for k in params)
    assert not torch.allclose(plain.params["W0"][2], run.params["W0"][2])


def test_momentum_on_a_quadratic_follows_the_closed_form():
    """Heavy ball on L = h θ²/2: (θ, v) evolves by the 2 × 2 matrix [[1 − αh, −αβ], [h, β]] (v_{t+1} = βv_t + hθ_t,
    θ_{t+1} = θ_t − α v_{t+1}); its T-th power from (θ_0, 0) against the engine, members with different β."""
    h, step, T = 2.0, 0.1, 30
    betas = [0.0, 0.3, 0.9]
    theta0 = torch.tensor([[1.0], [-0.5], [2.0]], dtype=torch.float64)

    def loss(p, batch):
        return 0.5 * h * (p["theta"] ** 2).sum()

    run = train_ensemble({"theta": theta0}, loss, lambda step: torch.zeros(3, 1, dtype=torch.float64),
                         torch.full((3,), step, dtype=torch.float64), [0, T], lambda p: {"t": p["theta"][:, 0]},
                         momentum=betas)
    for m, beta in enumerate(betas):
        A = np.array([[1 - step * h, -step * beta], [h, beta]])
        expected = np.linalg.matrix_power(A, T) @ np.array([float(theta0[m, 0]), 0.0])
        assert float(run.params["theta"][m, 0]) == pytest.approx(expected[0], rel=1e-10, abs=1e-14)


def test_pixel_shifts_move_an_interior_digit_and_keep_its_pixels():
    """A digit whose outer ring of pixels is blank (blanked: the digits reach the border) keeps its multiset of
    pixel values under every ±1 shift, and the shift (dy, dx) is np.roll by (dy, dx); the identity sits at K // 2;
    an edge pixel shifted out is lost."""
    from sklearn.datasets import load_digits

    interior = np.pad(load_digits().images[:3, 1:-1, 1:-1], ((0, 0), (1, 1), (1, 1)))  # the outer ring blanked
    assert (interior[:, 1:-1, 1:-1] > 0).sum() > 60
    shifted = pixel_shifts(interior, 1)
    assert shifted.shape == (9, 3, 8, 8)
    np.testing.assert_array_equal(shifted[4], interior)
    k = 0
    for dy in (-1, 0, 1):
        for dx in (-1, 0, 1):
            np.testing.assert_array_equal(shifted[k], np.roll(interior, (dy, dx), axis=(1, 2)))
            for a, b in zip(shifted[k], interior):
                np.testing.assert_array_equal(np.sort(a, axis=None), np.sort(b, axis=None))
            k += 1
    edge = np.zeros((1, 8, 8))
    edge[0, 0, 3] = 5.0
    assert pixel_shifts(edge, 1)[1].sum() == 0.0  # (dy, dx) = (−1, 0) moves row 0 out of the frame


def test_shifted_batches_shift_only_their_members_and_share_draws_within_a_seed():
    """Augmented members get, at every batch position, one of the 9 shifts of the example the plain members get;
    the members of a seed (the same group) get the same shifts; other seeds differ; plain members are unchanged."""
    n, d, S = 12, 64, 2
    gen = np.random.default_rng(0)
    x = torch.as_tensor(gen.standard_normal((n, d)), dtype=torch.float32)
    shifted = torch.as_tensor(pixel_shifts(x.numpy().reshape(n, 8, 8), 1).reshape(9, n, d))
    M = 3 * S  # (plain, shifted, shifted) x seed, seed minor
    base = EpochBatches([np.random.default_rng(s) for s in range(S)], n, 4, (x.expand(M, n, d),), copies=3,
                        tiled=True)
    rows = [2, 3, 4, 5]
    aug = ShiftedBatches(base, shifted, rows, [r % S for r in rows], [np.random.default_rng(10 + s) for s in range(S)])
    reference = EpochBatches([np.random.default_rng(s) for s in range(S)], n, 4, (x.expand(M, n, d),), copies=3,
                             tiled=True)
    for step in range(6):
        (b,), (plain,) = aug(step), reference(step)
        torch.testing.assert_close(b[:2], plain[:2], rtol=0, atol=0)
        assert torch.equal(b[2], b[4]) and torch.equal(b[3], b[5]) and not torch.equal(b[2], b[3])
        for r in rows:
            idx = base.perm[r, (step % 3) * 4:(step % 3 + 1) * 4]
            for j in range(4):
                assert any(torch.equal(b[r, j], shifted[k, idx[j]]) for k in range(9))


def test_regularisation_claims_from_known_gaps():
    """The gap claims computed from constructed accuracies: a regularisation whose gap is 0 ± noise closes it and
    shrinks it (paired); one whose gap equals the unregularised gap neither closes nor shrinks it."""
    import xarray as xr

    S = 6
    gen = np.random.default_rng(4)
    acc = np.full((2, 3, S, 2), 0.9)
    noise = 0.002 * gen.standard_normal(S)
    acc[1, 0, :, -1] = 0.9 - (0.10 + noise)  # none: gap 0.10
    acc[1, 1, :, -1] = 0.9 - 0.1 * noise  # momentum: gap ~0
    acc[1, 2, :, -1] = 0.9 - (0.10 + noise)  # augmentation: the same gap as none
    metrics = xr.Dataset({"test_accuracy": (("init", "regularisation", "seed", "epoch"), acc)},
                         coords={"init": ["random", "pretrained"], "regularisation": ["none", "momentum",
                                                                                        "augmentation"]},
                         attrs={"momentum": 0.9, "shift": 1})
    gap_none = _seed_gaps(metrics, "none")
    np.testing.assert_allclose(gap_none, 0.10 + noise, atol=1e-12)
    closes, shrinks = _regularisation_claims(metrics, "momentum", gap_none)
    assert closes.measured == pytest.approx(float(np.mean(0.1 * noise)), abs=1e-12)
    assert closes.verdict == "agrees" and shrinks.verdict == "agrees"
    assert shrinks.measured == pytest.approx(float(np.mean(0.10 + 0.9 * noise)), abs=1e-12)
    # a diverged member (NaN) drops its seed from the pairing, not the whole comparison
    acc[1, 1, 0, -1] = np.nan
    closes, diverged = _regularisation_claims(metrics, "momentum", gap_none)
    assert diverged.verdict == "agrees" and f"{S - 1} seeds" in diverged.where
    assert diverged.measured == pytest.approx(float(np.mean((0.10 + 0.9 * noise)[1:])), abs=1e-12)
    assert closes.measured == pytest.approx(float(np.mean(0.1 * noise[1:])), abs=1e-12)
    acc[1, 1, 0, -1] = 0.9 - 0.1 * noise[0]
    closes, shrinks = _regularisation_claims(metrics, "augmentation", gap_none)
    assert closes.verdict == "disagrees" and shrinks.verdict != "agrees"
    assert shrinks.measured == pytest.approx(0.0, abs=1e-12) and "not smaller" in shrinks.note
    # a regularisation whose seeds scatter so widely that 0 and the unregularised gap both lie in the interval
    # (the paper-scale momentum runs: 0.054 ± 0.093 against 0.021) does not "close" the gap: inconclusive
    wide = np.where(np.arange(S) % 2 == 0, 0.5, -0.5) + 0.1 * noise
    acc[1, 1, :, -1] = 0.9 - wide
    closes, _ = _regularisation_claims(metrics, "momentum", gap_none)
    assert abs(closes.measured) + closes.uncertainty <= closes.tolerance  # would have read "agrees"
    assert closes.verdict == "inconclusive" and "closed gap from an open one" in closes.note
