"""What depth buys (issue 17, part 3): four small, exact-where-possible panels on the approximation side of depth.

- tent: Telgarsky (2016). Δ^k, the tent map composed k times (2^k pieces), built as a ReLU network of k layers of
  2 units and checked exact; one-hidden-layer networks of N units fitted to it (random breakpoints, least-squares
  output layer, then full-batch GD by ``engines.ensemble.train_ensemble``, many seeds) against the constructive
  upper bound and the piece-counting lower bound.
- regions: Montúfar et al. (2014). Maximal linear-region counts deep vs shallow at equal unit counts, beside the
  counts of random and trained ReLU networks on a 2-D square (distinct activation patterns on a grid: a lower
  bound), which sit far below the deep maximum (Hanin & Rolnick 2019).
- product: Lin, Tegmark & Rolnick (2017). The 4-neuron softplus product gate (error ∝ λ²) and the exact
  2^n-neuron identity for Π x_i; the binary tree of gates (4(n − 1) neurons, ⌈log2 n⌉ layers) against its closed-form
  λ⁴ error; and tanh networks of 1–4 hidden layers at equal total neuron counts trained by online SGD on Π x_i,
  x ~ U[−1, 1]^n (``engines.ensemble.train_ensemble`` with ``MLPSpec``), test MSE relative to Var Π x_i = 3^−n.
- parity: Shalev-Shwartz, Shamir & Shammah (2017). The variance over all 2^d parities of the loss gradient of a
  random ReLU network, exactly over the hypercube (Walsh–Hadamard), against 2^−d E‖∇p‖² and G² 2^−d; and online
  SGD on one parity of |v| = ⌊d/2⌋ bits: test accuracy against steps.

Cells: one a tent depth k, one for the regions, one for the product gate, one a product size n (trained networks),
one a parity dimension d. Seed purposes 121–139 (constants below; ``phaselab.data.derive_seed``).
"""

from __future__ import annotations

from dataclasses import dataclass

from phaselab.config import check_grid_axis, fail
from phaselab.experiment import Cell

TITLE = "what depth buys: sawtooth, linear regions, products and parities"
REFERENCES = ("Telgarsky, COLT 2016; Montúfar, Pascanu, Cho & Bengio, NeurIPS 2014; Hanin & Rolnick, ICML 2019; "
              "Lin, Tegmark & Rolnick, J. Stat. Phys. 2017; Shalev-Shwartz, Shamir & Shammah, ICML 2017")
FIGURES = ("depth_sawtooth", "depth_regions", "depth_product", "depth_multiply", "depth_parity")

# Seed purposes (phaselab.data.derive_seed), this type's range 121–139.
TENT_INIT, REGIONS_INIT, REGIONS_DATA, PARITY_INIT, PARITY_SUBSET, PARITY_STREAM, PARITY_TEST, PARITY_PROBE = (
    121, 122, 123, 124, 125, 126, 127, 128)
PRODUCT_IDENTITY_POINTS = 129
PRODUCT_NET_INIT, PRODUCT_NET_STREAM, PRODUCT_NET_VALIDATION, PRODUCT_NET_TEST, PRODUCT_TREE_POINTS = (
    130, 131, 132, 133, 134)
PARITY_DEGREE_PROBE = 135

COORDS = {
    "k": {"long_name": "tent-map compositions k (Δ^k has 2^k pieces)", "units": "1"},
    "units": {"long_name": "hidden units N of the one-hidden-layer network", "units": "1"},
    "tent_seed": {"long_name": "seed index (shallow sawtooth fits)", "units": "1"},
    "depth": {"long_name": "hidden layers L of the deep network", "units": "1"},
    "regions_seed": {"long_name": "seed index (region counts)", "units": "1"},
    "lam": {"long_name": "product-gate input scale λ", "units": "1"},
    "n_inputs": {"long_name": "inputs n multiplied", "units": "1"},
    "product_n": {"long_name": "inputs n of the trained product networks (target Π x_i)", "units": "1"},
    "budget": {"long_name": "total hidden neurons N in units of n (N = budget · n)", "units": "1"},
    "layers": {"long_name": "hidden layers L sharing the N neurons", "units": "1"},
    "product_lr": {"long_name": "SGD learning rate of the product networks", "units": "1"},
    "product_seed": {"long_name": "seed index (product networks)", "units": "1"},
    "product_step": {"long_name": "SGD step (product networks)", "units": "steps"},
    "d": {"long_name": "input dimension d (parity bits)", "units": "1"},
    "parity_seed": {"long_name": "seed index (parity runs)", "units": "1"},
    "step": {"long_name": "SGD step", "units": "steps"},
}


@dataclass(frozen=True, kw_only=True)
class TentCell(Cell):
    k: int


@dataclass(frozen=True, kw_only=True)
class RegionsCell(Cell):
    width: int


@dataclass(frozen=True, kw_only=True)
class ProductCell(Cell):
    max_n: int


@dataclass(frozen=True, kw_only=True)
class ProductNetCell(Cell):
    n: int


@dataclass(frozen=True, kw_only=True)
class ParityCell(Cell):
    d: int


def check(key: str, exp: dict) -> None:
    check_grid_axis(f"{key}.tent.k", exp["tent"]["k"])
    check_grid_axis(f"{key}.tent.units", exp["tent"]["units"])
    check_grid_axis(f"{key}.regions.depths", exp["regions"]["depths"])
    check_grid_axis(f"{key}.product.lam", exp["product"]["lam"])
    check_grid_axis(f"{key}.parity.d", exp["parity"]["d"])
    nets = exp["product_nets"]
    for sub in ("n", "budgets", "layers", "lr"):
        check_grid_axis(f"{key}.product_nets.{sub}", nets[sub])
    if min(nets["budgets"]) * min(nets["n"]) < max(nets["layers"]):
        fail(f"{key}.product_nets.budgets", nets["budgets"],
             f"the smallest budget · n must fill the {max(nets['layers'])} hidden layers with a neuron each")
    if exp["regions"]["width"] < 2:
        fail(f"{key}.regions.width", exp["regions"]["width"], "must be at least the 2 inputs (Montúfar's n ≥ n0)")


def cells(exp: dict) -> list[Cell]:
    out: list[Cell] = [TentCell(id=f"tent_k{k}", k=k) for k in exp["tent"]["k"]]
    out.append(RegionsCell(id="regions", width=exp["regions"]["width"]))
    out.append(ProductCell(id="product", max_n=exp["product"]["max_n"]))
    out += [ProductNetCell(id=f"product_n{n}", n=n) for n in exp["product_nets"]["n"]]
    out += [ParityCell(id=f"parity_d{d}", d=d) for d in exp["parity"]["d"]]
    return out
