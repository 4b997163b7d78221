rule metrics:
    """All cells of an experiment merged into one labelled xarray Dataset (netCDF4) with provenance."""
    input:
        lambda wc: expand(
            f"{RESULTS}/{{experiment}}/cells/{{cell}}.nc",
            experiment=wc.experiment,
            cell=cell_ids(wc.experiment),
        ),
    output:
        f"{RESULTS}/{{experiment}}/metrics.nc",
    log:
        f"{RESULTS}/{{experiment}}/logs/metrics.log",
    conda:
        "../../envs/analysis.yaml"
    resources:
        mem_mb=4000,
        runtime=20,
    script:
        "../scripts/metrics.py"
