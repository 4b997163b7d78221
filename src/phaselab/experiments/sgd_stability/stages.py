"""sgd_stability's stages: the digits data of both parts, the bad-minima ensemble (pretraining on random labels, then
the true labels, without and with explicit regularisation: weight decay, momentum, augmentation by pixel shifts),
the coupled stability runs, the bounds, and the claims."""

from __future__ import annotations

import numpy as np

from phaselab.experiment import Claim, Run, exceeds, judge, seed_interval, student_t_quantile
from phaselab.experiments.sgd_stability import (
    INIT,
    INITS,
    MODELS,
    NOISY_COPIES,
    ORDER,
    RANDOM_LABELS,
    REPLACEMENT,
    SHIFTS,
    SPLIT,
    STABILITY_INIT,
    STABILITY_ORDER,
    STABILITY_SPLIT,
    WITH_AUGMENTATION,
    WITH_MOMENTUM,
    WITH_WEIGHT_DECAY,
    PartCell,
)

ONE = {"units": "1"}


# ----------------------------------------------------------------------------------------------------------------
# data
# ----------------------------------------------------------------------------------------------------------------
def pixel_shifts(images: np.ndarray, shift: int) -> np.ndarray:
    """Every translation of the (N, h, w) images by (dy, dx) ∈ [−shift, shift]² (row-major in dy, dx: the
    identity at index K // 2), pixels moved in from outside the frame 0: (K = (2 shift + 1)², N, h, w)."""
    h, w = images.shape[-2:]
    pad = np.pad(images, ((0, 0), (shift, shift), (shift, shift)))
    return np.stack([pad[:, shift - dy:shift - dy + h, shift - dx:shift - dx + w]
                     for dy in range(-shift, shift + 1) for dx in range(-shift, shift + 1)])


def bad_minima_data(config_seed: int, exp: dict) -> dict[str, np.ndarray]:
    """One train/test split of the standardised digits, and per seed the pretraining set: ``noisy_copies`` copies
    of every training input plus N(0, noise_std²) pixel noise, each with a label drawn uniformly from the 10
    classes (x_noisy (S, K n, 64), y_noisy (S, K n)). With augmentation among the regularisations, also every
    ±shift translation of the training inputs (x_shifted (K, n, 64)), made on the standardised 8×8 images with 0
    (the pixel's mean) moved in: shifting the raw images instead would put values up to 16/σ into the nearly
    constant border pixels (σ → 0), hundreds of standard deviations, where the standardised shift keeps every
    input on the scale the network sees unshifted."""
    from phaselab import data

    bad = exp["bad_minima"]
    x, labels = data.load_digits_standardised()
    tr, te = data.split(len(x), bad["n_train"], data.rng(config_seed, SPLIT))
    K, n = bad["noisy_copies"], bad["n_train"]
    xs, ys = [], []
    for s in range(bad["seeds"]):
        gen = data.rng(config_seed, NOISY_COPIES, s)
        xs.append((x[tr][None] + bad["noise_std"] * gen.standard_normal((K, n, x.shape[1]))).reshape(K * n, -1))
        ys.append(data.rng(config_seed, RANDOM_LABELS, s).integers(0, 10, K * n))
    out = {"x_train": x[tr], "y_train": labels[tr], "x_test": x[te], "y_test": labels[te],
           "x_noisy": np.stack(xs).astype(np.float32), "y_noisy": np.stack(ys).astype(np.int64)}
    if set(bad["regularisations"]) & set(WITH_AUGMENTATION):
        out["x_shifted"] = pixel_shifts(x[tr].reshape(n, 8, 8), bad["shift"]).reshape(-1, n, x.shape[1])
    return out


def unit_inputs(x: np.ndarray) -> np.ndarray:
    """[x, 1] / ‖[x, 1]‖: a bias coordinate appended, every input scaled to norm 1 (so L = 1, β = 1/4)."""
    z = np.concatenate([x, np.ones((len(x), 1), dtype=x.dtype)], axis=1).astype(np.float64)
    return z / np.linalg.norm(z, axis=1, keepdims=True)


def stability_data(config_seed: int, exp: dict) -> dict[str, np.ndarray]:
    """Parity of the digit (even +1, odd −1) from unit-norm inputs: a training set of n, per pair one replacement
    example (from outside it) and the index it replaces, and the remaining digits as test set."""
    from phaselab import data

    stab = exp["stability"]
    x, labels = data.load_digits_standardised()
    z, y = unit_inputs(x), np.where(labels % 2 == 0, 1.0, -1.0)
    n, P = stab["n_train"], stab["pairs"]
    order = data.rng(config_seed, STABILITY_SPLIT).permutation(len(x))
    tr, rep, te = order[:n], order[n:n + P], order[n + P:]
    return {"x_train": z[tr], "y_train": y[tr], "x_replacement": z[rep], "y_replacement": y[rep],
            "replaced": data.rng(config_seed, REPLACEMENT).integers(0, n, P), "x_test": z[te], "y_test": y[te]}


def make_data(run: Run, data_id: str) -> dict[str, np.ndarray]:
    """The arrays of one part (data id: the part's name)."""
    if data_id == "bad_minima":
        return bad_minima_data(run.seed, run.exp)
    if data_id == "stability":
        return stability_data(run.seed, run.exp)
    raise ValueError(f"unknown data id {data_id!r} of experiment {run.name}")


# ----------------------------------------------------------------------------------------------------------------
# training
# ----------------------------------------------------------------------------------------------------------------
class EpochBatches:
    """``batches(step)`` for train_ensemble: per group (a seed, a pair) a fresh random permutation of the n
    training indices every epoch, cut into n // B minibatches, shared by the ``copies`` members of the group —
    adjacent members (``tiled=False``: group major) or one member in each of ``copies`` blocks (``tiled=True``:
    group minor); each member gathers its rows from its own (M, n, …) arrays."""

    def __init__(self, generators, n: int, batch_size: int, arrays, copies: int = 1, tiled: bool = False):
        import torch

        self.generators, self.n, self.B, self.arrays = generators, n, batch_size, arrays
        self.copies, self.tiled = copies, tiled
        self.per_epoch = n // batch_size
        self.epoch, self.perm = -1, None
        self.rows = torch.arange(arrays[0].shape[0], device=arrays[0].device)[:, None]

    def __call__(self, step: int):
        import torch

        epoch, j = divmod(step, self.per_epoch)
        if epoch != self.epoch:  # steps come in order: draw the next epoch's permutations
            self.epoch = epoch
            perm = np.stack([g.permutation(self.n) for g in self.generators])
            perm = np.tile(perm, (self.copies, 1)) if self.tiled else np.repeat(perm, self.copies, axis=0)
            self.perm = torch.as_tensor(perm, device=self.rows.device)
        idx = self.perm[:, j * self.B:(j + 1) * self.B]
        return tuple(a[self.rows, idx] for a in self.arrays)


class ShiftedBatches:
    """Data augmentation on top of :class:`EpochBatches`: in the batch of each member in ``rows``, every example
    replaced by one of its K translations (``shifted``: (K, n, d)), drawn uniformly for every example and step
    from the generator of the member's group (``groups[i]`` for ``rows[i]``), so that the members of a group (a
    seed) see the same shifts of the same examples."""

    def __init__(self, batches: EpochBatches, shifted, rows, groups, generators):
        import torch

        self.batches, self.shifted, self.generators = batches, shifted, generators
        self.rows = torch.as_tensor(np.asarray(rows), device=shifted.device)
        self.groups = np.asarray(groups)
        self.epoch, self.draws = -1, None

    def __call__(self, step: int):
        import torch

        x, *rest = self.batches(step)  # x: a fresh gather, safe to overwrite
        per_epoch, B = self.batches.per_epoch, self.batches.B
        epoch, j = divmod(step, per_epoch)
        if epoch != self.epoch:  # one draw per (group, step, example) for the epoch, like its permutation
            self.epoch = epoch
            draws = np.stack([g.integers(0, self.shifted.shape[0], (per_epoch, B)) for g in self.generators])
            self.draws = torch.as_tensor(draws[self.groups], device=self.shifted.device)
        idx = self.batches.perm[self.rows, j * B:(j + 1) * B]
        x[self.rows] = self.shifted[self.draws[:, j], idx]
        return (x, *rest)


def train_bad_minima(run: Run, arrays: dict):
    """Pretrain every seed on the random labels of its noisy copies, then train 2 inits × regularisations × seeds
    members on the true labels; test and training accuracy every epoch."""
    import torch
    import xarray as xr
    from torch.func import vmap

    from phaselab import data
    from phaselab.engines.ensemble import MLPSpec, train_ensemble
    from phaselab.models import deep_mlp
    from phaselab.vocabulary import STATUS_DIVERGED, STATUS_OK

    bad, device, dt = run.exp["bad_minima"], run.device, torch.float32
    S, n, B = bad["seeds"], bad["n_train"], bad["batch_size"]
    t = {k: torch.as_tensor(v, device=device) for k, v in arrays.items()}
    for k in ("x_train", "x_test", "x_noisy"):
        t[k] = t[k].to(dt)
    sizes = [t["x_train"].shape[1], *bad["widths"], 10]
    init_seeds = [data.derive_seed(run.seed, INIT, s) for s in range(S)]
    params0 = {k: v.to(device) for k, v in deep_mlp.init_mlp(sizes, init_seeds, "relu", dtype=dt).items()}
    # the explicit batched MLP path of the engine (weight decay λ‖θ‖²/2 and heavy ball as train_ensemble options, in
    # torch.optim.SGD's form); the functional loss is the reference it is tested against
    spec = MLPSpec("relu", "cross_entropy")

    def loss(params, batch):
        return deep_mlp.cross_entropy(params, batch, "relu")

    forward = vmap(lambda p, x: deep_mlp.forward(p, x, "relu"), in_dims=(0, None))

    # phase 1: SGD on random labels of noisy copies (no regularisation), one member per seed
    Kn = t["x_noisy"].shape[1]
    pre_per_epoch = Kn // B
    pre_steps = [e * pre_per_epoch for e in range(bad["pretrain_epochs"] + 1)]
    run.log(f"bad minima: MLP {sizes} (ReLU), {S} seeds; pretraining on {Kn} noisy copies with random labels, "
            f"{bad['pretrain_epochs']} epochs of {pre_per_epoch} steps, B = {B}, lr {bad['pretrain_lr']}")

    def pre_eval(p):
        own = vmap(lambda q, x: deep_mlp.forward(q, x, "relu"))(p, t["x_noisy"])
        return {"fit": (own.argmax(-1) == t["y_noisy"]).to(dt).mean(-1),
                "test": (forward(p, t["x_test"]).argmax(-1) == t["y_test"]).to(dt).mean(-1)}

    pre_batches = EpochBatches([data.rng(run.seed, ORDER, 0, s) for s in range(S)], Kn, B,
                               (t["x_noisy"], t["y_noisy"]))
    pre = train_ensemble(params0, loss, pre_batches, torch.full((S,), bad["pretrain_lr"], dtype=dt, device=device),
                         [pre_steps[-1]], pre_eval, batch_in_dims=0,
                         divergence_threshold=bad["divergence_threshold"], log=run.log_file, model=spec)
    run.log(f"pretrained in {pre.seconds:.1f}s: random labels fitted {np.round(pre.metrics['fit'][:, -1], 3)}, "
            f"test accuracy {np.round(pre.metrics['test'][:, -1], 3)}")

    # phase 2: members (init, regularisation, seed), seed minor; the members of a seed share its batch order
    regs = list(bad["regularisations"])
    members = [(i, r, s) for i in range(len(INITS)) for r in range(len(regs)) for s in range(S)]
    start = {0: params0, 1: pre.params}
    params = {k: torch.stack([start[i][k][s] for i, _, s in members]) for k in params0}
    wd = torch.tensor([bad["weight_decay"] if regs[r] in WITH_WEIGHT_DECAY else 0.0 for _, r, _ in members],
                      dtype=dt, device=device)
    momentum = None  # plain SGD unless some member has momentum
    if set(regs) & set(WITH_MOMENTUM):
        momentum = torch.tensor([bad["momentum"] if regs[r] in WITH_MOMENTUM else 0.0 for _, r, _ in members],
                                dtype=dt, device=device)
    M = len(members)
    x_tr = t["x_train"].expand(M, *t["x_train"].shape)
    y_tr = t["y_train"].expand(M, *t["y_train"].shape)
    per_epoch = n // B
    steps = [e * per_epoch for e in range(bad["epochs"] + 1)]
    order = EpochBatches([data.rng(run.seed, ORDER, 1, s) for s in range(S)], n, B, (x_tr, y_tr),
                         copies=len(INITS) * len(regs), tiled=True)
    shifted = [m for m, (_, r, _) in enumerate(members) if regs[r] in WITH_AUGMENTATION]
    if shifted:
        order = ShiftedBatches(order, t["x_shifted"].to(dt), shifted, [members[m][2] for m in shifted],
                               [data.rng(run.seed, SHIFTS, s) for s in range(S)])

    def evaluate(p):
        out_tr, out_te = forward(p, t["x_train"]), forward(p, t["x_test"])
        ce = torch.nn.functional.cross_entropy(out_tr.flatten(0, 1), t["y_train"].repeat(out_tr.shape[0]),
                                               reduction="none").view(out_tr.shape[0], -1).mean(-1)
        return {"train_accuracy": (out_tr.argmax(-1) == t["y_train"]).to(dt).mean(-1),
                "test_accuracy": (out_te.argmax(-1) == t["y_test"]).to(dt).mean(-1),
                "train_cross_entropy": ce,
                "weight_norm": torch.stack([v.reshape(v.shape[0], -1).pow(2).sum(1) for v in p.values()]).sum(0).sqrt()}

    run.log(f"training {M} members on the true labels: {bad['epochs']} epochs of {per_epoch} steps, lr {bad['lr']}, "
            f"regularisations {regs} (weight decay {bad['weight_decay']}, momentum {bad['momentum']}, shifts of "
            f"±{bad['shift']} pixels)")
    result = train_ensemble(params, loss, order, torch.full((M,), bad["lr"], dtype=dt, device=device), steps,
                            evaluate, batch_in_dims=0, divergence_threshold=bad["divergence_threshold"],
                            log=run.log_file, momentum=momentum, weight_decay=wd, model=spec)
    diverged = result.diverged_step.copy()
    pre_bad = pre.diverged_step >= 0
    for m, (i, _, s) in enumerate(members):
        if i == 1 and pre_bad[s]:  # a pretraining that diverged leaves no adversarial initialisation
            diverged[m] = 0
    bad_member = diverged >= 0
    run.log(f"trained in {result.seconds:.1f}s, {int(bad_member.sum())} diverged")

    shape = (len(INITS), len(regs), S)

    def grid(a):
        a = np.array(a, dtype=float)
        a[bad_member] = np.nan
        return a.reshape(*shape, *a.shape[1:])

    dims = ("init", "regularisation", "seed")
    variables = {
        "test_accuracy": {**ONE, "long_name": "test accuracy (true labels)"},
        "train_accuracy": {**ONE, "long_name": "training accuracy (true labels)"},
        "train_cross_entropy": {**ONE, "long_name": "training cross-entropy (true labels, without the penalty)"},
        "weight_norm": {**ONE, "long_name": "parameter norm ‖θ‖₂"},
    }
    ds = xr.Dataset(
        {name: (dims + ("epoch",), grid(result.metrics[name]), a) for name, a in variables.items()}
        | {
            "status": (dims, np.where(bad_member, STATUS_DIVERGED, STATUS_OK).reshape(shape).astype(str),
                       {"long_name": "member status (ok / diverged)"}),
            "diverged_at": (dims, np.where(bad_member, diverged, np.nan).astype(float).reshape(shape),
                            {"units": "steps", "long_name": "checkpoint at which the member was found diverged"}),
            "pretrain_fit": (("seed",), np.where(pre_bad, np.nan, pre.metrics["fit"][:, -1]),
                             {**ONE, "long_name": "pretraining: accuracy on the random labels of the noisy copies"}),
            "pretrain_test_accuracy": (("seed",), np.where(pre_bad, np.nan, pre.metrics["test"][:, -1]),
                                       {**ONE, "long_name": "pretraining: test accuracy (true labels)"}),
        },
        coords={"init": list(INITS), "regularisation": regs, "seed": np.arange(S),
                "epoch": np.arange(bad["epochs"] + 1)},
        attrs={"bad_minima_seconds": pre.seconds + result.seconds},
    )
    return ds


def _logistic(params, x):
    return x @ params["w"]


def _mlp(params, x):
    from phaselab.models import deep_mlp

    return deep_mlp.forward(params, x, "tanh")[..., 0]


def _softplus_loss(model):
    import torch

    def loss(params, batch):
        x, y = batch
        return torch.nn.functional.softplus(-y * model(params, x)).mean()

    return loss


def train_stability(run: Run, arrays: dict):
    """For each model, the 2 × pairs members (S, S′ of every pair: same initialisation, same sample order) trained
    by SGD with a constant step; at every epoch the pair's parameter distance and the losses and errors of the
    S-member on its training set and on the test set."""
    import torch
    import xarray as xr
    from torch.func import vmap

    from phaselab import data
    from phaselab.engines.ensemble import train_ensemble
    from phaselab.models import deep_mlp
    from phaselab.vocabulary import STATUS_DIVERGED, STATUS_OK

    stab, device, dt = run.exp["stability"], run.device, torch.float32
    P, n, B = stab["pairs"], stab["n_train"], stab["batch_size"]
    t = {k: torch.as_tensor(v, dtype=dt, device=device) for k, v in arrays.items() if k != "replaced"}
    d = t["x_train"].shape[1]
    # member 2p trains on S, member 2p + 1 on S′ = S with example replaced[p] swapped for replacement p
    x_m = t["x_train"].repeat(2 * P, 1, 1)
    y_m = t["y_train"].repeat(2 * P, 1)
    rows = 2 * np.arange(P) + 1
    x_m[rows, arrays["replaced"]] = t["x_replacement"]
    y_m[rows, arrays["replaced"]] = t["y_replacement"]
    per_epoch = n // B
    steps = [e * per_epoch for e in range(stab["epochs"] + 1)]
    init_seeds = [data.derive_seed(run.seed, STABILITY_INIT, p) for p in range(P)]
    inits = {
        "logistic": {"w": torch.zeros(2 * P, d, dtype=dt, device=device)},
        "mlp": {k: v.to(device) for k, v in deep_mlp.init_mlp([d, stab["width"], 1], np.repeat(init_seeds, 2).tolist(),
                                                             "tanh", dtype=dt).items()},
    }
    heads = {"logistic": _logistic, "mlp": _mlp}
    lrs = {"logistic": stab["lr"], "mlp": stab["mlp_lr"]}
    out, seconds, status, diverged_at = {}, 0.0, [], []
    for model in MODELS:
        head = heads[model]
        loss = _softplus_loss(head)
        on_test = vmap(head, in_dims=(0, None))
        on_own = vmap(head)

        def evaluate(p, on_own=on_own, on_test=on_test):
            flat = torch.cat([v.reshape(v.shape[0], -1) for v in p.values()], 1).view(P, 2, -1)
            dist = (flat[:, 0] - flat[:, 1]).norm(dim=-1)
            f_tr, f_te = on_own(p, x_m), on_test(p, t["x_test"])
            loss_tr = torch.nn.functional.softplus(-y_m * f_tr).mean(-1)
            l_te = torch.nn.functional.softplus(-t["y_test"] * f_te)
            loss_te = l_te.mean(-1)
            sup = (l_te.view(P, 2, -1)[:, 0] - l_te.view(P, 2, -1)[:, 1]).abs().amax(-1)
            return {"distance": dist.repeat_interleave(2), "loss_difference": sup.repeat_interleave(2),
                    "train_loss": loss_tr, "test_loss": loss_te,
                    "train_error": (y_m * f_tr <= 0).to(dt).mean(-1),
                    "test_error": (t["y_test"] * f_te <= 0).to(dt).mean(-1)}

        batches = EpochBatches([data.rng(run.seed, STABILITY_ORDER, p) for p in range(P)], n, B, (x_m, y_m),
                               copies=2)
        run.log(f"stability, {model}: {P} coupled pairs, n = {n}, d = {d}, B = {B}, step {lrs[model]}, "
                f"{stab['epochs']} epochs of {per_epoch} steps")
        result = train_ensemble(inits[model], loss, batches, torch.full((2 * P,), lrs[model], dtype=dt, device=device),
                                steps, evaluate, batch_in_dims=0, divergence_threshold=stab["divergence_threshold"],
                                log=run.log_file)
        seconds += result.seconds
        bad = (result.diverged_step.reshape(P, 2) >= 0).any(1)
        first = np.where(bad, np.where(result.diverged_step.reshape(P, 2) >= 0, result.diverged_step.reshape(P, 2),
                                       np.iinfo(np.int64).max).min(1), -1)
        status.append(np.where(bad, STATUS_DIVERGED, STATUS_OK))
        diverged_at.append(np.where(bad, first, np.nan).astype(float))
        keep = {}
        for name, values in result.metrics.items():
            v = values.reshape(P, 2, -1)[:, 0].copy()  # the S-member (distances: the same for both)
            v[bad] = np.nan
            keep[name] = v
        out[model] = keep
        run.log(f"{model} done in {result.seconds:.1f}s, {int(bad.sum())} pairs diverged")

    variables = {
        "distance": {**ONE, "long_name": "parameter distance ‖w_T − w′_T‖ of the coupled runs"},
        "loss_difference": {**ONE, "long_name": "max over test examples of |ℓ(w_T; z) − ℓ(w′_T; z)|"},
        "train_loss": {**ONE, "long_name": "training logistic loss R_S(w_T) (on S)"},
        "test_loss": {**ONE, "long_name": "test logistic loss R(w_T)"},
        "train_error": {**ONE, "long_name": "training error (on S)"},
        "test_error": {**ONE, "long_name": "test error"},
    }
    dims = ("model", "pair", "stability_epoch")
    return xr.Dataset(
        {name: (dims, np.stack([out[m][name] for m in MODELS]), a) for name, a in variables.items()}
        | {
            "pair_status": (("model", "pair"), np.stack(status).astype(str),
                            {"long_name": "pair status (ok / diverged: either run of the pair)"}),
            "pair_diverged_at": (("model", "pair"), np.stack(diverged_at),
                                 {"units": "steps", "long_name": "checkpoint at which the pair was found diverged"}),
            "step_size": (("model",), [lrs[m] for m in MODELS], {**ONE, "long_name": "constant SGD step α"}),
        },
        coords={"model": list(MODELS), "pair": np.arange(P), "stability_epoch": np.arange(stab["epochs"] + 1),
                "stability_step": ("stability_epoch", np.asarray(steps), {"units": "steps",
                                                               "long_name": "SGD steps T after the epoch"})},
        attrs={"stability_seconds": seconds},
    )


def train(run: Run, cell: PartCell, arrays: dict):
    """Train one part (bad_minima or stability)."""
    if cell.part == "bad_minima":
        return train_bad_minima(run, arrays)
    return train_stability(run, arrays)



# ----------------------------------------------------------------------------------------------------------------
# metrics, theory, claims
# ----------------------------------------------------------------------------------------------------------------
def collect(run: Run, cells: list):
    """The two parts in one Dataset (their dims are disjoint), with the settings as attributes."""
    import xarray as xr

    exp = run.exp
    ds = xr.merge(cells, join="outer", compat="no_conflicts", combine_attrs="drop_conflicts")
    for var in ("status", "pair_status"):
        ds[var] = ds[var].astype(str)
    bad, stab = exp["bad_minima"], exp["stability"]
    ds.attrs = {
        "bad_minima_widths": str(bad["widths"]), "bad_minima_n_train": bad["n_train"],
        "weight_decay": bad["weight_decay"], "bad_minima_lr": bad["lr"], "noisy_copies": bad["noisy_copies"],
        "stability_n_train": stab["n_train"], "stability_batch_size": stab["batch_size"],
        "stability_width": stab["width"],
    }
    if set(bad["regularisations"]) & set(WITH_MOMENTUM):
        ds.attrs["momentum"] = bad["momentum"]
    if set(bad["regularisations"]) & set(WITH_AUGMENTATION):
        ds.attrs["shift"] = bad["shift"]
    return ds


def theory(run: Run, metrics):
    """Hardt et al.'s bounds at every epoch for logistic regression (L and β from the data: unit-norm inputs give
    L = 1, β = 1/4), the same formula at the MLP's step as a reference (not a bound: the MLP is not convex), and
    the chance accuracy 1/10 of the digits."""
    import xarray as xr

    from phaselab.theory import stability

    stab = run.exp["stability"]
    arrays = stability_data(run.seed, run.exp)
    x = np.concatenate([arrays["x_train"], arrays["x_replacement"]])
    L, beta = stability.logistic_lipschitz(x), stability.logistic_smoothness(x)
    steps = metrics["stability_step"].values
    n = stab["n_train"]
    return xr.Dataset(
        {
            "distance_bound": (("stability_epoch",), stability.distance_bound(stab["lr"], steps, n, L),
                               {**ONE, "long_name": "logistic regression: (2L/n) Σ α_t ≥ E‖w_T − w′_T‖"}),
            "stability_bound": (("stability_epoch",), stability.stability_bound(stab["lr"], steps, n, L),
                                {**ONE, "long_name": "logistic regression: ε_stab = (2L²/n) Σ α_t ≥ E[gen. gap]"}),
            "mlp_reference": (("stability_epoch",), stability.distance_bound(stab["mlp_lr"], steps, n, L),
                              {**ONE, "long_name": "(2L/n) Σ α_t at the MLP's step (the convex bound's form; "
                                                   "not a bound for the non-convex MLP)"}),
            "lipschitz": ((), L, {**ONE, "long_name": "Lipschitz constant L = max ‖x‖ of the logistic loss"}),
            "smoothness": ((), beta, {**ONE, "long_name": "smoothness β = max ‖x‖²/4 of the logistic loss"}),
            "chance_accuracy": ((), 0.1, {**ONE, "long_name": "chance accuracy 1/10 of the digits"}),
        },
        coords={"stability_epoch": metrics["stability_epoch"].values,
                "stability_step": ("stability_epoch", steps, {"units": "steps", "long_name": "SGD steps T"})},
        attrs={"references": "Hardt, Recht & Singer 2016; shared/reference/theory.md section 11",
               "step_size_allowed": int(stability.step_size_allowed(stab["lr"], beta))},
    )


def _seed_gaps(metrics, regularisation: str) -> np.ndarray:
    """Final test-accuracy gap (random init − pretrained init) of every seed, NaN where a member diverged."""
    acc = metrics["test_accuracy"].isel(epoch=-1).sel(regularisation=regularisation)
    return (acc.sel(init="random") - acc.sel(init="pretrained")).values


def final_gap(metrics, regularisation: str):
    """Final test-accuracy gap (random init − pretrained init) per seed (paired: same seed, split and batch order),
    its mean, and the 95 % Student-t half-width of the mean; NaN where a member diverged."""
    gap = _seed_gaps(metrics, regularisation)
    gap = gap[np.isfinite(gap)]
    mean, half, n = seed_interval(gap)
    return (gap, None, None) if n < 2 else (gap, mean, half)


def _bound_ratio(values, bound):
    """Largest ratio of the pair-mean to the bound over epochs (bound > 0), and the 95 % half-width there."""
    ok = np.isfinite(values).all(-1)
    v = values[ok]
    if len(v) < 2:
        return None, None, None, int(len(v))
    mean = v.mean(0)
    half = student_t_quantile(len(v)) * v.std(0, ddof=1) / np.sqrt(len(v))  # seed_interval per epoch
    pos = bound > 0
    ratio = np.where(pos, mean / np.where(pos, bound, 1.0), -np.inf)
    i = int(np.argmax(ratio))
    return float(ratio[i]), float(half[i] / bound[i]), float(bound[-1] / mean[-1]) if mean[-1] > 0 else np.inf, len(v)


# Tolerances, fixed before any run. Liu et al.'s statements "x > 0" are signs, judged by ``exceeds`` with the 95 %
# Student-t half-width of the seed mean as the interval: agrees when it lies above 0, disagrees when below, else
# inconclusive. "A regularisation closes the gap" is judged as "the regularised gap is 0" with tolerance twice that
# half-width: agrees when 0 lies in the 95 % interval and the unregularised gap (its seed mean) does not, disagrees when
# the gap is more than 3 half-widths from 0.
# Hardt et al.'s statements are inequalities, mean/bound < 1, judged as 1 − mean/bound > 0 by ``exceeds`` with the
# 95 % half-width of the pair mean in units of the bound as the interval (the bound itself is the threshold, not a
# fitted number). Zero training error is
# literal: the least final training accuracy of the unregularised members against 1 with tolerance 0.
ZERO_GAP_HALF_WIDTHS = 2.0
REG_NAMES = {"weight_decay": "weight decay", "momentum": "heavy-ball momentum",
             "augmentation": "data augmentation (random pixel shifts)",
             "all": "weight decay, momentum and augmentation together"}


def _interval(m, h) -> str:
    return f"{m if m is None else round(m, 4)} ± {h if h is None else round(h, 4)} (95 % half-width)"


def _regularisation_claims(metrics, reg: str, gap_none) -> list[Claim]:
    """"The gap closes" (= 0 within its seed interval) and "it shrinks the gap" (paired by seed) for one
    regularisation, with notes that say why when they do not agree."""
    import dataclasses

    liu = "Liu, Papailiopoulos & Achlioptas, NeurIPS 2020"
    name = REG_NAMES[reg]
    a = metrics.attrs
    setting = {"weight_decay": f"weight decay {a.get('weight_decay', '?')}",
               "momentum": f"β = {a.get('momentum', '?')}",
               "augmentation": f"shifts of ±{a.get('shift', '?')} pixel",
               "all": f"weight decay {a.get('weight_decay', '?')}, β = {a.get('momentum', '?')}, shifts of "
                      f"±{a.get('shift', '?')} pixel"}[reg]
    gap, mean, half = final_gap(metrics, reg)
    closes = judge(f"with {name} the gap closes: final test-accuracy gap (random init − pretrained init) = 0, "
                   f"tolerance {ZERO_GAP_HALF_WIDTHS:g} × the 95 % half-width", liu, theory=0.0, measured=mean,
                   uncertainty=half, tolerance=ZERO_GAP_HALF_WIDTHS * half if half is not None else 0.0,
                   where=f"{len(gap)} seeds: gap {_interval(mean, half)}, {setting}; final test accuracy from the "
                         f"random init {_random_init_accuracy(metrics, reg):.3g} (without regularisation "
                         f"{_random_init_accuracy(metrics, 'none'):.3g})")
    m0, h0, _ = seed_interval(gap_none)  # the unregularised gap the regularised one is read against
    if closes.verdict == "disagrees":
        closes = dataclasses.replace(closes, note=(
            f"the gap {mean:+.3g} stays more than {ZERO_GAP_HALF_WIDTHS + 1:g} half-widths ({half:.2g}) from 0: at "
            f"these settings {name} leaves part of the adversarial initialisation's damage"))
    elif closes.verdict == "agrees" and not _resolved(gap_none):
        closes = dataclasses.replace(closes, note=(
            f"0 lies in the regularised gap's interval, but the gap without regularisation, {m0:+.3g} ± {h0:.2g}, "
            f"is not resolved from 0 either: at these settings there is no gap for {name} to close"))
    elif closes.verdict == "agrees" and mean + half >= m0:
        # 0 lies in the interval, but so does the unregularised gap: the seeds cannot tell closed from open
        closes = dataclasses.replace(closes, verdict="inconclusive", note=(
            f"0 lies in the interval {mean:+.3g} ± {half:.2g}, but so does the gap without regularisation "
            f"({m0:+.3g}): the seeds spread too widely to tell a closed gap from an open one"))
    elif closes.verdict == "inconclusive" and mean is not None:
        closes = dataclasses.replace(closes, note=(
            f"the gap {mean:+.3g} lies between 1 and {ZERO_GAP_HALF_WIDTHS + 1:g} half-widths ({half:.2g}) from 0: "
            f"{len(gap)} seeds cannot tell a closed gap from a small one"))
    per_seed = _seed_gaps(metrics, reg)  # paired by seed: the seeds where neither arm diverged
    ok = np.isfinite(gap_none) & np.isfinite(per_seed)
    m, h, k = seed_interval(gap_none[ok] - per_seed[ok]) if ok.any() else (None, None, 0)
    shrinks = exceeds(f"{name} shrinks the gap: gap without − gap with > 0 (paired by seed)", liu, measured=m,
                      uncertainty=h, where=f"{k} seeds: {_interval(m, h)}, {setting}")
    if shrinks.verdict != "agrees" and m is not None and np.isfinite(m):
        shrinks = dataclasses.replace(shrinks, note=(
            f"the paired reduction {m:+.3g} ± {h:.2g} does not lie above 0: at these settings the gap with {name} "
            f"is not smaller than without beyond the {k}-seed interval"
            + ("" if _resolved(gap_none) else " (the gap without regularisation is itself not resolved from 0)")))
    return [closes, shrinks]


def _random_init_accuracy(metrics, reg: str) -> float:
    """Seed mean of the final test accuracy from the random initialisation (NaN if every member diverged)."""
    acc = metrics["test_accuracy"].isel(epoch=-1).sel(init="random", regularisation=reg).values
    return float(np.nanmean(acc)) if np.isfinite(acc).any() else float("nan")


def _resolved(gaps) -> bool:
    """Whether the seed interval of the gaps lies above 0."""
    m, h, _ = seed_interval(gaps)
    return bool(np.isfinite(h) and m - h > 0)


def claims(metrics, theory) -> list[Claim]:
    """Liu et al.: zero training error; a positive test-accuracy gap without regularisation; for every
    regularisation, a gap consistent with 0 and a gap that shrinks. Hardt et al. for logistic regression: the
    coupled distance and the generalisation gap below their bounds (largest ratio over epochs), with the
    looseness at the end."""
    out = []
    liu = "Liu, Papailiopoulos & Achlioptas, NeurIPS 2020"
    fit = metrics["train_accuracy"].isel(epoch=-1).sel(regularisation="none")
    least = float(fit.min()) if int(fit.count()) else None
    out.append(judge("SGD on the true labels reaches zero training error from both initialisations (least final "
                     "training accuracy of the unregularised members)", liu, theory=1.0, measured=least,
                     uncertainty=0.0, tolerance=0.0, where=f"{int(fit.count())} members after "
                                                             f"{int(metrics['epoch'].max())} epochs",
                     note="" if least is None or least >= 1.0 else
                     f"the least member fits {least:.3g} of its training labels after {int(metrics['epoch'].max())} "
                     "epochs: too few epochs (or too small a step) to interpolate"))
    gap, mean, half = final_gap(metrics, "none")
    out.append(exceeds("without regularisation, pretraining on random labels lowers the final test accuracy: gap "
                       "(random init − pretrained init) > 0", liu, measured=mean, uncertainty=half,
                       where=f"{len(gap)} seeds: gap {_interval(mean, half)}"))
    gap_none = _seed_gaps(metrics, "none")
    for reg in metrics["regularisation"].values[1:]:
        out += _regularisation_claims(metrics, str(reg), gap_none)

    hrs = "Hardt, Recht & Singer, ICML 2016, Theorem 3.8"
    logistic = metrics.sel(model="logistic")
    for var, bound, text in (
            ("distance", "distance_bound", "coupled SGD runs on datasets differing in one example stay within "
                                           "E‖w_T − w′_T‖ ≤ (2L/n) Σ α_t"),
            ("gap", "stability_bound", "the expected generalisation gap stays below ε_stab = (2L²/n) Σ α_t")):
        values = (logistic["test_loss"] - logistic["train_loss"]) if var == "gap" else logistic[var]
        values = values.transpose("pair", "stability_epoch").values
        ratio, half, loose, k = _bound_ratio(values, theory[bound].values)
        out.append(exceeds(
            f"logistic regression (convex, L-Lipschitz): {text}: 1 − (largest ratio of the pair mean to the bound "
            f"over epochs) > 0", hrs, measured=None if ratio is None else 1.0 - ratio, uncertainty=half,
            figure="sgd_stability_coupled", where=f"{k} pairs, L = {float(theory['lipschitz']):.3g}; largest ratio "
                  f"{ratio if ratio is None else round(ratio, 4)}; the bound is "
                  f"{loose if loose is None else round(loose, 1)}× the measured mean after "
                  f"{int(metrics['stability_epoch'].max())} epochs"))
    return out
