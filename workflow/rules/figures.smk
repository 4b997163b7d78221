# One rule per (experiment type, figure name), for the experiments of that type; the caption lies beside the
# type (<type folder>/captions/<figure>.rst), built-in or a researcher's own.
for (_module, figure_name), (figure_kind, figure_experiments) in FIGURE_RULES.items():

    rule:
        """One figure of an experiment, simulation beside theory, in the report with its caption."""
        name:
            f"{figure_kind.rule_prefix}_{figure_name}"
        input:
            metrics=f"{RESULTS}/{{experiment}}/metrics.nc",
            theory=f"{RESULTS}/{{experiment}}/theory.nc",
        output:
            report(
                f"{RESULTS}/{{experiment}}/figures/{figure_name}.png",
                caption=str(figure_kind.caption_path(figure_name)),
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
            code_sha256=code_hash("figure", figure_name),
        script:
            "../scripts/figure.py"
