rule train:
    """One shape cell (d, kappa): every (delta, seed) member trained together as one batched ensemble."""
    input:
        data=lambda wc: f"{RESULTS}/{wc.experiment}/data/d{cell_d(wc)}.npz",
    output:
        f"{RESULTS}/{{experiment}}/cells/{{cell}}.nc",
    log:
        f"{RESULTS}/{{experiment}}/logs/train/{{cell}}.log",
    benchmark:
        f"{RESULTS}/{{experiment}}/benchmarks/train/{{cell}}.tsv"
    conda:
        "../../envs/train.yaml"
    threads: config["threads"]
    resources:
        mem_mb=4000,
        runtime=240,
    script:
        "../scripts/train.py"
