"""Rule theory: ODE curves and phases beside the measured metrics."""

from _log import logged

from phaselab.stages import make_theory

with logged(snakemake) as log:  # noqa: F821 (injected by Snakemake)
    make_theory(snakemake.config, snakemake.wildcards.experiment, snakemake.input[0], snakemake.output[0], log=log)
