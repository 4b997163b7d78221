"""Rule data: teachers and held-out test sets at one input dimension."""

from _log import logged

from phaselab.stages import make_data

with logged(snakemake):  # noqa: F821 (injected by Snakemake)
    make_data(snakemake.config, snakemake.wildcards.experiment, int(snakemake.wildcards.d), snakemake.output[0])
