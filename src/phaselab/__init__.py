"""phaselab: reproducible sweeps for the statistical-physics theory of deep learning."""

__version__ = "0.1.0"
