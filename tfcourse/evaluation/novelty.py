"""Is an input unlike anything the model was trained on?

The score ``predict`` reports is the **distance to the nearest training images in the model's own feature
space** (Sun, Ming, Zhu and Li, "Out-of-Distribution Detection with Deep Nearest Neighbors", ICML 2022): the
penultimate features (the input of the ``logits`` layer), L2-normalised, of a seeded sample of the training
images form a bank; an input's score is the distance to its ``NEIGHBOURS``-th nearest bank entry
(scikit-learn's ``NearestNeighbors``). The threshold is **calibrated on the run's validation split** (never
the test split): its ``QUANTILE`` (99th percentile) score, so about 1 in 100 images like the training data is
flagged.

Why not the logits: a model trained with label smoothing (the fast recipe's) keeps its logits in a narrow
band for every input; on the README's vgg run the energy score (Liu et al., NeurIPS 2020,
``-logsumexp(logits)``) put both sample photos below its 99th-percentile threshold (a one-off measurement,
not yet a results file). Without a Keras model (an export whose run folder is gone) ``predict`` falls back to
the negative maximum softmax probability (Hendrycks and Gimpel, ICLR 2017), calibrated the same way.
"""

from __future__ import annotations

from typing import Any, Callable, Dict, Optional

import numpy as np

QUANTILE = 0.99  # share of validation images under the threshold
CALIBRATION_IMAGES = 2000  # a seeded sample of the validation split (all of it when smaller)
BANK_IMAGES = 5000  # a seeded sample of the training split whose features are the bank
NEIGHBOURS = 10


def negative_max_probability(probabilities: np.ndarray) -> np.ndarray:
    """The fallback score: ``-max softmax probability`` (higher = less like the training data)."""
    return -np.asarray(probabilities, dtype=np.float64).max(axis=1)


def calibrate(
    score: Callable[[np.ndarray], np.ndarray], images: np.ndarray, name: str, quantile: float = QUANTILE
) -> Dict[str, Any]:
    """The threshold: the ``quantile`` of ``score`` over ``images`` (raw validation images)."""
    values = np.asarray(score(images), dtype=np.float64)
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


def feature_model(model):
    """The model up to its penultimate features: the input of its ``logits`` layer (its last layer's input
    when there is none by that name)."""
    import keras

    names = [layer.name for layer in model.layers]
    last = model.get_layer("logits") if "logits" in names else model.layers[-1]
    inputs = model.inputs[0] if len(model.inputs) == 1 else model.inputs  # one image input: no list (Keras warns)
    return keras.Model(inputs, last.input)


def normalised(features: np.ndarray) -> np.ndarray:
    features = np.asarray(features, dtype=np.float32).reshape(len(features), -1)
    return features / np.maximum(np.linalg.norm(features, axis=1, keepdims=True), 1e-12)


class NearestTraining:
    """The deep-nearest-neighbours score: distance to the ``k``-th nearest training image in feature space."""

    def __init__(self, features_of: Callable[[np.ndarray], np.ndarray], train_images: np.ndarray, k: int = NEIGHBOURS):
        from sklearn.neighbors import NearestNeighbors

        self.features_of = features_of
        self.k = min(k, len(train_images))
        self.index = NearestNeighbors(n_neighbors=self.k).fit(normalised(features_of(train_images)))

    def __call__(self, images: np.ndarray) -> np.ndarray:
        distances, _ = self.index.kneighbors(normalised(self.features_of(images)))
        return distances[:, -1].astype(np.float64)


def auroc(inside: np.ndarray, outside: np.ndarray) -> float:
    """Area under the ROC curve of a score that should be higher ``outside`` the training distribution
    (scikit-learn's ``roc_auc_score``; 0.5 = no better than chance)."""
    from sklearn.metrics import roc_auc_score

    labels = np.r_[np.zeros(len(inside)), np.ones(len(outside))]
    return float(roc_auc_score(labels, np.r_[inside, outside]))
