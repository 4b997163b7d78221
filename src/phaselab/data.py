"""Synthetic data: teachers, held-out test sets, the input stream, and where every seed comes from.

Seed derivation lives here and only here. Every random quantity of a run is drawn from a generator seeded by
``derive_seed(config_seed, purpose, *keys)``: numpy's ``SeedSequence`` hashes the tuple, so streams for different
purposes, dimensions, widths and seeds are independent and the same tuple always gives the same numbers.

- teacher weights:   (TEACHER, d, seed)
- held-out test set: (TEST, d, seed)
- student init:      (STUDENT, d, p, seed)      -> shared by all learning rates of that seed (common random numbers)
- input stream:      (STREAM, d, seed)          -> shared by all members of that seed group, every width
- label noise:       (LABEL_NOISE, d, seed)     -> likewise
"""

from __future__ import annotations

import numpy as np

TEACHER, TEST, STUDENT, STREAM, LABEL_NOISE = 1, 2, 3, 4, 5


def derive_seed(config_seed: int, purpose: int, *keys: int) -> int:
    """A 63-bit seed for (config seed, purpose, keys): the one documented place where seeds are made."""
    state = np.random.SeedSequence([int(config_seed), int(purpose), *map(int, keys)]).generate_state(2, np.uint32)
    return int((int(state[0]) << 31) ^ int(state[1])) & ((1 << 63) - 1)


def rng(config_seed: int, purpose: int, *keys: int) -> np.random.Generator:
    return np.random.default_rng(derive_seed(config_seed, purpose, *keys))


def erf_committee(fields: np.ndarray) -> np.ndarray:
    """f = mean_r erf(h_r/√2) over the last axis: the committee machine's output for local fields h."""
    from scipy.special import erf

    return erf(fields / np.sqrt(2.0)).mean(axis=-1)


def orthogonal_teacher(d: int, k: int, generator: np.random.Generator) -> np.ndarray:
    """k teacher rows, mutually orthogonal, each of norm √d, so that P = W* W*ᵀ / d = I_k."""
    if k > d:
        raise ValueError(f"teacher.k = {k} exceeds the input dimension d = {d}")
    q, r = np.linalg.qr(generator.standard_normal((d, k)))
    q = q * np.sign(np.diag(r))  # a unique (Haar) orthonormal frame
    return np.sqrt(d) * q.T


def teacher_student_data(d: int, k: int, n_seeds: int, n_test: int, config_seed: int) -> dict[str, np.ndarray]:
    """Teachers and held-out test sets for every seed at input dimension d.

    Returns ``teacher`` (seed, k, d), ``test_x`` (seed, n_test, d) and ``test_f`` (seed, n_test), the clean teacher
    output f*(x) on the test inputs (the excess risk excludes label noise).
    """
    teacher = np.stack([orthogonal_teacher(d, k, rng(config_seed, TEACHER, d, s)) for s in range(n_seeds)])
    test_x = np.stack([rng(config_seed, TEST, d, s).standard_normal((n_test, d)) for s in range(n_seeds)])
    test_f = erf_committee(np.einsum("snd,skd->snk", test_x, teacher) / np.sqrt(d))
    return {"teacher": teacher.astype(np.float32), "test_x": test_x.astype(np.float32), "test_f": test_f}


def student_init(d: int, p: int, n_seeds: int, init_scale: float, config_seed: int) -> np.ndarray:
    """Initial students (seed, p, d), entries N(0, init_scale²): Q0 ≈ init_scale² I, M0 = O(1/√d)."""
    return np.stack(
        [init_scale * rng(config_seed, STUDENT, d, p, s).standard_normal((p, d)) for s in range(n_seeds)]
    ).astype(np.float32)


def load_npz(path) -> dict[str, np.ndarray]:
    """Load every array of an .npz file; a missing, truncated or corrupt file is an error naming it."""
    try:
        with np.load(path) as archive:
            return {name: archive[name] for name in archive.files}
    except (OSError, ValueError, EOFError) as err:
        raise RuntimeError(f"cannot read data file '{path}': {err}") from err
    except Exception as err:  # zipfile.BadZipFile and friends
        raise RuntimeError(f"cannot read data file '{path}': {type(err).__name__}: {err}") from err


def save_npz_atomic(path, **arrays) -> None:
    """np.savez to a temporary file beside ``path``, then rename: a killed job never leaves a half file."""
    from phaselab.atomic import replacing

    with replacing(path) as tmp, open(tmp, "wb") as fh:
        np.savez(fh, **arrays)


# ----------------------------------------------------------------------------------------------------------------
# Over-parameterisation experiments (double descent, random labels): problems, the digits set and its variants.
# Seeds: (LINEAR_PROBLEM, n, p, seed), (RANDOM_FEATURES, d, n, N, seed), (DIGITS_SPLIT, seed),
# (LABEL_CORRUPTION, task, seed), (INPUT_VARIANT, task, seed), (TEACHER_TASK, d, seed), (NETWORK_INIT, width, seed).
# ----------------------------------------------------------------------------------------------------------------
LINEAR_PROBLEM, RANDOM_FEATURES, DIGITS_SPLIT, LABEL_CORRUPTION, INPUT_VARIANT, TEACHER_TASK, NETWORK_INIT = (
    61, 62, 63, 64, 65, 66, 67)


def sphere(shape: tuple[int, ...], d: int, generator: np.random.Generator) -> np.ndarray:
    """Points uniform on the sphere of radius √d in R^d, array of shape (*shape, d) (Mei & Montanari 2019)."""
    z = generator.standard_normal((*shape, d))
    return np.sqrt(d) * z / np.linalg.norm(z, axis=-1, keepdims=True)


def linear_problem(n: int, p: int, signal: float, noise: float, generator: np.random.Generator):
    """Isotropic linear regression (Hastie, Montanari, Rosset & Tibshirani 2019): X (n, p) with N(0, 1) entries,
    β uniform on the sphere ‖β‖² = signal, y = Xβ + ε with ε ~ N(0, noise). Returns (X, y, β)."""
    X = generator.standard_normal((n, p))
    beta = np.sqrt(signal) * sphere((), p, generator) / np.sqrt(p)
    return X, X @ beta + np.sqrt(noise) * generator.standard_normal(n), beta


def load_digits_standardised() -> tuple[np.ndarray, np.ndarray]:
    """The 8×8 handwritten digits shipped with scikit-learn (1797 images, 10 classes; read from the package, no
    download), each pixel standardised to zero mean and unit variance over the set (constant pixels stay 0).
    Returns inputs (1797, 64) float32 and labels (1797,) int64."""
    from sklearn.datasets import load_digits

    bunch = load_digits()
    x = bunch.data.astype(np.float64)
    std = x.std(axis=0)
    x = (x - x.mean(axis=0)) / np.where(std > 0, std, 1.0)
    return x.astype(np.float32), bunch.target.astype(np.int64)


def split(n_total: int, n_train: int, generator: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """A random train/test split of n_total samples: (train indices (n_train,), the rest as test indices)."""
    order = generator.permutation(n_total)
    return order[:n_train], order[n_train:]


def corrupt_labels(labels: np.ndarray, q: float, n_classes: int, generator: np.random.Generator) -> np.ndarray:
    """Each label replaced, with probability q, by a class drawn uniformly from all n_classes (Zhang, Bengio,
    Hardt, Recht & Vinyals 2017): a fraction q(C−1)/C of the labels ends up wrong. The same generator state gives
    nested corrupted sets for increasing q (common random numbers across corruption levels)."""
    u = generator.random(labels.shape)
    replacement = generator.integers(0, n_classes, labels.shape)
    return np.where(u < q, replacement, labels)


def shuffle_pixels(x: np.ndarray, generator: np.random.Generator) -> np.ndarray:
    """One random permutation of the input coordinates, the same for every sample (Zhang et al. 2017)."""
    return x[..., generator.permutation(x.shape[-1])]


def gaussian_inputs(x: np.ndarray, generator: np.random.Generator) -> np.ndarray:
    """Inputs replaced by Gaussian noise with each coordinate's mean and standard deviation (Zhang et al. 2017)."""
    return (x.mean(axis=0) + x.std(axis=0) * generator.standard_normal(x.shape)).astype(x.dtype)


def teacher_task(n: int, d: int, n_classes: int, generator: np.random.Generator,
                 teacher: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A synthetic classification task: x ~ N(0, I_d), label argmax_c (W* x)_c of a Gaussian linear teacher
    W* (n_classes, d). Pass ``teacher`` to draw more samples of the same task. Returns (x, labels, teacher)."""
    if teacher is None:
        teacher = generator.standard_normal((n_classes, d))
    x = generator.standard_normal((n, d)).astype(np.float32)
    return x, np.argmax(x @ teacher.T, axis=-1).astype(np.int64), teacher


# ----------------------------------------------------------------------------------------------------------------
# Curvature and implicit-bias experiments (edge of stability, sharpness, implicit bias, information plane).
# Seeds: (DIGITS_SUBSET,), (MLP_INIT, seed), (MINIBATCHES, cell key), (SEPARABLE_SET, d, seed, attempt),
# (BIT_SPLIT, seed), (REGRESSION_TEACHER, d, seed).
# ----------------------------------------------------------------------------------------------------------------
DIGITS_SUBSET, MLP_INIT, MINIBATCHES, SEPARABLE_SET, BIT_SPLIT, REGRESSION_TEACHER = 81, 82, 83, 84, 85, 86


def digits_subset(n_train: int, generator: np.random.Generator) -> dict[str, np.ndarray]:
    """A random training subset of n_train standardised digits and the rest as test set; one-hot float targets."""
    x, labels = load_digits_standardised()
    train, test = split(len(x), n_train, generator)
    onehot = np.eye(10, dtype=np.float32)[labels]
    return {"x_train": x[train], "y_train": onehot[train], "x_test": x[test], "y_test": onehot[test]}


def separable_set(n: int, d: int, config_seed: int, seed: int, margin_gap: float = 0.5, alpha_ratio: float = 0.2,
                  max_attempts: int = 10000) -> tuple[np.ndarray, np.ndarray]:
    """n points (half per class, y = ±1) in R^d, separable through the origin, for Soudry et al. (2018).

    Two Gaussian clouds (standard deviation 0.5) around ±μ, μ = (1.5, 0.5, 0, …), rescaled so that max ‖x‖ = 1.
    Draws (SEPARABLE_SET, d, seed, attempt) for attempt = 0, 1, … until the set is well conditioned for the
    asymptotics w(t) = ŵ log t + w̃ + o(1): separable through the origin, support vectors spanning R^d (so that w̃
    is fixed by the theory), every other point at y ŵ·x ≥ 1 + ``margin_gap`` (its pull on w decays like
    t^−margin_gap) and every SVM dual variable at least ``alpha_ratio`` times the largest.
    """
    from phaselab.theory.implicit_bias import max_margin, support, support_spans_data

    mu = np.zeros(d)
    mu[:2] = (1.5, 0.5)[:d]
    y = np.repeat([1.0, -1.0], [n - n // 2, n // 2])
    for attempt in range(max_attempts):
        x = y[:, None] * mu + 0.5 * rng(config_seed, SEPARABLE_SET, d, seed, attempt).standard_normal((n, d))
        x /= np.linalg.norm(x, axis=1).max()
        z = y[:, None] * x
        try:
            w_hat, alpha = max_margin(z)
        except ValueError:
            continue
        sv = support(alpha)
        others = np.delete(z @ w_hat, sv)
        if (support_spans_data(z, alpha) and np.linalg.matrix_rank(x) == d
                and alpha[sv].min() >= alpha_ratio * alpha.max()
                and (others.size == 0 or others.min() >= 1 + margin_gap)):
            return x, y
    raise RuntimeError(f"no well-conditioned separable set in {max_attempts} draws (n = {n}, d = {d})")


def icosahedron() -> np.ndarray:
    """The 12 vertices of the regular icosahedron on the unit sphere, (12, 3): 12 uniformly spread points on S²."""
    phi = (1 + 5**0.5) / 2
    v = np.array([p for a in (1, -1) for b in (1, -1) for p in ((0, a, b * phi), (a, b * phi, 0), (b * phi, 0, a))])
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def twelve_bit_task(threshold: float = 2.5) -> tuple[np.ndarray, np.ndarray]:
    """The 12-bit task of Shwartz-Ziv & Tishby (2017), rebuilt: all 4096 inputs x ∈ {−1, +1}^12 and labels y ∈ {0, 1}.

    Their label file is not distributed; as in their construction the 12 bits sit on 12 uniformly spread points u_i
    of the sphere (the icosahedron's vertices) and the label is a threshold of a rotation-invariant function of
    the pattern: y = 1[‖Σ_{i: x_i = +1} u_i‖² > threshold]. threshold = 2.5 gives p(y = 1) = 2036/4096 ≈ 0.497,
    so H(Y) = I(X;Y) ≈ 0.99998 bits, close to their ≈ 0.99.
    """
    bits = (np.arange(4096)[:, None] >> np.arange(12)) & 1
    dipole = np.linalg.norm(bits @ icosahedron(), axis=1) ** 2
    return (2 * bits - 1).astype(np.float32), (dipole > threshold).astype(np.int64)


# ----------------------------------------------------------------------------------------------------------------
# Perceptron experiments (capacity, learning curves).
# Seeds: (CAPACITY_PATTERNS, N, P), (CAPACITY_LABELS, N, P): all trials of one (N, P) from one draw, so a run
# with more trials keeps the first ones; (PERCEPTRON_TEACHER, N, binary, seed), (PERCEPTRON_INPUTS, N, binary,
# seed): one nested input stream per seed, the training set at α is its first round(αN) examples;
# (GIBBS_SAMPLER, N, P): the momenta of the version-space sampler for all seeds at one training-set size.
# ----------------------------------------------------------------------------------------------------------------
CAPACITY_PATTERNS, CAPACITY_LABELS, PERCEPTRON_TEACHER, PERCEPTRON_INPUTS, GIBBS_SAMPLER = 71, 72, 73, 74, 75


def random_dichotomies(N: int, P: int, n_trials: int, config_seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Cover's and Gardner's storage problem: patterns ξ^μ ~ N(0, I_N) (trials, P, N) float32, labels ±1 with
    probability ½ each (trials, P) float32."""
    patterns = rng(config_seed, CAPACITY_PATTERNS, N, P).standard_normal((n_trials, P, N), dtype=np.float32)
    labels = 2.0 * rng(config_seed, CAPACITY_LABELS, N, P).integers(0, 2, (n_trials, P)) - 1.0
    return patterns, labels.astype(np.float32)


def perceptron_teacher_student(N: int, n_examples: int, n_seeds: int, config_seed: int,
                               binary: bool = False) -> dict[str, np.ndarray]:
    """A teacher perceptron per seed and its labelled input stream (Engel & Van den Broeck ch. 2).

    ``teacher`` (seeds, N): w* ~ N(0, I_N), or uniform on {−1, +1}^N when ``binary``; ``inputs`` (seeds,
    n_examples, N) float32 with N(0, 1) entries; ``labels`` = sign(w*·x) (seeds, n_examples) float32, computed in
    float64 from the stored float32 inputs.
    """
    flag = int(binary)
    teacher = np.stack([
        (2.0 * rng(config_seed, PERCEPTRON_TEACHER, N, flag, s).integers(0, 2, N) - 1.0) if binary
        else rng(config_seed, PERCEPTRON_TEACHER, N, flag, s).standard_normal(N) for s in range(n_seeds)])
    inputs = np.stack([rng(config_seed, PERCEPTRON_INPUTS, N, flag, s).standard_normal((n_examples, N),
                                                                                      dtype=np.float32)
                       for s in range(n_seeds)])
    labels = np.sign(np.einsum("spn,sn->sp", inputs.astype(np.float64), teacher)).astype(np.float32)
    return {"teacher": teacher, "inputs": inputs, "labels": labels}
