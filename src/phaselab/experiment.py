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

Claims: ``claims`` returns :class:`Claim` objects built by one of two functions, which set the verdict.

- :func:`judge`: "measured = theory within tolerance" (``relation`` "="), e.g. a seed mean against a closed form;
- :func:`exceeds`: a one-sided (sign) statement "measured > threshold" (``relation`` ">"), e.g. "tanh compresses",
  "the large batch is sharper": agrees when the whole interval measured ± uncertainty lies above the threshold,
  disagrees when it lies below, inconclusive when it straddles it. A statement "X < 0" is written as "−X > 0".

Their uncertainty is fixed a priori, mostly the seed interval of a mean: :func:`seed_interval` (the two-sided
Student-t interval; :func:`student_t_quantile` for a type's own level, e.g. a Bonferroni cut), or of a difference
of two means: :func:`welch_interval` (Welch's unequal-variance interval). :func:`largest` picks the point of
largest deviation.

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
RELATIONS = ("=", ">")  # a claim's statement: measured = theory (within tolerance), measured > theory (a threshold)


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
    ``tolerance`` (absolute, in the units of the values) when ``relation`` is "=" (built by :func:`judge`), or
    ``measured`` ± ``uncertainty`` above the threshold ``theory`` when ``relation`` is ">" (built by
    :func:`exceeds`; tolerance 0). Both functions set the verdict."""

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
    relation: str = "="  # "=": measured within tolerance of theory; ">": measured exceeds theory (a threshold)

    def __post_init__(self):
        if self.verdict not in VERDICTS:
            raise ValueError(f"claim verdict {self.verdict!r} is not one of {VERDICTS}")
        if self.relation not in RELATIONS:
            raise ValueError(f"claim relation {self.relation!r} is not one of {RELATIONS}")

    def as_dict(self) -> dict:
        return {k: getattr(self, k) for k in ("text", "source", "theory", "measured", "uncertainty", "tolerance",
                                               "verdict", "where", "note", "figure", "relation")}


def _finite(x) -> float | None:
    return None if x is None or not math.isfinite(float(x)) else float(x)


def judge(text: str, source: str, *, theory: float | None, measured: float | None, tolerance: float,
          uncertainty: float | None = 0.0, where: str = "", note: str = "", figure: str = "") -> Claim:
    """A claim with its verdict: *agrees* when the measured value is within ``tolerance`` of the theory even at
    the edge of its uncertainty (|m − t| + u ≤ tol), *disagrees* when it is outside even at the other edge
    (|m − t| − u > tol), *inconclusive* otherwise, and when there is nothing to compare (None or NaN).

    ``note``: one sentence of why (the physics: "too few steps to reach the edge"); without one, a sentence
    from the numbers is written. ``figure``: the figure that shows the claim (default: the type's first).
    The claim's ``relation`` is "=". A sign statement ("X > 0") is not an equality: write it with
    :func:`exceeds` (relation ">"), not as a band about a made-up centre."""
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


def exceeds(text: str, source: str, *, measured: float | None, uncertainty: float | None,
            threshold: float = 0.0, where: str = "", note: str = "", figure: str = "") -> Claim:
    """A one-sided claim "measured > threshold" with its verdict: *agrees* when the measured value exceeds the
    threshold even at the lower edge of its uncertainty (m − u > threshold), *disagrees* when it falls below it even
    at the upper edge (m + u < threshold), *inconclusive* otherwise, and when there is nothing to compare (None or
    NaN). ``uncertainty``: the half-width of the interval judged (e.g. :func:`seed_interval`'s 95 % half-width, or
    2 standard errors), fixed a priori. The claim has ``theory`` = threshold, ``tolerance`` = 0, ``relation`` ">".

    ``note``, ``figure``: as for :func:`judge` (without a note, a sentence from the numbers is written)."""
    measured, unc, threshold = _finite(measured), _finite(uncertainty), float(threshold)
    if measured is None or unc is None:
        verdict = INCONCLUSIVE
        why = ("nothing to compare: no finite measurement at these settings" if measured is None else
               "no interval: the measurement has no finite uncertainty (e.g. fewer than two seeds)")
    else:
        lo, hi = measured - unc, measured + unc
        verdict = AGREES if lo > threshold else DISAGREES if hi < threshold else INCONCLUSIVE
        side = {AGREES: "lies above", DISAGREES: "lies below", INCONCLUSIVE: "straddles"}[verdict]
        why = f"the interval {measured:.3g} ± {unc:.2g}, [{lo:.3g}, {hi:.3g}], {side} {threshold:g}"
    return Claim(text, source, threshold, measured, unc, 0.0, verdict, where, note or why, figure, ">")


def student_t_quantile(n: int, confidence: float = 0.95) -> float:
    """The two-sided Student-t quantile of a mean of ``n`` values: t with P(|T| ≤ t) = ``confidence`` for n − 1
    degrees of freedom (n = math.inf: the normal quantile, for a known standard error); NaN for n < 2."""
    from scipy.stats import t as student_t

    if n < 2:
        return math.nan
    return float(student_t.ppf(0.5 + confidence / 2, n - 1))


def seed_interval(values, confidence: float = 0.95) -> tuple[float, float, int]:
    """The seed interval of a mean: (mean, half-width, n) of the finite ``values`` (e.g. one a seed), the
    half-width that of the two-sided Student-t ``confidence`` interval, t_{n−1} · s/√n (s the sample standard
    deviation, ddof 1). (mean or NaN, NaN, n) when n < 2."""
    import numpy as np

    v = np.asarray(values, dtype=float).ravel()
    v = v[np.isfinite(v)]
    n = len(v)
    mean = float(v.mean()) if n else math.nan
    if n < 2:
        return mean, math.nan, n
    return mean, student_t_quantile(n, confidence) * float(v.std(ddof=1)) / math.sqrt(n), n


def welch_interval(a, b, confidence: float = 0.95) -> tuple[float, float, float]:
    """The interval of a difference of two means with unequal variances (Welch): (mean(a) − mean(b), half-width,
    degrees of freedom) of the finite values of ``a`` and ``b`` (e.g. one a seed each), the half-width that of the
    two-sided Student-t ``confidence`` interval, t_ν · √(s_a²/n_a + s_b²/n_b) with the Welch–Satterthwaite
    ν = (v_a + v_b)² / (v_a²/(n_a − 1) + v_b²/(n_b − 1)), v = s²/n (s the sample standard deviation, ddof 1) — the
    interval of ``scipy.stats.ttest_ind(a, b, equal_var=False)``. Both samples constant: half-width 0 (ν = n_a + n_b
    − 2). (difference or NaN, NaN, NaN) when either has fewer than two values."""
    import numpy as np
    from scipy.stats import t as student_t

    a, b = np.asarray(a, dtype=float).ravel(), np.asarray(b, dtype=float).ravel()
    a, b = a[np.isfinite(a)], b[np.isfinite(b)]
    na, nb = len(a), len(b)
    diff = float(a.mean() - b.mean()) if na and nb else math.nan
    if na < 2 or nb < 2:
        return diff, math.nan, math.nan
    va, vb = float(a.var(ddof=1)) / na, float(b.var(ddof=1)) / nb
    if va + vb == 0:
        return diff, 0.0, float(na + nb - 2)
    dof = (va + vb) ** 2 / (va**2 / (na - 1) + vb**2 / (nb - 1))
    return diff, float(student_t.ppf(0.5 + confidence / 2, dof)) * math.sqrt(va + vb), float(dof)


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

