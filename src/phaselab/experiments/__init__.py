"""Experiment types: finding one from a config's ``type:``, checking it keeps the contract, hashing its code.

``type:`` is a built-in name (a folder of this package), the name of an entry point of group
``phaselab.experiments`` (an installed package's own types; the built-ins are registered the same way in
phaselab's ``pyproject.toml``), or a dotted module path on the import path (``python_path:`` in the config puts a
researcher's folders there). The contract is :mod:`phaselab.experiment`. Nothing here imports torch: the
Snakefile resolves every type when it plans the workflow.
"""

from __future__ import annotations

import functools
import importlib
import importlib.util
import re
from dataclasses import dataclass
from importlib.metadata import entry_points
from pathlib import Path

from phaselab import codehash
from phaselab.config import fail

ENTRY_POINT_GROUP = "phaselab.experiments"
FIGURE_NAME = re.compile(r"^[a-z][a-z0-9]*(_[a-z0-9]+)*$")  # no double underscore: see ExperimentType.rule_prefix
LIGHT_PARTS = ("TITLE", "REFERENCES", "FIGURES", "cells")
STAGE_PARTS = ("train", "theory", "claims")
# Stage → the framework function in phaselab.stages and the type's function (in stages.py) that carry it out.
STAGES = {"data": ("make_data", "make_data"), "train": ("train_cell", "train"),
          "metrics": ("collect_metrics", "collect"), "theory": ("make_theory", "theory"),
          "claims": ("make_claims", "claims")}


def builtin_types() -> dict[str, str]:
    """The built-in types: every folder of this package with an ``__init__.py``, by name."""
    here = Path(__file__).resolve().parent
    return {p.parent.name: f"{__name__}.{p.parent.name}" for p in sorted(here.glob("*/__init__.py"))}


def registered_types() -> dict[str, str]:
    """Entry points of group ``phaselab.experiments`` (installed packages' types, the built-ins among them)."""
    return {ep.name: ep.value for ep in entry_points(group=ENTRY_POINT_GROUP)}


@dataclass(frozen=True)
class ExperimentType:
    """One experiment type: its name in configs, its package, where its schema and captions lie, its stages."""

    name: str  # as written after ``type:``
    module: str  # the package's dotted path

    @property
    def builtin(self) -> bool:
        return self.module.startswith(f"{__name__}.")

    @functools.cached_property
    def light(self):
        """The package itself: TITLE, REFERENCES, FIGURES, cells, check, COORDS."""
        return importlib.import_module(self.module)

    @property
    def folder(self) -> Path:
        return codehash.module_path(self.module).parent

    @property
    def schema_path(self) -> Path:
        return self.folder / "schema.yaml"

    def caption_path(self, figure: str) -> Path:
        return self.folder / "captions" / f"{figure}.rst"

    @property
    def stages_module(self) -> str:
        return f"{self.module}.stages"

    @property
    def figures_module(self) -> str:
        return f"{self.module}.figures"

    @property
    def stages(self):
        """The heavy part (may import torch): train, theory, claims, make_data, collect."""
        return importlib.import_module(self.stages_module)

    @property
    def figures(self):
        return importlib.import_module(self.figures_module)

    @property
    def rule_prefix(self) -> str:
        """Prefix of its figure rules' names: ``figure`` for a built-in (built-in figure names are unique), the
        module path for a researcher's type (``mylab_sweeps__figure_…``: the double underscore keeps it apart
        from every built-in rule)."""
        return "figure" if self.builtin else self.module.replace(".", "_") + "__figure"

    @property
    def roots(self) -> tuple[str, ...]:
        """The packages whose code is hashed with a stage: phaselab and the type's own."""
        return tuple(sorted({"phaselab", self.module.split(".")[0]}))

    def cells(self, exp: dict) -> list:
        return list(self.light.cells(exp))

    def stage_sources(self, stage: str, figure: str | None = None) -> dict[str, set[str] | None]:
        """The code one stage runs: module → the functions and classes of it used (None: all of it), from the
        framework's stage function and the type's own."""
        if stage == "figure":
            entries = [("phaselab.stages", "make_figure"), (self.figures_module, figure)]
        else:
            framework, own = STAGES[stage]
            entries = [("phaselab.stages", framework)]
            if codehash.defines(self.stages_module, own):
                entries.append((self.stages_module, own))
        return codehash.reached(entries, self.roots)

    def code_sha256(self, stage: str, figure: str | None = None) -> str:
        return codehash.sha256(self.stage_sources(stage, figure))

    def check_contract(self, key: str) -> None:
        """Every required part is there (the heavy parts are read, not imported); else ConfigError naming key."""
        where = f"experiment type {self.module}"
        try:
            light = self.light
        except ImportError as err:
            fail(key, self.name, f"{where} cannot be imported: {err}")
        missing = [part for part in LIGHT_PARTS if not hasattr(light, part)]
        if missing:
            fail(key, self.name, f"{where} lacks {', '.join(missing)} (see the contract in phaselab.experiment)")
        if not (isinstance(light.FIGURES, tuple | list) and light.FIGURES
                and all(isinstance(f, str) and FIGURE_NAME.match(f) for f in light.FIGURES)):
            fail(key, self.name, f"{where}: FIGURES must be a non-empty list of lowercase names joined by single "
                                 f"underscores, not {light.FIGURES!r}")
        if not self.schema_path.is_file():
            fail(key, self.name, f"{where} lacks its config schema {self.schema_path}")
        captions = [f for f in light.FIGURES if not self.caption_path(f).is_file()]
        if captions:
            fail(key, self.name, f"{where} lacks the captions {', '.join(str(self.caption_path(f)) for f in captions)}")
        if codehash.module_path(self.stages_module) is None:
            fail(key, self.name, f"{where} lacks its stages module {self.stages_module} (stages.py)")
        missing = [part for part in STAGE_PARTS if not codehash.defines(self.stages_module, part)]
        if missing:
            fail(key, self.name, f"{where}: {self.stages_module} lacks {', '.join(missing)}")
        if codehash.module_path(self.figures_module) is None:
            fail(key, self.name, f"{where} lacks its figures module {self.figures_module} (figures.py)")
        missing = [f for f in light.FIGURES if not codehash.defines(self.figures_module, f)]
        if missing:
            fail(key, self.name, f"{where}: {self.figures_module} lacks the figure functions {', '.join(missing)}")


@functools.cache
def resolve(type_name: str, key: str = "type") -> ExperimentType:
    """The experiment type ``type_name`` names: built-in, entry point or dotted module path (in that order)."""
    builtin, registered = builtin_types(), registered_types()
    if type_name in builtin:
        return ExperimentType(type_name, builtin[type_name])
    if type_name in registered:
        return ExperimentType(type_name, registered[type_name])
    if re.fullmatch(r"[A-Za-z_]\w*(\.[A-Za-z_]\w*)*", type_name) and codehash.module_path(type_name) is not None:
        return ExperimentType(type_name, type_name)
    fail(key, type_name, f"resolves to no experiment type: not built in ({', '.join(builtin)}), not an entry point "
                         f"of group {ENTRY_POINT_GROUP}, not a module on the import path (python_path)")


def of(config: dict, experiment: str) -> ExperimentType:
    """The type of one experiment of a config."""
    return resolve(config["experiments"][experiment]["type"], f"experiments.{experiment}.type")



def summary_code_sha256() -> str:
    """sha256 of the code of the report's summary page (the claims themselves are hashed with their stage)."""
    return codehash.sha256(codehash.reached([("phaselab.summary", codehash.ALL)]))
