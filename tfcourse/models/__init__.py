"""The model registry: one dict from name to spec, one factory, one error for unknown names.

Every builder is a pure function ``build(hp, input_shape, num_classes)`` that reads its
hyperparameters from a ``keras_tuner.HyperParameters`` (each with a default, so an empty
``HyperParameters()`` gives a good fixed model and the same builder serves tuning) and
returns an uncompiled Functional ``keras.Model`` whose output is logits.
"""

from __future__ import annotations

import dataclasses
import importlib
from typing import Callable, List, Optional, Sequence

_LAYERS_MODULE = "tfcourse.models.layers"  # its custom layers must be registered before a saved model loads


@dataclasses.dataclass(frozen=True)
class ModelSpec:
    """A registered model: where its builder lives, and what it is.

    The builder module is imported on first use (``build``), so the registry's names cost no
    Keras import: ``python -m tfcourse.train --help`` lists them in a fraction of a second.
    """

    module: str  # under tfcourse.models
    function: str
    description: str
    kind: str = "image"  # what it takes: "image" (H, W, C) or "table" (a FeatureSpace's encoded vector)

    @property
    def input_rank(self) -> int:
        return 3 if self.kind == "image" else 1

    @property
    def build(self) -> Callable:
        return getattr(importlib.import_module(f"tfcourse.models.{self.module}"), self.function)


MODELS = {
    "mlp": ModelSpec("mlp", "build", "Multi-layer perceptron over flattened pixels (flattens inside the model)."),
    "cnn": ModelSpec(
        "cnn", "build", "Simple CNN: conv blocks (conv, batch norm, ReLU, pooling, dropout) and a dense head."
    ),
    "vgg": ModelSpec(
        "vgg", "build", "VGG-style: blocks of stacked 3x3 convs (2x32, 2x64, 2x128), max pooling, dense 256 head."
    ),
    "resnet_small": ModelSpec("resnet", "build_small", "CIFAR-style ResNet for small images (ResNet-20 by default)."),
    "resnet50": ModelSpec(
        "resnet", "build_resnet50", "keras.applications.ResNet50, input resized to 32x32+ and made RGB."
    ),
    "attention": ModelSpec(
        "attention",
        "build_attention",
        "ViT-style: patch embedding, position embedding, class token, pre-LN MultiHeadAttention blocks.",
    ),
    "cnn_attention": ModelSpec(
        "attention",
        "build_cnn_attention",
        "Small CNN whose 7x7 grid of embeddings goes through MultiHeadAttention before the head.",
    ),
    "tabular_mlp": ModelSpec(
        "tabular_mlp",
        "build",
        "Feed-forward network for a table: dense layers on the FeatureSpace's vector, sigmoid or softmax head.",
        kind="table",
    ),
}
KINDS = ("image", "table")


def list_models(kind: Optional[str] = None) -> List[str]:
    """Names of the registered models (of one ``kind``: ``image`` or ``table``), sorted."""
    return sorted(name for name, spec in MODELS.items() if kind is None or spec.kind == kind)


def get_spec(name: str) -> ModelSpec:
    """The spec of a registered model.

    Raises:
        ValueError: If ``name`` is not registered; the message lists the valid names.
    """
    try:
        return MODELS[name]
    except KeyError:
        raise ValueError(f"Unknown model {name!r}; registered models: {', '.join(list_models())}.") from None


def build_model(name: str, hp=None, input_shape: Sequence[int] = (28, 28, 1), num_classes: int = 10):
    """Builds a registered model.

    Args:
        name: A name from ``list_models()``.
        hp: A ``keras_tuner.HyperParameters``; ``None`` means all defaults.
        input_shape: Image shape (H, W, C) for an image model; ``(features,)``, the encoded vector's
            width, for a table model.
        num_classes: Number of classes (a table model gives one logit for two classes).

    Returns:
        An uncompiled Functional ``keras.Model`` with logits output.
    """
    import keras_tuner

    spec = get_spec(name)
    if num_classes < 2:
        raise ValueError(f"num_classes must be at least 2, got {num_classes}.")
    if len(input_shape) != spec.input_rank:
        expected = "(height, width, channels)" if spec.kind == "image" else "(features,)"
        raise ValueError(
            f"{name} is a model for {'images' if spec.kind == 'image' else 'tables'}: input_shape must be "
            f"{expected}, got {tuple(input_shape)}."
        )
    return spec.build(hp if hp is not None else keras_tuner.HyperParameters(), tuple(input_shape), num_classes)


def non_finite_weights(model) -> List[tuple]:
    """Every weight variable of ``model`` holding a NaN or an infinity: ``(path, count)`` pairs.

    A model whose loss stayed finite can still have diverged (a huge learning rate, a batch-norm statistic
    that overflowed): its predictions are then garbage, so no run or export may be published from it.
    """
    import numpy as np

    found = []
    for weight in model.weights:
        values = np.asarray(weight.numpy() if hasattr(weight, "numpy") else weight, dtype=np.float32)
        bad = int(values.size - np.count_nonzero(np.isfinite(values)))
        if bad:
            found.append((getattr(weight, "path", None) or weight.name, bad))
    return found


def describe_non_finite(found: Sequence[tuple]) -> str:
    """``non_finite_weights``' answer in a few words: how many values, in how many variables, the first ones."""
    total = sum(count for _, count in found)
    names = ", ".join(path for path, _ in found[:3]) + (", ..." if len(found) > 3 else "")
    return f"{total:,} non-finite weights (NaN or infinite) in {len(found)} variable(s): {names}"


def load_keras_model(path: str, compile: bool = True):
    """``keras.models.load_model`` (tfcourse's custom layers registered first) with a message that names the file and the fix when it cannot be read.

    Raises:
        ValueError: For a missing, empty or corrupt ``.keras`` file, and for a model whose weights are
            not finite (a diverged training run: it would predict garbage).
    """
    import os

    import keras

    importlib.import_module(_LAYERS_MODULE)  # registers tfcourse's custom layers with Keras
    if not os.path.isfile(path):
        raise ValueError(f"{path}: no such model file; pass a run folder's model.keras.")
    if os.path.getsize(path) == 0:
        raise ValueError(
            f"{path} is empty (0 bytes: a copy or a save was interrupted); train the run again or restore the file."
        )
    try:
        model = keras.models.load_model(path, compile=compile)
    except Exception as error:  # noqa: BLE001  (zipfile, h5py, JSON and Keras errors all mean "not a model")
        raise ValueError(
            f"{path} cannot be loaded as a Keras model ({type(error).__name__}: "
            f"{str(error).strip().splitlines()[0][:200] if str(error).strip() else 'no details'}); "
            "train the run again or restore the file."
        ) from None
    found = non_finite_weights(model)
    if found:
        raise ValueError(
            f"{path} holds {describe_non_finite(found)}: the training that wrote it diverged, so the model "
            "predicts garbage. Train again with a lower learning rate (--hp learning_rate=..., "
            "--fine-tune-lr-scale)."
        )
    return model


def _float32_policies(config):
    """``config`` with every mixed dtype policy (``mixed_bfloat16``/``mixed_float16``) made ``float32``."""
    if isinstance(config, dict):
        if config.get("class_name") == "DTypePolicy" and str(config.get("config", {}).get("name", "")).startswith(
            "mixed_"
        ):
            return {**config, "config": {**config["config"], "name": "float32"}}
        return {key: _float32_policies(value) for key, value in config.items()}
    if isinstance(config, list):
        return [_float32_policies(value) for value in config]
    return config


def computes_in_float32(model) -> bool:
    """Whether every layer of ``model`` computes in float32 (no mixed dtype policy anywhere)."""
    return all(layer.compute_dtype == "float32" for layer in model.layers)


def float32_copy(model):
    """``model`` computing in float32: itself when it already does, else a copy built from its config with
    every mixed policy made float32 and its weights (float32 in a mixed model) copied in.

    Explanations need it: their gradients and heatmaps come back in the compute dtype, and bfloat16 is
    both coarse (8 bits of mantissa) and unknown to SciPy and Matplotlib.
    """
    if computes_in_float32(model):
        return model
    copy = model.__class__.from_config(_float32_policies(model.get_config()))
    copy.set_weights(model.get_weights())
    return copy
