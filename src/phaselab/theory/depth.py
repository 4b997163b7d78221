"""What depth buys: closed forms for the ``depth`` experiment (shared/reference/theory.md, section 10).

- Telgarsky (2016): the tent map Δ(x) = 2 relu(x) − 4 relu(x − ½) on [0, 1] composed k times (Δ^k, a sawtooth of
  2^k linear pieces, values in [0, 1]) is computed exactly by a ReLU network of k layers of 2 units. A network
  with one hidden layer of N units on one input is piecewise linear with at most t = N + 1 pieces, and any function
  with t pieces has mean squared error on [0, 1] (uniform x)

      MSE ≥ (1/24) (1 − (2t + 2)/2^k)                                   (lower bound; derivation in shallow_lower)

  while an explicit N-unit network (exact on the first N − 1 pieces, then up to ½ and flat: shallow_construction)
  reaches

      MSE = (1/12) (1 − (N − ½)/2^k)   (1 ≤ N < 2^k),   0 for N ≥ 2^k (relu(x) + one unit a knot; N = 2^k − 1
      units give 2^k pieces but cannot interpolate: see shallow_construction).

  (The issue's bracket ≈ (1/12)(1 − (N − 1)/2^k) is the same construction without the half piece.)

- Montúfar, Pascanu, Cho & Bengio (2014): n0 inputs, L hidden layers of width n ≥ n0: the maximal number of linear
  regions is at least (⌊n/n0⌋^n0)^(L−1) Σ_{j≤n0} binom(n, j); one hidden layer of N units has at most (and
  generically exactly, on the whole input space) Σ_{j≤n0} binom(N, j). Upper bound for any depth (Montúfar 2017;
  Serra, Tjandraatmadja & Ramalingam 2018, the simple form): Π_l Σ_{j ≤ min(n0, n_1, …, n_l)} binom(n_l, j).
- Lin, Tegmark & Rolnick (2017): xy ≈ [σ(λ(x+y)) + σ(−λ(x+y)) − σ(λ(x−y)) − σ(−λ(x−y))] / (4λ²σ''(0)); by Taylor
  the error is xy · λ² σ''''(0) (x² + y²) / (6 σ''(0)) + O(λ⁴); and Π x_i = Σ_{s∈{±1}^n} (Π s_i)(s·x)^n / (2^n n!).
  Deep: a binary tree of n − 1 gates (4(n − 1) neurons in ⌈log2 n⌉ hidden layers) computes Π x_i with error
  κλ² Π x_i Σ_g (a_g² + b_g²) + O(λ⁴) (κ = σ''''(0)/(6σ''(0)); a_g, b_g the sub-products entering gate g), so its
  mean squared error on U[−1, 1]^n relative to Var Π x_i = 3^−n is C_n λ⁴ with C_n in closed form
  (product_tree_mse_coefficient).
- Shalev-Shwartz, Shamir & Shammah (2017): parities h_v(x) = Π_{i∈v} x_i on {±1}^d, square loss
  F_v(w) = ½ E_x (p_w(x) − h_v(x))². Only −E_x[h_v(x) g(x)] (g = ∇_w p_w) depends on v, so with ĝ(v) = E_x[h_v g]
  (the Walsh–Fourier coefficients of g) the variance over all 2^d subsets v is
  Var_v ∇F_v = 2^−d Σ_v ‖ĝ(v)‖² − ‖2^−d Σ_v ĝ(v)‖² = 2^−d E_x‖g‖² − 2^−2d ‖g(𝟙)‖²  (Parseval; 𝟙 = all ones)
  ≤ 2^−d E_x‖g‖² ≤ G² 2^−d with G² = max_x ‖g(x)‖².
"""

from __future__ import annotations

import itertools
from math import comb, factorial

import numpy as np

# ------------------------------------------------------------------------------------------ Telgarsky 2016


def relu(z):
    return np.maximum(z, 0.0)


def tent(x):
    """Δ(x) = 2 relu(x) − 4 relu(x − ½): on [0, 1] the tent min(2x, 2 − 2x)."""
    return 2.0 * relu(x) - 4.0 * relu(x - 0.5)


def sawtooth(x, k: int):
    """Δ^k(x) = min(2y, 2 − 2y) iterated k times (not through ReLUs): the target, 2^k pieces on [0, 1]."""
    y = np.asarray(x, dtype=float)
    for _ in range(k):
        y = np.minimum(2.0 * y, 2.0 - 2.0 * y)
    return y


def deep_tent_network(k: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """The k-layer, 2-units-a-layer ReLU network of Δ^k: [(W_l, b_l)] for the hidden layers, then the linear output
    layer. Layer 1 computes (relu(x), relu(x − ½)); layer l > 1 the same of Δ(previous) = 2h_1 − 4h_2."""
    layers = [(np.array([[1.0], [1.0]]), np.array([0.0, -0.5]))]
    for _ in range(k - 1):
        layers.append((np.array([[2.0, -4.0], [2.0, -4.0]]), np.array([0.0, -0.5])))
    layers.append((np.array([[2.0, -4.0]]), np.array([0.0])))
    return layers


def mlp_forward(layers, x: np.ndarray) -> np.ndarray:
    """A ReLU network [(W, b), ...] (last layer linear) on inputs x (n, n0) → (n, out)."""
    h = np.asarray(x, dtype=float)
    for i, (W, b) in enumerate(layers):
        h = h @ W.T + b
        if i < len(layers) - 1:
            h = relu(h)
    return h


def count_pieces(y: np.ndarray, x: np.ndarray, tol: float = 1e-7) -> int:
    """Linear pieces of a sampled piecewise-linear function: 1 + the number of slope changes between neighbouring
    grid intervals (a lower bound when two kinks fall between grid points)."""
    slope = np.diff(y) / np.diff(x)
    return 1 + int(np.sum(np.abs(np.diff(slope)) > tol * max(1.0, float(np.abs(slope).max()))))


def shallow_upper(k: int, N) -> np.ndarray:
    """MSE of the explicit N-unit network of :func:`shallow_construction` against Δ^k (uniform x on [0, 1]):
    (1/12)(1 − (N − ½)/2^k) for 1 ≤ N < 2^k, 0 from N = 2^k on."""
    N = np.asarray(N, dtype=float)
    P = 2.0**k
    return np.where(N >= P, 0.0, np.where(N >= 1, (1.0 - (N - 0.5) / P) / 12.0, 1.0 / 12.0))


def shallow_lower(k: int, N) -> np.ndarray:
    """Lower bound on the MSE of ANY function with t = N + 1 linear pieces against Δ^k: (1/24)(1 − (2t + 2)/2^k).

    Δ^k − ½ changes sign at 2^k points, bounding 2^k − 1 full triangles of width 2^−k and height ½, alternately above
    and below ½, each with ∫(Δ^k − ½)² = 2^−k/12. f − ½ changes sign at most t times (once a piece), so at least
    2^k − 1 − t triangles lie inside the ≤ t + 1 intervals where f − ½ keeps its sign, and in each such interval at
    least ⌊r/2⌋ of its r triangles are on the wrong side of ½ — where the error is at least the triangle's own
    ∫(Δ^k − ½)². Σ⌊r/2⌋ ≥ (2^k − 1 − t − (t + 1))/2, times 2^−k/12.
    """
    t = np.asarray(N, dtype=float) + 1.0
    return np.maximum(0.0, (1.0 - (2.0 * t + 2.0) / 2.0**k) / 24.0)


def shallow_construction(k: int, N: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    """An explicit one-hidden-layer ReLU network of N ≥ 1 units: (w, b, a, c), f(x) = c + Σ a_i relu(w_i x + b_i).

    N ≥ 2^k: relu(x) with the first slope plus one unit at each of the 2^k − 1 interior knots (exact; spare units
    get a = 0). With N = 2^k − 1 units the interpolant is out of reach although it has only N + 1 pieces: every unit
    changes the slope by its a_i at its knot, the slopes ±2^k alternate (jumps ±2^(k+1)), and the first slope 2^k
    must be a sum of jumps of left-facing units — an even multiple of 2^k. 1 ≤ N < 2^k: exact on the first
    m = N − 1 pieces, then along the next piece to ½ at its midpoint, then flat at ½, with left-facing units
    relu(t_i − x) only (f(1) = c); its MSE is :func:`shallow_upper`.
    """
    P = 2**k
    if N >= P:
        knots = np.arange(1, P) / P
        xs = np.concatenate([[0.0], knots, [1.0]])
        slopes = np.diff(sawtooth(xs, k)) / np.diff(xs)
        w = np.concatenate([[1.0], np.ones(P - 1), np.zeros(N - P)])
        b = np.concatenate([[0.0], -knots, np.zeros(N - P)])
        a = np.concatenate([[slopes[0]], slopes[1:] - slopes[:-1], np.zeros(N - P)])
        return w, b, a, 0.0
    m = N - 1
    knots = np.concatenate([np.arange(1, m + 1) / P, [(m + 0.5) / P]])
    xs = np.concatenate([[0.0], knots, [1.0]])
    ys = sawtooth(xs, k)
    ys[-1] = 0.5
    slopes = np.diff(ys) / np.diff(xs)
    return -np.ones(N), knots.copy(), slopes[1:] - slopes[:-1], 0.5


def shallow_forward(w, b, a, c, x: np.ndarray) -> np.ndarray:
    return c + relu(np.multiply.outer(x, w) + b) @ a


# ------------------------------------------------------------------------------ Montúfar et al. 2014 regions


def regions_shallow_max(n0: int, N) -> np.ndarray:
    """Σ_{j≤n0} binom(N, j): regions of N hyperplanes in general position in R^n0 (Zaslavsky)."""
    return np.array([sum(comb(int(n), j) for j in range(n0 + 1)) for n in np.ravel(N)]).reshape(np.shape(N))


def regions_deep_max(n0: int, n: int, L) -> np.ndarray:
    """(⌊n/n0⌋^n0)^(L−1) Σ_{j≤n0} binom(n, j): regions Montúfar et al. (2014) construct with L layers of width n."""
    base = sum(comb(n, j) for j in range(n0 + 1))
    return np.array([(n // n0) ** (n0 * (int(l) - 1)) * base for l in np.ravel(L)]).reshape(np.shape(L))


def regions_upper(n0: int, widths) -> int:
    """Π_l Σ_{j ≤ min(n0, n_1, …, n_l)} binom(n_l, j): an upper bound on the regions of any ReLU network with these
    hidden widths (Montúfar 2017; Serra et al. 2018, their Theorem 1 loosened)."""
    total, dim = 1, n0
    for n in widths:
        dim = min(dim, n)
        total *= sum(comb(n, j) for j in range(dim + 1))
    return total


def activation_patterns(layers, x: np.ndarray) -> np.ndarray:
    """The on/off pattern of every hidden unit of the ReLU network ``layers`` at the inputs x: (n, units) bool."""
    h, bits = np.asarray(x, dtype=float), []
    for W, b in layers[:-1]:
        z = h @ W.T + b
        bits.append(z > 0)
        h = relu(z)
    return np.concatenate(bits, axis=1)


def count_regions(layers, lo: float, hi: float, points: int, chunk: int = 65536) -> int:
    """Distinct activation patterns on a ``points`` × ``points`` grid of [lo, hi]²: a lower bound on the linear
    regions meeting the square (regions thinner than the grid spacing are missed)."""
    g = np.linspace(lo, hi, points)
    X = np.stack(np.meshgrid(g, g, indexing="ij"), -1).reshape(-1, 2)
    seen = set()
    for i in range(0, len(X), chunk):
        pats = np.packbits(activation_patterns(layers, X[i:i + chunk]), axis=1)
        seen.update(map(bytes, pats))
    return len(seen)


# --------------------------------------------------------------------------- Lin, Tegmark & Rolnick 2017


def softplus(u):
    return np.logaddexp(0.0, u)


SOFTPLUS_D2, SOFTPLUS_D4 = 0.25, -0.125  # σ''(0) and σ''''(0) of softplus (σ'' = s(1 − s), s the logistic)


def product_gate(x, y, lam: float, sigma=softplus, d2: float = SOFTPLUS_D2):
    """The 4-neuron approximation of xy with one hidden layer of σ."""
    u, v = lam * (x + y), lam * (x - y)
    return (sigma(u) + sigma(-u) - sigma(v) - sigma(-v)) / (4.0 * lam**2 * d2)


def product_gate_error_coefficient(d2: float = SOFTPLUS_D2, d4: float = SOFTPLUS_D4, box: float = 1.0) -> float:
    """C in max_{[−box, box]²} |gate − xy| = C λ² + O(λ⁴): |σ''''(0)/(6σ''(0))| · max |xy(x² + y²)| = … · 2 box⁴."""
    return abs(d4 / (6.0 * d2)) * 2.0 * box**4


def product_identity(x: np.ndarray) -> np.ndarray:
    """Σ_{s∈{±1}^n} (Π s_i)(s·x)^n / (2^n n!): exactly Π x_i (2^n neurons of u ↦ u^n), for x (…, n)."""
    x = np.asarray(x, dtype=float)
    n = x.shape[-1]
    s = 1.0 - 2.0 * ((np.arange(2**n)[:, None] >> np.arange(n)) & 1)  # (2^n, n)
    return (np.prod(s, axis=1) * (x @ s.T) ** n).sum(-1) / (2**n * factorial(n))


def product_tree_gates(n: int) -> list[tuple[tuple[int, ...], tuple[int, ...]]]:
    """The binary tree of product gates over inputs 0 … n − 1, level by level (neighbours paired, an odd one carried
    up): the leaf sets (A, B) of the two sub-products entering each of its n − 1 gates, in evaluation order."""
    level, gates = [(i,) for i in range(n)], []
    while len(level) > 1:
        nxt = []
        for j in range(0, len(level) - 1, 2):
            gates.append((level[j], level[j + 1]))
            nxt.append(level[j] + level[j + 1])
        level = nxt + ([level[-1]] if len(level) % 2 else [])
    return gates


def product_tree_layers(n: int) -> int:
    """Hidden layers of the tree of gates: ⌈log2 n⌉."""
    return int(np.ceil(np.log2(n))) if n > 1 else 0


def product_tree(x: np.ndarray, lam: float, sigma=softplus, d2: float = SOFTPLUS_D2) -> np.ndarray:
    """Π x_i for x (…, n) by the binary tree of :func:`product_gate`s (4 neurons each, :func:`product_tree_gates`'
    order): a deep network of 4(n − 1) neurons in ⌈log2 n⌉ hidden layers."""
    x = np.asarray(x, dtype=float)
    level = [x[..., i] for i in range(x.shape[-1])]
    while len(level) > 1:
        nxt = [product_gate(level[j], level[j + 1], lam, sigma, d2) for j in range(0, len(level) - 1, 2)]
        level = nxt + ([level[-1]] if len(level) % 2 else [])
    return level[0]


def product_tree_mse_coefficient(n: int, d2: float = SOFTPLUS_D2, d4: float = SOFTPLUS_D4) -> float:
    """C_n in E[(tree − Π x_i)²] / Var Π x_i = C_n λ⁴ + O(λ⁶), x ~ U[−1, 1]^n.

    To first order in λ² every gate's error κλ² a b (a² + b²) reaches the output multiplied by the other leaves, so
    tree − Π x = κλ² Π x Σ_g (a_g² + b_g²); expanding the square, every term is a monomial Π x_i^(2 m_i) with
    E = Π 1/(2 m_i + 1); Var Π x_i = 3^−n."""
    kappa = d4 / (6.0 * d2)
    sets = [s for gate in product_tree_gates(n) for s in gate]
    total = 0.0
    for A in sets:
        for B in sets:
            m = np.ones(n)
            m[list(A)] += 1
            m[list(B)] += 1
            total += float(np.prod(1.0 / (2.0 * m + 1.0)))
    return kappa**2 * total * 3.0**n


def equal_split(neurons: int, layers: int) -> list[int]:
    """Widths of ``layers`` hidden layers holding ``neurons`` in total, as equal as integers allow (the first
    ones one wider): the equal-neuron-count comparison of shallow and deep networks."""
    q, r = divmod(int(neurons), int(layers))
    if q < 1:
        raise ValueError(f"{neurons} neurons cannot fill {layers} hidden layers")
    return [q + (i < r) for i in range(layers)]


# ------------------------------------------------------------------------- Shalev-Shwartz et al. 2017 parity


def hypercube(d: int) -> np.ndarray:
    """All 2^d points of {±1}^d, row i = (1 − 2·bit_j(i))_j, so that h_v(x_i) = (−1)^popcount(i & v)."""
    return 1.0 - 2.0 * ((np.arange(2**d)[:, None] >> np.arange(d)) & 1)


def walsh_hadamard(g: np.ndarray) -> np.ndarray:
    """ĝ(v) = 2^−d Σ_i (−1)^popcount(i & v) g_i along axis 0 (length 2^d): fast Walsh–Hadamard transform."""
    a = np.array(g, dtype=float, copy=True)
    n, rest = a.shape[0], a.shape[1:]
    h = 1
    while h < n:
        a = a.reshape(n // (2 * h), 2, h, *rest)
        a = np.concatenate([a[:, 0] + a[:, 1], a[:, 0] - a[:, 1]], axis=1).reshape(n, *rest)
        h *= 2
    return a / n


def parity_gradient_variance(g: np.ndarray) -> dict[str, float]:
    """For g (2^d, P), ∇_w p_w at every point of :func:`hypercube`: the variance over all 2^d parities of the
    gradient of F_v, computed from the Walsh–Fourier coefficients; the Parseval form 2^−d E‖g‖² and the
    paper's bound G² 2^−d."""
    n = g.shape[0]
    ghat = walsh_hadamard(g)  # (2^d, P): row v = E_x[h_v(x) g(x)]
    variance = float(((ghat - ghat.mean(0)) ** 2).sum(1).mean())
    sq = (g**2).sum(1)
    return {"variance": variance, "parseval": float(sq.mean()) / n, "bound": float(sq.max()) / n}


def parity_gradient_variance_by_degree(g: np.ndarray, per_degree: int, rng: np.random.Generator) -> tuple[float, float]:
    """Monte Carlo estimate of Var_v ∇F_v (see :func:`parity_gradient_variance`) over parities drawn by degree, and its
    standard error, for g (2^d, P) on :func:`hypercube`.

    Uniform draws of v almost never hit the few low-degree parities that carry most of ‖ĝ‖² (binom(d, r) of the 2^d
    have degree r), so the plain estimate is skewed and its standard error hides it. Stratified: for each degree r,
    ``per_degree`` subsets of r bits drawn uniformly (all of them where binom(d, r) ≤ ``per_degree``: that stratum is
    exact), weight binom(d, r)/2^d; ĝ(v) = E_x[h_v g] per drawn v, centred on the exact mean over all v,
    2^−d Σ_v ĝ(v) = 2^−d g(𝟙)."""
    n = g.shape[0]
    d = int(round(np.log2(n)))
    X = hypercube(d)
    gbar = g[0] / n  # row 0 of the hypercube is 𝟙
    estimate, var = 0.0, 0.0
    for r in range(d + 1):
        count = comb(d, r)
        exact = count <= per_degree
        subsets = (list(itertools.combinations(range(d), r)) if exact
                   else [rng.choice(d, r, replace=False) for _ in range(per_degree)])
        H = np.stack([X[:, list(v)].prod(1) for v in subsets])  # (m, 2^d): h_v(x)
        dev = ((H @ g / n - gbar) ** 2).sum(1)
        estimate += count / n * float(dev.mean())
        if not exact:
            var += (count / n) ** 2 * float(dev.var(ddof=1)) / len(dev)
    return estimate, float(np.sqrt(var))
