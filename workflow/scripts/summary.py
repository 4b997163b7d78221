"""Rule summary: the reproduction scorecard (CSV) and the report's first screen (claims, verdicts, provenance)."""

from _log import logged

from phaselab.summary import write_summary

with logged(snakemake):  # noqa: F821 (injected by Snakemake)
    write_summary(
        snakemake.config,
        snakemake.params.experiments,
        snakemake.input.metrics,
        snakemake.input.claims,
        snakemake.output.html,
        snakemake.output.csv,
    )
