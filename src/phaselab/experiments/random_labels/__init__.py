"""Random labels (Zhang, Bengio, Hardt, Recht & Vinyals, ICLR 2017) and spectrally-normalised margins (Bartlett,
Foster & Telgarsky, NeurIPS 2017).

The two-layer ReLU network of :mod:`phaselab.models.two_layer` is trained by full-batch gradient descent on two tasks, the
scikit-learn digits and a synthetic teacher task (Gaussian inputs labelled by a random linear teacher), in
variants: labels corrupted with probability q (redrawn uniformly over the classes; q = 0 the true labels, q = 1
random labels), shuffled pixels (one permutation of the inputs for every image) and Gaussian inputs (noise with
each pixel's mean and variance). Measured: the training loss against steps, the steps to fit every training label,
the test error on clean test labels and, for every trained network, its spectral complexity R_A and the
distribution of its normalised margins (:mod:`phaselab.theory.margins`).

Cells: one per task; its variants × seeds members are trained together as one ensemble.
"""

from __future__ import annotations

import sys

import numpy as np

from phaselab.config import check_grid_axis, fail

FIGURES = ("random_label_training", "random_label_fit_time", "random_label_test_error", "normalised_margins")
TASKS = ("digits", "teacher")
DIGITS_DIM, N_DIGITS = 64, 1797


def variants(exp: dict) -> list[tuple[str, str, float]]:
    """(name, inputs, q) of every variant: the label-corruption levels on the original inputs, then the input
    variants with their true labels."""
    rows = [(f"q={q:g}", "original", float(q)) for q in sorted(exp["corruption"])]
    return rows + [(inputs, inputs, 0.0) for inputs in exp["inputs"]]


def n_classes(exp: dict, task: str) -> int:
    return 10 if task == "digits" else exp["teacher"]["classes"]


def check(key: str, exp: dict) -> None:
    check_grid_axis(f"{key}.tasks", exp["tasks"])
    check_grid_axis(f"{key}.corruption", exp["corruption"])
    check_grid_axis(f"{key}.inputs", exp["inputs"])
    if "digits" in exp["tasks"] and exp["n_train"] > N_DIGITS - 100:
        fail(f"{key}.n_train", exp["n_train"], f"leaves fewer than 100 of the {N_DIGITS} digits for testing")
    if exp["network"]["checkpoint_every"] > exp["network"]["steps"]:
        fail(f"{key}.network.checkpoint_every", exp["network"]["checkpoint_every"],
             f"exceeds network.steps = {exp['network']['steps']}")


def cells(exp: dict) -> list[dict]:
    return [{"id": task, "data": task, "task": task} for task in exp["tasks"]]


def task_data(config: dict, exp: dict, task: str) -> dict[str, np.ndarray]:
    """Every variant's training and test sets of one task: x_train (V, S, n, d), y_train (V, S, n),
    x_test (V, S, n', d), y_test (S, n') (test labels are never corrupted), and the clean x/y of each seed."""
    from phaselab import data

    k = TASKS.index(task)
    n, C = exp["n_train"], n_classes(exp, task)
    x_tr, y_tr, x_te, y_te = [], [], [], []
    if task == "digits":
        x, labels = data.load_digits_standardised()
    for s in range(exp["seeds"]):
        if task == "digits":
            tr, te = data.split(len(labels), n, data.rng(config["seed"], data.DIGITS_SPLIT, s))
            x_tr.append(x[tr]), y_tr.append(labels[tr]), x_te.append(x[te]), y_te.append(labels[te])
        else:
            d = exp["teacher"]["d"]
            gen = data.rng(config["seed"], data.TEACHER_TASK, d, s)
            a, b, teacher = data.teacher_task(n, d, C, gen)
            c, e, _ = data.teacher_task(exp["teacher"]["n_test"], d, C, gen, teacher)
            x_tr.append(a), y_tr.append(b), x_te.append(c), y_te.append(e)
    x_tr, y_tr, x_te, y_te = (np.stack(a) for a in (x_tr, y_tr, x_te, y_te))
    xs_train, ys_train, xs_test = [], [], []
    for _, inputs, q in variants(exp):
        labels_v = np.stack([data.corrupt_labels(y_tr[s], q, C, data.rng(config["seed"], data.LABEL_CORRUPTION,
                                                                          1 + k, s)) for s in range(exp["seeds"])])
        if inputs == "original":
            a, b = x_tr, x_te
        elif inputs == "shuffled_pixels":  # one permutation per seed, the same for training and test images
            a = np.stack([data.shuffle_pixels(x_tr[s], data.rng(config["seed"], data.INPUT_VARIANT, k, s))
                          for s in range(exp["seeds"])])
            b = np.stack([data.shuffle_pixels(x_te[s], data.rng(config["seed"], data.INPUT_VARIANT, k, s))
                          for s in range(exp["seeds"])])
        else:  # gaussian
            gens = [data.rng(config["seed"], data.INPUT_VARIANT, k, s) for s in range(exp["seeds"])]
            a = np.stack([data.gaussian_inputs(x_tr[s], gens[s]) for s in range(exp["seeds"])])
            b = np.stack([data.gaussian_inputs(x_te[s], gens[s]) for s in range(exp["seeds"])])
        xs_train.append(a), ys_train.append(labels_v), xs_test.append(b)
    return {"x_train": np.stack(xs_train).astype(np.float32), "y_train": np.stack(ys_train),
            "x_test": np.stack(xs_test).astype(np.float32), "y_test": y_te,
            "x_clean": x_tr.astype(np.float32), "y_clean": y_tr}


def make_data(config: dict, name: str, data_id: str, out: str) -> None:
    from phaselab import data

    if data_id not in TASKS:
        raise ValueError(f"unknown data id {data_id!r} of experiment {name}")
    data.save_npz_atomic(out, **task_data(config, config["experiments"][name], data_id))


def train_cell(config: dict, name: str, cell_id: str, data_path: str, out: str, threads: int = 1,
               log=sys.stderr) -> None:
    """Train every variant × seed of one task as one ensemble; record curves, steps to fit, margins and R_A."""
    import torch
    import xarray as xr
    from threadpoolctl import threadpool_limits

    from phaselab import data
    from phaselab.models import two_layer
    from phaselab.metrics import STATUS_DIVERGED, STATUS_OK, write_netcdf
    from phaselab.theory import margins
    from phaselab.device import pick_device, set_threads

    set_threads(threads)
    exp = config["experiments"][name]
    net = exp["network"]
    task = cell_id
    C, S, rows = n_classes(exp, task), exp["seeds"], variants(exp)
    V = len(rows)
    device = pick_device(config["device"])
    arrays = np.load(data_path)
    x_train = torch.as_tensor(arrays["x_train"]).flatten(0, 1).to(device)  # members: variant major, seed minor
    y_train = torch.as_tensor(arrays["y_train"]).flatten(0, 1).to(device)
    x_test = torch.as_tensor(arrays["x_test"]).flatten(0, 1).to(device)
    y_test = torch.as_tensor(arrays["y_test"]).repeat(V, 1).to(device)
    d = x_train.shape[-1]
    seeds = [data.derive_seed(config["seed"], data.NETWORK_INIT, net["width"], s) for s in range(S)] * V
    params = {k: v.to(device) for k, v in two_layer.init(seeds, d, net["width"], C).items()}
    steps = list(range(0, net["steps"] + 1, net["checkpoint_every"]))
    if steps[-1] != net["steps"]:
        steps.append(net["steps"])
    print(f"[train] experiment {name}, task {task}: {V} variants × {S} seeds, n = {exp['n_train']}, d = {d}, "
          f"C = {C}, width {net['width']}, {net['steps']} full-batch GD steps, lr {net['lr']}, {net['loss']} loss, "
          f"device {device}", file=log, flush=True)
    run = two_layer.train(params, net["loss"], x_train, y_train, net["lr"], steps,
                    {"train": (x_train, y_train), "test": (x_test, y_test)},
                    divergence_threshold=net["divergence_threshold"], log=log)
    print(f"[train] done in {run.seconds:.1f}s", file=log, flush=True)

    with torch.no_grad(), threadpool_limits(limits=threads):
        outputs = two_layer.forward(run.params, x_train).double().cpu().numpy()
        layers = two_layer.layer_matrices(run.params)
        refs = None if exp["margins"]["reference"] == "zero" else two_layer.layer_matrices(params)
        complexity = margins.spectral_complexity(layers, refs)
        labels, inputs = y_train.cpu().numpy(), x_train.double().cpu().numpy()
        raw = margins.margins(outputs, labels)
        normalised = margins.normalised_margins(outputs, labels, complexity, inputs)
        spectral = np.stack([margins.spectral_norm(a) for a in layers], -1)
        l21 = np.stack([margins.norm_2_1(np.swapaxes(a if r is None else a - r, -1, -2))
                        for a, r in zip(layers, refs or [None] * len(layers))], -1)

    train_error = run.metrics["train_error"]
    fitted = train_error == 0
    steps_to_fit = np.where(fitted.any(1), np.asarray(steps)[fitted.argmax(1)], np.nan)
    diverged = run.diverged_step
    bad = diverged >= 0
    for arr in (raw, normalised, complexity, spectral, l21):
        arr[bad] = np.nan

    def per_member(a):
        return a.reshape(V, S, *a.shape[1:])[None]

    dims = ("task", "variant", "seed")
    one = {"units": "1"}
    ds = xr.Dataset(
        {
            "train_loss": (dims + ("step",), per_member(run.metrics["train_loss"]),
                           {**one, "long_name": f"training loss ({net['loss']})"}),
            "train_error": (dims + ("step",), per_member(train_error),
                            {**one, "long_name": "training error on the variant's labels"}),
            "test_loss": (dims + ("step",), per_member(run.metrics["test_loss"]),
                          {**one, "long_name": f"test loss ({net['loss']}) on clean labels"}),
            "test_error": (dims + ("step",), per_member(run.metrics["test_error"]),
                           {**one, "long_name": "test error on clean labels"}),
            "steps_to_fit": (dims, per_member(steps_to_fit),
                             {"units": "steps", "long_name": "first checkpoint with every training label fitted"}),
            "spectral_complexity": (dims, per_member(complexity),
                                    {**one, "long_name": "spectral complexity R_A (Bartlett et al. 2017)"}),
            "spectral_norm": (dims + ("layer",), per_member(spectral), {**one, "long_name": "‖A_i‖_σ"}),
            "norm_2_1": (dims + ("layer",), per_member(l21), {**one, "long_name": "‖A_iᵀ − M_iᵀ‖_{2,1}"}),
            "margin": (dims + ("sample",), per_member(raw),
                       {**one, "long_name": "training margin f(x)_y − max_{j≠y} f(x)_j"}),
            "normalised_margin": (dims + ("sample",), per_member(normalised),
                                  {**one, "long_name": "normalised margin, margin / (R_A ‖X‖_F / n)"}),
            "status": (dims, per_member(np.where(bad, STATUS_DIVERGED, STATUS_OK).astype(str)),
                       {"long_name": "member status (ok / diverged)"}),
            "diverged_at": (dims, per_member(np.where(bad, diverged, np.nan).astype(float)),
                            {"units": "steps", "long_name": "checkpoint at which the member diverged"}),
            "n_classes": (("task",), [C], {**one, "long_name": "number of classes C"}),
            "input_dim": (("task",), [d], {**one, "long_name": "input dimension d"}),
        },
        coords={"task": [task], "variant": [r[0] for r in rows], "seed": np.arange(S), "step": steps,
                "layer": [1, 2], "sample": np.arange(exp["n_train"]),
                "corruption": ("variant", [r[2] for r in rows], {**one, "long_name": "label-corruption probability q"}),
                "inputs": ("variant", [r[1] for r in rows], {"long_name": "inputs (original, shuffled_pixels, gaussian)"})},
        attrs={"cell": cell_id, "device": str(device), "train_seconds": run.seconds},
    )
    write_netcdf(ds, out)


COORD_ATTRS = {
    "task": ("", "task (digits: scikit-learn 8×8 digits; teacher: Gaussian inputs, linear teacher)"),
    "variant": ("", "training-set variant (labels corrupted with probability q, or inputs replaced)"),
    "seed": ("1", "seed index (split or teacher, corruption, initialisation)"),
    "step": ("steps", "full-batch gradient-descent step"),
    "layer": ("1", "layer i of f(x) = A₂ relu(A₁ x)"),
    "sample": ("1", "training sample index"),
}


def collect(config: dict, name: str, cell_paths: list[str], out: str) -> None:
    import xarray as xr

    from phaselab.metrics import open_netcdf, provenance, write_netcdf

    exp = config["experiments"][name]
    parts = [open_netcdf(path) for path in cell_paths]
    devices = sorted({c.attrs["device"] for c in parts})
    seconds = ", ".join(f"{c.attrs['cell']}: {float(c.attrs['train_seconds']):.1f}" for c in parts)
    ds = xr.concat([c.assign_coords(task=c["task"].astype(object)) for c in parts], dim="task",
                   data_vars="minimal", coords="minimal", compat="override", combine_attrs="override")
    ds["task"] = [str(c.attrs["cell"]) for c in parts]  # concat of fixed-width strings would truncate them
    for var in ("n_classes", "input_dim"):
        ds[var] = ds[var].astype(int)
    for var, (units, long_name) in COORD_ATTRS.items():
        ds[var].attrs.update(long_name=long_name, **({"units": units} if units else {}))
    net = exp["network"]
    ds.attrs = {
        "title": f"phaselab experiment {name}: random labels and spectrally-normalised margins",
        "experiment": name,
        "experiment_type": exp["type"],
        "references": "Zhang, Bengio, Hardt, Recht & Vinyals 2017; Bartlett, Foster & Telgarsky 2017",
        "n_train": exp["n_train"], "width": net["width"], "loss": net["loss"], "lr": net["lr"],
        "steps": net["steps"], "margin_reference": exp["margins"]["reference"],
        "train_seconds": seconds,
        **provenance(config, ",".join(devices)),
    }
    write_netcdf(ds, out)


def nearest_neighbour_error(x_train, y_train, x_test, y_test) -> np.ndarray:
    """Test error of the 1-nearest-neighbour classifier (Euclidean), batched over leading axes."""
    sq = ((x_test**2).sum(-1)[..., :, None] - 2.0 * x_test @ np.swapaxes(x_train, -1, -2)
          + (x_train**2).sum(-1)[..., None, :])
    predicted = np.take_along_axis(y_train, sq.argmin(-1), axis=-1)
    return (predicted != y_test).mean(-1)


def interpolating_error(q, clean_error, n_classes_: int):
    """Expected test error of an interpolating classifier that predicts the stored label of a training point whose
    clean label is right with probability 1 − ε₀, after symmetric corruption with probability q (1-NN, Cover &
    Hart 1967): ε(q) = 1 − (1 − ε₀)(1 − q(C − 1)/C) − ε₀ q/C; ε(1) = 1 − 1/C."""
    q = np.asarray(q, dtype=float)
    return 1.0 - (1.0 - clean_error) * (1.0 - q * (n_classes_ - 1) / n_classes_) - clean_error * q / n_classes_


def theory(config: dict, name: str, metrics_path: str, out: str) -> None:
    """References beside the measurements: chance level (error 1 − 1/C, loss of the constant prediction) and the
    test error of the interpolating 1-NN classifier against q, from its clean error on the same splits."""
    import xarray as xr
    from threadpoolctl import threadpool_limits

    from phaselab.models import two_layer
    from phaselab.metrics import open_netcdf, write_netcdf

    exp = config["experiments"][name]
    metrics = open_netcdf(metrics_path)
    tasks = [str(t) for t in metrics["task"].values]
    q = np.unique(np.concatenate([np.linspace(0.0, 1.0, 101), metrics["corruption"].values]))
    clean, curves, chance, chance_loss = [], [], [], []
    with threadpool_limits(limits=config["threads"]):
        for task in tasks:
            arrays = task_data(config, exp, task)  # variant 0 is a corruption level: original test inputs
            eps0 = nearest_neighbour_error(arrays["x_clean"].astype(float), arrays["y_clean"],
                                           arrays["x_test"][0].astype(float), arrays["y_test"])  # (S,)
            C = n_classes(exp, task)
            clean.append(eps0)
            curves.append(interpolating_error(q[:, None], eps0[None, :], C))
            chance.append(1.0 - 1.0 / C)
            chance_loss.append(two_layer.chance_loss(exp["network"]["loss"], C))
    one = {"units": "1"}
    ds = xr.Dataset(
        {
            "nn_clean_error": (("task", "seed"), np.stack(clean),
                               {**one, "long_name": "1-NN test error with the clean training labels"}),
            "nn_test_error": (("task", "corruption", "seed"), np.stack(curves),
                              {**one, "long_name": "1-NN test error after corruption with probability q"}),
            "chance_error": (("task",), chance, {**one, "long_name": "chance error 1 − 1/C"}),
            "chance_loss": (("task",), chance_loss,
                            {**one, "long_name": "loss of the constant prediction (log C for cross-entropy)"}),
        },
        coords={"task": tasks, "corruption": q, "seed": metrics["seed"].values},
        attrs={"references": "Cover & Hart 1967 (1-NN); Zhang et al. 2017"},
    )
    ds["corruption"].attrs.update(units="1", long_name="label-corruption probability q")
    write_netcdf(ds, out)


def figure(figure_name: str, metrics, theory_ds):
    from phaselab.plots import random_labels as plots

    return getattr(plots, figure_name)(metrics, theory_ds)
