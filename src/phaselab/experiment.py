"""The experiment contract: what an experiment type declares and the few science functions it writes.

An experiment type is a Python package (a folder) — built into phaselab (``phaselab/experiments/<type>/``), or a
researcher's own anywhere on the import path (``python_path:`` in the config). The framework
(:mod:`phaselab.stages`, the Snakemake rules, :func:`phaselab.run`) does everything else: config validation and
cell lookup, device and threads, log lines with timing, atomic file writing, coordinate and provenance attributes,
figure dispatch and saving.

The package's ``__init__.py`` — the light part, imported when the workflow is planned, so nothing heavier than
numpy at module level:

- ``TITLE``: one line, what the experiment measures (the dataset's ``title``);
- ``REFERENCES``: the papers its theory comes from (the dataset's ``references``);
- ``FIGURES``: the names of its figures (lowercase words joined by single underscores);
- ``cells(exp) -> list[Cell]``: the training jobs of a config section ``exp`` (defaults filled);
- optional ``check(key, exp)``: cross-field rules the schema cannot express; raise
  :class:`phaselab.config.ConfigError` through :func:`phaselab.config.fail`, naming ``key`` + the sub-key;
- optional ``COORDS``: ``{dim: {"long_name": ..., "units": ...}}`` for dims of its own; shared dims take their
  attributes from :mod:`phaselab.vocabulary`.

Beside it, in the folder:

- ``schema.yaml``: the JSON schema of the experiment's config section (``type`` included; unknown keys rejected
  with ``additionalProperties: false``; defaults filled from ``default:``);
- ``captions/<figure>.rst``: one caption a figure, shown under it in the report;
- ``stages.py`` (the heavy part; may import torch) with
    - ``train(run, cell, data) -> xarray.Dataset``: train one cell (``data``: the arrays ``make_data`` wrote for
      ``cell.data``, else None); the framework adds ``cell``, ``device``, ``threads``, ``train_seconds`` attrs;
    - ``theory(run, metrics) -> xarray.Dataset``: the theory beside the measurements;
    - ``claims(metrics, theory) -> list[Claim]``: the quantitative statements the figures test, with verdicts;
    - optional ``make_data(run, data_id) -> dict[str, numpy.ndarray]``: data shared by cells (default: none);
    - optional ``collect(run, cells) -> xarray.Dataset``: merge the cells' datasets (default: ``xarray.merge``);
- ``figures.py``: one function a figure name, ``(metrics, theory) -> matplotlib Figure``.

The framework runs the stages in this order: make_data (per data id) → train (per cell) → collect → theory →
figures and claims. Stages return xarray objects; the framework writes them.
"""

from __future__ import annotations

import math
import sys
from dataclasses import dataclass, field
from functools import cached_property
from typing import TextIO

AGREES, DISAGREES, INCONCLUSIVE = "agrees", "disagrees", "inconclusive"
VERDICTS = (AGREES, DISAGREES, INCONCLUSIVE)


@dataclass(frozen=True, kw_only=True)
class Cell:
    """One training job. ``id`` names its files (letters, digits, ``_`` and ``-``: integers only, so that 1e-3
    and 0.001 are one cell); ``data`` is the id of the data file it reads, None when it draws its own. A type
    subclasses it with its own typed fields (``@dataclass(frozen=True, kw_only=True)``)."""

    id: str
    data: str | None = None

    def __str__(self) -> str:
        """Its scalar fields, for log lines (``d = 64, kappa = 0.5``)."""
        from dataclasses import fields

        return ", ".join(f"{f.name} = {getattr(self, f.name)}" for f in fields(self)
                         if f.name not in ("id", "data") and isinstance(getattr(self, f.name), int | float | str))


@dataclass(frozen=True)
class Claim:
    """A quantitative statement a figure tests: ``measured`` ± ``uncertainty`` against ``theory`` within
    ``tolerance`` (absolute, in the units of the values). Build it with :func:`judge`, which sets the verdict."""

    text: str
    source: str
    theory: float | None
    measured: float | None
    uncertainty: float | None
    tolerance: float | None
    verdict: str
    where: str = ""  # which points were compared
    note: str = ""  # one sentence of why the verdict is what it is
    figure: str = ""  # the figure (one of the type's FIGURES) that shows it; "" = the type's first figure

    def __post_init__(self):
        if self.verdict not in VERDICTS:
            raise ValueError(f"claim verdict {self.verdict!r} is not one of {VERDICTS}")

    def as_dict(self) -> dict:
        return {k: getattr(self, k) for k in ("text", "source", "theory", "measured", "uncertainty", "tolerance",
                                               "verdict", "where", "note", "figure")}


def _finite(x) -> float | None:
    return None if x is None or not math.isfinite(float(x)) else float(x)


def judge(text: str, source: str, *, theory: float | None, measured: float | None, tolerance: float,
          uncertainty: float | None = 0.0, where: str = "", note: str = "", figure: str = "") -> Claim:
    """A claim with its verdict: *agrees* when the measured value is within ``tolerance`` of the theory even at
    the edge of its uncertainty (|m − t| + u ≤ tol), *disagrees* when it is outside even at the other edge
    (|m − t| − u > tol), *inconclusive* otherwise, and when there is nothing to compare (None or NaN).

    ``note``: one sentence of why (the physics: "too few steps to reach the edge"); without one, a sentence
    from the numbers is written. ``figure``: the figure that shows the claim (default: the type's first)."""
    theory, measured, unc = _finite(theory), _finite(measured), _finite(uncertainty)
    if theory is None or measured is None or (uncertainty is not None and unc is None):
        verdict = INCONCLUSIVE
        why = "nothing to compare: no theory value or no finite measurement at these settings"
    else:
        gap, unc = abs(measured - theory), unc or 0.0
        verdict = AGREES if gap + unc <= tolerance else DISAGREES if gap - unc > tolerance else INCONCLUSIVE
        why = {AGREES: f"|measured − theory| = {gap:.3g} plus the uncertainty {unc:.2g} is within the tolerance "
                       f"{tolerance:.3g}",
               DISAGREES: f"|measured − theory| = {gap:.3g} exceeds the tolerance {tolerance:.3g} by more than the "
                          f"uncertainty {unc:.2g}",
               INCONCLUSIVE: f"the uncertainty {unc:.2g} straddles the tolerance: |measured − theory| = {gap:.3g} "
                             f"against {tolerance:.3g}"}[verdict]
    return Claim(text, source, theory, measured, unc, float(tolerance), verdict, where, note or why, figure)


def largest(deviation, uncertainty) -> tuple[float | None, float | None]:
    """The largest deviation (an xarray DataArray, NaN where nothing was compared) and the uncertainty at the same
    point (a DataArray over the same dims); (None, None) when nothing was compared."""
    import numpy as np

    if not int(deviation.notnull().sum()):
        return None, None
    at = np.unravel_index(int(np.nanargmax(deviation.values)), deviation.shape)
    return float(deviation.values[at]), float(uncertainty.transpose(*deviation.dims).values[at])


@dataclass
class Run:
    """What a stage function is given: the config (defaults filled), the experiment's name and section, the
    root seed, the device and threads of the job, and a log."""

    config: dict
    name: str
    threads: int = 1
    log_file: TextIO = field(default=sys.stderr, repr=False)
    stage: str = "train"

    @property
    def exp(self) -> dict:
        """The experiment's config section."""
        return self.config["experiments"][self.name]

    @property
    def seed(self) -> int:
        """The root seed (derive every seed from it with :func:`phaselab.data.derive_seed`)."""
        return self.config["seed"]

    @property
    def dtype(self):
        """The torch dtype of the section's ``precision`` key (a type states its default in its schema: float64
        where its theory check needs it, float32 where it allows it); float64 for a type without the key."""
        import torch

        return getattr(torch, self.exp.get("precision", "float64"))

    @cached_property
    def device(self):
        """The torch device of the job: ``device: auto`` takes CUDA when present."""
        from phaselab.device import pick_device

        return pick_device(self.config["device"])

    def log(self, message: str) -> None:
        """One progress line, prefixed by the stage, flushed at once."""
        print(f"[{self.stage}] {message}", file=self.log_file, flush=True)

