import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCHEMA = ROOT / "workflow" / "schemas" / "config.schema.yaml"
CONFIGS = ROOT / "tests" / "configs"  # the tiny config of every built-in type
EXAMPLE = ROOT / "examples" / "width_lr_transfer"  # a researcher's own experiment type, outside the package

os.environ.setdefault("MPLBACKEND", "Agg")


def tiny_config(results: Path) -> dict:
    """A grid small enough for an end-to-end run in seconds: both sides of κ + δ = 0 and a cell on it
    (tests/configs/sgd_phase_diagram.yaml, results under ``results``)."""
    import yaml

    return {"results": str(results), **yaml.safe_load((CONFIGS / "sgd_phase_diagram.yaml").read_text())}


@pytest.fixture
def root() -> Path:
    return ROOT


def run_snakemake(workdir, config_path, *args, timeout=900, check=True):
    """`snakemake` on the project's Snakefile in ``workdir`` with a config file; returns the CompletedProcess."""
    import subprocess
    import sys

    run = subprocess.run(
        [sys.executable, "-m", "snakemake", "-s", str(ROOT / "Snakefile"), "-d", str(workdir), "--configfile",
         str(config_path), *args],
        capture_output=True, text=True, timeout=timeout,
    )
    if check:
        assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-4000:]
    return run


@pytest.fixture(scope="session")
def tiny_reference(tmp_path_factory):
    """One uninterrupted local run of the tiny config, shared by the tests that compare against it."""
    import yaml

    workdir = tmp_path_factory.mktemp("tiny_reference")
    config = tiny_config(workdir / "results")
    (workdir / "tiny.yaml").write_text(yaml.safe_dump(config))
    report = workdir / "reports" / "phaselab.html"
    report.parent.mkdir()
    run_snakemake(workdir, workdir / "tiny.yaml", "-c", "2", "--report", str(report), "--report-after-run")
    return workdir, config


def copy_example(folder: Path) -> Path:
    """A copy of the example folder outside the repository (its own working directory: ``python_path: [.]``)."""
    import shutil

    work = folder / "width_lr_transfer"
    shutil.copytree(EXAMPLE, work, ignore=shutil.ignore_patterns("results", "__pycache__", ".snakemake", "*.html"))
    return work


@pytest.fixture(scope="session")
def example_reference(tmp_path_factory):
    """The example's tiny config through `snakemake` from a folder outside the repository, report included."""
    work = copy_example(tmp_path_factory.mktemp("example_reference"))
    run_snakemake(work, work / "tiny.yaml", "-c", "2", "--report", str(work / "report.html"), "--report-after-run")
    return work

