rule metrics:
    """All cells of an experiment merged into one labelled xarray Dataset (netCDF4) with provenance."""
    input:
        cell_outputs,
    output:
        f"{RESULTS}/{{experiment}}/metrics.nc",
    log:
        f"{RESULTS}/{{experiment}}/logs/metrics.log",
    benchmark:
        f"{RESULTS}/{{experiment}}/benchmarks/metrics.tsv"
    group:
        "post"
    conda:
        "../../envs/analysis.yaml"
    resources:
        cpus_per_task=1,
        mem_mb=4000,
        runtime=20,
    params:
        config_sha256=experiment_hash,
        code_sha256=code_hash("metrics"),
    script:
        "../scripts/metrics.py"
