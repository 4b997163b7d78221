"""Kill a sweep mid-training and run the same command again: only unfinished cells are redone, and the results
equal an uninterrupted run. A killed training job never leaves a file that a rerun would take as done."""

import os
import signal
import subprocess
import sys
import time

import numpy as np
import yaml
from conftest import ROOT, run_snakemake

from phaselab.metrics import open_netcdf


def resume_config(results):
    """One fast cell (d = 32) and one that trains for several seconds (d = 512, p = 23, η down to 1/512)."""
    return {
        "results": str(results), "seed": 3, "device": "cpu", "threads": 1,
        "experiments": {"resume": {
            "type": "sgd_phase_diagram",
            "grid": {"d": [32, 512], "kappa": [0.5], "delta": [0.0, 0.5, 1.0], "seeds": 4},
            "teacher": {"k": 1, "noise": 0.01},
            "train": {"time": 2, "max_time": 150, "n_test": 100, "checkpoints_per_decade": 4},
        }},
    }


def start(workdir, config_path):
    return subprocess.Popen(
        [sys.executable, "-m", "snakemake", "-s", str(ROOT / "Snakefile"), "-d", str(workdir), "--configfile",
         str(config_path), "-c", "1"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )


def wait_for(predicate, timeout=300):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if predicate():
            return
        time.sleep(0.2)
    raise AssertionError("timed out")


def test_kill_mid_training_and_rerun(tmp_path):
    work, ref = tmp_path / "killed", tmp_path / "reference"
    for w in (work, ref):
        w.mkdir()
        (w / "c.yaml").write_text(yaml.safe_dump(resume_config(w / "results")))
    cells = work / "results" / "resume" / "cells"
    log = work / "results" / "resume" / "logs" / "train" / "d512_kappa500.log"

    # 0. one cell finished before the kill
    run_snakemake(work, work / "c.yaml", "-c", "1", str(cells / "d32_kappa500.nc"))
    fast_done = (cells / "d32_kappa500.nc").stat().st_mtime_ns

    # 1. SIGKILL the training job itself (as the OOM killer would): the controller reports the failure
    proc = start(work, work / "c.yaml")
    wait_for(lambda: log.exists() and "[train] step" in log.read_text())
    job = subprocess.run(["pgrep", "-f", "-s", str(proc.pid), "scripts/tmp.*train.py"], capture_output=True,
                         text=True).stdout.split()
    assert job, "training job not found"
    assert "[train] done" not in log.read_text()
    for pid in job:
        os.kill(int(pid), signal.SIGKILL)
    assert proc.wait(timeout=120) != 0
    assert not (cells / "d512_kappa500.nc").exists()

    # 2. same command again, then SIGTERM the whole controller session mid-training (logout, scancel)
    log.unlink()
    proc = start(work, work / "c.yaml")
    wait_for(lambda: log.exists() and "[train] step" in log.read_text())
    os.killpg(proc.pid, signal.SIGTERM)
    proc.wait(timeout=120)
    assert not (cells / "d512_kappa500.nc").exists()

    # 3. same command again: completes, redoing only the unfinished cell
    run_snakemake(work, work / "c.yaml", "-c", "1")
    assert (cells / "d32_kappa500.nc").stat().st_mtime_ns == fast_done

    # 4. equal to an uninterrupted run, bit for bit
    run_snakemake(ref, ref / "c.yaml", "-c", "1")
    a = open_netcdf(work / "results" / "resume" / "metrics.nc")
    b = open_netcdf(ref / "results" / "resume" / "metrics.nc")
    for var in ("risk", "final_risk", "test_risk"):
        np.testing.assert_array_equal(a[var].values, b[var].values, err_msg=var)
