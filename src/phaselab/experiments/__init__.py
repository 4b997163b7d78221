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
                   "figure": "figure", "agreement": "agreement"}
ALL = None  # a module used as a whole (``from phaselab import data``), not by some of its names


def _package_root() -> Path:
    return Path(__file__).resolve().parents[1]


@functools.cache
def _module_path(name: str) -> Path | None:
    """The source file of a phaselab module name, or None for a name that is not a module (a function, a class)."""
    if name.split(".")[0] != "phaselab":
        return None
    rel = _package_root().joinpath(*name.split(".")[1:])
    for path in (rel.with_suffix(".py"), rel / "__init__.py"):
        if path.is_file():
            return path
    return None


@functools.cache
def _parsed(module: str) -> tuple[list[ast.stmt], dict[str, ast.stmt]]:
    """A module's top-level statements other than definitions, and its functions and classes by name."""
    tree = ast.parse(_module_path(module).read_text())
    defs = {n.name: n for n in tree.body if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef)}
    return [n for n in tree.body if n not in defs.values()], defs


def _uses(nodes) -> tuple[set[str], set[tuple[str, str | None]]]:
    """Names that ``nodes`` refer to, and the phaselab (module, name) pairs their import statements load; name is
    ALL for a whole module (``from phaselab import data``, ``import phaselab.metrics``)."""
    names, imports = set(), set()
    for root in nodes:
        for node in ast.walk(root):
            if isinstance(node, ast.Name):
                names.add(node.id)
            elif isinstance(node, ast.Import):
                imports |= {(a.name, ALL) for a in node.names if _module_path(a.name)}
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and _module_path(node.module or ""):
                for a in node.names:
                    sub = f"{node.module}.{a.name}"
                    imports.add((sub, ALL) if _module_path(sub) else (node.module, a.name))
    return names, imports


def _reached(entries) -> dict[str, set[str] | None]:
    """From (module, name) entry points, every phaselab module reached through imports, with the functions and
    classes of it that are used (ALL: the whole module), following calls by name inside each module."""
    reached: dict[str, set[str] | None] = {}
    todo = list(entries)
    while todo:
        module, name = todo.pop()
        top, defs = _parsed(module)
        if module not in reached:  # its top-level statements run on import
            reached[module] = set()
            names, imports = _uses(top)
            todo += [(module, n) for n in names if n in defs] + list(imports)
        used = reached[module]
        if used is ALL or name in used:
            continue
        if name is ALL:
            reached[module] = ALL
            todo += [(module, n) for n in defs]
            continue
        used.add(name)
        if name in defs:
            names, imports = _uses([defs[name]])
            todo += [(module, n) for n in names if n in defs and n not in used] + list(imports)
    return reached


def _sha256(reached: dict[str, set[str] | None]) -> str:
    """sha256 of the code reached, as ``ast.unparse`` writes it: comments and formatting do not count."""
    digest = hashlib.sha256()
    for module in sorted(reached):
        top, defs = _parsed(module)
        used = defs if reached[module] is ALL else sorted(n for n in reached[module] if n in defs)
        digest.update(module.encode() + b"\0")
        for node in top + [defs[n] for n in used]:
            digest.update(ast.unparse(node).encode() + b"\0")
    return digest.hexdigest()


def _stage_entry(type_name: str, stage: str) -> tuple[str, str]:
    return TYPES[type_name], STAGE_FUNCTIONS[stage]


def stage_sources(type_name: str, stage: str) -> dict[str, set[str] | None]:
    """The phaselab code one stage of an experiment type runs: module → the functions and classes of it used
    (None: the whole module), from the stage's function of the experiment module through imports and calls. A
    change to any of it makes the stage's results stale."""
    return _reached([_stage_entry(type_name, stage)])


@functools.cache
def code_sha256(type_name: str, stage: str) -> str:
    """sha256 of the code :func:`stage_sources` lists: Snakemake reruns a job whose code changed, like one whose
    config changed (params trigger)."""
    return _sha256(stage_sources(type_name, stage))


def summary_code_sha256(type_names) -> str:
    """The same for the report's summary page: phaselab.summary and each experiment type's ``agreement``."""
    entries = [("phaselab.summary", ALL)] + [_stage_entry(t, "agreement") for t in sorted(set(type_names))]
    return _sha256(_reached(entries))
