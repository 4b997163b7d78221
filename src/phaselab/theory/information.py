"""Mutual information of a layer with the input and the label by binning (Shwartz-Ziv & Tishby 2017).

The estimator: every neuron's activity is cut into bins of one fixed width (0.07 in Saxe et al.'s code, about the
30 bins over tanh's range [−1, 1] of Shwartz-Ziv & Tishby; bins anchored at 0, unbounded for ReLU); a layer's state
T on an input is the tuple of its neurons' bin indices. The inputs X are the rows of a finite set, each equally
likely, and the layer is a deterministic function of X, so

    I(X;T) = H(T),    I(T;Y) = H(T) + H(Y) − H(T, Y)    (bits),

with the entropies of the empirical distributions over the rows. This is what Shwartz-Ziv & Tishby (2017) and
Saxe et al. (ICLR 2018) plot; its caveats: for a deterministic network with continuous activities the true
I(X;T) is log2 of the number of distinct inputs at every epoch (an injective layer), so every change the binned
estimate shows comes from the binning (saturation of tanh pushes distinct inputs into one bin: "compression"), and
its value depends on the bin width (coarser bins, less information) and, for an unbounded activation such as ReLU,
on the scale of the activities, which grows with the weights.
"""

from __future__ import annotations

import numpy as np


def bin_codes(T: np.ndarray, bin_width: float) -> np.ndarray:
    """Bin index floor(T/width) of every neuron on every input, (n, neurons) integers."""
    return np.floor(np.asarray(T, dtype=float) / bin_width).astype(np.int64)


def entropy_of_rows(codes: np.ndarray) -> float:
    """H (bits) of the empirical distribution of the rows of ``codes`` (n, k), each row one equally likely sample."""
    codes = np.ascontiguousarray(codes.reshape(len(codes), -1))
    _, counts = np.unique(codes, axis=0, return_counts=True)
    p = counts / counts.sum()
    return float(-(p * np.log2(p)).sum())


def mutual_information(T: np.ndarray, y: np.ndarray, bin_width: float) -> tuple[float, float]:
    """(I(X;T), I(T;Y)) in bits of a deterministic layer T (n, neurons) over n equally likely inputs with labels y."""
    codes = bin_codes(T, bin_width)
    h_t = entropy_of_rows(codes)
    labels = np.asarray(y).reshape(-1, 1)
    return h_t, h_t + entropy_of_rows(labels) - entropy_of_rows(np.hstack([codes, labels]))


def label_entropy(y: np.ndarray) -> float:
    """H(Y) in bits = I(X;Y) for labels that are a function of the input: the ceiling of I(T;Y)."""
    return entropy_of_rows(np.asarray(y).reshape(-1, 1))
