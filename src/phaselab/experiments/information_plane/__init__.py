"""The information plane of a deep network (Shwartz-Ziv & Tishby 2017) and its critique (Saxe, Bansal, Dapello,
Advani, Kolchinsky, Tracey & Cox, ICLR 2018).

The 12-bit task (``data.twelve_bit_task``: all 4096 inputs, a rotation-invariant label rule) learnt by a
12-10-7-5-4-3-2 network with tanh or ReLU hidden layers and a softmax output, trained by minibatch SGD on the
cross-entropy of a random 85 % of the inputs. At log-spaced epochs every layer's I(X;T) and I(T;Y) are estimated
by binning over all 4096 inputs (``theory.information``). Shwartz-Ziv & Tishby saw a fitting phase (both grow)
followed by compression (I(X;T) falls); Saxe et al. showed that the compression comes from tanh's saturation
under binning and is absent for ReLU. A cell is one activation; its members are the seeds (initialisation,
training split and minibatches).
"""

from __future__ import annotations

from dataclasses import dataclass

from phaselab.config import check_grid_axis
from phaselab.experiment import Cell
from phaselab.schedules import log_schedule

TITLE = "information plane of the 12-bit task"
REFERENCES = "Shwartz-Ziv & Tishby 2017; Saxe et al. ICLR 2018"
FIGURES = ("information_plane", "information_plane_layers")
COORDS = {
    "activation": {"long_name": "hidden-layer activation", "units": "1"},
    # the output (softmax) layer is a layer here too, so not the vocabulary's "hidden layer"
    "layer": {"long_name": "layer (1 = first hidden)", "units": "1"},
}


@dataclass(frozen=True, kw_only=True)
class ActivationCell(Cell):
    """One activation: its seeds trained as one ensemble, the information estimated at ``epochs``."""

    activation: str
    epochs: tuple[int, ...]


def check(key: str, exp: dict) -> None:
    check_grid_axis(f"{key}.grid.activation", exp["grid"]["activation"])


def epochs(exp: dict) -> list[int]:
    """Epoch 0 and log-spaced epochs from 1 to train.epochs, ``checkpoints_per_decade`` a decade."""
    return log_schedule(exp["train"]["epochs"], exp["train"]["checkpoints_per_decade"])


def cells(exp: dict) -> list[ActivationCell]:
    return [ActivationCell(id=act, data="twelve_bit", activation=act, epochs=tuple(epochs(exp)))
            for act in exp["grid"]["activation"]]
