rule theory:
    """Theory beside the measurements: curves from the experiment's theory module, on the same coordinates."""
    input:
        f"{RESULTS}/{{experiment}}/metrics.nc",
    output:
        f"{RESULTS}/{{experiment}}/theory.nc",
    log:
        f"{RESULTS}/{{experiment}}/logs/theory.log",
    benchmark:
        f"{RESULTS}/{{experiment}}/benchmarks/theory.tsv"
    group:
        "post"
    conda:
        "../../envs/analysis.yaml"
    resources:
        cpus_per_task=1,
        mem_mb=4000,
        runtime=60,
    params:
        config_sha256=experiment_hash,
        code_sha256=code_hash("theory"),
    script:
        "../scripts/theory.py"
