"""Training engines: many members of one shape trained together in one process.

- :mod:`phaselab.engines.committee`: online SGD of soft committee machines (the phase diagram's engine), with the
  fused numba kernel of :mod:`phaselab.engines._kernels` on the CPU and batched matmuls on CUDA;
- :mod:`phaselab.engines.ensemble`: the general engine — any model written as the loss of one member, vmapped
  (``torch.func``), or, with ``model=MLPSpec(...)``, dense MLPs through the explicit batched forward/backward of
  :mod:`phaselab.engines.mlp`, members chunked to the cache.
"""
