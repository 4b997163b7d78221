"""The information plane stages: the 12-bit task and its training splits, one ensemble of seeds per activation with
binned I(X;T), I(T;Y) of every layer at log-spaced epochs, and the ceilings of the plane."""

from __future__ import annotations

import math

import numpy as np

from phaselab.experiment import Claim, Run, exceeds, judge, seed_interval
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
    return out + compression_claims(metrics)


# Compression (Shwartz-Ziv & Tishby 2017) and its absence with ReLU (Saxe et al. 2018), on the last hidden layer
# (the softmax output saturates, hence "compresses", with either activation). Per seed, the relative compression
# c = (peak − late)/peak of its binned I(X;T): peak the largest value over the epochs, late the mean over the last
# half-decade of epochs (epoch ≥ T/√10; a single checkpoint carries the SGD fluctuation of the binned estimate,
# up to ~1.7 bit on the quick config). c ∈ [0, 1] by construction. Judged on the seed mean ± the 95 % Student-t
# half-width: "tanh compresses" and "tanh compresses more than ReLU" are signs, c > 0 (phaselab.experiment.exceeds:
# agrees when the whole interval is above 0); "ReLU does not" is c = 0 within a tenth of the peak (fixed a priori: a
# fall smaller than 10 % of the peak is no compression phase).
LATE_DECADES = 0.5
NO_COMPRESSION = 0.1
ESTIMATOR_CAVEAT = ("binned estimate (bins of {w:g} per neuron): the network is deterministic, so the true I(X;T) "
                    "of an injective layer is H(X) = 12 bits at every epoch; the binned value, and its fall, depend "
                    "on the bin width and measure saturation of the activities into bins (Saxe et al.)")


def compression(metrics, layer: int | None = None):
    """Per (activation, seed): the relative compression (peak − late)/peak of the binned I(X;T) of ``layer``
    (default: the last hidden layer), late the mean over epochs ≥ T/10^LATE_DECADES; NaN for diverged seeds.
    Also the same with late = the last checkpoint alone, for comparison."""
    layer = int(metrics["layer"].values[-2]) if layer is None else layer
    ixt = metrics["ixt"].sel(layer=layer).where(metrics["status"] == "ok").transpose("activation", "seed", "epoch")
    epochs = metrics["epoch"].values
    peak = ixt.max("epoch")
    late = ixt.sel(epoch=epochs >= epochs.max() / 10**LATE_DECADES).mean("epoch")
    return (peak - late) / peak, (peak - ixt.isel(epoch=-1)) / peak, layer


def compression_claims(metrics) -> list[Claim]:
    """tanh's last hidden layer compresses, ReLU's does not, and tanh's compression exceeds ReLU's (paired by seed:
    the same training split and minibatches)."""
    rel, last, layer = compression(metrics)
    acts = [str(a) for a in metrics["activation"].values]
    epochs = int(metrics["epoch"].max())
    window = f"epochs ≥ {epochs / 10**LATE_DECADES:.3g}"
    caveat = ESTIMATOR_CAVEAT.format(w=float(metrics.attrs.get("bin_width", float("nan"))))
    stats = {}
    for act in acts:
        v = rel.sel(activation=act).values
        m, h, n = seed_interval(v)
        stats[act] = (m if n else None, h if n > 1 else None, v, last.sel(activation=act).values)

    def where(act):
        m, h, v, fin = stats[act]
        return (f"{act}, layer {layer} (last hidden), {int(np.isfinite(v).sum())} seeds, {epochs} epochs; late = "
                f"{window}; per seed {', '.join(f'{x:.3g}' for x in v)} (with the last checkpoint alone: "
                f"{', '.join(f'{x:.3g}' for x in fin)}); {caveat}")

    def why(m, h, short):
        if m is None:
            return "no finite seed"
        if h is None:
            return "one seed: no confidence interval for the seed mean"
        return short

    out = []
    src = "Shwartz-Ziv & Tishby 2017; Saxe et al. ICLR 2018"
    if "tanh" in stats:
        m, h, _, _ = stats["tanh"]
        out.append(exceeds(
            "tanh: the binned I(X;T) of the last hidden layer falls after its peak (compression): relative fall "
            "(peak − late mean)/peak > 0 (seed mean ± 95 % Student-t half-width)", src, measured=m,
            uncertainty=h, where=where("tanh"), figure="information_plane_layers",
            note=why(m, h, "" if m is None or h is None or m - h > 0 else
                     f"the 95 % band {m:.2g} ± {h:.2g} of the fall reaches 0: with {epochs} epochs and these seeds "
                     f"the compression phase is not resolved")))
    if "relu" in stats:
        m, h, _, _ = stats["relu"]
        out.append(judge(
            f"ReLU: the binned I(X;T) of the last hidden layer does not fall after its peak (no compression, Saxe "
            f"et al.): relative fall (peak − late mean)/peak = 0 within {NO_COMPRESSION:g} (seed mean ± 95 % "
            f"Student-t half-width)", "Saxe et al. ICLR 2018", theory=0.0, measured=m,
            uncertainty=math.nan if h is None else h, tolerance=NO_COMPRESSION, where=where("relu"),
            figure="information_plane_layers",
            note=why(m, h, "" if m is None or h is None or m + h <= NO_COMPRESSION else
                     f"the 95 % band {m:.2g} ± {h:.2g} of the fall reaches beyond {NO_COMPRESSION:g} of the peak: "
                     f"the binned I(X;T) of one ReLU seed falls by {np.nanmax(stats['relu'][2]):.2g} of its "
                     f"peak")))
    if "tanh" in stats and "relu" in stats:
        d = stats["tanh"][2] - stats["relu"][2]
        m, h, n = seed_interval(d)
        m, h = (m if n else None), (h if n > 1 else None)
        out.append(exceeds(
            "tanh compresses more than ReLU (Saxe et al.'s critique: compression comes from tanh's saturation): "
            "relative fall of tanh − that of ReLU > 0, paired by seed (seed mean ± 95 % Student-t half-width)",
            "Saxe et al. ICLR 2018", measured=m, uncertainty=h, figure="information_plane_layers",
            where=f"layer {layer}, {window}; per seed {', '.join(f'{x:.3g}' for x in d)}",
            note=why(m, h, "" if m is None or h is None or m - h > 0 else
                     f"the 95 % band {m:.2g} ± {h:.2g} of the paired difference reaches 0 with "
                     f"{int(np.isfinite(d).sum())} seeds")))
    return out
