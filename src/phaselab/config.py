"""Configs: the checks a JSON schema cannot express, dispatched to each experiment type, and the config's hash.

The schema (workflow/schemas/config.schema.yaml, applied by Snakemake's ``validate``) checks types, bounds and
unknown keys. ``check`` adds the cross-field rules and names the offending key and value. Nothing here imports
torch: the Snakefile imports this module at parse time.
"""

from __future__ import annotations

import hashlib
import json
import math

EXPONENT_RESOLUTION = 1000  # exponents such as κ and δ appear in file names as integer thousandths


class ConfigError(ValueError):
    """A config that must be rejected before any job runs; the message names the key and the bad value."""


def fail(key: str, value, why: str):
    raise ConfigError(f"config key '{key}' = {value!r}: {why}")


def milli(value: float, key: str) -> int:
    """An exponent as an integer number of thousandths; a value off that grid is rejected."""
    m = round(value * EXPONENT_RESOLUTION) if math.isfinite(value) else 0
    if not math.isfinite(value) or abs(m - value * EXPONENT_RESOLUTION) > 1e-6:
        fail(key, value, f"exponents must be finite multiples of 1/{EXPONENT_RESOLUTION}")
    return m


def check_grid_axis(key: str, values) -> None:
    """No duplicates and no non-finite numbers in one axis of a grid."""
    if len(set(values)) != len(values):
        fail(key, values, "duplicate values")
    for v in values:
        if isinstance(v, float) and not math.isfinite(v):
            fail(key, v, "must be finite")


def check(config: dict) -> dict:
    """Cross-field checks of a schema-valid config; returns it unchanged or raises ConfigError."""
    from phaselab import experiments

    for name, exp in config["experiments"].items():
        if exp["type"] not in experiments.TYPES:
            fail(f"experiments.{name}.type", exp["type"], f"not implemented; known: {sorted(experiments.TYPES)}")
        experiments.get(exp["type"]).check(f"experiments.{name}", exp)
    return config


def check_writable(results: str) -> None:
    """The results directory can be created and written (checked before any job runs)."""
    import os
    import tempfile

    try:
        os.makedirs(results, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=results, prefix=".phaselab-write-test-"):
            pass
    except OSError as err:
        fail("results", results, f"cannot write there: {err.strerror or err}")


def config_json(config: dict) -> str:
    return json.dumps(config, sort_keys=True, separators=(",", ":"))


def config_sha256(config: dict) -> str:
    return hashlib.sha256(config_json(config).encode()).hexdigest()
