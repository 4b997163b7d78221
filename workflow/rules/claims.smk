rule claims:
    """The quantitative statements the experiment's figures test, each with theory, measurement and verdict."""
    input:
        metrics=f"{RESULTS}/{{experiment}}/metrics.nc",
        theory=f"{RESULTS}/{{experiment}}/theory.nc",
    output:
        f"{RESULTS}/{{experiment}}/claims.json",
    log:
        f"{RESULTS}/{{experiment}}/logs/claims.log",
    group:
        "post"
    conda:
        "../../envs/analysis.yaml"
    resources:
        cpus_per_task=1,
        mem_mb=2000,
        runtime=10,
    params:
        config_sha256=experiment_hash,
        code_sha256=code_hash("claims"),
    script:
        "../scripts/claims.py"
