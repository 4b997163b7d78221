rule benchmark_figure:
    """Throughput of the batched engine against the per-run loop, from the tracked benchmark results."""
    input:
        "benchmarks/cpu-2core.json",
    output:
        report(
            f"{RESULTS}/benchmarks/throughput.png",
            caption="../report/throughput.rst",
            category="Benchmarks",
            labels={"figure": "engine throughput"},
        ),
    log:
        f"{RESULTS}/logs/benchmark_figure.log",
    conda:
        "../../envs/analysis.yaml"
    resources:
        mem_mb=1000,
        runtime=5,
    script:
        "../scripts/benchmark_figure.py"
