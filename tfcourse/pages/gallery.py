"""Explanations of a run written to files: the chosen test examples, ``<method>.npz`` and
``<method>.png`` per method, and the Grad-CAM silhouette measure (how much heat sits on the object)."""

from __future__ import annotations

import dataclasses
import os
import time
from typing import Any, Dict, List, Optional, Sequence

import keras
import numpy as np

from tfcourse import explanations
from tfcourse.evaluation import evaluate
from tfcourse.models import float32_copy
from tfcourse.pages import plots
from tfcourse.rundir import write_npz

SILHOUETTE_EXAMPLES = 200  # correctly classified test images the Grad-CAM silhouette ratio is measured on


def correlation(a, b) -> float:
    """Pearson correlation of two arrays, flattened."""
    a, b = np.ravel(a).astype(np.float64), np.ravel(b).astype(np.float64)
    return float(np.corrcoef(a, b)[0, 1])


def silhouette_ratio(maps, raw_images, threshold: int = 0) -> Dict[str, float]:
    """How much a heatmap sits on the object: mean heat inside the silhouette (pixels brighter than
    ``threshold``, all channels' max) over mean heat on the background, and the share of all heat inside."""
    maps = np.asarray(maps, dtype=np.float64)
    inside = np.asarray(raw_images).max(axis=-1) > threshold
    heat_in = float(maps[inside].mean()) if inside.any() else 0.0
    heat_out = float(maps[~inside].mean()) if (~inside).any() else 0.0
    return {
        "mean_inside": heat_in,
        "mean_outside": heat_out,
        "ratio": heat_in / heat_out if heat_out > 0 else float("inf"),
        "share_inside": float(maps[inside].sum() / maps.sum()) if maps.sum() > 0 else 0.0,
        "area_inside": float(inside.mean()),
    }


def pick_examples(labels, predictions, per_class: int = 1, correct_only: bool = True) -> np.ndarray:
    """Positions of the first ``per_class`` examples of each class (correctly classified ones first)."""
    labels, predictions = np.asarray(labels), np.asarray(predictions)
    chosen = []
    for class_id in np.unique(labels):
        members = np.flatnonzero(labels == class_id)
        right = members[predictions[members] == class_id]
        pool = list(right) + (
            [] if correct_only and len(right) >= per_class else list(members[predictions[members] != class_id])
        )
        chosen.extend(pool[:per_class])
    return np.asarray(chosen, dtype=np.int64)


def write_explanations(
    run,
    model,
    methods: Sequence[str],
    out_dir: str,
    layer: Optional[str] = None,
    per_class: int = 1,
    units: Optional[Sequence[int]] = None,
    start: str = "noise",
    steps: int = 100,
    smooth_samples: int = 20,
    seed: int = 0,
    progress: bool = False,
    head: int = 0,
    rollout: bool = False,
) -> List[str]:
    """Runs explanation methods on one (correctly classified when possible) test example per class and
    writes ``<method>.npz`` (maps, images, labels ...) and ``<method>.png`` (input / map / overlay) per method;
    ``activation_max`` writes the optimised inputs; ``attention`` writes every layer's attention weights
    and draws attention head ``head`` of ``layer`` (default the last) and the attention over patches
    (of that layer, or the rollout through all layers). Returns the paths written."""
    model = float32_copy(model)  # once for all methods (each would copy a mixed-precision model)
    examples = _Examples.of(run, per_class)
    results = []
    for method in methods:
        begin = time.perf_counter()
        if method == "activation_max":
            results.append(_activation_max(run, model, examples, layer, units, start, steps, seed))
        elif method == "attention":
            results.append(_attention(model, examples, layer, head, rollout))
        else:
            results.append(_map(model, method, examples, layer, smooth_samples, seed))
        if progress:
            print(f"tfcourse: {method} done in {time.perf_counter() - begin:.1f}s", flush=True)
    os.makedirs(out_dir, exist_ok=True)
    written = []
    for method, arrays, titles, title in results:
        stem = os.path.join(out_dir, method.replace("+", "_plus"))
        write_npz(stem + ".npz", **arrays)
        _draw(method, arrays, titles, title, stem + ".png")
        written += [stem + ".npz", stem + ".png"]
    return written


@dataclasses.dataclass
class _Examples:
    """The test examples every method explains: one (correctly classified when possible) per class."""

    images: np.ndarray
    inputs: np.ndarray
    class_ids: np.ndarray
    positions: np.ndarray
    predictions: np.ndarray
    dataset_index: np.ndarray
    titles: List[str]
    names: Sequence[str]

    @classmethod
    def of(cls, run, per_class: int) -> "_Examples":
        test = run.test_data()
        outputs = run.predictions()
        predictions = outputs["logits"].argmax(axis=1)
        positions = pick_examples(test.labels, predictions, per_class)
        images = test.images[positions]
        class_ids = test.labels[positions]
        titles = _example_titles(run.class_names, class_ids, positions, outputs)
        return cls(
            images,
            run.model_inputs(images),
            class_ids,
            positions,
            predictions[positions],
            test.indices[positions],
            titles,
            run.class_names,
        )


def _activation_max(run, model, examples: _Examples, layer, units, start: str, steps: int, seed: int):
    names = examples.names
    chosen = list(units) if units is not None else (list(range(len(names))) if layer is None else list(range(8)))
    seeds = np.resize(examples.inputs, (len(chosen),) + examples.inputs.shape[1:]) if start == "image" else None
    optimised, began = explanations.activation_maximization(
        model, layer, chosen, seed_images=seeds, input_range=run.normalization.input_range(), steps=steps, seed=seed
    )
    arrays = {
        "images": run.normalization.to_pixels(optimised),
        "start": run.normalization.to_pixels(began),
        "units": np.asarray(chosen),
        "layer": np.asarray(layer or "logits"),
    }
    titles = [names[u] if layer is None else f"filter {u}" for u in chosen]
    title = (
        f"activation maximisation of {layer or 'the class logits'} from "
        f"{'random noise' if start == 'noise' else 'test images'}, {steps} steps"
    )
    return "activation_max", arrays, titles, title


def _attention(model, examples: _Examples, layer, head: int, rollout: bool):
    result = explanations.attention_maps(model, examples.inputs, layer=layer, rollout=rollout)
    shown = result["index"]
    heads = result["weights"][shown].shape[1]
    if not 0 <= head < heads:
        raise ValueError(
            f"--head {head} is out of range: {result['layers'][shown]} has {heads} heads (0..{heads - 1})."
        )
    arrays = {f"weights_{name}": weights for name, weights in zip(result["layers"], result["weights"])}
    arrays.update(
        maps=result["maps"],
        patches=result["patches"],
        images=examples.images,
        labels=examples.class_ids,
        predictions=examples.predictions,
        dataset_index=examples.dataset_index,
        layers=np.asarray(result["layers"]),
        layer=np.asarray(result["layer"]),
        grid=np.asarray(result["grid"]),
        class_token=np.asarray(result["class_token"]),
        matrices=result["weights"][shown][:, head],
    )
    source = "class token" if result["class_token"] else "mean over query tokens"
    title = f"attention over patches ({source}, {result['layer']});\nweights: {result['layers'][shown]}, head {head}"
    return "attention", arrays, examples.titles, title


def _map(model, method: str, examples: _Examples, layer, smooth_samples: int, seed: int):
    result = explanations.explain(
        model, method, examples.inputs, examples.class_ids, layer=layer, smooth_samples=smooth_samples, seed=seed
    )
    arrays = {
        "maps": result["maps"],
        "images": examples.images,
        "labels": examples.class_ids,
        "predictions": examples.predictions,
        "dataset_index": examples.dataset_index,
        "layer": np.asarray(result["layer"] or ""),
    }
    where = f" on layer {result['layer']}" if result["layer"] else ""
    return method, arrays, examples.titles, f"{method}{where}, one correctly classified test image per class"


def _draw(method: str, arrays: Dict[str, Any], titles: List[str], title: str, path: str) -> None:
    if method == "attention":
        plots.plot_attention(
            arrays["images"],
            arrays["matrices"],
            arrays["maps"],
            titles,
            path,
            title=title,
            class_token=bool(arrays["class_token"]),
        )
    elif method == "activation_max":
        plots.plot_image_row(
            list(arrays["start"]) + list(arrays["images"]),
            [f"start: {t}" for t in titles] + titles,
            path,
            title=title,
            columns=len(titles),
        )
    else:
        plots.plot_explanations(arrays["images"], arrays["maps"], titles, path, title=title)


def _example_titles(names, class_ids, positions, outputs) -> List[str]:
    return [
        f"{names[c]}\n(p={float(evaluate.softmax(outputs['logits'][[p]])[0, c]):.2f})"
        for c, p in zip(class_ids, positions)
    ]


def silhouette_measure(
    run, model, method: str, count: int = SILHOUETTE_EXAMPLES, layer: Optional[str] = None
) -> Optional[Dict[str, Any]]:
    """Mean Grad-CAM heat inside the object (pixels > 0) over the mean on the background, on the
    first ``count`` correctly classified test images (their true class explained), ``method`` on ``layer``
    (default its own)."""
    test = run.test_data()
    predictions = run.predictions()["logits"].argmax(axis=1)
    right = np.flatnonzero(predictions == test.labels)[:count]
    if len(right) == 0:
        return None
    inputs = run.model_inputs(test.images[right])
    maps = explanations.explain(model, method, inputs, test.labels[right], layer=layer)["maps"]
    ratio = silhouette_ratio(maps, test.images[right])
    ratio.update(examples=int(len(right)), method=method, layer=layer, flatten_head=_has_flatten_head(model))
    return ratio


def _has_flatten_head(model) -> bool:
    """Whether a ``Flatten`` turns a feature map (not the input image) into the dense head's input."""
    return any(
        isinstance(layer, keras.layers.Flatten)
        and len(layer.input.shape) == 4
        and all(layer.input is not image for image in model.inputs)
        for layer in model.layers
    )
