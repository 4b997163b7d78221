"""phaselab: reproducible sweeps for the statistical-physics theory of deep learning."""

__version__ = "0.1.0"

import os as _os

# Idle OpenMP workers (torch's and the numba kernel's) must not spin between the engine's blocks: the input
# stream's sampler threads need those cores (measured on 2 cores: +30 % member-steps/s at p = 2). It has to be set
# before torch loads its OpenMP runtime; a user's own setting wins.
_os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


def run(config, name=None, **kwargs):
    """Run one experiment of a config in-process, without Snakemake: see :func:`phaselab.runner.run`."""
    from phaselab.runner import run as _run

    return _run(config, name, **kwargs)
