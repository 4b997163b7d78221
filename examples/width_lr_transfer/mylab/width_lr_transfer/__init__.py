"""Width × learning-rate sweep in two parametrisations: does the optimal learning rate transfer across widths?

The sweep practitioners run before scaling a model up (Yang & Hu 2021; Yang et al. 2022, "Tensor Programs V"):
an MLP with ``model.hidden_layers`` hidden layers of width n (tanh or ReLU) learns a fixed random teacher
network on Gaussian inputs x ∈ R^d with the square loss ½(f(x) − y)², by minibatch SGD for a fixed number of
steps, at every global learning rate η of a log-spaced grid, for several seeds and several widths n.

Parametrisations (n: width, n0 = ``model.base_width``, r = n/n0; k = 1 output; g² = 1 for tanh, 2 for ReLU):

================  ==========================  =============  ==========================  ==============
layer             SP init variance            SP SGD rate    μP init variance            μP SGD rate
================  ==========================  =============  ==========================  ==============
input W (n×d)     g²/d                        η              g²/d                        η·r
hidden W (n×n)    g²/n                        η              g²/n                        η
output W (1×n)    1/n                         η              1/(n·r) = n0/n²             η/r
hidden biases     0                           η              0                           η·r
output bias       0                           η              0                           η
================  ==========================  =============  ==========================  ==============

μP is Table 3 of Yang et al. 2022 (Tensor Programs V, arXiv:2203.03466; "μP formulation" for SGD: input
weights and all biases: init var 1/fan_in, LR η·fan_out; hidden weights: 1/fan_in, η; output weights:
1/fan_in², η/fan_in), written relative to a base width n0 as the paper and the ``mup`` package do, so that μP
and SP are the same network at n = n0 (the biases start at zero; the output bias's fan_out is the fixed output
dimension, so its rate does not scale). SP is the standard parametrisation: every weight N(0, g²/fan_in), one
global learning rate.

The per-layer rates are realised with one global rate per member, as ``phaselab.engines.ensemble.train_ensemble``
applies it: each weight is stored as W = m·w with a fixed multiplier m = √c (c: the layer's rate factor above) and
w initialised N(0, σ²/m²); SGD with rate η on w moves W by −η m² ∇_W L = −η c ∇_W L, exactly per-layer SGD with
rate η·c on W (Yang & Hu 2021's abc-parametrisation; see ``layer_factors``).

Theory (the slopes the figures draw): in μP the training dynamics have a width-independent limit, so the optimal
η* is width-independent (slope 0 of ln η* against ln n). In SP the output layer's contribution to the neural
tangent kernel grows like n (Σ_i φ(h_i)² over n hidden units with O(1) activations), so SGD is stable only for
η = O(1/n) (Yang & Hu 2021, §3: SP with η ∝ 1/n is the largest stable scaling and ends in the kernel regime), and
an optimum near the edge of stability follows it: slope −1.

Grid: widths n × global learning rates η (``grid.lr``: min·2^(i/per_octave) up to max) × seeds, in each
parametrisation. A cell is one (parametrisation, width): its η × seed members train together as one ensemble.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from phaselab.config import check_grid_axis, fail
from phaselab.experiment import Cell

TITLE = "optimal learning rate against width in the standard and the maximal-update parametrisation"
REFERENCES = ("Yang & Hu, ICML 2021 (Feature learning in infinite-width neural networks); Yang, Hu, Babuschkin, "
              "Sidor, Liu, Farhi, Ryder, Pachocki, Chen & Gao 2022 (Tensor Programs V: tuning large neural networks "
              "via zero-shot hyperparameter transfer), Table 3")
FIGURES = ("loss_vs_lr", "optimal_lr")
PARAMETRISATIONS = {"sp": "standard (SP)", "mup": "maximal update (μP)"}
COORDS = {
    "param": {"long_name": "parametrisation (sp: standard, mup: maximal update)"},
    "width": {"long_name": "hidden-layer width n", "units": "hidden units"},
    "lr": {"long_name": "global learning rate η (per-layer rates η·c_l of the parametrisation)", "units": "1"},
    "tensor": {"long_name": "parameter tensor (W_l weights, b_l biases of layer l; 0 = input layer)"},
}
DATA_ID = "task"


@dataclass(frozen=True, kw_only=True)
class WidthCell(Cell):
    """One (parametrisation, width): its learning rates, and the steps at which the losses are recorded."""

    param: str
    width: int
    lrs: tuple[float, ...]
    steps: tuple[int, ...]


def lr_grid(spec: dict) -> list[float]:
    """min·2^(i/per_octave), i = 0, 1, …, up to max (within a part in 10⁹)."""
    octaves = math.log2(spec["max"] / spec["min"])
    count = math.floor(round(octaves * spec["per_octave"], 9)) + 1
    return [spec["min"] * 2 ** (i / spec["per_octave"]) for i in range(count)]


def checkpoints(steps: int, count: int) -> list[int]:
    """Step 0, then ``count`` roughly log-spaced steps ending at ``steps`` (duplicates dropped)."""
    if count <= 1:
        return [0, steps]
    return [0, *sorted({max(1, round(steps ** (i / (count - 1)))) for i in range(count)})]


def layer_factors(param: str, width: int, base_width: int, hidden_layers: int, d: int, activation: str) -> dict:
    """For every parameter: (init variance σ² of the effective weight, rate factor c) — the table above.
    The effective per-layer learning rate is η·c; the stored parameter's multiplier is m = √c."""
    gain2 = 2.0 if activation == "relu" else 1.0
    r = width / base_width if param == "mup" else 1.0
    out = {"W0": (gain2 / d, r), "b0": (0.0, r)}
    for layer in range(1, hidden_layers):
        out[f"W{layer}"], out[f"b{layer}"] = (gain2 / width, 1.0), (0.0, r)
    L = hidden_layers
    out[f"W{L}"] = (1.0 / (width * r), 1.0 / r)
    out[f"b{L}"] = (0.0, 1.0)
    return out


def check(key: str, exp: dict) -> None:
    grid, train = exp["grid"], exp["train"]
    check_grid_axis(f"{key}.grid.width", grid["width"])
    check_grid_axis(f"{key}.grid.parametrisation", grid["parametrisation"])
    if grid["lr"]["max"] < grid["lr"]["min"]:
        fail(f"{key}.grid.lr.max", grid["lr"]["max"], f"is below grid.lr.min = {grid['lr']['min']}")
    if len(lr_grid(grid["lr"])) < 3:
        fail(f"{key}.grid.lr", grid["lr"], "gives fewer than 3 learning rates: no optimum can be located")
    if train["batch_size"] > exp["task"]["n_train"]:
        fail(f"{key}.train.batch_size", train["batch_size"], f"exceeds task.n_train = {exp['task']['n_train']}")


def cells(exp: dict) -> list[WidthCell]:
    """One cell per (parametrisation, width), widths ascending."""
    lrs = tuple(lr_grid(exp["grid"]["lr"]))
    steps = tuple(checkpoints(exp["train"]["steps"], exp["train"]["checkpoints"]))
    return [WidthCell(id=f"{param}_w{width}", data=DATA_ID, param=param, width=width, lrs=lrs, steps=steps)
            for param in exp["grid"]["parametrisation"] for width in sorted(exp["grid"]["width"])]
