rule summary:
    """The report's summary page: simulation vs theory agreement and provenance of every experiment."""
    input:
        metrics=expand(f"{RESULTS}/{{experiment}}/metrics.nc", experiment=EXPERIMENTS),
        theory=expand(f"{RESULTS}/{{experiment}}/theory.nc", experiment=EXPERIMENTS),
    output:
        report(
            f"{RESULTS}/summary.html",
            caption="../report/summary.rst",
            category="Summary",
            labels={"page": "simulation vs theory, provenance"},
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
        code_sha256=phaselab_experiments.summary_code_sha256(
            exp["type"] for exp in EXPERIMENTS.values()
        ),
    script:
        "../scripts/summary.py"
