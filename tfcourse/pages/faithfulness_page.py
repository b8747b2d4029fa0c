"""How faithful each explanation method is for one run: ``faithfulness.json`` (every number),
``faithfulness.md`` / ``faithfulness.html`` (the table) and ``faithfulness_curves.png``, measured on a
seeded sample of the run's **validation** images (never the test images) by
``tfcourse.explanations.faithfulness``: deletion and insertion AUCs beside a random and a Sobel edge map,
the cascading randomisation check, the silhouette ratio and the seconds each method takes."""

from __future__ import annotations

import os
from typing import Any, Callable, Dict, Optional, Sequence, Tuple

import numpy as np

from tfcourse import explanations, rundir
from tfcourse.evaluation import evaluate
from tfcourse.explanations import faithfulness
from tfcourse.models import float32_copy
from tfcourse.pages import plots
from tfcourse.pages.blocks import figure, heading, machine_description, paragraph, table, write_pages
from tfcourse.pages.gallery import silhouette_ratio

FAITHFULNESS_JSON = "faithfulness.json"
FAITHFULNESS_MD = "faithfulness.md"
FAITHFULNESS_HTML = "faithfulness.html"
CURVES_PNG = "faithfulness_curves.png"
IMAGES = 32  # validation images measured (seeded sample)
HEADER = [
    "map",
    "layer",
    "deletion AUC",
    "insertion AUC",
    "beats the random map (deletion / insertion)",
    "randomisation",
    "silhouette ratio",
    "ms per image",
]


def validation_sample(run, count: int, seed: int):
    """A seeded sample of ``count`` validation images (raw), their labels and dataset indices."""
    images, labels, indices = run.split_sample("val", count, seed)
    if len(images) == 0:
        raise ValueError(f"{run.name} has no validation split to measure explanations on.")
    return images, labels, indices


def candidate(method: str, layer: Optional[str] = None) -> str:
    """The name of a map measured on a layer other than its default: ``gradcam@block1_conv1_relu``."""
    return f"{method}@{layer}" if layer else method


def split_candidate(name: str) -> Tuple[str, Optional[str]]:
    """``gradcam@block1_conv1_relu`` -> ``("gradcam", "block1_conv1_relu")``; ``saliency`` -> ``("saliency", None)``."""
    method, _, layer = name.partition("@")
    return method, layer or None


def label(name: str) -> str:
    """A candidate as a reader reads it: ``gradcam (block1_conv1_relu)``."""
    method, layer = split_candidate(name)
    return f"{method} ({layer})" if layer else method


def measure(
    run, model, methods: Sequence[str], count: int = IMAGES, layer: Optional[str] = None, seed: int = 0, progress=None
) -> Dict[str, Any]:
    """Every method's faithfulness on ``count`` validation images of ``run`` (each image's true class
    explained), the baselines', and each method's silhouette ratio. A CAM method is measured on ``layer``
    (default its own), or on the layer its name gives (``candidate``: ``gradcam@block1_conv1_relu``)."""
    model = float32_copy(model)
    images, labels, indices = validation_sample(run, count, seed)

    def predict(raw: np.ndarray) -> np.ndarray:
        return evaluate.softmax(np.asarray(model(run.model_inputs(raw), training=False), dtype=np.float32))

    def method_of(name: str) -> Callable:
        method, named_layer = split_candidate(name)
        chosen_layer = (named_layer or layer) if method in explanations.CAM_METHODS else None
        return lambda candidate, inputs, ids: explanations.explain(candidate, method, inputs, ids, layer=chosen_layer)

    result = faithfulness.evaluate(
        model,
        predict,
        run.model_inputs,
        images,
        labels,
        {m: method_of(m) for m in methods},
        seed=seed,
        progress=progress,
    )
    for entry in result["methods"].values():
        entry["silhouette_ratio"] = silhouette_ratio(entry.pop("maps"), images)["ratio"]
    result["validation_indices"] = indices.tolist()
    return result


def write_faithfulness(run, model, methods: Sequence[str], out_dir: str, **measure_args) -> Dict[str, str]:
    """Measures (``measure``) and writes the JSON, the page (Markdown + HTML) and the curves into ``out_dir``."""
    result = measure(run, model, methods, **measure_args)
    os.makedirs(out_dir, exist_ok=True)
    drawn = {
        **result["methods"],
        "baseline: random map": result["baselines"]["random"],
        "baseline: Sobel edges": result["baselines"]["edges"],
    }
    curves = {name: {kind: entry[kind]["curve"] for kind in ("deletion", "insertion")} for name, entry in drawn.items()}
    figure_path = plots.plot_faithfulness_curves(
        curves, os.path.join(out_dir, CURVES_PNG), f"{run.name}: {result['images']} validation images"
    )
    rundir.write_json(os.path.join(out_dir, FAITHFULNESS_JSON), {"run": run.name, **result})
    blocks = [
        heading(1, f"Faithfulness of the explanations: {run.name}"),
        paragraph(
            f"{result['images']} validation images (seeded sample, seed {result['seed']}; never the test images), "
            f"each image's true class explained, on {machine_description()}. Deletion: the class probability as "
            f"the map's hottest pixels are set to black, {result['steps']} slices; insertion: as they are revealed "
            "on a blurred copy. A faithful map has a lower deletion area and a higher insertion area than the "
            "random map. Randomisation: the top weighted layers re-initialised one after another; the map must "
            f"change (median |Spearman rho| with the original below {faithfulness.RANK_CORRELATION_LIMIT})."
        ),
        table(HEADER, summary_rows(result)),
        figure(
            figure_path, "Mean deletion and insertion curves; grey: the random map (dotted) and Sobel edges (dashed)"
        ),
    ]
    pages = write_pages(blocks, out_dir, f"Faithfulness {run.name}", FAITHFULNESS_HTML, FAITHFULNESS_MD)
    return {"json": os.path.join(out_dir, FAITHFULNESS_JSON), **pages, "curves": figure_path}


def summary_rows(result: Dict[str, Any]) -> list:
    """The table: one row per method, then the two baselines."""

    def auc(entry, kind):
        return f"{entry[kind]['auc']:.3f} ± {entry[kind]['std']:.3f}"

    rows = []
    for name, entry in result["methods"].items():
        check = entry["randomisation"]
        verdict = f"{'passed' if check['passed'] else 'FAILED'} (rho {check['rank_correlation'][-1]:.2f})"
        rows.append(
            [
                split_candidate(name)[0],
                entry.get("layer") or "",
                auc(entry, "deletion"),
                auc(entry, "insertion"),
                f"{entry['beats_random']['deletion']} / {entry['beats_random']['insertion']} of {result['images']}",
                verdict,
                f"{entry['silhouette_ratio']:.2f}",
                f"{entry['seconds_per_image'] * 1000:.1f}",
            ]
        )
    for name, label in (("random", "random map (baseline)"), ("edges", "Sobel edges (baseline)")):
        entry = result["baselines"][name]
        rows.append([label, "", auc(entry, "deletion"), auc(entry, "insertion"), "", "", "", ""])
    return rows
