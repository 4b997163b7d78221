"""Rule benchmark_figure: an engine benchmark's results as a figure."""

from _log import logged

from phaselab.plots.benchmarks import throughput_from_file

with logged(snakemake):  # noqa: F821 (injected by Snakemake)
    throughput_from_file(snakemake.input[0], snakemake.output[0], snakemake.params.engine)
