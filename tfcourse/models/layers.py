"""Custom layers, registered serializable so saved ``.keras`` models load without extra code."""

from __future__ import annotations

import keras

# Caffe-style ImageNet preprocessing, as keras.applications' ResNet50 and VGG16 expect it:
# pixels in 0..255, channels in BGR order, the ImageNet per-channel mean subtracted.
IMAGENET_BGR_MEAN = (103.939, 116.779, 123.68)


@keras.saving.register_keras_serializable(package="tfcourse")
class ImageNetPreprocessing(keras.layers.Layer):
    """Maps RGB images scaled to [0, 1] to the input ImageNet-trained ResNet50/VGG16 weights expect.

    Args:
        input_scale: What the incoming pixels are multiplied by to reach 0..255 (255 for
            tfcourse's default ``unit`` normalisation).
    """

    def __init__(self, input_scale: float = 255.0, **kwargs):
        super().__init__(**kwargs)
        self.input_scale = float(input_scale)

    def call(self, inputs):
        bgr = keras.ops.flip(inputs * self.input_scale, axis=-1)
        return bgr - keras.ops.convert_to_tensor(IMAGENET_BGR_MEAN, dtype=inputs.dtype)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "input_scale": self.input_scale}


def adapt_to_rgb(x, image_size: int, imagenet: bool):
    """Resizes images to ``image_size`` squared and gives them 3 channels (grayscale is repeated).

    With ``imagenet`` the result is also preprocessed as ImageNet weights expect (see
    ``ImageNetPreprocessing``; inputs must be scaled to [0, 1], the ``unit`` normalisation).
    """
    height, width, channels = x.shape[1], x.shape[2], x.shape[3]
    if channels not in (1, 3):
        raise ValueError(f"Images need 1 or 3 channels to become RGB, got {channels}.")
    if (height, width) != (image_size, image_size):
        x = keras.layers.Resizing(image_size, image_size, interpolation="bilinear", name="resize")(x)
    if channels == 1:
        x = keras.layers.Concatenate(name="gray_to_rgb")([x, x, x])
    if imagenet:
        x = ImageNetPreprocessing(name="imagenet_preprocessing")(x)
    return x
