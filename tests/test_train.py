"""The batched engine against theory: closed forms, the Saad–Solla ODE, held-out estimates, divergence, seeds."""

import numpy as np
import pytest
import torch

from phaselab import data
from phaselab.engines.committee import train_committee_ensemble
from phaselab.theory.committee import ode_risk

torch.set_num_threads(1)


def run(d=64, p=2, k=2, seeds=2, lr=(1.0,), times=(0.0, 1.0), noise=0.0, W0=None, n_test=0, **kw):
    arrays = data.teacher_student_data(d, k, seeds, max(n_test, 1), config_seed=7)
    W0 = data.student_init(d, p, seeds, 1.0, config_seed=7) if W0 is None else W0
    steps = np.round(np.asarray(times) * d).astype(int)
    result = train_committee_ensemble(
        W0, arrays["teacher"], np.asarray(lr), steps, [data.derive_seed(7, data.STREAM, d, s) for s in range(seeds)],
        noise=noise, test_x=arrays["test_x"] if n_test else None, test_f=arrays["test_f"] if n_test else None, **kw,
    )
    return result, arrays


@pytest.mark.parametrize("k", [1, 3])
def test_zero_student_has_risk_one_over_6k(k):
    result, _ = run(d=50, p=2, k=k, W0=np.zeros((2, 2, 50), np.float32), times=(0.0,))
    np.testing.assert_allclose(result.risk[..., 0], 1 / (6 * k), rtol=1e-5)


def test_simulation_follows_the_saad_solla_ode():
    """κ + δ = 0 line, d = 400, p = k = 2, Δ = 0.01: seed-mean R(t) within 10 % of the seed-mean ODE for t ≤ 20."""
    d, p, k, gamma, noise = 400, 2, 2, 1.0, 0.01
    times = np.concatenate([[0.0], np.geomspace(0.25, 20, 12)])
    result, arrays = run(d=d, p=p, k=k, seeds=4, lr=(gamma,), times=times, noise=noise)
    P = np.einsum("skd,sld->skl", arrays["teacher"].astype(float), arrays["teacher"].astype(float)) / d
    ode = np.mean([ode_risk(result.Q0[s], result.M0[s], P[s], times, gamma, p, k, noise=noise) for s in range(4)], 0)
    sim = result.risk[:, 0].mean(0)
    assert sim[-1] < 0.2 * sim[0]  # it learned
    rel = np.abs(sim - ode) / ode
    assert rel.max() < 0.10, rel


def test_held_out_risk_estimates_the_population_risk():
    result, _ = run(d=100, p=3, k=2, seeds=2, lr=(0.5, 2.0), times=(0.0, 2.0), n_test=8000)
    # ½(f*-f)² has a standard deviation below its mean here; 8000 samples → a few % error
    np.testing.assert_allclose(result.test_risk, result.risk[..., -1], rtol=0.08)


def test_divergent_learning_rate_is_recorded_not_crashed():
    result, _ = run(d=64, p=2, k=1, lr=(1.0, 1e5), times=(0.0, 0.5, 1.0, 2.0), divergence_threshold=1e4)
    assert (result.diverged_step[:, 0] == -1).all()
    assert (result.diverged_step[:, 1] > 0).all()
    assert np.isnan(result.risk[:, 1, -1]).all() and np.isfinite(result.risk[:, 0]).all()


def test_same_seed_same_numbers_and_members_independent():
    a, _ = run(lr=(0.5, 1.0), times=(0.0, 1.0, 2.0))
    b, _ = run(lr=(0.5, 1.0), times=(0.0, 1.0, 2.0))
    np.testing.assert_array_equal(a.risk, b.risk)
    # a member's trajectory does not depend on the other members of its ensemble
    c, _ = run(lr=(1.0,), times=(0.0, 1.0, 2.0))
    np.testing.assert_allclose(c.risk[:, 0], a.risk[:, 1], rtol=1e-5)


def test_seeds_are_derived_in_one_place():
    assert data.derive_seed(0, data.STREAM, 64, 1) == data.derive_seed(0, data.STREAM, 64, 1)
    seeds = {data.derive_seed(c, purpose, 64, s) for c in (0, 1) for purpose in (1, 2, 3, 4) for s in range(3)}
    assert len(seeds) == 24


def test_teacher_rows_orthogonal_with_norm_sqrt_d():
    teacher = data.orthogonal_teacher(200, 4, np.random.default_rng(0))
    np.testing.assert_allclose(teacher @ teacher.T / 200, np.eye(4), atol=1e-12)


def test_batched_engine_replays_the_per_run_loop():
    """Same seed, same stream: the fused numba kernel, the torch ensemble and the plain per-member loop agree."""
    from phaselab.engines.committee import train_one_member

    d, p, k, lr, noise = 100, 3, 2, (0.5, 2.0), 0.1
    times = (0.0, 0.5, 2.0, 5.0)
    numba_run, arrays = run(d=d, p=p, k=k, lr=lr, times=times, noise=noise, backend="numba")
    torch_run, _ = run(d=d, p=p, k=k, lr=lr, times=times, noise=noise, backend="torch")
    W0 = data.student_init(d, p, 2, 1.0, config_seed=7)
    steps = np.round(np.asarray(times) * d).astype(int)
    for s in range(2):
        for gi, gamma in enumerate(lr):
            single = train_one_member(W0[s], arrays["teacher"][s], gamma, steps,
                                      data.derive_seed(7, data.STREAM, d, s), noise=noise)
            np.testing.assert_allclose(numba_run.risk[s, gi], single, rtol=2e-4)
            np.testing.assert_allclose(torch_run.risk[s, gi], single, rtol=2e-4)
    assert numba_run.backend == "numba" and torch_run.backend == "torch"
    assert (numba_run.risk[:, :, -1] < 0.8 * numba_run.risk[:, :, 0]).all()  # it learned


def test_general_engine_equals_one_member_at_a_time():
    """vmapped full-batch GD on linear regression: each member equals its own plain loop and the closed form."""
    from phaselab.engines.ensemble import train_ensemble

    gen = torch.Generator().manual_seed(0)
    X, w_true = torch.randn(40, 5, generator=gen, dtype=torch.float64), torch.randn(5, dtype=torch.float64)
    y = X @ w_true

    def loss(p, batch):
        Xb, yb = batch
        return 0.5 * ((Xb @ p["w"] - yb) ** 2).mean()

    lr = torch.tensor([0.05, 0.2, 50.0], dtype=torch.float64)  # the last one is far above 2/λ_max: it diverges
    run = train_ensemble({"w": torch.zeros(3, 5, dtype=torch.float64)}, loss, lambda step: (X, y), lr, [0, 10, 200],
                         lambda p: {"loss": 0.5 * ((p["w"] @ X.T - y) ** 2).mean(1)}, batch_in_dims=None,
                         divergence_threshold=1e6)
    H = X.T @ X / 40
    for m, eta in enumerate(lr[:2]):
        w = torch.zeros(5, dtype=torch.float64)
        for _ in range(200):
            w = w - eta * (H @ w - X.T @ y / 40)
        np.testing.assert_allclose(run.params["w"][m].numpy(), w.numpy(), rtol=1e-12)
        # closed form of GD on a quadratic: w_t − w* = (I − ηH)^t (w_0 − w*)
        closed = w_true - torch.linalg.matrix_power(torch.eye(5, dtype=torch.float64) - eta * H, 200) @ w_true
        np.testing.assert_allclose(w.numpy(), closed.numpy(), atol=1e-10)
    assert run.diverged_step.tolist() == [-1, -1, 10] and np.isnan(run.metrics["loss"][2, -1])
    assert run.metrics["loss"][1, -1] < run.metrics["loss"][0, -1] < run.metrics["loss"][0, 0]


def test_memory_budget_splits_the_ensemble_without_changing_the_result():
    from phaselab.engines.committee import ensemble_bytes

    kwargs = dict(d=64, p=3, k=2, seeds=3, lr=(0.5, 1.0, 2.0), times=(0.0, 1.0, 3.0), noise=0.01, n_test=50)
    whole, _ = run(**kwargs)
    budget = 1.5 * ensemble_bytes(1, 3, 3, 64) / 2**20  # room for one seed group at a time
    chunked, _ = run(**kwargs, memory_budget_mb=budget)
    tiny, _ = run(**kwargs, memory_budget_mb=0.6 * ensemble_bytes(1, 3, 3, 64) / 2**20)  # members split too
    for other in (chunked, tiny):  # the weights are identical; the float64 risk sums in a batch-shaped order
        np.testing.assert_allclose(other.risk, whole.risk, rtol=1e-13)
        np.testing.assert_allclose(other.test_risk, whole.test_risk, rtol=1e-5)  # fp32 held-out evaluation
        np.testing.assert_array_equal(other.Q0, whole.Q0)
