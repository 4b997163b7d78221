"""Rule claims: the experiment's claims with their verdicts, results/<experiment>/claims.json."""

from _log import logged

from phaselab.stages import make_claims

with logged(snakemake) as log:  # noqa: F821 (injected by Snakemake)
    make_claims(
        snakemake.config,
        snakemake.wildcards.experiment,
        snakemake.input.metrics,
        snakemake.input.theory,
        snakemake.output[0],
        log=log,
    )
