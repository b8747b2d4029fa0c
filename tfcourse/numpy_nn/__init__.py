"""A neural network written with NumPy alone: hand-written backpropagation, batch normalisation,
mini-batch SGD, course-style checkpoints, behind the scikit-learn estimator API.

Importing it loads NumPy only (no TensorFlow, no scikit-learn): it is the course's "by hand"
exercise, and ``tests/test_numpy_nn.py`` checks it against finite differences, TensorFlow's
autodiff and ``keras.layers.BatchNormalization``.
"""

from tfcourse.numpy_nn.layers import ACTIVATIONS, INITIALIZERS, BatchNorm, softmax_cross_entropy
from tfcourse.numpy_nn.mlp import NumpyMLP, SymmetryWarning, TrainingDiverged

__all__ = [
    "ACTIVATIONS",
    "INITIALIZERS",
    "BatchNorm",
    "NumpyMLP",
    "SymmetryWarning",
    "TrainingDiverged",
    "softmax_cross_entropy",
]
