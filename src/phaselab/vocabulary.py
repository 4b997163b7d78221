"""One vocabulary of dims and their attributes, used by every experiment type.

The framework gives every coordinate of a metrics dataset its ``long_name`` and ``units`` from here (an
experiment's own ``COORDS`` add its particular dims, or say more about a shared one). Names mean one thing:

- ``time`` is online-SGD time in steps/d, ``step`` a count of (full-batch or minibatch) updates, ``epoch`` a count
  of passes over the training set — three clocks, not three spellings of one;
- ``seed`` indexes the members' seeds; a dataset that joins parts with different seed counts keeps one seed dim a
  part (``linear_seed``, ``rf_seed``), each the seed index of that part.
"""

from __future__ import annotations

STATUS_OK, STATUS_DIVERGED = "ok", "diverged"

DIMS: dict[str, dict[str, str]] = {
    "seed": {"long_name": "seed index", "units": "1"},
    "trial": {"long_name": "trial index (one random pattern set each)", "units": "1"},
    "time": {"long_name": "time t = steps/d", "units": "steps/d"},
    "step": {"long_name": "training step", "units": "steps"},
    "epoch": {"long_name": "epoch (passes over the training set)", "units": "epochs"},
    "d": {"long_name": "input dimension", "units": "1"},
    "N": {"long_name": "input dimension N", "units": "1"},
    "alpha": {"long_name": "load α = P/N (nominal; P = round(αN))", "units": "1"},
    "lr": {"long_name": "learning rate η", "units": "1"},
    "batch_size": {"long_name": "minibatch size B", "units": "examples"},
    "width": {"long_name": "hidden units", "units": "1"},
    "layer": {"long_name": "hidden layer (1 = nearest the input)", "units": "1"},
    "ridge": {"long_name": "ridge penalty λ", "units": "1"},
    "label_noise": {"long_name": "fraction of training labels replaced at random", "units": "1"},
    "corruption": {"long_name": "fraction of training labels replaced at random", "units": "1"},
}


def coordinate_attrs(dim: str, own: dict | None = None) -> dict[str, str]:
    """The attributes of a dim: the experiment's own declaration, else the shared vocabulary, else nothing."""
    return dict((own or {}).get(dim) or DIMS.get(dim) or {})
