# Config validation and the expansion of every experiment into cells, once, at parse time (no torch here).
import sys

from snakemake.utils import min_version

sys.path.insert(0, str(Path(workflow.basedir) / "src"))

from phaselab import config as phaselab_config
from phaselab import experiments as phaselab_experiments

min_version("9.0")


# The top-level schema (../schemas/config.schema.yaml), python_path, each experiment's type and its own schema
# (defaults filled in place), the types' cross-field checks: a bad config stops here, naming the key.
try:
    phaselab_config.validate(config)
except phaselab_config.ConfigError as err:
    raise WorkflowError(str(err)) from None


RESULTS = config["results"]
try:
    phaselab_config.check_writable(RESULTS)
except phaselab_config.ConfigError as err:
    raise WorkflowError(str(err)) from None
EXPERIMENTS = config["experiments"]
TYPES = {name: phaselab_experiments.of(config, name) for name in EXPERIMENTS}
CELLS = {
    name: {c.id: c for c in TYPES[name].cells(exp)} for name, exp in EXPERIMENTS.items()
}
# One figure rule per (experiment type, figure name), for the experiments of that type.
FIGURE_RULES = {}
for _name, _kind in TYPES.items():
    for _figure in _kind.light.FIGURES:
        FIGURE_RULES.setdefault((_kind.module, _figure), (_kind, []))[1].append(_name)


# The engines' tracked benchmark results (python -m phaselab.bench), drawn into the report where present.
BENCHMARKS = {
    "committee": "benchmarks/cpu-2core.json",
    "ensemble": "benchmarks/ensemble-cpu-2core.json",
}


def experiment_hash(wildcards):
    """sha256 of what an experiment's results depend on: a changed config reruns its jobs (params trigger)."""
    return phaselab_config.config_sha256(
        {"seed": config["seed"], "experiment": EXPERIMENTS[wildcards.experiment]}
    )


def code_hash(stage, figure=None):
    """Params function: sha256 of the code a stage of the experiment runs (the framework's stage and the type's
    own functions, phaselab's and the type's package), so that changed code reruns the jobs it affects (a figure
    tweak redraws that figure; an engine change retrains).
    """

    def code_sha256(wildcards):
        return TYPES[wildcards.experiment].code_sha256(stage, figure)

    return code_sha256


def cell_data(wildcards):
    """The data file a cell reads, or nothing for cells that draw their data themselves."""
    data_id = CELLS[wildcards.experiment][wildcards.cell].data
    return f"{RESULTS}/{wildcards.experiment}/data/{data_id}.npz" if data_id else []


def cell_outputs(wildcards):
    return [
        f"{RESULTS}/{wildcards.experiment}/cells/{cell}.nc"
        for cell in CELLS[wildcards.experiment]
    ]


def all_targets():
    bench = [
        f"{RESULTS}/benchmarks/{engine}_throughput.png"
        for engine, results in BENCHMARKS.items()
        if Path(results).exists()
    ]
    return (
        bench
        + [f"{RESULTS}/summary.html"]
        + [
            f"{RESULTS}/{name}/figures/{figure}.png"
            for name in EXPERIMENTS
            for figure in TYPES[name].light.FIGURES
        ]
    )


wildcard_constraints:
    experiment="|".join(EXPERIMENTS),
    cell="[A-Za-z0-9_-]+",
    data_id="[A-Za-z0-9_-]+",
