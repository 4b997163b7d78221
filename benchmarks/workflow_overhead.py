"""Where the quick default's wall time goes: Snakemake scheduling, Python/torch imports, compute.

    python benchmarks/workflow_overhead.py [--config config/config.yaml] [--cores 2]

Runs the workflow from scratch in a temporary directory, then splits its wall time using Snakemake's per-job
benchmark files (wall time of each job), the training logs (compute inside the engine) and a measured import
time of one job's Python stack.
"""

import argparse
import csv
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--config", default=str(ROOT / "config" / "config.yaml"))
    parser.add_argument("--cores", default="2")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        config = yaml.safe_load(Path(args.config).read_text())
        config["results"] = str(tmp / "results")
        (tmp / "c.yaml").write_text(yaml.safe_dump(config))
        started = time.perf_counter()
        subprocess.run([sys.executable, "-m", "snakemake", "-s", str(ROOT / "Snakefile"), "-d", str(tmp), "-c",
                        args.cores, "--configfile", str(tmp / "c.yaml"), "-q", "all"], check=True)
        total = time.perf_counter() - started
        jobs = {}
        for tsv in (tmp / "results").rglob("benchmarks/**/*.tsv"):
            with tsv.open() as fh:
                jobs[str(tsv.relative_to(tmp / "results"))] = float(next(csv.DictReader(fh, delimiter="\t"))["s"])
        compute = sum(float(m.group(1)) for log in (tmp / "results").rglob("logs/train/*.log")
                      for m in re.finditer(r"\[train\] cell \S+ done in ([0-9.]+)s", log.read_text()))
    imports = []
    for stack in ("import numpy, xarray, phaselab.metrics", "import torch, numba, phaselab.engines.committee",
                  "import matplotlib, seaborn, phaselab.plots"):
        t = time.perf_counter()
        subprocess.run([sys.executable, "-c", stack], check=True)
        imports.append((stack, time.perf_counter() - t))
    job_sum = sum(jobs.values())
    cores = int(args.cores)
    print(f"wall time of the whole run: {total:.1f} s on {cores} cores, {len(jobs)} jobs "
          f"(sum of job wall times {job_sum:.1f} s)")
    print(f"compute inside the training engine: {compute:.1f} s")
    for stack, seconds in imports:
        print(f"python start + `{stack}`: {seconds:.2f} s")
    print(f"job overhead (job wall - engine compute, mostly interpreter start and imports): {job_sum - compute:.1f} s")
    print(f"Snakemake itself (wall - job wall / cores, lower bound): {max(total - job_sum / cores, 0):.1f} s")


if __name__ == "__main__":
    main()
