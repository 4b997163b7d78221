"""The open pipeline: every type keeps the experiment contract, a researcher's own type runs without editing
phaselab (dotted path + python_path), and bad input is rejected before any job runs, naming the key."""

import copy
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import tomllib
import yaml
from conftest import CONFIGS, ROOT, copy_example, run_snakemake

import phaselab
from phaselab import config as cfg
from phaselab import experiments
from phaselab.experiment import VERDICTS, Claim

# A researcher's smallest experiment type: the sample mean of n standard normals, whose spread is 1/√n.
TOY = {
    "__init__.py": '''
        """Toy: the standard error of a sample mean is 1/sqrt(n)."""
        from dataclasses import dataclass

        from phaselab.config import fail
        from phaselab.experiment import Cell

        TITLE = "sample means of standard normals"
        REFERENCES = "the central limit theorem"
        FIGURES = ("phase_diagram",)  # the same name as a built-in figure: the rules must not collide
        COORDS = {"n": {"long_name": "sample size", "units": "1"}}


        @dataclass(frozen=True, kw_only=True)
        class SizeCell(Cell):
            n: int


        def check(key, exp):
            if exp["seeds"] < 2:
                fail(f"{key}.seeds", exp["seeds"], "need two seeds for a spread")


        def cells(exp):
            return [SizeCell(id=f"n{n}", n=n) for n in sorted(exp["n"])]
        ''',
    "stages.py": '''
        import numpy as np

        from phaselab.experiment import judge
        from toylab.toy import helpers


        def train(run, cell, data):
            import xarray as xr

            rng = np.random.default_rng([run.seed, cell.n])
            means = rng.standard_normal((run.exp["seeds"], cell.n)).mean(1)
            return xr.Dataset({"mean": (("seed",), helpers.scale(means), {"long_name": "sample mean", "units": "1"})},
                              coords={"seed": np.arange(len(means))}).expand_dims(n=[cell.n])


        def theory(run, metrics):
            import xarray as xr

            n = metrics["n"].values
            return xr.Dataset({"spread": (("n",), 1 / np.sqrt(n), {"long_name": "1/sqrt(n)", "units": "1"})},
                              coords={"n": n})


        def claims(metrics, theory):
            sd = metrics["mean"].std("seed", ddof=1)
            ratio = float((sd / theory["spread"]).mean())
            return [judge("the spread of a sample mean is 1/sqrt(n)", "CLT", theory=1.0, measured=ratio,
                          tolerance=0.5, uncertainty=0.0)]
        ''',
    "helpers.py": '''
        def scale(x):
            return 1.0 * x
        ''',
    "figures.py": '''
        def phase_diagram(metrics, theory):
            from phaselab.plots import new_figure

            fig, axes = new_figure(1)
            ax = axes[0, 0]
            ax.plot(metrics["n"], metrics["mean"].std("seed"), "o", label="simulation")
            ax.plot(theory["n"], theory["spread"], label="theory 1/sqrt(n)")
            ax.set(xlabel="n", ylabel="spread of the mean")
            ax.legend()
            return fig
        ''',
    "schema.yaml": '''
        type: object
        additionalProperties: false
        required: [type, n]
        properties:
          type: {type: string}
          n: {type: array, minItems: 1, items: {type: integer, minimum: 1}}
          seeds: {type: integer, minimum: 1, default: 4}
        ''',
    "captions/phase_diagram.rst": '''
        Spread of the sample mean against n; theory 1/sqrt(n).
        ''',
}


def write_toy(root: Path, drop: str | None = None) -> Path:
    """The toy type as package ``toylab.toy`` in the folder ``root`` (``drop``: a file left out)."""
    pkg = root / "toylab" / "toy"
    for name, text in TOY.items():
        if name != drop:
            (pkg / name).parent.mkdir(parents=True, exist_ok=True)
            (pkg / name).write_text(textwrap.dedent(text).lstrip())
    (pkg.parent / "__init__.py").write_text("")
    return root


def toy_config(results) -> dict:
    return {"results": str(results), "seed": 0, "device": "cpu", "python_path": ["lab"],
            "experiments": {"toy": {"type": "toylab.toy", "n": [4, 16, 64]}}}


@pytest.fixture
def toy_dir(tmp_path, monkeypatch):
    write_toy(tmp_path / "lab")
    monkeypatch.chdir(tmp_path)
    yield tmp_path
    for name in [m for m in sys.modules if m == "toylab" or m.startswith("toylab.")]:
        del sys.modules[name]
    sys.path[:] = [p for p in sys.path if not p.startswith(str(tmp_path))]


def check_dataset(ds, what):
    for name, var in ds.variables.items():
        if var.dtype.kind in "fiuc" and name not in ds.dims or name in ds.coords:
            assert "long_name" in var.attrs, f"{what}: {name} has no long_name"
            if var.dtype.kind in "fiuc":
                assert "units" in var.attrs, f"{what}: {name} has no units"


def check_claims(claims):
    for c in claims:
        assert isinstance(c, Claim) and c.text and c.source and c.verdict in VERDICTS
        assert c.tolerance is None or c.tolerance >= 0


def test_builtins_are_registered_as_entry_points():
    """pyproject.toml registers exactly the built-in folders, the way an installed package registers its own."""
    entry = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["entry-points"]["phaselab.experiments"]
    assert entry == experiments.builtin_types()
    assert set(experiments.registered_types().items()) >= set(entry.items())  # installed (pip install -e .)
    figures = [f for t in experiments.builtin_types() for f in experiments.resolve(t).light.FIGURES]
    assert len(figures) == len(set(figures)), "built-in figure names (and rule names) must be unique"


def check_outputs(folder: Path, type_name: str, title: str, references: str, figures) -> None:
    """What every experiment's folder holds after a run: labelled datasets with title, references and provenance,
    every figure as a PNG, and well-formed claims."""
    from phaselab.metrics import open_netcdf

    metrics, theory = open_netcdf(folder / "metrics.nc"), open_netcdf(folder / "theory.nc")
    assert metrics.attrs["experiment_type"] == type_name and metrics.attrs["title"].endswith(title)
    assert metrics.attrs["references"] == references and metrics.attrs["git_revision"]
    check_dataset(metrics, f"{type_name} metrics")
    check_dataset(theory, f"{type_name} theory")
    for figure in figures:
        png = folder / "figures" / f"{figure}.png"
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 10_000, png
    check_claims([Claim(**c) for c in json.loads((folder / "claims.json").read_text())])


@pytest.mark.parametrize("type_name", sorted(experiments.builtin_types()))
def test_every_builtin_type_runs_through_the_contract(type_name, tmp_path):
    """phaselab.run on each type's tiny config: every figure renders, every variable is labelled, claims are
    well formed and written."""
    result = phaselab.run(CONFIGS / f"{type_name}.yaml", results=tmp_path)
    kind = experiments.resolve(type_name)
    assert set(result.figures) == set(kind.light.FIGURES)
    check_claims(result.claims)
    check_outputs(result.folder, type_name, kind.light.TITLE, kind.light.REFERENCES, kind.light.FIGURES)


def test_the_example_type_runs_through_the_contract(tmp_path):
    """The same checks for examples/width_lr_transfer, run by `python -m phaselab run` from a copy of its folder."""
    work = copy_example(tmp_path)
    out = subprocess.run([sys.executable, "-m", "phaselab", "run", "tiny.yaml"], cwd=work, capture_output=True,
                         text=True, timeout=600, env={**os.environ, "MPLBACKEND": "Agg"})
    assert out.returncode == 0, out.stderr[-3000:]
    code = ("import mylab.width_lr_transfer as t; print(repr((t.TITLE, t.REFERENCES, t.FIGURES)))")
    title, references, figures = eval(subprocess.run([sys.executable, "-c", code], cwd=work, capture_output=True,
                                                     text=True, check=True).stdout)
    check_outputs(work / "results" / "wlt_tiny", "mylab.width_lr_transfer", title, references, figures)


def test_own_type_runs_in_process_and_its_code_is_hashed(toy_dir):
    result = phaselab.run(toy_config("results"))
    assert result.metrics["mean"].dims == ("n", "seed") and result.metrics["n"].attrs["long_name"] == "sample size"
    assert result.metrics.attrs["experiment_module"] == "toylab.toy"
    check_claims(result.claims)
    np.testing.assert_allclose(result.theory["spread"].values, [0.5, 0.25, 0.125])
    kind = experiments.resolve("toylab.toy")
    train = kind.stage_sources("train")
    assert {"toylab.toy.stages", "toylab.toy.helpers", "phaselab.stages"} <= set(train)
    assert "toylab.toy.figures" not in train
    assert "toylab.toy.stages" not in kind.stage_sources("figure", "phase_diagram")

    def hashes():
        return {s: kind.code_sha256(s) for s in ("train", "theory")} | {
            "figure": kind.code_sha256("figure", "phase_diagram")}

    before = hashes()
    helpers = toy_dir / "lab" / "toylab" / "toy" / "helpers.py"
    helpers.write_text(helpers.read_text().replace("1.0 * x", "2.0 * x"))
    after = hashes()
    assert after["train"] != before["train"] and after["figure"] == before["figure"]


def bad_inputs(tmp_path):
    """(config, the text the message must contain) for each kind of bad input to the open pipeline."""
    good = toy_config(tmp_path / "results")
    cases = []
    c = copy.deepcopy(good)
    c["experiments"]["toy"]["type"] = "toylab.nothing_here"
    cases.append((c, "config key 'experiments.toy.type' = 'toylab.nothing_here': resolves to no experiment type"))
    c = copy.deepcopy(good)
    c["python_path"] = ["lab", "no_such_folder"]
    cases.append((c, "config key 'python_path[1]' = 'no_such_folder': no such directory"))
    c = copy.deepcopy(good)
    c["experiments"]["toy"]["n"] = [4, 0]
    cases.append((c, "config key 'experiments.toy.n[1]' = 0: 0 is less than the minimum of 1"))
    c = copy.deepcopy(good)
    c["experiments"]["toy"]["colour"] = "blue"
    cases.append((c, "config key 'experiments.toy'"))
    c = copy.deepcopy(good)
    c["experiments"]["toy"]["seeds"] = 1
    cases.append((c, "config key 'experiments.toy.seeds' = 1: need two seeds"))
    c = copy.deepcopy(good)
    c["python_path"] = ["broken"]
    cases.append((c, "toylab.toy.stages lacks claims"))
    c = copy.deepcopy(good)
    c["python_path"] = ["nofigures"]
    cases.append((c, "lacks its figures module toylab.toy.figures"))
    return cases


def write_broken_toys(tmp_path):
    write_toy(tmp_path / "lab")
    write_toy(tmp_path / "broken")
    write_toy(tmp_path / "nofigures", drop="figures.py")
    stages = tmp_path / "broken" / "toylab" / "toy" / "stages.py"
    stages.write_text(stages.read_text().replace("def claims(", "def claims_not_written_yet("))


def test_bad_input_is_rejected_naming_the_key(toy_dir):
    write_broken_toys(toy_dir)
    for config, message in bad_inputs(toy_dir):
        for name in [m for m in sys.modules if m == "toylab" or m.startswith("toylab.")]:
            del sys.modules[name]
        sys.path[:] = [p for p in sys.path if not p.startswith(str(toy_dir))]
        with pytest.raises(cfg.ConfigError) as err:
            cfg.validate(config)
        assert message in str(err.value), (message, str(err.value))


def test_bad_input_stops_snakemake_before_any_job(tmp_path):
    write_broken_toys(tmp_path)
    for i, (config, message) in enumerate(bad_inputs(tmp_path)):
        path = tmp_path / f"bad{i}.yaml"
        path.write_text(yaml.safe_dump(config))
        run = run_snakemake(tmp_path, path, "-c", "1", check=False, timeout=120)
        assert run.returncode != 0 and message in run.stdout + run.stderr, (message, run.stderr[-2000:])
    assert not (tmp_path / "results").exists() or not any((tmp_path / "results").iterdir())


def test_own_type_beside_a_builtin_plans_without_rule_collisions(toy_dir):
    """The toy's figure is named like a built-in one (phase_diagram): both are planned, by different rules."""
    config = toy_config("results")
    config["experiments"]["tiny"] = yaml.safe_load((CONFIGS / "sgd_phase_diagram.yaml").read_text())["experiments"][
        "tiny"]
    (toy_dir / "both.yaml").write_text(yaml.safe_dump(config))
    run = run_snakemake(toy_dir, toy_dir / "both.yaml", "-n", "-c", "1", "--quiet", "rules")
    text = run.stdout + run.stderr
    assert "toylab_toy__figure_phase_diagram" in text and "figure_phase_diagram" in text


def test_cli_runs_one_experiment(tmp_path):
    out = subprocess.run([sys.executable, "-m", "phaselab", "run", str(CONFIGS / "implicit_bias.yaml"), "--results",
                          str(tmp_path), "--no-figures"], capture_output=True, text=True, timeout=300,
                         env={**os.environ, "MPLBACKEND": "Agg"})
    assert out.returncode == 0, out.stderr[-3000:]
    assert "[agrees]" in out.stdout or "[disagrees]" in out.stdout or "[inconclusive]" in out.stdout
    assert (tmp_path / "ib" / "metrics.nc").exists() and (tmp_path / "ib" / "claims.json").exists()
    bad = subprocess.run([sys.executable, "-m", "phaselab", "run", str(tmp_path / "missing.yaml")],
                         capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and "missing.yaml" in bad.stderr


def test_precision_is_a_config_key_recorded_in_the_attrs(tmp_path):
    """The implicit-bias type in float32 (its default is float64): recorded, and the same run to float32 accuracy."""
    config = yaml.safe_load((CONFIGS / "implicit_bias.yaml").read_text())
    runs = {}
    for precision in ("float64", "float32"):
        config["experiments"]["ib"]["precision"] = precision
        runs[precision] = phaselab.run(config, results=tmp_path / precision, figures=False).metrics
        assert runs[precision].attrs["precision"] == precision
    w64, w32 = runs["float64"]["w"].values, runs["float32"]["w"].values
    assert not np.array_equal(w64, w32)
    np.testing.assert_allclose(w32, w64, rtol=1e-4, atol=1e-6)
    bad = copy.deepcopy(config)
    bad["experiments"]["ib"]["precision"] = "float16"
    with pytest.raises(cfg.ConfigError, match="experiments.ib.precision"):
        cfg.validate(bad)
