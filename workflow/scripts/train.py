"""Rule train: one cell trained as one batched ensemble (progress and device go to the log)."""

from _log import logged

from phaselab.stages import train_cell

with logged(snakemake) as log:  # noqa: F821 (injected by Snakemake)
    train_cell(
        snakemake.config,
        snakemake.wildcards.experiment,
        snakemake.wildcards.cell,
        snakemake.input.data or None,
        snakemake.output[0],
        threads=snakemake.threads,
        log=log,
    )
