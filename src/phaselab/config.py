"""Configs: the checks a JSON schema cannot express, dispatched to each experiment type, and the config's hash.

``validate`` applies the top-level schema (workflow/schemas/config.schema.yaml), then each experiment section's
own schema (its type's ``schema.yaml``: types, bounds, defaults, unknown keys), then the type's cross-field rules;
every error names the offending key and value. Nothing here imports torch: the Snakefile imports this module at
parse time.
"""

from __future__ import annotations

import copy
import hashlib
import json
import math
from pathlib import Path

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


TOP_SCHEMA = Path(__file__).resolve().parents[2] / "workflow" / "schemas" / "config.schema.yaml"


def _read_schema(path: Path) -> dict:
    import yaml

    return yaml.safe_load(Path(path).read_text())


def _validator(schema: dict):
    """A JSON-schema validator that fills ``default:`` values in as it goes (as Snakemake's ``validate`` does)."""
    import jsonschema

    base = jsonschema.validators.validator_for(schema)

    def set_defaults(validator, properties, instance, schema_):
        if isinstance(instance, dict):
            for name, sub in properties.items():
                if "default" in sub:
                    instance.setdefault(name, copy.deepcopy(sub["default"]))
        yield from base.VALIDATORS["properties"](validator, properties, instance, schema_)

    return jsonschema.validators.extend(base, {"properties": set_defaults})(schema)


def _key(prefix: str, path) -> str:
    """A key path as the config writes it: ``experiments.tiny.grid.d[0]``."""
    key = prefix
    for part in path:
        key += f"[{part}]" if isinstance(part, int) else f".{part}" if key else str(part)
    return key or "(top level)"


def validate_against(schema: dict, instance: dict, prefix: str = "") -> None:
    """Validate ``instance`` (filling defaults in place); the first error names the key, the value and the rule."""
    from jsonschema.exceptions import best_match

    error = best_match(_validator(schema).iter_errors(instance))
    if error is not None:
        value = error.instance if not isinstance(error.instance, dict) else "{…}"
        fail(_key(prefix, error.absolute_path), value, error.message)


def apply_python_path(config: dict) -> None:
    """Put the config's ``python_path`` folders (relative to the working directory) first on the import path."""
    import importlib
    import os
    import sys

    added = False
    for i, folder in enumerate(config.get("python_path") or []):
        path = os.path.abspath(folder)
        if not os.path.isdir(path):
            fail(f"python_path[{i}]", folder, f"no such directory (resolved from {os.getcwd()})")
        if path not in sys.path:
            sys.path.insert(0, path)
            added = True
    if added:
        from phaselab import codehash, experiments

        importlib.invalidate_caches()
        codehash.module_path.cache_clear()
        experiments.resolve.cache_clear()


def validate(config: dict) -> dict:
    """Check a whole config and fill its defaults, in place: the top-level schema, ``python_path``, each
    experiment's type (it must resolve and keep the contract), its section against the type's own schema, and
    the type's cross-field ``check``. Raises ConfigError naming the key; returns the config."""
    from phaselab import experiments

    if not isinstance(config, dict):
        fail("(top level)", config, "a config is a mapping of keys to values")
    validate_against(_read_schema(TOP_SCHEMA), config)
    apply_python_path(config)
    for name, exp in config["experiments"].items():
        key = f"experiments.{name}"
        kind = experiments.resolve(exp["type"], f"{key}.type")
        kind.check_contract(f"{key}.type")
        validate_against(_read_schema(kind.schema_path), exp, key)
        if hasattr(kind.light, "check"):
            kind.light.check(key, exp)
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
