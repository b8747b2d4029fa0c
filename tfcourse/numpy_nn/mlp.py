"""``NumpyMLP``: a fully connected classifier trained by mini-batch SGD with hand-written
backpropagation, in NumPy alone, behind the scikit-learn estimator API.

The hot loop allocates nothing: every layer's activations, gradients and the shuffled copy of the
data live in buffers made once per ``fit``; matrix products write into them (``np.matmul(out=)``),
activations and their derivatives work in place, and the parameter updates are in-place
subtractions. The data is cast once to ``dtype`` (float32 by default: half the memory traffic of
float64 and twice the BLAS rate), and gradients are checked in float64.

scikit-learn is not imported here: ``get_params``/``set_params`` follow its conventions by hand,
so ``sklearn.base.clone`` and ``GridSearchCV`` work on the estimator, and ``__sklearn_tags__``
imports scikit-learn only when scikit-learn itself asks for the tags.
"""

from __future__ import annotations

import inspect
import math
import os
import sys
import time
import warnings
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np

from tfcourse.numpy_nn import checkpoints
from tfcourse.numpy_nn.layers import (
    ACTIVATIONS,
    INITIALIZERS,
    BatchNorm,
    activate,
    activation_backward,
    init_weights,
    softmax,
    softmax_cross_entropy,
)

BIAS_INITS = ("zero", "same")
DTYPES = ("float32", "float64")
PREDICT_CHUNK = 4096  # rows per forward pass at inference: bounded memory for any X


class TrainingDiverged(ValueError):
    """The training loss became NaN or infinite (checkpoints written before it are kept)."""


class SymmetryWarning(UserWarning):
    """The weights start equal (``weight_init="zero"``): a layer's units get equal gradients and stay copies."""


class NumpyMLP:
    """A multi-layer perceptron classifier in NumPy, trained by mini-batch SGD.

    Args:
        n_layers: Number of layers, input and output included (``len(layer_sizes)``).
        layer_sizes: Units per layer, input first and classes last, e.g. ``(784, 256, 128, 64, 10)``.
        activation: Hidden-layer activation: ``relu``, ``sigmoid``, ``tanh`` or ``linear``. The output
            is always a softmax, fused with the cross-entropy loss.
        learning_rate: SGD step size.
        weight_init: ``zero``, ``random`` (uniform x 0.01), ``normal`` (N(0, 1) x 0.01), ``he`` or ``glorot``.
        batch_size: Examples per SGD step (the last step of an epoch takes the remainder).
        num_epochs: Passes over the training data.
        seed: Fixes the initialisation and every epoch's shuffle.
        bias_init: ``zero`` (biases start at 0), or ``same`` (drawn like the weights, as in the course's
            init functions).
        momentum: SGD momentum (0: plain SGD).
        nesterov: Nesterov momentum (Keras' ``SGD(nesterov=True)`` update).
        l2: L2 penalty ``l2 / 2 * sum(W^2)`` on the weights (not the biases).
        batch_norm: A ``BatchNorm`` between each hidden layer's affine map and its activation.
        bn_momentum: Moving-average momentum of the batch-norm statistics.
        checkpoint_every: Save a checkpoint every this many epochs into ``checkpoint_dir``
            (``<epoch>_<activation>_weights.npz`` and ``..._biases.npz``); 0 turns it off.
        checkpoint_dir: Folder for checkpoints (``None``: no checkpoints).
        dtype: ``float32`` (fast) or ``float64`` (for gradient checks).
        verbose: 0 silent, 1 a progress bar over epochs on standard error.

    Attributes (after ``fit``):
        coefs_, intercepts_: Weight matrices ``(fan_in, fan_out)`` and bias vectors, per layer (scikit-learn's names).
        batch_norms_: One ``BatchNorm`` per hidden layer (empty without ``batch_norm``).
        classes_: ``0 .. layer_sizes[-1] - 1``.
        history_: ``loss``, ``accuracy`` (training, running over the epoch), ``val_loss``, ``val_accuracy``
            (after the epoch) and ``seconds`` per epoch (the SGD pass alone, validation not included);
            Keras' key names.
        checkpoints_: ``{epoch: (weights_path, biases_path)}`` written by this fit.
    """

    def __init__(
        self,
        n_layers: int = 5,
        layer_sizes: Sequence[int] = (784, 256, 128, 64, 10),
        activation: str = "relu",
        learning_rate: float = 0.1,
        weight_init: str = "normal",
        batch_size: int = 32,
        num_epochs: int = 100,
        seed: int = 42,
        bias_init: str = "zero",
        momentum: float = 0.0,
        nesterov: bool = False,
        l2: float = 0.0,
        batch_norm: bool = False,
        bn_momentum: float = 0.99,
        checkpoint_every: int = 50,
        checkpoint_dir: Optional[str] = None,
        dtype: str = "float32",
        verbose: int = 0,
    ):
        # scikit-learn's rule: store the arguments as given, check them in fit.
        self.n_layers = n_layers
        self.layer_sizes = layer_sizes
        self.activation = activation
        self.learning_rate = learning_rate
        self.weight_init = weight_init
        self.batch_size = batch_size
        self.num_epochs = num_epochs
        self.seed = seed
        self.bias_init = bias_init
        self.momentum = momentum
        self.nesterov = nesterov
        self.l2 = l2
        self.batch_norm = batch_norm
        self.bn_momentum = bn_momentum
        self.checkpoint_every = checkpoint_every
        self.checkpoint_dir = checkpoint_dir
        self.dtype = dtype
        self.verbose = verbose

    # ------------------------------------------------------------------ scikit-learn protocol

    @classmethod
    def _param_names(cls) -> List[str]:
        return [name for name in inspect.signature(cls.__init__).parameters if name != "self"]

    def get_params(self, deep: bool = True) -> Dict[str, Any]:
        """The constructor's arguments, as scikit-learn's ``BaseEstimator.get_params``."""
        return {name: getattr(self, name) for name in self._param_names()}

    def set_params(self, **params) -> "NumpyMLP":
        """Sets constructor arguments (as ``BaseEstimator.set_params``); returns ``self``."""
        valid = self._param_names()
        for name, value in params.items():
            if name not in valid:
                raise ValueError(f"Invalid parameter {name!r} for NumpyMLP; valid parameters: {', '.join(valid)}.")
            setattr(self, name, value)
        return self

    def __sklearn_tags__(self):
        from sklearn.utils import ClassifierTags, InputTags, Tags, TargetTags

        return Tags(
            estimator_type="classifier",
            target_tags=TargetTags(required=True),
            input_tags=InputTags(),
            classifier_tags=ClassifierTags(),
        )

    def __repr__(self) -> str:
        defaults = inspect.signature(type(self).__init__).parameters
        changed = [f"{k}={v!r}" for k, v in self.get_params().items() if repr(v) != repr(defaults[k].default)]
        return f"NumpyMLP({', '.join(changed)})"

    # ------------------------------------------------------------------ checks

    def _check_params(self) -> Tuple[int, ...]:
        sizes = self.layer_sizes
        if isinstance(sizes, (str, bytes)) or not isinstance(sizes, Sequence) and not isinstance(sizes, np.ndarray):
            raise ValueError(
                f"layer_sizes must be a list of layer widths, input first and classes last; got {sizes!r}."
            )
        sizes = tuple(sizes)
        if not all(isinstance(s, (int, np.integer)) and not isinstance(s, bool) and s >= 1 for s in sizes):
            raise ValueError(f"layer_sizes must be positive integers; got {list(sizes)}.")
        if len(sizes) < 2:
            raise ValueError(f"layer_sizes needs an input and an output size at least; got {list(sizes)}.")
        if self.n_layers != len(sizes):
            raise ValueError(
                f"n_layers={self.n_layers} but layer_sizes has {len(sizes)} entries ({list(sizes)}); n_layers counts "
                f"every layer, input and output included: pass n_layers={len(sizes)} or fix layer_sizes."
            )
        if sizes[-1] < 2:
            raise ValueError(f"The output layer needs one unit per class, at least 2; layer_sizes ends in {sizes[-1]}.")
        if self.activation not in ACTIVATIONS:
            raise ValueError(f"Unknown activation {self.activation!r}; use one of {', '.join(ACTIVATIONS)}.")
        if self.weight_init not in INITIALIZERS:
            raise ValueError(f"Unknown weight_init {self.weight_init!r}; use one of {', '.join(INITIALIZERS)}.")
        if self.bias_init not in BIAS_INITS:
            raise ValueError(f"Unknown bias_init {self.bias_init!r}; use one of {', '.join(BIAS_INITS)}.")
        if str(self.dtype) not in DTYPES:
            raise ValueError(f"dtype must be one of {', '.join(DTYPES)}; got {self.dtype!r}.")
        for name in ("batch_size", "num_epochs"):
            value = getattr(self, name)
            if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < 1:
                raise ValueError(f"{name} must be a positive integer; got {value!r}.")
        if not isinstance(self.checkpoint_every, (int, np.integer)) or self.checkpoint_every < 0:
            raise ValueError(
                f"checkpoint_every must be a whole number of epochs (0: never); got {self.checkpoint_every!r}."
            )
        for name, low, high in (("learning_rate", 0, math.inf), ("momentum", 0, 1), ("l2", 0, math.inf)):
            value = getattr(self, name)
            ok = isinstance(value, (int, float, np.floating)) and math.isfinite(value) and low <= value < high
            if not ok or (name == "learning_rate" and value == 0):
                raise ValueError(
                    f"{name} must be a finite number in {'(' if name == 'learning_rate' else '['}{low}, {high}); got {value!r}."
                )
        return sizes

    def _check_X(self, X, n_features: int, what: str = "X") -> np.ndarray:
        X = np.asarray(X)
        if X.ndim != 2:
            raise ValueError(
                f"{what} must be 2-D (n_samples, n_features); got shape {X.shape}. "
                "Flatten images first: X.reshape(len(X), -1)."
            )
        if X.shape[1] != n_features:
            raise ValueError(
                f"{what} has {X.shape[1]} features per example but the input layer has {n_features} "
                f"(layer_sizes[0]); make them agree."
            )
        if len(X) == 0:
            raise ValueError(f"{what} has no examples.")
        if not np.issubdtype(X.dtype, np.number) or np.issubdtype(X.dtype, np.complexfloating):
            raise ValueError(f"{what} must hold real numbers; got dtype {X.dtype}.")
        X = X.astype(self.dtype, copy=False)
        if not np.all(np.isfinite(X)):
            bad = int(np.sum(~np.isfinite(X).all(axis=1)))
            raise ValueError(f"{what} holds NaN or infinite values in {bad} rows; impute or drop them first.")
        return X

    def _check_y(self, y, n_rows: int, n_classes: int, what: str = "y") -> np.ndarray:
        y = np.asarray(y)
        if y.ndim != 1 or len(y) != n_rows:
            raise ValueError(f"{what} must be 1-D with one label per row of X ({n_rows}); got shape {y.shape}.")
        if not np.issubdtype(y.dtype, np.number) or (
            np.issubdtype(y.dtype, np.floating) and not np.all(np.isfinite(y) & (y == np.round(y)))
        ):
            raise ValueError(f"{what} must hold integer class labels 0..{n_classes - 1}; got dtype {y.dtype}.")
        y = y.astype(np.int64)
        bad = (y < 0) | (y >= n_classes)
        if bad.any():
            raise ValueError(
                f"{what} holds labels outside 0..{n_classes - 1} (e.g. {sorted(set(y[bad].tolist()))[:5]}, "
                f"{int(bad.sum())} rows): the output layer has {n_classes} units (layer_sizes[-1]); "
                "fix layer_sizes or the labels."
            )
        return y

    # ------------------------------------------------------------------ parameters

    def initialize(self) -> "NumpyMLP":
        """Draws fresh parameters from ``weight_init`` and ``seed``, and their gradient buffers (``fit`` calls
        it); returns ``self``."""
        sizes = self._check_params()
        self._sizes = sizes
        self._rng = np.random.default_rng(self.seed)
        dtype = np.dtype(self.dtype)
        self.coefs_, self.intercepts_ = [], []
        last = len(sizes) - 2
        for i, (fan_in, fan_out) in enumerate(zip(sizes[:-1], sizes[1:])):
            self.coefs_.append(init_weights(self.weight_init, fan_in, fan_out, self._rng, dtype))
            if self.bias_init == "zero" or (self.batch_norm and i != last):
                self.intercepts_.append(np.zeros(fan_out, dtype))
            else:
                self.intercepts_.append(init_weights(self.weight_init, 1, fan_out, self._rng, dtype)[0])
        self.batch_norms_ = (
            [BatchNorm(w, self.bn_momentum, dtype=dtype) for w in sizes[1:-1]] if self.batch_norm else []
        )
        self.classes_ = np.arange(sizes[-1])
        self.n_features_in_ = sizes[0]
        self._buffers = {}
        self._make_grads()
        return self

    def _check_fitted(self):
        if not hasattr(self, "coefs_"):
            raise ValueError("This NumpyMLP is not fitted yet: call fit(X, y) or NumpyMLP.load(...) first.")

    def _params_and_grads(self):
        """Every trainable array with its gradient buffer, in a fixed order."""
        out = []
        for i, (w, b) in enumerate(zip(self.coefs_, self.intercepts_)):
            out.append((f"W{i + 1}", w, self._weight_grads[i]))
            if self._bias_grads[i] is not None:
                out.append((f"b{i + 1}", b, self._bias_grads[i]))
        for i, bn in enumerate(self.batch_norms_):
            out += [(f"gamma{i + 1}", bn.gamma, bn.dgamma), (f"beta{i + 1}", bn.beta, bn.dbeta)]
        return out

    def _has_bias(self, layer: int) -> bool:
        """Whether layer ``layer`` (0-based) adds a trained bias: a batch norm's ``beta`` right after the
        affine map makes it redundant (its gradient is exactly 0), so, as Keras' ``use_bias=False`` before
        ``BatchNormalization``, those biases stay 0 and untrained."""
        return not self.batch_norms_ or layer == len(self.coefs_) - 1

    def _make_grads(self):
        """Gradient buffers (none for a bias that is not trained) and, made once per fit rather than per
        step, the update loop's (parameter, gradient, velocity, Nesterov scratch) slots."""
        self._weight_grads = [np.zeros_like(w) for w in self.coefs_]
        self._bias_grads = [np.zeros_like(b) if self._has_bias(i) else None for i, b in enumerate(self.intercepts_)]
        self._l2_scratch = [np.empty_like(w) for w in self.coefs_] if self.l2 else []
        self._slots = [
            (
                param,
                grad,
                np.zeros_like(param) if self.momentum else None,
                np.empty_like(param) if self.momentum and self.nesterov else None,
            )
            for _, param, grad in self._params_and_grads()
        ]

    # ------------------------------------------------------------------ forward and backward

    def _layer_buffers(self, rows: int):
        """One activation and one gradient buffer per layer for a batch of ``rows`` (made once per size)."""
        if rows not in self._buffers:
            dtype = np.dtype(self.dtype)
            acts = [np.empty((rows, width), dtype) for width in self._sizes[1:]]
            deltas = [np.empty((rows, width), dtype) for width in self._sizes[1:]]
            scratch = [np.empty((rows, width), dtype) for width in self._sizes[1:-1]]
            self._buffers[rows] = (acts, deltas, scratch)
        return self._buffers[rows]

    def _forward(self, x: np.ndarray, training: bool) -> List[np.ndarray]:
        """Activations of every layer for batch ``x`` (the last one: the logits)."""
        acts = self._layer_buffers(len(x))[0]
        previous = x
        last = len(self.coefs_) - 1
        for i, (w, b) in enumerate(zip(self.coefs_, self.intercepts_)):
            out = acts[i]
            np.matmul(previous, w, out=out)
            if self._has_bias(i):
                out += b
            if i < last:
                if self.batch_norms_:
                    self.batch_norms_[i].forward(out, out, training)
                activate(self.activation, out, out)
            previous = out
        return acts

    def _backward(self, x: np.ndarray, acts: List[np.ndarray], grad_logits: np.ndarray, scale: float = 1.0) -> None:
        """Fills the gradient buffers with ``scale`` times the gradient, from ``d loss / d logits`` (held in
        the last delta buffer, which is scaled in place). Backpropagation is linear in that delta, so
        scaling its 10 columns once puts the learning rate into every gradient for free, and the update is
        one subtraction per parameter instead of two passes over it."""
        _, deltas, scratch = self._layer_buffers(len(x))
        delta = grad_logits
        if scale != 1.0:
            delta *= scale
        for i in range(len(self.coefs_) - 1, -1, -1):
            previous = acts[i - 1] if i else x
            np.matmul(previous.T, delta, out=self._weight_grads[i])
            if self._bias_grads[i] is not None:
                np.sum(delta, axis=0, out=self._bias_grads[i])
            if i == 0:
                break  # no gradient with respect to the data is needed
            below = deltas[i - 1]
            np.matmul(delta, self.coefs_[i].T, out=below)
            activation_backward(self.activation, acts[i - 1], below, scratch[i - 1])
            if self.batch_norms_:
                self.batch_norms_[i - 1].backward(below)
            delta = below
        if self.l2:
            for i, w in enumerate(self.coefs_):
                buffer = self._l2_scratch[i]
                np.multiply(w, self.l2 * scale, out=buffer)
                self._weight_grads[i] += buffer

    def _step(self) -> None:
        """One SGD update, in place, from gradients that already carry the learning rate (``g' = lr g``):
        plain ``w -= g'``; momentum ``v = mu v - g'; w += v``; Nesterov (Keras' formulation)
        ``v = mu v - g'; w += mu v - g'``."""
        mu = self.momentum
        for param, grad, velocity, scratch in self._slots:
            if velocity is None:
                param -= grad
                continue
            velocity *= mu
            velocity -= grad
            if self.nesterov:
                np.multiply(velocity, mu, out=scratch)
                scratch -= grad
                param += scratch
            else:
                param += velocity

    def loss_and_gradients(self, X, y) -> Tuple[float, Dict[str, np.ndarray]]:
        """The training loss (cross-entropy + L2) of batch ``(X, y)`` at the current parameters, and its
        gradient with respect to every parameter (``W1, b1, ..., gamma1, beta1, ...``), without updating
        anything but the batch-norm moving averages. For gradient checks; ``fit`` must have run, or ``initialize``."""
        self._check_fitted()
        X = self._check_X(X, self._sizes[0])
        y = self._check_y(y, len(X), self._sizes[-1])
        acts = self._forward(X, training=True)
        deltas = self._layer_buffers(len(X))[1]
        loss = softmax_cross_entropy(acts[-1], y, grad_out=deltas[-1])
        if self.l2:
            loss += 0.5 * self.l2 * sum(float(np.sum(w.astype(np.float64) ** 2)) for w in self.coefs_)
        self._backward(X, acts, deltas[-1])
        return loss, {name: grad.copy() for name, _, grad in self._params_and_grads()}

    # ------------------------------------------------------------------ training

    def fit(self, X, y, X_val=None, y_val=None) -> "NumpyMLP":
        """Trains from a fresh initialisation for ``num_epochs`` epochs.

        Args:
            X: ``(n_samples, layer_sizes[0])`` features (cast once to ``dtype``).
            y: Integer labels ``0 .. layer_sizes[-1] - 1``.
            X_val, y_val: Optional validation split, scored after every epoch.

        Returns:
            ``self``.

        Raises:
            ValueError: For inconsistent parameters, wrong shapes, NaNs or labels out of range.
            TrainingDiverged: A ``ValueError`` for a loss that turned NaN/infinite: the model is left
                unfitted (no NaN weights to predict with), the checkpoints written before are kept and
                ``history_`` holds the epochs up to it.
        """
        sizes = self._check_params()  # everything is checked before the model changes
        X = self._check_X(X, sizes[0])
        y = self._check_y(y, len(X), sizes[-1])
        if (X_val is None) != (y_val is None):
            raise ValueError("Pass both X_val and y_val, or neither.")
        if X_val is not None:
            X_val = self._check_X(X_val, sizes[0], "X_val")
            y_val = self._check_y(y_val, len(X_val), sizes[-1], "y_val")
        self.initialize()
        if self.checkpoint_dir and self.checkpoint_every:
            os.makedirs(self.checkpoint_dir, exist_ok=True)
        if self.weight_init == "zero" and len(self._sizes) > 2:
            warnings.warn(
                "weight_init='zero' cannot break symmetry: every unit of a hidden layer receives the same "
                "gradient and stays a copy of the others (see distinct_units()). Use normal, he or glorot.",
                SymmetryWarning,
                stacklevel=2,
            )
        n, batch = len(X), min(self.batch_size, len(X))
        # Each step gathers its rows into a small buffer that stays in cache for the products that read
        # it (a shuffled copy of all of X would be written and read back once more every epoch).
        gathered = {
            rows: (np.empty((rows, X.shape[1]), X.dtype), np.empty(rows, y.dtype))
            for rows in {batch, n % batch or batch}
        }
        self.history_ = {"loss": [], "accuracy": [], "seconds": []}
        if X_val is not None:
            self.history_.update(val_loss=[], val_accuracy=[])
        self.checkpoints_ = {}
        progress = _Progress(self.num_epochs, enabled=bool(self.verbose))
        for epoch in range(1, self.num_epochs + 1):
            start = time.perf_counter()
            order = self._epoch_order(n)
            loss_sum, correct = 0.0, 0
            for first in range(0, n, batch):
                rows = order[first : first + batch]
                xb, yb = gathered[len(rows)]
                np.take(X, rows, axis=0, out=xb)
                np.take(y, rows, out=yb)
                acts = self._forward(xb, training=True)
                deltas = self._layer_buffers(len(xb))[1]
                correct += int(np.count_nonzero(acts[-1].argmax(axis=1) == yb))
                loss_sum += softmax_cross_entropy(acts[-1], yb, grad_out=deltas[-1]) * len(xb)
                self._backward(xb, acts, deltas[-1], scale=self.learning_rate)
                self._step()
            record = {"loss": loss_sum / n, "accuracy": correct / n, "seconds": time.perf_counter() - start}
            if X_val is not None:
                record["val_loss"], record["val_accuracy"] = self._loss_accuracy(X_val, y_val)
            for key, value in record.items():
                self.history_[key].append(value)
            if not math.isfinite(record["loss"]):
                progress.close()
                for name in ("coefs_", "intercepts_", "batch_norms_"):  # NaN weights must not look fitted
                    delattr(self, name)
                saved = (
                    f" Checkpoints written before it are kept: {sorted(self.checkpoints_)}."
                    if self.checkpoints_
                    else ""
                )
                raise TrainingDiverged(
                    f"Training diverged at epoch {epoch}: the loss is {record['loss']}. Lower learning_rate "
                    f"(now {self.learning_rate}), or use batch_norm / a smaller weight_init.{saved}"
                )
            if self.checkpoint_dir and self.checkpoint_every and epoch % self.checkpoint_every == 0:
                self.checkpoints_[epoch] = self.save(self.checkpoint_dir, epoch)
            progress.update(epoch, record)
        progress.close()
        return self

    def _epoch_order(self, n: int) -> np.ndarray:
        """This epoch's order of the training rows: a fresh permutation from the seeded generator."""
        return self._rng.permutation(n)

    # ------------------------------------------------------------------ inference

    def _logits(self, X) -> np.ndarray:
        self._check_fitted()
        X = self._check_X(X, self.coefs_[0].shape[0])
        out = np.empty((len(X), self.coefs_[-1].shape[1]), np.dtype(self.dtype))
        for first in range(0, len(X), PREDICT_CHUNK):
            chunk = X[first : first + PREDICT_CHUNK]
            out[first : first + len(chunk)] = self._forward(chunk, training=False)[-1]
        self._buffers = {k: v for k, v in self._buffers.items() if k <= self.batch_size}  # free the big ones
        return out

    def _loss_accuracy(self, X, y) -> Tuple[float, float]:
        logits = self._logits(X)
        return softmax_cross_entropy(logits, y), float(np.mean(logits.argmax(axis=1) == y))

    def predict_proba(self, X) -> np.ndarray:
        """Class probabilities ``(n_samples, n_classes)`` (batch norm in inference mode)."""
        return softmax(self._logits(X).astype(np.float64))

    def predict(self, X) -> np.ndarray:
        """The most probable class of each row."""
        logits = self._logits(X)  # checks that the model is fitted
        return self.classes_[logits.argmax(axis=1)]

    def score(self, X, y) -> float:
        """Accuracy on ``(X, y)``, as scikit-learn's ``ClassifierMixin.score``."""
        self._check_fitted()
        y = self._check_y(y, len(np.asarray(X)), len(self.classes_))
        return float(np.mean(self.predict(X) == y))

    def distinct_units(self, tolerance: float = 1e-6) -> List[int]:
        """For each hidden layer, how many of its units differ from one another (their incoming weight
        columns, to ``tolerance``). A layer started from ``zero`` weights keeps 1 however long it trains."""
        self._check_fitted()
        counts = []
        for w in self.coefs_[:-1]:
            columns = np.round(w.T.astype(np.float64) / tolerance).astype(np.int64)
            counts.append(len(np.unique(columns, axis=0)))
        return counts

    # ------------------------------------------------------------------ checkpoints

    def save(self, directory: str, epoch: int) -> Tuple[str, str]:
        """Writes ``<epoch>_<activation>_weights.npz`` and ``..._biases.npz`` (and ``..._batchnorm.npz``
        with batch norm) into ``directory``; returns the weights and biases paths."""
        self._check_fitted()
        return checkpoints.save(directory, epoch, self.activation, self.coefs_, self.intercepts_, self.batch_norms_)

    @classmethod
    def load(cls, weights_path: str, biases_path: Optional[str] = None, activation: Optional[str] = None, **params):
        """A fitted ``NumpyMLP`` from a checkpoint, for evaluation.

        Args:
            weights_path: ``<epoch>_<activation>_weights.npz``.
            biases_path: The biases file (default: the weights file's sibling ``..._biases.npz``).
            activation: Default: read from the file name.
            **params: Other constructor arguments (``dtype``, ...).

        Raises:
            ValueError: For a missing, truncated or pickle-holding file, or arrays of the wrong shapes.
        """
        state = checkpoints.load(weights_path, biases_path, activation)
        sizes = [state.coefs[0].shape[0]] + [w.shape[1] for w in state.coefs]
        model = cls(
            n_layers=len(sizes),
            layer_sizes=tuple(sizes),
            activation=state.activation,
            batch_norm=bool(state.batch_norms),
            **params,
        )
        model.initialize()
        for mine, saved in zip(model.coefs_ + model.intercepts_, state.coefs + state.intercepts):
            mine[...] = saved  # in place (cast to the model's dtype): the gradient and update slots stay valid
        for bn, saved in zip(model.batch_norms_, state.batch_norms):
            for key, value in saved.items():
                getattr(bn, key)[...] = value
        return model


class _Progress:
    """A one-line progress bar over epochs on standard error (a terminal redraws it in place; a log
    file gets one line every tenth of the run)."""

    def __init__(self, total: int, enabled: bool, width: int = 24):
        self.total, self.enabled, self.width = total, enabled, width
        self.start = time.perf_counter()
        self.tty = enabled and sys.stderr.isatty()

    def update(self, epoch: int, record: Dict[str, float]) -> None:
        if not self.enabled:
            return
        if not self.tty and epoch % max(1, self.total // 10) and epoch != self.total:
            return
        done = int(self.width * epoch / self.total)
        elapsed = time.perf_counter() - self.start
        eta = elapsed / epoch * (self.total - epoch)
        parts = [f"loss {record['loss']:.4f}", f"acc {record['accuracy']:.4f}"]
        if "val_accuracy" in record:
            parts.append(f"val_acc {record['val_accuracy']:.4f}")
        line = (
            f"[{'#' * done}{'.' * (self.width - done)}] epoch {epoch}/{self.total} "
            f"{' '.join(parts)} {record['seconds']:.2f} s/epoch, {eta:.0f} s left"
        )
        sys.stderr.write(("\r" + line) if self.tty else line + "\n")
        sys.stderr.flush()

    def close(self) -> None:
        if self.tty:
            sys.stderr.write("\n")
            sys.stderr.flush()
