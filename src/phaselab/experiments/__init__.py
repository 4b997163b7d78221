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

import ast
import functools
import hashlib
import importlib
from pathlib import Path

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


# Stage → the module function that carries it out (the interface above).
STAGE_FUNCTIONS = {"data": "make_data", "train": "train_cell", "metrics": "collect", "theory": "theory",
                   "figure": "figure"}


def _package_root() -> Path:
    return Path(__file__).resolve().parents[1]


@functools.cache
def _module_path(name: str):
    """The source file of a phaselab module name, or None for a name that is not a module (a function, a class)."""
    rel = _package_root().joinpath(*name.split(".")[1:])
    for path in (rel.with_suffix(".py"), rel / "__init__.py"):
        if path.is_file():
            return path
    return None


@functools.cache
def _file_imports(path: Path) -> frozenset[str]:
    return frozenset(_imports([ast.parse(path.read_text())]))


def _imports(nodes) -> set[str]:
    """The phaselab modules that import statements under ``nodes`` load (``from phaselab import data``: phaselab.data;
    ``from phaselab.metrics import open_netcdf``: phaselab.metrics)."""
    names = set()
    for root in nodes:
        for node in ast.walk(root):
            if isinstance(node, ast.Import):
                names |= {a.name for a in node.names if a.name.split(".")[0] == "phaselab"}
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and (node.module or "").startswith("phaselab"):
                found = {f"{node.module}.{a.name}" for a in node.names if _module_path(f"{node.module}.{a.name}")}
                names |= found if len(found) == len(node.names) else found | {node.module}
    return {n for n in names if _module_path(n)}


def stage_sources(type_name: str, stage: str) -> list[Path]:
    """The phaselab source files one stage of an experiment type runs: the experiment module, and every phaselab
    module imported by its module level or by the stage's function (and the module's functions that it calls),
    followed through their imports. A change to any of them makes the stage's results stale."""
    module_path = _module_path(TYPES[type_name])
    tree = ast.parse(module_path.read_text())
    functions = {n.name: n for n in tree.body if isinstance(n, ast.FunctionDef)}
    top = [n for n in tree.body if not isinstance(n, ast.FunctionDef | ast.ClassDef)]
    reached, todo = set(), [STAGE_FUNCTIONS[stage]]
    while todo:  # the stage's function and the module functions it calls, by name
        name = todo.pop()
        if name in functions and name not in reached:
            reached.add(name)
            todo += [n.id for n in ast.walk(functions[name]) if isinstance(n, ast.Name)]
    files, todo = {module_path}, list(_imports(top + [functions[n] for n in reached]))
    while todo:  # follow imports of the modules reached, all of them (module level and inside functions)
        path = _module_path(todo.pop())
        if path not in files:
            files.add(path)
            todo += _file_imports(path)
    return sorted(files)


@functools.cache
def code_sha256(type_name: str, stage: str) -> str:
    """sha256 of the source files :func:`stage_sources` lists (paths relative to the package): Snakemake reruns a
    job whose code changed, like one whose config changed (params trigger)."""
    digest = hashlib.sha256()
    root = _package_root()
    for path in stage_sources(type_name, stage):
        digest.update(str(path.relative_to(root)).encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()
