"""Mutual information of a layer with the input and the label by binning (Shwartz-Ziv & Tishby 2017).

The estimator: every neuron's activity is cut into ``bins`` equal intervals of [lo, hi]; a layer's state T on an
input is the tuple of its neurons' bin indices. The inputs X are the rows of a finite set, each equally likely, and
the layer is a deterministic function of X, so

    I(X;T) = H(T),    I(T;Y) = H(T) + H(Y) − H(T, Y)    (bits),

with the entropies of the empirical distributions over the rows. This is what Shwartz-Ziv & Tishby (2017) and
Saxe et al. (ICLR 2018) plot; its caveats: for a deterministic network with continuous activities the true
I(X;T) is log2 of the number of distinct inputs at every epoch (an injective layer), so every change the binned
estimate shows comes from the binning (saturation of tanh pushes distinct inputs into one bin: "compression"), and
its value depends on the bin width and, for an unbounded activation such as ReLU, on the chosen range.
"""

from __future__ import annotations

import numpy as np


def bin_codes(T: np.ndarray, bins: int, lo: float, hi: float) -> np.ndarray:
    """Bin index of every neuron on every input, (n, width) integers in [0, bins)."""
    edges = np.linspace(lo, hi, bins + 1)[1:-1]
    return np.digitize(T, edges)


def entropy_of_rows(codes: np.ndarray) -> float:
    """H (bits) of the empirical distribution of the rows of ``codes`` (n, k), each row one equally likely sample."""
    codes = np.ascontiguousarray(codes.reshape(len(codes), -1))
    _, counts = np.unique(codes, axis=0, return_counts=True)
    p = counts / counts.sum()
    return float(-(p * np.log2(p)).sum())


def mutual_information(T: np.ndarray, y: np.ndarray, bins: int, lo: float, hi: float) -> tuple[float, float]:
    """(I(X;T), I(T;Y)) in bits of a deterministic layer T (n, width) over n equally likely inputs with labels y."""
    codes = bin_codes(np.asarray(T), bins, lo, hi)
    h_t = entropy_of_rows(codes)
    labels = np.asarray(y).reshape(-1, 1)
    return h_t, h_t + entropy_of_rows(labels) - entropy_of_rows(np.hstack([codes, labels]))


def label_entropy(y: np.ndarray) -> float:
    """H(Y) in bits = I(X;Y) for labels that are a function of the input: the ceiling of I(T;Y)."""
    return entropy_of_rows(np.asarray(y).reshape(-1, 1))
