"""What a model costs: per-layer output shape, parameters and multiply-adds (MACs), and totals.

Counted per image (batch dimension dropped), forward pass, multiply-adds of the layers that
carry the arithmetic:

* convolution: ``H_out * W_out * C_out * k_h * k_w * C_in / groups`` (1-D/3-D alike);
  depthwise: ``H_out * W_out * C_in * depth_multiplier * k_h * k_w``; separable: depthwise +
  a 1x1 convolution; transposed: ``H_in * W_in * k_h * k_w * C_in * C_out``;
* dense: ``in * out``, times the positions it is applied at (e.g. tokens);
* multi-head attention: the query/key/value/output projections plus ``QK^T`` and the
  attention-weighted sum of values.

Biases, batch norm, activations, pooling and additions are a few operations per element and are
left out, as is usual. One MAC is two FLOPs; training (forward, then gradients for the
activations and for the weights) costs about three forward passes, so ``training FLOPs per
image ~ 3 * 2 * MACs``. Nested models are expanded layer by layer.
"""

from __future__ import annotations

import math
from typing import Any, Dict, List, Optional

TRAINING_FORWARD_MULTIPLE = 3


def conv_macs(output_spatial, kernel_size, in_channels: int, out_channels: int, groups: int = 1) -> int:
    """Multiply-adds of a convolution: ``prod(output_spatial) * C_out * prod(kernel) * C_in / groups``."""
    return math.prod(output_spatial) * out_channels * math.prod(kernel_size) * in_channels // groups


def dense_macs(in_features: int, out_features: int, positions: int = 1) -> int:
    """Multiply-adds of a dense layer applied at ``positions`` places: ``positions * in * out``."""
    return positions * in_features * out_features


def _shape(tensor_or_list) -> Optional[tuple]:
    if isinstance(tensor_or_list, (list, tuple)):
        tensor_or_list = tensor_or_list[0]
    return tuple(tensor_or_list.shape) if hasattr(tensor_or_list, "shape") else None


def _input_shapes(layer) -> List[tuple]:
    try:
        inputs = layer.input
    except (AttributeError, ValueError):
        return []
    inputs = inputs if isinstance(inputs, (list, tuple)) else [inputs]
    return [tuple(t.shape) for t in inputs if hasattr(t, "shape")]


def layer_macs(layer, input_shapes: List[tuple], output_shape: Optional[tuple]) -> int:
    """Forward multiply-adds of one (non-nested) layer for one example; 0 for element-wise layers."""
    import keras

    layers = keras.layers
    if not input_shapes or output_shape is None:
        return 0
    x = input_shapes[0]
    if isinstance(layer, layers.SeparableConv2D) or isinstance(layer, getattr(layers, "SeparableConv1D", ())):
        depthwise = conv_macs(
            output_shape[1:-1], layer.kernel_size, x[-1], x[-1] * layer.depth_multiplier, groups=x[-1]
        )
        return depthwise + math.prod(output_shape[1:-1]) * x[-1] * layer.depth_multiplier * layer.filters
    if isinstance(layer, (layers.DepthwiseConv2D, getattr(layers, "DepthwiseConv1D", ()))):
        return math.prod(output_shape[1:-1]) * x[-1] * layer.depth_multiplier * math.prod(layer.kernel_size)
    if isinstance(layer, (layers.Conv1DTranspose, layers.Conv2DTranspose, layers.Conv3DTranspose)):
        return math.prod(x[1:-1]) * math.prod(layer.kernel_size) * x[-1] * layer.filters
    if isinstance(layer, (layers.Conv1D, layers.Conv2D, layers.Conv3D)):
        return conv_macs(output_shape[1:-1], layer.kernel_size, x[-1], layer.filters, groups=layer.groups)
    if isinstance(layer, layers.Dense):
        return dense_macs(x[-1], layer.units, math.prod(x[1:-1]))
    if isinstance(layer, layers.MultiHeadAttention):
        query, value = x, (input_shapes[1] if len(input_shapes) > 1 else x)
        key = input_shapes[2] if len(input_shapes) > 2 else value
        q_len, kv_len = math.prod(query[1:-1]), math.prod(value[1:-1])
        heads, key_dim = layer.num_heads, layer.key_dim
        value_dim = layer.value_dim or key_dim
        projections = (
            q_len * query[-1] * heads * key_dim
            + kv_len * key[-1] * heads * key_dim
            + kv_len * value[-1] * heads * value_dim
            + q_len * heads * value_dim * output_shape[-1]
        )
        return projections + q_len * kv_len * heads * (key_dim + value_dim)
    return 0


def _rows(model, prefix: str = "") -> List[Dict[str, Any]]:
    import keras

    rows = []
    for layer in model.layers:
        if isinstance(layer, keras.Model) and layer.layers:  # nested model: expand its layers
            rows += _rows(layer, prefix=f"{prefix}{layer.name}/")
            continue
        try:
            output_shape = _shape(layer.output)
        except (AttributeError, ValueError):
            output_shape = None
        input_shapes = _input_shapes(layer)
        own_params = sum(math.prod(w.shape) for w in layer.weights)
        rows.append(
            {
                "name": prefix + layer.name,
                "type": type(layer).__name__,
                "output_shape": list(output_shape[1:]) if output_shape else None,
                "params": int(own_params),
                "trainable_params": int(sum(math.prod(w.shape) for w in layer.trainable_weights)),
                "macs": int(layer_macs(layer, input_shapes, output_shape)),
            }
        )
    return rows


def cost_report(model) -> Dict[str, Any]:
    """Per-layer and total cost of a built Keras model, per image.

    Returns:
        A JSON-ready dict: ``layers`` (name, type, output shape without batch, parameters,
        trainable parameters, MACs), ``total_params`` (equal to ``model.count_params()``),
        ``trainable_params``, ``macs``, ``forward_flops`` (2 per MAC) and
        ``training_flops`` (``3 * forward_flops``), all per image.
    """
    rows = _rows(model)
    macs = sum(row["macs"] for row in rows)
    return {
        "model": model.name,
        "input_shape": list(model.input_shape[1:]),
        "layers": rows,
        "total_params": sum(row["params"] for row in rows),
        "trainable_params": sum(row["trainable_params"] for row in rows),
        "macs": macs,
        "forward_flops": 2 * macs,
        "training_flops": TRAINING_FORWARD_MULTIPLE * 2 * macs,
    }
