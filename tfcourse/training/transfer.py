"""Transfer learning: a pretrained convolutional base, a new dense head, and optional fine-tuning.

The base is either a model tfcourse trained (a run folder or a ``.keras`` file: everything up to
its feature vector, the layer named ``features`` or else its last Flatten/global-pooling layer)
or a ``keras.applications`` network (``ResNet50``, ``VGG16``; ImageNet weights or a local weights
file, with the resizing, RGB and ImageNet preprocessing of ``models.layers.adapt_to_rgb``).

As in the Keras transfer-learning guide, the base is one nested model called with
``training=False``: its batch norm layers keep their moving statistics and its dropout is off,
whether it is frozen or, later, partly unfrozen for fine-tuning.
"""

from __future__ import annotations

import math
import os
from typing import Any, Dict, List, Optional

import keras

from tfcourse.models import load_keras_model
from tfcourse.models.common import logits_layer
from tfcourse.models.layers import adapt_to_rgb
from tfcourse.models.resnet import RESNET50_IMAGE_SIZES, load_application
from tfcourse.rundir import model_file

APPLICATIONS = {"resnet50": "ResNet50", "vgg16": "VGG16"}
BASE_NAME = "base"
FEATURE_TYPES = ("Flatten", "GlobalAveragePooling2D", "GlobalMaxPooling2D")


def is_application(base: str) -> bool:
    return base.lower() in APPLICATIONS


def resolve_base_path(base: str) -> str:
    """The ``.keras`` file behind ``--base`` (a run folder or a file).

    Raises:
        ValueError: If it is neither a known application nor an existing model file or run folder.
    """
    path = model_file(base)
    if path is None:
        raise ValueError(
            f"--base {base!r} is neither a keras.applications model ({', '.join(APPLICATIONS.values())}) nor a "
            "run folder with model.keras nor a .keras file. Train one first, e.g. "
            "python -m tfcourse.train --model vgg --output-dir runs/base."
        )
    return path


def feature_extractor(model, name: str = BASE_NAME):
    """The convolutional base of a trained classifier: its input up to its feature vector.

    Raises:
        ValueError: If the model has no Flatten/global-pooling feature layer after a convolution.
    """
    layers = model.layers
    try:
        feature = model.get_layer("features")
    except ValueError:
        candidates = [layer for layer in layers if type(layer).__name__ in FEATURE_TYPES]
        feature = candidates[-1] if candidates else None
    has_conv = feature is not None and any(
        isinstance(layer, keras.layers.Conv2D) for layer in layers[: layers.index(feature)]
    )
    if not has_conv:
        raise ValueError(
            f"Model {model.name!r} has no convolutional base (convolutions followed by a Flatten or "
            "global pooling layer); transfer learning needs a CNN such as vgg, cnn or resnet_small."
        )
    return keras.Model(model.inputs, feature.output, name=name)


def build(hp, input_shape, num_classes, base: str, base_weights: str = "imagenet", freeze_base: bool = True):
    """Builds base + new head: ``Input -> [adapter] -> base(training=False) -> head -> logits``.

    Hyperparameters: ``head_units`` (0-1024 step 64, default 256; 0: logits straight on the
    features), ``head_dropout`` (0-0.6, default 0.4), and for an applications base
    ``image_size`` (32-224, default 32) the images are resized to.

    Raises:
        ValueError: For a base that cannot be loaded or whose input shape differs from the data's.
    """

    head_units = hp.Int("head_units", 0, 1024, step=64, default=256)
    head_dropout = hp.Float("head_dropout", 0.0, 0.6, step=0.05, default=0.4)
    inputs = keras.Input(shape=input_shape, name="image")
    if is_application(base):
        image_size = hp.Choice("image_size", RESNET50_IMAGE_SIZES, default=32)
        base_input = keras.Input(shape=(image_size, image_size, 3), name="base_input")
        application = load_application(APPLICATIONS[base.lower()], base_input, base_weights)
        base_model = keras.Model(base_input, application.output, name=BASE_NAME)
        x = adapt_to_rgb(inputs, image_size, imagenet=base_weights != "none")
    else:
        trained = load_keras_model(resolve_base_path(base), compile=False)
        base_model = feature_extractor(trained)
        if tuple(base_model.input_shape[1:]) != tuple(input_shape):
            raise ValueError(
                f"Base {base} takes images of shape {tuple(base_model.input_shape[1:])}, the data has "
                f"{tuple(input_shape)}; use a dataset of that shape (or --image-size for a folder)."
            )
        x = inputs
    base_model.trainable = not freeze_base
    x = base_model(x, training=False)
    if head_units:
        x = keras.layers.Dense(head_units, activation="relu", name="head_dense")(x)
        if head_dropout > 0:
            x = keras.layers.Dropout(head_dropout, name="head_dropout")(x)
    outputs = logits_layer(num_classes)(x)
    return keras.Model(inputs, outputs, name="transfer")


def base_of(model):
    """The nested base model of a transfer model."""
    return model.get_layer(BASE_NAME)


def fine_tune_start(model, layer) -> int:
    """The index in the base's layers of ``layer`` (a name, or an index; negative counts from the top).

    Raises:
        ValueError: If ``layer`` names no layer of the base (the message lists those with weights).
    """
    base = base_of(model)
    names = [item.name for item in base.layers]
    if isinstance(layer, int) or (isinstance(layer, str) and layer.lstrip("-").isdigit()):
        index = int(layer)
        if not -len(names) <= index < len(names):
            raise ValueError(f"--fine-tune-at {layer}: the base has {len(names)} layers (0..{len(names) - 1}).")
        return index % len(names)
    if layer in names:
        return names.index(layer)
    weighted = [item.name for item in base.layers if item.weights]
    raise ValueError(
        f"--fine-tune-at {layer!r} is not a layer of the base; its layers with weights are: {', '.join(weighted)}."
    )


def unfreeze_from(model, layer) -> List[str]:
    """Makes the base trainable from ``layer`` (see ``fine_tune_start``) to its top.

    Batch norm layers stay frozen (the base runs in inference mode, so their statistics never
    move; unfreezing their scale and offset alone would fight the frozen statistics).

    Returns:
        The names of the base layers with weights that are now trainable.
    """
    start = fine_tune_start(model, layer)
    base = base_of(model)
    base.trainable = True
    for index, item in enumerate(base.layers):
        item.trainable = index >= start and not isinstance(item, keras.layers.BatchNormalization)
    return [item.name for item in base.layers[start:] if item.trainable and item.weights]


def trainable_layers(model) -> Dict[str, Any]:
    """Which layers (with weights) will be updated by training: names, counts and parameters."""

    rows = []

    def walk(layers, prefix):
        for layer in layers:
            if hasattr(layer, "layers") and layer.layers and layer.name == BASE_NAME:
                walk(layer.layers, f"{prefix}{layer.name}/")
            elif layer.weights:
                rows.append(
                    (
                        prefix + layer.name,
                        bool(layer.trainable_weights),
                        sum(math.prod(w.shape) for w in layer.trainable_weights),
                    )
                )

    walk(model.layers, "")
    return {
        "trainable": [name for name, trainable, _ in rows if trainable],
        "frozen": [name for name, trainable, _ in rows if not trainable],
        "trainable_params": int(sum(n for _, _, n in rows)),
        "frozen_params": int(sum(math.prod(w.shape) for w in model.non_trainable_weights)),
    }


def describe(base: str, base_weights: Optional[str], freeze_base: bool, fine_tune_at: Optional[str]) -> Dict[str, Any]:
    return {
        "base": base if is_application(base) else os.path.abspath(resolve_base_path(base)),
        "base_weights": base_weights if is_application(base) else "trained model",
        "freeze_base": freeze_base,
        "fine_tune_at": fine_tune_at,
    }


def check_arguments(
    base: Optional[str], freeze_base: bool, fine_tune_at: Optional[str], base_weights: str, model_given: bool
) -> None:
    """Raises ``ValueError`` for transfer settings that cannot work together."""
    if base is None:
        if freeze_base or fine_tune_at is not None:
            raise ValueError("--freeze-base and --fine-tune-at need --base (the pretrained model to transfer from).")
        return
    if model_given:
        raise ValueError("--base replaces --model (the new model is the base plus a new head); drop --model.")
    if fine_tune_at is not None and not freeze_base:
        raise ValueError(
            "--fine-tune-at unfreezes part of a frozen base; add --freeze-base (without it the whole "
            "base trains from the start)."
        )
    if is_application(base):
        if base_weights not in ("imagenet", "none") and not os.path.isfile(base_weights):
            raise ValueError(f"--base-weights {base_weights!r}: give imagenet, none or an existing weights file.")
    else:
        resolve_base_path(base)
