"""Experiment configs: the checks a JSON schema cannot express, and the expansion of a grid into cells.

The schema (workflow/schemas/config.schema.yaml, applied by Snakemake's ``validate``) checks types, bounds and
unknown keys. ``check`` adds the cross-field rules and names the offending key and value. ``shape_cells`` expands
an experiment's grid once into the table of shape cells (d, κ → p): the unit of one training job, each with an
id built from integers only, so that 1e-3 and 0.001 can never become two files.

Nothing here imports torch: the Snakefile imports this module at parse time.
"""

from __future__ import annotations

import hashlib
import json
import math

EXPONENT_RESOLUTION = 1000  # κ and δ are stored in ids as integer thousandths


class ConfigError(ValueError):
    """A config that must be rejected before any job runs; the message names the key and the bad value."""


def _fail(key: str, value, why: str):
    raise ConfigError(f"config key '{key}' = {value!r}: {why}")


def milli(value: float, key: str) -> int:
    """κ or δ as an integer number of thousandths; a value off that grid is rejected."""
    m = round(value * EXPONENT_RESOLUTION)
    if not math.isfinite(value) or abs(m - value * EXPONENT_RESOLUTION) > 1e-6:
        _fail(key, value, f"exponents must be finite multiples of 1/{EXPONENT_RESOLUTION}")
    return m


def width(d: int, kappa: float) -> int:
    """p = d^κ rounded, at least 1."""
    return max(1, round(d**kappa))


def learning_rate(gamma0: float, d: int, delta: float) -> float:
    """γ = γ0 d^(−δ)."""
    return gamma0 * d ** (-delta)


def check(config: dict) -> dict:
    """Cross-field checks of a schema-valid config; returns it unchanged or raises ConfigError."""
    for name, exp in config["experiments"].items():
        key = f"experiments.{name}"
        grid = exp["grid"]
        for axis in ("d", "kappa", "delta"):
            values = grid[axis]
            if len(set(values)) != len(values):
                _fail(f"{key}.grid.{axis}", values, "duplicate values")
            for v in values:
                if isinstance(v, float) and not math.isfinite(v):
                    _fail(f"{key}.grid.{axis}", v, "must be finite")
        ids = [milli(v, f"{key}.grid.kappa") for v in grid["kappa"]]
        ids += [milli(v, f"{key}.grid.delta") for v in grid["delta"]]
        k = exp["teacher"]["k"]
        for d in grid["d"]:
            if k > d:
                _fail(f"{key}.teacher.k", k, f"exceeds d = {d}")
            for kappa in grid["kappa"]:
                p = width(d, kappa)
                if p > d:
                    _fail(f"{key}.grid.kappa", kappa, f"gives width p = {p} > d = {d}")
    return config


def time_grid(t_max: float, per_decade: int, t_min: float = 0.1) -> list[float]:
    """Checkpoint times t = steps/d: 0, then log-spaced from t_min to the first grid point ≥ t_max."""
    top = math.ceil(round(math.log10(t_max / t_min) * per_decade, 9))
    return [0.0] + [t_min * 10 ** (i / per_decade) for i in range(top + 1)]


def shape_cells(exp: dict) -> list[dict]:
    """One row per (d, κ): the members (δ × seed) trained together, the width, horizon and checkpoints.

    The horizon is ``train.time`` in units of the slowest member's own time scale 1/η (η = γ/p), at least
    ``train.time`` and at most ``train.max_time``, rounded up to the experiment's checkpoint grid.
    """
    grid, train = exp["grid"], exp["train"]
    rows = []
    for d in sorted(grid["d"]):
        for kappa in sorted(grid["kappa"]):
            p = width(d, kappa)
            etas = [learning_rate(train["gamma0"], d, delta) / p for delta in grid["delta"]]
            horizon = min(train["time"] / min(1.0, min(etas)), train["max_time"])
            rows.append({
                "id": f"d{d}_kappa{milli(kappa, 'kappa')}",
                "d": d,
                "kappa": kappa,
                "p": p,
                "horizon": horizon,
            })
    times = time_grid(max(r["horizon"] for r in rows), train["checkpoints_per_decade"])
    for r in rows:
        end = next(i for i, t in enumerate(times) if t >= r["horizon"] * (1 - 1e-9))
        r["times"] = times[: end + 1]
        r["steps"] = [round(t * r["d"]) for t in r["times"]]
        r["horizon"] = r["times"][-1]
    return rows


def experiment_times(exp: dict) -> list[float]:
    """The experiment's full checkpoint grid (the ``time`` coordinate of its dataset)."""
    cells = shape_cells(exp)
    return max((c["times"] for c in cells), key=len)


def config_json(config: dict) -> str:
    return json.dumps(config, sort_keys=True, separators=(",", ":"))


def config_sha256(config: dict) -> str:
    return hashlib.sha256(config_json(config).encode()).hexdigest()
