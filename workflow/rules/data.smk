rule data:
    """Data shared by the cells of an experiment (e.g. teachers and held-out sets at one d)."""
    output:
        f"{RESULTS}/{{experiment}}/data/{{data_id}}.npz",
    log:
        f"{RESULTS}/{{experiment}}/logs/data/{{data_id}}.log",
    benchmark:
        f"{RESULTS}/{{experiment}}/benchmarks/data/{{data_id}}.tsv"
    conda:
        "../../envs/analysis.yaml"
    resources:
        mem_mb=2000,
        runtime=10,
    params:
        config_sha256=experiment_hash,
        code_sha256=code_hash("data"),
    script:
        "../scripts/data.py"
