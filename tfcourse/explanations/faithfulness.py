"""How faithful a saliency map is to the model: does the model use the pixels the map points at?

- **Deletion and insertion** (Petsiuk, Das and Saenko, "RISE: Randomized Input Sampling for Explanation of
  Black-box Models", BMVC 2018): the pixels are removed (set to a black canvas) or revealed (onto a blurred
  copy of the image) in the order the map ranks them, ``steps`` equal slices at a time, and the explained
  class's probability is read at every step. The area under that curve (x from 0 to 1, trapezoids) is the
  score: a faithful map has a **low deletion AUC** (the probability falls as soon as its top pixels go) and
  a **high insertion AUC**. A random map and a Sobel edge map of the same images are scored the same way,
  as the baselines a method must beat.
- **Model-parameter randomisation** (Adebayo et al., "Sanity Checks for Saliency Maps", NeurIPS 2018): the
  weighted layers are re-initialised from the top down (cascading) and the maps computed again; a method
  that explains the model gives maps that change. The change is the Spearman rank correlation between each
  image's original and randomised map (absolute value, as the paper: a sign flip is no change); the check
  passes when its median over the images falls below ``RANK_CORRELATION_LIMIT`` after the cascade. An
  explainer that ignores the model (an edge detector) keeps a correlation of 1 and fails.

Written from the papers (NumPy, SciPy, Keras): the field's libraries do not install beside TensorFlow 2.21
and Keras 3 (Quantus 0.6's TensorFlow extra pins tensorflow<2.16, keras<3 and numpy<2; Xplique 2.0.2 pins
tensorflow<=2.20, scipy<=1.15.3 and scikit-learn<=1.7.2). ``tests/test_faithfulness.py`` checks the curves
and areas against a hand computation on a tiny model.
"""

from __future__ import annotations

import time
from typing import Any, Callable, Dict, List, Optional, Sequence

import numpy as np

STEPS = 16  # slices of the pixels removed or revealed per curve (17 points with the untouched image)
BLUR_SIGMA = 0.125  # the insertion canvas's Gaussian blur, as a share of the image's side (RISE blurs it)
RANK_CORRELATION_LIMIT = 0.5  # the randomisation check passes below this median |Spearman rho|
CASCADE_LAYERS = 3  # weighted layers re-initialised from the top, one more at each step
PREDICT_IMAGES = 512  # images per model call when the curves are read


def area(curve: np.ndarray) -> np.ndarray:
    """The area under curves sampled at equal steps from 0 to 1 (trapezoids), along the last axis."""
    curve = np.asarray(curve, dtype=np.float64)
    return np.trapezoid(curve, dx=1.0 / (curve.shape[-1] - 1), axis=-1)


def pixel_ranks(maps: np.ndarray, seed: int = 0) -> np.ndarray:
    """Each pixel's rank in its map, 0 for the hottest (N, H, W); ties (Grad-CAM's zeros) broken at random,
    seeded, so a flat region is not deleted in reading order."""
    maps = np.asarray(maps, dtype=np.float64)
    flat = maps.reshape(len(maps), -1)
    jitter = np.random.default_rng(seed).random(flat.shape)
    order = np.lexsort((jitter, -flat), axis=-1)  # by heat descending, then the random tie-break
    ranks = np.empty_like(order)
    np.put_along_axis(ranks, order, np.arange(flat.shape[1])[None, :].repeat(len(flat), 0), axis=-1)
    return ranks.reshape(maps.shape)


def blurred(images: np.ndarray, sigma: float = BLUR_SIGMA) -> np.ndarray:
    """The insertion canvas: each image blurred (Gaussian, ``sigma`` x the shorter side), per channel."""
    from scipy import ndimage

    images = np.asarray(images, dtype=np.float32)
    radius = sigma * min(images.shape[1:3])
    return ndimage.gaussian_filter(images, sigma=(0, radius, radius, 0))


def curves(
    predict: Callable[[np.ndarray], np.ndarray],
    images: np.ndarray,
    class_ids: Sequence[int],
    maps: np.ndarray,
    steps: int = STEPS,
    seed: int = 0,
    canvas: Optional[np.ndarray] = None,
) -> Dict[str, np.ndarray]:
    """Deletion and insertion curves, ``(N, steps + 1)`` each: the probability of each image's class as the
    map's top ``k / steps`` of the pixels are set to black (deletion) or revealed on the blurred image
    (insertion), k = 0 .. steps.

    Args:
        predict: Raw images (N, H, W, C) float32, pixel values as the dataset stores them -> class
            probabilities (N, classes).
        images: Raw images (N, H, W, C).
        maps: One map per image, (N, H, W) (resized to the image if smaller).
        canvas: What insertion reveals the pixels on (default: ``blurred(images)``).
    """
    images = np.asarray(images, dtype=np.float32)
    maps = _to_size(np.asarray(maps), images.shape[1:3])
    n, pixels = len(images), images.shape[1] * images.shape[2]
    ranks = pixel_ranks(maps, seed)[..., None]  # (N, H, W, 1): broadcast over the channels
    canvas = blurred(images) if canvas is None else np.asarray(canvas, dtype=np.float32)
    rows, class_ids = np.arange(n), np.asarray(class_ids)
    kinds = ("deletion", "insertion")

    def batches():  # every step's deleted and inserted images, in step order
        for k in range(steps + 1):
            changed = ranks < round(k * pixels / steps)
            yield np.where(changed, 0.0, images).astype(np.float32)
            yield np.where(changed, images, canvas).astype(np.float32)

    # one model call per PREDICT_IMAGES images, not one per step: a Keras call costs milliseconds however
    # small the batch, and a curve has 2 x (steps + 1) batches
    per_call = max(1, PREDICT_IMAGES // max(1, n))
    points, pending = [], []
    for batch in batches():
        pending.append(batch)
        if len(pending) == per_call:
            points += np.split(predict(np.concatenate(pending)), len(pending))
            pending = []
    if pending:
        points += np.split(predict(np.concatenate(pending)), len(pending))
    return {kind: np.stack([p[rows, class_ids] for p in points[i::2]], axis=1) for i, kind in enumerate(kinds)}


def random_maps(shape, seed: int = 0) -> np.ndarray:
    """Uniform random maps (the baseline any explanation must beat)."""
    return np.random.default_rng(seed).random(shape)


def edge_maps(images: np.ndarray) -> np.ndarray:
    """Sobel edge magnitude of each image (its grey level): a map that looks at the image, not the model."""
    from scipy import ndimage

    grey = np.asarray(images, dtype=np.float32).mean(axis=-1)
    return np.hypot(ndimage.sobel(grey, axis=1), ndimage.sobel(grey, axis=2))


def rank_correlations(first: np.ndarray, second: np.ndarray) -> np.ndarray:
    """|Spearman rho| between each pair of maps (flattened); 1 where both are constant (nothing changed), 0
    where only one is (a map appeared or vanished)."""
    from scipy import stats

    values = []
    for a, b in zip(np.asarray(first), np.asarray(second)):
        a, b = a.ravel(), b.ravel()
        if np.ptp(a) == 0 or np.ptp(b) == 0:
            values.append(1.0 if np.ptp(a) == np.ptp(b) == 0 else 0.0)
            continue
        values.append(abs(float(stats.spearmanr(a, b).statistic)))
    return np.asarray(values)


def weighted_layers(model) -> List[Any]:
    """The model's layers with a kernel (dense, convolutions, attention), input to output."""
    return [layer for layer in model.layers if any("kernel" in weight.path for weight in layer.trainable_weights)]


def randomisation_check(
    model,
    explainer: Callable[[Any], np.ndarray],
    depth: int = CASCADE_LAYERS,
    seed: int = 0,
) -> Dict[str, Any]:
    """The cascading model-parameter randomisation check of Adebayo et al. (2018).

    Args:
        model: The trained Keras model (left untouched: a copy is randomised).
        explainer: A model -> its maps (N, H, W) for the images being checked.
        depth: How many weighted layers to re-initialise, from the top (each step adds the next one down).

    Returns:
        ``{"layers": names re-initialised in order, "rank_correlation": the median |Spearman rho| after each
        step, "per_image": the last step's values, "limit", "passed"}``.
    """
    import keras

    original = np.asarray(explainer(model))
    copy = keras.models.clone_model(model)
    copy.set_weights(model.get_weights())
    rng = np.random.default_rng(seed)
    layers = weighted_layers(copy)[::-1][:depth]
    medians, per_image = [], np.ones(len(original))
    for layer in layers:
        for weight in layer.trainable_weights:
            value = np.asarray(weight.numpy())
            scale = float(value.std()) or 0.05
            weight.assign(rng.normal(0.0, scale, value.shape).astype(value.dtype))
        per_image = rank_correlations(original, explainer(copy))
        medians.append(float(np.median(per_image)))
    return {
        "layers": [layer.name for layer in layers],
        "rank_correlation": medians,
        "per_image": per_image.tolist(),
        "limit": RANK_CORRELATION_LIMIT,
        "passed": bool(medians) and medians[-1] < RANK_CORRELATION_LIMIT,
    }


def score(
    predict: Callable[[np.ndarray], np.ndarray],
    images: np.ndarray,
    class_ids: Sequence[int],
    maps: np.ndarray,
    steps: int = STEPS,
    seed: int = 0,
) -> Dict[str, Any]:
    """Deletion and insertion AUCs of ``maps`` (mean and standard deviation over the images, and per image),
    with their curves' mean."""
    found = curves(predict, images, class_ids, maps, steps, seed)
    out: Dict[str, Any] = {}
    for kind, values in found.items():
        areas = area(values)
        out[kind] = {
            "auc": float(areas.mean()),
            "std": float(areas.std()),
            "per_image": areas.tolist(),
            "curve": values.mean(axis=0).tolist(),
        }
    return out


def evaluate(
    model,
    predict: Callable[[np.ndarray], np.ndarray],
    to_inputs: Callable[[np.ndarray], np.ndarray],
    images: np.ndarray,
    class_ids: Sequence[int],
    methods: Dict[str, Callable[[Any, np.ndarray], Dict[str, Any]]],
    steps: int = STEPS,
    depth: int = CASCADE_LAYERS,
    seed: int = 0,
    progress: Optional[Callable[[str], None]] = None,
) -> Dict[str, Any]:
    """Every method's faithfulness on ``images`` beside the random and edge baselines.

    Args:
        model: The Keras model the methods explain.
        predict: Raw images -> class probabilities (``curves``).
        to_inputs: Raw images -> the model's inputs (the run's normalisation).
        methods: ``{name: (model, inputs, class_ids) -> {"maps": (N, H, W), "layer": name or None}}``.

    Returns:
        ``{"baselines": {"random": score, "edges": score}, "methods": {name: score + "layer", "seconds_per_image",
        "randomisation"}, "images": N, "steps", "seed"}``.
    """
    say = progress or (lambda text: None)
    images, class_ids = np.asarray(images), np.asarray(class_ids)
    inputs = to_inputs(images)
    height, width = images.shape[1:3]
    result: Dict[str, Any] = {
        "images": int(len(images)),
        "steps": steps,
        "seed": seed,
        "baselines": {
            "random": score(predict, images, class_ids, random_maps((len(images), height, width), seed), steps, seed),
            "edges": score(predict, images, class_ids, edge_maps(images), steps, seed),
        },
        "methods": {},
    }
    for name, method in methods.items():
        say(f"faithfulness of {name} ...")
        method(model, inputs[:2], class_ids[:2])  # warm-up: the first call traces; the time below is the method's
        started = time.perf_counter()
        explained = method(model, inputs, class_ids)
        seconds = (time.perf_counter() - started) / max(1, len(images))
        entry = score(predict, images, class_ids, explained["maps"], steps, seed)
        entry["layer"] = explained.get("layer")
        entry["seconds_per_image"] = seconds
        chance = result["baselines"]["random"]
        # paired, image by image: how much better than the random map's area on the same image (positive:
        # better; deletion: the random map's area minus the map's), its mean and spread, and on how many images
        gains = {
            "deletion": np.asarray(chance["deletion"]["per_image"]) - entry["deletion"]["per_image"],
            "insertion": np.asarray(entry["insertion"]["per_image"]) - chance["insertion"]["per_image"],
        }
        entry["gain_over_random"] = {
            kind: {"mean": float(g.mean()), "std": float(g.std())} for kind, g in gains.items()
        }
        entry["beats_random"] = {kind: int(np.sum(g > 0)) for kind, g in gains.items()}
        entry["maps"] = np.asarray(explained["maps"])  # for the caller's own measures; not JSON
        entry["randomisation"] = randomisation_check(
            model, lambda candidate, method=method: method(candidate, inputs, class_ids)["maps"], depth, seed
        )
        result["methods"][name] = entry
    return result


def _to_size(maps: np.ndarray, size) -> np.ndarray:
    if maps.shape[1:3] == tuple(size):
        return maps
    from scipy import ndimage

    factors = (1, size[0] / maps.shape[1], size[1] / maps.shape[2])
    return ndimage.zoom(maps.astype(np.float64), factors, order=1)
