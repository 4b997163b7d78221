rule theory:
    """Saad-Solla ODE curves from each seed's initial order parameters, and the phase of every cell."""
    input:
        f"{RESULTS}/{{experiment}}/metrics.nc",
    output:
        f"{RESULTS}/{{experiment}}/theory.nc",
    log:
        f"{RESULTS}/{{experiment}}/logs/theory.log",
    conda:
        "../../envs/analysis.yaml"
    resources:
        mem_mb=4000,
        runtime=60,
    script:
        "../scripts/theory.py"
