"""The MLP fast path of train_ensemble (model=MLPSpec) against the per-run loop a PyTorch user writes (one
nn.Sequential + torch.optim.SGD per member, same inits, same batches); chunking; divergence; float32. No timing."""

import io

import numpy as np
import pytest
import torch

from phaselab import data
from phaselab.bench import per_run_mlp
from phaselab.engines.ensemble import train_ensemble
from phaselab.engines.mlp import BatchedMLP, MLPSpec, mlp_evaluator, mlp_logits, pick_chunk
from phaselab.models import deep_mlp

N, STEPS, S = 120, 12, 2


@pytest.fixture(autouse=True)
def one_thread():
    """Tiny matmuls: one thread, as the engine runs in a job (and no oversubscription on a shared host)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def problem(dtype, widths, activation, loss, mode, lrs=(0.02, 0.1), bias=True, batch=8):
    arrays = data.digits_subset(N, np.random.default_rng(0))
    x = torch.as_tensor(arrays["x_train"][:N], dtype=dtype)
    y = torch.as_tensor(arrays["y_train"][:N], dtype=dtype)
    target = y if loss == "squared" else y.argmax(-1)
    seeds = [s for _ in lrs for s in range(S)]
    params = deep_mlp.init_mlp([x.shape[1], *widths, y.shape[1]], seeds, "tanh" if activation == "erf" else activation,
                               dtype=dtype)
    if not bias:
        params = {k: v for k, v in params.items() if k.startswith("W")}
    lr = torch.tensor([v for v in lrs for _ in range(S)], dtype=dtype)
    member_seed = torch.tensor(seeds)
    idx = torch.randint(0, N, (STEPS, S, batch), generator=torch.Generator().manual_seed(3))
    if mode == "gd":
        def batches(step):
            return x, target

        def member_batches(m):
            return batches
    else:
        def batches(step):
            i = idx[step][member_seed]
            return x[i], target[i]

        def member_batches(m):
            return lambda step: (x[idx[step, seeds[m]]], target[idx[step, seeds[m]]])
    return dict(x=x, target=target, params=params, lr=lr, batches=batches, member_batches=member_batches,
                shared=mode == "gd")


def fast_run(p, spec, chunk="auto", checkpoints=(0, STEPS), threshold=1e6, log=None):
    return train_ensemble(p["params"], None, p["batches"], p["lr"], list(checkpoints),
                          mlp_evaluator(spec, {"train": (p["x"], p["target"])}),
                          batch_in_dims=None if p["shared"] else 0, model=spec, chunk=chunk,
                          divergence_threshold=threshold, log=log)


def reference(p, activation, loss):
    return np.array([per_run_mlp(p["params"], m, activation, loss, p["member_batches"](m), STEPS, float(p["lr"][m]),
                                 {"train": (p["x"], p["target"])})["train_loss"] for m in range(len(p["lr"]))])


@pytest.mark.parametrize("mode", ["gd", "sgd"])
@pytest.mark.parametrize("activation,loss", [("tanh", "squared"), ("relu", "cross_entropy"), ("erf", "squared"),
                                             ("tanh", "cross_entropy")])
@pytest.mark.parametrize("widths", [[16], [12, 20]])
def test_fast_path_equals_the_per_run_loop_in_float64(mode, activation, loss, widths):
    lrs = (0.01, 0.05) if activation == "relu" else (0.02, 0.1)
    p = problem(torch.float64, widths, activation, loss, mode, lrs=lrs)
    spec = MLPSpec(activation, loss)
    run = fast_run(p, spec)
    ref = reference(p, activation, loss)
    assert (run.diverged_step < 0).all()
    np.testing.assert_allclose(run.metrics["train_loss"], ref, rtol=1e-10, atol=0)
    assert run.metrics["train_loss"][:, -1].mean() < ref[:, 0].mean()  # it trained


def test_final_parameters_equal_the_per_run_loop():
    p = problem(torch.float64, [16], "tanh", "squared", "sgd")
    run = fast_run(p, MLPSpec("tanh", "squared"))
    import phaselab.bench as bench

    for m in range(len(p["lr"])):
        net = torch.nn.Sequential(torch.nn.Linear(64, 16, dtype=torch.float64), torch.nn.Tanh(),
                                  torch.nn.Linear(16, 10, dtype=torch.float64))
        with torch.no_grad():
            for i, layer in enumerate((net[0], net[2])):
                layer.weight.copy_(p["params"][f"W{i}"][m])
                layer.bias.copy_(p["params"][f"b{i}"][m])
        opt = torch.optim.SGD(net.parameters(), lr=float(p["lr"][m]))
        for step in range(STEPS):
            xb, yb = p["member_batches"](m)(step)
            opt.zero_grad()
            (0.5 * ((net(xb) - yb) ** 2).sum(-1).mean()).backward()
            opt.step()
        for i, layer in enumerate((net[0], net[2])):
            np.testing.assert_allclose(run.params[f"W{i}"][m].numpy(), layer.weight.detach().numpy(), rtol=1e-10,
                                       atol=1e-13)
            np.testing.assert_allclose(run.params[f"b{i}"][m].numpy(), layer.bias.detach().numpy(), rtol=1e-10,
                                       atol=1e-13)
    assert bench.per_run_mlp is per_run_mlp


def test_fast_path_equals_the_vmapped_general_path_without_biases_and_with_scales():
    """two_layer's NTK network (no biases, scales 1/√fan_in) through the spec equals the vmapped functional loss."""
    from phaselab.models import two_layer

    p = problem(torch.float64, [24], "relu", "squared", "gd", bias=False)
    params = {"W1": p["params"]["W0"], "W2": p["params"]["W1"]}
    spec = MLPSpec("relu", "squared", scales=(64 ** -0.5, 24 ** -0.5))
    x, y = p["x"], p["target"]

    def loss(member, batch):
        return two_layer.loss_values("squared", two_layer.forward(member, batch[0]), batch[1])

    def evaluate(stacked):
        return {"loss": two_layer.loss_values("squared", two_layer.forward(stacked, x), y)}

    kw = dict(batch_in_dims=None)
    fast = train_ensemble(params, loss, lambda s: (x, y), p["lr"], [0, 5, STEPS], evaluate, model=spec, **kw)
    slow = train_ensemble(params, loss, lambda s: (x, y), p["lr"], [0, 5, STEPS], evaluate, **kw)
    np.testing.assert_allclose(fast.metrics["loss"], slow.metrics["loss"], rtol=1e-10)
    for k in params:
        np.testing.assert_allclose(fast.params[k].numpy(), slow.params[k].numpy(), rtol=1e-10, atol=1e-13)


def torch_sgd_member(p, m, activation, loss, steps, momentum=0.0, weight_decay=0.0):
    """Member m trained alone by torch.optim.SGD(momentum, weight_decay) on its own batches (autograd): its
    final parameters in the stacked layout's names."""
    own = {k: v[m].clone().requires_grad_(True) for k, v in p["params"].items()}
    opt = torch.optim.SGD(own.values(), lr=float(p["lr"][m]), momentum=momentum, weight_decay=weight_decay)
    member_loss = deep_mlp.squared_loss if loss == "squared" else deep_mlp.cross_entropy
    for step in range(steps):
        opt.zero_grad()
        member_loss(own, p["member_batches"](m)(step), activation).backward()
        opt.step()
    return {k: v.detach() for k, v in own.items()}


@pytest.mark.parametrize("mode", ["gd", "sgd"])
@pytest.mark.parametrize("activation,loss,widths", [("relu", "cross_entropy", [12, 20]), ("tanh", "squared", [16])])
def test_heavy_ball_and_weight_decay_equal_torch_sgd_per_member(mode, activation, loss, widths):
    """The fast path with a momentum β and a weight decay λ per member (0 among them) against one
    torch.optim.SGD(momentum=β, weight_decay=λ) per member, float64, chunked (members split across chunks) and
    not; the general (vmapped) path with the same options gives the same parameters."""
    p = problem(torch.float64, widths, activation, loss, mode, lrs=(0.01, 0.03, 0.05))
    M = len(p["lr"])
    betas = [0.0, 0.5, 0.9, 0.9, 0.0, 0.7][:M]
    decays = [0.0, 0.0, 0.05, 0.1, 0.2, 0.01][:M]
    spec = MLPSpec(activation, loss)
    member_loss = deep_mlp.squared_loss if loss == "squared" else deep_mlp.cross_entropy
    kw = dict(batch_in_dims=None if p["shared"] else 0, momentum=torch.tensor(betas, dtype=torch.float64),
              weight_decay=torch.tensor(decays, dtype=torch.float64))
    evaluate = mlp_evaluator(spec, {"train": (p["x"], p["target"])})
    runs = [train_ensemble(p["params"], None, p["batches"], p["lr"], [0, 5, STEPS], evaluate, model=spec,
                           chunk=chunk, **kw) for chunk in (1, 4, "auto")]
    general = train_ensemble(p["params"], lambda q, b: member_loss(q, b, activation), p["batches"], p["lr"],
                             [0, 5, STEPS], evaluate, **kw)
    for m in range(M):
        ref = torch_sgd_member(p, m, activation, loss, STEPS, betas[m], decays[m])
        for run in (*runs, general):
            for k in ref:
                torch.testing.assert_close(run.params[k][m], ref[k], rtol=1e-10, atol=1e-12)
    plain = fast_run(p, spec)  # the options change the training (momentum and decay members leave plain SGD)
    assert not torch.allclose(plain.params["W0"][2], runs[0].params["W0"][2])
    assert torch.equal(plain.params["W0"][0], fast_run(p, spec).params["W0"][0])


def test_fast_path_with_scales_and_biases_equals_autograd():
    """Per-layer scales s_l with biases: f = s·hWᵀ + b, so the bias's gradient carries no s (the fused first layer
    under full-batch GD and the per-member path under SGD), against the vmapped general path."""
    scales = (64 ** -0.5, 16 ** -0.5)

    def member_loss(q, batch):
        x, y = batch
        a = torch.tanh(scales[0] * x @ q["W0"].T + q["b0"])
        return 0.5 * ((scales[1] * a @ q["W1"].T + q["b1"] - y) ** 2).sum(-1).mean()

    spec = MLPSpec("tanh", "squared", scales=scales)
    for mode in ("gd", "sgd"):
        p = problem(torch.float64, [16], "tanh", "squared", mode, lrs=(0.5, 2.0))
        kw = dict(batch_in_dims=None if p["shared"] else 0)
        evaluate = mlp_evaluator(spec, {"train": (p["x"], p["target"])})
        fast = train_ensemble(p["params"], None, p["batches"], p["lr"], [0, STEPS], evaluate, model=spec, **kw)
        slow = train_ensemble(p["params"], member_loss, p["batches"], p["lr"], [0, STEPS], evaluate, **kw)
        for k in p["params"]:
            np.testing.assert_allclose(fast.params[k].numpy(), slow.params[k].numpy(), rtol=1e-10, atol=1e-13)
        assert not torch.allclose(fast.params["b0"], p["params"]["b0"])  # the biases moved


@pytest.mark.parametrize("mode", ["gd", "sgd"])
def test_chunked_equals_unchunked(mode):
    p = problem(torch.float64, [12, 20], "tanh", "cross_entropy", mode, lrs=(0.02, 0.05, 0.1))
    spec = MLPSpec("tanh", "cross_entropy")
    runs = [fast_run(p, spec, chunk=c) for c in (1, 4, 6)]  # 6 members: per-member, ragged, all at once
    for run in runs[1:]:
        np.testing.assert_allclose(run.metrics["train_loss"], runs[0].metrics["train_loss"], rtol=1e-12)
        for k in run.params:
            np.testing.assert_allclose(run.params[k].numpy(), runs[0].params[k].numpy(), rtol=1e-12, atol=1e-14)


def logged_steps(lines) -> list[int]:
    """The step of each "[train] step s/total, ..." progress line."""
    return [int(line.split()[2].split("/")[0]) for line in lines]


def test_divergence_is_recorded_and_frozen_with_progress_lines():
    p = problem(torch.float64, [16], "relu", "squared", "gd", lrs=(0.01, 50.0))
    log = io.StringIO()
    run = fast_run(p, MLPSpec("relu", "squared"), checkpoints=(0, 4, 8, STEPS), threshold=1e3, log=log)
    stable, exploding = run.diverged_step[:S], run.diverged_step[S:]
    assert (stable < 0).all() and (exploding > 0).all()
    for m, step in enumerate(run.diverged_step):
        if step > 0:
            i = [0, 4, 8, STEPS].index(step)
            assert np.isnan(run.metrics["train_loss"][m, i:]).all()
            assert np.isfinite(run.metrics["train_loss"][m, :i]).all()
            assert all(float(v[m].abs().max()) == 0.0 for v in run.params.values())  # frozen at zero
    assert np.isfinite(run.metrics["train_loss"][:S]).all()
    lines = log.getvalue().splitlines()
    steps = logged_steps(lines)
    assert {4, 8, STEPS} <= set(steps) and steps == sorted(set(steps))  # every checkpoint, progress between
    assert lines[-1].startswith(f"[train] step {STEPS}/{STEPS}, {2 * S} members")


def test_float32_runs_and_stays_close_to_float64():
    spec = MLPSpec("tanh", "squared")
    p32 = problem(torch.float32, [16], "tanh", "squared", "sgd")
    p64 = problem(torch.float64, [16], "tanh", "squared", "sgd")
    run32, run64 = fast_run(p32, spec), fast_run(p64, spec)
    assert all(v.dtype == torch.float32 for v in run32.params.values())
    np.testing.assert_allclose(run32.metrics["train_loss"], run64.metrics["train_loss"], rtol=1e-4)
    np.testing.assert_allclose(run32.metrics["train_loss"], reference(p32, "tanh", "squared"), rtol=1e-4)


def test_general_path_is_unchanged_for_functional_losses():
    """Without model=, train_ensemble is the vmapped path: a linear least-squares GD equals its closed loop."""
    X = torch.randn(20, 5, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    y = X @ torch.arange(5.0, dtype=torch.float64)
    lr = torch.tensor([0.01, 0.05], dtype=torch.float64)
    run = train_ensemble({"w": torch.zeros(2, 5, dtype=torch.float64)},
                         lambda w, b: 0.5 * ((b[0] @ w["w"] - b[1]) ** 2).mean(), lambda s: (X, y), lr, [0, 30],
                         lambda p: {"w0": p["w"][:, 0]}, batch_in_dims=None, eval_chunk=1)
    w = torch.zeros(2, 5, dtype=torch.float64)
    for _ in range(30):
        w -= lr[:, None] * ((X @ w.T - y[:, None]).T @ X) / len(X)
    np.testing.assert_allclose(run.params["w"].numpy(), w.numpy(), rtol=1e-12)
    np.testing.assert_allclose(run.metrics["w0"][:, -1], w[:, 0].numpy(), rtol=1e-12)


def test_progress_lines_between_checkpoints_change_no_number():
    """A long run with one checkpoint at its end still prints a progress line every 5 % of its steps (a paper-scale
    pretraining ran 62 400 steps silently), and the lines change nothing: same parameters as a silent run."""
    import io

    X = torch.randn(20, 5, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    y = X @ torch.arange(5.0, dtype=torch.float64)
    lr = torch.tensor([0.01, 0.05], dtype=torch.float64)

    def run(log):
        return train_ensemble({"w": torch.zeros(2, 5, dtype=torch.float64)},
                              lambda w, b: 0.5 * ((b[0] @ w["w"] - b[1]) ** 2).mean(), lambda s: (X, y), lr, [100],
                              lambda p: {"w0": p["w"][:, 0]}, batch_in_dims=None, log=log)

    log = io.StringIO()
    loud, silent = run(log), run(None)
    steps = logged_steps(log.getvalue().splitlines())
    assert steps == list(range(5, 101, 5))
    assert torch.equal(loud.params["w"], silent.params["w"])


def test_chunk_choice_follows_the_working_set():
    cpu = torch.device("cpu")
    small = pick_chunk([64, 32, 10], 32, "tanh", 8, 32, False, cpu, cache_budget=4 * 2**20)
    large = pick_chunk([64, 512, 10], 1000, "tanh", 8, 32, True, cpu, cache_budget=4 * 2**20)
    assert small == 32 and large == 1
    assert pick_chunk([64, 512, 10], 32, "tanh", 8, 32, False, cpu, cache_budget=4 * 2**20) < 32
    p = problem(torch.float64, [16], "tanh", "squared", "gd")
    engine = BatchedMLP(MLPSpec(), p["params"], p["lr"], cache_budget=1)
    engine.step((p["x"], p["target"]), shared=True)
    assert engine.chunk == 1


def test_cache_budget_is_the_l2_or_a_capped_share_of_the_last_level():
    from phaselab.engines.mlp import chunk_cache_budget

    KiB, MiB = 2**10, 2**20
    amd = {1: 32 * KiB, 2: 512 * KiB, 3: 32 * MiB}  # the AMD EPYC guest: an eighth of its L3, 4 MiB
    intel = {1: 48 * KiB, 2: 2 * MiB, 3: 480 * MiB}  # the Intel Xeon guest sees the host's whole L3: capped
    assert chunk_cache_budget(amd) == 4 * MiB
    assert chunk_cache_budget(intel) == 4 * MiB
    assert chunk_cache_budget({1: 32 * KiB, 2: 8 * MiB, 3: 16 * MiB}) == 8 * MiB  # a large private L2 counts whole
    assert chunk_cache_budget({}) == 4 * MiB
    # on the Intel guest, full-batch GD at h = 128 (2.2 MB a member in float64) runs one member at a time, the
    # measured best (0.8x the per-run loop with all 32 batched)
    cpu = torch.device("cpu")
    assert pick_chunk([64, 128, 10], 1000, "tanh", 8, 32, True, cpu, cache_budget=chunk_cache_budget(intel)) == 1


def test_ensemble_throughput_figure_draws_the_measured_rates():
    from phaselab.plots.benchmarks import ensemble_throughput

    cases = [{"mode": m, "h": 128, "dtype": "float64", "members": 32, "per_run_rate": r, "old_ratio": 1.0,
              "new_ratio": q} for m, r, q in (("gd", 200.0, 1.5), ("sgd", 1000.0, 5.0))]
    results = {"cases": cases, "ratio": 2.7, "old_ratio": 1.0,
               "scaling": [{"members": k, "rate": 100.0 * k, "h": 128, "mode": "sgd"} for k in (1, 4, 16)]}
    fig = ensemble_throughput(results, "test machine")
    left, right = fig.axes[:2]
    np.testing.assert_allclose(left.lines[0].get_ydata(), [100.0, 400.0, 1600.0])
    assert left.lines[1].get_ydata()[0] == 1000.0
    assert sorted(p.get_height() for p in right.patches) == [1.0, 1.0, 1.5, 5.0]


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("mode", ["gd", "sgd"])
def test_fast_path_on_cuda_matches_the_cpu(mode):
    p = problem(torch.float64, [12, 20], "tanh", "cross_entropy", mode)
    spec = MLPSpec("tanh", "cross_entropy")
    cpu = fast_run(p, spec)
    moved = {k: (v.cuda() if isinstance(v, torch.Tensor) else v) for k, v in p.items()}
    moved["params"] = {k: v.cuda() for k, v in p["params"].items()}
    batches = p["batches"]
    moved["batches"] = lambda step: tuple(t.cuda() for t in batches(step))
    gpu = fast_run(moved, spec)
    np.testing.assert_allclose(gpu.metrics["train_loss"], cpu.metrics["train_loss"], rtol=1e-9)


@pytest.mark.parametrize("x_shape", ["shared", "per_member"])
def test_chunked_logits_equal_the_models_forward(x_shape):
    """mlp_logits (first layer of a chunk as one wide product on shared inputs) against the models' own forward:
    two_layer's NTK network (no biases, scales) and deep_mlp (biases, tanh)."""
    from phaselab.models import two_layer

    p = problem(torch.float64, [24], "relu", "squared", "gd", bias=False)
    params = {"W1": p["params"]["W0"], "W2": p["params"]["W1"]}
    x = p["x"] if x_shape == "shared" else p["x"].expand(len(p["lr"]), *p["x"].shape)
    spec = MLPSpec("relu", "squared", scales=(64 ** -0.5, 24 ** -0.5))
    for chunk in (1, 3, None):
        np.testing.assert_allclose(mlp_logits(spec, params, x, chunk).numpy(),
                                   two_layer.forward(params, x).numpy(), rtol=1e-12, atol=1e-14)
    q = problem(torch.float64, [12, 20], "tanh", "squared", "gd")
    xq = q["x"] if x_shape == "shared" else q["x"].expand(len(q["lr"]), *q["x"].shape)
    net = torch.func.vmap(deep_mlp.forward, in_dims=(0, None if x_shape == "shared" else 0, None))
    np.testing.assert_allclose(mlp_logits(MLPSpec("tanh", "squared"), q["params"], xq, 4).numpy(),
                               net(q["params"], xq, "tanh").numpy(), rtol=1e-12, atol=1e-14)
