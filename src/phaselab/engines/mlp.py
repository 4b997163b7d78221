"""Explicit batched forward/backward of dense MLPs for the ensemble engine (the fast path of ``train_ensemble``).

A network of L layers maps h₀ = x to

    h_{l+1} = σ(s_l · h_l W_lᵀ + b_l)  (l < L − 1),    f = s_{L−1} · h_{L−1} W_{L−1}ᵀ + b_{L−1},

with σ ∈ {tanh, relu, erf} (erf means erf(z/√2), the committee machine's activation), optional biases b_l, and
fixed per-layer scales s_l (1 for :mod:`phaselab.models.deep_mlp`, 1/√fan_in for the NTK-parametrised
:mod:`phaselab.models.two_layer`). Losses, averaged over the batch: ``squared`` ½‖f − y‖² (y one-hot or any float
target) and ``cross_entropy`` logsumexp f − f_y (integer labels or float targets t: logsumexp f − ⟨f, t⟩).

:class:`MLPSpec` names these choices; :class:`BatchedMLP` trains M members stacked on a leading axis by gradient
descent (plain, or with heavy-ball momentum and weight decay per member in ``torch.optim.SGD``'s form), step by
step, one chunk of members at a time, on a batch shared by all members (full-batch GD: x (n, d)) or on each
member's own minibatch (SGD: x (M, B, d), e.g. gathered per-member indices):

- every layer is one batched matmul over the chunk (``torch.baddbmm``/``bmm`` with ``out=`` buffers allocated once
  and reused at every step, activations and their derivatives in place: no fresh large temporaries, no page
  faults, no autograd graph);
- each weight is kept internally with its smaller dimension first, so that the weight update is one batched
  ``baddbmm_`` writing a short-and-wide matrix straight into the weights (the per-member learning rate, the scale
  and 1/batch are folded into the backpropagated signal first): no gradient buffer, no separate optimiser pass
  (with momentum or weight decay the same matmul writes into the velocity instead, then one pass moves the weights);
- tanh is evaluated as 2·sigmoid(2z) − 1 (the factor 2 folded into the matmul), twice as fast as ``torch.tanh``
  on the AMD host (about as fast on the Intel one) and equal to it to ~2e-16 absolute (float64);
- the chunk size (members batched at once) comes from the working set of one step (weights, activations and
  backpropagated signals of the chunk, see :func:`step_bytes`) against a cache budget
  (:func:`chunk_cache_budget`, from the caches in ``/sys/devices/system/cpu/cpu0/cache``) and a memory budget;
  where one member's step already overflows the cache (a large full-batch step: a compute-bound matmul), the chunk
  is 1, the per-run loop without its per-op overhead.

Members are independent, so chunking changes no number: member m's arithmetic is the same for every chunk size
(up to the BLAS kernel's blocking, i.e. float rounding). The same code runs on CUDA (no host syncs in a step).
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass

import torch

ACTIVATIONS = ("tanh", "relu", "erf")
LOSSES = ("squared", "cross_entropy")
_SQRT_2_OVER_PI = math.sqrt(2.0 / math.pi)
_INV_SQRT2 = 1.0 / math.sqrt(2.0)


@dataclass(frozen=True)
class MLPSpec:
    """What ``train_ensemble(..., model=MLPSpec(...))`` trains: the network family of the parameters' dict.

    ``weights``: the names of the weight matrices in order (default: ``W0, W1, ...`` or ``W1, W2, ...``, whichever
    the dict has), each (M, fan_out, fan_in); ``biases``: the bias names, one per layer, ``None`` for a layer
    without bias (default: ``b<i>`` matching ``W<i>`` where present); ``scales``: the factor s_l of each layer
    (default all 1).
    """

    activation: str = "tanh"
    loss: str = "squared"
    weights: tuple | None = None
    biases: tuple | None = None
    scales: tuple | None = None

    def __post_init__(self):
        if self.activation not in ACTIVATIONS:
            raise ValueError(f"unknown activation {self.activation!r}; known: {ACTIVATIONS}")
        if self.loss not in LOSSES:
            raise ValueError(f"unknown loss {self.loss!r}; known: {LOSSES}")

    def layers(self, params: dict) -> tuple[list[str], list[str | None], list[float]]:
        if self.weights is not None:
            weights = list(self.weights)
        else:
            weights = sorted((k for k in params if k.startswith("W") and k[1:].isdigit()), key=lambda k: int(k[1:]))
        if not weights:
            raise ValueError("MLPSpec: no weight matrices W<i> in the parameters")
        if self.biases is not None:
            biases = list(self.biases)
        else:
            biases = [f"b{w[1:]}" if f"b{w[1:]}" in params else None for w in weights]
        scales = [1.0] * len(weights) if self.scales is None else [float(s) for s in self.scales]
        if len(biases) != len(weights) or len(scales) != len(weights):
            raise ValueError("MLPSpec: weights, biases and scales must have one entry per layer")
        return weights, biases, scales


def cache_sizes() -> dict[int, int]:
    """Bytes of the data (or unified) CPU cache of each level {1: L1d, 2: L2, 3: L3} from sysfs; {} where it cannot
    be read."""
    sizes: dict[int, int] = {}
    root = "/sys/devices/system/cpu/cpu0/cache"
    try:
        for entry in os.listdir(root):
            if not entry.startswith("index"):
                continue
            with open(os.path.join(root, entry, "type")) as fh:
                if fh.read().strip() == "Instruction":
                    continue
            with open(os.path.join(root, entry, "level")) as fh:
                level = int(fh.read().strip())
            with open(os.path.join(root, entry, "size")) as fh:
                text = fh.read().strip().upper()
            scale = {"K": 2**10, "M": 2**20, "G": 2**30}.get(text[-1:], 1)
            sizes[level] = max(sizes.get(level, 0), int(text.rstrip("KMG")) * scale)
    except (OSError, ValueError):
        return {}
    return sizes


def chunk_cache_budget(sizes: dict[int, int] | None = None, default: int = 4 * 2**20) -> int:
    """The cache one chunk's step may fill: the core's private L2, or an eighth of the last-level cache where that
    is larger, at most 4 MiB of it (``default`` where sysfs says nothing). A virtual machine sees the whole host's
    L3, not its share of it: hence the cap.

    Measured best working sets (SGD B = 32 and full-batch GD, 64 → h → 10, h = 32 … 512, chunks 1 … 32, 1 thread):
    on an AMD EPYC guest (512 KiB L2, 32 MiB L3) 4–5 MiB; on an Intel Xeon guest (2 MiB L2, 480 MiB of L3 reported)
    1–2.6 MB, with 4 MiB within 16 % of the best everywhere. Without the cap (an eighth of the L3) the Intel guest
    batched all 32 full-batch members: 0.8× the per-run loop at h = 128, against 1.9× with chunks of 1."""
    sizes = cache_sizes() if sizes is None else sizes
    if not sizes:
        return default
    l2 = sizes.get(2, 0)
    last = sizes[max(sizes)]
    return max(l2, min(last // 8, 4 * 2**20))


def step_bytes(sizes: list[int], n: int, activation: str, itemsize: int, members: int, shared_input: bool) -> int:
    """Bytes one training step of ``members`` members touches: weights, biases, activations, backpropagated signals
    (and the pre-activations erf keeps), and the inputs (per member for minibatches, once when shared)."""
    params = sum((a + 1) * b for a, b in zip(sizes[:-1], sizes[1:], strict=True))
    hidden = sum(sizes[1:-1])
    acts = n * (sum(sizes[1:]) + hidden * (2 if activation == "erf" else 1))
    inputs = n * sizes[0]
    return itemsize * (members * (params + acts + (0 if shared_input else inputs)) + (inputs if shared_input else 0))


def pick_chunk(sizes: list[int], n: int, activation: str, itemsize: int, members: int, shared_input: bool,
               device: torch.device, cache_budget: int | None = None, memory_budget: int = 2**30) -> int:
    """How many members to batch at once: the most whose step fits the cache budget, at least 1 (the per-run floor:
    a member whose step alone overflows it is a compute-bound matmul that batching slows down), at most ``members``;
    on CUDA the memory budget only.

    The default cache budget is :func:`chunk_cache_budget`: on the 2-core AMD EPYC host (512 KiB L2 per core,
    32 MiB L3 shared with other cores and tenants) 4 MiB, the measured best (SGD B = 32 at h = 512: 8 members;
    h ≤ 128: all 32; full-batch GD at h ≥ 128: 1); on the 2-core Intel Xeon host (2 MiB L2) also 4 MiB."""
    one = step_bytes(sizes, n, activation, itemsize, 1, shared_input) - step_bytes(sizes, n, activation, itemsize, 0,
                                                                                     shared_input)
    base = step_bytes(sizes, n, activation, itemsize, 0, shared_input)
    by_memory = max(1, (memory_budget - base) // max(one, 1))
    if device.type != "cpu":
        return int(min(members, by_memory))
    budget = chunk_cache_budget() if cache_budget is None else cache_budget
    by_cache = max(1, (budget - base) // max(one, 1))
    return int(max(1, min(members, by_cache, by_memory)))


class BatchedMLP:
    """M members of one MLP trained by gradient descent with explicit batched matmuls (see the module docstring).

    ``params``: the stacked (M, ...) tensors (not modified; :meth:`write` copies the current state back);
    ``lr`` (M,) learning rates; ``chunk``: members per batched call (``None``: :func:`pick_chunk` at the first
    step, from the batch size then).
    """

    def __init__(self, spec: MLPSpec, params: dict, lr: torch.Tensor, chunk: int | None = None,
                 cache_budget: int | None = None, memory_budget: int = 2**30, shared_input: bool = False,
                 momentum=None, weight_decay=None):
        self.spec = spec
        self.names, self.bias_names, self.scales = spec.layers(params)
        self.L = len(self.names)
        first = params[self.names[0]]
        self.dtype, self.device, self.M = first.dtype, first.device, first.shape[0]
        self.sizes = [first.shape[2]] + [params[w].shape[1] for w in self.names]
        self.tanh = spec.activation == "tanh"
        # each weight is stored with its smaller dimension first: (M, fan_in, fan_out) when fan_in <= fan_out, else
        # the user layout (M, fan_out, fan_in); the weight-update matmul then writes a short-and-wide matrix, which
        # is 2-4x faster on the CPU's BLAS than the tall-and-thin orientation (measured: 64 -> 512 -> 10, fp64)
        self.trans = [self.sizes[i] <= self.sizes[i + 1] for i in range(self.L)]
        # members that all see the same batch (``shared_input``: full-batch GD) get the fused first layer: their
        # first-layer weights side by side in one (d, M, h) tensor, so that a chunk computes x · [W₀ of each member]
        # and its update xᵀ · [signals] as single wide matmuls (measured: 1.2x on GD at h = 32, float64, no loss at
        # h ≥ 128). Not for per-member minibatches: grouping the members that share one (the learning rates of a
        # seed) multiplies the number of small calls per step, which cost more than the wide matmuls save there
        # (measured 0.5–1.0x on SGD B = 32).
        self.fused = bool(shared_input) and self.L > 1
        self.WT = [None] * self.L
        self.b = [None] * self.L
        self.load(params)
        self.lr = torch.as_tensor(lr, dtype=self.dtype, device=self.device).clone()
        self.chunk, self.cache_budget, self.memory_budget = chunk, cache_budget, memory_budget
        self._buffers: dict = {}
        # heavy ball and weight decay, torch.optim.SGD's form: g ← ∇L + λθ, v ← βv + g, θ ← θ − ηv (v from 0).
        # The engine keeps u = −v per weight and bias (the same layouts); without either option (None) the step
        # goes straight into the weights as before, with both None the numbers are those of plain SGD bitwise.
        self.heavy = momentum is not None or weight_decay is not None
        if self.heavy:
            def per_member(value):
                return torch.as_tensor(0.0 if value is None else value, dtype=self.dtype,
                                       device=self.device).expand(self.M).clone()

            self.beta, self.minus_wd = per_member(momentum), -per_member(weight_decay)
            self.U = [torch.zeros_like(W) for W in self.WT]
            self.Ub = [None if b is None else torch.zeros_like(b) for b in self.b]

    # -- state ---------------------------------------------------------------------------------------------------
    def load(self, params: dict) -> None:
        """(Re)read the parameters from the stacked user layout."""
        for layer, (w, b) in enumerate(zip(self.names, self.bias_names, strict=True)):
            W = params[w].detach()
            if layer == 0 and self.fused:
                self.WT[0] = W.permute(2, 0, 1).contiguous()  # (d, M, h)
            else:
                self.WT[layer] = W.transpose(1, 2).contiguous() if self.trans[layer] else W.clone()
            self.b[layer] = None if b is None else params[b].detach().reshape(self.M, 1, -1).clone()

    def write(self, params: dict) -> None:
        """Copy the current weights and biases into ``params`` (stacked user layout), in place."""
        with torch.no_grad():
            for layer, (w, b) in enumerate(zip(self.names, self.bias_names, strict=True)):
                if layer == 0 and self.fused:
                    W = self.WT[0].permute(1, 2, 0)
                else:
                    W = self.WT[layer].transpose(1, 2) if self.trans[layer] else self.WT[layer]
                params[w].copy_(W)
                if b is not None:
                    params[b].copy_(self.b[layer].reshape(params[b].shape))

    def freeze(self, mask: torch.Tensor) -> None:
        """Zero the parameters (and velocities) and the learning rate of the members in ``mask`` (M,) bool."""
        self.lr[mask] = 0.0
        for layer in range(self.L):
            for W in (self.WT[layer], self.U[layer] if self.heavy else None):
                if W is None:
                    continue
                if layer == 0 and self.fused:
                    W[:, mask] = 0.0
                else:
                    W[mask] = 0.0
            for b in (self.b[layer], self.Ub[layer] if self.heavy else None):
                if b is not None:
                    b[mask] = 0.0

    def _rate(self) -> torch.Tensor:
        """The per-member factor of the gradient step: η for plain SGD, 1 into the velocity otherwise."""
        return torch.ones_like(self.lr) if self.heavy else self.lr

    def _target(self, layer: int, m0: int, m1: int, member_axis: int = 0):
        """Where the step of members m0:m1 of ``layer`` is accumulated: the weights and bias themselves (plain SGD),
        or, with heavy ball / weight decay, u = −v after u ← βu − λθ (the gradient is added to it next, then
        :meth:`_apply` moves θ by ηu). ``member_axis``: 1 for the fused first layer's (d, M, h) weights."""
        W, b = _members(self.WT[layer], m0, m1, member_axis), self.b[layer]
        b = None if b is None else b[m0:m1]
        if not self.heavy:
            return W, b
        beta, minus_wd = _per_member(self.beta, m0, m1, member_axis), _per_member(self.minus_wd, m0, m1, member_axis)
        U = _members(self.U[layer], m0, m1, member_axis).mul_(beta).addcmul_(W, minus_wd)
        Ub = None
        if b is not None:
            Ub = self.Ub[layer][m0:m1].mul_(beta.view(-1, 1, 1)).addcmul_(b, minus_wd.view(-1, 1, 1))
        return U, Ub

    def _apply(self, layer: int, m0: int, m1: int, member_axis: int = 0) -> None:
        """θ ← θ + ηu for members m0:m1 of ``layer`` (heavy ball / weight decay only)."""
        if not self.heavy:
            return
        lr = _per_member(self.lr, m0, m1, member_axis)
        _members(self.WT[layer], m0, m1, member_axis).addcmul_(_members(self.U[layer], m0, m1, member_axis), lr)
        if self.b[layer] is not None:
            self.b[layer][m0:m1].addcmul_(self.Ub[layer][m0:m1], lr.view(-1, 1, 1))

    @staticmethod
    def _signal_step(g, coef, s: float, bias, dim: int, out) -> None:
        """Scale the backpropagated signal ``g`` in place into the weights' step, coef·s·g, and add the bias's
        step Σ_dim coef·g to ``bias`` (f = s·hWᵀ + b: the bias's gradient carries no s)."""
        if bias is not None and s != 1.0:
            g.mul_(coef)
            bias.add_(torch.sum(g, dim, keepdim=True, out=out))
            g.mul_(s)
        else:
            g.mul_(coef * s)
            if bias is not None:
                bias.add_(torch.sum(g, dim, keepdim=True, out=out))

    # -- buffers -------------------------------------------------------------------------------------------------
    def _buffers_for(self, n: int, shared: bool, chunk: int) -> dict:
        key = (n, shared, chunk)
        if key not in self._buffers:
            self._buffers.clear()  # one batch shape at a time: a changed batch size replaces the buffers
            new = dict(device=self.device, dtype=self.dtype)
            out = self.sizes[1:]
            self._buffers[key] = {
                "H": [torch.empty(chunk, n, o, **new) for o in out],  # activations (the last: logits → signal)
                "D": [torch.empty(chunk, n, o, **new) for o in out[:-1]],  # backpropagated signals
                "Z": [torch.empty(chunk, n, o, **new) for o in out[:-1]] if self.spec.activation == "erf" else [],
                "bsum": [torch.empty(chunk, 1, o, **new) for o in out],
                "row": torch.empty(chunk, n, 1, **new),
                "minus_one": torch.full((chunk, n, 1), -1.0, **new),
            }
            if self.fused:  # the first layer's activations and signals as (n, chunk·h): members side by side
                width = n * chunk * out[0]
                self._buffers[key].update(A=torch.empty(width, **new), D0=torch.empty(width, **new),
                                          Z0=torch.empty(width, **new) if self.spec.activation == "erf" else None,
                                          b0sum=torch.empty(1, chunk * out[0], **new))
        return self._buffers[key]

    def chunk_for(self, n: int, shared: bool) -> int:
        if self.chunk is None:
            self.chunk = pick_chunk(self.sizes, n, self.spec.activation, self.dtype.itemsize, self.M, shared,
                                    self.device, self.cache_budget, self.memory_budget)
        return min(self.chunk, self.M)

    # -- one step ------------------------------------------------------------------------------------------------
    def step(self, batch, shared: bool | None = None) -> None:
        """One gradient-descent step of every member on ``batch`` = (x, y): shared (n, d), (n, C) or (n,) when
        ``shared``, else per member (M, n, d), (M, n, C) or (M, n). An engine built with ``shared_input`` takes
        shared batches only (``shared`` may then be omitted)."""
        if self.fused:
            if shared is False:
                raise ValueError("this engine was built for a shared batch (shared_input=True)")
            return self._fused_step(batch)
        x, y = self._prepare(batch)
        n = x.shape[-2]
        chunk = self.chunk_for(n, shared)
        buf = self._buffers_for(n, shared, chunk)
        # update coefficient of layer l per member: −η s_l / n (the signal below is n × the loss gradient); with heavy
        # ball / weight decay −s_l / n into u, the learning rate applied after (see :meth:`_target`)
        coef = self._rate().view(-1, 1, 1) * (-1.0 / n)
        with torch.no_grad():
            for m0 in range(0, self.M, chunk):
                m1 = min(self.M, m0 + chunk)
                if shared:
                    xc, yc = x.expand(m1 - m0, *x.shape), y
                else:
                    xc, yc = x[m0:m1], y[m0:m1]
                self._chunk_step(m0, m1, xc, yc, coef[m0:m1], buf)

    def _prepare(self, batch):
        x, y = batch
        if x.dtype != self.dtype:
            x = x.to(self.dtype)
        if y.is_floating_point() and y.dtype != self.dtype:
            y = y.to(self.dtype)
        elif not y.is_floating_point() and y.dtype != torch.int64:
            y = y.long()
        if self.spec.loss == "squared" and not y.is_floating_point():
            y = torch.nn.functional.one_hot(y.long(), self.sizes[-1]).to(self.dtype)
        return x, y

    def _fused_step(self, batch) -> None:
        x, y = self._prepare(batch)
        n = x.shape[-2]
        chunk = self.chunk_for(n, True)
        buf = self._buffers_for(n, True, chunk)
        coef = self._rate() * (-1.0 / n)
        with torch.no_grad():
            for m0 in range(0, self.M, chunk):
                m1 = min(self.M, m0 + chunk)
                self._fused_chunk_step(m0, m1, x, y, coef[m0:m1], buf)

    def _fused_chunk_step(self, m0, m1, x, y, coef, buf) -> None:
        """Members m0:m1 on one shared batch x (n, d): the first layer as one (n, d)·(d, c·h)
        product and its update as one (d, n)·(n, c·h) product; the layers above as in :meth:`_chunk_step`."""
        c, (n, d), h = m1 - m0, x.shape, self.sizes[1]
        A = buf["A"][:n * c * h].view(n, c * h)
        W0 = self.WT[0][:, m0:m1].view(d, c * h)  # a strided view of the (d, M, h) weights: no copy
        two = 2.0 if self.tanh else 1.0
        s = self.scales[0]
        if self.b[0] is not None:
            torch.addmm(self.b[0][m0:m1].view(1, c * h), x, W0, beta=two, alpha=two * s, out=A)
        else:
            torch.mm(x, W0, out=A)
            if two * s != 1.0:
                A.mul_(two * s)
        act = self.spec.activation
        if act == "tanh":
            A.sigmoid_().mul_(2.0).sub_(1.0)
        elif act == "relu":
            A.relu_()
        else:
            Z0 = buf["Z0"][:n * c * h].view(n, c * h)
            Z0.copy_(A)
            A.mul_(_INV_SQRT2).erf_()
        a0 = A.view(n, c, h).transpose(0, 1)  # (c, n, h), strided
        D0 = buf["D0"][:n * c * h].view(n, c * h)
        self._chunk_step(m0, m1, a0, y, coef.view(-1, 1, 1), buf, first=1, signal0=D0.view(n, c, h).transpose(0, 1))
        # D0 now holds n × dloss/d(pre-activation of layer 0) of each member, in the (n, c·h) layout
        if act == "tanh":
            torch.ops.aten.tanh_backward.grad_input(D0, A, grad_input=D0)
        elif act == "relu":
            torch.ops.aten.threshold_backward.grad_input(D0, A, 0, grad_input=D0)
        else:
            Z0.square_().mul_(-0.5).exp_()
            D0.mul_(Z0).mul_(_SQRT_2_OVER_PI)
        target, bias = self._target(0, m0, m1, member_axis=1)
        self._signal_step(D0.view(n, c, h), coef.view(1, c, 1), s, None if bias is None else bias.view(1, c, h), 0,
                          buf["b0sum"][:, :c * h].view(1, c, h))
        target.view(d, c * h).addmm_(x.T, D0)  # a view: the (d, M, h) layout keeps a member's h columns together
        self._apply(0, m0, m1, member_axis=1)

    def _forward(self, m0: int, m1: int, x: torch.Tensor, H: list, Z: list, first: int = 0) -> torch.Tensor:
        c = m1 - m0
        a = x
        for layer in range(first, self.L):
            out = H[layer][:c]
            hidden = layer < self.L - 1
            s = self.scales[layer]
            two = 2.0 if (hidden and self.tanh) else 1.0  # tanh(z) = 2 sigmoid(2z) − 1: the 2 goes into the matmul
            W = self.WT[layer][m0:m1]
            if not self.trans[layer]:
                W = W.transpose(1, 2)
            if self.b[layer] is not None:
                torch.baddbmm(self.b[layer][m0:m1], a, W, beta=two, alpha=two * s, out=out)
            elif two * s != 1.0:
                torch.baddbmm(out, a, W, beta=0.0, alpha=two * s, out=out)
            else:
                torch.bmm(a, W, out=out)
            if hidden:
                act = self.spec.activation
                if act == "tanh":
                    out.sigmoid_().mul_(2.0).sub_(1.0)
                elif act == "relu":
                    out.relu_()
                else:
                    Z[layer][:c].copy_(out)
                    out.mul_(_INV_SQRT2).erf_()
            a = out
        return a

    def _chunk_step(self, m0, m1, x, y, coef, buf, first: int = 0, signal0=None) -> None:
        """One step of members m0:m1 on their batch x: (c, n, d) (or the first hidden layer's activations when
        ``first`` = 1: the fused path, which then gets the signal to layer 0 in ``signal0`` before its activation
        derivative, and updates layer 0 itself)."""
        c = m1 - m0
        H, D, Z = buf["H"], buf["D"], buf["Z"]
        g = self._forward(m0, m1, x, H, Z, first)  # logits (c, n, C), turned in place into n × dloss/df
        if self.spec.loss == "cross_entropy":
            row = buf["row"][:c]
            torch.amax(g, -1, keepdim=True, out=row)
            g.sub_(row).exp_()
            torch.sum(g, -1, keepdim=True, out=row)
            g.div_(row)
        if y.is_floating_point():
            g.sub_(y)
        else:
            g.scatter_add_(-1, y.unsqueeze(-1).expand(g.shape[:-1] + (1,)), buf["minus_one"][:c])
        for layer in reversed(range(first, self.L)):
            a = x if layer == first else H[layer - 1][:c]
            W = self.WT[layer][m0:m1]
            if layer == first and first > 0:  # the fused first layer: the signal below, its update done there
                torch.bmm(g, W.transpose(1, 2) if self.trans[layer] else W, out=signal0)
            if layer > first:
                d = D[layer - 1][:c]
                # the signal below, with the weights before the update
                torch.bmm(g, W.transpose(1, 2) if self.trans[layer] else W, out=d)
            target, bias = self._target(layer, m0, m1)
            self._signal_step(g, coef, self.scales[layer], bias, 1, buf["bsum"][layer][:c])
            if self.trans[layer]:
                target.baddbmm_(a.transpose(1, 2), g)
            else:
                target.baddbmm_(g.transpose(1, 2), a)
            self._apply(layer, m0, m1)
            if layer > first:
                act = self.spec.activation
                if act == "tanh":
                    torch.ops.aten.tanh_backward.grad_input(d, a, grad_input=d)
                elif act == "relu":
                    torch.ops.aten.threshold_backward.grad_input(d, a, 0, grad_input=d)
                else:  # d erf(z/√2)/dz = √(2/π) exp(−z²/2)
                    z = Z[layer - 1][:c]
                    z.square_().mul_(-0.5).exp_()
                    d.mul_(z).mul_(_SQRT_2_OVER_PI)
                s_below = self.scales[layer]
                if s_below != 1.0:
                    d.mul_(s_below)
                g = d
            elif first > 0 and self.scales[layer] != 1.0:
                signal0.mul_(self.scales[layer])

    # -- evaluation ----------------------------------------------------------------------------------------------
    def logits(self, params: dict, x: torch.Tensor, chunk: int) -> torch.Tensor:
        """Outputs (M, n, C) of every member on shared inputs x (n, d) from the stacked user layout, computed
        ``chunk`` members at a time (only the outputs of all members are kept)."""
        return mlp_logits(self.spec, params, x, chunk)


def mlp_logits(spec: MLPSpec, params: dict, x: torch.Tensor, chunk: int | None = None) -> torch.Tensor:
    """Outputs (M, n, C) of every member for inputs x, shared (n, d) or per member (M, n, d), ``chunk`` members at a
    time so that only one chunk's hidden activations exist at once. With shared inputs the first layer of a chunk is
    one (n, d)·(d, c·h) product (the members' weights side by side: a view, no copy); tanh as 2·sigmoid(2z) − 1."""
    names, bias_names, scales = spec.layers(params)
    M = params[names[0]].shape[0]
    chunk = M if chunk is None else max(1, int(chunk))
    outs = []
    with torch.no_grad():
        for m0 in range(0, M, chunk):
            m1 = min(M, m0 + chunk)
            c = m1 - m0
            a = x if x.dim() == 2 else x[m0:m1]
            for layer, (w, b) in enumerate(zip(names, bias_names, strict=True)):
                W = params[w][m0:m1]
                if layer == 0 and a.dim() == 2 and len(names) > 1 and W.is_contiguous():
                    h = W.shape[1]
                    a = torch.mm(a, W.reshape(c * h, -1).T)  # (n, c·h), member j in columns j·h … (j+1)·h
                    if scales[0] != 1.0:
                        a.mul_(scales[0])
                    if b is not None:
                        a.add_(params[b][m0:m1].reshape(1, c * h))
                    a = activation_(spec.activation, a).view(-1, c, h).transpose(0, 1)  # (c, n, h), strided
                    continue
                a = torch.matmul(a, W.transpose(1, 2))  # a fresh (c, n, out) tensor, then in place
                if scales[layer] != 1.0:
                    a.mul_(scales[layer])
                if b is not None:
                    a.add_(params[b][m0:m1].unsqueeze(1))
                if layer < len(names) - 1:
                    a = activation_(spec.activation, a)
            outs.append(a)
    return torch.cat(outs)


def _members(t: torch.Tensor, m0: int, m1: int, axis: int = 0) -> torch.Tensor:
    """Members m0:m1 of a stacked tensor whose member axis is ``axis`` (0, or 1 for the fused (d, M, h) weights)."""
    return t[:, m0:m1] if axis else t[m0:m1]


def _per_member(v: torch.Tensor, m0: int, m1: int, axis: int = 0) -> torch.Tensor:
    """Members m0:m1 of an (M,) vector, shaped to broadcast along ``axis`` of a 3-d stacked tensor."""
    shape = [1, 1, 1]
    shape[axis] = m1 - m0
    return v[m0:m1].view(shape)


def activation_(name: str, z: torch.Tensor) -> torch.Tensor:
    """σ(z) in place (tanh as 2·sigmoid(2z) − 1: twice as fast as ``torch.tanh`` on the CPU, equal to ~2e-16)."""
    if name == "tanh":
        return z.mul_(2.0).sigmoid_().mul_(2.0).sub_(1.0)
    if name == "relu":
        return z.relu_()
    if name == "erf":
        return z.mul_(_INV_SQRT2).erf_()
    raise ValueError(f"unknown activation {name!r}; known: {ACTIVATIONS}")


def loss_values(kind: str, f: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Mean loss over the sample axis (−2 of f): ``squared`` ½‖f − y‖², ``cross_entropy`` logsumexp f − f_y; y are
    integer labels or float targets."""
    if not y.is_floating_point():
        y = torch.nn.functional.one_hot(y.long(), f.shape[-1]).to(f.dtype)
    if kind == "squared":
        return 0.5 * ((f - y) ** 2).sum(-1).mean(-1)
    if kind == "cross_entropy":
        return (torch.logsumexp(f, -1) - (f * y).sum(-1)).mean(-1)
    raise ValueError(f"unknown loss {kind!r}; known: {LOSSES}")


def mlp_evaluator(spec: MLPSpec, sets: dict, chunk: int | None = None):
    """An ``evaluate`` for ``train_ensemble``: for each name → (x, y) in ``sets`` (shared (n, d) or per member
    (M, n, d) inputs; integer labels or one-hot/float targets) the metrics ``<name>_loss`` and ``<name>_error``
    (misclassified fraction, argmax), (M,) each, computed ``chunk`` members at a time (default: :func:`pick_chunk`
    for the set's size, so that one chunk's activations stay in cache)."""

    def evaluate(params: dict) -> dict:
        out = {}
        for name, (x, y) in sets.items():
            names, _, _ = spec.layers(params)
            first = params[names[0]]
            M = first.shape[0]
            sizes = [first.shape[2]] + [params[w].shape[1] for w in names]
            step = chunk or pick_chunk(sizes, x.shape[-2], spec.activation, first.dtype.itemsize, M, x.dim() == 2,
                                       first.device)
            losses, errors = [], []
            for m0 in range(0, M, step):
                sub = {k: v[m0:m0 + step] for k, v in params.items()}
                xs = x if x.dim() == 2 else x[m0:m0 + step]
                ys = y if (y.dim() == (2 if y.is_floating_point() else 1)) else y[m0:m0 + step]
                f = mlp_logits(spec, sub, xs)
                losses.append(loss_values(spec.loss, f, ys))
                labels = ys.argmax(-1) if ys.is_floating_point() else ys
                errors.append((f.argmax(-1) != labels).to(f.dtype).mean(-1))
            out[f"{name}_loss"], out[f"{name}_error"] = torch.cat(losses), torch.cat(errors)
        return out

    return evaluate
