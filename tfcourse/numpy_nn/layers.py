"""The pieces of a NumPy-only network, each with its forward and its hand-written backward pass:
activations, weight initialisations, the softmax output fused with cross-entropy, and batch
normalisation.

The functions write into buffers the caller owns (``out=``), so a training step allocates nothing:
the network keeps one set of arrays per batch size and reuses them every step.
"""

from __future__ import annotations

from typing import Dict

import numpy as np

ACTIVATIONS = ("relu", "sigmoid", "tanh", "linear")
INITIALIZERS = ("zero", "random", "normal", "he", "glorot")


# ----------------------------------------------------------------------------- activations


def activate(name: str, z: np.ndarray, out: np.ndarray) -> np.ndarray:
    """``out = f(z)`` for the activation ``name`` (``out`` may be ``z`` itself)."""
    if name == "relu":
        return np.maximum(z, 0, out=out)
    if name == "sigmoid":
        # 1 / (1 + exp(-z)) overflows exp for z << 0 in float32; 0.5 * (1 + tanh(z / 2)) is the same
        # function and never overflows.
        np.multiply(z, 0.5, out=out)
        np.tanh(out, out=out)
        out += 1
        out *= 0.5
        return out
    if name == "tanh":
        return np.tanh(z, out=out)
    if name == "linear":
        if out is not z:
            np.copyto(out, z)
        return out
    raise ValueError(f"Unknown activation {name!r}; use one of {', '.join(ACTIVATIONS)}.")


def activation_backward(name: str, a: np.ndarray, delta: np.ndarray, scratch: np.ndarray = None) -> np.ndarray:
    """``delta *= f'(z)``, in place, with the derivative written through the output ``a = f(z)``
    (all four have one: relu ``a > 0``, sigmoid ``a (1 - a)``, tanh ``1 - a^2``, linear 1).
    ``scratch`` (shaped like ``a``) holds the derivative, so nothing is allocated."""
    if name == "linear":
        return delta
    if name not in ACTIVATIONS:
        raise ValueError(f"Unknown activation {name!r}; use one of {', '.join(ACTIVATIONS)}.")
    if scratch is None:
        scratch = np.empty_like(a)
    if name == "relu":
        np.sign(a, out=scratch)  # a >= 0, so its sign is the 0/1 mask of z > 0
    elif name == "sigmoid":
        np.subtract(1, a, out=scratch)
        scratch *= a
    else:  # tanh
        np.multiply(a, a, out=scratch)
        np.subtract(1, scratch, out=scratch)
    delta *= scratch
    return delta


# ----------------------------------------------------------------------------- initialisation


def init_weights(name: str, fan_in: int, fan_out: int, rng: np.random.Generator, dtype) -> np.ndarray:
    """A ``(fan_in, fan_out)`` weight matrix.

    ``zero``: all zeros (cannot break the symmetry between a layer's units: they stay identical).
    ``random``: uniform on [0, 1) x 0.01 (the course's). ``normal``: N(0, 1) x 0.01 (the course's).
    ``he``: N(0, 2 / fan_in) (for relu). ``glorot``: uniform on +-sqrt(6 / (fan_in + fan_out)).
    """
    shape = (fan_in, fan_out)
    if name == "zero":
        weights = np.zeros(shape)
    elif name == "random":
        weights = rng.random(shape) * 0.01
    elif name == "normal":
        weights = rng.standard_normal(shape) * 0.01
    elif name == "he":
        weights = rng.standard_normal(shape) * np.sqrt(2.0 / fan_in)
    elif name == "glorot":
        limit = np.sqrt(6.0 / (fan_in + fan_out))
        weights = rng.uniform(-limit, limit, shape)
    else:
        raise ValueError(f"Unknown weight_init {name!r}; use one of {', '.join(INITIALIZERS)}.")
    return weights.astype(dtype)


# ----------------------------------------------------------------------------- output


def softmax_cross_entropy(logits: np.ndarray, labels: np.ndarray, grad_out: np.ndarray = None) -> float:
    """Mean cross-entropy of ``softmax(logits)`` against integer ``labels``, by log-sum-exp.

    When ``grad_out`` is given it receives ``d loss / d logits = (softmax - onehot) / n``: the fused
    gradient, which never divides by a probability that underflowed to 0.
    """
    n = len(labels)
    shift = logits.max(axis=1, keepdims=True)
    work = grad_out if grad_out is not None else np.empty_like(logits)
    np.subtract(logits, shift, out=work)
    picked = work[np.arange(n), labels]
    np.exp(work, out=work)
    sums = work.sum(axis=1, keepdims=True)
    loss = float(np.mean(np.log(sums[:, 0]) - picked))
    if grad_out is not None:
        work /= sums
        work[np.arange(n), labels] -= 1
        work /= n
    return loss


def softmax(logits: np.ndarray) -> np.ndarray:
    shifted = np.exp(logits - logits.max(axis=1, keepdims=True))
    return shifted / shifted.sum(axis=1, keepdims=True)


# ----------------------------------------------------------------------------- batch normalisation


class BatchNorm:
    """Batch normalisation over the features of a ``(batch, features)`` array, as
    ``keras.layers.BatchNormalization`` computes it (same defaults: ``momentum=0.99``, ``epsilon=1e-3``,
    moving statistics from the biased batch variance).

    Train mode normalises by the batch's mean and variance and moves the running averages
    (``moving = momentum * moving + (1 - momentum) * batch``); inference mode uses the running averages.
    ``backward`` is the compact form of the gradient:
    ``dx = gamma / (n sigma) * (n dy - sum(dy) - xhat * sum(dy * xhat))``.
    """

    def __init__(self, features: int, momentum: float = 0.99, epsilon: float = 1e-3, dtype=np.float32):
        if not 0 <= momentum < 1:
            raise ValueError(f"BatchNorm momentum must be in [0, 1), got {momentum}.")
        if not epsilon > 0:
            raise ValueError(f"BatchNorm epsilon must be positive, got {epsilon}.")
        self.momentum = momentum
        self.epsilon = epsilon
        self.gamma = np.ones(features, dtype)
        self.beta = np.zeros(features, dtype)
        self.moving_mean = np.zeros(features, dtype)
        self.moving_var = np.ones(features, dtype)
        self.dgamma = np.zeros(features, dtype)
        self.dbeta = np.zeros(features, dtype)
        self._xhat: Dict[int, np.ndarray] = {}  # one buffer per batch size (the last batch may be smaller)
        self._scratch: Dict[int, np.ndarray] = {}
        self._inv_std = np.ones(features, dtype)

    def forward(self, x: np.ndarray, out: np.ndarray, training: bool) -> np.ndarray:
        """``out = gamma * (x - mean) / sqrt(var + eps) + beta`` (``out`` may be ``x``)."""
        if training:
            mean = x.mean(axis=0)
            var = x.var(axis=0)
            keep = self.momentum
            self.moving_mean *= keep
            self.moving_mean += (1 - keep) * mean
            self.moving_var *= keep
            self.moving_var += (1 - keep) * var
        else:
            mean, var = self.moving_mean, self.moving_var
        np.add(var, self.epsilon, out=self._inv_std)
        np.sqrt(self._inv_std, out=self._inv_std)
        np.divide(1, self._inv_std, out=self._inv_std)
        np.subtract(x, mean, out=out)
        out *= self._inv_std
        if training:
            if len(x) not in self._xhat:
                self._xhat[len(x)] = np.empty_like(out)
                self._scratch[len(x)] = np.empty_like(out)
            self._last_xhat, self._last_scratch = self._xhat[len(x)], self._scratch[len(x)]
            np.copyto(self._last_xhat, out)
        out *= self.gamma
        out += self.beta
        return out

    def backward(self, dy: np.ndarray) -> np.ndarray:
        """Given ``dL/dy`` of the last training ``forward``, sets ``dgamma``/``dbeta`` and turns ``dy``
        into ``dL/dx`` in place."""
        xhat = self._last_xhat
        n = len(dy)
        np.sum(dy, axis=0, out=self.dbeta)
        np.einsum("ij,ij->j", dy, xhat, out=self.dgamma)
        dy *= n
        dy -= self.dbeta
        np.multiply(xhat, self.dgamma, out=self._last_scratch)
        dy -= self._last_scratch
        dy *= self.gamma * self._inv_std / n
        return dy

    @property
    def state(self) -> Dict[str, np.ndarray]:
        return {"gamma": self.gamma, "beta": self.beta, "moving_mean": self.moving_mean, "moving_var": self.moving_var}
