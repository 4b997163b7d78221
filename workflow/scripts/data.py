"""Rule data: the data one or more cells of an experiment read."""

from _log import logged

from phaselab.stages import make_data

with logged(snakemake) as log:  # noqa: F821 (injected by Snakemake)
    make_data(
        snakemake.config,
        snakemake.wildcards.experiment,
        snakemake.wildcards.data_id,
        snakemake.output[0],
        log=log,
    )
