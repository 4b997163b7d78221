"""Run experiments in-process, without Snakemake (a notebook, a debugger, the tests): every stage of
:mod:`phaselab.stages` in order, writing the same files as the workflow under ``<results>/<experiment>/``."""

from __future__ import annotations

import copy
import sys
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class Result:
    """One experiment's outputs: its metrics and theory Datasets, its claims, and its figures' PNG files."""

    metrics: object  # xarray.Dataset
    theory: object  # xarray.Dataset
    claims: list = field(default_factory=list)
    figures: dict = field(default_factory=dict)  # figure name -> Path
    folder: Path | None = None


def load(config) -> dict:
    """A config from a mapping (copied) or a YAML file, validated with its defaults filled."""
    import yaml

    from phaselab.config import ConfigError, validate

    if isinstance(config, str | Path):
        path = Path(config)
        try:
            config = yaml.safe_load(path.read_text())
        except OSError as err:
            raise ConfigError(f"cannot read config file '{path}': {err.strerror}") from err
        except yaml.YAMLError as err:
            raise ConfigError(f"config file '{path}' is not valid YAML: {err}") from err
    return validate(copy.deepcopy(config))


def run(config, name: str | None = None, *, results: str | Path | None = None, figures: bool = True,
        threads: int | None = None, log=sys.stderr) -> Result:
    """Run one experiment of ``config`` (a dict or a YAML path; ``name`` may be left out when it has one) through
    every stage, writing under ``results`` (default: the config's ``results``); returns its :class:`Result`."""
    from phaselab import experiments, stages
    from phaselab.metrics import open_netcdf

    config = load(config)
    if results is not None:
        config["results"] = str(results)
    names = list(config["experiments"])
    if name is None:
        if len(names) != 1:
            raise ValueError(f"the config has {len(names)} experiments ({', '.join(names)}): name one")
        name = names[0]
    if name not in config["experiments"]:
        raise KeyError(f"no experiment '{name}' in the config; its experiments: {', '.join(names)}")
    threads = threads or config["threads"]
    kind = experiments.of(config, name)
    folder = Path(config["results"]) / name
    cell_paths = []
    for cell in kind.cells(config["experiments"][name]):
        data_path = None
        if cell.data:
            data_path = folder / "data" / f"{cell.data}.npz"
            if not data_path.exists():
                stages.make_data(config, name, cell.data, str(data_path), log=log)
        out = folder / "cells" / f"{cell.id}.nc"
        stages.train_cell(config, name, cell.id, data_path and str(data_path), str(out), threads, log)
        cell_paths.append(str(out))
    metrics, theory = folder / "metrics.nc", folder / "theory.nc"
    stages.collect_metrics(config, name, cell_paths, str(metrics), log=log)
    stages.make_theory(config, name, str(metrics), str(theory), log=log)
    drawn = {}
    if figures:
        for figure in kind.light.FIGURES:
            drawn[figure] = folder / "figures" / f"{figure}.png"
            stages.make_figure(config, name, figure, str(metrics), str(theory), str(drawn[figure]), log=log)
    claims = stages.make_claims(config, name, str(metrics), str(theory), str(folder / "claims.json"), log=log)
    return Result(open_netcdf(metrics), open_netcdf(theory), claims, drawn, folder)


def main(argv=None) -> int:
    import argparse

    parser = argparse.ArgumentParser(prog="python -m phaselab",
                                     description="phaselab without Snakemake: run a config's experiments in-process")
    sub = parser.add_subparsers(dest="command", required=True)
    one = sub.add_parser("run", help="run every stage of one (or every) experiment of CONFIG")
    one.add_argument("config", help="a config YAML file")
    one.add_argument("--experiment", "-e", help="the experiment to run (default: all of them)")
    one.add_argument("--results", help="results folder (default: the config's results)")
    one.add_argument("--no-figures", action="store_true", help="skip drawing the figures")
    args = parser.parse_args(argv)

    from phaselab.config import ConfigError

    try:
        config = load(args.config)
    except ConfigError as err:
        print(f"phaselab: {err}", file=sys.stderr)
        return 2
    for name in [args.experiment] if args.experiment else list(config["experiments"]):
        result = run(config, name, results=args.results, figures=not args.no_figures)
        print(f"{name}: {result.folder}/metrics.nc, theory.nc, {len(result.figures)} figures")
        for c in result.claims:
            print(f"  [{c.verdict}] {c.text}: measured {c.measured} ± {c.uncertainty}, theory {c.theory}, "
                  f"tolerance {c.tolerance}")
    return 0
