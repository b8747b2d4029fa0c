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
    """Runs every section of the EDA on ``dataset`` (a ``data.Dataset``) and ``splits``, in ``SECTIONS``'
    order, each timed.

    Args:
        progress: Called with one line before and after each section (``None``: silent).
    """
    say = progress or (lambda text: None)
    sections = _Sections(dataset, splits, config)
    numbers: Dict[str, Any] = {}
    arrays: Dict[str, Any] = {}
    timings: Dict[str, float] = {}
    for position, (key, title) in enumerate(SECTIONS, 1):
        say(f"[{position}/{len(SECTIONS)}] {title} ...")
        started = time.perf_counter()
        result = getattr(sections, key)()
        timings[key] = time.perf_counter() - started
        numbers[key], arrays[key] = result["numbers"], result.get("arrays", {})
        sections.arrays = arrays
        say(f"[{position}/{len(SECTIONS)}] {title}: {timings[key]:.1f} s")
    return {"numbers": numbers, "arrays": arrays, "timings": timings}


class _Sections:
    """One method per section of ``SECTIONS``, each returning ``{"numbers": ..., "arrays": ...}``; the grey
    PCA space is computed once, for the first section that needs it."""

    def __init__(self, dataset, splits, config: EdaConfig):
        self.dataset, self.splits, self.config = dataset, splits, config
        self.x, self.y = dataset.pooled()
        self.names = list(dataset.class_names)
        self.split_indices = {"train": splits.train, "val": splits.val, "test": splits.test}
        self.split_names = stats.split_of(len(self.x), self.split_indices)
        self.train = splits.train
        self.arrays: Dict[str, Any] = {}  # the sections' arrays so far (the augmentation check reads the margins)
        self._space: Dict[str, Any] = {}
        self._raw_model = None

    def space(self) -> Dict[str, Any]:
        if not self._space:
            vectors, grid = stats.grey_vectors(self.x, self.config.max_side)
            pca = stats.fit_pca(vectors[self.train], self.config.seed)
            self._space = dict(vectors=vectors, grid=grid, pca=pca, projected=pca.transform(vectors).astype(np.float32))
        return self._space

    def classes(self):
        return {"numbers": stats.class_distribution(self.y, self.names, self.split_indices)}

    def pixels(self):
        return stats.image_statistics(self.x, self.y, self.names, self.train)

    def dimensions(self):
        return stats.dimensions(self.x, self.y, self.names, self.train, self.dataset.original_sizes)

    def samples(self):
        config = self.config
        chosen = stats.class_samples(self.x, self.y, self.names, self.train, config.samples_per_class, config.seed)
        return {"numbers": {"indices": chosen["indices"]}, "arrays": chosen}

    def correlation(self):
        space = self.space()
        return stats.correlation(space["vectors"][self.train], space["grid"], space["pca"], seed=self.config.seed)

    def duplicates(self):
        space, config = self.space(), self.config
        exact = stats.exact_duplicates(self.x, self.y, self.split_names, self.names, top=config.top)
        near = stats.near_duplicates(
            space["vectors"],
            space["projected"][:, : config.duplicate_components].astype(np.float64),
            self.y,
            self.split_names,
            self.names,
            rms=config.near_duplicate_rms,
            group_of=exact["arrays"]["group_of"],
        )
        return {
            "numbers": {"exact": exact["numbers"], "near": near["numbers"]},
            "arrays": {"exact": exact["arrays"], "near": near["arrays"]},
        }

    def anomalies(self):
        config = self.config
        flat = stats.blank_and_saturated(self.x, top=config.top)
        far = stats.outliers(
            self.space()["vectors"], self.y, self.train, self.names, threshold=config.outlier_z, top=config.top
        )
        return {
            "numbers": {"blank_saturated": flat["numbers"], "outliers": far["numbers"]},
            "arrays": {"blank_saturated": flat["arrays"], "outliers": far["arrays"]},
        }

    def neighbours(self):
        config = self.config
        return stats.neighbours(
            self.space()["projected"][:, : config.neighbour_components],
            self.y,
            self.names,
            k=config.neighbours,
            share=config.label_error_share,
            top=config.top,
        )

    def features(self):
        space, config = self.space(), self.config
        grey = space["vectors"].reshape(len(self.x), *space["grid"])
        edges = features.edge_statistics(grey, self.y, self.names)
        compared = features.feature_comparison(
            self.x, self.y, self.train, self.splits.val, config.classifier_examples, config.max_side, config.seed
        )
        self._raw_model = compared["arrays"]["raw_model"]
        return {
            "numbers": {"edges": edges["numbers"], "classifier": compared["numbers"]},
            "arrays": {"edges": edges["arrays"]},
        }

    def augmentation(self):
        val = self.splits.val
        return features.augmentation_check(
            self.x,
            self.y,
            self.names,
            val,
            self._raw_model,
            self.dataset.name,
            self.arrays["dimensions"]["margins"][val],
            max_side=self.config.max_side,
            seed=self.config.seed,
        )

    def embedding(self):
        config = self.config
        return stats.embedding(
            self.space()["projected"][:, :50], self.y, self.train, tsne_samples=config.tsne_samples, seed=config.seed
        )


# ----------------------------------------------------------------------------- implications


def _percent(value: float) -> str:
    return f"{value:.1%}" if value < 0.1 else f"{value:.0%}"


def implications(numbers: Dict[str, Any], class_names) -> List[str]:
    """What the numbers mean for training, one sentence each."""
    topics = (
        _balance_lines,
        _size_lines,
        _border_lines,
        _duplicate_lines,
        _neighbour_lines,
        _blank_lines,
        _feature_lines,
        _augmentation_lines,
        _mlp_lines,
        _cnn_lines,
    )
    return [line for topic in topics for line in topic(numbers)]


def _balance_lines(numbers: Dict[str, Any]) -> List[str]:
    """The implication of class balance."""
    lines: List[str] = []
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
    return lines


def _size_lines(numbers: Dict[str, Any]) -> List[str]:
    """The implication of image sizes."""
    lines: List[str] = []
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
    return lines


def _border_lines(numbers: Dict[str, Any]) -> List[str]:
    """The implication of empty borders and object extent."""
    lines: List[str] = []
    dims = numbers["dimensions"]
    h, w = dims["stored_shape"][:2]
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
    return lines


def _duplicate_lines(numbers: Dict[str, Any]) -> List[str]:
    """The implication of duplicates and train/test leakage."""
    lines: List[str] = []
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
    return lines


def _neighbour_lines(numbers: Dict[str, Any]) -> List[str]:
    """The implication of overlapping classes and likely label errors."""
    lines: List[str] = []
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
    return lines


def _blank_lines(numbers: Dict[str, Any]) -> List[str]:
    """The implication of blank and saturated images."""
    lines: List[str] = []
    flat = numbers["anomalies"]["blank_saturated"]
    if flat["blank"] or flat["saturated"]:
        lines.append(
            f"{flat['blank']} nearly blank and {flat['saturated']} saturated images: look at them and remove "
            "them if they are broken."
        )
    return lines


def _feature_lines(numbers: Dict[str, Any]) -> List[str]:
    """The implication of hand-made features."""
    lines: List[str] = []
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
    return lines


def _augmentation_lines(numbers: Dict[str, Any]) -> List[str]:
    """The implication of augmentations."""
    lines: List[str] = []
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
    return lines


def _mlp_lines(numbers: Dict[str, Any]) -> List[str]:
    """The implication of preprocessing for the MLP."""
    lines: List[str] = []
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
    return lines


def _cnn_lines(numbers: Dict[str, Any]) -> List[str]:
    """The implication of the CNN."""
    lines: List[str] = []
    correlation = numbers["correlation"]
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
