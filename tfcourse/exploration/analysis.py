"""The whole exploratory data analysis of one dataset and split, section by section, each timed and
announced, and the implications read off its numbers.

``analyse`` returns ``{"numbers": {section: {...}}, "arrays": {section: {...}}, "timings": {section:
seconds}}``; ``tfcourse.pages.eda_page`` draws the figures and writes ``eda.json`` and the page.
"""

from __future__ import annotations

import time
from typing import Any, Callable, Dict, List, Optional

import numpy as np

from tfcourse.config import EdaConfig
from tfcourse.exploration import features, stats

SECTIONS = (
    ("classes", "class distribution"),
    ("pixels", "image statistics"),
    ("dimensions", "dimensions and object extent"),
    ("samples", "samples"),
    ("correlation", "pixel correlation and PCA"),
    ("duplicates", "exact and near duplicates"),
    ("anomalies", "blank, saturated and outlying images"),
    ("neighbours", "nearest neighbours: label errors and class overlap"),
    ("features", "edges, HOG and logistic regression"),
    ("augmentation", "augmentation preview"),
    ("embedding", "PCA and t-SNE embedding"),
)


def analyse(dataset, splits, config: EdaConfig, progress: Optional[Callable[[str], None]] = None) -> Dict[str, Any]:
    """Runs every section of the EDA on ``dataset`` (a ``data.Dataset``) and ``splits``.

    Args:
        progress: Called with one line before and after each section (``None``: silent).
    """
    say = progress or (lambda text: None)
    x, y = dataset.pooled()
    names = list(dataset.class_names)
    split_indices = {"train": splits.train, "val": splits.val, "test": splits.test}
    split_names = stats.split_of(len(x), split_indices)
    train = splits.train
    numbers: Dict[str, Any] = {}
    arrays: Dict[str, Any] = {}
    timings: Dict[str, float] = {}
    shared: Dict[str, Any] = {}

    def pca_space():
        if "pca" not in shared:
            vectors, grid = stats.grey_vectors(x, config.max_side)
            pca = stats.fit_pca(vectors[train], config.seed)
            shared.update(vectors=vectors, grid=grid, pca=pca, projected=pca.transform(vectors).astype(np.float32))
        return shared

    def run(key: str, compute: Callable[[], Dict[str, Any]]) -> None:
        position = [k for k, _ in SECTIONS].index(key) + 1
        say(f"[{position}/{len(SECTIONS)}] {dict(SECTIONS)[key]} ...")
        started = time.perf_counter()
        result = compute()
        timings[key] = time.perf_counter() - started
        numbers[key], arrays[key] = result["numbers"], result.get("arrays", {})
        say(f"[{position}/{len(SECTIONS)}] {dict(SECTIONS)[key]}: {timings[key]:.1f} s")

    run("classes", lambda: {"numbers": stats.class_distribution(y, names, split_indices)})
    run("pixels", lambda: stats.image_statistics(x, y, names, train))
    run("dimensions", lambda: stats.dimensions(x, y, names, train, dataset.original_sizes))

    def samples():
        chosen = stats.class_samples(x, y, names, train, config.samples_per_class, config.seed)
        return {"numbers": {"indices": chosen["indices"]}, "arrays": chosen}

    run("samples", samples)

    def correlation():
        space = pca_space()
        return stats.correlation(space["vectors"][train], space["grid"], space["pca"], seed=config.seed)

    run("correlation", correlation)

    def duplicates():
        space = pca_space()
        exact = stats.exact_duplicates(x, y, split_names, names, top=config.top)
        near = stats.near_duplicates(
            space["vectors"],
            space["projected"][:, : config.duplicate_components].astype(np.float64),
            y,
            split_names,
            names,
            rms=config.near_duplicate_rms,
            group_of=exact["arrays"]["group_of"],
        )
        return {
            "numbers": {"exact": exact["numbers"], "near": near["numbers"]},
            "arrays": {"exact": exact["arrays"], "near": near["arrays"]},
        }

    run("duplicates", duplicates)

    def anomalies():
        space = pca_space()
        flat = stats.blank_and_saturated(x, top=config.top)
        far = stats.outliers(space["vectors"], y, train, names, threshold=config.outlier_z, top=config.top)
        return {
            "numbers": {"blank_saturated": flat["numbers"], "outliers": far["numbers"]},
            "arrays": {"blank_saturated": flat["arrays"], "outliers": far["arrays"]},
        }

    run("anomalies", anomalies)
    run(
        "neighbours",
        lambda: stats.neighbours(
            pca_space()["projected"][:, : config.neighbour_components],
            y,
            names,
            k=config.neighbours,
            share=config.label_error_share,
            top=config.top,
        ),
    )

    def engineered():
        space = pca_space()
        grey = space["vectors"].reshape(len(x), *space["grid"])
        edges = features.edge_statistics(grey, y, names)
        compared = features.feature_comparison(
            x, y, train, splits.val, config.classifier_examples, config.max_side, config.seed
        )
        shared["raw_model"] = compared["arrays"]["raw_model"]
        return {
            "numbers": {"edges": edges["numbers"], "classifier": compared["numbers"]},
            "arrays": {"edges": edges["arrays"]},
        }

    run("features", engineered)
    run(
        "augmentation",
        lambda: features.augmentation_check(
            x,
            y,
            names,
            splits.val,
            shared["raw_model"],
            dataset.name,
            arrays["dimensions"]["margins"][splits.val],
            max_side=config.max_side,
            seed=config.seed,
        ),
    )
    run(
        "embedding",
        lambda: stats.embedding(
            pca_space()["projected"][:, :50], y, train, tsne_samples=config.tsne_samples, seed=config.seed
        ),
    )
    return {"numbers": numbers, "arrays": arrays, "timings": timings}


# ----------------------------------------------------------------------------- implications


def _percent(value: float) -> str:
    return f"{value:.1%}" if value < 0.1 else f"{value:.0%}"


def implications(numbers: Dict[str, Any], class_names) -> List[str]:
    """What the numbers mean for training, one sentence each."""
    lines = []
    balance = numbers["classes"]["balance"]["train"]
    if balance["balanced"]:
        lines.append(
            f"Balanced: in the training split the largest class has {balance['max_min_ratio']:.2f}x the examples "
            f"of the smallest and the class entropy is {balance['relative_entropy']:.3f} of a uniform one, so "
            "accuracy is a fair headline number and no class weights are needed."
        )
    else:
        missing = balance["missing_classes"]
        lines.append(
            f"Imbalanced: {balance['largest']} has {balance['max_min_ratio']:.1f}x the training examples of "
            f"{balance['smallest']}"
            + (f" and {', '.join(missing)} have none" if missing else "")
            + "; report macro-F1 or balanced accuracy beside accuracy, and consider class weights or "
            "resampling in training."
        )
    dims = numbers["dimensions"]
    h, w = dims["stored_shape"][:2]
    if dims["all_same_size"]:
        lines.append(
            f"Every image is {h}x{w}: no resizing is needed for the MLP and the CNNs (resnet50 and the "
            "transfer bases resize inside the model)."
        )
    else:
        originals = dims["original_sizes"]
        lines.append(
            f"The images came in {originals['distinct']} sizes (heights {originals['height_range'][0]}-"
            f"{originals['height_range'][1]}, widths {originals['width_range'][0]}-{originals['width_range'][1]}) "
            f"and were resized to {h}x{w}; pass --image-size to choose the size, and check that the "
            "aspect ratio of the objects survives."
        )
    free = dims["margin_all"]
    box = dims["box_median"]
    if any(free.values()):
        lines.append(
            "Border that no image uses: "
            + ", ".join(f"{v} {k}" for k, v in free.items() if v)
            + f" rows/columns; cropping it loses nothing, yet the median object spans {box['height']:.0f}x"
            f"{box['width']:.0f} of {h}x{w}, so a CNN gains little from cropping"
            + (" and shifts must stay small." if dims["touching_border"] > 0.5 else ".")
        )
    else:
        lines.append(
            f"No border is empty in every image ({dims['touching_border']:.0%} of the objects touch a border; the "
            f"median object spans {box['height']:.0f}x{box['width']:.0f} of {h}x{w}): do not crop."
        )
    near = numbers["duplicates"]["near"]
    exact = numbers["duplicates"]["exact"]
    leaks = len(set(exact["test_images_with_a_train_copy"]) | set(near["test_images_with_a_train_twin"]))
    lines.append(
        f"Duplicates: {exact['groups']} groups of byte-identical images ({exact['groups_across_splits']} across splits) "
        f"and {near['pairs']} near-duplicate pairs (RMS difference <= {near['rms_threshold']}), "
        f"{near['pairs_train_test']} of them between train and test"
        + (
            f"; {leaks} test images have a byte-identical or near-identical twin in the training split, so the test "
            "accuracy is slightly optimistic: drop them from the test split for an unbiased score (their indices "
            "are in eda.json)."
            if leaks
            else "; no train/test leakage to correct for."
        )
    )
    neighbours = numbers["neighbours"]
    pairs = neighbours["overlapping_pairs"][:3]
    if pairs:
        lines.append(
            f"Overlapping classes (share of {neighbours['k']} nearest neighbours in PCA space taken from the other "
            "class): "
            + "; ".join(f"{p['classes'][0]} / {p['classes'][1]} {_percent(p['neighbour_share'])}" for p in pairs)
            + f". Expect these pairs to dominate the confusion matrix; leave-one-out k-NN accuracy in this space is "
            f"{neighbours['knn_accuracy']:.1%}."
        )
    lines.append(
        f"Likely label errors or ambiguous images: {neighbours['suspects']} "
        f"({neighbours['suspects'] / max(1, sum(numbers['classes']['balance'][s]['examples'] for s in numbers['classes']['balance'])):.2%}) "
        f"have at least {neighbours['share']:.0%} of their neighbours in one other class (grid below); they cap "
        "the accuracy any model can reach on this labelling."
    )
    flat = numbers["anomalies"]["blank_saturated"]
    if flat["blank"] or flat["saturated"]:
        lines.append(
            f"{flat['blank']} nearly blank and {flat['saturated']} saturated images: look at them and remove "
            "them if they are broken."
        )
    classifier = numbers["features"]["classifier"]["results"]
    raw, eng, both = (classifier[k]["val_accuracy"] for k in ("raw pixels", "HOG + Sobel", "both"))
    lines.append(
        f"Hand-made features: logistic regression reaches {raw:.1%} on raw pixels, {eng:.1%} on HOG + Sobel "
        f"and {both:.1%} on both (validation). "
        + (
            "Edge and gradient features carry information a linear model cannot build from pixels; a CNN "
            "learns such filters itself, an MLP on raw pixels has to approximate them."
            if both > raw + 0.005
            else "Engineered features add little over raw pixels here."
        )
    )
    augmentation = numbers["augmentation"]["augmentations"]
    safe = [k for k, v in augmentation.items() if v["label_preserving"] == "yes"]
    unsafe = [k for k, v in augmentation.items() if v["label_preserving"] == "no"]
    unknown = [k for k, v in augmentation.items() if v["label_preserving"] in ("unknown", "mostly")]
    lines.append(
        f"Augmentations that keep the label: {', '.join(safe)}"
        + (f"; not: {', '.join(unsafe)}" if unsafe else "")
        + (f"; check by eye: {', '.join(unknown)}" if unknown else "")
        + ". `--augment` applies flip and shift"
        + (" — for this dataset train without --augment or drop the flip." if "flip" in unsafe else ".")
    )
    pixel = numbers["pixels"]["pixel"]
    correlation = numbers["correlation"]
    components = correlation["pca_components_for"]
    kept = components["0.95"] / correlation["pca_dimensions"]
    lines.append(
        "Preprocessing for the MLP: flatten and scale to [0, 1] (`--normalization unit`) or standardise with "
        f"the training mean {pixel['mean'][0]:.3f} and std {pixel['std'][0]:.3f} (`--normalization standardize`); "
        f"{components['0.95']} of {correlation['pca_dimensions']} PCA components keep 95% of the variance, so "
        + (
            "the pixels are highly redundant and a first layer of a few hundred units loses little."
            if kept < 0.34
            else "the pixels carry fairly independent information: keep the first layer at least as wide as the input."
        )
    )
    below, neighbour = correlation["distance_below_0.5"], correlation["neighbour_correlation"]
    if neighbour is not None and neighbour >= 0.5:
        local = f"neighbouring pixels correlate {neighbour:.2f} on average" + (
            f" and the correlation falls below 0.5 at a distance of {below} pixels" if below else ""
        )
    elif neighbour is not None:
        local = f"even neighbouring pixels correlate only {neighbour:.2f} on average (little local redundancy)"
    else:
        local = "pixel correlation could not be measured"
    lines.append(
        f"For the CNN: keep the 2-D layout and the same scaling; {local}; small convolution kernels stacked in "
        "a few layers are built for such local structure; add the label-preserving augmentations against "
        "over-fitting."
    )
    return lines
