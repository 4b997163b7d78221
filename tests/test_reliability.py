"""Reliability: bad inputs rejected with clear errors, corrupt files named, same seed same numbers, logs."""

import errno
import subprocess
import sys

import numpy as np
import pytest
import yaml
from conftest import ROOT, run_snakemake, tiny_config

from phaselab import atomic
from phaselab.metrics import open_netcdf, write_netcdf


def snakemake_n(tmp_path, text):
    path = tmp_path / "c.yaml"
    path.write_text(text)
    return subprocess.run([sys.executable, "-m", "snakemake", "-s", str(ROOT / "Snakefile"), "-d", str(tmp_path),
                           "-n", "--configfile", str(path)], capture_output=True, text=True, timeout=120)


def test_yaml_syntax_error_is_rejected(tmp_path):
    run = snakemake_n(tmp_path, "experiments:\n  x: {type: sgd_phase_diagram, grid: {d: [8, 16}\n")
    assert run.returncode != 0 and "Config file is not valid JSON or YAML" in run.stdout + run.stderr


def test_nan_exponent_is_rejected_naming_the_key(tmp_path):
    config = tiny_config(tmp_path / "results")
    config["experiments"]["tiny"]["grid"]["delta"] = [0.0, float("nan")]
    run = snakemake_n(tmp_path, yaml.safe_dump(config))
    assert run.returncode != 0
    assert "config key 'experiments.tiny.grid.delta' = nan" in run.stdout + run.stderr


def test_unwritable_results_directory_is_a_clear_error(tmp_path):
    (tmp_path / "a_file").write_text("")
    config = tiny_config(tmp_path / "a_file" / "results")  # a directory under a regular file cannot exist
    run = snakemake_n(tmp_path, yaml.safe_dump(config))
    text = run.stdout + run.stderr
    assert run.returncode != 0 and "config key 'results'" in text and "cannot write there" in text
    assert "Traceback" not in text


def test_disk_full_while_writing_is_a_clear_error(tmp_path, monkeypatch):
    import os

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "replace", full)
    with pytest.raises(OSError, match=r"cannot write '.*out.bin': No space left on device"):
        with atomic.replacing(tmp_path / "out.bin") as tmp:
            tmp.write_bytes(b"data")
    assert list(tmp_path.iterdir()) == []  # nothing half-written left behind


def test_corrupt_or_truncated_netcdf_is_named(tmp_path, tiny_reference):
    workdir, _ = tiny_reference
    good = (workdir / "results" / "tiny" / "metrics.nc").read_bytes()
    truncated = tmp_path / "metrics.nc"
    truncated.write_bytes(good[: len(good) // 3])
    with pytest.raises(RuntimeError, match="cannot read netCDF file '.*metrics.nc'"):
        open_netcdf(truncated)
    garbage = tmp_path / "garbage.nc"
    garbage.write_bytes(b"\x00" * 1000)
    with pytest.raises(RuntimeError, match="garbage.nc"):
        open_netcdf(garbage)


def test_corrupt_metrics_fails_the_theory_rule_naming_the_file(tmp_path):
    config = tiny_config(tmp_path / "results")
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(config))
    metrics = tmp_path / "results" / "tiny" / "metrics.nc"
    run_snakemake(tmp_path, tmp_path / "c.yaml", "-c", "2", str(metrics))
    metrics.write_bytes(metrics.read_bytes()[:500])
    run = run_snakemake(tmp_path, tmp_path / "c.yaml", "-c", "1", str(tmp_path / "results" / "tiny" / "theory.nc"),
                        check=False)
    assert run.returncode != 0
    log = (tmp_path / "results" / "tiny" / "logs" / "theory.log").read_text()
    assert "cannot read netCDF file" in log and "metrics.nc" in log


def test_same_seed_same_numbers_bitwise_and_another_seed_differs(tmp_path, tiny_reference):
    ref_dir, config = tiny_reference
    reference = open_netcdf(ref_dir / "results" / "tiny" / "metrics.nc")
    for seed, equal in ((0, True), (1, False)):
        work = tmp_path / f"seed{seed}"
        cfg = dict(config, results=str(work / "results"), seed=seed)
        work.mkdir()
        (work / "c.yaml").write_text(yaml.safe_dump(cfg))
        run_snakemake(work, work / "c.yaml", "-c", "2", str(work / "results" / "tiny" / "metrics.nc"))
        again = open_netcdf(work / "results" / "tiny" / "metrics.nc")
        for var in ("risk", "final_risk", "test_risk", "Q0", "M0"):
            same = np.array_equal(again[var].values, reference[var].values, equal_nan=True)
            assert same == equal, (seed, var)


def test_train_logs_name_cell_device_and_progress(tiny_reference):
    workdir, _ = tiny_reference
    log = (workdir / "results" / "tiny" / "logs" / "train" / "d32_kappa500.log").read_text()
    assert "cell d32_kappa500" in log and "device cpu" in log
    assert "[train] step" in log and "ETA" in log and "[train] cell d32_kappa500 done in" in log


@pytest.mark.skipif(not __import__("torch").cuda.is_available(), reason="no CUDA device here")
def test_cuda_run_matches_cpu_run_within_tolerance():
    """Same seed on CUDA (torch backend) and CPU: the same stream, fp32 arithmetic in another order → 1e-4."""
    from test_train import run

    cpu, _ = run(d=128, p=4, k=2, lr=(0.5, 1.0), times=(0.0, 1.0, 4.0), noise=0.01, device="cpu")
    gpu, _ = run(d=128, p=4, k=2, lr=(0.5, 1.0), times=(0.0, 1.0, 4.0), noise=0.01, device="cuda")
    np.testing.assert_allclose(gpu.risk, cpu.risk, rtol=1e-4)


def test_write_netcdf_leaves_no_partial_file(tmp_path):
    import xarray as xr

    class Boom(Exception):
        pass

    ds = xr.Dataset({"x": ("a", np.arange(3.0))})
    target = tmp_path / "m.nc"
    write_netcdf(ds, target)
    before = target.read_bytes()
    original = xr.Dataset.to_netcdf

    def broken(self, path, *args, **kwargs):
        open(path, "wb").write(b"partial")
        raise Boom()

    xr.Dataset.to_netcdf = broken
    try:
        with pytest.raises(Boom):
            write_netcdf(ds, target)
    finally:
        xr.Dataset.to_netcdf = original
    assert target.read_bytes() == before and [p.name for p in tmp_path.iterdir()] == ["m.nc"]
