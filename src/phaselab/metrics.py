"""Labelled results: per-cell training outputs, the one Dataset per experiment, provenance, atomic netCDF."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import tempfile
from pathlib import Path

import numpy as np
import xarray as xr

import phaselab
from phaselab.config import config_json, config_sha256

STATUS_OK, STATUS_DIVERGED = "ok", "diverged"

RISK_ATTRS = {"long_name": "excess population risk ½E[(f* − f)²]", "units": "1"}


def write_netcdf(ds: xr.Dataset, path: str | os.PathLike) -> None:
    """Write netCDF4 to a temporary file beside ``path`` and rename it into place (atomic on POSIX)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        ds.to_netcdf(tmp, format="NETCDF4", engine="netcdf4")
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def open_netcdf(path: str | os.PathLike) -> xr.Dataset:
    """Load a netCDF file fully into memory; a missing, truncated or corrupt file is an error naming it."""
    try:
        with xr.open_dataset(path, engine="netcdf4") as ds:
            return ds.load()
    except (OSError, ValueError, RuntimeError) as err:
        raise RuntimeError(f"cannot read netCDF file '{path}': {err}") from err


def git_revision() -> str:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10,
            cwd=Path(__file__).resolve().parent,
        )
        rev = out.stdout.strip()
        if out.returncode != 0 or not rev:
            return "unknown"
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], capture_output=True,
                               text=True, timeout=10, cwd=Path(__file__).resolve().parent).stdout.strip()
        return rev + ("-dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def provenance(config: dict, device: str = "") -> dict:
    """Attributes that say how a dataset was made: config (JSON) and its sha256, versions, git revision, device."""
    import netCDF4
    import torch

    return {
        "config_json": config_json(config),
        "config_sha256": config_sha256(config),
        "phaselab_version": phaselab.__version__,
        "git_revision": git_revision(),
        "torch_version": torch.__version__,
        "numpy_version": np.__version__,
        "xarray_version": xr.__version__,
        "netcdf4_version": netCDF4.__version__,
        "python_version": platform.python_version(),
        "device": device,
    }


def cell_dataset(cell: dict, deltas, n_seeds: int, result, lr, device: str, threads: int) -> xr.Dataset:
    """The results of one shape cell (d, κ) as a Dataset with dims (delta, seed, time)."""
    d, p = cell["d"], cell["p"]
    coords = {"delta": list(deltas), "seed": np.arange(n_seeds), "time": cell["times"]}
    risk = result.risk.transpose(1, 0, 2)  # (G=delta, S, T)
    diverged = result.diverged_step.T
    ds = xr.Dataset(
        {
            "risk": (("delta", "seed", "time"), risk, RISK_ATTRS),
            "final_risk": (("delta", "seed"), risk[..., -1], {**RISK_ATTRS, "long_name": "excess risk at the horizon"}),
            "test_risk": (("delta", "seed"), result.test_risk.T,
                          {"long_name": "held-out estimate of the excess risk at the horizon", "units": "1"}),
            "status": (("delta", "seed"), np.where(diverged >= 0, STATUS_DIVERGED, STATUS_OK).astype(str),
                       {"long_name": "member status (ok / diverged)"}),
            "diverged_at": (("delta", "seed"), np.where(diverged >= 0, diverged / d, np.nan),
                            {"long_name": "time of divergence", "units": "steps/d"}),
            "lr": (("delta",), np.asarray(lr, dtype=float), {"long_name": "learning rate γ = γ0 d^−δ", "units": "1"}),
            "Q0": (("seed", "student", "student_"), result.Q0, {"long_name": "initial Q = WWᵀ/d", "units": "1"}),
            "M0": (("seed", "student", "teacher"), result.M0, {"long_name": "initial M = WW*ᵀ/d", "units": "1"}),
        },
        coords={**coords, "student": np.arange(p), "student_": np.arange(p), "teacher": np.arange(result.M0.shape[-1])},
        attrs={"cell": cell["id"], "device": device, "threads": threads, "train_seconds": result.seconds,
               "member_steps_per_second": result.member_steps_per_s},
    )
    ds = ds.expand_dims(d=[d], kappa=[cell["kappa"]])
    ds["width"] = (("d", "kappa"), [[p]], {"long_name": "hidden units p = round(d^κ)", "units": "1"})
    ds["horizon"] = (("d", "kappa"), [[cell["horizon"]]], {"long_name": "end of the run", "units": "steps/d"})
    return ds


def combine_cells(cells: list[xr.Dataset], config: dict, experiment: str, times) -> xr.Dataset:
    """Merge per-cell Datasets into the experiment's one Dataset with dims (d, kappa, delta, seed, time)."""
    devices = sorted({c.attrs["device"] for c in cells})
    for c in cells:
        c.attrs = {}
    ds = xr.merge(cells, join="outer", compat="no_conflicts", combine_attrs="override").reindex(time=times)
    ds["status"] = ds["status"].fillna(STATUS_OK).astype(str)
    ds["width"] = ds["width"].astype(int)
    ds["eta"] = (ds["lr"] / ds["width"]).assign_attrs(long_name="effective learning rate η = γ/p", units="1")
    exp = config["experiments"][experiment]
    needed = exp["train"]["time"] / np.minimum(1.0, ds["eta"])
    ds["capped"] = (ds["horizon"] < needed * (1 - 1e-9)).assign_attrs(
        long_name="run cut by train.max_time before t = train.time / min(1, η): not yet asymptotic")
    ds.attrs = {
        "title": f"phaselab experiment {experiment}: online SGD phase diagram of the erf committee machine",
        "experiment": experiment,
        "references": "Veiga, Stephan, Loureiro, Krzakala, Zdeborová, NeurIPS 2022; Saad & Solla 1995",
        "teacher_k": exp["teacher"]["k"],
        "noise": exp["teacher"]["noise"],
        "gamma0": exp["train"]["gamma0"],
        "divergence_threshold": exp["train"]["divergence_threshold"],
        **provenance(config, ",".join(devices)),
    }
    for name, units, long_name in [("d", "1", "input dimension"), ("kappa", "1", "width exponent κ, p = d^κ"),
                                   ("delta", "1", "learning-rate exponent δ, γ = γ0 d^−δ"),
                                   ("seed", "1", "seed index"), ("time", "steps/d", "time t = steps/d")]:
        ds[name].attrs.update(long_name=long_name, units=units)
    return ds


def summary(ds: xr.Dataset) -> dict:
    """Numbers for logs and the report: members, diverged members, best and worst mean final risk."""
    mean = ds["final_risk"].mean("seed")
    return {
        "members": int(ds["status"].size),
        "diverged": int((ds["status"] == STATUS_DIVERGED).sum()),
        "min_mean_final_risk": float(mean.min()),
        "max_mean_final_risk": float(mean.max()),
        "config_sha256": ds.attrs.get("config_sha256"),
    }


def to_json(obj) -> str:
    return json.dumps(obj, indent=2, sort_keys=True)
