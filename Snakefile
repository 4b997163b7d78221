# phaselab: regenerate the statistical-physics figures of deep learning from reproducible sweeps.
# Stages live in workflow/rules/ (one file each); this file only gathers the final targets.


report: "workflow/report/workflow.rst"  # the report's first screen: a description of the run and the scorecard


include: "workflow/rules/common.smk"
include: "workflow/rules/data.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/metrics.smk"
include: "workflow/rules/theory.smk"
include: "workflow/rules/figures.smk"
include: "workflow/rules/claims.smk"
include: "workflow/rules/summary.smk"
include: "workflow/rules/benchmarks.smk"


rule all:
    default_target: True
    input:
        all_targets(),
