"""The tiny workflow through a real SLURM cluster (snakemake-executor-plugin-slurm) equals a local run.

CI stands the cluster up with `.ci/slurm-up.sh` (munge, slurmctld, slurmd from Debian's packages). The test skips
only where the SLURM client is not installed; an installed but unreachable cluster is a failure.
"""

import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import yaml
from conftest import ROOT, copy_example, run_snakemake, tiny_config

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


def test_slurm_run_fails_visibly_then_completes_only_what_is_missing_and_equals_the_local_run(
        cluster, tiny_reference, tmp_path):
    local_dir, config = tiny_reference
    config = dict(config, results=str(tmp_path / "results"))
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
    assert "has been submitted with SLURM jobid" in rerun.stdout + rerun.stderr

    # every cell was trained in a SLURM job (d16 in the failing run, d32 in the rerun): same seeds, same numbers
    slurm = open_netcdf(tmp_path / "results" / "tiny" / "metrics.nc")
    local = open_netcdf(local_dir / "results" / "tiny" / "metrics.nc")
    for var in ("risk", "final_risk", "test_risk", "Q0", "M0"):
        np.testing.assert_array_equal(slurm[var].values, local[var].values, err_msg=var)
    assert (slurm["status"].values == local["status"].values).all()
    for figure in ("phase_diagram", "risk_curves", "asymptotic_risk"):
        assert (tmp_path / "results" / "tiny" / "figures" / f"{figure}.png").exists()


def test_own_experiment_type_runs_through_slurm_and_equals_its_local_run(cluster, example_reference, tmp_path):
    """examples/width_lr_transfer from a folder outside the repository (`type: mylab.width_lr_transfer`,
    `python_path: [.]`): every job finds the researcher's code on SLURM, and the numbers equal the local run's."""
    work = copy_example(tmp_path)
    run = run_snakemake(work, work / "tiny.yaml", *SLURM_ARGS, timeout=1200)
    assert "has been submitted with SLURM jobid" in run.stdout + run.stderr
    slurm = open_netcdf(work / "results" / "wlt_tiny" / "metrics.nc")
    local = open_netcdf(example_reference / "results" / "wlt_tiny" / "metrics.nc")
    assert set(slurm.data_vars) == set(local.data_vars)
    for var in slurm.data_vars:
        np.testing.assert_array_equal(slurm[var].values, local[var].values, err_msg=var)
    for figure in ("loss_vs_lr", "optimal_lr"):
        assert (work / "results" / "wlt_tiny" / "figures" / f"{figure}.png").stat().st_size > 10_000
    assert (work / "results" / "wlt_tiny" / "claims.json").read_text() == (
        example_reference / "results" / "wlt_tiny" / "claims.json").read_text()


# --- the controller itself as a batch job (workflow/sbatch-controller.sh): survives logout, resumes on resubmit ---

CONTROLLER_ARGS = SLURM_ARGS[2:]  # the script brings --profile profiles/slurm itself


def submit_controller(workdir: Path, config_path: Path, *args: str) -> str:
    """`sbatch workflow/sbatch-controller.sh` from the repository root, as the README says; returns the job id."""
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    submitted = subprocess.run(
        ["sbatch", "--parsable", "--output", str(workdir / "controller-%j.log"),
         str(ROOT / "workflow" / "sbatch-controller.sh"), "-d", str(workdir), "--configfile", str(config_path),
         *CONTROLLER_ARGS, *args],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=60, check=False,
    )
    assert submitted.returncode == 0, submitted.stderr
    return submitted.stdout.strip().split(";")[0]


def wait_until(condition, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(2)
    pytest.fail(f"gave up after {timeout:.0f} s waiting for {what}")


def queued(**selector) -> list[str]:
    """Job ids in the queue (pending, running or completing) for squeue's -j/-n selector."""
    flag = {"job": "-j", "name": "-n"}
    args = [item for key, value in selector.items() for item in (flag[key], value)]
    out = subprocess.run(["squeue", "-h", "-o", "%i", *args], capture_output=True, text=True, timeout=30, check=False)
    return out.stdout.split()


def job_state(job_id: str) -> dict:
    """JobState and ExitCode of a finished job (its record stays MinJobAge = 300 s; no accounting needed)."""
    out = subprocess.run(["scontrol", "show", "job", job_id], capture_output=True, text=True, timeout=30,
                         check=False).stdout
    return dict(re.findall(r"\b(JobState|ExitCode)=(\S+)", out))


def finished_train_outputs(log: str) -> list[str]:
    """The cells whose training job the controller saw finish, from its log (`rule train: ... output ... jobid`)."""
    outputs = dict(re.findall(r"rule train:\n(?:.*\n)*?\s+output: (\S+)\n(?:.*\n)*?\s+jobid: (\d+)", log))
    outputs = {jobid: path for path, jobid in outputs.items()}
    return [outputs[j] for j in re.findall(r"Finished jobid: (\d+) \(Rule: train\)", log)]


def test_controller_as_batch_job_is_cancelled_cleanly_and_resumes_on_resubmission(cluster, tiny_reference, tmp_path):
    local_dir, config = tiny_reference
    config = dict(config, results=str(tmp_path / "results"))
    (tmp_path / "tiny.yaml").write_text(yaml.safe_dump(config))
    # a controller refuses to start while another one lives in the same directory (here a stand-in that sleeps)
    other = subprocess.run(["sbatch", "--parsable", "--job-name", "phaselab-controller", "--mem", "100M",
                            "--output", "/dev/null", "--wrap", "sleep 300"],
                           cwd=ROOT, capture_output=True, text=True, timeout=60, check=True)
    other = other.stdout.strip().split(";")[0]
    refused = submit_controller(tmp_path, tmp_path / "tiny.yaml")
    wait_until(lambda: not queued(job=refused), 300, "the duplicate controller to give up")
    subprocess.run(["scancel", other], check=True, timeout=30)
    refusal = (tmp_path / f"controller-{refused}.log").read_text()
    assert f"another controller job runs from {ROOT} (job {other})" in refusal
    assert job_state(refused)["ExitCode"] == "1:0"
    assert not (tmp_path / "results").exists()
    wait_until(lambda: not queued(job=other), 120, "the stand-in to leave the queue")

    # one job at a time, so that cells are left to resume when the cancel lands (at most one more finishes)
    first = submit_controller(tmp_path, tmp_path / "tiny.yaml", "--jobs", "1")
    first_log = tmp_path / f"controller-{first}.log"
    wait_until(lambda: first_log.exists() and finished_train_outputs(first_log.read_text()), 600,
               "the first controller to see a training job finish")

    # "logout" is harmless; scancel (or the time limit) stops the sweep, and takes the controller's jobs with it
    done = {path: Path(path).stat().st_mtime_ns for path in finished_train_outputs(first_log.read_text())}
    subprocess.run(["scancel", first], check=True, timeout=30)
    wait_until(lambda: not queued(job=first), 120, "the cancelled controller to leave the queue")
    log = first_log.read_text()
    run_id = re.search(r"SLURM run ID: (\S+)", log).group(1)
    wait_until(lambda: not queued(name=run_id), 60, "the cancelled controller's jobs to leave the queue")
    assert "Terminating processes on user request" in log
    cells = tmp_path / "results" / "tiny" / "cells"
    assert len(list(cells.glob("*.nc"))) < 4, "the sweep finished before the cancel: nothing left to resume"

    # submitting the same script again resumes: finished cells are kept, the rest is done, results equal a local run
    second = submit_controller(tmp_path, tmp_path / "tiny.yaml")
    wait_until(lambda: not queued(job=second), 900, "the resubmitted controller to finish")
    second_log = (tmp_path / f"controller-{second}.log").read_text()
    assert job_state(second) == {"JobState": "COMPLETED", "ExitCode": "0:0"}, second_log[-3000:]
    assert {path: Path(path).stat().st_mtime_ns for path in done} == done
    resumed = open_netcdf(tmp_path / "results" / "tiny" / "metrics.nc")
    local = open_netcdf(local_dir / "results" / "tiny" / "metrics.nc")
    for var in ("risk", "final_risk", "test_risk"):
        np.testing.assert_array_equal(resumed[var].values, local[var].values, err_msg=var)
    assert (tmp_path / "results" / "summary.html").exists()
    assert "Nothing to be done" in run_snakemake(tmp_path, tmp_path / "tiny.yaml", "-n").stdout


def test_device_cuda_reaches_sbatch_as_one_gpu_per_training_job(cluster, tmp_path):
    """`device: cuda` → the train rule's gpu resource → `sbatch --gpus=1` (this GPU-less cluster then refuses it)."""
    config = dict(tiny_config(tmp_path / "results"), device="cuda")
    (tmp_path / "cuda.yaml").write_text(yaml.safe_dump(config))
    data = tmp_path / "results" / "tiny" / "data" / "d16.npz"
    run_snakemake(tmp_path, tmp_path / "cuda.yaml", "-c", "1", str(data))
    cell = tmp_path / "results" / "tiny" / "cells" / "d16_kappa0.nc"
    run = run_snakemake(tmp_path, tmp_path / "cuda.yaml", *SLURM_ARGS, "--verbose", str(cell), timeout=300,
                        check=False)
    calls = [line for line in (run.stdout + run.stderr).splitlines() if line.startswith("sbatch call:")]
    assert len(calls) == 1 and "--comment rule_train" in calls[0] and " --gpus=1 " in calls[0] + " ", calls
    assert run.returncode != 0 and not cell.exists()
