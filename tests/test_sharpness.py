"""ε-sharpness against closed forms on quadratics, λ_max against numpy's eigvalsh on a small net, the train-to-a-
target-loss protocol against one uninterrupted run, the claims against numbers worked by hand and scipy's paired
t-test, the η/B law of SGD on linear regression against simulation, and the sharpness experiment end to end."""

import copy
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

import phaselab
from phaselab.config import validate
from phaselab.curvature import Flat, epsilon_sharpness, top_eigenvalue
from phaselab.experiment import Run
from phaselab.experiments import sharpness as experiment
from phaselab.experiments.sharpness import stages
from phaselab.theory.sgd_noise import excess_loss, excess_loss_small_eta, stability_limit

TINY = yaml.safe_load((Path(__file__).parent / "configs" / "sharpness.yaml").read_text())


def test_epsilon_sharpness_of_a_diagonal_quadratic():
    """f = ½ Σ a_i x_i², a_i > 0: the maximum over the box is at the corner y_i = sign(x_i) ε(|x_i| + 1)."""
    a = torch.tensor([2.0, 0.5, 1.0], dtype=torch.float64)

    def f(p, batch):
        return 0.5 * (a * p["w"] ** 2).sum()

    x = torch.tensor([[1.0, -2.0, 0.3], [-0.5, 0.1, 4.0]], dtype=torch.float64)
    eps = 1e-2
    sharp, first = epsilon_sharpness(f, {"w": x}, None, epsilon=eps, steps=10)
    box = eps * (x.abs() + 1)
    f0 = 0.5 * (a * x**2).sum(1)
    fmax = 0.5 * (a * (x.abs() + box) ** 2).sum(1)
    np.testing.assert_allclose(sharp.numpy(), (100 * (fmax - f0) / (1 + f0)).numpy(), rtol=1e-12)
    np.testing.assert_allclose(first.numpy(), (100 * (a * x.abs() * box).sum(1) / (1 + f0)).numpy(), rtol=1e-12)


def test_eta_over_b_formula_limits():
    """Small η at fixed η/B gives η d σ²/(4B); the formula diverges at the stability limit η(1 + (d+1)/B) = 2."""
    d, noise = 20, 0.7
    for batch in (1, 4, 64):
        ratio = 1e-5
        assert excess_loss(ratio * batch, batch, d, noise) == pytest.approx(excess_loss_small_eta(ratio, d, noise),
                                                                            rel=1e-3)
        limit = float(stability_limit(batch, d))
        assert np.isfinite(excess_loss(0.999 * limit, batch, d, noise))
        assert excess_loss(limit, batch, d, noise) == np.inf
    # B = d = 1, η = 0.5: d η σ² / (2B(2 − η − η(d+1)/B)) = 0.5 σ² / (2 · 0.5)
    assert excess_loss(0.5, 1, 1, noise) == pytest.approx(0.5 * noise)


def test_eta_over_b_formula_against_sgd_simulation(tmp_path):
    """The time-averaged stationary excess loss of SGD (train_ensemble, fresh samples) against the exact formula,
    at η/B ∈ {0.01, 0.04} and B ∈ {2, 8}: at B = 8, η = 0.32 it lies 60 % above the small-η value, and the
    simulation follows the exact formula, not the small-η one."""
    config = {"seed": 3, "device": "cpu", "experiments": {"s": copy.deepcopy(TINY["experiments"]["sharp"])}}
    exp = config["experiments"]["s"]
    exp["seeds"] = 8
    exp["linear_regression"] = {"d": 10, "noise_variance": 0.5, "batch_size": [2, 8], "eta_over_batch": [0.01, 0.04],
                                "time": 60, "burn_in": 0.2, "checkpoints": 600}
    validate(config)
    for cell in experiment.cells(exp):
        if isinstance(cell, experiment.LinregCell):
            with open(tmp_path / "log", "w") as log:
                ds = stages.train(Run(config, "s", log_file=log), cell, None)
            B = cell.batch_size
            sim = ds["excess_loss"].sel(linreg_batch_size=B).mean("seed").values
            ratios = ds["eta_over_batch"].values
            exact = excess_loss(ratios * B, B, 10, 0.5)
            np.testing.assert_allclose(sim, exact, rtol=0.08)
            if B == 8:
                small = excess_loss_small_eta(ratios, 10, 0.5)
                assert exact[-1] > 1.5 * small[-1] and abs(sim[-1] / small[-1] - 1) > 0.3


def test_epsilon_sharpness_of_a_quadratic_is_its_best_corner():
    """f = ½ (w − c)ᵀ H (w − c), H positive definite and not diagonal: f is convex, so its maximum over the box
    |y_i| ≤ ε(|x_i| + 1) is at one of the 2^P corners, enumerated here. With H = u uᵀ + 0.1 I and x − c along u, the
    gradient points to the best corner from the start and the ascent must land on it exactly; for a random H the
    ascent is a lower bound of the corner maximum."""
    rng = np.random.default_rng(0)
    P = 6
    corners = torch.tensor(np.array(np.meshgrid(*[[-1.0, 1.0]] * P)).reshape(P, -1).T)  # (2^P, P)

    def best_corner(H, c, x, eps):
        box = eps * (x.abs() + 1)
        f = 0.5 * torch.einsum("kp,pq,kq->k", x + corners * box - c, H, x + corners * box - c)
        f0 = 0.5 * (x - c) @ H @ (x - c)
        return float(100 * (f.max() - f0) / (1 + f0))

    u = torch.tensor(rng.standard_normal(P))
    cases = [(torch.outer(u, u) + 0.1 * torch.eye(P), torch.tensor(rng.standard_normal(P)), 0.3)]
    A = torch.tensor(rng.standard_normal((P, P)))
    cases.append((A @ A.T + 0.1 * torch.eye(P), torch.tensor(rng.standard_normal(P)), None))
    for k, (H, c, along) in enumerate(cases):
        x = c + along * u if along is not None else torch.tensor(rng.standard_normal(P))

        def f(p, batch, H=H, c=c):
            return 0.5 * (p["w"] - c) @ H @ (p["w"] - c)

        for eps in (1e-3, 5e-2):
            sharp, _ = epsilon_sharpness(f, {"w": x[None]}, None, epsilon=eps, steps=20)
            exact = best_corner(H, c, x, eps)
            if k == 0:
                assert float(sharp[0]) == pytest.approx(exact, rel=1e-12)
            else:
                assert 0 < float(sharp[0]) <= exact * (1 + 1e-12)


def test_lanczos_sharpness_of_a_two_hidden_layer_net_against_numpy_eigvalsh():
    """λ_max of the square loss of a tanh net 3-4-3-2 (P = 43 parameters) at two random points: Lanczos with
    iters = P against numpy.linalg.eigvalsh of the full Hessian (torch.autograd.functional.hessian)."""
    from functools import partial

    from phaselab.models import deep_mlp

    torch.manual_seed(0)
    params = deep_mlp.init_mlp([3, 4, 3, 2], [11, 12], "tanh", 1.0)
    x, y = torch.randn(16, 3, dtype=torch.float64), torch.randn(16, 2, dtype=torch.float64)
    loss = partial(deep_mlp.squared_loss, activation="tanh")
    flat = Flat(params)
    theta = flat.flatten(params)
    lam = top_eigenvalue(loss, params, (x, y), iters=theta.shape[1])
    for m in range(2):
        H = torch.autograd.functional.hessian(lambda t: loss(flat.unflatten_one(t), (x, y)), theta[m]).numpy()
        assert float(lam[m]) == pytest.approx(np.linalg.eigvalsh(H)[-1], rel=1e-8)


def _tiny_config(**mlp):
    config = copy.deepcopy(TINY)
    config["experiments"]["sharp"]["mlp"].update(mlp)
    validate(config)
    return config


def test_training_to_a_target_loss_stops_each_member_where_one_long_run_reaches_it(tmp_path):
    """The segmented, stop-and-leave ensemble against one uninterrupted train_ensemble run of all members with the
    same init and minibatches, evaluated every check_every steps: each member stops at the first check where the
    long run's training loss is ≤ the target, with the long run's loss there."""
    from functools import partial

    from torch.func import vmap

    from phaselab import data
    from phaselab.engines.ensemble import MLPSpec, train_ensemble
    from phaselab.models import deep_mlp

    config = _tiny_config()
    exp = config["experiments"]["sharp"]
    mlp, S = exp["mlp"], exp["mlp"]["seeds"]
    run = Run(config, "sharp", log_file=open(tmp_path / "log", "w"))
    arrays = stages.make_data(run, "digits")
    [cell] = [c for c in experiment.cells(exp) if isinstance(c, experiment.MlpCell) and c.batch_size == 8]
    ds = stages.train(run, cell, arrays).sel(batch_size=8)

    lrs = sorted(mlp["lr"])
    x, y = (torch.as_tensor(arrays[k], dtype=torch.float64) for k in ("x_train", "y_train"))
    member_seed = torch.arange(S).repeat(len(lrs))
    params = deep_mlp.init_mlp([64, *mlp["widths"], 10], [data.derive_seed(0, data.MLP_INIT, s)
                                                          for s in member_seed.tolist()], "tanh", mlp["output_scale"])
    gen = torch.Generator().manual_seed(data.derive_seed(0, data.MINIBATCHES, 1, 8))

    def batches(step):
        idx = torch.randint(0, len(x), (S, 8), generator=gen)[member_seed]
        return x[idx], y[idx]

    loss = partial(deep_mlp.squared_loss, activation="tanh")
    checks = list(range(mlp["check_every"], int(ds["steps"].max()) + 1, mlp["check_every"]))
    long = train_ensemble(params, loss, batches, torch.tensor(np.repeat(lrs, S)), checks,
                          lambda p: {"train_loss": vmap(loss, in_dims=(0, None))(p, (x, y))}, model=MLPSpec("tanh"))
    curve = long.metrics["train_loss"].reshape(len(lrs), S, -1)
    first = np.argmax(curve <= mlp["target_loss"], axis=-1)
    assert (curve <= mlp["target_loss"]).any(-1).all() and ds["reached_target"].all()
    np.testing.assert_array_equal(ds["steps"].values, np.asarray(checks)[first])
    np.testing.assert_allclose(ds["train_loss"].values, np.take_along_axis(curve, first[..., None], -1)[..., 0],
                               rtol=1e-10)
    assert len(np.unique(ds["steps"].values)) > 1  # members did stop at different steps


def test_paired_difference_against_scipy_paired_t_test():
    from scipy.stats import ttest_rel

    rng = np.random.default_rng(1)
    small, large = rng.random(7), rng.random(7) + 0.3
    mean, half, n = stages.paired_difference(large, small)
    ci = ttest_rel(large, small).confidence_interval(0.95)
    assert n == 7 and mean == pytest.approx((ci.low + ci.high) / 2) and half == pytest.approx((ci.high - ci.low) / 2)
    large[2] = np.nan
    assert stages.paired_difference(large, small)[2] == 6
    assert stages.paired_difference([1.0, np.nan], [0.5, 0.2]) == (None, None, 1)
    # normalised: (3s − s)/(3s + s) = 0.5 for every seed, no spread
    assert stages.paired_difference(3 * small, small, normalise=True) == pytest.approx((0.5, 0.0, 7))


def test_equal_eta_over_b_pairs():
    assert stages.equal_eta_over_b_pairs([25, 250], [0.05, 0.5]) == [((25, 0.05), (250, 0.5))]
    # three diagonals, ordered by η/B, each from its smallest to its largest B
    assert stages.equal_eta_over_b_pairs([32, 128, 512], [0.025, 0.1, 0.4]) == [
        ((128, 0.025), (512, 0.1)), ((32, 0.025), (512, 0.4)), ((32, 0.1), (128, 0.4))]
    assert stages.equal_eta_over_b_pairs([8, 32], [0.1, 0.2]) == []


def _synthetic_metrics(S=6):
    """Metrics with hand-set values: B ∈ {10, 100}, η ∈ {0.1, 1}: (10, 0.1) and (100, 1) share η/B = 0.01."""
    import xarray as xr

    rng = np.random.default_rng(2)
    base = 1 + rng.random(S)
    shape = (2, 2, S)  # batch_size, lr, seed
    sharp = np.empty(shape)
    sharp[0] = base  # small batch
    sharp[1] = 3 * base  # large batch: (3 − 1)/(3 + 1) = 0.5 in every seed, at both η
    test = np.full(shape, 0.2)
    test[1, 0] = 0.1  # large batch at η = 0.1 generalises better by 0.1 in every seed: the opposite sign
    test[1, 1] = 0.2 + 0.01 * (-1) ** np.arange(S)  # mean 0 over an even number of seeds: no sign
    train = np.zeros(shape)
    dims = ("batch_size", "lr", "seed")
    lin = xr.DataArray(np.full((1, 1, S), 2.0), dims=("linreg_batch_size", "eta_over_batch", "seed"))
    metrics = xr.Dataset({
        "sharpness": (dims, sharp), "eps_sharpness": (dims, sharp), "eps_sharpness_first_order": (dims, sharp / 2),
        "test_error": (dims, test),
        "train_error": (dims, train), "generalisation_gap": (dims, test - train),
        "steps": (dims, np.full(shape, 100)), "reached_target": (dims, np.ones(shape, bool)),
        "status": (dims, np.full(shape, "ok")), "excess_loss": lin * (1 + 0.01 * (-1) ** np.arange(S)),
        "linreg_status": lin.copy(data=np.full((1, 1, S), "ok"))},
        coords={"batch_size": [10, 100], "lr": [0.1, 1.0], "seed": np.arange(S), "linreg_batch_size": [1],
                "eta_over_batch": [0.01]})
    theory = xr.Dataset({"excess_loss": lin.isel(seed=0, drop=True) * 1.05})
    return metrics, theory


def test_claims_from_hand_set_numbers():
    metrics, theory = _synthetic_metrics()
    out = stages.claims(metrics, theory)
    assert len(out) == 1 + 4 * 2 + 2
    lin, keskar, jast = out[0], out[1:9], out[9:]
    # |2 − 2.1| / 2.1 = 0.048 and the SEM 0.02/√5/2.1 = 0.004 together stay below 0.08: agrees
    assert lin.measured == pytest.approx(0.1 / 2.1) and lin.verdict == "agrees"
    by = {(c.where.split(",")[0], name): c for c, name in zip(keskar, ["sharpness", "eps", "test", "gap"] * 2)}
    sharp = by[("η = 0.1", "sharpness")]
    assert (sharp.measured, sharp.uncertainty, sharp.theory, sharp.tolerance) == pytest.approx((0.5, 0, 0, 0))
    assert sharp.relation == ">"  # a sign: the normalised difference > 0
    assert sharp.verdict == "agrees" and sharp.figure == "sharpness_vs_batch"
    worse = by[("η = 0.1", "test")]
    assert worse.measured == pytest.approx(-0.1) and worse.verdict == "disagrees" and "opposite sign" in worse.note
    none = by[("η = 1", "test")]
    assert none.measured == pytest.approx(0.0, abs=1e-15) and none.verdict == "inconclusive"
    assert none.uncertainty > 0 and "contains 0" in none.note
    gap = by[("η = 1", "gap")]
    assert (gap.relation, gap.theory, gap.tolerance) == (">", 0.0, 0.0)
    # equal η/B = 0.01, (10, 0.1) against (100, 1): λ_max differs (normalised 0.5, no spread: beyond 3 half-widths),
    # the test error does not (differences ±0.01, mean 0)
    assert [c.verdict for c in jast] == ["disagrees", "agrees"] and jast[0].measured == pytest.approx(0.5)
    assert jast[1].measured == pytest.approx(0.0, abs=1e-15) and jast[1].tolerance == 2 * jast[1].uncertainty > 0
    assert "η/B = 0.01" in jast[0].where and jast[0].figure == "eta_over_b"
    # equal values at equal η/B agree
    metrics["sharpness"][1, 1] = metrics["sharpness"][0, 0]
    jast = stages.claims(metrics, theory)[9:]
    assert [c.verdict for c in jast] == ["agrees", "agrees"] and jast[0].measured == 0.0
    # members that did not reach the target are left out
    metrics["reached_target"][1, 0, :5] = False
    assert "1 seed pairs" in stages.claims(metrics, theory)[1].where
    assert stages.claims(metrics, theory)[1].verdict == "inconclusive"


def test_sharpness_end_to_end(tmp_path):
    result = phaselab.run(TINY, "sharp", results=tmp_path)
    metrics, theory = result.metrics, result.theory
    assert dict(metrics["sharpness"].sizes) == {"batch_size": 2, "lr": 2, "seed": 3}
    # the parts' seed counts differ (3 MLP, 2 linear regression): the shorter is padded, its status "absent"
    assert dict(metrics["excess_loss"].sizes) == {"linreg_batch_size": 2, "eta_over_batch": 2, "seed": 3}
    assert (metrics["linreg_status"].sel(seed=2) == "absent").all()
    assert metrics["excess_loss"].sel(seed=2).isnull().all()
    assert (metrics["linreg_status"].sel(seed=[0, 1]) == "ok").all()
    assert metrics["sharpness"].attrs["units"] == "1" and metrics["eps_sharpness"].attrs["units"] == "percent"
    assert set(np.unique(metrics["status"].values)) <= {"ok", "diverged"}
    reached = metrics["reached_target"].values.astype(bool)
    assert reached.all() and (metrics["train_loss"].values <= 0.2).all()
    assert (metrics["steps"].values % 10 == 0).all() and (metrics["steps"].values <= 600).all()
    np.testing.assert_allclose(metrics["generalisation_gap"], metrics["test_error"] - metrics["train_error"])
    assert metrics["linreg_steps"].values.tolist() == [500, 125]  # time / η_min = 5 / (0.01 B)
    np.testing.assert_allclose(theory["excess_loss"].sel(linreg_batch_size=4).values,
                               excess_loss(np.array([0.04, 0.08]), 4, 5, 1.0))
    np.testing.assert_allclose(theory["stability_threshold"].values, [20.0, 4.0])
    for figure in experiment.FIGURES:
        assert result.figures[figure].stat().st_size > 20_000
    claims = result.claims
    assert len(claims) == 1 + 4 * 2 + 2 and {c.figure for c in claims} == set(experiment.FIGURES)
    assert claims[0].tolerance == 0.08 and claims[0].where.startswith("linear-regression excess loss at 4 (B, η/B)")
    assert "η/B = 0.0125: B = 8, η = 0.1 vs B = 40, η = 0.5, 3 seed pairs" in claims[-1].where


def test_unstable_eta_over_b_is_rejected():
    from phaselab.config import ConfigError

    exp = copy.deepcopy(TINY["experiments"]["sharp"])
    exp["linear_regression"].update(batch_size=[1], eta_over_batch=[0.5], d=5, noise_variance=1.0, time=5,
                                    burn_in=0.2, checkpoints=10)
    exp["mlp"].update(divergence_threshold=1e4)
    with pytest.raises(ConfigError, match="linear_regression.eta_over_batch"):
        experiment.check("experiments.sharp", exp)
