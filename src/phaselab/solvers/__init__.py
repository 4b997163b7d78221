"""Solvers that are not gradient descent: :mod:`phaselab.solvers.perceptron` (maximal stability, Hebb, HMC on the
version space, the online perceptron, exact enumeration of the binary perceptron)."""
