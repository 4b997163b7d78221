# One rule per figure name (its caption is workflow/report/<figure>.rst), for the experiments that draw it.
for figure_name, figure_experiments in FIGURES.items():

    rule:
        """One figure of an experiment, simulation beside theory, in the report with its caption."""
        name:
            f"figure_{figure_name}"
        input:
            metrics=f"{RESULTS}/{{experiment}}/metrics.nc",
            theory=f"{RESULTS}/{{experiment}}/theory.nc",
        output:
            report(
                f"{RESULTS}/{{experiment}}/figures/{figure_name}.png",
                caption=f"../report/{figure_name}.rst",
                category="{experiment}",
                labels={"experiment": "{experiment}", "figure": figure_name},
            ),
        log:
            f"{RESULTS}/{{experiment}}/logs/figures/{figure_name}.log",
        benchmark:
            f"{RESULTS}/{{experiment}}/benchmarks/figures/{figure_name}.tsv"
        wildcard_constraints:
            experiment="|".join(figure_experiments),
        group:
            "post"
        conda:
            "../../envs/analysis.yaml"
        resources:
            cpus_per_task=1,
            mem_mb=2000,
            runtime=10,
        params:
            figure=figure_name,
            config_sha256=experiment_hash,
            code_sha256=code_hash("figure"),
        script:
            "../scripts/figure.py"
