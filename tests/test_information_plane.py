"""The binned mutual-information estimator against exact values, the rebuilt 12-bit task, and the
information_plane experiment end to end."""

from pathlib import Path

import numpy as np
import yaml

import phaselab
from phaselab import data
from phaselab.experiments import information_plane as experiment
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
    assert [c.verdict for c in result.claims] == ["agrees", "agrees"]
