"""Rule metrics: merge the cells of an experiment into results/<experiment>/metrics.nc."""

from _log import logged

from phaselab.stages import collect_metrics

with logged(snakemake) as log:  # noqa: F821 (injected by Snakemake)
    collect_metrics(
        snakemake.config,
        snakemake.wildcards.experiment,
        list(snakemake.input),
        snakemake.output[0],
        log=log,
    )
