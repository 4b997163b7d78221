# Config validation and the expansion of every experiment into cells, once, at parse time (no torch here).
import sys

from snakemake.utils import min_version, validate

sys.path.insert(0, str(Path(workflow.basedir) / "src"))

from phaselab import config as phaselab_config
from phaselab import experiments as phaselab_experiments

min_version("9.0")


validate(config, "../schemas/config.schema.yaml")
try:
    phaselab_config.check(config)
except phaselab_config.ConfigError as err:
    raise WorkflowError(str(err)) from None


RESULTS = config["results"]
try:
    phaselab_config.check_writable(RESULTS)
except phaselab_config.ConfigError as err:
    raise WorkflowError(str(err)) from None
EXPERIMENTS = config["experiments"]
MODULES = {
    name: phaselab_experiments.get(exp["type"]) for name, exp in EXPERIMENTS.items()
}
CELLS = {
    name: {c["id"]: c for c in MODULES[name].cells(exp)}
    for name, exp in EXPERIMENTS.items()
}
FIGURES = {
    figure: sorted(n for n in EXPERIMENTS if figure in MODULES[n].FIGURES)
    for figure in sorted({f for m in MODULES.values() for f in m.FIGURES})
}


def experiment_hash(wildcards):
    """sha256 of what an experiment's results depend on: a changed config reruns its jobs (params trigger)."""
    return phaselab_config.config_sha256(
        {"seed": config["seed"], "experiment": EXPERIMENTS[wildcards.experiment]}
    )


def code_hash(stage):
    """Params function: sha256 of the phaselab sources a stage of the experiment runs, so that changed package code
    reruns the jobs it affects (a figure tweak redraws figures; an engine change retrains).
    """

    def code_sha256(wildcards):
        return phaselab_experiments.code_sha256(
            EXPERIMENTS[wildcards.experiment]["type"], stage
        )

    return code_sha256


def cell_data(wildcards):
    """The data file a cell reads, or nothing for cells that draw their data themselves."""
    data_id = CELLS[wildcards.experiment][wildcards.cell]["data"]
    return f"{RESULTS}/{wildcards.experiment}/data/{data_id}.npz" if data_id else []


def cell_outputs(wildcards):
    return [
        f"{RESULTS}/{wildcards.experiment}/cells/{cell}.nc"
        for cell in CELLS[wildcards.experiment]
    ]


def all_targets():
    bench = [f"{RESULTS}/benchmarks/throughput.png"] * Path(
        "benchmarks/cpu-2core.json"
    ).exists()
    return (
        bench
        + [f"{RESULTS}/summary.html"]
        + [
            f"{RESULTS}/{name}/figures/{figure}.png"
            for name in EXPERIMENTS
            for figure in MODULES[name].FIGURES
        ]
    )


wildcard_constraints:
    experiment="|".join(EXPERIMENTS),
    cell="[A-Za-z0-9_-]+",
    data_id="[A-Za-z0-9_-]+",
