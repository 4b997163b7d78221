"""The small two-layer ReLU network of the over-parameterisation experiments, as a functional model for
:func:`phaselab.engines.ensemble.train_ensemble`.

    f(x) = W₂ relu(W₁ x/√d)/√h,   W₁ (h, d), W₂ (C, h), entries N(0, 1) at initialisation,

the NTK parametrisation (Jacot, Gabriel & Hongler 2018), so one learning rate serves every width h. There are no
biases: the layer matrices A₁ = W₁/√d, A₂ = W₂/√h are exactly those of the spectral margin bound (Bartlett,
Foster & Telgarsky 2017). Parameters are stacked over the members of an ensemble, {"W1": (M, h, d), "W2": (M, C, h)};
every member has its own data (inputs (M, n, d), one-hot targets (M, n, C)) and is trained by full-batch gradient
descent on the squared loss ½‖f − e_y‖² (Belkin et al. 2019) or the cross-entropy (Zhang et al. 2017).
"""

from __future__ import annotations

import math

import numpy as np
import torch

LOSSES = ("squared", "cross_entropy")


def init(seeds, d: int, width: int, n_classes: int) -> dict[str, torch.Tensor]:
    """Initial weights of M = len(seeds) members, member m drawn from its own generator seeded by seeds[m]."""
    w1, w2 = [], []
    for seed in seeds:
        gen = torch.Generator().manual_seed(int(seed))
        w1.append(torch.randn(width, d, generator=gen))
        w2.append(torch.randn(n_classes, width, generator=gen))
    return {"W1": torch.stack(w1), "W2": torch.stack(w2)}


def forward(params: dict, x: torch.Tensor) -> torch.Tensor:
    """Outputs (..., n, C) for inputs (..., n, d): one member or a stacked ensemble (leading member axis)."""
    w1, w2 = params["W1"], params["W2"]
    hidden = torch.relu(x @ w1.transpose(-1, -2) / math.sqrt(w1.shape[-1]))
    return hidden @ w2.transpose(-1, -2) / math.sqrt(w2.shape[-1])


def layer_matrices(params: dict) -> list[np.ndarray]:
    """[A₁, A₂] = [W₁/√d, W₂/√h] as float64 numpy arrays (stacked over members): f(x) = A₂ relu(A₁ x)."""
    w1 = params["W1"].detach().double().cpu().numpy()
    w2 = params["W2"].detach().double().cpu().numpy()
    return [w1 / math.sqrt(w1.shape[-1]), w2 / math.sqrt(w2.shape[-1])]


def one_hot(labels, n_classes: int) -> torch.Tensor:
    return torch.nn.functional.one_hot(torch.as_tensor(labels, dtype=torch.int64), n_classes).float()


def loss_values(kind: str, outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Mean over samples of ½‖f − e_y‖² (``squared``) or of logsumexp f − f_y (``cross_entropy``)."""
    if kind == "squared":
        return 0.5 * ((outputs - targets) ** 2).sum(-1).mean(-1)
    if kind == "cross_entropy":
        return (torch.logsumexp(outputs, -1) - (outputs * targets).sum(-1)).mean(-1)
    raise ValueError(f"unknown loss {kind!r}; known: {LOSSES}")


def chance_loss(kind: str, n_classes: int) -> float:
    """The loss of the constant prediction that ignores the input: log C (cross-entropy), ½(1 − 1/C) (squared,
    output 1/C in every class)."""
    return math.log(n_classes) if kind == "cross_entropy" else 0.5 * (1.0 - 1.0 / n_classes)


def train(params: dict, kind: str, x: torch.Tensor, labels: torch.Tensor, lr: float, checkpoints, sets: dict, *,
          divergence_threshold: float = 1e6, log=None):
    """Full-batch gradient descent of every member on its own training set through ``train_ensemble``.

    x (M, n, d), labels (M, n); ``sets`` maps a name to (inputs (M, n', d), labels (M, n')) evaluated at every
    checkpoint: metrics ``<name>_loss`` and ``<name>_error`` (misclassified fraction), each (M, T).
    """
    from phaselab.engines.ensemble import MLPSpec, train_ensemble

    n_classes = params["W2"].shape[-2]
    targets = one_hot(labels, n_classes)
    encoded = {name: (xs, ys, one_hot(ys, n_classes)) for name, (xs, ys) in sets.items()}

    def member_loss(member, batch):
        inputs, target = batch
        return loss_values(kind, forward(member, inputs), target)

    def evaluate(stacked):
        out = {}
        for name, (xs, ys, ts) in encoded.items():
            f = forward(stacked, xs)
            out[f"{name}_loss"] = loss_values(kind, f, ts)
            out[f"{name}_error"] = (f.argmax(-1) != ys).float().mean(-1)
        return out

    batch = (x, targets)
    d, h = params["W1"].shape[-1], params["W1"].shape[-2]
    return train_ensemble(params, member_loss, lambda step: batch, torch.full((x.shape[0],), float(lr)),
                          checkpoints, evaluate, batch_in_dims=0, divergence_threshold=divergence_threshold, log=log,
                          model=MLPSpec("relu", kind, scales=(d**-0.5, h**-0.5)))
