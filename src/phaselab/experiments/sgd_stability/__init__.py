"""SGD can reach bad global minima (Liu, Papailiopoulos & Achlioptas, NeurIPS 2020), and the uniform stability of
SGD (Hardt, Recht & Singer, ICML 2016).

Two parts, one cell each:

- ``bad_minima``: a ReLU MLP on the scikit-learn digits is first pretrained on *random labels* of noisy copies of
  its training inputs (an adversarial initialisation), then trained by minibatch SGD on the true labels to zero
  training error. From that initialisation it ends at a worse test accuracy than from a random one — a bad global
  minimum of the training loss that SGD reaches; explicit regularisation closes the gap. The regularisations
  (config ``bad_minima.regularisations``; default none and weight decay): an L2 penalty λ‖θ‖²/2 (weight decay),
  heavy-ball momentum β, data augmentation by random ±1-pixel shifts of the 8×8 images, and all three.
  Members: 2 initialisations × regularisations × seeds, trained as one ensemble on the explicit batched MLP path of
  ``engines.ensemble.train_ensemble`` (weight decay and momentum in ``torch.optim.SGD``'s form; the members of a
  seed share its minibatch order and its shifts).
- ``stability``: coupled SGD runs on two training sets S, S′ that differ in one example (same initialisation, same
  sample order), for binary logistic regression (convex, L-Lipschitz: the bound E‖w_T − w′_T‖ ≤ (2L/n)Σα_t and
  ε_stab = (2L²/n)Σα_t on the generalisation gap, :mod:`phaselab.theory.stability`) and a one-hidden-layer tanh
  MLP (non-convex: no such bound) beside it. Members: the two runs of every pair, sharing their batches' indices.
"""

from __future__ import annotations

from dataclasses import dataclass

from phaselab.config import fail
from phaselab.experiment import Cell

TITLE = "SGD reaches bad global minima; uniform stability of SGD"
REFERENCES = "Liu, Papailiopoulos & Achlioptas 2020; Hardt, Recht & Singer 2016"
FIGURES = ("sgd_bad_minima", "sgd_stability_coupled")
COORDS = {
    "init": {"long_name": "initialisation (random; pretrained on random labels of noisy inputs)"},
    "regularisation": {"long_name": "explicit regularisation (none; L2 penalty = weight decay; heavy-ball momentum; "
                                    "augmentation: random pixel shifts; all: the three together)"},
    "model": {"long_name": "model (logistic: binary logistic regression; mlp: one-hidden-layer tanh network)"},
    "stability_epoch": {"long_name": "epoch of the coupled stability runs (passes over the training set)",
                        "units": "epochs"},
    "pair": {"long_name": "coupled pair of runs (datasets differing in one example)", "units": "1"},
}
PARTS = ("bad_minima", "stability")
INITS = ("random", "pretrained")
REGULARISATIONS = ("none", "weight_decay", "momentum", "augmentation", "all")  # the config picks some, "none" first
WITH_WEIGHT_DECAY, WITH_MOMENTUM, WITH_AUGMENTATION = ("weight_decay", "all"), ("momentum", "all"), ("augmentation",
                                                                                                      "all")
MODELS = ("logistic", "mlp")
N_DIGITS = 1797

# Purpose numbers of phaselab.data.derive_seed for this type (its range: 161-179).
SPLIT, NOISY_COPIES, RANDOM_LABELS, INIT, ORDER = 161, 162, 163, 164, 165
STABILITY_SPLIT, REPLACEMENT, STABILITY_INIT, STABILITY_ORDER = 166, 167, 168, 169
SHIFTS = 170


@dataclass(frozen=True, kw_only=True)
class PartCell(Cell):
    """One part of the experiment (bad_minima or stability): all its members trained as one ensemble."""

    part: str


def check(key: str, exp: dict) -> None:
    bad, stab = exp["bad_minima"], exp["stability"]
    if bad["regularisations"][0] != "none":
        fail(f"{key}.bad_minima.regularisations", bad["regularisations"],
             "must start with none (every regularisation is compared with it)")
    if bad["n_train"] > N_DIGITS - 100:
        fail(f"{key}.bad_minima.n_train", bad["n_train"], f"leaves fewer than 100 of the {N_DIGITS} digits for testing")
    if bad["batch_size"] > bad["n_train"]:
        fail(f"{key}.bad_minima.batch_size", bad["batch_size"], f"exceeds bad_minima.n_train = {bad['n_train']}")
    if stab["n_train"] + stab["pairs"] > N_DIGITS - 100:
        fail(f"{key}.stability.n_train", stab["n_train"],
             f"with {stab['pairs']} replacement examples leaves fewer than 100 of the {N_DIGITS} digits for testing")
    if stab["lr"] > 8.0:  # unit-norm inputs: beta = max |x|^2 / 4 = 1/4, Hardt et al. need alpha <= 2/beta = 8
        fail(f"{key}.stability.lr", stab["lr"], "exceeds 2/beta = 8 (logistic loss on unit-norm inputs)")
    if stab["batch_size"] > stab["n_train"]:
        fail(f"{key}.stability.batch_size", stab["batch_size"], f"exceeds stability.n_train = {stab['n_train']}")


def cells(exp: dict) -> list[PartCell]:
    """One cell per part, each reading its own data file."""
    return [PartCell(id=part, data=part, part=part) for part in PARTS]
