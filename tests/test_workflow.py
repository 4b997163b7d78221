"""End to end through Snakemake: a tiny grid in CI; the quick default behind the `slow` mark."""

import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import xarray as xr
import yaml
from conftest import ROOT, tiny_config

FIGURES = ("phase_diagram", "risk_curves", "asymptotic_risk")


def snakemake(workdir, *args, timeout=900):
    run = subprocess.run(
        [sys.executable, "-m", "snakemake", "-s", str(ROOT / "Snakefile"), "-d", str(workdir), "-c", "2", *args],
        capture_output=True, text=True, timeout=timeout,
    )
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-4000:]
    return run


def check_experiment(results, name, config):
    exp = config["experiments"][name]
    metrics = xr.open_dataset(results / name / "metrics.nc")
    theory = xr.open_dataset(results / name / "theory.nc")
    grid = exp["grid"]
    assert dict(metrics["risk"].sizes) | {} == {
        "d": len(grid["d"]), "kappa": len(grid["kappa"]), "delta": len(grid["delta"]),
        "seed": grid["seeds"], "time": metrics.sizes["time"],
    }
    assert list(metrics["risk"].dims) == ["d", "kappa", "delta", "seed", "time"]
    assert metrics["risk"].attrs["units"] == "1" and metrics["time"].attrs["units"] == "steps/d"
    assert set(np.unique(metrics["status"].values)) <= {"ok", "diverged"}
    for key in ("config_json", "config_sha256", "phaselab_version", "git_revision", "torch_version", "device"):
        assert metrics.attrs[key], key
    assert yaml.safe_load(metrics.attrs["config_json"])["experiments"][name]["grid"]["d"] == grid["d"]
    # the dataset's widths follow p = round(d^κ), at least 1
    for d in grid["d"]:
        for kappa in grid["kappa"]:
            assert int(metrics["width"].sel(d=d, kappa=kappa)) == max(1, round(d**kappa))
    # at t = 0 the ODE starts where the simulation starts (same initial order parameters)
    on_line = abs(theory["kappa"] + theory["delta"]) < 1e-9
    start = theory["ode_risk"].isel(time=0).where(on_line)
    np.testing.assert_allclose(start.values[np.isfinite(start.values)],
                               metrics["risk"].isel(time=0).where(on_line).values[np.isfinite(start.values)],
                               rtol=1e-6)
    for figure in FIGURES:
        assert (results / name / "figures" / f"{figure}.png").stat().st_size > 10_000
    return metrics, theory


def test_tiny_workflow_end_to_end(tiny_reference):
    workdir, config = tiny_reference  # `snakemake -c 2 --report reports/phaselab.html --report-after-run`
    check_experiment(workdir / "results", "tiny", config)
    report = workdir / "reports" / "phaselab.html"
    html = report.read_text()
    assert report.stat().st_size > 50_000
    for figure in FIGURES:
        assert f"{figure}.png" in html
    assert "summary.html" in html
    assert "Saad" in html and "Veiga" in html  # captions state the theory
    claims = json.loads((workdir / "results" / "tiny" / "claims.json").read_text())
    assert claims and all(c["verdict"] in ("agrees", "disagrees", "inconclusive") for c in claims)
    assert all(c["note"] for c in claims)  # every verdict says why
    # the scorecard: one row a claim, the columns, each row pointing at a figure of its experiment
    import csv

    from phaselab.summary import SCORECARD_COLUMNS
    with open(workdir / "results" / "scorecard.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert tuple(rows[0]) == SCORECARD_COLUMNS
    assert [r["relation"] for r in rows] == [c["relation"] for c in claims]  # "=" or ">" (a one-sided claim)
    assert [(r["experiment"], r["claim"], r["verdict"]) for r in rows] == [("tiny", c["text"], c["verdict"])
                                                                          for c in claims]
    assert all(Path(r["figure"]).exists() and Path(r["figure"]).parent == workdir / "results" / "tiny" / "figures"
               for r in rows)
    assert all(float(r["measured"]) == c["measured"] for r, c in zip(rows, claims) if c["measured"] is not None)
    # a second run has nothing to do
    again = snakemake(workdir, "--configfile", str(workdir / "tiny.yaml"), "-n")
    assert "Nothing to be done" in again.stdout + again.stderr


@pytest.mark.slow
def test_quick_default_end_to_end(tmp_path):
    config = yaml.safe_load((ROOT / "config" / "config.yaml").read_text())
    config["results"] = str(tmp_path / "results")
    (tmp_path / "quick.yaml").write_text(yaml.safe_dump(config))
    snakemake(tmp_path, "--configfile", str(tmp_path / "quick.yaml"), timeout=1800)
    metrics, theory = check_experiment(tmp_path / "results", "phase_diagram", config)
    # the κ + δ = 0 line against the ODE: seed means within 25 % at every checkpoint at the largest d
    line = metrics["risk"].where(abs(metrics["kappa"] + metrics["delta"]) < 1e-9)
    d = max(config["experiments"]["phase_diagram"]["grid"]["d"])
    sim = line.sel(d=d).mean("seed")
    ode = theory["ode_risk"].sel(d=d).mean("seed")
    rel = (abs(sim - ode) / ode).max()
    assert float(rel) < 0.25


def test_changed_config_reruns_the_experiment(tiny_reference):
    workdir, config = tiny_reference
    changed = yaml.safe_load(yaml.safe_dump(config))
    changed["experiments"]["tiny"]["teacher"]["noise"] = 0.02
    (workdir / "changed.yaml").write_text(yaml.safe_dump(changed))
    dry = snakemake(workdir, "--configfile", str(workdir / "changed.yaml"), "-n")
    text = dry.stdout + dry.stderr
    assert "Params have changed since last execution" in text
    for rule in ("data", "train", "metrics", "theory"):
        assert f"rule {rule}:" in text or f"localrule {rule}:" in text, rule


def test_device_cuda_asks_each_training_job_for_one_gpu(tmp_path):
    """On a cluster `device: cuda` must reach the scheduler: the train rule's gpu resource (SLURM: --gpus=1)."""
    plans = {}
    for device in ("cuda", "cpu"):
        config = dict(tiny_config(tmp_path / "results"), device=device)
        (tmp_path / f"{device}.yaml").write_text(yaml.safe_dump(config))
        dry = snakemake(tmp_path, "--configfile", str(tmp_path / f"{device}.yaml"), "-n")
        blocks = re.findall(r"^rule (\w+):\n((?:    .*\n)*)", dry.stdout, re.MULTILINE)  # a job: its indented lines
        plans[device] = [(rule, re.search(r"resources: (.*)", block).group(1)) for rule, block in blocks]
    for device, gpus in (("cuda", "1"), ("cpu", "0")):
        train = [res for rule, res in plans[device] if rule == "train"]
        assert len(train) == 4 and all(f"gpu={gpus}" in res for res in train), (device, train)
        assert not any("gpu=" in res for rule, res in plans[device] if rule != "train")


def test_every_shipped_config_together_is_one_valid_workflow(tmp_path):
    """All experiment configs at once (the README's command for every figure) validate and plan."""
    configs = sorted(str(p) for p in (ROOT / "config").glob("*.yaml") if p.name != "config.yaml")
    dry = snakemake(tmp_path, "--configfile", *configs, "-n")
    text = dry.stdout + dry.stderr
    for path in configs:
        for name in yaml.safe_load(open(path))["experiments"]:
            assert f"{name}/metrics.nc" in text, name


@pytest.fixture
def package_copy(tmp_path, monkeypatch):
    """A copy of the phaselab sources that the code hash reads instead of the real ones, to edit in a test."""
    import shutil

    from phaselab import codehash

    real_root = ROOT / "src" / "phaselab"
    copy = tmp_path / "phaselab"
    shutil.copytree(real_root, copy, ignore=shutil.ignore_patterns("__pycache__"))
    real = codehash.module_path.__wrapped__

    def module_path(name):
        path = real(name)
        return copy / path.relative_to(real_root) if path and path.is_relative_to(real_root) else path

    monkeypatch.setattr(codehash, "module_path", module_path)
    return copy


def test_each_stage_hashes_the_code_it_runs(package_copy):
    """The params trigger behind a code change: an edit reruns the stages whose code it touches, and only those."""
    from phaselab import codehash, experiments

    kind = experiments.resolve("sgd_phase_diagram")
    stages = ("data", "train", "metrics", "theory", "claims")

    def hashes():
        return {stage: kind.code_sha256(stage) for stage in stages} | {
            f"figure {f}": kind.code_sha256("figure", f) for f in kind.light.FIGURES}

    def edit(path, old, new):
        source = (package_copy / path).read_text()
        assert old in source
        (package_copy / path).write_text(source.replace(old, new, 1))

    train = kind.stage_sources("train")
    figure = kind.stage_sources("figure", "phase_diagram")
    assert {"phaselab.engines.committee", "phaselab.engines._kernels", "phaselab.data", "phaselab.metrics",
            "phaselab.stages"} <= set(train)
    assert {"train_cell"} <= train["phaselab.stages"] and {"train"} <= train[kind.stages_module]
    assert "train_committee_ensemble" in train["phaselab.engines.committee"]
    assert train["phaselab.engines._kernels"] is codehash.ALL
    assert not any(m.startswith("phaselab.plots") or m.endswith(".figures") for m in train)
    assert "phase_diagram" in figure[kind.figures_module] and "risk_curves" not in figure[kind.figures_module]
    assert not any(m.startswith("phaselab.engines") for m in figure)
    assert "phaselab.theory.phase_diagram" in kind.stage_sources("theory")
    # the perceptron experiments do not run the committee engine: an edit to its kernel leaves them alone
    assert not any(m.startswith("phaselab.engines") for m in experiments.resolve("capacity").stage_sources("train"))

    before = hashes()
    edit("experiments/sgd_phase_diagram/figures.py", "def phase_diagram(", "def phase_diagram(  # noqa\n")
    assert hashes() == before  # a comment alone changes nothing
    edit("experiments/sgd_phase_diagram/figures.py", "def risk_curves(",
         "def risk_curves(  # docstring edits change the code\n")
    edit("experiments/sgd_phase_diagram/figures.py", '"""', '"""A docstring edit changes the code.\n', )
    after = hashes()
    assert [s for s in before if before[s] != after[s]] == [f"figure {f}" for f in kind.light.FIGURES]
    edit("engines/committee.py", "def stream_rows(", "def unused_helper():\n    return 0\n\n\ndef stream_rows(")
    assert hashes() == after  # a function no stage calls
    edit("engines/_kernels.py", "\n", "\nSTREAM_BLOCK = 256\n")
    changed = hashes()
    assert [s for s in after if after[s] != changed[s]] == ["train"]
    summary = experiments.summary_code_sha256()
    edit("summary.py", '"""', '"""Changed. ')
    assert experiments.summary_code_sha256() != summary


def test_own_experiment_type_through_snakemake_from_outside_the_repository(example_reference):
    """examples/width_lr_transfer (`type: mylab.width_lr_transfer`, `python_path: [.]`) copied out of the repository
    and run by `snakemake`: its figures are in the report under its experiment, its claims on the summary page."""
    work = example_reference
    assert not work.resolve().is_relative_to(ROOT)
    results = work / "results" / "wlt_tiny"
    metrics = xr.open_dataset(results / "metrics.nc")
    assert metrics.attrs["experiment_module"] == "mylab.width_lr_transfer"
    assert set(np.unique(metrics["status"].values)) <= {"ok", "diverged"}
    html = (work / "report.html").read_text()
    for figure in ("loss_vs_lr", "optimal_lr"):
        assert (results / "figures" / f"{figure}.png").stat().st_size > 10_000
        assert f"{figure}.png" in html
    claims = json.loads((results / "claims.json").read_text())
    assert {c["verdict"] for c in claims} <= {"agrees", "disagrees", "inconclusive"} and len(claims) == 2
    summary = (work / "results" / "summary.html").read_text()
    assert "mylab.width_lr_transfer" in summary and claims[0]["text"] in summary
    dry = snakemake(work, "--configfile", str(work / "tiny.yaml"), "-n")
    assert "Nothing to be done" in dry.stdout + dry.stderr
    # an edit to the example's training code reruns its training, not its data
    stages = work / "mylab" / "width_lr_transfer" / "stages.py"
    stages.write_text(stages.read_text().replace("def train(", "def unused_helper():\n    return 1\n\n\ndef train(", 1))
    assert "Nothing to be done" in snakemake(work, "--configfile", str(work / "tiny.yaml"), "-n").stdout
    source = stages.read_text()
    body = source.index("def train(")
    stages.write_text(source[:body] + source[body:].replace('"""', '"""Edited. ', 1))
    plan = snakemake(work, "--configfile", str(work / "tiny.yaml"), "-n").stdout
    assert re.search(r"^train\s+\d+", plan, re.M) and not re.search(r"^data\s+\d+", plan, re.M), plan

