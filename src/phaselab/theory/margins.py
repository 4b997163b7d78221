"""Spectrally-normalised margins (Bartlett, Foster & Telgarsky, NeurIPS 2017).

A network F_A(x) = σ_L(A_L σ_{L−1}(⋯ σ_1(A_1 x))) with ρ_i-Lipschitz activations has spectral complexity

    R_A = Π_i ρ_i ‖A_i‖_σ · ( Σ_i ‖A_iᵀ − M_iᵀ‖_{2,1}^{2/3} / ‖A_i‖_σ^{2/3} )^{3/2},

M_i reference matrices (zero, or the initialisation), ‖·‖_σ the spectral norm and ‖B‖_{2,1} the sum of the
Euclidean norms of the columns of B (so ‖Aᵀ‖_{2,1} sums the norms of the rows of A). The margin of a sample is
F(x)_y − max_{j≠y} F(x)_j; their generalisation bound scales with the normalised margin
margin / (R_A ‖X‖_F / n), X the (n, d) matrix of the n inputs. All functions are batched over leading axes.
"""

from __future__ import annotations

import numpy as np


def spectral_norm(a: np.ndarray) -> np.ndarray:
    """‖A‖_σ, the largest singular value of the last two axes."""
    return np.linalg.norm(np.asarray(a, dtype=float), ord=2, axis=(-2, -1))


def norm_2_1(b: np.ndarray) -> np.ndarray:
    """‖B‖_{2,1}: the sum over columns of the Euclidean norm of each column (last two axes)."""
    return np.linalg.norm(np.asarray(b, dtype=float), axis=-2).sum(axis=-1)


def spectral_complexity(layers, references=None, lipschitz=None) -> np.ndarray:
    """R_A for layer matrices ``layers`` = [A_1, …, A_L] (each (..., out, in)), reference matrices M_i (None: all
    zero) and Lipschitz constants ρ_i (None: all 1, e.g. ReLU hidden layers and a linear output)."""
    references = [None] * len(layers) if references is None else references
    lipschitz = [1.0] * len(layers) if lipschitz is None else lipschitz
    product, total = 1.0, 0.0
    for a, m, rho in zip(layers, references, lipschitz):
        a = np.asarray(a, dtype=float)
        sigma = spectral_norm(a)
        distance = norm_2_1(np.swapaxes(a if m is None else a - np.asarray(m, dtype=float), -1, -2))
        product = product * rho * sigma
        total = total + distance ** (2.0 / 3.0) / sigma ** (2.0 / 3.0)
    return product * total**1.5


def margins(outputs: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """F(x)_y − max_{j≠y} F(x)_j for outputs (..., n, C) and integer labels (..., n); negative = misclassified."""
    outputs = np.asarray(outputs, dtype=float)
    labels = np.asarray(labels)[..., None]
    true = np.take_along_axis(outputs, labels, axis=-1)[..., 0]
    others = outputs.copy()
    np.put_along_axis(others, labels, -np.inf, axis=-1)
    return true - others.max(axis=-1)


def normalised_margins(outputs: np.ndarray, labels: np.ndarray, complexity, inputs: np.ndarray) -> np.ndarray:
    """Margins divided by R_A ‖X‖_F / n (Bartlett et al. 2017, Theorem 1.1 and Figure 1); inputs (..., n, d),
    ``complexity`` R_A broadcast over the leading axes."""
    inputs = np.asarray(inputs, dtype=float)
    n = inputs.shape[-2]
    scale = np.asarray(complexity, dtype=float) * np.linalg.norm(inputs, axis=(-2, -1)) / n
    return margins(outputs, labels) / scale[..., None]
