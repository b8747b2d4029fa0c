"""Is an input unlike anything the model was trained on?

The **energy score** of Liu, Wang, Owens and Li ("Energy-based Out-of-distribution Detection", NeurIPS 2020):
``E(x) = -logsumexp(logits(x))``. A classifier gives the images it was trained for large logits and so a
low energy; an input unlike them gets a higher one. Unlike the maximum softmax probability it does not
saturate: a photo of a rocket that a Fashion-MNIST model calls "Bag 0.53" still has a high energy.

The threshold is **calibrated on the run's validation split** (never the test split): its ``QUANTILE``
(99th percentile) energy, so about 1 in 100 images like the training data is flagged; an input whose
energy exceeds it is flagged as unlike the training data. Where only probabilities exist (an export whose
run folder is gone) the score falls back to the negative maximum softmax probability (Hendrycks and Gimpel,
ICLR 2017), calibrated the same way.
"""

from __future__ import annotations

from typing import Any, Callable, Dict, Optional

import numpy as np

QUANTILE = 0.99  # share of validation images under the threshold
CALIBRATION_IMAGES = 2000  # a seeded sample of the validation split (all of it when smaller)


def energy(logits: np.ndarray) -> np.ndarray:
    """``-logsumexp`` of each row of logits (float64)."""
    from scipy.special import logsumexp

    return -logsumexp(np.asarray(logits, dtype=np.float64), axis=1)


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


def validation_images(run, count: int = CALIBRATION_IMAGES, seed: int = 0) -> Optional[np.ndarray]:
    """A seeded sample of the run's validation images (raw), or ``None`` when its data cannot be loaded here
    (no download) or it has no validation split."""
    try:
        test = run.test_data()
    except (ValueError, OSError):
        return None
    x, _ = test.dataset.pooled()
    val = np.asarray(test.splits.val)
    if len(val) == 0:
        return None
    chosen = np.sort(np.random.default_rng(seed).choice(val, size=min(count, len(val)), replace=False))
    return x[chosen]


def auroc(inside: np.ndarray, outside: np.ndarray) -> float:
    """Area under the ROC curve of a score that should be higher ``outside`` the training distribution
    (scikit-learn's ``roc_auc_score``; 0.5 = no better than chance)."""
    from sklearn.metrics import roc_auc_score

    labels = np.r_[np.zeros(len(inside)), np.ones(len(outside))]
    return float(roc_auc_score(labels, np.r_[inside, outside]))
