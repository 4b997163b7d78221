"""Labelled results: netCDF written atomically, read with clear errors, and provenance attributes."""

from __future__ import annotations

import os
import platform
import subprocess
from pathlib import Path

import numpy as np
import xarray as xr

import phaselab
from phaselab.atomic import replacing
from phaselab.config import config_json, config_sha256


def write_netcdf(ds: xr.Dataset, path: str | os.PathLike) -> None:
    """Write netCDF4 to a temporary file beside ``path`` and rename it into place."""
    with replacing(path) as tmp:
        ds.to_netcdf(tmp, format="NETCDF4", engine="netcdf4")


def open_netcdf(path: str | os.PathLike) -> xr.Dataset:
    """Load a netCDF file fully into memory; a missing, truncated or corrupt file is an error naming it."""
    try:
        with xr.open_dataset(path, engine="netcdf4") as ds:
            return ds.load()
    except (OSError, ValueError, RuntimeError, KeyError) as err:
        raise RuntimeError(f"cannot read netCDF file '{path}': {err}") from err


def git_revision() -> str:
    """HEAD of the checkout phaselab runs from, with '-dirty' for uncommitted changes; 'unknown' outside git."""
    here = Path(__file__).resolve().parent
    try:
        rev = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10, cwd=here)
        if rev.returncode != 0 or not rev.stdout.strip():
            return "unknown"
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], capture_output=True,
                               text=True, timeout=10, cwd=here).stdout.strip()
        return rev.stdout.strip() + ("-dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def provenance(config: dict, device: str = "") -> dict:
    """Attributes that say how a dataset was made: config (JSON) and its sha256, versions, git revision, device."""
    from importlib.metadata import PackageNotFoundError, version

    def installed(package: str) -> str:
        try:
            return version(package)
        except PackageNotFoundError:
            return "not installed"

    return {
        "config_json": config_json(config),
        "config_sha256": config_sha256(config),
        "phaselab_version": phaselab.__version__,
        "git_revision": git_revision(),
        "torch_version": installed("torch"),
        "numba_version": installed("numba"),
        "numpy_version": np.__version__,
        "xarray_version": xr.__version__,
        "netcdf4_version": installed("netCDF4"),
        "snakemake_version": installed("snakemake"),
        "python_version": platform.python_version(),
        "device": device,
    }
