"""Bad configs are rejected before any job runs, with a message naming the key and the bad value."""

import copy
import subprocess
import sys

import pytest
import yaml
from conftest import ROOT, tiny_config

from phaselab import config as cfg
from phaselab.experiments import sgd_phase_diagram as pd


def checked(config):
    return cfg.validate(config)


def with_change(path, value):
    config = tiny_config("results")
    node = config
    keys = path.split(".")
    for key in keys[:-1]:
        node = node[key]
    if value is DELETE:
        del node[keys[-1]]
    else:
        node[keys[-1]] = value
    return config


DELETE = object()

BAD = [
    # (key path, bad value, text the message must contain)
    ("experiments.tiny.grid.d", ["sixteen"], "sixteen"),
    ("experiments.tiny.grid.d", [0, 16], "0 is less than the minimum of 1"),
    ("experiments.tiny.grid.d", [-32], "-32"),
    ("experiments.tiny.grid.d", [], "should be non-empty"),
    ("experiments.tiny.grid.kappa", [], "should be non-empty"),
    ("experiments.tiny.grid.delta", "0.5", "'0.5' is not of type 'array'"),
    ("experiments.tiny.grid.seeds", 0, "0 is less than the minimum of 1"),
    ("experiments.tiny.grid.seeds", 2.5, "2.5 is not of type 'integer'"),
    ("experiments.tiny.grid.widht", [3], "'widht' was unexpected"),
    ("experiments.tiny.lr", 0.1, "'lr' was unexpected"),
    ("experiments.tiny.train.gamma0", 0, "0 is less than or equal to the minimum of 0"),
    ("experiments.tiny.train.gamma0", -1.0, "-1.0 is less than or equal to the minimum of 0"),
    ("experiments.tiny.teacher.noise", -0.1, "-0.1 is less than the minimum of 0"),
    ("experiments.tiny.type", "spin_glass", "resolves to no experiment type"),
    ("device", "tpu", "'tpu' is not one of"),
    ("experiments", {}, "should be non-empty"),
    ("experiments.tiny.grid", DELETE, "'grid' is a required property"),
]


@pytest.mark.parametrize("path,value,message", BAD, ids=[f"{p}={v!r}" for p, v, _ in BAD])
def test_schema_rejects(path, value, message):
    with pytest.raises(cfg.ConfigError) as err:
        checked(with_change(path, value))
    text = str(err.value)
    assert message in text
    # the message names the offending key (an unknown key: its parent, whose message names the key itself)
    parent = path.rsplit(".", 1)[0] if "unexpected" in message or "required" in message else path
    assert f"config key '{parent}" in text, text


CROSS = [
    ("experiments.tiny.grid.kappa", [0.0, 1.5], "experiments.tiny.grid.kappa", "p = 64 > d = 16"),
    ("experiments.tiny.teacher", {"k": 20}, "experiments.tiny.teacher.k", "exceeds d = 16"),
    ("experiments.tiny.grid.kappa", [0.0001], "experiments.tiny.grid.kappa", "multiples of 1/1000"),
    ("experiments.tiny.grid.delta", [0.5, 0.5], "experiments.tiny.grid.delta", "duplicate"),
]


@pytest.mark.parametrize("path,value,key,message", CROSS, ids=[c[0] + "=" + repr(c[1]) for c in CROSS])
def test_cross_field_checks_name_key_and_value(path, value, key, message):
    with pytest.raises(cfg.ConfigError) as err:
        checked(with_change(path, value))
    assert f"config key '{key}'" in str(err.value)
    assert message in str(err.value)


def test_defaults_filled_and_quick_default_valid(root):
    config = yaml.safe_load((root / "config" / "config.yaml").read_text())
    checked(config)
    paper = yaml.safe_load((root / "config" / "phase_diagram.yaml").read_text())
    checked(paper)
    tiny = checked(tiny_config("r"))
    assert tiny["experiments"]["tiny"]["train"]["divergence_threshold"] == 1e4
    assert tiny["experiments"]["tiny"]["theory"]["max_width"] == 16


def test_cell_ids_carry_integers_only():
    a = checked(with_change("experiments.tiny.grid.kappa", [0.001, 0.5]))
    b = checked(with_change("experiments.tiny.grid.kappa", [1e-3, 5e-1]))
    ids_a = [c.id for c in pd.cells(a["experiments"]["tiny"])]
    ids_b = [c.id for c in pd.cells(b["experiments"]["tiny"])]
    assert ids_a == ids_b == ["d16_kappa1", "d16_kappa500", "d32_kappa1", "d32_kappa500"]
    assert all("." not in i and "e-" not in i for i in ids_a)


def test_width_and_learning_rate_scalings():
    assert pd.width(1000, 0.5) == 32  # round(31.62)
    assert pd.width(10, -1.0) == 1  # at least one hidden unit
    assert pd.learning_rate(2.0, 100, 0.5) == pytest.approx(0.2)
    assert pd.learning_rate(1.0, 100, -0.5) == pytest.approx(10.0)


def test_horizon_scales_with_slowest_member():
    exp = copy.deepcopy(checked(tiny_config("r"))["experiments"]["tiny"])
    exp["train"].update(time=2.0, max_time=1e6)
    exp["grid"].update(d=[100], kappa=[0.0], delta=[0.5])  # η = 0.1: horizon ≥ 2 / 0.1 = 20
    (cell,) = pd.cells(exp)
    assert 20 <= cell.horizon < 20 * 10 ** (1 / 4) and cell.steps[-1] == round(cell.horizon * 100)


@pytest.mark.parametrize("bad", [
    {"experiments": {"x": {"type": "sgd_phase_diagram", "grid": {"d": [8], "kappa": [2.0], "delta": [0.0]}}}},
    {"experiments": {"x": {"type": "sgd_phase_diagram", "grid": {"d": [8], "kappa": [0.0], "delta": [0.0]}}},
     "colour": "blue"},
])
def test_cli_rejects_before_any_job(tmp_path, bad):
    bad["results"] = str(tmp_path / "results")
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(bad))
    run = subprocess.run(
        [sys.executable, "-m", "snakemake", "-s", str(ROOT / "Snakefile"), "-d", str(tmp_path), "-c", "1",
         "--configfile", str(path)],
        capture_output=True, text=True, timeout=120,
    )
    assert run.returncode != 0
    text = run.stdout + run.stderr
    assert ("'colour' was unexpected" in text
            or "config key 'experiments.x.grid.kappa' = 2.0: gives width p = 64 > d = 8" in text), text
    assert not (tmp_path / "results").exists()


def test_missing_config_file_is_a_clear_error(tmp_path):
    run = subprocess.run(
        [sys.executable, "-m", "snakemake", "-s", str(ROOT / "Snakefile"), "-d", str(tmp_path), "-n",
         "--configfile", str(tmp_path / "nope.yaml")],
        capture_output=True, text=True, timeout=120,
    )
    assert run.returncode != 0 and "nope.yaml" in run.stdout + run.stderr


def test_parse_time_imports_do_not_load_torch():
    """The Snakefile imports phaselab.config and the experiment modules at parse time (every cluster job
    re-parses it): none of them may import torch, numba, xarray or matplotlib."""
    code = (
        "import sys; from phaselab import config, experiments\n"
        "[experiments.resolve(t).check_contract('x') for t in experiments.builtin_types()]\n"
        "heavy = sorted(m for m in ('torch', 'numba', 'xarray', 'matplotlib') if m in sys.modules)\n"
        "assert not heavy, heavy"
    )
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr


@pytest.mark.parametrize("path", sorted((ROOT / "config").glob("**/*.yaml")), ids=lambda p: str(p.relative_to(ROOT)))
def test_every_shipped_config_is_valid(path):
    """Quick and paper-scale configs alike pass the schemas and cross-field checks (paper ones are not run here)."""
    checked(yaml.safe_load(path.read_text()))
