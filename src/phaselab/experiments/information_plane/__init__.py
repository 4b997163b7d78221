"""The information plane of a deep network (Shwartz-Ziv & Tishby 2017) and its critique (Saxe, Bansal, Dapello,
Advani, Kolchinsky, Tracey & Cox, ICLR 2018).

The 12-bit task (``data.twelve_bit_task``: all 4096 inputs, a rotation-invariant label rule) learnt by a
12-10-7-5-4-3-2 network with tanh or ReLU hidden layers and a softmax output, trained by minibatch SGD on the
cross-entropy of a random 85 % of the inputs. At log-spaced epochs every layer's I(X;T) and I(T;Y) are estimated
by binning over all 4096 inputs (``theory.information``). Shwartz-Ziv & Tishby saw a fitting phase (both grow)
followed by compression (I(X;T) falls); Saxe et al. showed that the compression comes from tanh's saturation
under binning and is absent for ReLU. A cell is one activation; its members are the seeds (initialisation,
training split and minibatches).
"""

from __future__ import annotations

import math
import sys

import numpy as np

from phaselab.config import check_grid_axis
from phaselab.schedules import log_schedule

FIGURES = ("information_plane", "information_plane_layers")


def check(key: str, exp: dict) -> None:
    check_grid_axis(f"{key}.grid.activation", exp["grid"]["activation"])


def epochs(exp: dict) -> list[int]:
    """Epoch 0 and log-spaced epochs from 1 to train.epochs, ``checkpoints_per_decade`` a decade."""
    return log_schedule(exp["train"]["epochs"], exp["train"]["checkpoints_per_decade"])


def cells(exp: dict) -> list[dict]:
    return [{"id": act, "data": "twelve_bit", "activation": act} for act in exp["grid"]["activation"]]


def make_data(config: dict, name: str, data_id: str, out: str) -> None:
    """The 12-bit task and every seed's training set (a random ``train_fraction`` of the 4096 inputs)."""
    from phaselab import data

    exp = config["experiments"][name]
    x, y = data.twelve_bit_task(exp["data"]["threshold"])
    n_train = round(exp["data"]["train_fraction"] * len(x))
    train = np.stack([data.split(len(x), n_train, data.rng(config["seed"], data.BIT_SPLIT, s))[0]
                      for s in range(exp["grid"]["seeds"])])
    data.save_npz_atomic(out, x=x, y=y, train=train)


def train_cell(config: dict, name: str, cell_id: str, data_path: str, out: str, threads: int = 1,
               log=sys.stderr) -> None:
    from functools import partial

    import torch
    import xarray as xr
    from torch.func import vmap

    from phaselab import data
    from phaselab.models import deep_mlp
    from phaselab.metrics import STATUS_DIVERGED, STATUS_OK, write_netcdf
    from phaselab.theory.information import mutual_information
    from phaselab.device import pick_device, set_threads
    from phaselab.engines.ensemble import train_ensemble

    set_threads(threads)
    exp = config["experiments"][name]
    act = next(c for c in cells(exp) if c["id"] == cell_id)["activation"]
    train, width = exp["train"], exp["estimator"]["bin_width"]
    device = pick_device(config["device"])
    arrays = data.load_npz(data_path)
    x = torch.as_tensor(arrays["x"], dtype=torch.float64, device=device)
    labels = torch.as_tensor(arrays["y"], device=device)
    train_idx = torch.as_tensor(arrays["train"], device=device)  # (seed, n_train)
    test_mask = torch.ones(train_idx.shape[0], len(x), dtype=torch.bool, device=device)
    test_mask.scatter_(1, train_idx, False)
    S, n_train, B = train_idx.shape[0], train_idx.shape[1], train["batch_size"]
    sizes = [x.shape[1], *exp["model"]["widths"], 2]
    params = {k: v.to(device) for k, v in deep_mlp.init_mlp(
        sizes, [data.derive_seed(config["seed"], data.MLP_INIT, s) for s in range(S)], act).items()}
    loss = partial(deep_mlp.cross_entropy, activation=act)
    layers = vmap(partial(deep_mlp.representations, activation=act), in_dims=(0, None))
    gen = torch.Generator().manual_seed(data.derive_seed(config["seed"], data.MINIBATCHES, 3, B))
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
    epoch_list = epochs(exp)
    print(f"[train] cell {cell_id}: {sizes} {act} network, {S} seeds, SGD η = {train['lr']}, B = {B}, "
          f"{epoch_list[-1]} epochs of {per_epoch} steps", file=log, flush=True)
    run = train_ensemble(params, loss, batches, torch.full((S,), train["lr"], dtype=torch.float64, device=device),
                         [e * per_epoch for e in epoch_list], evaluate, batch_in_dims=0, log=log)
    n_layers = len(sizes) - 1
    mi = {k: np.stack([run.metrics[f"{k}{i}"] for i in range(1, n_layers + 1)], axis=-1) for k in ("ixt", "ity")}
    dims = ("seed", "epoch", "layer")
    ds = xr.Dataset(
        {
            "ixt": (dims, mi["ixt"], {"long_name": "I(X;T), binned estimate", "units": "bit"}),
            "ity": (dims, mi["ity"], {"long_name": "I(T;Y), binned estimate", "units": "bit"}),
            "train_error": (("seed", "epoch"), run.metrics["train_error"],
                            {"long_name": "training error", "units": "1"}),
            "test_error": (("seed", "epoch"), run.metrics["test_error"],
                           {"long_name": "error on the held-out inputs", "units": "1"}),
            "loss": (("seed", "epoch"), run.metrics["loss"], {"long_name": "training cross-entropy", "units": "nat"}),
            "status": ("seed", np.where(run.diverged_step >= 0, STATUS_DIVERGED, STATUS_OK).astype(str),
                       {"long_name": "member status (ok / diverged)"}),
        },
        coords={"seed": np.arange(S), "epoch": np.asarray(epoch_list), "layer": np.arange(1, n_layers + 1)},
        attrs={"train_seconds": run.seconds, "device": str(device), "threads": threads},
    )
    ds = ds.expand_dims(activation=[act])
    ds["layer_width"] = ("layer", np.asarray(sizes[1:]), {"long_name": "neurons in the layer", "units": "1"})
    write_netcdf(ds, out)


def collect(config: dict, name: str, cell_paths: list[str], out: str) -> None:
    import xarray as xr

    from phaselab.metrics import open_netcdf, provenance, write_netcdf

    exp = config["experiments"][name]
    parts = [open_netcdf(p) for p in cell_paths]
    ds = xr.merge(parts, join="outer", compat="no_conflicts", combine_attrs="override")
    ds["status"] = ds["status"].astype(str)
    ds = ds.sel(activation=list(exp["grid"]["activation"]))
    for var, units, long_name in [("activation", "1", "hidden-layer activation"), ("seed", "1", "seed index"),
                                  ("epoch", "epochs", "training epoch"), ("layer", "1", "layer (1 = first hidden)")]:
        ds[var].attrs.update(long_name=long_name, units=units)
    train = exp["train"]
    ds.attrs = {
        "title": f"phaselab experiment {name}: information plane of the 12-bit task",
        "experiment": name,
        "experiment_type": exp["type"],
        "references": "Shwartz-Ziv & Tishby 2017; Saxe et al. ICLR 2018",
        "architecture": "-".join(str(v) for v in [12, *exp["model"]["widths"], 2]),
        "bin_width": exp["estimator"]["bin_width"],
        "lr": train["lr"],
        "batch_size": train["batch_size"],
        "train_seconds": sum(float(p.attrs["train_seconds"]) for p in parts),
        **provenance(config, ",".join(sorted({p.attrs["device"] for p in parts}))),
    }
    write_netcdf(ds, out)


def theory(config: dict, name: str, metrics_path: str, out: str) -> None:
    """The ceilings of the plane: I(X;T) ≤ H(X) = 12 bits, I(T;Y) ≤ I(X;Y) = H(Y) (data processing)."""
    import xarray as xr

    from phaselab import data
    from phaselab.metrics import write_netcdf
    from phaselab.theory.information import entropy_of_rows, label_entropy

    x, y = data.twelve_bit_task(config["experiments"][name]["data"]["threshold"])
    write_netcdf(xr.Dataset({
        "input_entropy": ((), entropy_of_rows(x), {"long_name": "H(X), the ceiling of I(X;T)", "units": "bit"}),
        "label_information": ((), label_entropy(y), {"long_name": "I(X;Y) = H(Y), the ceiling of I(T;Y)",
                                                     "units": "bit"}),
    }, attrs={"experiment": name, "references": "Shwartz-Ziv & Tishby 2017"}), out)


def figure(figure_name: str, metrics, theory_ds):
    from phaselab.plots import information_plane as plots

    return getattr(plots, figure_name)(metrics, theory_ds)
