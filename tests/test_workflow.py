"""End to end through Snakemake: a tiny grid in CI; the quick default behind the `slow` mark."""

import re
import subprocess
import sys

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

    from phaselab import experiments

    copy = tmp_path / "phaselab"
    shutil.copytree(ROOT / "src" / "phaselab", copy, ignore=shutil.ignore_patterns("__pycache__"))
    caches = (experiments._module_path, experiments._parsed, experiments.code_sha256)
    for cached in caches:
        cached.cache_clear()
    monkeypatch.setattr(experiments, "_package_root", lambda: copy)
    yield copy
    for cached in caches:
        cached.cache_clear()


def test_each_stage_hashes_the_code_it_runs(package_copy):
    """The params trigger behind a code change: an edit reruns the stages whose code it touches, and only those."""
    from phaselab import experiments

    def hashes():
        experiments._parsed.cache_clear()
        experiments.code_sha256.cache_clear()
        return {stage: experiments.code_sha256("sgd_phase_diagram", stage) for stage in experiments.STAGE_FUNCTIONS}

    def edit(path, old, new):
        source = (package_copy / path).read_text()
        assert old in source
        (package_copy / path).write_text(source.replace(old, new, 1))

    train = experiments.stage_sources("sgd_phase_diagram", "train")
    figure = experiments.stage_sources("sgd_phase_diagram", "figure")
    assert {"phaselab.train", "phaselab._kernels", "phaselab.data", "phaselab.metrics"} <= set(train)
    assert {"train_cell", "time_grid"} <= train["phaselab.experiments.sgd_phase_diagram"]
    assert "train_committee_ensemble" in train["phaselab.train"] and train["phaselab._kernels"] is experiments.ALL
    assert not any(m.startswith("phaselab.plots") for m in train)
    assert figure["phaselab.plots.phase_diagram"] is experiments.ALL and "phaselab.train" not in figure
    assert "phaselab.theory.phase_diagram" in experiments.stage_sources("sgd_phase_diagram", "theory")

    before = hashes()
    edit("plots/phase_diagram.py", '"""', '"""A docstring edit changes the code.\n', )
    after = hashes()
    assert [s for s in before if before[s] != after[s]] == ["figure"]
    edit("_kernels.py", "\n", "\n# a comment alone changes nothing\n")
    assert hashes() == after
    edit("train.py", "def stream_rows(", "def unused_helper():\n    return 0\n\n\ndef stream_rows(")
    assert hashes() == after  # a function no stage calls
    edit("train.py", "def stream_rows(", "def stream_rows(  # noqa\n")
    edit("_kernels.py", "\n", "\nSTREAM_BLOCK = 256\n")
    changed = hashes()
    assert [s for s in after if after[s] != changed[s]] == ["train"]
    summary = experiments.summary_code_sha256(["sgd_phase_diagram"])
    edit("summary.py", '"""', '"""Changed. ')
    experiments._parsed.cache_clear()
    assert experiments.summary_code_sha256(["sgd_phase_diagram"]) != summary
