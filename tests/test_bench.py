"""The benchmark's machinery (not its speed): both engines on one tiny workload agree, and its figure shows it."""

import numpy as np

from phaselab.bench import run_width
from phaselab.plots.benchmarks import throughput


def test_bench_engines_agree_on_a_tiny_workload():
    r = run_width(64, 3, 2, 2, 200, "cpu", "auto")
    assert r["members"] == 4 and r["steps"] == 200
    assert r["max_rel_diff"] < 1e-4
    assert r["batched_rate"] > 0 and r["per_run_rate"] > 0


def test_throughput_figure_draws_the_measured_rates():
    results = {"config": {"d": 100}, "ratio": 50.0,
               "widths": [{"p": 2, "members": 8, "per_run_rate": 1e3, "batched_rate": 5e4}],
               "scaling": [{"members": 4, "batched_rate": 2e4}, {"members": 16, "batched_rate": 6e4}]}
    fig = throughput(results, "test machine")
    left, right = fig.axes[:2]
    np.testing.assert_allclose(left.lines[0].get_ydata(), [2e4, 6e4])
    assert left.lines[1].get_ydata()[0] == 1e3
    heights = sorted(p.get_height() for p in right.patches)
    assert heights == [1e3, 5e4]


def test_step_flops_equal_pytorchs_flop_count_of_a_training_step():
    """The roofline's flop count of one member's step against PyTorch's own count (FlopCounterMode) of a
    forward/backward of the per-run loop's model: an independent route."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from phaselab.bench import step_flops

    for h, batch in ((32, 1000), (128, 32), (512, 7)):
        model = torch.nn.Sequential(torch.nn.Linear(64, h), torch.nn.Tanh(), torch.nn.Linear(h, 10))
        x, y = torch.randn(batch, 64), torch.randn(batch, 10)
        with FlopCounterMode(display=False) as counter:
            (0.5 * ((model(x) - y) ** 2).sum(1).mean()).backward()
        assert counter.get_total_flops() == step_flops(h, batch)
