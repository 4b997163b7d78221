"""Random labels' stages: every task's variants (corrupted labels, shuffled pixels, Gaussian inputs), one ensemble
per task with its margins and spectral complexity, the chance and 1-NN references, and the claims."""

from __future__ import annotations

import math

import numpy as np

from phaselab.experiment import Claim, Run, exceeds, judge, seed_interval, student_t_quantile
from phaselab.experiments.random_labels import TASKS, TaskCell, n_classes, variants


# ----------------------------------------------------------------------------------------------------------------
# data
# ----------------------------------------------------------------------------------------------------------------
def task_data(config_seed: int, exp: dict, task: str) -> dict[str, np.ndarray]:
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
            tr, te = data.split(len(labels), n, data.rng(config_seed, data.DIGITS_SPLIT, s))
            x_tr.append(x[tr]), y_tr.append(labels[tr]), x_te.append(x[te]), y_te.append(labels[te])
        else:
            d = exp["teacher"]["d"]
            gen = data.rng(config_seed, data.TEACHER_TASK, d, s)
            a, b, teacher = data.teacher_task(n, d, C, gen)
            c, e, _ = data.teacher_task(exp["teacher"]["n_test"], d, C, gen, teacher)
            x_tr.append(a), y_tr.append(b), x_te.append(c), y_te.append(e)
    x_tr, y_tr, x_te, y_te = (np.stack(a) for a in (x_tr, y_tr, x_te, y_te))
    xs_train, ys_train, xs_test = [], [], []
    for _, inputs, q in variants(exp):
        labels_v = np.stack([data.corrupt_labels(y_tr[s], q, C, data.rng(config_seed, data.LABEL_CORRUPTION,
                                                                          1 + k, s)) for s in range(exp["seeds"])])
        if inputs == "original":
            a, b = x_tr, x_te
        elif inputs == "shuffled_pixels":  # one permutation per seed, the same for training and test images
            a = np.stack([data.shuffle_pixels(x_tr[s], data.rng(config_seed, data.INPUT_VARIANT, k, s))
                          for s in range(exp["seeds"])])
            b = np.stack([data.shuffle_pixels(x_te[s], data.rng(config_seed, data.INPUT_VARIANT, k, s))
                          for s in range(exp["seeds"])])
        else:  # gaussian
            gens = [data.rng(config_seed, data.INPUT_VARIANT, k, s) for s in range(exp["seeds"])]
            a = np.stack([data.gaussian_inputs(x_tr[s], gens[s]) for s in range(exp["seeds"])])
            b = np.stack([data.gaussian_inputs(x_te[s], gens[s]) for s in range(exp["seeds"])])
        xs_train.append(a), ys_train.append(labels_v), xs_test.append(b)
    return {"x_train": np.stack(xs_train).astype(np.float32), "y_train": np.stack(ys_train),
            "x_test": np.stack(xs_test).astype(np.float32), "y_test": y_te,
            "x_clean": x_tr.astype(np.float32), "y_clean": y_tr}


def make_data(run: Run, data_id: str) -> dict[str, np.ndarray]:
    """The variants of one task (data id: the task's name)."""
    if data_id not in TASKS:
        raise ValueError(f"unknown data id {data_id!r} of experiment {run.name}")
    return task_data(run.seed, run.exp, data_id)


# ----------------------------------------------------------------------------------------------------------------
# training
# ----------------------------------------------------------------------------------------------------------------
def train(run: Run, cell: TaskCell, arrays: dict):
    """Train every variant × seed of one task as one ensemble; record curves, steps to fit, margins and R_A."""
    import torch
    import xarray as xr
    from threadpoolctl import threadpool_limits

    from phaselab import data
    from phaselab.models import two_layer
    from phaselab.theory import margins
    from phaselab.vocabulary import STATUS_DIVERGED, STATUS_OK

    exp = run.exp
    net = exp["network"]
    task = cell.task
    C, S, rows = n_classes(exp, task), exp["seeds"], variants(exp)
    V = len(rows)
    device = run.device
    x_train = torch.as_tensor(arrays["x_train"]).flatten(0, 1).to(device)  # members: variant major, seed minor
    y_train = torch.as_tensor(arrays["y_train"]).flatten(0, 1).to(device)
    x_test = torch.as_tensor(arrays["x_test"]).flatten(0, 1).to(device)
    y_test = torch.as_tensor(arrays["y_test"]).repeat(V, 1).to(device)
    d = x_train.shape[-1]
    seeds = [data.derive_seed(run.seed, data.NETWORK_INIT, net["width"], s) for s in range(S)] * V
    params = {k: v.to(device) for k, v in two_layer.init(seeds, d, net["width"], C).items()}
    steps = list(range(0, net["steps"] + 1, net["checkpoint_every"]))
    if steps[-1] != net["steps"]:
        steps.append(net["steps"])
    run.log(f"task {task}: {V} variants × {S} seeds, n = {exp['n_train']}, d = {d}, C = {C}, width {net['width']}, "
            f"{net['steps']} full-batch GD steps, lr {net['lr']}, {net['loss']} loss, device {device}")
    result = two_layer.train(params, net["loss"], x_train, y_train, net["lr"], steps,
                             {"train": (x_train, y_train), "test": (x_test, y_test)},
                             divergence_threshold=net["divergence_threshold"], log=run.log_file)
    run.log(f"trained in {result.seconds:.1f}s")

    with torch.no_grad(), threadpool_limits(limits=run.threads):
        outputs = two_layer.forward(result.params, x_train).double().cpu().numpy()
        layers = two_layer.layer_matrices(result.params)
        refs = None if exp["margins"]["reference"] == "zero" else two_layer.layer_matrices(params)
        complexity = margins.spectral_complexity(layers, refs)
        labels, inputs = y_train.cpu().numpy(), x_train.double().cpu().numpy()
        raw = margins.margins(outputs, labels)
        normalised = margins.normalised_margins(outputs, labels, complexity, inputs)
        spectral = np.stack([margins.spectral_norm(a) for a in layers], -1)
        l21 = np.stack([margins.norm_2_1(np.swapaxes(a if r is None else a - r, -1, -2))
                        for a, r in zip(layers, refs or [None] * len(layers))], -1)

    train_error = result.metrics["train_error"]
    fitted = train_error == 0
    steps_to_fit = np.where(fitted.any(1), np.asarray(steps)[fitted.argmax(1)], np.nan)
    diverged = result.diverged_step
    bad = diverged >= 0
    for arr in (raw, normalised, complexity, spectral, l21):
        arr[bad] = np.nan

    def per_member(a):
        return a.reshape(V, S, *a.shape[1:])[None]

    dims = ("task", "variant", "seed")
    one = {"units": "1"}
    return xr.Dataset(
        {
            "train_loss": (dims + ("step",), per_member(result.metrics["train_loss"]),
                           {**one, "long_name": f"training loss ({net['loss']})"}),
            "train_error": (dims + ("step",), per_member(train_error),
                            {**one, "long_name": "training error on the variant's labels"}),
            "test_loss": (dims + ("step",), per_member(result.metrics["test_loss"]),
                          {**one, "long_name": f"test loss ({net['loss']}) on clean labels"}),
            "test_error": (dims + ("step",), per_member(result.metrics["test_error"]),
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
            "n_test": (("task",), [int(arrays["y_test"].shape[-1])], {**one, "long_name": "test samples per seed"}),
        },
        coords={"task": [task], "variant": [r[0] for r in rows], "seed": np.arange(S), "step": steps,
                "layer": [1, 2], "sample": np.arange(exp["n_train"]),
                "corruption": ("variant", [r[2] for r in rows], {**one, "long_name": "label-corruption probability q"}),
                "inputs": ("variant", [r[1] for r in rows],
                           {"long_name": "inputs (original, shuffled_pixels, gaussian)"})},
        attrs={"train_seconds": result.seconds},
    )


# ----------------------------------------------------------------------------------------------------------------
# metrics, theory, claims
# ----------------------------------------------------------------------------------------------------------------
def collect(run: Run, cells: list):
    """The tasks' cells joined along ``task``, with the network's settings."""
    import xarray as xr

    exp = run.exp
    tasks = [str(c["task"].values[0]) for c in cells]  # concat of fixed-width strings would truncate them
    ds = xr.concat([c.assign_coords(task=c["task"].astype(object)) for c in cells], dim="task",
                   data_vars="minimal", coords="minimal", compat="override", combine_attrs="override")
    ds["task"] = tasks
    for var in ("n_classes", "input_dim", "n_test"):
        ds[var] = ds[var].astype(int)
    net = exp["network"]
    ds.attrs = {
        "n_train": exp["n_train"], "width": net["width"], "loss": net["loss"], "lr": net["lr"],
        "steps": net["steps"], "margin_reference": exp["margins"]["reference"],
    }
    return ds


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


def theory(run: Run, metrics):
    """References beside the measurements: chance level (error 1 − 1/C, loss of the constant prediction) and the
    test error of the interpolating 1-NN classifier against q, from its clean error on the same splits."""
    import xarray as xr
    from threadpoolctl import threadpool_limits

    from phaselab.models import two_layer

    exp = run.exp
    tasks = [str(t) for t in metrics["task"].values]
    q = np.unique(np.concatenate([np.linspace(0.0, 1.0, 101), metrics["corruption"].values]))
    clean, curves, chance, chance_loss = [], [], [], []
    with threadpool_limits(limits=run.config["threads"]):
        for task in tasks:
            arrays = task_data(run.seed, exp, task)  # variant 0 is a corruption level: original test inputs
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
    return ds


# Statistical cuts. A seed-mean deviation from an exact value is held to the false-alarm rate of the Gaussian 3σ
# criterion (0.27 %, two-sided) with the Student-t quantile of its seeds − 1 degrees of freedom (3σ alone is far too
# strict at 3 seeds: t = 3 has a two-sided p of 0.095 there). Trends are judged on their 95 % seed interval.
FALSE_ALARM = 0.0027
CONFIDENCE = 0.95


def seeds_exceed_zero(text: str, source: str, values, *, where: str, note: str = "", figure: str = "") -> Claim:
    """A one-sided claim X > 0 from per-seed values of X (:func:`phaselab.experiment.exceeds`), judged on the 95 %
    Student-t interval of their mean (:func:`phaselab.experiment.seed_interval`): inconclusive below 2 seeds."""
    mean, half, n = seed_interval(values, CONFIDENCE)
    return exceeds(text + " (X > 0: seed mean ± 95 % Student-t half-width)", source, measured=mean, uncertainty=half,
                   where=where + f"; {n} seeds", figure=figure,
                   note=note or ("fewer than 2 seeds with a value: no interval" if n < 2 else ""))


def slopes(x, y) -> np.ndarray:
    """Least-squares slope of y against x along the last axis, per leading index; NaN where y has a NaN."""
    x = np.asarray(x, dtype=float)
    xc = x - x.mean()
    return ((np.asarray(y, dtype=float) - np.asarray(y, dtype=float).mean(-1, keepdims=True)) * xc).sum(-1) / (
        xc**2).sum()


def _corruption_levels(metrics):
    """Indices of the label-corruption variants (original inputs), by increasing q."""
    idx = np.flatnonzero(metrics["inputs"].values == "original")
    return idx[np.argsort(metrics["corruption"].values[idx])]


def claims(metrics, theory) -> list[Claim]:
    """Per task (Zhang et al. 2017): every variant fitted; the steps to fit grow with the corruption q; networks
    trained on random labels test at chance 1 − 1/C. Bartlett et al. 2017: the median normalised margin shrinks and
    the spectral complexity R_A grows with q. Trends are per-seed least-squares slopes against q (each seed shares
    its split and initialisation across q), judged on their 95 % Student-t interval."""
    zhang, bartlett = "Zhang, Bengio, Hardt, Recht & Vinyals 2017", "Bartlett, Foster & Telgarsky 2017"
    levels = _corruption_levels(metrics)
    q = metrics["corruption"].values[levels]
    n = int(metrics.attrs.get("n_train", metrics.sizes["sample"]))
    out = []
    for task in metrics["task"].values:
        m = metrics.sel(task=task)
        ok = m["status"] == "ok"
        final_train = m["train_error"].isel(step=-1).where(ok)
        mean_train = final_train.mean("seed")
        worst = int(np.nanargmax(mean_train.values))
        n_div = int((~ok).sum())
        out.append(judge(
            f"{task}: every variant (each label-corruption level q and each input variant) is fitted: the largest "
            f"seed-mean final training error is within one training sample (1/n) of 0", zhang, theory=0.0,
            measured=float(mean_train.max()), uncertainty=0.0, tolerance=1.0 / n,
            where=f"{m.sizes['variant']} variants, n = {n}; largest at {m['variant'].values[worst]}"
                  + (f"; {n_div} diverged members excluded" if n_div else ""),
            note="" if float(mean_train.max()) <= 1.0 / n else
            f"{m['variant'].values[worst]} is not fitted within the {metrics.attrs.get('steps', '?')} steps",
            figure="random_label_training"))
        if len(levels) >= 2:
            fit = m["steps_to_fit"].where(ok).isel(variant=levels).transpose("seed", "variant").values
            unfitted = int(np.isnan(fit).sum())
            out.append(seeds_exceed_zero(
                f"{task}: the steps to fit every training label grow with the corruption q (per-seed least-squares "
                "slope of the steps to fit against q, steps per unit q)", zhang, slopes(q, fit),
                where=f"q ∈ {[float(v) for v in q]}" + (f"; {unfitted} unfitted members leave their seed out"
                                                      if unfitted else ""),
                note="" if not unfitted else "seeds with an unfitted level have no slope",
                figure="random_label_fit_time"))
            margin = m["normalised_margin"].where(ok).isel(variant=levels).median("sample")
            out.append(seeds_exceed_zero(
                f"{task}: the normalised margins shrink with the corruption q (minus the per-seed slope of the median "
                "normalised margin against q)", bartlett, -slopes(q, margin.transpose("seed", "variant").values),
                where=f"median over the {n} training samples, q ∈ {[float(v) for v in q]}",
                figure="normalised_margins"))
            log_ra = np.log(m["spectral_complexity"].where(ok).isel(variant=levels).transpose("seed", "variant"))
            out.append(seeds_exceed_zero(
                f"{task}: the spectral complexity R_A grows with the corruption q (per-seed slope of log R_A "
                "against q)", bartlett, slopes(q, log_ra.values), where=f"q ∈ {[float(v) for v in q]}",
                figure="normalised_margins"))
        random = [i for i in levels if metrics["corruption"].values[i] == 1.0]
        if random:
            out.append(_chance_claim(task, m.isel(variant=random[0]), theory))
    return out


def _chance_claim(task, m, theory) -> Claim:
    """Random labels (q = 1) are drawn uniformly over the C classes independently of the inputs, and the network's
    initialisation is symmetric under a permutation of its output units: the trained network's prediction at any
    test point is then uniform over the classes in distribution, so its expected clean test error is exactly
    1 − 1/C. Only sampling noise separates the measurement from it: the deviation of the seed mean in standard
    errors, the larger of the seeds' (ddof 1) and the binomial one of the pooled n_test predictions (which ignores
    their correlation through the shared network), against the 3σ false-alarm rate 0.27 %: the normal quantile for
    the known binomial SE, the Student-t one (S − 1 degrees of freedom) for the estimated seed SE."""
    error = m["test_error"].isel(step=-1).where(m["status"] == "ok")
    n_ok = int(error.count())
    chance = float(theory["chance_error"].sel(task=task))
    mean = float(error.mean()) if n_ok else None
    n_test = int(m["n_test"]) if "n_test" in m else None
    seed_se = float(error.std(ddof=1)) / np.sqrt(n_ok) if n_ok > 1 else np.nan
    binomial_se = np.sqrt(chance * (1 - chance) / (n_ok * n_test)) if n_test and n_ok else np.nan
    se = np.nanmax([seed_se, binomial_se]) if np.isfinite([seed_se, binomial_se]).any() else np.nan
    z = abs(mean - chance) / se if mean is not None and np.isfinite(se) and se > 0 else None
    # the binomial SE is known (no degrees of freedom lost): the normal cut; an estimated seed SE: Student t
    estimated = np.isfinite(seed_se) and not seed_se <= binomial_se
    cut = student_t_quantile(n_ok if estimated else math.inf, 1.0 - FALSE_ALARM)
    return judge(
        f"{task}: networks trained on random labels (q = 1) test at chance, 1 − 1/C (deviation of the seed-mean "
        "clean test error in standard errors, the larger of the seeds' and the binomial one of the pooled test "
        "predictions; cut at the 0.27 % false-alarm rate: normal for the binomial SE, Student t for the seeds')",
        "Zhang, Bengio, Hardt, Recht & Vinyals 2017", theory=0.0, measured=z, uncertainty=0.0,
        tolerance=cut,
        where=f"{task}: final test error {mean if mean is None else round(mean, 4)} ± {se:.3g} over {n_ok} seeds "
              f"× {n_test} test points against 1 − 1/C = {chance:.4g} ({'seed' if estimated else 'binomial'} SE)",
        figure="random_label_test_error")
