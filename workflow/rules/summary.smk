rule summary:
    """The report's summary page: every experiment's claims with their verdicts, and provenance."""
    input:
        metrics=expand(f"{RESULTS}/{{experiment}}/metrics.nc", experiment=EXPERIMENTS),
        claims=expand(f"{RESULTS}/{{experiment}}/claims.json", experiment=EXPERIMENTS),
    output:
        report(
            f"{RESULTS}/summary.html",
            caption="../report/summary.rst",
            category="Summary",
            labels={"page": "claims and verdicts, provenance"},
        ),
    log:
        f"{RESULTS}/logs/summary.log",
    group:
        "post"
    conda:
        "../../envs/analysis.yaml"
    resources:
        cpus_per_task=1,
        mem_mb=2000,
        runtime=10,
    params:
        experiments=list(EXPERIMENTS),
        code_sha256=phaselab_experiments.summary_code_sha256(),
    script:
        "../scripts/summary.py"
