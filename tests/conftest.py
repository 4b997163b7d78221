import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCHEMA = ROOT / "workflow" / "schemas" / "config.schema.yaml"

os.environ.setdefault("MPLBACKEND", "Agg")


def tiny_config(results: Path) -> dict:
    """A grid small enough for an end-to-end run in seconds: both sides of κ + δ = 0 and a cell on it."""
    return {
        "results": str(results),
        "seed": 0,
        "device": "cpu",
        "threads": 1,
        "experiments": {
            "tiny": {
                "type": "sgd_phase_diagram",
                "grid": {"d": [16, 32], "kappa": [0.0, 0.5], "delta": [-0.5, 0.0, 0.5], "seeds": 2},
                "teacher": {"k": 1, "noise": 0.01},
                "train": {"time": 2, "max_time": 10, "n_test": 200, "checkpoints_per_decade": 4},
            }
        },
    }


@pytest.fixture
def root() -> Path:
    return ROOT
