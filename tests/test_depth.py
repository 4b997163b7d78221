"""The depth type's closed forms against independent routes, its claims on synthetic data with known values, and its
tiny config end to end (issue 17, part 3)."""

import itertools
from math import comb
from pathlib import Path

import numpy as np
import pytest
import yaml

import phaselab
from phaselab.theory import depth as th

CONFIG = Path(__file__).parent / "configs" / "depth.yaml"


def test_deep_tent_network_is_exact_with_2_to_the_k_pieces():
    x = np.arange(2**14 + 1) / 2**14  # dyadic: every kink of Δ^k (k ≤ 8) on the grid
    for k in (1, 3, 5, 8):
        y = th.mlp_forward(th.deep_tent_network(k), x[:, None])[:, 0]
        assert np.array_equal(y, th.sawtooth(x, k))
        assert th.count_pieces(y, x) == 2**k


def test_shallow_construction_mse_by_quadrature_and_unit_count():
    xm = (np.arange(2**16) + 0.5) / 2**16
    for k in (2, 4, 5):
        for N in (1, 2, 5, 2**k - 2, 2**k - 1, 2**k, 2**k + 3):
            w, b, a, c = th.shallow_construction(k, N)
            assert len(w) == N
            mse = np.mean((th.shallow_forward(w, b, a, c, xm) - th.sawtooth(xm, k)) ** 2)
            assert abs(mse - float(th.shallow_upper(k, N))) < 1e-7, (k, N)
            assert float(th.shallow_lower(k, N)) <= mse + 1e-12


def test_lower_bound_holds_for_best_fits_with_fixed_breakpoints():
    """Least-squares piecewise-linear fits with t − 1 random interior knots (t pieces) never beat the bound."""
    rng = np.random.default_rng(3)
    k, xm = 5, (np.arange(8192) + 0.5) / 8192
    y = th.sawtooth(xm, k)
    for t in (2, 4, 8, 12):
        for _ in range(20):
            knots = np.sort(rng.uniform(0, 1, t - 1))
            F = np.column_stack([np.ones_like(xm), xm, th.relu(np.subtract.outer(xm, knots))])
            res = y - F @ np.linalg.lstsq(F, y, rcond=None)[0]
            assert np.mean(res**2) >= float(th.shallow_lower(k, t - 1)) - 1e-6


def test_region_counts_formula_and_grid_counter():
    assert th.regions_deep_max(2, 4, [3])[0] == 176 and th.regions_shallow_max(2, [12])[0] == 79
    assert th.regions_shallow_max(2, [5])[0] == sum(comb(5, j) for j in range(3))
    # N random lines through points near the origin: all crossings inside [−3, 3]², so 1 + N + binom(N, 2) regions
    rng = np.random.default_rng(3)
    N = 6
    angles = np.pi * np.arange(N) / N + rng.uniform(0, 0.2, N)
    W = np.column_stack([np.cos(angles), np.sin(angles)])
    b = rng.uniform(-3, 3, N)
    layers = [(W, b), (np.ones((1, N)), np.zeros(1))]
    pts = np.linalg.solve(np.stack([W[list(p)] for p in itertools.combinations(range(N), 2)]),
                          -np.stack([b[list(p)] for p in itertools.combinations(range(N), 2)])[..., None])[..., 0]
    assert np.abs(pts).max() < 25
    # every region wider than a few grid steps: crossings far apart (precondition for an exact grid count)
    gaps = np.linalg.norm(pts[:, None] - pts[None], axis=-1)[np.triu_indices(len(pts), 1)]
    assert gaps.min() > 10 * 60 / 1500
    assert th.count_regions(layers, -30, 30, 1500) == 1 + N + comb(N, 2)
    # random deep nets: the grid count never exceeds the upper bound
    for s in range(3):
        g = np.random.default_rng(s)
        net = [(g.standard_normal((4, 2)), g.standard_normal(4)), (g.standard_normal((4, 4)), g.standard_normal(4)),
               (g.standard_normal((1, 4)), np.zeros(1))]
        assert th.count_regions(net, -2, 2, 300) <= th.regions_upper(2, [4, 4])


def test_product_gate_error_coefficient_and_identity():
    g = np.linspace(-1, 1, 101)
    X, Y = np.meshgrid(g, g)
    for lam in (0.02, 0.05):
        err = np.abs(th.product_gate(X, Y, lam) - X * Y).max()
        assert abs(err / lam**2 - th.product_gate_error_coefficient()) < 0.01 * th.product_gate_error_coefficient()
    # σ''(0), σ''''(0) of softplus by finite differences
    h = 1e-2
    d2 = (th.softplus(h) - 2 * th.softplus(0.0) + th.softplus(-h)) / h**2
    d4 = (th.softplus(2 * h) - 4 * th.softplus(h) + 6 * th.softplus(0.0) - 4 * th.softplus(-h)
          + th.softplus(-2 * h)) / h**4
    assert abs(d2 - th.SOFTPLUS_D2) < 1e-4 and abs(d4 - th.SOFTPLUS_D4) < 1e-3
    x = np.random.default_rng(1).uniform(-1, 1, (50, 5))
    np.testing.assert_allclose(th.product_identity(x), x.prod(1), atol=1e-12)


def test_product_tree_error_against_quadrature_and_hand_value():
    """C_n λ⁴ (first-order error propagation) against midpoint quadrature of the exact tree, and C_2 by hand."""
    kappa = th.SOFTPLUS_D4 / (6 * th.SOFTPLUS_D2)  # −1/12
    # n = 2: 9 κ² E[x²y²(x² + y²)²] = 9 κ² (2/21 + 2/25)
    assert abs(th.product_tree_mse_coefficient(2) - 9 * kappa**2 * (2 / 21 + 2 / 25)) < 1e-15
    lam = 0.02
    for n, m in ((2, 600), (3, 120)):
        g = (np.arange(m) + 0.5) / m * 2 - 1
        x = np.stack(np.meshgrid(*[g] * n, indexing="ij"), -1).reshape(-1, n)
        mse = np.mean((th.product_tree(x, lam) - x.prod(1)) ** 2) * 3.0**n
        assert abs(mse / (th.product_tree_mse_coefficient(n) * lam**4) - 1) < 5e-3, n
    # the tree is nested gates: ((x0 x1) x2) for n = 3; n − 1 gates, ⌈log2 n⌉ levels
    x = np.random.default_rng(0).uniform(-1, 1, (20, 3))
    nested = th.product_gate(th.product_gate(x[:, 0], x[:, 1], 0.1), x[:, 2], 0.1)
    np.testing.assert_allclose(th.product_tree(x, 0.1), nested, rtol=0, atol=1e-13)
    assert [len(th.product_tree_gates(n)) for n in (2, 5, 8)] == [1, 4, 7]
    assert [th.product_tree_layers(n) for n in (2, 3, 4, 5, 8)] == [1, 2, 2, 3, 3]


def test_equal_split_keeps_the_neuron_count():
    for N in (8, 16, 24, 48):
        for L in (1, 2, 3, 4):
            w = th.equal_split(N, L)
            assert sum(w) == N and len(w) == L and max(w) - min(w) <= 1
    try:
        th.equal_split(3, 4)
    except ValueError:
        pass
    else:
        raise AssertionError("3 neurons cannot fill 4 layers")


def test_parity_variance_against_direct_enumeration():
    d = 5
    X = th.hypercube(d)
    G = np.random.default_rng(2).standard_normal((2**d, 7))
    ghat = np.array([(np.prod(X[:, list(v)], axis=1)[:, None] * G).mean(0) if v else G.mean(0)
                     for r in range(d + 1) for v in itertools.combinations(range(d), r)])
    direct = ((ghat - ghat.mean(0)) ** 2).sum(1).mean()
    out = th.parity_gradient_variance(G)
    assert abs(out["variance"] - direct) < 1e-12
    # Parseval: the variance is 2^−d E‖g‖² less 2^−2d ‖g(𝟙)‖², below the paper's G² 2^−d
    assert abs(out["variance"] - (out["parseval"] - (G[0] ** 2).sum() / 4**d)) < 1e-12
    assert out["variance"] <= out["parseval"] <= out["bound"]


def test_parity_variance_by_degree_against_the_exact_variance():
    d = 8
    rng = np.random.default_rng(4)
    X = th.hypercube(d)
    # ∇_w p_w(x) of a random one-hidden-layer ReLU network p_w = Σ_j a_j relu(w_j·x + b_j) + c, as in the stages
    W, b, a = rng.standard_normal((16, d)) / np.sqrt(d), 0.5 * rng.standard_normal(16), rng.standard_normal(16)
    z = X @ W.T + b
    on = (z > 0) * a
    G = np.concatenate([(on[:, :, None] * X[:, None, :]).reshape(2**d, -1), on, th.relu(z), np.ones((2**d, 1))], 1)
    exact = th.parity_gradient_variance(G)["variance"]
    # enough draws a degree to enumerate every stratum: exact, no standard error
    est, se = th.parity_gradient_variance_by_degree(G, comb(d, d // 2), rng)
    assert abs(est - exact) < 1e-12 * exact and se == 0.0
    # sampled strata: unbiased, within 4 standard errors, over repetitions
    z = []
    for _ in range(20):
        est, se = th.parity_gradient_variance_by_degree(G, 6, rng)
        z.append((est - exact) / se)
    assert np.max(np.abs(z)) < 4 and abs(np.mean(z)) < 4 / np.sqrt(len(z))


def test_depth_end_to_end(tmp_path):
    config = yaml.safe_load(CONFIG.read_text())
    result = phaselab.run(config, "depth", results=tmp_path)
    m, t = result.metrics, result.theory
    assert float(m["deep_max_error"].max()) == 0.0
    assert (m["tent_mse_random_features"] >= t["tent_lower"] - 1e-3).all()
    assert m["k"].attrs["units"] == "1" and m["step"].attrs["units"] == "steps"
    for var in list(m.data_vars) + list(t.data_vars):
        assert "long_name" in (m[var].attrs if var in m else t[var].attrs), var
    assert (m["regions_random_deep"] >= 1).all()
    assert (m["regions_random_deep"] <= t["regions_upper_deep"]).all()
    # trained product nets: at initialisation f = 0, so the relative test MSE is the test set's mean (Π x)² / 3^−n,
    # which is 1 (Var Π x_i = 3^−n) within its Monte Carlo error; equal neuron counts across depths
    init = m["product_net_mse"].isel(product_step=0)
    assert float(abs(init - m["product_test_second_moment"]).max()) < 1e-12 * float(init.max())
    z = (m["product_test_second_moment"] - 1.0) / m["product_test_second_moment_se"]
    assert (np.abs(z) < 4).all()
    neurons = m["product_net_neurons"]
    assert (neurons == m["budget"] * m["product_n"]).all()
    assert (m["product_tree_mse"] > 0).all() and (t["product_tree_neurons"] == 4 * (m["product_n"] - 1)).all()
    assert any(c.figure == "depth_multiply" for c in result.claims)
    regions = [c for c in result.claims if c.figure == "depth_regions"]
    assert [c.relation for c in regions] == [">", ">", "="] and all(c.note for c in regions)
    assert len(result.claims) >= 8
    assert {c.verdict for c in result.claims} <= {"agrees", "disagrees", "inconclusive"}
    assert all(p.stat().st_size > 20_000 for p in result.figures.values())


def _regions_dataset(deep, shallow, trained=None, width=4):
    """Synthetic region counts (depth 1 and L = 2, one row a seed) and the closed-form maxima beside them."""
    import xarray as xr

    deep, shallow = np.asarray(deep, float), np.asarray(shallow, float)
    trained = deep if trained is None else np.asarray(trained, float)
    S, dims = len(deep), ("depth", "regions_seed")
    one = np.full(S, 5.0)
    m = xr.Dataset({"regions_random_deep": (dims, np.stack([one, deep])),
                    "regions_random_shallow": (dims, np.stack([one, shallow])),
                    "regions_trained_deep": (dims, np.stack([one, trained]))},
                   coords={"depth": [1, 2], "regions_seed": np.arange(S)}, attrs={"regions_width": width,
                                                                                 "regions_grid": 100})
    t = xr.Dataset({"regions_max_deep": (("depth",), th.regions_deep_max(2, width, [1, 2]).astype(float)),
                    "regions_max_shallow": (("depth",), th.regions_shallow_max(2, [width, 2 * width]).astype(float))},
                   coords={"depth": [1, 2]})
    return m, t


def test_regions_claims_on_synthetic_counts():
    """(a) the one-sided shortfall below Montúfar's deep maximum (44 for 2 layers of 4) and (b) deep vs shallow
    against 0 with one network's seed spread as the tolerance: the numbers against a hand computation and scipy,
    and every verdict from counts built to give it."""
    from scipy import stats

    from phaselab.experiments.depth.stages import REGIONS_FAR_LOG2, _regions_claims

    g = np.random.default_rng(0)
    shallow = 2.0 ** (4.0 + 0.5 * g.standard_normal(12))
    # deep counts a quarter of the shallow ones, same spread: (a) far below 44, (b) a gap of −2 ≫ the spread 0.5
    deep = shallow[::-1] / 4.0
    m, t = _regions_dataset(deep, shallow)
    a_random, a_trained, b = _regions_claims(m, t)
    short = np.log2(44.0) - np.log2(deep)
    assert a_random.relation == ">" and a_random.theory == REGIONS_FAR_LOG2 == 1.0
    assert a_random.measured == pytest.approx(short.mean(), rel=1e-12)
    lo, hi = stats.ttest_1samp(short, 0.0).confidence_interval(0.95)
    assert a_random.uncertainty == pytest.approx((hi - lo) / 2, rel=1e-12)
    assert a_random.verdict == a_trained.verdict == "agrees" and a_random.figure == "depth_regions"
    gap = np.log2(deep).mean() - np.log2(shallow).mean()
    lo, hi = stats.ttest_ind(np.log2(deep), np.log2(shallow), equal_var=False).confidence_interval(0.95)
    assert b.relation == "=" and b.theory == 0.0 and b.measured == pytest.approx(gap, abs=1e-12)
    assert gap == pytest.approx(-2.0, abs=1e-12)  # the same values, reversed, a quarter
    assert b.uncertainty == pytest.approx((hi - lo) / 2, rel=1e-12)
    assert b.tolerance == pytest.approx(np.std(np.log2(shallow), ddof=1), rel=1e-12)  # equal spreads: pooled = each
    assert b.verdict == "disagrees" and "fewer" in b.note
    # deep = shallow reversed (same values): gap 0, and 12 seeds resolve it within one spread
    _, _, b = _regions_claims(*_regions_dataset(shallow[::-1], shallow))
    assert b.measured == pytest.approx(0.0, abs=1e-12) and b.verdict == "agrees"
    # 3 seeds: the interval of the mean is wider than one spread, whatever the gap — inconclusive, and it says so
    _, _, b = _regions_claims(*_regions_dataset(shallow[:3] * 1.1, shallow[:3]))
    assert b.verdict == "inconclusive" and "seeds" in b.note
    # deep counts near the maximum (40 of 44): the shortfall is below a factor 2 — (a) disagrees
    near = 40.0 + g.uniform(-1, 1, 12)
    a_random, a_trained, _ = _regions_claims(*_regions_dataset(near, shallow, trained=near / 8))
    assert a_random.verdict == "disagrees" and a_trained.verdict == "agrees"
    # one depth only: deep and shallow are the same network — nothing to compare
    m1, t1 = _regions_dataset(deep, shallow)
    m1, t1 = m1.sel(depth=[1]), t1.sel(depth=[1])
    assert _regions_claims(m1, t1)[2].verdict == "inconclusive"


def test_tent_bracket_claim_says_why_gd_lands_above_the_bracket():
    """A shallow net above the constructive bound gets the optimiser's note (its start, the constant ½); inside the
    bracket the numbers speak; the uncertainty is the 95 % Student-t seed interval."""
    import xarray as xr

    from phaselab.experiment import seed_interval
    from phaselab.experiments.depth.stages import _tent_bracket_note

    k, N, pts = 4, 8, 512
    lo, hi = float(th.shallow_lower(k, N)), float(th.shallow_upper(k, N))
    above = np.array([0.074, 0.075, 0.076])
    m = xr.Dataset({"tent_mse": (("k", "units", "tent_seed"), above[None, None]),
                    "tent_mse_random_features": (("k", "units", "tent_seed"), above[None, None] + 0.001),
                    "tent_status": (("k", "units", "tent_seed"), np.full((1, 1, 3), "ok"))},
                   coords={"k": [k], "units": [N], "tent_seed": [0, 1, 2]}, attrs={"tent_points": pts,
                                                                                    "tent_steps": 300})
    mean, half, n = seed_interval(above)
    note = _tent_bracket_note(m, k, N, lo, hi, mean, half)
    x = (np.arange(pts) + 0.5) / pts
    const = np.mean((th.sawtooth(x, k) - 0.5) ** 2)
    assert const == pytest.approx((1 - 1 / 32**2) / 12, rel=1e-12)  # midpoint grid of 32 points a piece, Var = 1/12
    assert "optimiser" in note and f"{const:.3g}" in note and "0.076" in note and "15 knots" in note
    assert _tent_bracket_note(m, k, N, lo, hi, (lo + hi) / 2, 0.001) == ""
    assert "lower bound" in _tent_bracket_note(m, k, N, 0.03, hi, 0.01, 0.001)


def test_tent_closed_form_gradient_equals_autograd_with_padding_and_flat_units():
    """The shallow sawtooth nets train on a closed-form batched gradient (prefix sums over the sorted points); it must
    equal torch.func's vmap(grad) of the loss it replaces, for padded members (mask 0), units with w = 0 (active
    everywhere for b > 0, nowhere for b < 0) and both slope signs; the O(n + units) residual equals the direct one."""
    import torch
    from torch.func import grad, vmap

    from phaselab.experiments.depth.stages import _tent_gradient, _tent_loss, _tent_residual

    g = np.random.default_rng(1)
    M, P, n = 7, 20, 333
    x = torch.as_tensor((np.arange(n) + 0.5) / n)
    y = torch.as_tensor(g.normal(size=n))
    w = g.choice([-1.0, 1.0], (M, P)) * g.uniform(0.2, 2.0, (M, P))
    b = g.normal(size=(M, P))
    w[0, 3], b[0, 3] = 0.0, 0.7  # flat unit, always on
    w[1, 4], b[1, 4] = 0.0, -0.3  # flat unit, never on
    mask = (np.arange(P) < g.integers(1, P + 1, M)[:, None]).astype(float)
    mask[0, :5] = mask[1, :5] = 1.0
    p = {k: torch.as_tensor(v) for k, v in dict(w=w, b=b, a=g.normal(size=(M, P)), c=g.normal(size=M),
                                                 m=mask).items()}
    reference = vmap(grad(_tent_loss), in_dims=(0, None))(p, (x, y))
    closed = _tent_gradient(p, (x, y))
    assert set(closed) == set(reference)
    for name in ("w", "b", "a", "c"):
        scale = float(reference[name].abs().max())
        assert scale > 1e-3, name  # the comparison is not between zeros
        assert float((closed[name] - reference[name]).abs().max()) <= 1e-12 * scale, name
    assert float(closed["m"].abs().max()) == 0.0  # the padding mask is not trained
    assert float(closed["w"][mask == 0].abs().max()) == 0.0  # padded units get no gradient
    direct = vmap(_tent_loss, in_dims=(0, None))(p, (x, y))
    assert torch.allclose(0.5 * (_tent_residual(p, x, y) ** 2).mean(1), direct, rtol=1e-12, atol=0)
