"""Figure of the engine benchmark (python -m phaselab.bench --json ...): throughput of both engines."""

from __future__ import annotations

import json

import numpy as np

from phaselab.plots import new_figure


def throughput(results: dict, machine: str = ""):
    """(a) member-steps/s against ensemble size at p = 8; (b) per width, per-run loop vs batched engine."""
    fig, axes = new_figure(2, panel_w=5.0, panel_h=4.0, extra_h=0.6)
    ax = axes[0, 0]
    sizes = [s["members"] for s in results["scaling"]]
    rates = [s["batched_rate"] for s in results["scaling"]]
    per_run = np.mean([w["per_run_rate"] for w in results["widths"]])
    ax.plot(sizes, rates, "o-", label="batched engine (one process, all members)")
    ax.axhline(per_run, color="0.3", linestyle="--", label="per-run loop (one member at a time)")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("ensemble size M (members)")
    ax.set_ylabel("throughput (member-steps / s)")
    ax.set_title(f"p = 8, d = {results['config']['d']}")
    ax.legend(fontsize=8)
    ax = axes[0, 1]
    widths = [w["p"] for w in results["widths"]]
    x = np.arange(len(widths))
    ax.bar(x - 0.2, [w["per_run_rate"] for w in results["widths"]], 0.4, label="per-run loop", color="0.6")
    ax.bar(x + 0.2, [w["batched_rate"] for w in results["widths"]], 0.4, label="batched engine")
    for i, w in enumerate(results["widths"]):
        ax.annotate(f"×{w['batched_rate'] / w['per_run_rate']:.0f}", (x[i] + 0.2, w["batched_rate"]),
                    ha="center", va="bottom", fontsize=9)
    ax.set_yscale("log")
    ax.set_xticks(x, [f"p = {p}" for p in widths])
    ax.set_ylabel("throughput (member-steps / s)")
    ax.set_title(f"{results['widths'][0]['members']} members per width; overall ×{results['ratio']:.0f}")
    ax.legend(fontsize=8)
    fig.suptitle(f"Batched ensemble engine vs per-run loop, online SGD of the committee machine\n{machine}",
                 fontsize=10)
    return fig


def throughput_from_file(path: str, out: str) -> None:
    from phaselab.plots import save

    with open(path) as fh:
        results = json.load(fh)
    save(throughput(results, results.get("machine", "")), out)
