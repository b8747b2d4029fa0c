"""Is an input unlike anything the model was trained on?

The score ``predict`` reports is the **distance to the nearest training images in the model's own feature
space** (Sun, Ming, Zhu and Li, "Out-of-Distribution Detection with Deep Nearest Neighbors", ICML 2022),
taken at **several depths** and combined, as the feature ensemble of Lee, Lee, Lee and Shin ("A Simple
Unified Framework for Detecting Out-of-Distribution Samples and Adversarial Attacks", NeurIPS 2018) does:

- the layers (``feature_layers``): the first layer at each spatial size below the input's (in a VGG-style
  net, each block's pooling; in a ResNet, each strided stage) averaged over its positions, and the
  penultimate features (the input of the ``logits`` layer), each L2-normalised;
- at each layer, an input's distance to its ``NEIGHBOURS``-th nearest entry of a bank of a seeded sample of
  the training images (scikit-learn's ``NearestNeighbors``), divided by that layer's ``QUANTILE`` distance
  over the validation sample, so every layer speaks in the same unit; the score is the largest of them.
  Lee et al. weight the layers by a regression fitted on out-of-distribution examples; taking the largest
  needs none, and an input is flagged by whichever depth finds it strange: early layers see texture and
  background (a photo), the penultimate one sees shape (a garment-like silhouette of another kind).

The threshold is **calibrated on the run's validation split** (never the test split): the ``QUANTILE``
(99th percentile) of that score, so about 1 in 100 images like the training data is flagged.

Why not the logits or the penultimate features alone: a model trained with label smoothing (the fast
recipe's) keeps its logits in a narrow band for every input, and photos shrunk to a Fashion-MNIST frame
can look garment-like in shape. ``benchmarks/novelty.py`` measures each choice (AUROC on digits, faces
and photos against the test images, and the share flagged) in ``benchmarks/results/novelty.md``. Without
a Keras model (an export whose run folder is gone) ``predict`` falls back to the negative maximum softmax
probability (Hendrycks and Gimpel, ICLR 2017), calibrated the same way.
"""

from __future__ import annotations

from typing import Any, Callable, Dict, List, Optional, Sequence

import numpy as np

QUANTILE = 0.99  # share of validation images under the threshold
CALIBRATION_IMAGES = 6000  # a seeded sample of the validation split (all of it when smaller)
BANK_IMAGES = 5000  # a seeded sample of the training split whose features are the bank
NEIGHBOURS = 10
PENULTIMATE = "penultimate"  # in feature_layers: the input of the logits layer


def negative_max_probability(probabilities: np.ndarray) -> np.ndarray:
    """The fallback score: ``-max softmax probability`` (higher = less like the training data)."""
    return -np.asarray(probabilities, dtype=np.float64).max(axis=1)


def calibrate(values: np.ndarray, name: str, quantile: float = QUANTILE) -> Dict[str, Any]:
    """The threshold: the ``quantile`` of a score's ``values`` over the validation images."""
    values = np.asarray(values, dtype=np.float64)
    if len(values) == 0:
        raise ValueError("no validation images to calibrate the novelty threshold on")
    return {
        "score": name,
        "threshold": float(np.quantile(values, quantile)),
        "quantile": quantile,
        "images": int(len(values)),
    }


def flag(values: np.ndarray, calibration: Dict[str, Any]) -> np.ndarray:
    """Whether each score is above the calibrated threshold (unlike the training data)."""
    return np.asarray(values, dtype=np.float64) > calibration["threshold"]


def split_images(run, split: str, count: int, seed: int = 0) -> Optional[np.ndarray]:
    """A seeded sample of ``count`` raw images of the run's ``split`` (``train`` or ``val``), or ``None`` when
    its data cannot be loaded here (no download) or the split is empty."""
    try:
        images, _, _ = run.split_sample(split, count, seed)
    except (ValueError, OSError):
        return None
    return images if len(images) else None


def feature_layers(model) -> List[str]:
    """The layers whose features the score compares: the first layer at each spatial size below the input's
    (4-D outputs), then the penultimate features (the input of the ``logits`` layer, or of the last layer)."""
    input_size = tuple(model.inputs[0].shape[1:3])
    first_at: Dict[tuple, str] = {}
    for layer in model.layers:
        shape = tuple(getattr(layer.output, "shape", ()))
        if len(shape) == 4 and shape[1:3] != input_size and shape[1:3] not in first_at:
            first_at[shape[1:3]] = layer.name
    return list(first_at.values()) + [PENULTIMATE]


def feature_model(model, layers: Sequence[str]):
    """The model up to each of ``layers`` (``PENULTIMATE``: the input of its ``logits`` layer), one output
    each, averaged over positions where the output is spatial."""
    import keras

    names = [layer.name for layer in model.layers]
    last = model.get_layer("logits") if "logits" in names else model.layers[-1]
    outputs = [last.input if name == PENULTIMATE else model.get_layer(name).output for name in layers]
    outputs = [keras.ops.mean(out, axis=(1, 2)) if len(out.shape) == 4 else out for out in outputs]
    inputs = model.inputs[0] if len(model.inputs) == 1 else model.inputs  # one image input: no list (Keras warns)
    return keras.Model(inputs, outputs)


def normalised(features: np.ndarray) -> np.ndarray:
    features = np.asarray(features, dtype=np.float32).reshape(len(features), -1)
    return features / np.maximum(np.linalg.norm(features, axis=1, keepdims=True), 1e-12)


class NearestTraining:
    """The deep-nearest-neighbours score at several layers: at each, the distance to the ``k``-th nearest
    training image in feature space over that layer's ``quantile`` distance on ``scale_images``; the largest.

    Args:
        features_of: Images -> one feature array (N, D) per layer.
        train_images: The bank's images.
        scale_images: Images like the training data (the validation sample) that set each layer's unit;
            ``None``: no scaling (one layer, or a test by hand). Their scores, computed on the way, are
            ``scale_scores`` (what the threshold is calibrated on: no second pass over them).
    """

    def __init__(
        self,
        features_of: Callable[[np.ndarray], List[np.ndarray]],
        train_images: np.ndarray,
        scale_images: Optional[np.ndarray] = None,
        k: int = NEIGHBOURS,
        quantile: float = QUANTILE,
    ):
        from sklearn.neighbors import NearestNeighbors

        self.features_of = features_of
        self.k = min(k, len(train_images))
        self.indexes = [NearestNeighbors(n_neighbors=self.k).fit(normalised(f)) for f in features_of(train_images)]
        self.scales, self.scale_scores = np.ones(len(self.indexes)), None
        if scale_images is not None:
            distances = self.per_layer(scale_images)
            self.scales = np.maximum(np.quantile(distances, quantile, axis=0), 1e-12)
            self.scale_scores = (distances / self.scales).max(axis=1)

    def per_layer(self, images: np.ndarray) -> np.ndarray:
        """Each image's distance to its ``k``-th nearest bank entry at each layer, unscaled (N, layers)."""
        features = self.features_of(images)
        return np.stack(
            [index.kneighbors(normalised(f))[0][:, -1] for index, f in zip(self.indexes, features)], axis=1
        ).astype(np.float64)

    def __call__(self, images: np.ndarray) -> np.ndarray:
        return (self.per_layer(images) / self.scales).max(axis=1)


def auroc(inside: np.ndarray, outside: np.ndarray) -> float:
    """Area under the ROC curve of a score that should be higher ``outside`` the training distribution
    (scikit-learn's ``roc_auc_score``; 0.5 = no better than chance)."""
    from sklearn.metrics import roc_auc_score

    labels = np.r_[np.zeros(len(inside)), np.ones(len(outside))]
    return float(roc_auc_score(labels, np.r_[inside, outside]))
