rule summary:
    """The reproduction scorecard (every experiment's claims with their verdicts) as a CSV and as the report's first
    screen and Summary page, with a description of the run and provenance."""
    input:
        metrics=expand(f"{RESULTS}/{{experiment}}/metrics.nc", experiment=EXPERIMENTS),
        claims=expand(f"{RESULTS}/{{experiment}}/claims.json", experiment=EXPERIMENTS),
    output:
        html=report(
            f"{RESULTS}/summary.html",
            caption="../report/summary.rst",
            category="Summary",
            labels={"page": "scorecard: claims and verdicts, provenance"},
        ),
        csv=report(
            f"{RESULTS}/scorecard.csv",
            caption="../report/scorecard.rst",
            category="Summary",
            labels={"page": "scorecard (CSV)"},
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
