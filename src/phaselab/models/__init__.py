"""Models, written as plain functions of stacked (member, ...) parameters.

- :mod:`phaselab.models.committee`: the erf soft committee machine (teacher and student of the phase diagram);
- :mod:`phaselab.models.two_layer`: a two-layer ReLU network, its layer matrices and losses (double descent,
  random labels);
- :mod:`phaselab.models.deep_mlp`: dense MLPs of any depth and activation (edge of stability, sharpness,
  information plane).
"""
