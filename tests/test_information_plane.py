"""The binned mutual-information estimator against exact values, the rebuilt 12-bit task, and the
information_plane experiment end to end."""

from pathlib import Path

import numpy as np
import yaml

import phaselab
from phaselab import data
from phaselab.experiments import information_plane as experiment
from phaselab.experiments.information_plane import stages
from phaselab.theory.information import entropy_of_rows, label_entropy, mutual_information


def test_injective_layer_carries_log2_of_the_number_of_distinct_inputs():
    """A deterministic injective layer (an invertible linear map, bins finer than the gaps between images):
    I(X;T) = log2(number of distinct inputs), I(T;Y) = H(Y) = I(X;Y)."""
    rng = np.random.default_rng(0)
    distinct = rng.standard_normal((37, 5))
    x = np.repeat(distinct, 4, axis=0)  # 148 equally likely samples of 37 distinct inputs
    y = np.repeat(rng.integers(0, 3, 37), 4)  # labels, a function of the input
    T = x @ rng.standard_normal((5, 5))
    ixt, ity = mutual_information(T, y, bin_width=1e-6)
    np.testing.assert_allclose(ixt, np.log2(37), rtol=1e-12)
    counts = np.bincount(y) / len(y)
    np.testing.assert_allclose(ity, -(counts * np.log2(counts)).sum(), rtol=1e-12)
    np.testing.assert_allclose(ity, label_entropy(y), rtol=1e-12)


def test_coarse_layers_lose_information():
    """A constant layer carries 0 bits; the layer T = x₁ on the 12-bit inputs carries I(X;T) = 1 bit and
    I(T;Y) = H(Y) − H(Y|x₁), counted by hand."""
    x, y = data.twelve_bit_task()
    ixt, ity = mutual_information(np.zeros((len(x), 3)), y, bin_width=0.07)
    assert ixt == 0 and abs(ity) < 1e-12
    ixt, ity = mutual_information(x[:, :1], y, bin_width=0.07)
    assert ixt == 1.0

    def h(p):
        return -sum(q * np.log2(q) for q in p if q > 0)

    cond = sum(0.5 * h([np.mean(y[x[:, 0] == s]), 1 - np.mean(y[x[:, 0] == s])]) for s in (-1, 1))
    np.testing.assert_allclose(ity, h([y.mean(), 1 - y.mean()]) - cond, rtol=1e-12)


def test_twelve_bit_task_is_rotation_invariant_and_balanced():
    """All 4096 inputs; p(y = 1) = 2036/4096; the label is invariant under the icosahedron's rotations (here the
    rotation by 2π/5 about the axis through vertex 0), which permute the 12 bits."""
    x, y = data.twelve_bit_task()
    assert x.shape == (4096, 12) and len(np.unique(x, axis=0)) == 4096
    assert y.sum() == 2036 and abs(label_entropy(y) - 1) < 1e-4
    assert entropy_of_rows(x) == 12.0
    v = data.icosahedron()
    axis = v[0]
    K = np.array([[0, -axis[2], axis[1]], [axis[2], 0, -axis[0]], [-axis[1], axis[0], 0]])
    R = np.eye(3) + np.sin(2 * np.pi / 5) * K + (1 - np.cos(2 * np.pi / 5)) * K @ K  # Rodrigues
    perm = np.array([np.argmin(np.linalg.norm(v - R @ u, axis=1)) for u in v])
    np.testing.assert_allclose(v[perm], (R @ v.T).T, atol=1e-12)  # a symmetry of the icosahedron
    assert sorted(perm) == list(range(12)) and (perm != np.arange(12)).sum() == 10
    rotated = np.empty_like(x)
    rotated[:, perm] = x  # bit i moves to vertex perm[i]
    index = ((rotated > 0) * (1 << np.arange(12))).sum(1)  # row of the rotated pattern
    np.testing.assert_array_equal(y[index], y)


def test_information_plane_end_to_end(tmp_path):
    config = yaml.safe_load((Path(__file__).parent / "configs" / "information_plane.yaml").read_text())
    result = phaselab.run(config, "ip", results=tmp_path)
    metrics, theory = result.metrics, result.theory
    assert dict(metrics["ixt"].sizes) == {"activation": 2, "seed": 2, "epoch": 4, "layer": 6}
    assert list(metrics["activation"].values) == ["tanh", "relu"]
    assert metrics["ixt"].attrs["units"] == "bit" and metrics["layer_width"].values.tolist() == [10, 7, 5, 4, 3, 2]
    assert theory["input_entropy"] == 12.0 and abs(float(theory["label_information"]) - 1) < 1e-4
    # data processing: no layer carries more than H(X) about the input or more than I(X;Y) about the label
    assert np.all(metrics["ixt"].values <= 12 + 1e-12) and np.all(metrics["ity"].values <= 1 + 1e-12)
    assert np.all(metrics["ity"].values <= metrics["ixt"].values + 1e-12)
    for figure in experiment.FIGURES:
        assert result.figures[figure].stat().st_size > 20_000
    # the estimator is exact for its binned layers: both ceilings hold, so both claims agree
    assert [c.verdict for c in result.claims[:2]] == ["agrees", "agrees"]
    # compression of the last hidden layer (layer 5), recomputed: (peak − mean over epochs ≥ T/√10)/peak per seed
    tanh, relu, contrast = result.claims[2:]
    ixt = metrics["ixt"].sel(layer=5).transpose("activation", "seed", "epoch").values
    epochs = metrics["epoch"].values
    fall = (ixt.max(-1) - ixt[..., epochs >= epochs[-1] / np.sqrt(10)].mean(-1)) / ixt.max(-1)
    np.testing.assert_allclose([tanh.measured, relu.measured, contrast.measured],
                               [fall[0].mean(), fall[1].mean(), (fall[0] - fall[1]).mean()], rtol=1e-12)
    for claim in (tanh, relu):
        assert "H(X) = 12 bits" in claim.where and "bin width" in claim.where  # the estimator caveat, stated


def synthetic_metrics(tanh: np.ndarray, relu: np.ndarray):
    """An information-plane dataset whose last hidden layer's I(X;T) is ``tanh``/``relu`` (seed, epoch)."""
    import xarray as xr

    S, E = tanh.shape
    ixt = np.zeros((2, S, E, 3))
    ixt[..., 1] = np.stack([tanh, relu])  # layer 2 of 3: the last hidden layer
    return xr.Dataset({"ixt": (("activation", "seed", "epoch", "layer"), ixt),
                       "status": ("seed", np.full(S, "ok"))},
                      coords={"activation": ["tanh", "relu"], "seed": np.arange(S),
                              "epoch": [0, 1, 3, 10, 30, 100, 300, 1000], "layer": [1, 2, 3]},
                      attrs={"bin_width": 0.07})


def test_compression_claims_on_synthetic_curves():
    """tanh curves that rise to 8 bits and fall to 4 (last half-decade: epochs 316+, i.e. 1000 only, so the fall is
    (8 − 4)/8 = 1/2 with a spread), ReLU curves that only rise (fall 0): tanh compresses, ReLU does not, tanh more
    than ReLU — all agree; ReLU curves that fall by 30 %: 'no compression' disagrees."""
    up = np.array([1.0, 3, 5, 6, 7, 7.5, 7.8, 8.0])
    tanh = np.array([[1.0, 3, 6, 8, 7, 6, 5, 4 + d] for d in (-0.2, 0.0, 0.2, 0.1)])
    relu = np.stack([up, up + 0.1, up - 0.1, up])
    rel, last, layer = stages.compression(synthetic_metrics(tanh, relu))
    assert layer == 2
    np.testing.assert_allclose(rel.sel(activation="tanh").values, [(8 - 3.8) / 8, 0.5, (8 - 4.2) / 8, (8 - 4.1) / 8])
    np.testing.assert_allclose(rel.sel(activation="relu").values, 0.0, atol=1e-15)
    claims = stages.compression_claims(synthetic_metrics(tanh, relu))
    assert [c.verdict for c in claims] == ["agrees"] * 3
    np.testing.assert_allclose(claims[0].measured, (4.2 + 4 + 3.8 + 3.9) / 32, rtol=1e-12)
    falls = np.stack([np.r_[up[:-1], 0.7 * up[-1] + d] for d in (-0.1, 0.0, 0.1, 0.05)])  # 30 % below the peak
    relu_claim = stages.compression_claims(synthetic_metrics(tanh, falls))[1]
    assert relu_claim.verdict == "disagrees" and abs(relu_claim.measured - 0.29) < 0.02


def test_binned_information_against_a_second_route_in_both_tails():
    """I(X;T), I(T;Y) of the estimator against a count by hand (dictionaries of bin tuples) and against
    scikit-learn's mutual_info_score, from bins much wider than the activities (one bin each side of 0: the sign
    pattern's entropy) to bins much narrower than their gaps (an injective layer: log2 n bits)."""
    from collections import Counter

    from sklearn.metrics import mutual_info_score

    rng = np.random.default_rng(3)
    n = 512
    T = np.tanh(rng.standard_normal((n, 3)) * 2)
    y = (T.sum(1) + 0.3 * rng.standard_normal(n) > 0).astype(int)

    def by_hand(width):
        keys = [tuple(np.floor(row / width).astype(int)) for row in T]
        p = np.array(list(Counter(keys).values())) / n
        joint = np.array(list(Counter(zip(keys, y)).values())) / n
        py = np.bincount(y) / n
        h = lambda q: -(q * np.log2(q)).sum()  # noqa: E731
        return h(p), h(p) + h(py) - h(joint)

    for width in (100.0, 1.0, 0.07, 1e-3, 1e-9):
        ixt, ity = mutual_information(T, y, width)
        np.testing.assert_allclose((ixt, ity), by_hand(width), rtol=1e-12, atol=1e-12)
        codes = [str(tuple(np.floor(row / width).astype(int))) for row in T]
        np.testing.assert_allclose(ity, mutual_info_score(codes, y) / np.log(2), rtol=1e-10, atol=1e-12)
    # the coarse tail: bins anchored at 0 keep the sign, so T carries the entropy of its sign pattern (≤ 3 bits)
    _, counts = np.unique(T < 0, axis=0, return_counts=True)
    np.testing.assert_allclose(mutual_information(T, y, 100.0)[0], -(counts / n * np.log2(counts / n)).sum(),
                               rtol=1e-12)
    np.testing.assert_allclose(mutual_information(T, y, 1e-9)[0], np.log2(n), rtol=1e-12)
