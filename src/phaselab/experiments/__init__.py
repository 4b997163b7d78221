"""Experiment types. Each module turns one config section into cells, data, training, metrics, theory and figures.

A module provides (nothing heavier than numpy may be imported at module level: the Snakefile imports ``cells``):

- ``FIGURES``: names of its figures (captions: ``workflow/report/<figure>.rst``);
- ``check(key, exp)``: cross-field checks the schema cannot express (raise ``phaselab.config.ConfigError``);
- ``cells(exp)``: the training jobs, dicts with an integer-only ``id`` and the ``data`` id they read (or None);
- ``make_data(config, name, data_id, out)``, ``train_cell(config, name, cell_id, data_path, out, threads, log)``,
  ``collect(config, name, cell_paths, out)``, ``theory(config, name, metrics_path, out)``,
  ``figure(figure_name, metrics, theory)`` → matplotlib Figure.

A new experiment is a config file, a schema entry, one module here and, where needed, one data generator, one
model and one theory module.
"""

from __future__ import annotations

import importlib

TYPES = {
    "sgd_phase_diagram": "phaselab.experiments.sgd_phase_diagram",
    "capacity": "phaselab.experiments.capacity",
    "learning_curves": "phaselab.experiments.learning_curves",
    "double_descent": "phaselab.experiments.double_descent",
    "random_labels": "phaselab.experiments.random_labels",
    "edge_of_stability": "phaselab.experiments.edge_of_stability",
    "sharpness": "phaselab.experiments.sharpness",
    "implicit_bias": "phaselab.experiments.implicit_bias",
    "information_plane": "phaselab.experiments.information_plane",
}


def get(type_name: str):
    """The module of an experiment type."""
    return importlib.import_module(TYPES[type_name])


def log_schedule(total: int, per_decade: int) -> list[int]:
    """Checkpoints 0, then log-spaced integers from 1 to ``total`` (``per_decade`` a decade), and ``total``."""
    import math

    n = math.ceil(math.log10(total) * per_decade)
    return sorted({0, *(round(10 ** (i / per_decade)) for i in range(n)), total})
