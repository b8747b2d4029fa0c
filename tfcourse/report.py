"""The run report: ``report.html`` (self-contained, figures embedded) and ``report.md`` (figures
beside it in ``figures/``) for one run, and a page that puts several runs side by side.

A report is a list of blocks (headings, paragraphs, tables, figures, preformatted text) rendered
twice, to Markdown and to HTML, so the two never disagree. Numbers come from ``evaluate``,
explanations from ``explain``, dataset statistics from ``eda``; figures from ``plots``.

``python -m tfcourse.report RUN`` writes a run's report (``tfcourse.train`` does it at the end of
every run); ``--compare RUN RUN ...`` writes a comparison page; ``--check`` / ``--screenshot``
open the page in headless Chromium (``tfcourse.render``) and fail unless every image loads
without console errors.
"""

from __future__ import annotations

import argparse
import base64
import html
import os
import shutil
import sys
import time
from typing import Any, Dict, List, Optional, Sequence

import numpy as np

from tfcourse import evaluate, plots, rundir
from tfcourse.rundir import write_json, write_npz, write_text

REPORT_HTML = "report.html"
REPORT_MD = "report.md"
FIGURES_DIR = "figures"
GRID_SIZE = 16  # images in the prediction and misclassified grids
SILHOUETTE_EXAMPLES = 200  # correctly classified test images the Grad-CAM silhouette ratio is measured on


# ----------------------------------------------------------------------------- blocks and rendering


def _h(level: int, text: str):
    return ("heading", level, text)


def _p(text: str):
    return ("paragraph", text)


def _table(header: Sequence[str], rows: Sequence[Sequence[Any]]):
    return ("table", list(header), [list(r) for r in rows])


def _figure(path: str, caption: str):
    return ("figure", path, caption)


def _pre(text: str):
    return ("pre", text)


def _cell(value: Any) -> str:
    if isinstance(value, float):  # fractions to 4 decimals; seconds, rates and sizes less finely
        return f"{value:.4f}" if abs(value) < 1 else (f"{value:.2f}" if abs(value) < 1000 else f"{value:.0f}")
    return "" if value is None else str(value)


def _md(text: Any) -> str:
    """Text for Markdown outside code: Markdown renders raw HTML, so ``<``, ``>`` and ``&`` (a class
    folder named ``<img src=x onerror=...>``) are escaped as in the HTML page."""
    return html.escape(str(text), quote=False)


def render_markdown(blocks, base_dir: str) -> str:
    out = []
    for block in blocks:
        kind = block[0]
        if kind == "heading":
            out.append(f"{'#' * block[1]} {_md(block[2])}")
        elif kind == "paragraph":
            out.append(_md(block[1]))
        elif kind == "table":
            header, rows = block[1], block[2]
            out.append("| " + " | ".join(_md(h) for h in header) + " |")
            out.append("|" + "|".join("---" for _ in header) + "|")
            out += ["| " + " | ".join(_md(_cell(v)).replace("|", "\\|") for v in row) + " |" for row in rows]
        elif kind == "figure":
            out.append(f"![{_md(block[2])}]({os.path.relpath(block[1], base_dir)})\n\n*{_md(block[2])}*")
        elif kind == "pre":
            out.append("```\n" + block[1].rstrip() + "\n```")
        out.append("")
    return "\n".join(out)


_CSS = """
body { font-family: system-ui, sans-serif; max-width: 1100px; margin: 2em auto; padding: 0 1em; color: #222; }
h1 { border-bottom: 2px solid #ddd; } h2 { margin-top: 2em; border-bottom: 1px solid #eee; }
table { border-collapse: collapse; margin: 0.5em 0 1em; font-size: 0.9em; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.6em; text-align: right; }
th:first-child, td:first-child { text-align: left; }
th { background: #f3f3f3; } figure { margin: 1em 0; } figure img { max-width: 100%; border: 1px solid #eee; }
figcaption { color: #555; font-size: 0.9em; } pre { background: #f7f7f7; padding: 0.8em; overflow-x: auto; font-size: 0.8em; }
"""


def render_html(blocks, title: str) -> str:
    """A self-contained page: CSS inline, figures as data: URIs, no scripts, nothing fetched."""
    body = []
    for block in blocks:
        kind = block[0]
        if kind == "heading":
            body.append(f"<h{block[1]}>{html.escape(block[2])}</h{block[1]}>")
        elif kind == "paragraph":
            body.append(f"<p>{html.escape(block[1])}</p>")
        elif kind == "table":
            head = "".join(f"<th>{html.escape(h)}</th>" for h in block[1])
            rows = "".join("<tr>" + "".join(f"<td>{html.escape(_cell(v))}</td>" for v in row) + "</tr>" for row in block[2])
            body.append(f"<table><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>")
        elif kind == "figure":
            with open(block[1], "rb") as handle:
                data = base64.b64encode(handle.read()).decode("ascii")
            body.append(f'<figure><img src="data:image/png;base64,{data}" alt="{html.escape(block[2])}">'
                        f"<figcaption>{html.escape(block[2])}</figcaption></figure>")
        elif kind == "pre":
            body.append(f"<pre>{html.escape(block[1])}</pre>")
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            '<link rel="icon" href="data:,">'  # no favicon request (it would log an error)
            f"<title>{html.escape(title)}</title><style>{_CSS}</style></head>\n<body>\n"
            + "\n".join(body) + "\n</body></html>\n")


def _write_pages(blocks, out_dir: str, title: str, html_name: str, md_name: str) -> Dict[str, str]:
    paths = {"html": os.path.join(out_dir, html_name), "markdown": os.path.join(out_dir, md_name)}
    write_text(paths["markdown"], render_markdown(blocks, out_dir))
    write_text(paths["html"], render_html(blocks, title))
    return paths


# ----------------------------------------------------------------------------- evaluation of a run


def ensure_evaluation(run, write: bool = True) -> Dict[str, Any]:
    """The run's metrics with every evaluation number; runs from before the evaluation module (or an
    export) are evaluated now, and a run folder gets the missing ``metrics.json`` keys,
    ``report.txt`` and ``predictions.npz``."""
    metrics = dict(run.metrics)
    if "classification_report" in metrics and run.export_dir is None:
        return metrics
    outputs = run.predictions()
    numbers = evaluate.evaluate_predictions(outputs["labels"], outputs["logits"], run.class_names,
                                            outputs["test_indices"])
    if run.export_dir is not None:
        return {**metrics, **numbers, "evaluated": f"SavedModel {run.export_dir}"}
    metrics = {**metrics, **numbers}
    if write:
        write_json(os.path.join(run.run_dir, "metrics.json"), metrics)
        write_text(os.path.join(run.run_dir, evaluate.REPORT_TEXT_FILE), evaluate.format_text(metrics, run.name))
        evaluate.save_predictions(os.path.join(run.run_dir, evaluate.PREDICTIONS_FILE), outputs["labels"],
                                  outputs["logits"], outputs["test_indices"])
    return metrics


def discussion(metrics: Dict[str, Any], history: Dict[str, list]) -> List[str]:
    """A few sentences a teacher would say about the run, from its numbers and curves."""
    lines = []
    per_class = {k: v for k, v in metrics.get("per_class_accuracy", {}).items() if v is not None}
    if per_class:
        ranked = sorted(per_class.items(), key=lambda kv: kv[1])
        lines.append(f"Test accuracy {metrics['test_accuracy']:.2%} over {metrics['test_examples']} images. "
                     f"Best classes: {', '.join(f'{k} ({v:.1%})' for k, v in ranked[::-1][:2])}; worst: "
                     f"{', '.join(f'{k} ({v:.1%})' for k, v in ranked[:2])}.")
    pairs = metrics.get("most_confused") or []
    if pairs:
        lines.append("Most confused: " + "; ".join(
            f"{p['true']} taken for {p['predicted']} {p['count']} times ({p['fraction_of_true']:.1%} of {p['true']})"
            for p in pairs[:3]) + ".")
    top = metrics.get("top_k_accuracy") or {}
    if "2" in top:
        lines.append(f"Top-2 accuracy is {top['2']:.2%}: {top['2'] - metrics['test_accuracy']:.1%} of the test images "
                     "have the right class as the runner-up.")
    train_acc, val_acc = history.get("accuracy") or [], [v for v in history.get("val_accuracy") or [] if v is not None]
    val_loss = [v for v in history.get("val_loss") or [] if v is not None]
    if train_acc and val_acc:
        gap = train_acc[-1] - val_acc[-1]
        best = int(np.argmin(val_loss)) + 1 if val_loss else None
        epochs = len(train_acc)
        if gap > 0.03 and best is not None and best < epochs:
            lines.append(f"Over-fitting: training accuracy ends {gap:.1%} above validation accuracy and the validation "
                         f"loss was lowest at epoch {best} of {epochs} (those weights are kept when early stopping "
                         "restores the best); more regularisation or augmentation should help.")
        elif best == epochs and train_acc[-1] < 0.98:
            lines.append(f"Still improving: the validation loss was lowest at the last epoch ({epochs}) and training "
                         f"accuracy is {train_acc[-1]:.1%}; more epochs or a larger model may help (under-fitting).")
        else:
            lines.append(f"Training and validation accuracy end {gap:+.1%} apart (training minus validation); the "
                         f"validation loss was lowest at epoch {best} of {epochs}.")
    elif train_acc:
        lines.append(f"Fitted on train+val without a validation split: training accuracy ends at {train_acc[-1]:.1%}.")
    return lines


# ----------------------------------------------------------------------------- explanations to files


def write_explanations(run, model, methods: Sequence[str], out_dir: str, layer: Optional[str] = None,
                       per_class: int = 1, units: Optional[Sequence[int]] = None, start: str = "noise",
                       steps: int = 100, smooth_samples: int = 20, seed: int = 0, progress: bool = False,
                       head: int = 0, rollout: bool = False) -> List[str]:
    """Runs explanation methods on one (correctly classified when possible) test example per class and
    writes ``<method>.npz`` (maps, images, labels ...) and ``<method>.png`` (input / map / overlay) per method;
    ``activation_max`` writes the optimised inputs; ``attention`` writes every layer's attention weights
    and draws attention head ``head`` of ``layer`` (default the last) and the attention over patches
    (of that layer, or the rollout through all layers). Returns the paths written."""
    from tfcourse import artifacts, explain

    test = run.test_data()
    outputs = run.predictions()
    predictions = outputs["logits"].argmax(axis=1)
    positions = explain.pick_examples(test.labels, predictions, per_class)
    images = test.images[positions]
    inputs = run.model_inputs(images)
    class_ids = test.labels[positions]
    names = run.class_names
    results = []
    for method in methods:
        begin = time.perf_counter()
        if method == "activation_max":
            chosen = list(units) if units is not None else (list(range(len(names))) if layer is None else list(range(8)))
            seeds = None
            if start == "image":
                seeds = np.resize(inputs, (len(chosen),) + inputs.shape[1:])
            optimised, began = explain.activation_maximization(
                model, layer, chosen, seed_images=seeds, input_range=artifacts.model_input_range(run.normalization),
                steps=steps, seed=seed)
            titles = [names[u] if layer is None else f"filter {u}" for u in chosen]
            results.append((method, {"images": artifacts.to_pixels(optimised, run.normalization),
                                     "start": artifacts.to_pixels(began, run.normalization),
                                     "units": np.asarray(chosen), "layer": np.asarray(layer or "logits")},
                            titles, f"activation maximisation of {layer or 'the class logits'} from "
                                    f"{'random noise' if start == 'noise' else 'test images'}, {steps} steps"))
        elif method == "attention":
            result = explain.attention_maps(model, inputs, layer=layer, rollout=rollout)
            shown = result["index"]
            heads = result["weights"][shown].shape[1]
            if not 0 <= head < heads:
                raise ValueError(f"--head {head} is out of range: {result['layers'][shown]} has {heads} heads "
                                 f"(0..{heads - 1}).")
            arrays = {f"weights_{name}": weights for name, weights in zip(result["layers"], result["weights"])}
            arrays.update(maps=result["maps"], patches=result["patches"], images=images, labels=class_ids,
                          predictions=predictions[positions], dataset_index=test.indices[positions],
                          layers=np.asarray(result["layers"]), layer=np.asarray(result["layer"]),
                          grid=np.asarray(result["grid"]), class_token=np.asarray(result["class_token"]),
                          matrices=result["weights"][shown][:, head])
            source = "class token" if result["class_token"] else "mean over query tokens"
            results.append((method, arrays, _example_titles(names, class_ids, positions, outputs),
                            f"attention over patches ({source}, {result['layer']});\n"
                            f"weights: {result['layers'][shown]}, head {head}"))
        else:
            result = explain.explain(model, method, inputs, class_ids, layer=layer, smooth_samples=smooth_samples,
                                     seed=seed)
            titles = _example_titles(names, class_ids, positions, outputs)
            where = f" on layer {result['layer']}" if result["layer"] else ""
            results.append((method, {"maps": result["maps"], "images": images, "labels": class_ids,
                                     "predictions": predictions[positions], "dataset_index": test.indices[positions],
                                     "layer": np.asarray(result["layer"] or "")},
                            titles, f"{method}{where}, one correctly classified test image per class"))
        if progress:
            print(f"tfcourse: {method} done in {time.perf_counter() - begin:.1f}s", flush=True)
    os.makedirs(out_dir, exist_ok=True)
    written = []
    for method, arrays, titles, title in results:
        stem = os.path.join(out_dir, method.replace("+", "_plus"))
        write_npz(stem + ".npz", **arrays)
        if method == "attention":
            plots.plot_attention(arrays["images"], arrays["matrices"], arrays["maps"], titles, stem + ".png",
                                 title=title, class_token=bool(arrays["class_token"]))
        elif method == "activation_max":
            plots.plot_image_row(list(arrays["start"]) + list(arrays["images"]),
                                 [f"start: {t}" for t in titles] + titles, stem + ".png", title=title,
                                 columns=len(titles))
        else:
            plots.plot_explanations(arrays["images"], arrays["maps"], titles, stem + ".png", title=title)
        written += [stem + ".npz", stem + ".png"]
    return written


def _example_titles(names, class_ids, positions, outputs) -> List[str]:
    return [f"{names[c]}\n(p={float(evaluate.softmax(outputs['logits'][[p]])[0, c]):.2f})"
            for c, p in zip(class_ids, positions)]


def silhouette_measure(run, model, method: str, count: int = SILHOUETTE_EXAMPLES) -> Optional[Dict[str, Any]]:
    """Mean Grad-CAM heat inside the object (pixels > 0) over the mean on the background, on the
    first ``count`` correctly classified test images (their true class explained)."""
    from tfcourse import explain

    test = run.test_data()
    predictions = run.predictions()["logits"].argmax(axis=1)
    right = np.flatnonzero(predictions == test.labels)[:count]
    if len(right) == 0:
        return None
    maps = explain.explain(model, method, run.model_inputs(test.images[right]), test.labels[right])["maps"]
    ratio = explain.silhouette_ratio(maps, test.images[right])
    ratio.update(examples=int(len(right)), method=method, flatten_head=_has_flatten_head(model))
    return ratio


def _has_flatten_head(model) -> bool:
    """Whether a ``Flatten`` turns a feature map (not the input image) into the dense head's input."""
    import keras

    return any(isinstance(layer, keras.layers.Flatten) and len(layer.input.shape) == 4
               and all(layer.input is not image for image in model.inputs) for layer in model.layers)


def silhouette_sentences(silhouette: Dict[str, Any], hyperparameters: Dict[str, Any]) -> List[str]:
    """What the measured Grad-CAM silhouette ratio says, and why heat may sit on the background."""
    from tfcourse import explain

    where = "on the object" if silhouette["ratio"] > 1 else "mostly on the background"
    lines = [f"{silhouette['method']} heat sits {where}: on {silhouette['examples']} correctly "
             f"classified test images the mean heat inside the silhouette (pixels > 0, "
             f"{silhouette['area_inside']:.0%} of the image) is {silhouette['ratio']:.2f}x the mean heat on "
             f"the background; {silhouette['share_inside']:.0%} of all heat is inside."]
    if silhouette["ratio"] <= 1 and silhouette.get("flatten_head") and silhouette["method"] in explain.CAM_METHODS:
        fix = ("retrain with `--hp head=gap` (global average pooling: the head then sees each "
               "channel's mean, not where it fired)" if "head" in hyperparameters else "use a model with a global-average-pooling head")
        lines.append("This model flattens its last feature map into the dense head, so every dense weight "
                     "belongs to one position and activations on the empty background around the outline can "
                     "count as evidence for a class; Grad-CAM averages the gradients over the image and shows "
                     f"that evidence where it lies. To see where the object itself drives the score, {fix}, or "
                     "compare Grad-CAM++ and Score-CAM (`python -m tfcourse.explain RUN --method all`).")
    return lines


# ----------------------------------------------------------------------------- one run


def _config_rows(record: Dict[str, Any]) -> List[List[Any]]:
    config = record.get("config", {})
    data = config.get("data", {})
    rows = [["model", config.get("model")], ["dataset", data.get("dataset")], ["split", data.get("split")],
            ["seed", config.get("seed")], ["epochs (max)", config.get("epochs")], ["batch size", data.get("batch_size")],
            ["augment", data.get("augment")], ["normalization", data.get("normalization")],
            ["fitted on", config.get("train_on")]]
    if config.get("base"):
        rows += [["transfer base", config.get("base")], ["freeze base", config.get("freeze_base")],
                 ["fine-tune at", config.get("fine_tune_at")]]
    rows += [[f"hp: {k}", v] for k, v in (record.get("hyperparameters") or {}).items()]
    return rows


def build_run_blocks(run, metrics: Dict[str, Any], figures: Dict[str, str], eda_info, silhouette,
                     explanation_methods: Sequence[str] = ()) -> list:
    record = run.record
    history = run.history
    names = list(run.class_names)
    data = record.get("data", {})
    blocks = [_h(1, f"Run report: {run.name}"),
              _p(f"Model {record.get('config', {}).get('model', '?')} on {data.get('source', '?')}; test accuracy "
                 f"{metrics['test_accuracy']:.2%} (loss {metrics['test_loss']:.4f}) on {metrics['test_examples']} "
                 f"images. Generated {time.strftime('%Y-%m-%d %H:%M')}.")]
    blocks += [_h(2, "Discussion")] + [_p(line) for line in discussion(metrics, history)]
    if silhouette:
        blocks += [_p(line) for line in silhouette_sentences(silhouette, record.get("hyperparameters") or {})]
    blocks += [_h(2, "Configuration"), _table(["setting", "value"], _config_rows(record))]
    blocks += [_h(2, "Data")]
    sizes = data.get("split_sizes", {})
    blocks.append(_p(f"Source: {data.get('source', '?')}; {len(names)} classes; images {data.get('input_shape')}; "
                     f"split sizes {sizes}."))
    if eda_info:
        blocks.append(_table(["class"] + list(eda_info["counts"]),
                             [[n] + [eda_info["counts"][s].get(n, 0) for s in eda_info["counts"]] for n in names]))
        blocks.append(_p(f"Training pixels (0..1): mean {', '.join(f'{v:.3f}' for v in eda_info['pixel']['mean'])}, "
                         f"std {', '.join(f'{v:.3f}' for v in eda_info['pixel']['std'])}; largest/smallest class: "
                         f"{eda_info['imbalance']:.2f}."))
        for key, caption in (("class_counts", "Examples per class and split"),
                             ("class_samples", "Mean image (first column) and random training images per class"),
                             ("pixel_histogram", "Pixel values of the training images")):
            blocks.append(_figure(figures[key], caption))
    blocks += [_h(2, "Model")]
    blocks.append(_p(f"{metrics.get('parameters', '?')} parameters ({metrics.get('trainable_parameters', '?')} "
                     f"trainable); {metrics.get('macs_per_image', 0) / 1e6:.2f} M multiply-accumulates per image; "
                     f"trained {metrics.get('epochs_trained', '?')} epochs in {metrics.get('train_seconds', '?')} s "
                     f"({metrics.get('train_images_per_second', '?')} images/s)."))
    cost_md = os.path.join(run.run_dir, "cost.md") if run.run_dir else None
    if cost_md and os.path.isfile(cost_md):
        with open(cost_md, encoding="utf-8") as handle:
            blocks.append(_pre(handle.read()))
    if "curves" in figures:
        blocks += [_h(2, "Training curves"), _figure(figures["curves"], "Loss and accuracy per epoch")]
    report = metrics["classification_report"]
    blocks += [_h(2, "Test metrics"),
               _table(["top-k", "accuracy"], [[f"top-{k}", v] for k, v in metrics["top_k_accuracy"].items()]),
               _table(["class", "precision", "recall", "f1-score", "support"],
                      [[n, report[n]["precision"], report[n]["recall"], report[n]["f1-score"], int(report[n]["support"])]
                       for n in names]
                      + [[avg, report[avg]["precision"], report[avg]["recall"], report[avg]["f1-score"],
                          int(report[avg]["support"])] for avg in ("macro avg", "weighted avg")]),
               _figure(figures["per_class"], "Per-class test accuracy")]
    blocks += [_h(2, "Confusion matrix"), _figure(figures["confusion"], "Confusion matrix (counts; colour = row fraction)"),
               _table(["true", "predicted as", "count", "fraction of true"],
                      [[p["true"], p["predicted"], p["count"], p["fraction_of_true"]] for p in metrics["most_confused"]])]
    blocks += [_h(2, "Predictions"), _figure(figures["first"], f"The first {GRID_SIZE} test images"),
               _figure(figures["random"], f"{GRID_SIZE} random test images")]
    wrong = metrics["misclassified"]
    blocks += [_h(2, "Misclassified examples"), _p(f"{len(wrong)} of {metrics['test_examples']} test images are "
                                                  "misclassified (all listed in metrics.json).")]
    if "misclassified" in figures:
        blocks.append(_figure(figures["misclassified"], f"The first {min(GRID_SIZE, len(wrong))} misclassified"))
        blocks.append(_table(["test position", "dataset index", "true", "predicted", "confidence"],
                             [[m["test_position"], m["dataset_index"], m["true"], m["predicted"], m["confidence"]]
                              for m in wrong[:GRID_SIZE]]))
    if explanation_methods:
        blocks += [_h(2, "Explanations")]
        for method in explanation_methods:
            caption = (f"{method}: one correctly classified test image per class" if method != "attention" else
                       "attention: one head's attention weights and the attention over the image's patches, one "
                       "correctly classified test image per class")
            blocks.append(_figure(figures[f"explanations_{method}"], caption))
    return blocks


def _choose_explanations(model) -> List[str]:
    """Grad-CAM (saliency for models without convolutions), plus the attention maps of attention models."""
    from tfcourse import explain

    chosen = [method for method in ("gradcam", "saliency") if explain.method_applies(model, method)][:1]
    return chosen + (["attention"] if explain.method_applies(model, "attention") else [])


def write_report(path: str, out_dir: Optional[str] = None, run=None, explanations: bool = True,
                 progress: bool = False) -> Dict[str, str]:
    """Writes ``report.html`` + ``report.md`` (+ ``figures/``) for a run folder or an export.

    Args:
        path: Run folder or export version folder.
        out_dir: Where to write (default: the run folder itself).
        run: An already opened ``artifacts.Run`` (``tfcourse.train`` passes its in-memory model and data).
        explanations: Add the Grad-CAM gallery (saliency for models without convolutions).

    Returns:
        ``{"html": path, "markdown": path}``.
    """
    from tfcourse import artifacts, eda

    run = run or artifacts.load(path)
    out_dir = out_dir or run.run_dir
    if out_dir is None:
        raise ValueError(f"{path} is an export whose run folder is unknown; pass --output-dir for its report.")
    metrics = ensure_evaluation(run, write=run.export_dir is None)
    test = run.test_data()
    names = list(run.class_names)
    figures_dir = os.path.join(out_dir, FIGURES_DIR)
    os.makedirs(figures_dir, exist_ok=True)
    fig = lambda name: os.path.join(figures_dir, name)  # noqa: E731
    figures = {}
    say = (lambda text: print(f"tfcourse: report: {text}", flush=True)) if progress else (lambda text: None)

    say("data figures")
    splits = test.splits
    x, y = test.dataset.pooled()
    eda_info = eda.summarize(x, y, names, {"train": splits.train, "val": splits.val, "test": splits.test})
    figures["class_counts"] = plots.plot_class_counts(eda_info["counts"], fig("class_counts.png"))
    figures["class_samples"] = plots.plot_class_samples(eda_info["samples"], fig("class_samples.png"),
                                                        mean_images=eda_info["mean_images"])
    figures["pixel_histogram"] = plots.plot_pixel_histogram(eda_info["histogram"], fig("pixel_histogram.png"))

    say("result figures")
    history = run.history
    if history:
        phases = (metrics.get("transfer") or {}).get("phases") or []
        starts = [sum(p["epochs"] for p in phases[:i]) + 1 for i in range(1, len(phases))]
        figures["curves"] = plots.plot_history(history, fig("curves.png"), title=f"{run.name}: learning curves",
                                               phase_starts=starts)
    figures["confusion"] = plots.plot_confusion_matrix(np.asarray(metrics["confusion_matrix"]), names, fig("confusion_matrix.png"))
    figures["per_class"] = plots.plot_per_class_accuracy(metrics["per_class_accuracy"], fig("per_class_accuracy.png"),
                                                         overall=metrics["test_accuracy"])
    outputs = run.predictions()
    predicted = outputs["logits"].argmax(axis=1)
    confidence = evaluate.softmax(outputs["logits"]).max(axis=1)
    order = {"first": np.arange(min(GRID_SIZE, len(predicted))),
             "random": np.sort(np.random.default_rng(0).choice(len(predicted), min(GRID_SIZE, len(predicted)), replace=False))}
    wrong = np.asarray([m["test_position"] for m in metrics["misclassified"][:GRID_SIZE]], dtype=np.int64)
    if len(wrong):
        order["misclassified"] = wrong
    titles = {"first": "the first test images", "random": "random test images (seed 0)",
              "misclassified": "the first misclassified test images"}
    for key, idx in order.items():
        figures[key] = plots.plot_predictions(test.images[idx], [names[i] for i in outputs["labels"][idx]],
                                              [names[i] for i in predicted[idx]], fig(f"predictions_{key}.png"),
                                              confidences=confidence[idx], title=f"{titles[key]}: predicted (confidence) / true")

    methods, silhouette = [], None
    if explanations:
        model = run.keras_model("the explanation gallery needs the Keras model")
        methods = _choose_explanations(model)
        for method in methods:
            say(f"{method} gallery")
            written = write_explanations(run, model, [method], figures_dir, seed=0)
            figures[f"explanations_{method}"] = [p for p in written if p.endswith(".png")][0]
        if "gradcam" in methods:
            silhouette = silhouette_measure(run, model, "gradcam")
    blocks = build_run_blocks(run, metrics, figures, eda_info, silhouette, methods)
    paths = _write_pages(blocks, out_dir, f"tfcourse report: {run.name}", REPORT_HTML, REPORT_MD)
    return paths


# ----------------------------------------------------------------------------- several runs


def write_comparison(paths: Sequence[str], out_dir: str) -> Dict[str, str]:
    """``compare.html`` + ``compare.md``: several runs' numbers, curves and per-class accuracy side by side."""
    from tfcourse import artifacts

    if len(paths) < 2:
        raise ValueError("--compare needs at least two run folders.")
    runs = [artifacts.load(p) for p in paths]
    names = []
    for run in runs:
        name = run.name
        while name in names:
            name += "'"
        names.append(name)
    metrics = [ensure_evaluation(run) for run in runs]
    classes = [list(run.class_names) for run in runs]
    if any(c != classes[0] for c in classes):
        raise ValueError("The runs were evaluated on different classes; compare runs of the same dataset and classes.")
    os.makedirs(os.path.join(out_dir, FIGURES_DIR), exist_ok=True)
    figure = plots.plot_compare_runs({n: r.history for n, r in zip(names, runs)},
                                     {n: m["test_accuracy"] for n, m in zip(names, metrics)},
                                     os.path.join(out_dir, FIGURES_DIR, "compare.png"))
    rows = []
    for name, run, m in zip(names, runs, metrics):
        report = m["classification_report"]
        per_class = {k: v for k, v in m["per_class_accuracy"].items() if v is not None}
        rows.append([name, run.record.get("config", {}).get("model"), m.get("parameters"),
                     round(m.get("macs_per_image", 0) / 1e6, 2) if m.get("macs_per_image") else None,
                     m.get("epochs_trained"), m.get("train_seconds"), m.get("train_images_per_second"),
                     m["test_accuracy"], m["top_k_accuracy"].get("2"), report["macro avg"]["f1-score"],
                     min(per_class, key=per_class.get)])
    best = max(range(len(runs)), key=lambda i: metrics[i]["test_accuracy"])
    lines = [f"Best test accuracy: {names[best]} ({metrics[best]['test_accuracy']:.2%})."]
    for i, name in enumerate(names):
        if i != best:
            diff = metrics[best]["test_accuracy"] - metrics[i]["test_accuracy"]
            n = metrics[i]["test_examples"]
            # a difference of two accuracies on n images has a binomial standard error of about sqrt(2 p (1-p) / n)
            p = (metrics[best]["test_accuracy"] + metrics[i]["test_accuracy"]) / 2
            se = (2 * p * (1 - p) / n) ** 0.5
            lines.append(f"{names[best]} is {diff:.2%} ahead of {name} ({diff / se:.1f} standard errors on {n} test images).")
    blocks = [_h(1, "Runs compared"), *[_p(line) for line in lines],
              _table(["run", "model", "parameters", "MMACs/img", "epochs", "train s", "img/s", "test accuracy",
                      "top-2", "macro F1", "worst class"], rows),
              _figure(figure, "Validation accuracy per epoch and test accuracy"),
              _h(2, "Per-class test accuracy"),
              _table(["class"] + names, [[c] + [m["per_class_accuracy"][c] for m in metrics] for c in classes[0]]),
              _h(2, "Runs"), _table(["run", "folder"], [[n, os.path.abspath(r.run_dir or r.export_dir)] for n, r in zip(names, runs)])]
    return _write_pages(blocks, out_dir, "tfcourse: runs compared", "compare.html", "compare.md")


# ----------------------------------------------------------------------------- command line


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m tfcourse.report",
                                     description="Write a run's report (report.html + report.md), or compare runs.")
    parser.add_argument("runs", nargs="+", help="a run folder or export (or, with --compare, two or more)")
    parser.add_argument("--compare", action="store_true", help="one page putting the runs side by side")
    parser.add_argument("--output-dir", default=None,
                        help="default: the run folder (with --compare: runs/compare-<time>)")
    parser.add_argument("--no-explanations", action="store_true", help="leave out the Grad-CAM gallery")
    parser.add_argument("--check", action="store_true",
                        help="open the page in headless Chromium; fail unless every image loads without console errors")
    parser.add_argument("--screenshot", action="store_true",
                        help="with the check, keep a full-page screenshot (report.png) beside the page")
    return parser


def main(argv: Optional[List[str]] = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    created = None
    try:
        with rundir.sigterm_unwinds():
            if args.output_dir:
                rundir.check_writable_folder(args.output_dir, "--output-dir")
            if args.compare:
                out_dir = args.output_dir or os.path.join("runs", f"compare-{time.strftime('%Y%m%d-%H%M%S')}")
                if not os.path.isdir(out_dir):
                    created = out_dir
                paths = write_comparison(args.runs, out_dir)
            else:
                if len(args.runs) != 1:
                    raise ValueError("Give one run folder (or add --compare for several).")
                if args.output_dir and not os.path.isdir(args.output_dir):
                    created = args.output_dir
                paths = write_report(args.runs[0], args.output_dir, explanations=not args.no_explanations, progress=True)
            if args.check or args.screenshot:
                from tfcourse import render

                shot = os.path.splitext(paths["html"])[0] + ".png" if args.screenshot else None
                result = render.check_page(paths["html"], screenshot=shot)
                print(f"tfcourse: Chromium: {result['images_loaded']}/{result['images']} images loaded, "
                      f"{len(result['errors'])} console errors" + (f"; screenshot {shot}" if shot else ""), flush=True)
                if not result["ok"]:
                    raise ValueError("the page did not render cleanly: " + "; ".join(result["problems"]))
    except KeyboardInterrupt as error:  # Ctrl-C or SIGTERM (rundir.sigterm_unwinds)
        if created and os.path.isdir(created):
            shutil.rmtree(created, ignore_errors=True)
        rundir.interrupted_exit(parser, error)
    except (ValueError, OSError) as error:  # OSError: an output folder that cannot be written
        if created and os.path.isdir(created):
            shutil.rmtree(created, ignore_errors=True)
        message = error if isinstance(error, ValueError) else (
            f"cannot write {error.filename or 'the report'}: {error.strerror}; pass another --output-dir")
        print(f"tfcourse.report: error: {message}", file=sys.stderr)
        return 2
    print(paths["html"])
    print(paths["markdown"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
