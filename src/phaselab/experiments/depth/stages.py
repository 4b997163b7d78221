"""The depth stages: the sawtooth (deep exact, shallow fitted), linear regions, the product gate and parities."""

from __future__ import annotations

import numpy as np

from phaselab.experiment import Claim, Run, exceeds, judge, seed_interval, welch_interval
from phaselab.experiments import depth as light
from phaselab.theory import depth as th


def _status(diverged):
    from phaselab.vocabulary import STATUS_DIVERGED, STATUS_OK

    return np.where(np.asarray(diverged) >= 0, STATUS_DIVERGED, STATUS_OK).astype(str)


def train(run: Run, cell, data):
    if isinstance(cell, light.TentCell):
        return train_tent(run, cell)
    if isinstance(cell, light.RegionsCell):
        return train_regions(run, cell)
    if isinstance(cell, light.ProductCell):
        return train_product(run, cell)
    if isinstance(cell, light.ProductNetCell):
        return train_product_net(run, cell)
    return train_parity(run, cell)


# ------------------------------------------------------------------------------------------------------ tent


def _tent_loss(p, batch):
    """½ mean (f − y)² of ONE shallow member f(x) = Σ_i m_i a_i relu(w_i x + b_i) + c (m: the padding mask), the
    torch.func reference that :func:`_tent_gradient` is tested against."""
    import torch

    x, y = batch
    f = (torch.relu(x[:, None] * p["w"] + p["b"]) * p["m"].detach()) @ p["a"] + p["c"]
    return 0.5 * ((f - y) ** 2).mean()


def _tent_active_ranges(p, x):
    """Unit i of every member is active (w_i x + b_i > 0) on one contiguous run [lo_i, hi_i) of the sorted points x:
    x > −b/w for w > 0, x < −b/w for w < 0, everywhere or nowhere for w = 0 (as b > 0)."""
    import torch

    w, b = p["w"], p["b"]
    n = x.shape[0]
    t = torch.where(w != 0, -b / torch.where(w != 0, w, 1.0), 0.0).contiguous()
    above = torch.searchsorted(x, t, right=True)  # first point with x > t
    below = torch.searchsorted(x, t, right=False)  # number of points with x < t
    full, empty = torch.full_like(above, n), torch.zeros_like(above)
    lo = torch.where(w > 0, above, empty)
    hi = torch.where(w > 0, full, torch.where(w < 0, below, torch.where(b > 0, full, empty)))
    return lo, torch.maximum(lo, hi)


def _tent_residual(p, x, y, ranges=None):
    """f − y (M, n) of every member at once in O(n + units) a member, not O(n · units): on sorted x the net is
    c + x·A_w(x) + A_b(x), A_w and A_b step functions (Σ of m a w and m a b over the active units) built from
    difference arrays and a cumulative sum."""
    import torch

    lo, hi = ranges if ranges is not None else _tent_active_ranges(p, x)
    M, n = p["w"].shape[0], x.shape[0]
    f = []
    for coef in (p["m"] * p["a"] * p["w"], p["m"] * p["a"] * p["b"]):
        diff = torch.zeros(M, n + 1, dtype=x.dtype, device=x.device)
        diff.scatter_add_(1, lo, coef).scatter_add_(1, hi, -coef)
        f.append(diff[:, :n].cumsum(1))
    return p["c"][:, None] + x * f[0] + f[1] - y


def _tent_gradient(p, batch):
    """The gradient of :func:`_tent_loss` for every member at once, in closed form: with e = f − y and the prefix
    sums E₀ of e and E₁ of e·x over the sorted points, unit i's sums over its active run are S₀ = E₀[hi] − E₀[lo]
    and S₁ = E₁[hi] − E₁[lo], so ∂/∂a_i = m_i (w_i S₁ + b_i S₀)/n, ∂/∂w_i = m_i a_i S₁/n, ∂/∂b_i = m_i a_i S₀/n,
    ∂/∂c = Σe/n (the mask is not trained). O(n + units) a member instead of the O(n · units) of autograd: the
    paper-scale sawtooth (144 members padded to 512 units, 4096 points) ≈ 25 s a step through vmap(grad), a few ms
    here."""
    import torch

    x, y = batch
    ranges = _tent_active_ranges(p, x)
    e = _tent_residual(p, x, y, ranges)
    zero = torch.zeros(e.shape[0], 1, dtype=e.dtype, device=e.device)
    E0 = torch.cat([zero, e.cumsum(1)], 1)
    E1 = torch.cat([zero, (e * x).cumsum(1)], 1)
    lo, hi = ranges
    S0, S1 = E0.gather(1, hi) - E0.gather(1, lo), E1.gather(1, hi) - E1.gather(1, lo)
    n, m = x.shape[0], p["m"]
    return {"w": m * p["a"] * S1 / n, "b": m * p["a"] * S0 / n, "a": m * (p["w"] * S1 + p["b"] * S0) / n,
            "c": e.sum(1) / n, "m": torch.zeros_like(m)}


def train_tent(run: Run, cell: light.TentCell):
    """Deep: the k-layer network, its largest error and pieces on a dyadic grid. Shallow: N units with breakpoints
    uniform on [0, 1] (slopes ±1), the least-squares output layer, then full-batch GD on all parameters; members
    (N, seed) padded to the largest N with a fixed mask, one ensemble, its gradient in closed form
    (:func:`_tent_gradient`)."""
    import torch
    import xarray as xr

    from phaselab import data
    from phaselab.engines.ensemble import train_ensemble

    exp, k = run.exp["tent"], cell.k
    xd = np.arange(2 ** (k + 6) + 1) / 2 ** (k + 6)
    deep = th.mlp_forward(th.deep_tent_network(k), xd[:, None])[:, 0]
    deep_error = float(np.abs(deep - th.sawtooth(xd, k)).max())
    pieces = th.count_pieces(deep, xd)
    units, S, n = sorted(exp["units"]), exp["seeds"], exp["points"]
    x = (np.arange(n) + 0.5) / n
    y = th.sawtooth(x, k)
    Nmax, M = max(units), len(units) * S
    w, b, a, mask = (np.zeros((M, Nmax)) for _ in range(4))
    c = np.zeros(M)
    rf = np.zeros(M)
    for i, N in enumerate(units):
        for s in range(S):
            m = i * S + s
            g = data.rng(run.seed, light.TENT_INIT, k, N, s)
            u, sign = g.uniform(0.0, 1.0, N), g.choice([-1.0, 1.0], N)
            w[m, :N], b[m, :N], mask[m, :N] = sign, -sign * u, 1.0
            F = np.column_stack([th.relu(np.multiply.outer(x, w[m, :N]) + b[m, :N]), np.ones(n)])
            coef = np.linalg.lstsq(F, y, rcond=None)[0]
            a[m, :N], c[m] = coef[:N], coef[N]
            rf[m] = np.mean((F @ coef - y) ** 2)
    # the loss' curvature: ≤ N/3 along a (Gram of N features ≤ 1), ≈ Σ a_i² along the breakpoints
    lr = exp["lr"] / np.maximum(mask.sum(1) / 3.0, (a**2).sum(1))
    params = {name: torch.as_tensor(v) for name, v in dict(w=w, b=b, a=a, c=c, m=mask).items()}
    xt, yt = torch.as_tensor(x), torch.as_tensor(y)
    run.log(f"k = {k}: deep error {deep_error:.2g}, {pieces} pieces; {M} shallow members, {exp['steps']} GD steps")
    result = train_ensemble(params, _tent_loss, lambda step: (xt, yt), torch.as_tensor(lr), [0, exp["steps"]],
                            lambda p: {"mse": (_tent_residual(p, xt, yt) ** 2).mean(1)}, batch_in_dims=None,
                            divergence_threshold=exp["divergence_threshold"], log=run.log_file,
                            gradient=_tent_gradient)
    shape = (1, len(units), S)
    dims = ("k", "units", "tent_seed")
    return xr.Dataset(
        {
            "tent_mse_random_features": (dims, rf.reshape(shape), {
                "long_name": "MSE of the shallow net, random breakpoints, least-squares output layer", "units": "1"}),
            "tent_mse": (dims, result.metrics["mse"][:, -1].reshape(shape), {
                "long_name": "MSE of the shallow net after full-batch GD (uniform x on [0, 1])", "units": "1"}),
            "tent_status": (dims, _status(result.diverged_step).reshape(shape),
                            {"long_name": "member status (ok / diverged)"}),
            "deep_max_error": (("k",), [deep_error], {
                "long_name": "largest |deep net − Δ^k| on a dyadic grid (k layers of 2 ReLU units)", "units": "1"}),
            "deep_pieces": (("k",), [pieces], {"long_name": "linear pieces of the deep net on [0, 1]", "units": "1"}),
        },
        coords={"k": [k], "units": units, "tent_seed": np.arange(S)},
        attrs={"tent_points": n, "tent_steps": exp["steps"]},
    )


# --------------------------------------------------------------------------------------------------- regions


def _init_relu(sizes, g, bias_std):
    layers = []
    for fan_in, fan_out in zip(sizes[:-1], sizes[1:]):
        layers.append((g.standard_normal((fan_out, fan_in)) * np.sqrt(2.0 / fan_in),
                       g.standard_normal(fan_out) * bias_std))
    return layers


def _regions_target(x):
    return th.sawtooth(np.linalg.norm(x, axis=1) / np.sqrt(2.0), 2)


def train_regions(run: Run, cell: light.RegionsCell):
    """Region counts of random (He weights, N(0, bias_std²) biases) and GD-trained networks, deep (L × width) and
    shallow (L·width units), on the grid of [−1, 1]²."""
    from functools import partial

    import torch
    import xarray as xr
    from torch.func import vmap

    from phaselab import data
    from phaselab.engines.ensemble import train_ensemble
    from phaselab.models import deep_mlp

    exp, n = run.exp["regions"], cell.width
    S, depths = exp["seeds"], sorted(exp["depths"])
    g = data.rng(run.seed, light.REGIONS_DATA)
    x = g.uniform(-1.0, 1.0, (exp["n_train"], 2))
    y = _regions_target(x)[:, None]
    xt, yt = torch.as_tensor(x), torch.as_tensor(y)
    loss = partial(deep_mlp.squared_loss, activation="relu")
    out = {f"{v}_{a}": np.zeros((len(depths), S)) for v in ("regions_random", "regions_trained", "regions_mse")
           for a in ("deep", "shallow")}
    status = {a: np.empty((len(depths), S), dtype=object) for a in ("deep", "shallow")}
    count = partial(th.count_regions, lo=-1.0, hi=1.0, points=exp["grid"])
    for i, L in enumerate(depths):
        for arch, hidden in (("deep", [n] * L), ("shallow", [n * L])):
            sizes = [2, *hidden, 1]
            nets = [_init_relu(sizes, data.rng(run.seed, light.REGIONS_INIT, L, len(hidden), s), exp["bias_std"])
                    for s in range(S)]
            out[f"regions_random_{arch}"][i] = [count(net) for net in nets]
            params = {}
            for l in range(len(sizes) - 1):
                params[f"W{l}"] = torch.as_tensor(np.stack([net[l][0] for net in nets]))
                params[f"b{l}"] = torch.as_tensor(np.stack([net[l][1] for net in nets]))
            res = train_ensemble(params, loss, lambda step: (xt, yt), torch.full((S,), exp["lr"], dtype=torch.float64),
                                 [0, exp["steps"]], lambda p: {"mse": 2 * vmap(loss, in_dims=(0, None))(p, (xt, yt))},
                                 batch_in_dims=None)
            trained = [[(res.params[f"W{l}"][s].numpy(), res.params[f"b{l}"][s].numpy())
                        for l in range(len(sizes) - 1)] for s in range(S)]
            ok = res.diverged_step < 0
            out[f"regions_trained_{arch}"][i] = [count(net) if o else np.nan for net, o in zip(trained, ok)]
            out[f"regions_mse_{arch}"][i] = res.metrics["mse"][:, -1]
            status[arch][i] = _status(res.diverged_step)
            run.log(f"L = {L}, {arch} {hidden}: regions random {out[f'regions_random_{arch}'][i].mean():.1f}, "
                    f"trained {np.nanmean(out[f'regions_trained_{arch}'][i]):.1f}")
    dims = ("depth", "regions_seed")
    names = {"regions_random": "linear regions met by the grid on [−1, 1]², random network",
             "regions_trained": "linear regions met by the grid on [−1, 1]², network after GD",
             "regions_mse": "training MSE after GD on Δ²(‖x‖/√2)"}
    arch_name = {"deep": f"deep (L layers of {n})", "shallow": f"shallow (L·{n} units)"}
    ds = xr.Dataset({key: (dims, v, {"long_name": f"{names[key.rsplit('_', 1)[0]]}, {arch_name[key.rsplit('_', 1)[1]]}",
                                     "units": "1"}) for key, v in out.items()},
                    coords={"depth": depths, "regions_seed": np.arange(S)},
                    attrs={"regions_width": n, "regions_grid": exp["grid"], "regions_bias_std": exp["bias_std"]})
    for arch in status:
        ds[f"regions_status_{arch}"] = (dims, status[arch].astype(str), {"long_name": f"{arch} member status"})
    return ds


# --------------------------------------------------------------------------------------------------- product


def train_product(run: Run, cell: light.ProductCell):
    """Largest error of the softplus product gate on a grid of [−1, 1]² per λ, and of the 2^n identity at random
    points per n (deterministic: no training)."""
    import xarray as xr

    from phaselab import data

    exp = run.exp["product"]
    grid = np.linspace(-1.0, 1.0, exp["grid"])
    X, Y = np.meshgrid(grid, grid)
    lams = sorted(exp["lam"])
    err = [float(np.abs(th.product_gate(X, Y, lam) - X * Y).max()) for lam in lams]
    ns = list(range(2, cell.max_n + 1))
    ident = []
    for nn in ns:
        pts = data.rng(run.seed, light.PRODUCT_IDENTITY_POINTS, nn).uniform(-1.0, 1.0, (1000, nn))
        ident.append(float(np.abs(th.product_identity(pts) - pts.prod(1)).max()))
    return xr.Dataset(
        {"product_gate_error": (("lam",), err, {"long_name": "largest |gate(x, y) − xy| on [−1, 1]²", "units": "1"}),
         "product_identity_error": (("n_inputs",), ident, {
             "long_name": "largest |Σ_s (Π s)(s·x)^n/(2^n n!) − Π x| at 1000 random points of [−1, 1]^n",
             "units": "1"})},
        coords={"lam": lams, "n_inputs": ns})


def _relative_mse(spec, sets: dict):
    """evaluate(params) → {name: mean (f − y)² over the set}, y the standardised target (so: MSE / Var Π x_i)."""
    from phaselab.engines.mlp import mlp_logits

    def evaluate(p):
        return {name: ((mlp_logits(spec, p, x)[..., 0] - y) ** 2).mean(-1) for name, (x, y) in sets.items()}

    return evaluate


def train_product_net(run: Run, cell: light.ProductNetCell):
    """tanh networks of L hidden layers sharing N = budget · n neurons (:func:`theory.depth.equal_split`), trained by
    online SGD on y = Π x_i / 3^(−n/2), x ~ U[−1, 1]^n fresh each step, output layer zero at initialisation (f = 0:
    relative MSE 1). One ensemble per (N, L): seeds × learning rates, the same init and stream for every rate;
    relative MSE on a validation set (picks the rate) and a test set. Beside it, the tree of softplus gates' MSE by
    Monte Carlo for each λ of ``product.lam``."""
    import torch
    import xarray as xr

    from phaselab import data
    from phaselab.engines.ensemble import MLPSpec, train_ensemble
    from phaselab.models import deep_mlp

    exp, n = run.exp["product_nets"], cell.n
    S, lrs = exp["seeds"], sorted(exp["lr"])
    budgets, layers = sorted(exp["budgets"]), sorted(exp["layers"])
    R, B = len(lrs), exp["batch_size"]
    scale = 3.0 ** (n / 2)  # 1 / sd(Π x_i)

    def sample(g, size):
        x = g.uniform(-1.0, 1.0, (size, n))
        return torch.as_tensor(x), torch.as_tensor(x.prod(1) * scale)

    sets = {"val": sample(data.rng(run.seed, light.PRODUCT_NET_VALIDATION, n), exp["n_val"]),
            "test": sample(data.rng(run.seed, light.PRODUCT_NET_TEST, n), exp["n_test"])}
    spec = MLPSpec("tanh", "squared")
    steps = sorted({round(i * exp["steps"] / exp["checkpoints"]) for i in range(exp["checkpoints"] + 1)})
    shape = (len(budgets), len(layers))
    test = np.full((*shape, R, S, len(steps)), np.nan)
    val = np.full((*shape, R, S), np.nan)
    status = np.empty((*shape, R, S), dtype=object)
    neurons = np.zeros(shape, dtype=int)
    for i, b in enumerate(budgets):
        for j, L in enumerate(layers):
            widths = th.equal_split(b * n, L)
            neurons[i, j] = sum(widths)
            seeds = [data.derive_seed(run.seed, light.PRODUCT_NET_INIT, n, b, L, s) for s in range(S)]
            params = deep_mlp.init_mlp([n, *widths, 1], seeds * R, "tanh", output_scale=0.0)
            lr = torch.as_tensor(np.repeat(lrs, S))
            gen = torch.Generator().manual_seed(data.derive_seed(run.seed, light.PRODUCT_NET_STREAM, n, b, L) % 2**63)

            def batches(step, gen=gen):  # one stream a seed, shared by the learning rates
                x = 2.0 * torch.rand((S, B, n), generator=gen, dtype=torch.float64) - 1.0
                x = x.repeat(R, 1, 1)
                return x, x.prod(-1, keepdim=True) * scale

            res = train_ensemble(params, None, batches, lr, steps, _relative_mse(spec, sets), batch_in_dims=0,
                                 model=spec, log=run.log_file)
            test[i, j] = res.metrics["test"].reshape(R, S, len(steps))
            val[i, j] = res.metrics["val"][:, -1].reshape(R, S)
            status[i, j] = _status(res.diverged_step).reshape(R, S)
            run.log(f"n = {n}, N = {b * n}, L = {L} {widths}: relative test MSE "
                    + ", ".join(f"lr {r}: {np.nanmean(test[i, j, k, :, -1]):.3f}" for k, r in enumerate(lrs)))
    with np.errstate(all="ignore"):
        mean_val = np.nanmean(val, axis=-1)  # (budget, layers, lr)
    chosen = np.argmin(np.where(np.isfinite(mean_val), mean_val, np.inf), axis=-1)
    best = np.take_along_axis(test[..., -1], chosen[..., None, None], axis=2)[:, :, 0]  # (budget, layers, seed)
    y2 = sets["test"][1].numpy() ** 2
    lams = sorted(run.exp["product"]["lam"])
    pts = data.rng(run.seed, light.PRODUCT_TREE_POINTS, n).uniform(-1.0, 1.0, (exp["tree_points"], n))
    sq = np.stack([(th.product_tree(pts, lam) - pts.prod(1)) ** 2 * 3.0**n for lam in lams])
    ex = lambda v: np.asarray(v)[None]  # noqa: E731
    dims = ("product_n", "budget", "layers")
    return xr.Dataset(
        {
            "product_net_mse": ((*dims, "product_lr", "product_seed", "product_step"), ex(test), {
                "long_name": "test MSE / Var Π x_i of the trained network", "units": "1"}),
            "product_net_val_mse": ((*dims, "product_lr", "product_seed"), ex(val), {
                "long_name": "validation MSE / Var Π x_i after training (chooses the learning rate)", "units": "1"}),
            "product_net_status": ((*dims, "product_lr", "product_seed"), ex(status.astype(str)), {
                "long_name": "member status (ok / diverged)"}),
            "product_net_best": ((*dims, "product_seed"), ex(best), {
                "long_name": "test MSE / Var Π x_i after training, at the learning rate of least validation error",
                "units": "1"}),
            "product_net_best_lr": (dims, ex(np.asarray(lrs)[chosen]), {
                "long_name": "learning rate of least validation error", "units": "1"}),
            "product_net_neurons": (dims, ex(neurons), {"long_name": "hidden neurons in total", "units": "1"}),
            "product_test_second_moment": (("product_n",), [float(y2.mean())], {
                "long_name": "mean of (Π x_i)² / 3^−n over the test set: the relative MSE of f = 0", "units": "1"}),
            "product_test_second_moment_se": (("product_n",), [float(y2.std(ddof=1) / np.sqrt(len(y2)))], {
                "long_name": "its standard error", "units": "1"}),
            "product_tree_mse": (("product_n", "lam"), sq.mean(1)[None], {
                "long_name": "MSE / Var Π x_i of the binary tree of softplus gates (Monte Carlo)", "units": "1"}),
            "product_tree_mse_se": (("product_n", "lam"), (sq.std(1, ddof=1) / np.sqrt(sq.shape[1]))[None], {
                "long_name": "standard error of the tree's Monte Carlo MSE", "units": "1"}),
        },
        coords={"product_n": [n], "budget": budgets, "layers": layers, "product_lr": lrs,
                "product_seed": np.arange(S), "product_step": steps, "lam": lams},
        attrs={"product_net_steps": exp["steps"], "product_net_batch_size": B,
               "product_tree_points": exp["tree_points"]},
    )


# ---------------------------------------------------------------------------------------------------- parity


def _parity_gradients(params: dict, m: int, X: np.ndarray) -> np.ndarray:
    """∇_w p_w(x) of member m of a deep_mlp [d, H, 1] ReLU network at the rows of X: (2^d, P)."""
    W, b = params["W0"][m].numpy(), params["b0"][m].numpy()
    a = params["W1"][m, 0].numpy()
    z = X @ W.T + b
    on = (z > 0).astype(float)
    gW = (on * a)[:, :, None] * X[:, None, :]
    return np.concatenate([gW.reshape(len(X), -1), on * a, th.relu(z), np.ones((len(X), 1))], axis=1)


def train_parity(run: Run, cell: light.ParityCell):
    """Per seed: the exact variance over all parities of the loss gradient at initialisation, a Monte Carlo estimate
    over parities drawn by degree (``probe_parities`` in all), and online SGD on one parity of ⌊d/2⌋ bits with the
    test accuracy at checkpoints."""
    from functools import partial

    import torch
    import xarray as xr
    from torch.func import vmap

    from phaselab import data
    from phaselab.engines.ensemble import train_ensemble
    from phaselab.models import deep_mlp

    exp, d = run.exp["parity"], cell.d
    S, H = exp["seeds"], exp["hidden"]
    params = deep_mlp.init_mlp([d, H, 1], [data.derive_seed(run.seed, light.PARITY_INIT, d, s) for s in range(S)],
                               "relu")
    X = th.hypercube(d)
    stats = {key: np.zeros(S) for key in ("variance", "parseval", "bound", "mc", "mc_se")}
    for s in range(S):
        G = _parity_gradients(params, s, X)
        exact = th.parity_gradient_variance(G)
        for key in ("variance", "parseval", "bound"):
            stats[key][s] = exact[key]
        stats["mc"][s], stats["mc_se"][s] = th.parity_gradient_variance_by_degree(
            G, max(2, exp["probe_parities"] // (d + 1)), data.rng(run.seed, light.PARITY_DEGREE_PROBE, d, s))
    subsets = np.zeros((S, d))
    for s in range(S):
        subsets[s, data.rng(run.seed, light.PARITY_SUBSET, d, s).choice(d, d // 2, replace=False)] = 1.0
    mask = torch.as_tensor(subsets)
    gen = torch.Generator().manual_seed(data.derive_seed(run.seed, light.PARITY_STREAM, d) % 2**63)
    B = exp["batch_size"]

    def label(x):  # x (M, n, d) → Π_{i∈v} x_i (M, n, 1)
        return torch.where(mask[:, None, :] > 0, x, torch.ones_like(x)).prod(-1, keepdim=True)

    def batches(step):
        x = 1.0 - 2.0 * torch.randint(0, 2, (S, B, d), generator=gen, dtype=torch.float64)
        return x, label(x)

    xt = torch.as_tensor(1.0 - 2.0 * data.rng(run.seed, light.PARITY_TEST, d).integers(0, 2, (exp["n_test"], d)))
    yt = label(xt.expand(S, -1, -1))[..., 0]
    forward = vmap(partial(deep_mlp.forward, activation="relu"), in_dims=(0, None))

    def evaluate(p):
        return {"accuracy": (torch.sign(forward(p, xt)[..., 0]) == yt).double().mean(-1)}

    steps = sorted({round(i * exp["steps"] / exp["checkpoints"]) for i in range(exp["checkpoints"] + 1)})
    result = train_ensemble(params, partial(deep_mlp.squared_loss, activation="relu"), batches,
                            torch.full((S,), exp["lr"], dtype=torch.float64), steps, evaluate, batch_in_dims=0,
                            log=run.log_file)
    run.log(f"d = {d}: gradient variance / 2^−d E‖g‖² = {np.mean(stats['variance'] / stats['parseval']):.4f}, "
            f"final accuracy {np.nanmean(result.metrics['accuracy'][:, -1]):.3f}")
    dims = ("d", "parity_seed")
    ex = lambda v: v[None]  # noqa: E731
    return xr.Dataset(
        {
            "grad_variance": (dims, ex(stats["variance"]), {
                "long_name": "variance over all 2^d parities of ∇F_v at initialisation (exact, Walsh–Hadamard)",
                "units": "1"}),
            "grad_parseval": (dims, ex(stats["parseval"]), {"long_name": "2^−d E_x‖∇p(x)‖²", "units": "1"}),
            "grad_bound": (dims, ex(stats["bound"]), {"long_name": "G² 2^−d, G² = max_x ‖∇p(x)‖²", "units": "1"}),
            "grad_variance_mc": (dims, ex(stats["mc"]), {
                "long_name": "variance of ∇F_v over parities drawn by degree (stratified Monte Carlo)", "units": "1"}),
            "grad_variance_mc_se": (dims, ex(stats["mc_se"]), {
                "long_name": "standard error of the Monte Carlo variance", "units": "1"}),
            "parity_accuracy": (("d", "parity_seed", "step"), result.metrics["accuracy"][None], {
                "long_name": "test accuracy on the parity of ⌊d/2⌋ bits", "units": "1"}),
            "parity_status": (dims, ex(_status(result.diverged_step)), {"long_name": "member status (ok / diverged)"}),
        },
        coords={"d": [d], "parity_seed": np.arange(S), "step": steps},
        attrs={"parity_hidden": H, "parity_batch_size": B, "parity_lr": exp["lr"],
               "parity_probe_parities": exp["probe_parities"]},
    )


def collect(run: Run, cells: list):
    import xarray as xr

    ds = xr.merge(cells, join="outer", compat="no_conflicts", combine_attrs="drop_conflicts")
    for name in ds.data_vars:
        if "status" in name:
            ds[name] = ds[name].astype(str)
    return ds


# ---------------------------------------------------------------------------------------------------- theory


def theory(run: Run, metrics):
    """Closed forms beside each panel (shared/reference/theory.md, section 10)."""
    import xarray as xr

    k, N = metrics["k"].values, metrics["units"].values
    upper = np.stack([th.shallow_upper(int(kk), N) for kk in k])
    lower = np.stack([th.shallow_lower(int(kk), N) for kk in k])
    n_pts = int(metrics.attrs.get("tent_points", 2048))
    x = (np.arange(n_pts) + 0.5) / n_pts
    built = np.array([[np.mean((th.shallow_forward(*th.shallow_construction(int(kk), int(nn)), x)
                                - th.sawtooth(x, int(kk))) ** 2) for nn in N] for kk in k])
    depths = metrics["depth"].values
    width = int(metrics.attrs.get("regions_width", run.exp["regions"]["width"]))
    lam = metrics["lam"].values
    d = metrics["d"].values
    pn = metrics["product_n"].values
    coef = np.array([th.product_tree_mse_coefficient(int(nn)) for nn in pn])
    return xr.Dataset(
        {
            "tent_upper": (("k", "units"), upper, {
                "long_name": "constructive upper bound (1/12)(1 − (N − ½)/2^k), 0 from N = 2^k", "units": "1"}),
            "tent_upper_built": (("k", "units"), built, {
                "long_name": "MSE of the explicit N-unit construction on the training grid", "units": "1"}),
            "tent_lower": (("k", "units"), lower, {
                "long_name": "lower bound (1/24)(1 − (2t + 2)/2^k), t = N + 1 pieces", "units": "1"}),
            "deep_units": (("k",), 2 * k, {"long_name": "hidden units of the exact deep network (2 a layer)",
                                           "units": "1"}),
            "regions_max_deep": (("depth",), th.regions_deep_max(2, width, depths).astype(float), {
                "long_name": "Montúfar et al. 2014 construction: regions of L layers of width n, 2 inputs",
                "units": "1"}),
            "regions_max_shallow": (("depth",), th.regions_shallow_max(2, width * depths).astype(float), {
                "long_name": "maximal regions of one hidden layer of L·n units, 2 inputs", "units": "1"}),
            "regions_upper_deep": (("depth",), np.array([th.regions_upper(2, [width] * int(L)) for L in depths],
                                                        dtype=float), {
                "long_name": "upper bound Π_l Σ_{j≤2} binom(n, j) for L layers of width n", "units": "1"}),
            "product_gate_theory": (("lam",), th.product_gate_error_coefficient() * lam**2, {
                "long_name": "leading term |σ''''(0)/(6σ''(0))| · 2 λ² of the gate's largest error", "units": "1"}),
            "product_tree_theory": (("product_n", "lam"), coef[:, None] * lam[None, :] ** 4, {
                "long_name": "C_n λ⁴: leading MSE / Var Π x_i of the binary tree of softplus gates (closed form)",
                "units": "1"}),
            "product_tree_neurons": (("product_n",), 4 * (pn - 1), {
                "long_name": "neurons of the tree of gates, 4(n − 1)", "units": "1"}),
            "product_tree_layers": (("product_n",), [th.product_tree_layers(int(nn)) for nn in pn], {
                "long_name": "hidden layers of the tree of gates, ⌈log2 n⌉", "units": "1"}),
            "product_shallow_neurons": (("product_n",), 2**pn, {
                "long_name": "neurons of the exact one-hidden-layer identity, 2^n", "units": "1"}),
            "product_net_init": (("product_n",), np.ones(len(pn)), {
                "long_name": "MSE / Var Π x_i of f = 0 (the networks at initialisation)", "units": "1"}),
            "parity_fraction": (("d",), 2.0 ** -d.astype(float), {
                "long_name": "2^−d: bound on Var_v ∇F_v / E‖∇p‖² (Parseval)", "units": "1"}),
            "parity_chance": (("d",), np.full(len(d), 0.5), {"long_name": "chance accuracy", "units": "1"}),
        },
        coords={"k": k, "units": N, "depth": depths, "lam": lam, "d": d, "product_n": pn},
        attrs={"references": light.REFERENCES + "; shared/reference/theory.md section 10"},
    )


# ---------------------------------------------------------------------------------------------------- claims

# Float64 rounding of the deep network's k layers on dyadic inputs: far below 1e-9.
EXACT_TOLERANCE = 1e-9
# Midpoint rule: the grid MSE of a piecewise-linear fit differs from the integral by at most h²/24 · max|(f − Δ^k)''|
# per kink interval; with slopes ≤ 2·2^k this is ≤ 4^k/(3 points²) in total (a priori, not tuned).
# Relative, product gate: the next Taylor term is O(λ⁴), ≤ 1 % of the λ² term for λ ≤ 0.1.
PRODUCT_SLOPE_TOLERANCE = 0.05
# Regions, "far below Montúfar's deep maximum": by more than a factor 2 (1 in log2) — chosen before looking.
REGIONS_FAR_LOG2 = 1.0
# Accuracy at the largest d against chance: 0.05 (a learner that found the parity is near 1).
CHANCE_TOLERANCE = 0.05
# Tree of gates at the smallest λ (≤ 0.05): the next Taylor term changes the MSE by a relative O(λ²) — measured
# ≤ 0.3 % at λ = 0.05 for n ≤ 8 — so 2 % relative, with the Monte Carlo error as the uncertainty.
TREE_RELATIVE_TOLERANCE = 0.02


def _tent_bracket_note(metrics, kk: int, N: int, lo: float, hi: float, mean: float, half: float) -> str:
    """Why a shallow net's seed-mean MSE after GD lies outside [lower, constructive] ("" inside: the numbers say it).

    Above the bracket is a statement about the optimiser, not the representation: the bracket bounds the best
    N-unit network, while GD starts from random breakpoints. The note compares the MSE after GD with the
    least-squares fit on the random breakpoints GD started from, and with the constant ½ (MSE Var Δ^k on the grid)."""
    if mean - half > hi:
        n_pts = int(metrics.attrs.get("tent_points", 2048))
        x = (np.arange(n_pts) + 0.5) / n_pts
        const = float(np.mean((th.sawtooth(x, kk) - 0.5) ** 2))
        ok = metrics["tent_status"].sel(k=kk, units=N) == "ok"
        start = float(metrics["tent_mse_random_features"].sel(k=kk, units=N).where(ok).mean())
        best = float(metrics["tent_mse"].sel(k=kk, units=N).where(ok).min())
        steps = metrics.attrs.get("tent_steps", "the")
        near = "nearer" if abs(mean - const) < abs(mean - hi) else "farther from"
        return (f"a real result about the optimiser, not the representation: GD from random breakpoints stays near "
                f"where it started — {steps} steps at the curvature-limited rate took the least-squares fit on the "
                f"random breakpoints from {start:.3g} to {mean:.3g} (best seed {best:.3g}), {near} the {const:.3g} "
                f"of the constant ½ than the construction's {hi:.3g}, because N = {N} random breakpoints miss the "
                f"2^k − 1 = {2**kk - 1} knots of Δ^k that the construction places exactly; the bracket bounds the "
                f"best {N}-unit net, not the one GD finds")
    if mean + half < lo:
        return ("below the piece-counting lower bound, which no function of N + 1 pieces can beat: the midpoint "
                "grid's error (≤ 4^k/(3 points²)) or a bug")
    return ""


def _regions_claims(metrics, theory) -> list[Claim]:
    """Linear regions at the largest depth L (figure depth_regions): (a) random and trained deep nets stay far below
    Montúfar's deep maximum (one-sided, on the per-seed shortfall log2 max − log2 count); (b) random deep and shallow
    nets of equal units have comparable counts (Hanin & Rolnick), tested against 0 with the seed spread of one
    network's log2 count as the tolerance."""
    out = []
    L = int(metrics["depth"].max())
    w = int(metrics.attrs.get("regions_width", 4))
    seeds = metrics.sizes["regions_seed"]
    mx, mx_shallow = float(theory["regions_max_deep"].sel(depth=L)), float(theory["regions_max_shallow"].sel(depth=L))
    square = f"distinct activation patterns on a {metrics.attrs.get('regions_grid', '?')}² grid of [−1, 1]² (a lower " \
             "bound on the regions meeting the square; the maximum counts the whole plane)"
    for state in ("random", "trained"):
        counts = metrics[f"regions_{state}_deep"].sel(depth=L).values
        shortfall = np.log2(mx) - np.log2(counts)
        mean, half, n = seed_interval(shortfall)
        c = float(np.nanmean(counts)) if n else float("nan")
        text = (f"{state} deep networks ({L} layers × {w}, 2 inputs{'' if state == 'random' else ', after GD'}) "
                f"realise far fewer linear regions than Montúfar's deep maximum {mx:.0f}: the shortfall "
                f"log2(maximum / count) exceeds {REGIONS_FAR_LOG2:g} (a factor 2)")
        claim = exceeds(text, "Montúfar, Pascanu, Cho & Bengio, NeurIPS 2014; Hanin & Rolnick, ICML 2019",
                        measured=mean, uncertainty=half, threshold=REGIONS_FAR_LOG2, figure="depth_regions",
                        where=f"{n} seeds, 95 % Student-t interval of the mean shortfall; {square}")
        why = {"agrees": f"the {state} nets meet {c:.3g} regions on average, ≈ 2^{mean:.1f} times fewer than the "
                         "construction, whose weights fold the input space on purpose — typical weights do not "
                         "(Hanin & Rolnick: the count grows with the number of neurons, not exponentially with depth)",
               "disagrees": f"the {state} nets meet {c:.3g} regions on average, within a factor 2 of the "
                            f"construction's {mx:.0f}: they realise most of the deep maximum",
               "inconclusive": f"{n} seeds: the interval of the shortfall straddles the factor 2 "
                               f"({c:.3g} regions against {mx:.0f})" if n >= 2 else
                               f"{n} seed(s) with a count: no interval"}[claim.verdict]
        out.append(Claim(**{**claim.as_dict(), "note": why}))
    deep = np.log2(metrics["regions_random_deep"].sel(depth=L).values)
    shallow = np.log2(metrics["regions_random_shallow"].sel(depth=L).values)
    gap, half, _ = welch_interval(deep, shallow)
    spread = float(np.sqrt((np.nanvar(deep, ddof=1) + np.nanvar(shallow, ddof=1)) / 2)) if seeds >= 2 else np.nan
    by_depth = ", ".join(f"L = {int(d)}: {float(metrics['regions_random_deep'].sel(depth=d).mean()):.3g} vs "
                         f"{float(metrics['regions_random_shallow'].sel(depth=d).mean()):.3g}"
                         for d in metrics["depth"].values)
    text = (f"at equal neuron count ({L} × {w} = {L * w} units) random deep and shallow networks have comparable "
            "numbers of linear regions: log2(deep count) − log2(shallow count) is 0 within the seed spread of one "
            "network's log2 count (the count grows with neurons, not with depth)")
    claim = judge(text, "Hanin & Rolnick, ICML 2019", theory=0.0, measured=gap, uncertainty=half,
                  tolerance=spread if np.isfinite(spread) else 0.0, figure="depth_regions",
                  where=f"{seeds} + {seeds} seeds, 95 % Welch interval of the difference of mean log2 counts; "
                        f"tolerance the pooled standard deviation {spread:.2g} of one network's log2 count; mean "
                        f"counts deep vs shallow: {by_depth}; {square}")
    if L < 2:
        claim = judge(text, "Hanin & Rolnick, ICML 2019", theory=0.0, measured=None, tolerance=0.0,
                      figure="depth_regions", note="the largest depth is 1: deep and shallow are the same network")
    elif claim.verdict == "disagrees":
        fewer = gap < 0
        claim = Claim(**{**claim.as_dict(), "note": (
            f"random deep nets meet {'fewer' if fewer else 'more'} regions than shallow ones of the same "
            f"{L * w} units, 2^{gap:.2f} ≈ {2**gap:.2g} times as many, a gap beyond one network's seed spread "
            f"{spread:.2g} in log2 — " + (
                "so depth buys no regions at initialisation (Hanin & Rolnick's point, against the exponential "
                f"deep maximum {mx:.0f}), and at width {w} it costs some: the deep count grows more slowly with L "
                f"than the shallow one (means by depth: {by_depth}; shallow maximum {mx_shallow:.0f})" if fewer else
                "against Hanin & Rolnick's count that grows with neurons, not depth"))})
    elif claim.verdict == "inconclusive" and np.isfinite(half) and np.isfinite(spread):
        claim = Claim(**{**claim.as_dict(), "note": (
            f"the 95 % interval of the difference, {gap:.2f} ± {half:.2f}, straddles the tolerance {spread:.2f} (one "
            f"network's seed spread): the mean of {seeds} seeds is known to ≈ t·√(2/{seeds}) of that spread, so "
            "settling 'within one spread' takes ≳ 10 seeds an architecture")})
    elif claim.verdict == "agrees":
        claim = Claim(**{**claim.as_dict(), "note": (
            f"deep and shallow random nets differ by 2^{gap:.2f} ≈ {2**gap:.2g}× in count, less than one network's "
            f"seed spread ({spread:.2g} in log2): at initialisation the count follows the neurons, not the depth, "
            f"far from the deep maximum {mx:.0f}")})
    out.append(claim)
    return out


def _product_claims(metrics, theory) -> list[Claim]:
    """The tree of gates against its closed form; trained deep vs shallow networks at equal neurons."""
    out = []
    pn = metrics["product_n"].values
    lam0 = float(metrics["lam"].min())
    mc = metrics["product_tree_mse"].sel(lam=lam0)
    cf = theory["product_tree_theory"].sel(lam=lam0)
    dev = np.abs(mc / cf - 1.0).values
    at = int(np.argmax(dev))
    pts = metrics.attrs.get("product_tree_points")
    u = 2.0 * float((metrics["product_tree_mse_se"].sel(lam=lam0) / cf).values[at])
    out.append(judge(
        f"the binary tree of n − 1 softplus gates (4(n − 1) neurons, ⌈log2 n⌉ layers) has MSE / Var Π x_i = C_n λ⁴ "
        f"(Monte Carlo / closed form at λ = {lam0:g}, the n of largest deviation; tolerance 2 %: the O(λ²) next "
        "term)", "Lin, Tegmark & Rolnick 2017", theory=1.0, measured=float((mc / cf).values[at]),
        uncertainty=u, tolerance=TREE_RELATIVE_TOLERANCE, figure="depth_multiply",
        note="" if u < TREE_RELATIVE_TOLERANCE else (
            f"Monte Carlo over {pts} points: twice the standard error is {u:.2g} of the closed form — the squared "
            "error has a heavy tail (it grows as Π x_i² toward the corners) — so more tree_points are needed"),
        where=f"n ∈ {list(map(int, pn))}, worst n = {int(pn[at])}; {pts} points"))
    layers = metrics["layers"].values
    steps = metrics.attrs.get("product_net_steps")
    for nn in pn:
        nn = int(nn)
        deep_L = min(th.product_tree_layers(nn), int(layers.max()))
        if nn < 4 or deep_L < 2 or 1 not in layers or deep_L not in layers:
            continue
        tree = float(metrics["product_tree_mse"].sel(product_n=nn, lam=lam0))
        for b in metrics["budget"].values:
            N = int(b) * nn
            if N < 4 * nn:
                continue
            best = metrics["product_net_best"].sel(product_n=nn, budget=b)
            shallow, deep = best.sel(layers=1).values, best.sel(layers=deep_L).values
            gap, half, _ = welch_interval(shallow, deep)
            can_buy = float(np.nanmean(shallow)) - tree
            zero = float(metrics["product_test_second_moment"].sel(product_n=nn))  # the error of f = 0
            if np.isfinite(gap) and gap - half > 0 and np.nanmean(deep) > 0.5 * zero:
                note = (f"deeper is significantly lower, but both stay near the error {zero:.3g} of f = 0 on this "
                        f"test set (one layer {np.nanmean(shallow):.3g}, {deep_L} layers {np.nanmean(deep):.3g}): "
                        "the difference is noise fitted by one layer or an early start out of the plateau, not the "
                        "product learned")
            elif np.isfinite(gap) and gap - half > 0:
                note = (f"depth helps significantly: one layer {np.nanmean(shallow):.3g}, {deep_L} layers "
                        f"{np.nanmean(deep):.3g} (95 % Student-t interval of the difference excludes 0)")
            elif np.isfinite(gap) and gap + half < 0:
                note = (f"the deep nets train worse: {deep_L} narrow layers of ≈{N // deep_L} tanh units reach "
                        f"{np.nanmean(deep):.3g} against {np.nanmean(shallow):.3g} for one layer in {steps} plain SGD "
                        "steps — the tree of gates exists at this size, but SGD does not find it")
            elif np.nanmean(shallow) > 0.5 * zero and np.nanmean(deep) > 0.5 * zero:
                note = (f"neither depth learns the product of {nn} inputs in {steps} SGD steps (both near the "
                        f"f = 0 error 1): Π x_i is orthogonal to every function of fewer inputs, like a parity, so "
                        f"SGD from f = 0 starts without signal")
            else:
                note = f"{len(shallow)} seeds: the difference's 95 % interval ±{half:.2g} straddles 0"
            out.append(judge(
                f"n = {nn}, N = {N} neurons: {deep_L} hidden layers (the tree's depth ⌈log2 n⌉) reach a lower "
                f"test MSE / Var Π x_i than one (difference 1 layer − {deep_L} layers, each at its best learning "
                "rate; theory: positive, at most the shallow error less the tree's C_n λ⁴, which N ≥ 4(n − 1) "
                "neurons afford; tolerance the same, so agrees = a difference in (0, 2 × theory])",
                "Lin, Tegmark & Rolnick 2017", theory=can_buy, measured=gap, uncertainty=half,
                tolerance=max(can_buy, 0.0),
                figure="depth_multiply", note=note,
                where=f"{int(np.isfinite(shallow).sum())} + {int(np.isfinite(deep).sum())} seeds, {steps} SGD steps; "
                      "95 % Student-t (Welch) interval"))
    return out


def claims(metrics, theory) -> list[Claim]:
    out = []
    k = metrics["k"].values
    out.append(judge(
        "the k-layer network of 2 ReLU units a layer computes Δ^k exactly (largest error over k)",
        "Telgarsky, COLT 2016", theory=0.0, measured=float(metrics["deep_max_error"].max()),
        tolerance=EXACT_TOLERANCE, where="k ∈ " + ", ".join(map(str, k))))
    ok = metrics["tent_status"] == "ok"
    mse = metrics["tent_mse"].where(ok)
    best = mse.min("tent_seed")
    short = float((theory["tent_lower"] - best).max())
    n_pts = int(metrics.attrs.get("tent_points", 2048))
    out.append(judge(
        "no shallow net of N units beats the piece-counting lower bound (largest shortfall best MSE − bound)",
        "Telgarsky, COLT 2016", theory=0.0, measured=max(short, 0.0), tolerance=4.0 ** k.max() / (3 * n_pts**2),
        where=f"all k, N, {metrics.sizes['tent_seed']} seeds; midpoint grid of {n_pts}"))
    for kk in k:
        N = 2 * int(kk)
        if N not in metrics["units"].values:
            continue
        lo, hi = float(theory["tent_lower"].sel(k=kk, units=N)), float(theory["tent_upper"].sel(k=kk, units=N))
        mean, half, n = seed_interval(mse.sel(k=kk, units=N).values)
        out.append(judge(
            f"k = {int(kk)}: a shallow net with the deep net's {N} units lands in the bracket [lower, constructive] "
            "(seed-mean MSE after GD)", "Telgarsky, COLT 2016", theory=(lo + hi) / 2,
            measured=mean, uncertainty=half, tolerance=(hi - lo) / 2,
            note=_tent_bracket_note(metrics, int(kk), N, lo, hi, mean, half),
            where=f"bracket [{lo:.4g}, {hi:.4g}]; tolerance = half the bracket (the theory's own width); {n} seeds, "
                  "95 % Student-t interval"))
    out += _regions_claims(metrics, theory)
    lam = metrics["lam"].values
    small = lam <= 0.1 + 1e-12
    err = metrics["product_gate_error"].values
    if small.sum() >= 2:
        slope = float(np.polyfit(np.log(lam[small]), np.log(err[small]), 1)[0])
        out.append(judge("the 4-neuron product gate's error scales as λ² (log–log slope, λ ≤ 0.1)",
                         "Lin, Tegmark & Rolnick 2017", theory=2.0, measured=slope,
                         tolerance=PRODUCT_SLOPE_TOLERANCE, where=f"λ ∈ {list(lam[small])}"))
    out.append(judge("the 2^n-neuron identity Σ_s (Π s)(s·x)^n/(2^n n!) equals Π x_i (largest error over n)",
                     "Lin, Tegmark & Rolnick 2017", theory=0.0,
                     measured=float(metrics["product_identity_error"].max()), tolerance=1e-10,
                     where=f"n = 2 … {int(metrics['n_inputs'].max())}"))
    out += _product_claims(metrics, theory)
    d = int(metrics["d"].max())
    mc = metrics["grad_variance_mc"].sel(d=d).values
    exact = metrics["grad_variance"].sel(d=d).values
    se = metrics["grad_variance_mc_se"].sel(d=d).values
    out.append(judge(
        f"d = {d}: the variance over parities drawn by degree (stratified Monte Carlo) estimates the exact Var_v ∇F_v "
        "(seed mean, relative to the exact; tolerance twice the estimate's own standard error)",
        "Shalev-Shwartz, Shamir & Shammah, ICML 2017", theory=1.0, measured=float(np.mean(mc) / np.mean(exact)),
        tolerance=2.0 * float(np.sqrt(np.sum(se**2))) / len(se) / float(np.mean(exact)), figure="depth_parity",
        where=f"{metrics.sizes['parity_seed']} seeds, {metrics.attrs.get('parity_probe_parities', '?')} parities "
              "drawn a seed"))
    ratio_exact = (metrics["grad_variance"] / metrics["grad_parseval"]).sel(d=d).values
    bound = (metrics["grad_bound"] / metrics["grad_parseval"]).sel(d=d).values * 2.0**-d
    out.append(judge(
        f"d = {d}: Var_v ∇F_v / E‖∇p‖² equals 2^−d (the bound is tight; relative to 2^−d)",
        "Shalev-Shwartz, Shamir & Shammah, ICML 2017", theory=1.0, measured=float(np.mean(ratio_exact)),
        tolerance=float(np.max(bound)), figure="depth_parity",
        where=f"tolerance 2^−d G²/E‖∇p‖², the size of the exact correction term; bound G² 2^−d/E‖∇p‖² up to "
              f"{float(np.max(bound)):.3g}"))
    acc = metrics["parity_accuracy"].where(metrics["parity_status"] == "ok").sel(d=d).isel(step=-1).values
    mean, half, n = seed_interval(acc)
    out.append(judge(
        f"d = {d}: SGD on a parity of {d // 2} bits stays at chance (final test accuracy)",
        "Shalev-Shwartz, Shamir & Shammah, ICML 2017", theory=0.5, measured=mean, uncertainty=half,
        tolerance=CHANCE_TOLERANCE, figure="depth_parity", where=f"{n} seeds, 95 % Student-t interval"))
    return out
