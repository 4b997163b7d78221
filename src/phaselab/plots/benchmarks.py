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


def throughput_from_file(path: str, out: str, engine: str = "committee") -> None:
    """The figure of one engine's benchmark results (``committee``: :func:`throughput`, ``ensemble``:
    :func:`ensemble_throughput`), saved as PNG."""
    from phaselab.plots import save

    with open(path) as fh:
        results = json.load(fh)
    draw = {"committee": throughput, "ensemble": ensemble_throughput}[engine]
    save(draw(results, results.get("machine", "")), out)


def ensemble_throughput(results: dict, machine: str = ""):
    """The general ensemble engine (``python -m phaselab.bench --engine ensemble --json ...``): (a) member-steps/s of
    the MLP fast path against the ensemble size M (h = 128, float64), GD and SGD, with the per-run loop's rate on the
    same workloads; (b) per workload, new engine and old (vmapped) engine over the per-run loop."""
    fig, axes = new_figure(2, panel_w=5.0, panel_h=4.0, extra_h=0.6)
    ax = axes[0, 0]
    for k, mode in enumerate(("sgd", "gd")):
        rows = [r for r in results["scaling"] if r["mode"] == mode]
        if not rows:
            continue
        color = f"C{k}"
        label = "SGD B = 32" if mode == "sgd" else "full-batch GD"
        ax.plot([r["members"] for r in rows], [r["rate"] for r in rows], "o-", color=color,
                label=f"new engine, {label}")
        per_run = [c["per_run_rate"] for c in results["cases"]
                   if c["mode"] == mode and c["h"] == rows[0]["h"] and c["dtype"] == "float64"]
        if per_run:
            ax.axhline(per_run[0], color=color, linestyle="--", label=f"per-run loop, {label}")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("ensemble size M (members)")
    ax.set_ylabel("throughput (member-steps / s)")
    ax.set_title("tanh MLP 64 → 128 → 10, float64")
    ax.legend(fontsize=7)
    ax = axes[0, 1]
    cases = results["cases"]
    x = np.arange(len(cases))
    ax.bar(x - 0.2, [c["old_ratio"] for c in cases], 0.4, label="old engine (vmap)", color="0.6")
    ax.bar(x + 0.2, [c["new_ratio"] for c in cases], 0.4, label="new engine (MLPSpec)")
    ax.axhline(1.0, color="0.3", linestyle="--", linewidth=1)
    ax.set_yscale("log")
    ax.set_xticks(x, [f"{'GD' if c['mode'] == 'gd' else 'SGD'} h={c['h']} {c['dtype'].replace('float', 'f')}"
                      for c in cases], fontsize=7, rotation=45, ha="right")
    ax.set_ylabel("speed-up over the per-run loop")
    ax.set_title(f"{cases[0]['members']} members; geometric mean ×{results['ratio']:.1f} "
                 f"(old ×{results['old_ratio']:.1f})")
    ax.legend(fontsize=8)
    fig.suptitle(f"General ensemble engine vs per-run loop (nn.Sequential + SGD per member)\n{machine}", fontsize=10)
    return fig
