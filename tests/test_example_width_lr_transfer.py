"""The researcher's own experiment type of examples/width_lr_transfer (``type: mylab.width_lr_transfer``, found via
``python_path: [.]``): its tiny config end to end in-process, and its SP / μP scalings against a computation by
hand (Yang et al. 2022, Table 3)."""

from __future__ import annotations

import importlib
import io
import json
import math
import shutil
import sys
from functools import partial
from pathlib import Path

import numpy as np
import pytest

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "width_lr_transfer"
TYPE = "mylab.width_lr_transfer"


def _forget_mylab():
    """Drop the example's modules and phaselab's caches of where modules live (the next copy is elsewhere)."""
    from phaselab import codehash, experiments

    for name in [m for m in sys.modules if m == "mylab" or m.startswith("mylab.")]:
        del sys.modules[name]
    for cached in (codehash.module_path, experiments.resolve, getattr(codehash, "_parsed", None)):
        if cached is not None and hasattr(cached, "cache_clear"):
            cached.cache_clear()
    importlib.invalidate_caches()


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """The tiny config run by phaselab.run from a temporary copy of the example folder (its working directory)."""
    import phaselab

    work = tmp_path_factory.mktemp("width_lr_transfer") / "width_lr_transfer"
    shutil.copytree(EXAMPLE, work, ignore=shutil.ignore_patterns("results", "__pycache__", ".snakemake", "*.html"))
    _forget_mylab()
    path_before = list(sys.path)
    log = io.StringIO()
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(work)
        result = phaselab.run("tiny.yaml", results=work / "results", log=log)
        light = importlib.import_module(TYPE)
        stages = importlib.import_module(f"{TYPE}.stages")
        assert Path(stages.__file__).resolve().is_relative_to(work.resolve()), "ran a stale copy of the example"
        yield {"result": result, "work": work, "log": log.getvalue(), "light": light, "stages": stages}
    sys.path[:] = path_before
    _forget_mylab()


def _numeric(da) -> bool:
    return da.dtype.kind in "iuf"


def test_tiny_metrics_dims_units_and_status(tiny):
    m = tiny["result"].metrics
    assert m.attrs["experiment_type"] == TYPE
    assert set(m.dims) == {"param", "width", "lr", "seed", "step", "tensor"}
    assert list(m["param"].values) == ["sp", "mup"]
    assert list(m["width"].values) == [16, 32]
    np.testing.assert_allclose(m["lr"].values, [0.125, 0.25, 0.5, 1.0])
    assert list(m["seed"].values) == [0, 1]
    assert m["step"].values[0] == 0 and m["step"].values[-1] == 20
    member = ("param", "width", "lr", "seed")
    dims = {"train_loss": (*member, "step"), "test_loss": (*member, "step"), "final_train_loss": member,
            "final_test_loss": member, "status": member, "diverged_at": member,
            "rate_factor": ("param", "width", "tensor"), "init_variance": ("param", "width", "tensor")}
    for name, want in dims.items():
        assert set(m[name].dims) == set(want), name
    for name, var in m.variables.items():
        assert var.attrs.get("long_name"), f"{name} lacks long_name"
        if _numeric(var):
            assert var.attrs.get("units"), f"{name} lacks units"
    assert m["width"].attrs["units"] == "hidden units" and m["step"].attrs["units"] == "steps"

    status = m["status"].values.astype(str)
    assert set(np.unique(status)) <= {"ok", "diverged"}
    ok = status == "ok"
    assert ok.any(), "every member diverged"
    assert np.isfinite(m["final_train_loss"].values[ok]).all()
    assert np.isfinite(m["diverged_at"].values[~ok]).all() and np.isnan(m["diverged_at"].values[ok]).all()
    # SP and μP are one network at the base width (n0 = 16 in tiny.yaml): same numbers, member for member.
    sp, mup = (m["final_train_loss"].sel(param=p, width=16).values for p in ("sp", "mup"))
    np.testing.assert_allclose(sp, mup, rtol=1e-5)


def test_tiny_theory_figures_and_claims(tiny):
    result, light = tiny["result"], tiny["light"]
    t = result.theory
    for name in ("eta_star", "log_eta_star_se", "eta_star_at_edge", "loss_at_eta_star", "eta_star_fit",
                 "eta_star_theory"):
        assert t[name].dims == ("param", "width"), name
    for name in ("slope", "slope_se", "slope_se_bootstrap", "slope_se_fit", "intercept", "theory_slope"):
        assert t[name].dims == ("param",), name
    for name, var in t.variables.items():
        assert var.attrs.get("long_name") or name in t.coords and name in result.metrics.coords, name
        if _numeric(var) and name not in t.coords:
            assert var.attrs.get("units"), f"{name} lacks units"
    assert dict(zip(t["param"].values, t["theory_slope"].values, strict=True)) == {"sp": -1.0, "mup": 0.0}
    lr = result.metrics["lr"].values  # η* lies on the grid, within half a step of it (1 per octave here)
    eta = t["eta_star"].values[np.isfinite(t["eta_star"].values)]
    assert eta.size and ((eta >= lr.min() / 2**0.5) & (eta <= lr.max() * 2**0.5)).all()

    assert set(result.figures) == set(light.FIGURES) == {"loss_vs_lr", "optimal_lr"}
    import matplotlib.image

    for name, path in result.figures.items():
        assert path.is_file() and path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", name
        assert path.stat().st_size > 20_000, f"{name} is suspiciously small"
        image = matplotlib.image.imread(path)
        assert image.shape[0] > 300 and image.shape[1] > 300 and image[..., :3].std() > 0.05, name

    from phaselab.experiment import VERDICTS, Claim

    claims = result.claims
    assert len(claims) == 2 and all(isinstance(c, Claim) for c in claims)
    by = {("μP" if c.text.startswith("μP") else "SP"): c for c in claims}
    assert set(by) == {"μP", "SP"}
    assert by["μP"].theory == 0.0 and by["SP"].theory == -1.0
    for c in claims:
        assert c.verdict in VERDICTS and c.tolerance == tiny["stages"].SLOPE_TOLERANCE and c.source and c.where
        if c.measured is None or c.uncertainty is None:
            assert c.verdict == "inconclusive"
    written = json.loads((result.folder / "claims.json").read_text())
    assert [c["text"] for c in written] == [c.text for c in claims]
    assert "members diverged" in tiny["log"]


def test_bad_keys_are_named(tiny):
    from phaselab.config import ConfigError

    check = tiny["light"].check
    exp = {"grid": {"width": [16, 32], "parametrisation": ["sp"], "lr": {"min": 1.0, "max": 0.5, "per_octave": 1}},
           "task": {"n_train": 64}, "train": {"batch_size": 16}}
    with pytest.raises(ConfigError, match=r"grid\.lr\.max"):
        check("experiments.x", exp)
    exp["grid"]["lr"] = {"min": 0.5, "max": 1.0, "per_octave": 1}
    with pytest.raises(ConfigError, match=r"grid\.lr'"):
        check("experiments.x", exp)
    exp["grid"]["lr"]["per_octave"] = 2
    exp["train"]["batch_size"] = 65
    with pytest.raises(ConfigError, match=r"train\.batch_size"):
        check("experiments.x", exp)


def test_mup_and_sp_scalings_match_table_3_by_hand(tiny):
    """One SGD step of the engine on the stored parameters w (global rate η, multipliers m = √c) equals per-layer
    SGD on the effective weights W with the rates of Yang et al. 2022 Table 3 written out by hand here:
    input weights and hidden biases η·n/n0, hidden weights η, output weights η·n0/n, output bias η; and the
    initial variances 1/d, 1/n, n0/n² (SP: 1/fan_in everywhere, rate η)."""
    import torch

    from phaselab.engines.ensemble import train_ensemble

    light, stages = tiny["light"], tiny["stages"]
    d, n, n0, eta = 5, 128, 32, 0.3
    r = n / n0
    table = {  # (init variance of W, per-layer SGD rate / η): Table 3 of Yang et al. 2022, relative to n0
        "mup": {"W0": (1 / d, r), "b0": (0.0, r), "W1": (1 / n, 1.0), "b1": (0.0, r), "W2": (n0 / n**2, 1 / r),
                "b2": (0.0, 1.0)},
        "sp": {"W0": (1 / d, 1.0), "b0": (0.0, 1.0), "W1": (1 / n, 1.0), "b1": (0.0, 1.0), "W2": (1 / n, 1.0),
               "b2": (0.0, 1.0)},
    }
    rng = np.random.default_rng(7)
    x = torch.as_tensor(rng.standard_normal((40, d)))
    y = torch.as_tensor(rng.standard_normal(40))
    for param, want in table.items():
        factors = light.layer_factors(param, n, n0, 2, d, "tanh")
        assert factors.keys() == want.keys()
        for name, (var, rate) in want.items():
            assert math.isclose(factors[name][0], var, rel_tol=1e-12) and math.isclose(factors[name][1], rate), name
        mult = stages.multipliers(factors)
        w = stages.init_params(factors, [d, n, n, 1], [11], torch.float64)
        w = {k: v + 0.01 * torch.randn_like(v) if k.startswith("b") else v for k, v in w.items()}  # biases ≠ 0
        W = {k: v[0] for k, v in stages.effective(w, mult).items()}

        # By hand: plain autograd on the effective weights, per-layer rates from the table.
        Wh = {k: v.clone().requires_grad_(True) for k, v in W.items()}
        h = torch.tanh(x @ Wh["W0"].T + Wh["b0"])
        h = torch.tanh(h @ Wh["W1"].T + Wh["b1"])
        f = (h @ Wh["W2"].T + Wh["b2"])[:, 0]
        (0.5 * ((f - y) ** 2).mean()).backward()
        by_hand = {k: (v - eta * want[k][1] * v.grad).detach() for k, v in Wh.items()}

        # The engine: one step at global rate η on the stored parameters.
        loss = partial(stages.square_loss, mult=mult, activation="tanh")
        run = train_ensemble(w, loss, lambda step: (x, y), [eta], [0, 1], lambda p: {}, batch_in_dims=None)
        engine = {k: v[0] for k, v in stages.effective(run.params, mult).items()}
        for k in want:
            torch.testing.assert_close(engine[k], by_hand[k], rtol=1e-10, atol=1e-12, msg=f"{param} {k}")

    # SP and μP coincide at the base width (same factors, same initial weights).
    assert light.layer_factors("mup", n0, n0, 2, d, "relu") == light.layer_factors("sp", n0, n0, 2, d, "relu")
    # The drawn initial variances of the effective weights (n = 1024: ~10^4–10^6 entries a tensor).
    big = 1024
    factors = light.layer_factors("mup", big, n0, 2, d, "tanh")
    W = stages.effective(stages.init_params(factors, [d, big, big, 1], [3], torch.float64),
                         stages.multipliers(factors))
    for name, expected in (("W0", 1 / d), ("W1", 1 / big), ("W2", n0 / big**2)):
        assert abs(float(W[name].var()) / expected - 1) < 0.15, name


def test_output_moves_width_independently_only_in_mup(tiny):
    """The point of μP (Yang & Hu 2021): after one SGD step at a fixed η the change of the network's output is
    O(1) in the width under μP, but grows ∝ n under SP (its output-layer tangent kernel Σ φ(h_i)² ∝ n)."""
    import torch

    light, stages = tiny["light"], tiny["stages"]
    d, n0, eta = 8, 32, 0.05
    rng = np.random.default_rng(1)
    x = torch.as_tensor(rng.standard_normal((64, d)))
    y = torch.as_tensor(rng.standard_normal(64))

    def output_change(param, n):
        changes = []
        for seed in range(4):
            factors = light.layer_factors(param, n, n0, 1, d, "tanh")
            mult = stages.multipliers(factors)
            w = {k: v[0].requires_grad_(True)
                 for k, v in stages.init_params(factors, [d, n, 1], [seed], torch.float64).items()}
            grads = torch.autograd.grad(stages.square_loss(w, (x, y), mult), list(w.values()))
            w2 = {k: (v - eta * g).detach() for (k, v), g in zip(w.items(), grads, strict=True)}
            changes.append(float((stages.forward(w2, x, mult) - stages.forward(w, x, mult).detach()).abs().mean()))
        return np.mean(changes)

    sp_ratio = output_change("sp", 1024) / output_change("sp", 128)
    mup_ratio = output_change("mup", 1024) / output_change("mup", 128)
    assert 5 < sp_ratio < 12, sp_ratio  # ∝ n: 8
    assert 0.6 < mup_ratio < 1.6, mup_ratio  # width-independent
