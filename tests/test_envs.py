"""Conda environments: parse, pins agree with pyproject.toml, every rule names one, and training gets PyTorch.

The conda channels are not reachable from this machine, so `snakemake --sdm conda` itself is not run here."""

import re

import tomllib
import yaml
from conftest import ROOT

CONDA_TO_PYPI = {"pytorch": "torch", "netcdf4": "netcdf4"}


def pyproject_pins():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    pins = {"python": project["requires-python"]}
    for req in project["dependencies"]:
        name, spec = re.match(r"([A-Za-z0-9_.-]+)(?:\[[^\]]*\])?(.*)", req).groups()
        pins[name.lower()] = spec.strip()
    return pins


def env_pins(path):
    env = yaml.safe_load(path.read_text())
    assert env["channels"] and isinstance(env["dependencies"], list)
    pins = {}
    for dep in env["dependencies"]:
        name, spec = re.match(r"([A-Za-z0-9_.-]+)(.*)", dep).groups()
        pins[CONDA_TO_PYPI.get(name.lower(), name.lower())] = spec.strip()
    return pins


def test_env_pins_agree_with_pyproject():
    pins = pyproject_pins()
    envs = sorted((ROOT / "envs").glob("*.yaml"))
    assert [p.name for p in envs] == ["analysis.yaml", "train.yaml"]
    for path in envs:
        for name, spec in env_pins(path).items():
            assert name in pins, f"{path.name}: {name} is not a dependency in pyproject.toml"
            assert spec == pins[name], f"{path.name}: {name}{spec} but pyproject.toml has {name}{pins[name]}"
    train = env_pins(ROOT / "envs" / "train.yaml")
    assert "torch" in train and "numba" in train
    analysis = env_pins(ROOT / "envs" / "analysis.yaml")
    assert {"xarray", "netcdf4", "seaborn", "matplotlib"} <= set(analysis)


def test_every_rule_names_its_conda_env():
    mapping = {}
    for smk in sorted((ROOT / "workflow" / "rules").glob("*.smk")):
        text = smk.read_text()
        for block in re.split(r"\n(?=\s*rule\b)", text):
            if not re.match(r"\s*rule\b", block):
                continue
            env = re.search(r"conda:\s*\n\s*\"([^\"]+)\"", block)
            assert env, f"{smk.name}: a rule without conda:\n{block[:200]}"
            assert (smk.parent / env.group(1)).resolve().exists()
            mapping[smk.stem] = env.group(1)
    assert mapping["train"].endswith("envs/train.yaml")
    for stage in ("data", "metrics", "theory", "figures", "summary"):
        assert mapping[stage].endswith("envs/analysis.yaml"), stage
