# Config validation and grid expansion, once, at parse time. Nothing here imports torch.


from snakemake.utils import min_version, validate

from phaselab import config as phaselab_config

min_version("9.0")


validate(config, "../schemas/config.schema.yaml")
try:
    phaselab_config.check(config)
except phaselab_config.ConfigError as err:
    raise WorkflowError(str(err)) from None


RESULTS = config["results"]
EXPERIMENTS = config["experiments"]
CELLS = {name: phaselab_config.shape_cells(exp) for name, exp in EXPERIMENTS.items()}
FIGURE_NAMES = ["phase_diagram", "risk_curves", "asymptotic_risk"]


def cell_ids(experiment):
    return [cell["id"] for cell in CELLS[experiment]]


def cell_d(wildcards):
    return next(
        c["d"] for c in CELLS[wildcards.experiment] if c["id"] == wildcards.cell
    )


def all_targets():
    return [
        f"{RESULTS}/{name}/figures/{figure}.png"
        for name in EXPERIMENTS
        for figure in FIGURE_NAMES
    ]


wildcard_constraints:
    experiment="[A-Za-z][A-Za-z0-9_]*",
    cell="d[0-9]+_kappa-?[0-9]+",
    d="[0-9]+",
