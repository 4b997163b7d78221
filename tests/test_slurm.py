"""The quick workflow through a real SLURM cluster (snakemake-executor-plugin-slurm) equals a local run.

CI stands the cluster up with `.ci/slurm-up.sh` (munge, slurmctld, slurmd from Debian's packages). The test skips
only where the SLURM client is not installed; an installed but unreachable cluster is a failure.
"""

import shutil
import subprocess

import numpy as np
import pytest
import yaml
from conftest import ROOT, run_snakemake, tiny_config

from phaselab.metrics import open_netcdf

pytestmark = pytest.mark.slurm

SLURM_ARGS = ("--profile", str(ROOT / "profiles" / "slurm"), "--slurm-no-account", "--slurm-status-command", "squeue",
              "--slurm-init-seconds-before-status-checks", "3", "--retries", "0")


@pytest.fixture(scope="module")
def cluster():
    if shutil.which("sbatch") is None or shutil.which("sinfo") is None:
        pytest.skip("SLURM is not installed here (CI installs and starts it with .ci/slurm-up.sh)")
    state = subprocess.run(["sinfo", "-h", "-o", "%T"], capture_output=True, text=True, timeout=30)
    assert state.returncode == 0 and state.stdout.strip(), f"SLURM installed but not answering: {state.stderr}"


def test_slurm_run_equals_local_run(cluster, tiny_reference, tmp_path):
    local_dir, config = tiny_reference
    config = dict(config, results=str(tmp_path / "results"))
    (tmp_path / "tiny.yaml").write_text(yaml.safe_dump(config))
    run = run_snakemake(tmp_path, tmp_path / "tiny.yaml", *SLURM_ARGS, timeout=1200)
    assert "has been submitted with SLURM jobid" in run.stdout + run.stderr
    slurm = open_netcdf(tmp_path / "results" / "tiny" / "metrics.nc")
    local = open_netcdf(local_dir / "results" / "tiny" / "metrics.nc")
    for var in ("risk", "final_risk", "test_risk", "Q0", "M0"):
        np.testing.assert_array_equal(slurm[var].values, local[var].values, err_msg=var)
    assert (slurm["status"].values == local["status"].values).all()
    for figure in ("phase_diagram", "risk_curves", "asymptotic_risk"):
        assert (tmp_path / "results" / "tiny" / "figures" / f"{figure}.png").exists()


def test_failing_slurm_job_surfaces_and_rerun_completes_only_what_is_missing(cluster, tmp_path):
    config = tiny_config(tmp_path / "results")
    (tmp_path / "tiny.yaml").write_text(yaml.safe_dump(config))
    data_dir = tmp_path / "results" / "tiny" / "data"
    run_snakemake(tmp_path, tmp_path / "tiny.yaml", "-c", "1", str(data_dir / "d16.npz"), str(data_dir / "d32.npz"))
    (data_dir / "d32.npz").write_bytes(b"not an npz archive")  # inject a fault: a corrupt input of two jobs
    failed = run_snakemake(tmp_path, tmp_path / "tiny.yaml", *SLURM_ARGS, timeout=1200, check=False)
    text = failed.stdout + failed.stderr
    assert failed.returncode != 0
    assert "Error in rule train" in text and "d32_kappa" in text
    cells = tmp_path / "results" / "tiny" / "cells"
    assert sorted(p.name for p in cells.glob("*.nc")) == ["d16_kappa0.nc", "d16_kappa500.nc"]
    logs = "".join(p.read_text() for p in (tmp_path / "results" / "tiny" / "logs" / "train").glob("d32_*.log"))
    assert "cannot read data file" in logs and "d32.npz" in logs
    done = {p.name: p.stat().st_mtime_ns for p in cells.glob("*.nc")}
    (data_dir / "d32.npz").unlink()  # repair: the data job makes it again
    rerun = run_snakemake(tmp_path, tmp_path / "tiny.yaml", *SLURM_ARGS, timeout=1200)
    assert {p.name: p.stat().st_mtime_ns for p in cells.glob("d16_*.nc")} == done  # finished cells kept
    assert len(list(cells.glob("*.nc"))) == 4
    assert "Nothing to be done" in run_snakemake(tmp_path, tmp_path / "tiny.yaml", "-n").stdout
    assert rerun.returncode == 0
