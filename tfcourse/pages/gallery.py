"""Explanations of a run written to files: the chosen test examples, ``<method>.npz`` and
``<method>.png`` per method, and the Grad-CAM silhouette measure (how much heat sits on the object)."""

from __future__ import annotations

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
    test = run.test_data()
    outputs = run.predictions()
    predictions = outputs["logits"].argmax(axis=1)
    positions = pick_examples(test.labels, predictions, per_class)
    images = test.images[positions]
    inputs = run.model_inputs(images)
    class_ids = test.labels[positions]
    names = run.class_names
    results = []
    for method in methods:
        begin = time.perf_counter()
        if method == "activation_max":
            chosen = (
                list(units) if units is not None else (list(range(len(names))) if layer is None else list(range(8)))
            )
            seeds = None
            if start == "image":
                seeds = np.resize(inputs, (len(chosen),) + inputs.shape[1:])
            optimised, began = explanations.activation_maximization(
                model,
                layer,
                chosen,
                seed_images=seeds,
                input_range=run.normalization.input_range(),
                steps=steps,
                seed=seed,
            )
            titles = [names[u] if layer is None else f"filter {u}" for u in chosen]
            results.append(
                (
                    method,
                    {
                        "images": run.normalization.to_pixels(optimised),
                        "start": run.normalization.to_pixels(began),
                        "units": np.asarray(chosen),
                        "layer": np.asarray(layer or "logits"),
                    },
                    titles,
                    f"activation maximisation of {layer or 'the class logits'} from "
                    f"{'random noise' if start == 'noise' else 'test images'}, {steps} steps",
                )
            )
        elif method == "attention":
            result = explanations.attention_maps(model, inputs, layer=layer, rollout=rollout)
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
                images=images,
                labels=class_ids,
                predictions=predictions[positions],
                dataset_index=test.indices[positions],
                layers=np.asarray(result["layers"]),
                layer=np.asarray(result["layer"]),
                grid=np.asarray(result["grid"]),
                class_token=np.asarray(result["class_token"]),
                matrices=result["weights"][shown][:, head],
            )
            source = "class token" if result["class_token"] else "mean over query tokens"
            results.append(
                (
                    method,
                    arrays,
                    _example_titles(names, class_ids, positions, outputs),
                    f"attention over patches ({source}, {result['layer']});\n"
                    f"weights: {result['layers'][shown]}, head {head}",
                )
            )
        else:
            result = explanations.explain(
                model, method, inputs, class_ids, layer=layer, smooth_samples=smooth_samples, seed=seed
            )
            titles = _example_titles(names, class_ids, positions, outputs)
            where = f" on layer {result['layer']}" if result["layer"] else ""
            results.append(
                (
                    method,
                    {
                        "maps": result["maps"],
                        "images": images,
                        "labels": class_ids,
                        "predictions": predictions[positions],
                        "dataset_index": test.indices[positions],
                        "layer": np.asarray(result["layer"] or ""),
                    },
                    titles,
                    f"{method}{where}, one correctly classified test image per class",
                )
            )
        if progress:
            print(f"tfcourse: {method} done in {time.perf_counter() - begin:.1f}s", flush=True)
    os.makedirs(out_dir, exist_ok=True)
    written = []
    for method, arrays, titles, title in results:
        stem = os.path.join(out_dir, method.replace("+", "_plus"))
        write_npz(stem + ".npz", **arrays)
        if method == "attention":
            plots.plot_attention(
                arrays["images"],
                arrays["matrices"],
                arrays["maps"],
                titles,
                stem + ".png",
                title=title,
                class_token=bool(arrays["class_token"]),
            )
        elif method == "activation_max":
            plots.plot_image_row(
                list(arrays["start"]) + list(arrays["images"]),
                [f"start: {t}" for t in titles] + titles,
                stem + ".png",
                title=title,
                columns=len(titles),
            )
        else:
            plots.plot_explanations(arrays["images"], arrays["maps"], titles, stem + ".png", title=title)
        written += [stem + ".npz", stem + ".png"]
    return written


def _example_titles(names, class_ids, positions, outputs) -> List[str]:
    return [
        f"{names[c]}\n(p={float(evaluate.softmax(outputs['logits'][[p]])[0, c]):.2f})"
        for c, p in zip(class_ids, positions)
    ]


def silhouette_measure(run, model, method: str, count: int = SILHOUETTE_EXAMPLES) -> Optional[Dict[str, Any]]:
    """Mean Grad-CAM heat inside the object (pixels > 0) over the mean on the background, on the
    first ``count`` correctly classified test images (their true class explained)."""
    test = run.test_data()
    predictions = run.predictions()["logits"].argmax(axis=1)
    right = np.flatnonzero(predictions == test.labels)[:count]
    if len(right) == 0:
        return None
    maps = explanations.explain(model, method, run.model_inputs(test.images[right]), test.labels[right])["maps"]
    ratio = silhouette_ratio(maps, test.images[right])
    ratio.update(examples=int(len(right)), method=method, flatten_head=_has_flatten_head(model))
    return ratio


def _has_flatten_head(model) -> bool:
    """Whether a ``Flatten`` turns a feature map (not the input image) into the dense head's input."""
    return any(
        isinstance(layer, keras.layers.Flatten)
        and len(layer.input.shape) == 4
        and all(layer.input is not image for image in model.inputs)
        for layer in model.layers
    )
