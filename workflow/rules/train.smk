rule train:
    """One cell: all its members (learning rates x seeds) trained together as one batched ensemble."""
    input:
        data=cell_data,
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
        # device: cuda asks the cluster for one GPU a training job (SLURM: --gpus=1)
        gpu=1 if config["device"] == "cuda" else 0,
    params:
        config_sha256=experiment_hash,
        code_sha256=code_hash("train"),
    script:
        "../scripts/train.py"
