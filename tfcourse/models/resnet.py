"""Residual networks: ``resnet_small`` sized for 28x28 images, and ``keras.applications.ResNet50``.

``resnet_small`` follows the CIFAR ResNets of He et al. (2016, section 4.2): a 3x3 stem, then
stages of basic blocks (two 3x3 convolutions with batch norm and an identity shortcut; a 1x1
projection where the shape changes), width doubling and resolution halving per stage, global
average pooling and the logits. With 3 stages of ``n`` blocks it has 6n+2 weighted layers
(n=3: ResNet-20).

``resnet50`` wraps ``keras.applications.ResNet50`` for small grayscale images: inside the
model the input is resized (32x32 by default) and repeated to 3 channels. Its layers are
built straight onto the adapted input, so the whole network is one flat Functional graph
(what Grad-CAM needs: every convolution is reachable by name).
"""

from __future__ import annotations

import keras

from tfcourse.models.common import batch_norm_layer, check_poolings, depth_hp, logits_layer
from tfcourse.models.layers import adapt_to_rgb

RESNET50_IMAGE_SIZES = [32, 64, 96, 128, 160, 224]


def _regularizer(weight_decay: float):
    return keras.regularizers.L2(weight_decay) if weight_decay > 0 else None


def _basic_block(x, filters: int, stride: int, name: str, weight_decay: float):
    conv = dict(
        padding="same", use_bias=False, kernel_initializer="he_normal", kernel_regularizer=_regularizer(weight_decay)
    )
    shortcut = x
    y = keras.layers.Conv2D(filters, 3, strides=stride, name=f"{name}_conv1", **conv)(x)
    y = batch_norm_layer(f"{name}_bn1")(y)
    y = keras.layers.Activation("relu", name=f"{name}_relu1")(y)
    y = keras.layers.Conv2D(filters, 3, name=f"{name}_conv2", **conv)(y)
    y = batch_norm_layer(f"{name}_bn2")(y)
    if stride != 1 or x.shape[-1] != filters:
        shortcut = keras.layers.Conv2D(filters, 1, strides=stride, name=f"{name}_shortcut", **conv)(x)
        shortcut = batch_norm_layer(f"{name}_shortcut_bn")(shortcut)
    y = keras.layers.Add(name=f"{name}_add")([y, shortcut])
    return keras.layers.Activation("relu", name=f"{name}_out")(y)


def build_small(hp, input_shape, num_classes):
    """Builds ``resnet_small``.

    Hyperparameters: ``stages`` (2-4, at most one more than the halvings the input takes; default 3), ``blocks_per_stage`` (1-5, default 3, i.e.
    ResNet-20), ``width`` of the stem and first stage (8-64 step 8, default 16; doubling per
    stage), ``weight_decay`` (L2 on convolution kernels, 0/1e-5/1e-4/1e-3, default 1e-4) and
    ``dropout`` before the logits (0-0.5, default 0).

    Raises:
        ValueError: If the stages' downsampling would shrink the input below 1x1.
    """
    stages = depth_hp(hp, "stages", 2, 4, 3, input_shape, offset=1)
    blocks_per_stage = hp.Int("blocks_per_stage", 1, 5, default=3)
    width = hp.Int("width", 8, 64, step=8, default=16)
    weight_decay = hp.Choice("weight_decay", [0.0, 1e-5, 1e-4, 1e-3], default=1e-4)
    dropout_rate = hp.Float("dropout", 0.0, 0.5, step=0.05, default=0.0)
    check_poolings(input_shape, stages - 1, f"stages={stages}", unit="stages", offset=1, fewest=2)

    inputs = keras.Input(shape=input_shape, name="image")
    x = keras.layers.Conv2D(
        width,
        3,
        padding="same",
        use_bias=False,
        kernel_initializer="he_normal",
        kernel_regularizer=_regularizer(weight_decay),
        name="stem_conv",
    )(inputs)
    x = batch_norm_layer("stem_bn")(x)
    x = keras.layers.Activation("relu", name="stem_relu")(x)
    for stage in range(stages):
        for block in range(blocks_per_stage):
            stride = 2 if stage > 0 and block == 0 else 1
            x = _basic_block(x, width * 2**stage, stride, f"stage{stage}_block{block}", weight_decay)
    x = keras.layers.GlobalAveragePooling2D(name="features")(x)
    if dropout_rate > 0:
        x = keras.layers.Dropout(dropout_rate, name="dropout")(x)
    outputs = logits_layer(num_classes)(x)
    return keras.Model(inputs, outputs, name="resnet_small")


def build_resnet50(hp, input_shape, num_classes):
    """Builds ``keras.applications.ResNet50`` (no top) with a new logits layer.

    Hyperparameters: ``image_size`` the input is resized to inside the model (32, 64, 96,
    128, 160 or 224; default 32), ``weights`` (fixed, default ``none``: random
    initialisation; ``imagenet`` downloads ImageNet weights, or a path to a local no-top
    ResNet50 weights file; either adds ImageNet preprocessing, which expects the default
    ``unit`` normalisation) and ``dropout`` before the logits (0-0.5, default 0).
    """
    image_size = hp.Choice("image_size", RESNET50_IMAGE_SIZES, default=32)
    weights = hp.Fixed("weights", "none")
    dropout_rate = hp.Float("dropout", 0.0, 0.5, step=0.05, default=0.0)

    inputs = keras.Input(shape=input_shape, name="image")
    x = adapt_to_rgb(inputs, image_size, imagenet=weights != "none")
    base = load_application("ResNet50", x, weights)
    x = base.output
    if dropout_rate > 0:
        x = keras.layers.Dropout(dropout_rate, name="dropout")(x)
    outputs = logits_layer(num_classes)(x)
    return keras.Model(inputs, outputs, name="resnet50")


def load_application(name: str, input_tensor, weights: str):
    """A ``keras.applications`` model (no top, global average pooling) built on ``input_tensor``.

    Args:
        name: ``ResNet50`` or ``VGG16``.
        weights: ``none``, ``imagenet`` or a path to a no-top weights file of that model.

    Raises:
        ValueError: For an unknown name, a missing weights file, or ImageNet weights that cannot
            be downloaded (with what to do instead).
    """
    import os

    constructors = {"resnet50": keras.applications.ResNet50, "vgg16": keras.applications.VGG16}
    if name.lower() not in constructors:
        raise ValueError(f"Unknown keras.applications base {name!r}; choose one of ResNet50, VGG16.")
    if weights not in ("none", "imagenet") and not os.path.isfile(weights):
        raise ValueError(
            f"Weights file {weights!r} does not exist; give 'none', 'imagenet' or the path of a "
            f"no-top {name} weights file (e.g. saved with model.save_weights)."
        )
    try:
        return constructors[name.lower()](
            include_top=False, weights=None if weights == "none" else weights, input_tensor=input_tensor, pooling="avg"
        )
    except Exception as error:  # a failed download surfaces as several exception types
        if weights != "imagenet":
            raise
        raise ValueError(
            f"Could not get {name} ImageNet weights ({type(error).__name__}: {error}). Without "
            "internet, download the no-top weights file elsewhere and pass its path instead of "
            "'imagenet', or use 'none'."
        ) from error
