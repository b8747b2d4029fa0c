"""The run report: ``report.html`` (self-contained, figures embedded) and ``report.md`` (figures
beside it in ``figures/``) for one run or export: the evaluation numbers (``evaluate``), dataset
statistics (``eda.stats``, drawn and described by ``eda_page`` as on the EDA page), figures
(``plots``), the explanation gallery (``explanations.gallery``) and a discussion of what the numbers say.
"""

from __future__ import annotations

import os
import time
from typing import Any, Dict, List, Optional, Sequence

import numpy as np

from tfcourse import explanations, rundir
from tfcourse.evaluation import artifacts, evaluate
from tfcourse.exploration import stats
from tfcourse.pages import eda_page, eda_plots, faithfulness_page, gallery, plots
from tfcourse.pages.blocks import figure, heading, paragraph, pre, table, write_pages

REPORT_HTML, REPORT_MD = rundir.REPORT_HTML, rundir.REPORT_MD
FIGURES_DIR = "figures"
GRID_SIZE = 16  # images in the prediction and misclassified grids


def ensure_evaluation(run, write: bool = True) -> Dict[str, Any]:
    """The run's metrics with every evaluation number; runs from before the evaluation module (or an
    export) are evaluated now, and a run folder gets the missing ``metrics.json`` keys,
    ``report.txt`` and ``predictions.npz``."""
    metrics = dict(run.metrics)
    if "classification_report" in metrics and run.export_dir is None:
        return metrics
    outputs = run.predictions()
    numbers = evaluate.evaluate_predictions(
        outputs["labels"], outputs["logits"], run.class_names, outputs["test_indices"]
    )
    if run.export_dir is not None:
        return {**metrics, **numbers, "evaluated": f"SavedModel {run.export_dir}"}
    metrics = {**metrics, **numbers}
    if write:
        evaluate.write_evaluation(
            run.run_dir, metrics, outputs["labels"], outputs["logits"], outputs["test_indices"], run.name
        )
    return metrics


def discussion(metrics: Dict[str, Any], history: Dict[str, list]) -> List[str]:
    """A few sentences a teacher would say about the run, from its numbers and curves."""
    lines = []
    per_class = {k: v for k, v in metrics.get("per_class_accuracy", {}).items() if v is not None}
    if per_class:
        ranked = sorted(per_class.items(), key=lambda kv: kv[1])
        lines.append(
            f"Test accuracy {metrics['test_accuracy']:.2%} over {metrics['test_examples']} images. "
            f"Best classes: {', '.join(f'{k} ({v:.1%})' for k, v in ranked[::-1][:2])}; worst: "
            f"{', '.join(f'{k} ({v:.1%})' for k, v in ranked[:2])}."
        )
    pairs = metrics.get("most_confused") or []
    if pairs:
        lines.append(
            "Most confused: "
            + "; ".join(
                f"{p['true']} taken for {p['predicted']} {p['count']} times ({p['fraction_of_true']:.1%} of {p['true']})"
                for p in pairs[:3]
            )
            + "."
        )
    top = metrics.get("top_k_accuracy") or {}
    if "2" in top:
        lines.append(
            f"Top-2 accuracy is {top['2']:.2%}: {top['2'] - metrics['test_accuracy']:.1%} of the test images "
            "have the right class as the runner-up."
        )
    train_acc, val_acc = history.get("accuracy") or [], [v for v in history.get("val_accuracy") or [] if v is not None]
    val_loss = [v for v in history.get("val_loss") or [] if v is not None]
    if train_acc and val_acc:
        gap = train_acc[-1] - val_acc[-1]
        best = int(np.argmin(val_loss)) + 1 if val_loss else None
        epochs = len(train_acc)
        if gap > 0.03 and best is not None and best < epochs:
            lines.append(
                f"Over-fitting: training accuracy ends {gap:.1%} above validation accuracy and the validation "
                f"loss was lowest at epoch {best} of {epochs} (those weights are kept when early stopping "
                "restores the best); more regularisation or augmentation should help."
            )
        elif best == epochs and train_acc[-1] < 0.98:
            lines.append(
                f"Still improving: the validation loss was lowest at the last epoch ({epochs}) and training "
                f"accuracy is {train_acc[-1]:.1%}; more epochs or a larger model may help (under-fitting)."
            )
        else:
            lines.append(
                f"Training and validation accuracy end {gap:+.1%} apart (training minus validation); the "
                f"validation loss was lowest at epoch {best} of {epochs}."
            )
    elif train_acc:
        lines.append(f"Fitted on train+val without a validation split: training accuracy ends at {train_acc[-1]:.1%}.")
    return lines


def silhouette_sentences(silhouette: Dict[str, Any], hyperparameters: Dict[str, Any]) -> List[str]:
    """What the measured Grad-CAM silhouette ratio says, and why heat may sit on the background."""
    where = "on the object" if silhouette["ratio"] > 1 else "mostly on the background"
    lines = [
        f"{silhouette['method']} heat sits {where}"
        + (f" (on layer {silhouette['layer']})" if silhouette.get("layer") else "")
        + f": on {silhouette['examples']} correctly "
        f"classified test images the mean heat inside the silhouette (pixels > 0, "
        f"{silhouette['area_inside']:.0%} of the image) is {silhouette['ratio']:.2f}x the mean heat on "
        f"the background; {silhouette['share_inside']:.0%} of all heat is inside."
    ]
    if silhouette["ratio"] <= 1 and silhouette.get("flatten_head") and silhouette["method"] in explanations.CAM_METHODS:
        fix = (
            "retrain with `--hp head=gap` (global average pooling: the head then sees each "
            "channel's mean, not where it fired)"
            if "head" in hyperparameters
            else "use a model with a global-average-pooling head"
        )
        lines.append(
            "This model flattens its last feature map into the dense head, so every dense weight "
            "belongs to one position and activations on the empty background around the outline can "
            "count as evidence for a class; Grad-CAM averages the gradients over the image and shows "
            f"that evidence where it lies. To see where the object itself drives the score, {fix}, or "
            "compare Grad-CAM++ and Score-CAM (`python -m tfcourse.explain RUN --method all`)."
        )
    return lines


# ----------------------------------------------------------------------------- one run


def _config_rows(record: Dict[str, Any]) -> List[List[Any]]:
    config = record.get("config", {})
    data = config.get("data", {})
    rows = [
        ["model", config.get("model")],
        ["dataset", data.get("dataset")],
        ["split", data.get("split")],
        ["seed", config.get("seed")],
        ["epochs (max)", config.get("epochs")],
        ["batch size", data.get("batch_size")],
        ["augment", data.get("augment")],
        ["normalization", data.get("normalization")],
        ["fitted on", config.get("train_on")],
        ["recipe", config.get("recipe", "standard")],
        ["test-time augmentation", config.get("tta", "none")],
    ]
    precision = record.get("precision")
    if precision:
        rows.append(["precision", f"{precision['policy']} (asked: {precision['requested']}; {precision['reason']})"])
    recipe = record.get("recipe")
    if recipe and recipe.get("optimizer") != "hp":
        rows.append(
            [
                "recipe settings",
                ", ".join(
                    f"{k} {v}" for k, v in recipe.items() if k not in ("name", "batch_size", "epochs", "augment", "tta")
                ),
            ]
        )
    if config.get("base"):
        rows += [
            ["transfer base", config.get("base")],
            ["freeze base", config.get("freeze_base")],
            ["fine-tune at", config.get("fine_tune_at")],
        ]
    rows += [[f"hp: {k}", v] for k, v in (record.get("hyperparameters") or {}).items()]
    return rows


def build_run_blocks(
    run,
    metrics: Dict[str, Any],
    figures: Dict[str, str],
    eda_info,
    silhouette,
    explanation_methods: Sequence[str] = (),
    faithful: Optional[Dict[str, Any]] = None,
) -> list:
    record = run.record
    history = run.history
    data = record.get("data", {})
    blocks = [
        heading(1, f"Run report: {run.name}"),
        paragraph(
            f"Model {record.get('config', {}).get('model', '?')} on {data.get('source', '?')}; test accuracy "
            f"{metrics['test_accuracy']:.2%} (loss {metrics['test_loss']:.4f}) on {metrics['test_examples']} "
            f"images. Generated {time.strftime('%Y-%m-%d %H:%M')}."
        ),
    ]
    blocks += [heading(2, "Discussion")] + [paragraph(line) for line in discussion(metrics, history)]
    if faithful:
        blocks += [paragraph(line) for line in faithfulness_sentences(faithful)]
    if silhouette:
        blocks += [paragraph(line) for line in silhouette_sentences(silhouette, record.get("hyperparameters") or {})]
    blocks += [heading(2, "Configuration"), table(["setting", "value"], _config_rows(record))]
    blocks += _data_blocks(run, figures, eda_info)
    blocks += _model_blocks(run, metrics, figures)
    blocks += _test_blocks(run, metrics, figures)
    blocks += _prediction_blocks(metrics, figures)
    blocks += _explanation_blocks(figures, explanation_methods, faithful)
    return blocks


def _data_blocks(run, figures: Dict[str, str], eda_info) -> list:
    """The data: source, classes, split sizes and, with the EDA's numbers, class balance and pixels."""
    blocks: list = []
    record, names, data = run.record, list(run.class_names), run.record.get("data", {})
    blocks += [heading(2, "Data")]
    sizes = data.get("split_sizes", {})
    blocks.append(
        paragraph(
            f"Source: {data.get('source', '?')}; {len(names)} classes; images {data.get('input_shape')}; "
            f"split sizes {sizes}."
        )
    )
    if eda_info:
        blocks += eda_page.class_blocks(eda_info["classes"], figures)
        blocks += eda_page.pixel_blocks(eda_info["pixels"]["numbers"], figures)
        blocks.append(
            figure(figures["class_samples"], "Mean image (first column) and random training images per class")
        )
        blocks.append(
            paragraph(
                f"The whole exploratory analysis of this dataset (duplicates, leakage, label errors, features, "
                f"augmentations, embeddings): `python -m tfcourse.eda --dataset {record.get('config', {}).get('data', {}).get('dataset', '?')}`."
            )
        )
    return blocks


def _model_blocks(run, metrics: Dict[str, Any], figures: Dict[str, str]) -> list:
    """The model: size, cost per layer, training time and curves."""
    blocks: list = []
    blocks += [heading(2, "Model")]
    blocks.append(
        paragraph(
            f"{metrics.get('parameters', '?')} parameters ({metrics.get('trainable_parameters', '?')} "
            f"trainable); {metrics.get('macs_per_image', 0) / 1e6:.2f} M multiply-accumulates per image; "
            f"trained {metrics.get('epochs_trained', '?')} epochs in {metrics.get('train_seconds', '?')} s "
            f"({metrics.get('train_images_per_second', '?')} images/s)."
        )
    )
    cost_md = os.path.join(run.run_dir, rundir.COST_MD) if run.run_dir else None
    if cost_md and os.path.isfile(cost_md):
        with open(cost_md, encoding="utf-8") as handle:
            blocks.append(pre(handle.read()))
    if "curves" in figures:
        blocks += [heading(2, "Training curves"), figure(figures["curves"], "Loss and accuracy per epoch")]
    return blocks


def _test_blocks(run, metrics: Dict[str, Any], figures: Dict[str, str]) -> list:
    """Test metrics: top-k, the classification report, per-class accuracy and the confusion matrix."""
    blocks: list = []
    names = list(run.class_names)
    report = metrics["classification_report"]
    blocks += [
        heading(2, "Test metrics"),
        table(["top-k", "accuracy"], [[f"top-{k}", v] for k, v in metrics["top_k_accuracy"].items()]),
        table(
            ["class", "precision", "recall", "f1-score", "support"],
            [
                [n, report[n]["precision"], report[n]["recall"], report[n]["f1-score"], int(report[n]["support"])]
                for n in names
            ]
            + [
                [
                    avg,
                    report[avg]["precision"],
                    report[avg]["recall"],
                    report[avg]["f1-score"],
                    int(report[avg]["support"]),
                ]
                for avg in ("macro avg", "weighted avg")
            ],
        ),
        figure(figures["per_class"], "Per-class test accuracy"),
    ]
    blocks += [
        heading(2, "Confusion matrix"),
        figure(figures["confusion"], "Confusion matrix (counts; colour = row fraction)"),
        table(
            ["true", "predicted as", "count", "fraction of true"],
            [[p["true"], p["predicted"], p["count"], p["fraction_of_true"]] for p in metrics["most_confused"]],
        ),
    ]
    return blocks


def _prediction_blocks(metrics: Dict[str, Any], figures: Dict[str, str]) -> list:
    """Predictions on test images, and the misclassified ones."""
    blocks: list = []
    blocks += [
        heading(2, "Predictions"),
        figure(figures["first"], f"The first {GRID_SIZE} test images"),
        figure(figures["random"], f"{GRID_SIZE} random test images"),
    ]
    wrong = metrics["misclassified"]
    blocks += [
        heading(2, "Misclassified examples"),
        paragraph(
            f"{len(wrong)} of {metrics['test_examples']} test images are misclassified (all listed in metrics.json)."
        ),
    ]
    if "misclassified" in figures:
        blocks.append(figure(figures["misclassified"], f"The first {min(GRID_SIZE, len(wrong))} misclassified"))
        blocks.append(
            table(
                ["test position", "dataset index", "true", "predicted", "confidence"],
                [
                    [m["test_position"], m["dataset_index"], m["true"], m["predicted"], m["confidence"]]
                    for m in wrong[:GRID_SIZE]
                ],
            )
        )
    return blocks


def _explanation_blocks(
    figures: Dict[str, str], explanation_methods: Sequence[str], faithful: Optional[Dict[str, Any]] = None
) -> list:
    """The faithfulness table of the candidate methods, then one figure per explanation method shown."""
    blocks: list = []
    if explanation_methods:
        blocks += [heading(2, "Explanations")]
        if faithful:
            measured = faithful["measured"]
            blocks += [
                paragraph(
                    f"How faithful each candidate map is, on {measured['images']} validation images (never the test "
                    "images): the deletion and insertion areas against a random map and Sobel edges, and the "
                    "randomisation check (`python -m tfcourse.explain RUN --evaluate` measures every method)."
                ),
                table(faithfulness_page.HEADER, faithfulness_page.summary_rows(measured)),
            ]
        for method in explanation_methods:
            caption = (
                f"{faithfulness_page.label(method)}: one correctly classified test image per class"
                if method != "attention"
                else "attention: one head's attention weights and the attention over the image's patches, one "
                "correctly classified test image per class"
            )
            blocks.append(figure(figures[f"explanations_{method}"], caption))
    return blocks


# The maps the report measures and chooses from: the CAMs at their default layer and one resolution earlier
# (benchmarks/results/explain_quality.md: the earlier layer is the more faithful on some models, not all)
REPORT_CANDIDATES = ("gradcam", "gradcam++", "saliency")
REPORT_FAITHFULNESS_IMAGES = 16


def _margins(entry: Dict[str, Any]) -> np.ndarray:
    """Insertion minus deletion area, image by image."""
    return np.asarray(entry["insertion"]["per_image"]) - np.asarray(entry["deletion"]["per_image"])


def choose_faithful(measured: Dict[str, Any]) -> str:
    """The most faithful method: among those that passed the randomisation check (all of them if none did),
    the one whose insertion area exceeds its deletion area by the most, image by image on average. The
    first candidate (the default: Grad-CAM on its own layer) stays unless another beats it by more than the
    standard error of their paired difference: with 16 images a near tie is noise, and the choice should
    not flip between runs on it."""
    passed = {name: entry for name, entry in measured["methods"].items() if entry["randomisation"]["passed"]}
    pool = passed or measured["methods"]
    best = max(pool, key=lambda name: _margins(pool[name]).mean())
    default = next(iter(measured["methods"]))
    if best == default or default not in pool:
        return best
    difference = _margins(pool[best]) - _margins(pool[default])
    noise = difference.std(ddof=1) / np.sqrt(len(difference)) if len(difference) > 1 else 0.0
    return best if difference.mean() > noise else default


def faithfulness_sentences(faithful: Dict[str, Any]) -> List[str]:
    """How faithful the shown map is, in plain words: its areas against the random and edge maps, and the check."""
    measured, method = faithful["measured"], faithful["method"]
    entry, chance, edges = measured["methods"][method], measured["baselines"]["random"], measured["baselines"]["edges"]
    n = measured["images"]
    where = f" on layer {entry['layer']}" if entry.get("layer") else ""
    check = entry["randomisation"]
    gain = entry["gain_over_random"]
    lines = [
        f"The explanation shown is {faithfulness_page.split_candidate(method)[0]}{where}, the most faithful of "
        f"{', '.join(map(faithfulness_page.label, measured['methods']))} on {n} validation images. Removing its "
        f"hottest pixels first, the class probability falls with an area of {entry['deletion']['auc']:.3f} under "
        f"the curve, against {chance['deletion']['auc']:.3f} for a random map and {edges['deletion']['auc']:.3f} "
        f"for Sobel edges (lower is more faithful; image by image {gain['deletion']['mean']:.3f} ± "
        f"{gain['deletion']['std']:.3f} below the random map's, lower on {entry['beats_random']['deletion']} of "
        f"{n} images); revealing them first, the area is {entry['insertion']['auc']:.3f} against "
        f"{chance['insertion']['auc']:.3f} and {edges['insertion']['auc']:.3f} (higher is more faithful; "
        f"{gain['insertion']['mean']:.3f} ± {gain['insertion']['std']:.3f} above the random map's, higher on "
        f"{entry['beats_random']['insertion']} of {n})."
    ]
    worse = [
        f"{kind} ({edges[kind]['auc']:.3f} against {entry[kind]['auc']:.3f})"
        for kind, edge_better in (
            ("deletion", edges["deletion"]["auc"] <= entry["deletion"]["auc"]),
            ("insertion", edges["insertion"]["auc"] >= entry["insertion"]["auc"]),
        )
        if edge_better
    ]
    if worse:
        lines.append(
            "A plain Sobel edge map, which knows nothing of the model, does as well or better on "
            f"{' and '.join(worse)}: on these images much of the class lies in the object's outline, so read "
            "the map as where this model looks among the outline's pixels, not as proof that it looks nowhere else."
        )
    if check["passed"]:
        lines.append(
            f"It passed the randomisation check: with the top {len(check['layers'])} weighted layers re-initialised "
            f"its maps keep a rank correlation of only {check['rank_correlation'][-1]:.2f} with these, so they "
            "depend on what the model learnt."
        )
    else:
        lines.append(
            f"Warning: no candidate passed the randomisation check; {method} FAILED it (its maps keep a rank "
            f"correlation of {check['rank_correlation'][-1]:.2f} after the top layers are re-initialised), so "
            "its picture may show the image more than what this model uses."
        )
    return lines


def report_candidates(model) -> List[str]:
    """The maps the report measures (Grad-CAM and Grad-CAM++ need convolutions, and are measured at their
    default layer and one resolution earlier when there is one; saliency always applies)."""
    earlier = explanations.earlier_layer(model)
    found = []
    for method in REPORT_CANDIDATES:
        if explanations.method_applies(model, method):
            found.append(method)
            if method in explanations.CAM_METHODS and earlier:
                found.append(faithfulness_page.candidate(method, earlier))
    return found


def _data_figures(run, test, names: List[str], figures: Dict[str, str], fig) -> Dict[str, Any]:
    """The dataset's class balance, pixel statistics and samples (the EDA's numbers and overview figures)."""
    splits = test.splits
    x, y = test.dataset.pooled()
    split_indices = {"train": splits.train, "val": splits.val, "test": splits.test}
    eda_info = {
        "classes": stats.class_distribution(y, names, split_indices),
        "pixels": stats.image_statistics(x, y, names, splits.train),
        "samples": stats.class_samples(x, y, names, splits.train),
    }
    figures.update(eda_plots.overview_figures(eda_info["classes"], eda_info["pixels"], eda_info["samples"], fig))
    return eda_info


def _result_figures(run, metrics: Dict[str, Any], test, names: List[str], figures: Dict[str, str], fig) -> None:
    """Learning curves, the confusion matrix, per-class accuracy and grids of test predictions."""
    history = run.history
    if history:
        phases = (metrics.get("transfer") or {}).get("phases") or []
        starts = [sum(p["epochs"] for p in phases[:i]) + 1 for i in range(1, len(phases))]
        figures["curves"] = plots.plot_history(
            history, fig("curves.png"), title=f"{run.name}: learning curves", phase_starts=starts
        )
    figures["confusion"] = plots.plot_confusion_matrix(
        np.asarray(metrics["confusion_matrix"]), names, fig("confusion_matrix.png")
    )
    figures["per_class"] = plots.plot_per_class_accuracy(
        metrics["per_class_accuracy"], fig("per_class_accuracy.png"), overall=metrics["test_accuracy"]
    )
    outputs = run.predictions()
    predicted = outputs["logits"].argmax(axis=1)
    confidence = evaluate.softmax(outputs["logits"]).max(axis=1)
    shown = min(GRID_SIZE, len(predicted))
    order = {
        "first": np.arange(shown),
        "random": np.sort(np.random.default_rng(0).choice(len(predicted), shown, replace=False)),
    }
    wrong = np.asarray([m["test_position"] for m in metrics["misclassified"][:GRID_SIZE]], dtype=np.int64)
    if len(wrong):
        order["misclassified"] = wrong
    titles = {
        "first": "the first test images",
        "random": "random test images (seed 0)",
        "misclassified": "the first misclassified test images",
    }
    for key, idx in order.items():
        figures[key] = plots.plot_predictions(
            test.images[idx],
            [names[i] for i in outputs["labels"][idx]],
            [names[i] for i in predicted[idx]],
            fig(f"predictions_{key}.png"),
            confidences=confidence[idx],
            title=f"{titles[key]}: predicted (confidence) / true",
        )


def _explanation_figures(run, figures: Dict[str, str], figures_dir: str, say):
    """The candidate maps measured on validation images, the gallery of the most faithful one (and the
    attention maps of an attention model) and, for a CAM, the silhouette measure: ``(methods, silhouette,
    faithful)``."""
    model = run.keras_model("the explanation gallery needs the Keras model")
    candidates = report_candidates(model)
    say("faithfulness of " + ", ".join(map(faithfulness_page.label, candidates)))
    measured = faithfulness_page.measure(run, model, candidates, count=REPORT_FAITHFULNESS_IMAGES)
    chosen = choose_faithful(measured)
    method, layer = faithfulness_page.split_candidate(chosen)
    methods = [chosen] + (["attention"] if explanations.method_applies(model, "attention") else [])
    for name in methods:
        say(f"{faithfulness_page.label(name)} gallery")
        shown, shown_layer = faithfulness_page.split_candidate(name)
        written = gallery.write_explanations(run, model, [shown], figures_dir, layer=shown_layer, seed=0)
        figures[f"explanations_{name}"] = [p for p in written if p.endswith(".png")][0]
    cam = method in explanations.CAM_METHODS
    silhouette = gallery.silhouette_measure(run, model, method, layer=layer) if cam else None
    return methods, silhouette, {"method": chosen, "measured": measured}


def write_report(
    path: str, out_dir: Optional[str] = None, run=None, explanations: bool = True, progress: bool = False
) -> Dict[str, str]:
    """Writes ``report.html`` + ``report.md`` (+ ``figures/``) for a run folder or an export.

    Args:
        path: Run folder or export version folder.
        out_dir: Where to write (default: the run folder itself).
        run: An already opened ``artifacts.Run`` (``tfcourse.train`` passes its in-memory model and data).
        explanations: Add the Grad-CAM gallery (saliency for models without convolutions).

    Returns:
        ``{"html": path, "markdown": path}``.
    """
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
    eda_info = _data_figures(run, test, names, figures, fig)
    say("result figures")
    _result_figures(run, metrics, test, names, figures, fig)
    methods, silhouette, faithful = [], None, None
    if explanations:
        methods, silhouette, faithful = _explanation_figures(run, figures, figures_dir, say)
    blocks = build_run_blocks(run, metrics, figures, eda_info, silhouette, methods, faithful)
    paths = write_pages(blocks, out_dir, f"tfcourse report: {run.name}", REPORT_HTML, REPORT_MD)
    return paths
