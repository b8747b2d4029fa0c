"""tf.data pipelines from splits: cached uint8, shuffled before batching, scaled and normalised per batch
(``Normalization``), augmented on the training split only (``augment_batch``), prefetched last; CV folds.
Every source yields uint8 images, so the in-memory cache stays 4x smaller than float32 and the exported
serving signature can reproduce the scaling exactly."""

from __future__ import annotations

import dataclasses
from typing import Any, Callable, Dict, List, Optional, Tuple

import numpy as np

from tfcourse.config import NORMALIZATIONS, DataConfig
from tfcourse.data.catalogue import Dataset, mirror_safe
from tfcourse.data.splits import Splits, load_splits


@dataclasses.dataclass(frozen=True)
class Normalization:
    """Per-channel affine map applied after scaling to [0, 1]: ``(x / 255 - mean) / std``."""

    mode: str
    mean: Tuple[float, ...]
    std: Tuple[float, ...]

    @classmethod
    def fit(cls, mode: str, x_train: np.ndarray) -> "Normalization":
        if mode not in NORMALIZATIONS:
            raise ValueError(f"Unknown normalization {mode!r}; use one of {', '.join(NORMALIZATIONS)}.")
        channels = x_train.shape[-1]
        if mode == "unit":
            return cls(mode, (0.0,) * channels, (1.0,) * channels)
        scaled = x_train.reshape(-1, channels).astype(np.float64) / 255.0
        std = np.maximum(scaled.std(axis=0), 1e-6)  # a constant channel must not divide by zero
        return cls(mode, tuple(float(v) for v in scaled.mean(axis=0)), tuple(float(v) for v in std))

    @classmethod
    def from_dict(cls, saved: Dict[str, Any]) -> "Normalization":
        """The inverse of ``dataclasses.asdict`` (as written to config.json and an export's metadata)."""
        return cls(saved["mode"], tuple(saved["mean"]), tuple(saved["std"]))

    def input_range(self) -> Tuple[Tuple[float, ...], Tuple[float, ...]]:
        """The per-channel (low, high) of model inputs for raw pixels 0..255."""
        mean, std = np.asarray(self.mean), np.asarray(self.std)
        return tuple((0.0 - mean) / std), tuple((1.0 - mean) / std)

    def to_pixels(self, model_inputs) -> np.ndarray:
        """Model inputs back to displayable uint8 pixels (the inverse of ``apply``, clipped)."""
        mean, std = np.asarray(self.mean), np.asarray(self.std)
        return np.clip((np.asarray(model_inputs) * std + mean) * 255.0, 0, 255).round().astype(np.uint8)

    def apply(self, images):
        """Maps raw pixel values (any dtype, 0..255) to model inputs, in TensorFlow."""
        import tensorflow as tf

        images = tf.cast(images, tf.float32) / 255.0
        if self.mode == "unit":
            return images
        return (images - tf.constant(self.mean, tf.float32)) / tf.constant(self.std, tf.float32)


@dataclasses.dataclass
class Pipelines:
    """What the model side needs: three datasets plus shapes, class names and preprocessing."""

    train: "object"
    val: "object"
    test: "object"
    input_shape: Tuple[int, int, int]
    class_names: Tuple[str, ...]
    normalization: Normalization
    sizes: Dict[str, int]
    make_train: Optional[Callable[[int], "object"]] = None  # batch size -> a train pipeline (tuning batch sizes)
    batch_size: Optional[int] = None

    @property
    def num_classes(self) -> int:
        return len(self.class_names)


# Augmentations by name: (Keras layer factory (seed -> layer), what it does), as ``tfcourse.eda`` previews
# them. ``--augment`` applies PIPELINE_AUGMENTATIONS, in training through ``augment_batch`` (the same flip,
# and the shift in whole pixels); the others are not a training flag (yet).
AUGMENTATIONS = {
    "flip": (lambda keras, seed: keras.layers.RandomFlip("horizontal", seed=seed), "horizontal flip, half the images"),
    "shift": (
        lambda keras, seed: keras.layers.RandomTranslation(0.1, 0.1, fill_mode="constant", seed=seed),
        "shift up to 10% of height and width, empty border filled with 0",
    ),
    "rotation": (
        lambda keras, seed: keras.layers.RandomRotation(15 / 360, fill_mode="constant", seed=seed),
        "rotation up to 15 degrees either way",
    ),
    "zoom": (
        lambda keras, seed: keras.layers.RandomZoom(0.15, fill_mode="constant", seed=seed),
        "zoom in or out up to 15%",
    ),
    "contrast": (
        lambda keras, seed: keras.layers.RandomContrast(0.4, value_range=(0, 1), seed=seed),
        "contrast scaled by 0.6..1.4",
    ),
    "noise": (lambda keras, seed: keras.layers.GaussianNoise(0.08, seed=seed), "Gaussian noise, std 0.08 of the range"),
    "erasing": (
        lambda keras, seed: keras.layers.RandomErasing(factor=1.0, scale=(0.05, 0.2), value_range=(0, 1), seed=seed),
        "a random rectangle (5-20% of the image) erased",
    ),
}


PIPELINE_AUGMENTATIONS = ("flip", "shift")


def augmentation_layer(name: str, seed: int):
    """The Keras preprocessing layer of augmentation ``name`` (inputs in [0, 1], whole batches)."""
    import keras

    if name not in AUGMENTATIONS:
        raise ValueError(f"Unknown augmentation {name!r}; use one of {', '.join(AUGMENTATIONS)}.")
    return AUGMENTATIONS[name][0](keras, seed)


SHIFT_FRACTION = 0.1  # --augment shifts by up to this share of the side, in whole pixels (2 on 28x28)


def augment_batch(images, batch_seed, flip: bool = True, shift_fraction: float = SHIFT_FRACTION):
    """``--augment`` on a batch of model inputs (B, H, W, C), in plain TensorFlow ops with stateless random
    numbers: a horizontal flip of half the images (``flip``), then a shift of each image by a whole number
    of pixels, up to ``shift_fraction * side`` (rounded down, at least 1) each way, the border filled with 0.

    Everything is batched (a coin per image, then two gathers do every image's own shift at once) and
    stateless (``batch_seed``, shape (2,), draws it all: the same seed gives the same augmentation, in
    any order of the parallel map). Whole-pixel shifts keep the image sharp (no interpolation) and are
    the 2-pixel translations of the fast recipe's PyTorch reference on 28x28 images.
    """
    import tensorflow as tf

    batch = tf.shape(images)[0]
    height, width = images.shape[1], images.shape[2]
    seeds = tf.random.experimental.stateless_split(tf.cast(batch_seed, tf.int64), 3)
    if flip:
        coin = tf.random.stateless_uniform([batch, 1, 1, 1], seeds[0]) < 0.5
        images = tf.where(coin, tf.reverse(images, axis=[2]), images)
    pad_y, pad_x = max(1, int(shift_fraction * height)), max(1, int(shift_fraction * width))
    padded = tf.pad(images, [[0, 0], [pad_y, pad_y], [pad_x, pad_x], [0, 0]])
    top = tf.random.stateless_uniform([batch], seeds[1], 0, 2 * pad_y + 1, dtype=tf.int32)
    left = tf.random.stateless_uniform([batch], seeds[2], 0, 2 * pad_x + 1, dtype=tf.int32)
    rows = top[:, None] + tf.range(height)[None, :]
    images = tf.gather(padded, rows, axis=1, batch_dims=1)
    columns = left[:, None] + tf.range(width)[None, :]
    return tf.gather(images, columns, axis=2, batch_dims=1)


PREFETCH_BATCHES = 2  # batches ready ahead of the training step (a fixed number: see pipeline_options)


def pipeline_options():
    """The ``tf.data.Options`` of every image pipeline: the autotuner off.

    tf.data's autotuner re-optimises its model of the pipeline on a period that doubles (10 ms, 20 ms,
    ... 2.56 s, ...); on 2 cores it stalled training: passes took whole multiples of 2.56 s and the
    process used about 1.2 of its 2 cores. The recipe's vgg trained at 625 images/s in float32 with it
    and 957 without it (medians, ``benchmarks/results/peer_throughput.md``). Without it, the map keeps
    its parallel calls and ``PREFETCH_BATCHES`` batches wait ready; the map is a few percent of a
    training step here.
    """
    import tensorflow as tf

    options = tf.data.Options()
    options.autotune.enabled = False
    return options


def make_pipeline(
    x: np.ndarray,
    y: np.ndarray,
    normalization: Normalization,
    batch_size: int,
    training: bool = False,
    augment: bool = False,
    seed: int = 42,
    flip: bool = True,
):
    """One tf.data pipeline: cache -> (shuffle) -> batch -> scale (+ augment) -> prefetch.

    The uint8 arrays are cached (they fit in memory), shuffling happens before batching
    with a fixed seed (a different but repeatable order every epoch), and the per-batch
    map is vectorised. Augmentation is applied only when ``training`` is true; ``flip=False`` leaves
    out the mirror flip (datasets whose mirror images change class, e.g. digits).
    """
    import tensorflow as tf

    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}.")
    dataset = tf.data.Dataset.from_tensor_slices((x, y)).cache()
    if training:
        dataset = dataset.shuffle(len(x), seed=seed, reshuffle_each_iteration=True)
    dataset = dataset.batch(batch_size)
    if training and augment:
        # one stateless seed per batch, a new stream every epoch, the same streams for the same seed
        seeds = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True).batch(2)

        def preprocess_augmented(batch, batch_seed):
            images, labels = batch
            return augment_batch(normalization.apply(images), batch_seed, flip), labels

        dataset = tf.data.Dataset.zip((dataset, seeds)).map(preprocess_augmented, num_parallel_calls=tf.data.AUTOTUNE)
    else:
        dataset = dataset.map(
            lambda images, labels: (normalization.apply(images), labels), num_parallel_calls=tf.data.AUTOTUNE
        )
    return dataset.prefetch(PREFETCH_BATCHES).with_options(pipeline_options())


def make_pipelines(dataset: Dataset, splits: Splits, config: DataConfig, seed: int) -> Pipelines:
    """Builds train/val/test pipelines from a dataset and its splits."""
    x, y = dataset.pooled()
    x_train, y_train = x[splits.train], y[splits.train]
    normalization = Normalization.fit(config.normalization, x_train)
    common = dict(normalization=normalization, batch_size=config.batch_size, seed=seed)

    def make_train(batch_size: int):
        return make_pipeline(
            x_train,
            y_train,
            normalization,
            batch_size,
            training=True,
            augment=config.augment,
            seed=seed,
            flip=mirror_safe(config.dataset) is not False,  # unknown data: flipped, as --augment says
        )

    return Pipelines(
        train=make_train(config.batch_size),
        val=make_pipeline(x[splits.val], y[splits.val], **common),
        test=make_pipeline(x[splits.test], y[splits.test], **common),
        input_shape=dataset.input_shape,
        class_names=dataset.class_names,
        normalization=normalization,
        sizes=splits.sizes(),
        make_train=make_train,
        batch_size=config.batch_size,
    )


def cv_folds(dataset: Dataset, splits: Splits, config: DataConfig, seed: int, folds: int) -> List[Pipelines]:
    """``folds``-fold cross-validation of the training split: stratified and seeded (scikit-learn's
    ``StratifiedKFold``, shuffled with ``seed``); fold ``i``'s ``Pipelines`` train on the other folds
    and validate on fold ``i`` (normalisation fitted on the training folds only). The validation and
    test splits are left out.

    Raises:
        ValueError: If ``folds`` is below 2, or above the training examples of the smallest class.
    """
    from sklearn.model_selection import StratifiedKFold

    if folds < 2:
        raise ValueError(f"--cv {folds}: cross-validation needs at least 2 folds.")
    _, labels = dataset.pooled()
    train_labels = labels[splits.train]
    counts = np.bincount(train_labels, minlength=dataset.num_classes)
    smallest = int(counts[counts > 0].min())
    if folds > smallest:
        raise ValueError(
            f"--cv {folds}: the smallest class has only {smallest} training examples, so a stratified fold "
            f"cannot hold one of each; use at most --cv {smallest}."
        )
    splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    return [
        make_pipelines(
            dataset,
            dataclasses.replace(splits, train=splits.train[fit], val=splits.train[held], test=splits.test[:0]),
            config,
            seed,
        )
        for fit, held in splitter.split(np.zeros((len(train_labels), 1)), train_labels)
    ]


def load_pipelines(config: DataConfig, seed: int, download: bool = True, train_on: str = "train"):
    """``load_splits`` + ``make_pipelines`` for one ``DataConfig``.

    Args:
        train_on: ``train``, or ``train+val`` to make the training pipeline from both
            splits (the validation pipeline is then empty).

    Returns:
        ``(dataset, splits, pipelines)``; ``splits`` are the protocol's own, before any merge.
    """
    dataset, splits = load_splits(config, seed, download)
    fit_splits = (
        splits
        if train_on == "train"
        else dataclasses.replace(splits, train=np.sort(np.concatenate([splits.train, splits.val])), val=splits.val[:0])
    )
    return dataset, splits, make_pipelines(dataset, fit_splits, config, seed)
