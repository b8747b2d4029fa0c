"""Attention maps of ``MultiHeadAttention`` models: every layer's attention weights, the
attention rollout through the layers, and the attention over the image's patches."""

from __future__ import annotations

from typing import Any, Dict, List, Optional, Sequence

import numpy as np

from tfcourse.explanations.cams import _resize_maps, in_float32, normalize_maps


def attention_layers(model) -> List[Any]:
    """The model's ``MultiHeadAttention`` layers in graph order; ``ValueError`` when it has none."""
    import keras

    layers = [layer for layer in model.layers if isinstance(layer, keras.layers.MultiHeadAttention)]
    if not layers:
        raise ValueError(
            f"Model {model.name!r} has no MultiHeadAttention layer, so there are no attention "
            "weights to show; --method attention is for the attention and cnn_attention models "
            "(use gradcam or saliency here)."
        )
    return layers


def _attention_layer_index(model, layer: Optional[str]) -> int:
    layers = attention_layers(model)
    if layer is None:
        return len(layers) - 1
    names = [entry.name for entry in layers]
    if layer not in names:
        raise ValueError(
            f"{layer!r} is not a MultiHeadAttention layer of {model.name!r}; choose one of {', '.join(names)}."
        )
    return names.index(layer)


def token_grid(model) -> Dict[str, Any]:
    """How the attention tokens map onto the image: ``grid`` (rows, columns) of the patch/position
    tokens and ``class_token`` (whether a learned class token comes first: ``models.layers.ClassToken``,
    recognised by its class name so that explaining needs no import of the model builders)."""
    import keras

    for layer in model.layers:
        if isinstance(layer, keras.layers.Reshape) and len(layer.input.shape) == 4 and len(layer.output.shape) == 3:
            grid = (int(layer.input.shape[1]), int(layer.input.shape[2]))
            return {"grid": grid, "class_token": any(type(entry).__name__ == "ClassToken" for entry in model.layers)}
    raise ValueError(
        f"Model {model.name!r} has no grid-to-tokens Reshape, so its attention cannot be placed on the image."
    )


@in_float32
def attention_weights(model, images, batch_size: int = 256) -> List[np.ndarray]:
    """Every attention layer's weights for ``images``: a list of ``(N, heads, tokens, tokens)`` arrays,
    each row (a query token's attention over the key tokens) summing to 1."""
    import keras

    layers = attention_layers(model)
    probe = keras.Model(model.inputs, [layer.output[1] for layer in layers])
    parts = [[] for _ in layers]
    for start in range(0, len(images), batch_size):
        outputs = probe([np.asarray(images[start : start + batch_size], dtype=np.float32)], training=False)
        for part, output in zip(parts, outputs if isinstance(outputs, (list, tuple)) else [outputs]):
            part.append(np.asarray(output))
    return [np.concatenate(part) for part in parts]


def attention_rollout(weights: Sequence[np.ndarray]) -> np.ndarray:
    """Attention rollout (Abnar & Zuidema 2020): per layer the heads' mean plus the identity for the
    residual connection, rows renormalised, multiplied through the layers: ``(N, tokens, tokens)``."""
    result = None
    for layer_weights in weights:
        mixed = 0.5 * layer_weights.mean(axis=1) + 0.5 * np.eye(layer_weights.shape[-1])[None]
        mixed = mixed / mixed.sum(axis=-1, keepdims=True)
        result = mixed if result is None else mixed @ result
    return result


def patch_attention(matrix: np.ndarray, grid, class_token: bool) -> np.ndarray:
    """Attention over the image's patches from ``(N, tokens, tokens)`` matrices: the class token's row
    (without itself) when there is one, otherwise the mean attention each token receives;
    ``(N, rows, columns)``."""
    if class_token:
        received = matrix[:, 0, 1:]
    else:
        received = matrix.mean(axis=1)
    return received.reshape(len(matrix), grid[0], grid[1])


def attention_maps(model, images, layer: Optional[str] = None, rollout: bool = False) -> Dict[str, Any]:
    """Attention weights of every layer and the attention over patches of one layer (or the rollout
    through all), upsampled to image size and scaled to [0, 1] per image for overlays. ``index`` is
    the position of ``layer`` (default: the last attention layer) in ``layers``."""
    weights = attention_weights(model, images)
    index = _attention_layer_index(model, layer)
    tokens = token_grid(model)
    matrix = attention_rollout(weights) if rollout else weights[index].mean(axis=1)
    patches = patch_attention(matrix, tokens["grid"], tokens["class_token"])
    size = np.asarray(images).shape[1:3]
    if size[0] % tokens["grid"][0] == 0 and size[1] % tokens["grid"][1] == 0:  # whole patches: show them as blocks
        upsampled = np.kron(patches, np.ones((size[0] // tokens["grid"][0], size[1] // tokens["grid"][1])))
    else:
        upsampled = _resize_maps(patches, size)
    names = [entry.name for entry in attention_layers(model)]
    return {
        "weights": weights,
        "layers": names,
        "index": index,
        "layer": "rollout" if rollout else names[index],
        "patches": patches,
        "maps": normalize_maps(upsampled),
        **tokens,
    }
