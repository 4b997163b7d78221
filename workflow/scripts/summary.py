"""Rule summary: the report's page of sim-vs-theory agreement and provenance."""

from _log import logged

from phaselab.summary import write_summary

with logged(snakemake):  # noqa: F821 (injected by Snakemake)
    write_summary(
        snakemake.config,
        snakemake.params.experiments,
        snakemake.input.metrics,
        snakemake.input.claims,
        snakemake.output[0],
    )
