"""Rules figure_*: one figure from the metrics and theory datasets."""

from _log import logged

from phaselab.stages import make_figure

with logged(snakemake) as log:  # noqa: F821 (injected by Snakemake)
    make_figure(
        snakemake.config,
        snakemake.wildcards.experiment,
        snakemake.params.figure,
        snakemake.input.metrics,
        snakemake.input.theory,
        snakemake.output[0],
        log=log,
    )
