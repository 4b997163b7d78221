# One rule per engine with tracked benchmark results: its throughput against the per-run loop.
for bench_engine, bench_results in BENCHMARKS.items():

    rule:
        """Throughput of an engine against the per-run loop, from its tracked benchmark results."""
        name:
            f"benchmark_figure_{bench_engine}"
        input:
            bench_results,
        output:
            report(
                f"{RESULTS}/benchmarks/{bench_engine}_throughput.png",
                caption=f"../report/{bench_engine}_throughput.rst",
                category="Benchmarks",
                labels={"figure": f"{bench_engine} engine throughput"},
            ),
        log:
            f"{RESULTS}/logs/benchmark_figure_{bench_engine}.log",
        conda:
            "../../envs/analysis.yaml"
        resources:
            mem_mb=1000,
            runtime=5,
        params:
            engine=bench_engine,
        script:
            "../scripts/benchmark_figure.py"
