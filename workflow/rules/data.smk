rule data:
    """Teacher weights and held-out test sets of every seed at dimension d."""
    output:
        f"{RESULTS}/{{experiment}}/data/d{{d}}.npz",
    log:
        f"{RESULTS}/{{experiment}}/logs/data/d{{d}}.log",
    conda:
        "../../envs/analysis.yaml"
    resources:
        mem_mb=2000,
        runtime=10,
    script:
        "../scripts/data.py"
