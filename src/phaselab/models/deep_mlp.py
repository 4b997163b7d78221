"""A deep fully connected network written functionally, for ensembles trained by ``train.train_ensemble``.

Parameters are a dict ``{"W0", "b0", "W1", "b1", ...}`` of tensors stacked over ensemble members (M, ...); the
functions below take the parameters of ONE member (torch.func style) and are vmapped by the caller. Layer l maps
h_l ↦ h_{l+1} = σ(W_l h_l + b_l); the last layer is linear (the network's output).
"""

from __future__ import annotations

import itertools

import numpy as np
import torch

ACTIVATIONS = {"tanh": torch.tanh, "relu": torch.relu}
GAIN = {"tanh": 1.0, "relu": 2.0**0.5}  # LeCun / He initialisation


def init_mlp(sizes: list[int], seeds: list[int], activation: str = "tanh", output_scale: float = 1.0,
             dtype=torch.float64) -> dict:
    """Weights N(0, gain²/fan_in), the last layer's times ``output_scale``, biases zero; one member per seed.

    Members given the same seed start from the same weights (common random numbers across learning rates). A small
    ``output_scale`` starts the network near f = 0, with a flat loss landscape, from which full-batch GD sharpens
    progressively (Cohen et al. 2021).
    """
    params = {}
    rngs = [np.random.default_rng(int(s)) for s in seeds]
    for layer, (fan_in, fan_out) in enumerate(itertools.pairwise(sizes)):
        std = GAIN[activation] / np.sqrt(fan_in) * (output_scale if layer == len(sizes) - 2 else 1.0)
        W = np.stack([std * r.standard_normal((fan_out, fan_in)) for r in rngs])
        params[f"W{layer}"] = torch.as_tensor(W, dtype=dtype)
        params[f"b{layer}"] = torch.zeros(len(seeds), fan_out, dtype=dtype)
    return params


def depth(params: dict) -> int:
    return sum(1 for name in params if name.startswith("W"))


def representations(params: dict, x: torch.Tensor, activation: str = "tanh") -> list[torch.Tensor]:
    """Hidden layers T_1, ..., T_{L−1} (after the activation) and the output (linear), for one member."""
    act = ACTIVATIONS[activation]
    out, h, n = [], x, depth(params)
    for layer in range(n):
        h = h @ params[f"W{layer}"].T + params[f"b{layer}"]
        if layer < n - 1:
            h = act(h)
        out.append(h)
    return out


def forward(params: dict, x: torch.Tensor, activation: str = "tanh") -> torch.Tensor:
    """The network's output for one member."""
    return representations(params, x, activation)[-1]


def squared_loss(params: dict, batch, activation: str = "tanh") -> torch.Tensor:
    """½ ‖f(x) − y‖² averaged over the batch (x, y), y one-hot: the square loss of Cohen et al. (2021)."""
    x, y = batch
    return 0.5 * ((forward(params, x, activation) - y) ** 2).sum(-1).mean()


def cross_entropy(params: dict, batch, activation: str = "tanh") -> torch.Tensor:
    """Softmax cross-entropy of the batch (x, integer labels)."""
    x, labels = batch
    return torch.nn.functional.cross_entropy(forward(params, x, activation), labels)
