"""The information plane stages: the 12-bit task and its training splits, one ensemble of seeds per activation with
binned I(X;T), I(T;Y) of every layer at log-spaced epochs, and the ceilings of the plane."""

from __future__ import annotations

import math

import numpy as np

from phaselab.experiment import Claim, Run, judge
from phaselab.experiments.information_plane import ActivationCell


def make_data(run: Run, data_id: str) -> dict[str, np.ndarray]:
    """The 12-bit task and every seed's training set (a random ``train_fraction`` of the 4096 inputs)."""
    from phaselab import data

    exp = run.exp
    x, y = data.twelve_bit_task(exp["data"]["threshold"])
    n_train = round(exp["data"]["train_fraction"] * len(x))
    train = np.stack([data.split(len(x), n_train, data.rng(run.seed, data.BIT_SPLIT, s))[0]
                      for s in range(exp["grid"]["seeds"])])
    return {"x": x, "y": y, "train": train}


def train(run: Run, cell: ActivationCell, arrays: dict):
    from functools import partial

    import torch
    import xarray as xr
    from torch.func import vmap

    from phaselab import data
    from phaselab.engines.ensemble import MLPSpec, train_ensemble
    from phaselab.models import deep_mlp
    from phaselab.theory.information import mutual_information
    from phaselab.vocabulary import STATUS_DIVERGED, STATUS_OK

    exp = run.exp
    act = cell.activation
    train, width = exp["train"], exp["estimator"]["bin_width"]
    device = run.device
    x = torch.as_tensor(arrays["x"], dtype=run.dtype, device=device)
    labels = torch.as_tensor(arrays["y"], device=device)
    train_idx = torch.as_tensor(arrays["train"], device=device)  # (seed, n_train)
    test_mask = torch.ones(train_idx.shape[0], len(x), dtype=torch.bool, device=device)
    test_mask.scatter_(1, train_idx, False)
    S, n_train, B = train_idx.shape[0], train_idx.shape[1], train["batch_size"]
    sizes = [x.shape[1], *exp["model"]["widths"], 2]
    params = {k: v.to(device) for k, v in deep_mlp.init_mlp(
        sizes, [data.derive_seed(run.seed, data.MLP_INIT, s) for s in range(S)], act, dtype=run.dtype).items()}
    loss = partial(deep_mlp.cross_entropy, activation=act)
    layers = vmap(partial(deep_mlp.representations, activation=act), in_dims=(0, None))
    gen = torch.Generator().manual_seed(data.derive_seed(run.seed, data.MINIBATCHES, 3, B))
    y_all = arrays["y"]

    def batches(step):
        pos = torch.randint(0, n_train, (S, B), generator=gen).to(device)
        idx = torch.gather(train_idx, 1, pos)
        return x[idx], labels[idx]

    def evaluate(p):
        reps = layers(p, x)
        reps[-1] = torch.softmax(reps[-1], -1)  # the output layer's activity: the softmax probabilities
        out = {}
        for layer, T in enumerate(reps, start=1):
            T = T.cpu().numpy()
            mi = np.array([mutual_information(T[s], y_all, width) for s in range(S)])
            out[f"ixt{layer}"], out[f"ity{layer}"] = torch.as_tensor(mi[:, 0]), torch.as_tensor(mi[:, 1])
        wrong = (reps[-1].argmax(-1) != labels).double()
        out["train_error"] = (wrong * ~test_mask).sum(1) / n_train
        out["test_error"] = (wrong * test_mask).sum(1) / test_mask.sum(1)
        out["loss"] = vmap(loss, in_dims=(0, 0))(p, (x[train_idx], labels[train_idx]))
        return out

    per_epoch = math.ceil(n_train / B)
    epoch_list = list(cell.epochs)
    run.log(f"cell {cell.id}: {sizes} {act} network, {S} seeds, SGD η = {train['lr']}, B = {B}, "
            f"{epoch_list[-1]} epochs of {per_epoch} steps")
    result = train_ensemble(params, loss, batches, torch.full((S,), train["lr"], dtype=run.dtype, device=device),
                            [e * per_epoch for e in epoch_list], evaluate, batch_in_dims=0, log=run.log_file,
                            model=MLPSpec(act, "cross_entropy"))
    n_layers = len(sizes) - 1
    mi = {k: np.stack([result.metrics[f"{k}{i}"] for i in range(1, n_layers + 1)], axis=-1) for k in ("ixt", "ity")}
    dims = ("seed", "epoch", "layer")
    ds = xr.Dataset(
        {
            "ixt": (dims, mi["ixt"], {"long_name": "I(X;T), binned estimate", "units": "bit"}),
            "ity": (dims, mi["ity"], {"long_name": "I(T;Y), binned estimate", "units": "bit"}),
            "train_error": (("seed", "epoch"), result.metrics["train_error"],
                            {"long_name": "training error", "units": "1"}),
            "test_error": (("seed", "epoch"), result.metrics["test_error"],
                           {"long_name": "error on the held-out inputs", "units": "1"}),
            "loss": (("seed", "epoch"), result.metrics["loss"],
                     {"long_name": "training cross-entropy", "units": "nat"}),
            "status": ("seed", np.where(result.diverged_step >= 0, STATUS_DIVERGED, STATUS_OK).astype(str),
                       {"long_name": "member status (ok / diverged)"}),
        },
        coords={"seed": np.arange(S), "epoch": np.asarray(epoch_list), "layer": np.arange(1, n_layers + 1)},
        attrs={"train_seconds": result.seconds},
    )
    ds = ds.expand_dims(activation=[act])
    ds["layer_width"] = ("layer", np.asarray(sizes[1:]), {"long_name": "neurons in the layer", "units": "1"})
    return ds


def collect(run: Run, cells: list):
    import xarray as xr

    exp = run.exp
    ds = xr.merge(cells, join="outer", compat="no_conflicts", combine_attrs="override")
    ds["status"] = ds["status"].astype(str)
    ds = ds.sel(activation=list(exp["grid"]["activation"]))
    train = exp["train"]
    ds.attrs = {
        "architecture": "-".join(str(v) for v in [12, *exp["model"]["widths"], 2]),
        "bin_width": exp["estimator"]["bin_width"],
        "lr": train["lr"],
        "batch_size": train["batch_size"],
    }
    return ds


def theory(run: Run, metrics):
    """The ceilings of the plane: I(X;T) ≤ H(X) = 12 bits, I(T;Y) ≤ I(X;Y) = H(Y) (data processing)."""
    import xarray as xr

    from phaselab import data
    from phaselab.theory.information import entropy_of_rows, label_entropy

    x, y = data.twelve_bit_task(run.exp["data"]["threshold"])
    return xr.Dataset({
        "input_entropy": ((), entropy_of_rows(x), {"long_name": "H(X), the ceiling of I(X;T)", "units": "bit"}),
        "label_information": ((), label_entropy(y), {"long_name": "I(X;Y) = H(Y), the ceiling of I(T;Y)",
                                                     "units": "bit"}),
    }, attrs={"experiment": run.name})


# Bits. The binned layer T is a deterministic function of X and the estimate is the plug-in over all 4096 equally
# likely inputs, i.e. the exact information of that distribution: the ceilings hold exactly, up to the rounding
# of the log2 sums (the 1e-12 bit of tests/test_information_plane.py).
ROUNDING = 1e-12


def _excess(values, ceiling: float) -> tuple[float | None, int]:
    """The largest excess of ``values`` over ``ceiling``, 0 when none exceeds it (None when nothing is finite)."""
    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v)]
    return (max(0.0, float(v.max()) - ceiling) if v.size else None), int(v.size)


def claims(metrics, theory) -> list[Claim]:
    """The ceilings drawn in the figures hold for the estimates (data processing): no layer carries more than
    I(X;Y) = H(Y) about the label, nor more than H(X) about the input. Measured: the largest excess over the
    ceiling (0 when none exceeds it). The estimator is exact for its binned T, so there is no uncertainty; these
    test the estimator, not Shwartz-Ziv & Tishby's compression, which the binning itself creates (Saxe et al.)."""
    ok = metrics["status"] == "ok"
    out = []
    for var, ceiling, text in (
            ("ity", "label_information", "no layer's binned I(T;Y) exceeds I(X;Y) = H(Y) (data processing)"),
            ("ixt", "input_entropy", "no layer's binned I(X;T) exceeds H(X) = 12 bits (data processing)")):
        top = float(theory[ceiling])
        values = metrics[var].where(ok)
        measured, n = _excess(values.values, top)
        out.append(judge(f"{text}: the largest excess", "data-processing inequality; Shwartz-Ziv & Tishby 2017",
                         theory=0.0, measured=measured, uncertainty=0.0, tolerance=ROUNDING,
                         where=f"{n} (activation, seed, epoch, layer) points; largest {var} "
                               f"{float(values.max()):.6g} bit against {ceiling} {top:.6g} bit"))
    return out
