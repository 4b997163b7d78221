"""The workflow's stages: each Snakemake script calls one of these, which hands over to the experiment's module.

data → train (one job per cell, its members trained as one batched ensemble) → metrics (one Dataset per
experiment) → theory → figures.
"""

from __future__ import annotations

import sys

from phaselab import experiments


def _module(config: dict, experiment: str):
    return experiments.get(config["experiments"][experiment]["type"])


def make_data(config: dict, experiment: str, data_id: str, out: str) -> None:
    _module(config, experiment).make_data(config, experiment, data_id, out)


def train_cell(config: dict, experiment: str, cell_id: str, data_path: str | None, out: str, threads: int = 1,
               log=sys.stderr) -> None:
    _module(config, experiment).train_cell(config, experiment, cell_id, data_path, out, threads, log)


def collect_metrics(config: dict, experiment: str, cell_paths: list[str], out: str) -> None:
    _module(config, experiment).collect(config, experiment, cell_paths, out)


def make_theory(config: dict, experiment: str, metrics_path: str, out: str) -> None:
    _module(config, experiment).theory(config, experiment, metrics_path, out)


def make_figure(config: dict, experiment: str, figure: str, metrics_path: str, theory_path: str, out: str) -> None:
    from phaselab.metrics import open_netcdf
    from phaselab.plots import save

    fig = _module(config, experiment).figure(figure, open_netcdf(metrics_path), open_netcdf(theory_path))
    save(fig, out)
