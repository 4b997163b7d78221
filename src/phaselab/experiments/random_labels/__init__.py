"""Random labels (Zhang, Bengio, Hardt, Recht & Vinyals, ICLR 2017) and spectrally-normalised margins (Bartlett,
Foster & Telgarsky, NeurIPS 2017).

The two-layer ReLU network of :mod:`phaselab.models.two_layer` is trained by full-batch gradient descent on two
tasks, the scikit-learn digits and a synthetic teacher task (Gaussian inputs labelled by a random linear teacher), in
variants: labels corrupted with probability q (redrawn uniformly over the classes; q = 0 the true labels, q = 1
random labels), shuffled pixels (one permutation of the inputs for every image) and Gaussian inputs (noise with
each pixel's mean and variance). Measured: the training loss against steps, the steps to fit every training label,
the test error on clean test labels and, for every trained network, its spectral complexity R_A and the
distribution of its normalised margins (:mod:`phaselab.theory.margins`).

Cells: one per task; its variants × seeds members are trained together as one ensemble.
"""

from __future__ import annotations

from dataclasses import dataclass

from phaselab.config import check_grid_axis, fail
from phaselab.experiment import Cell

TITLE = "random labels and spectrally-normalised margins"
REFERENCES = "Zhang, Bengio, Hardt, Recht & Vinyals 2017; Bartlett, Foster & Telgarsky 2017"
FIGURES = ("random_label_training", "random_label_fit_time", "random_label_test_error", "normalised_margins")
COORDS = {
    "task": {"long_name": "task (digits: scikit-learn 8×8 digits; teacher: Gaussian inputs, linear teacher)"},
    "variant": {"long_name": "training-set variant (labels corrupted with probability q, or inputs replaced)"},
    "layer": {"long_name": "layer i of f(x) = A₂ relu(A₁ x)", "units": "1"},
    "sample": {"long_name": "training sample index", "units": "1"},
}
TASKS = ("digits", "teacher")
DIGITS_DIM, N_DIGITS = 64, 1797


@dataclass(frozen=True, kw_only=True)
class TaskCell(Cell):
    """One task (digits or teacher): its variants × seeds members are trained as one ensemble."""

    task: str


def variants(exp: dict) -> list[tuple[str, str, float]]:
    """(name, inputs, q) of every variant: the label-corruption levels on the original inputs, then the input
    variants with their true labels."""
    rows = [(f"q={q:g}", "original", float(q)) for q in sorted(exp["corruption"])]
    return rows + [(inputs, inputs, 0.0) for inputs in exp["inputs"]]


def n_classes(exp: dict, task: str) -> int:
    return 10 if task == "digits" else exp["teacher"]["classes"]


def check(key: str, exp: dict) -> None:
    check_grid_axis(f"{key}.tasks", exp["tasks"])
    check_grid_axis(f"{key}.corruption", exp["corruption"])
    check_grid_axis(f"{key}.inputs", exp["inputs"])
    if "digits" in exp["tasks"] and exp["n_train"] > N_DIGITS - 100:
        fail(f"{key}.n_train", exp["n_train"], f"leaves fewer than 100 of the {N_DIGITS} digits for testing")
    if exp["network"]["checkpoint_every"] > exp["network"]["steps"]:
        fail(f"{key}.network.checkpoint_every", exp["network"]["checkpoint_every"],
             f"exceeds network.steps = {exp['network']['steps']}")


def cells(exp: dict) -> list[TaskCell]:
    """One cell per task, reading that task's data file."""
    return [TaskCell(id=task, data=task, task=task) for task in exp["tasks"]]
