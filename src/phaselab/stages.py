"""The framework's stages: what every experiment type shares, written once.

Each Snakemake script calls one of these, and so does :func:`phaselab.run`. A stage finds the experiment's type,
looks up its cell, sets device and threads, logs with timing, calls the type's science function (the contract in
:mod:`phaselab.experiment`), adds the attributes every dataset carries, and writes the result atomically.

data → train (one job per cell, its members trained as one batched ensemble) → metrics (one Dataset per
experiment) → theory → figures and claims.
"""

from __future__ import annotations

import json
import sys
import time

from phaselab import experiments
from phaselab.config import apply_python_path
from phaselab.experiment import Run


def _open(config: dict, experiment: str, stage: str, threads: int = 1, log=sys.stderr):
    apply_python_path(config)
    return experiments.of(config, experiment), Run(config, experiment, threads, log, stage)


def find_cell(kind, exp: dict, cell_id: str):
    cells = {c.id: c for c in kind.cells(exp)}
    if cell_id not in cells:
        raise KeyError(f"no cell '{cell_id}' in this experiment; its cells: {', '.join(cells)}")
    return cells[cell_id]


def make_data(config: dict, experiment: str, data_id: str, out: str, log=sys.stderr) -> None:
    """The data file ``data_id`` that cells of the experiment read (``make_data`` of its type → ``.npz``)."""
    from phaselab import data

    kind, run = _open(config, experiment, "data", log=log)
    if not hasattr(kind.stages, "make_data"):
        raise RuntimeError(f"experiment {experiment} ({kind.name}) has no data files: its cells draw their own")
    started = time.perf_counter()
    data.save_npz_atomic(out, **kind.stages.make_data(run, data_id))
    run.log(f"experiment {experiment}, data {data_id}: written in {time.perf_counter() - started:.1f}s")


def train_cell(config: dict, experiment: str, cell_id: str, data_path: str | None, out: str, threads: int = 1,
               log=sys.stderr) -> None:
    """Train one cell (``train`` of its type) and write its netCDF with cell, device, threads and timing."""
    from phaselab import data
    from phaselab.device import set_threads
    from phaselab.metrics import write_netcdf

    kind, run = _open(config, experiment, "train", threads, log)
    cell = find_cell(kind, run.exp, cell_id)
    set_threads(threads)
    run.log(f"experiment {experiment}, cell {cell_id}: {cell}, device {run.device}, {threads} thread(s)")
    started = time.perf_counter()
    ds = kind.stages.train(run, cell, data.load_npz(data_path) if cell.data else None)
    seconds = time.perf_counter() - started
    ds.attrs = {"cell": cell_id, "device": str(run.device), "threads": threads, "train_seconds": seconds,
                **ds.attrs}
    run.log(f"cell {cell_id} done in {seconds:.1f}s")
    write_netcdf(ds, out)


def _default_collect(run: Run, cells: list):
    import xarray as xr

    return xr.merge(cells, join="outer", compat="no_conflicts", combine_attrs="drop_conflicts")


def label_coordinates(ds, kind) -> None:
    """Every coordinate's long_name and units, where the stage left them out: the type's own COORDS, else the
    shared vocabulary."""
    from phaselab.vocabulary import coordinate_attrs

    own = getattr(kind.light, "COORDS", None)
    for dim in ds.coords:
        for k, v in coordinate_attrs(str(dim), own).items():
            ds[dim].attrs.setdefault(k, v)


def collect_metrics(config: dict, experiment: str, cell_paths: list[str], out: str, log=sys.stderr) -> None:
    """Merge the cells into the experiment's one Dataset (``collect`` of its type, else ``xarray.merge``), with
    coordinate attributes from the vocabulary and the title, references and provenance attributes."""
    from phaselab.metrics import open_netcdf, provenance, write_netcdf

    kind, run = _open(config, experiment, "metrics", log=log)
    cells = [open_netcdf(path) for path in cell_paths]
    devices = sorted({str(c.attrs.get("device", "")) for c in cells} - {""})
    seconds = float(sum(float(c.attrs.get("train_seconds", 0.0)) for c in cells))
    ds = getattr(kind.stages, "collect", _default_collect)(run, cells)
    for var in ds.variables.values():  # a merge keeps the first cell's encoding: "ok" stored as 2 characters
        if var.dtype.kind in "USO":    # would cut "diverged" when written back
            var.encoding.pop("dtype", None)
    label_coordinates(ds, kind)
    ds.attrs = {
        "title": f"phaselab experiment {experiment}: {kind.light.TITLE}",
        "experiment": experiment,
        "experiment_type": kind.name,
        "experiment_module": kind.module,
        "references": kind.light.REFERENCES,
        **({"precision": run.exp["precision"]} if "precision" in run.exp else {}),
        **{k: v for k, v in ds.attrs.items() if k not in ("cell", "device", "threads", "train_seconds")},
        "train_seconds": seconds,
        **provenance(config, ",".join(devices)),
    }
    write_netcdf(ds, out)
    run.log(f"experiment {experiment}: {len(cells)} cells merged")


def make_theory(config: dict, experiment: str, metrics_path: str, out: str, log=sys.stderr) -> None:
    """The theory beside the measurements (``theory`` of its type)."""
    from phaselab.metrics import open_netcdf, write_netcdf

    kind, run = _open(config, experiment, "theory", log=log)
    started = time.perf_counter()
    ds = kind.stages.theory(run, open_netcdf(metrics_path))
    label_coordinates(ds, kind)
    ds.attrs.setdefault("references", kind.light.REFERENCES)
    write_netcdf(ds, out)
    run.log(f"experiment {experiment}: theory in {time.perf_counter() - started:.1f}s")


def make_figure(config: dict, experiment: str, figure: str, metrics_path: str, theory_path: str, out: str,
                log=sys.stderr) -> None:
    """One figure (the function of that name in the type's ``figures``), saved as PNG with provenance."""
    from phaselab.metrics import open_netcdf
    from phaselab.plots import save

    kind, _ = _open(config, experiment, "figure", log=log)
    save(getattr(kind.figures, figure)(open_netcdf(metrics_path), open_netcdf(theory_path)), out)


def make_claims(config: dict, experiment: str, metrics_path: str, theory_path: str, out: str,
                log=sys.stderr) -> list:
    """The claims the experiment's figures test (``claims`` of its type), with verdicts, as JSON."""
    from phaselab.atomic import replacing
    from phaselab.experiment import Claim
    from phaselab.metrics import open_netcdf

    kind, run = _open(config, experiment, "claims", log=log)
    claims = list(kind.stages.claims(open_netcdf(metrics_path), open_netcdf(theory_path)))
    for c in claims:
        if not isinstance(c, Claim):
            raise TypeError(f"{kind.stages_module}.claims returned {type(c).__name__}, not phaselab.experiment.Claim")
        run.log(f"{c.verdict}: {c.text} (measured {c.measured}, theory {c.theory}, tolerance {c.tolerance})")
    with replacing(out) as tmp:
        tmp.write_text(json.dumps([c.as_dict() for c in claims], indent=1))
    return claims
