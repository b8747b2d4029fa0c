"""The EDA page: ``eda.json`` (every number), ``figures/`` and ``eda.md`` + ``eda.html`` through the
report's one renderer (``pages.blocks``), for any dataset source.

``class_blocks`` and ``pixel_blocks`` describe the class distribution, pixel statistics and samples (drawn by
``eda_plots.overview_figures``); the run report's data section calls the same functions.

The folder is built under a hidden ``.NAME.partial-PID`` name beside its destination and renamed when
complete, so a kill or a full disk never leaves a page that looks finished but is not.
"""

from __future__ import annotations

import datetime
import os
import time
from typing import Any, Callable, Dict, List, Optional

from tfcourse import data, rundir
from tfcourse.config import EdaConfig, to_dict
from tfcourse.exploration import analysis, stats
from tfcourse.pages import eda_plots
from tfcourse.pages.blocks import figure, heading, machine_description, paragraph, table, write_pages

EDA_JSON = "eda.json"
EDA_HTML = "eda.html"
EDA_MD = "eda.md"
FIGURES_DIR = "figures"


def class_blocks(classes: Dict[str, Any], figures: Dict[str, str]) -> list:
    """Counts and shares per class and split, the balance verdict, the bar chart (``class_distribution``)."""
    counts = classes["counts"]
    names = list(counts["train"])
    splits = list(counts)
    return [
        table(
            ["class"] + [f"{s} (share)" for s in splits],
            [[n] + [f"{counts[s][n]} ({classes['shares'][s][n]:.1%})" for s in splits] for n in names]
            + [["all"] + [str(classes["balance"][s]["examples"]) for s in splits]],
        ),
        table(
            ["split", "largest / smallest", "entropy / uniform", "verdict"],
            [
                [
                    s,
                    b["max_min_ratio"],
                    b["relative_entropy"],
                    ("balanced" if b["balanced"] else "imbalanced")
                    + f" (ratio {'<=' if b['balanced'] else '>'} {classes['balanced_ratio']})",
                ]
                for s, b in classes["balance"].items()
            ],
        ),
        figure(figures["class_counts"], "Examples per class and split"),
    ]


def pixel_blocks(pixels: Dict[str, Any], figures: Dict[str, str]) -> list:
    """Pixel mean/std, per-class brightness and contrast, their box plots and the histogram
    (``image_statistics``' numbers)."""
    return [
        paragraph(
            f"Training pixels (0..1): mean {', '.join(f'{v:.3f}' for v in pixels['pixel']['mean'])}, "
            f"std {', '.join(f'{v:.3f}' for v in pixels['pixel']['std'])}."
        ),
        table(
            ["class", "brightness mean", "brightness median", "contrast mean", "contrast median"],
            [
                [n, v["brightness_mean"], v["brightness_quartiles"][1], v["contrast_mean"], v["contrast_quartiles"][1]]
                for n, v in pixels["per_class"].items()
            ],
        ),
        figure(figures["brightness_contrast"], "Brightness (mean pixel) and contrast (pixel std) per training image"),
        figure(figures["pixel_histogram"], "Pixel values of the training images"),
    ]


# ----------------------------------------------------------------------------- the page


def _optional(figures, key, caption) -> list:
    return [figure(figures[key], caption)] if key in figures else []


def build_blocks(result: Dict[str, Any], figures: Dict[str, str], header: Dict[str, Any]) -> list:
    numbers, timings = result["numbers"], result["timings"]
    names = list(numbers["classes"]["counts"]["train"])
    total = sum(timings.values())
    blocks = [
        heading(1, f"Exploratory data analysis: {header['dataset']}"),
        paragraph(
            f"{header['source']}; {header['examples']} images {header['shape']}, {len(names)} classes; "
            f"{header['split']} split {header['split_sizes']} (seed {header['seed']}). "
            f"Written {header['date']} on {header['machine']} in {total:.0f} s "
            f"(data loading {header['load_seconds']:.1f} s not included)."
        ),
        heading(2, "Implications"),
    ]
    blocks += [paragraph(line) for line in result["implications"]]
    blocks += [heading(2, "1. Class distribution")] + class_blocks(numbers["classes"], figures)
    blocks += [heading(2, "2. Image statistics")] + pixel_blocks(numbers["pixels"], figures)
    blocks.append(figure(figures["class_images"], "Mean, standard-deviation and mean Sobel edge image per class"))
    for section in (
        _extent_blocks(numbers, figures, names),
        _sample_blocks(numbers, figures, names),
        _correlation_blocks(numbers, figures, names),
        _duplicate_blocks(numbers, figures, names),
        _anomaly_blocks(numbers, figures, names),
        _label_error_blocks(numbers, figures, names),
        _feature_blocks(numbers, figures, names),
        _augmentation_blocks(numbers, figures, names),
        _embedding_blocks(numbers, figures, names),
        _timing_blocks(timings),
    ):
        blocks += section
    return blocks


def _extent_blocks(numbers: Dict[str, Any], figures: Dict[str, str], names: List[str]) -> list:
    """The EDA page's dimensions and object extent."""
    blocks: list = []
    dims = numbers["dimensions"]
    h, w = dims["stored_shape"][:2]
    blocks += [heading(2, "3. Dimensions and object extent")]
    if dims["original_sizes"]:
        o = dims["original_sizes"]
        sizes_text = (
            f"Before resizing the images came in {o['distinct']} sizes: "
            + ", ".join(f"{s['height']}x{s['width']} ({s['images']})" for s in o["most_common"])
            + f"; stored as {h}x{w}."
        )
    else:
        sizes_text = f"Every image is stored as {h}x{w}x{dims['stored_shape'][2]} (the source has one size)."
    blocks += [
        paragraph(
            sizes_text
            + f" Background value {dims['background']} (the border's most common value); a pixel is object when "
            f"it differs by more than {dims['tolerance']} of 255. {dims['empty_images']} images have no object pixel."
        ),
        table(
            ["", "top", "bottom", "left", "right"],
            [
                ["empty in every image (crop loses nothing)"]
                + [dims["margin_all"][k] for k in ("top", "bottom", "left", "right")],
                ["empty in 95% of images"] + [dims["margin_p5"][k] for k in ("top", "bottom", "left", "right")],
            ],
        ),
        paragraph(
            f"Median bounding box {dims['box_median']['height']:.0f}x{dims['box_median']['width']:.0f} "
            f"({dims['box_area_median']:.0%} of the image); median occupied share {dims['occupied_median']:.0%}; "
            f"{dims['touching_border']:.1%} of the objects touch a border."
        ),
        table(
            ["class", "median box height", "median box width", "median occupied share"],
            [
                [n, v["box_height_median"], v["box_width_median"], v["occupied_median"]]
                for n, v in dims["per_class"].items()
            ],
        ),
        figure(figures["occupied"], "Share of each image that is object, per class"),
    ]
    return blocks


def _sample_blocks(numbers: Dict[str, Any], figures: Dict[str, str], names: List[str]) -> list:
    """The EDA page's samples."""
    blocks: list = []
    blocks += [
        heading(2, "4. Samples"),
        figure(figures["class_samples"], "Mean image (first column) and random training images per class (seeded)"),
    ]
    return blocks


def _correlation_blocks(numbers: Dict[str, Any], figures: Dict[str, str], names: List[str]) -> list:
    """The EDA page's pixel correlation and PCA."""
    blocks: list = []
    corr = numbers["correlation"]
    comps = corr["pca_components_for"]
    blocks += [
        heading(2, "5. Pixel correlation and PCA"),
        paragraph(
            f"Over {corr['images_used']} training images ({corr['grid'][0]}x{corr['grid'][1]} grey pixels; "
            f"{corr['constant_pixels']} pixels constant, left out): neighbouring pixels correlate "
            f"{corr['neighbour_correlation']:.2f} on average, falling below 0.5 at distance "
            f"{corr['distance_below_0.5']} and below 0.2 at {corr['distance_below_0.2']}. PCA needs {comps['0.9']}, "
            f"{comps['0.95']} and {comps['0.99']} of {corr['pca_dimensions']} components for 90, 95 and 99% of the "
            f"variance; the first two explain {corr['pca_first_ratios'][0]:.1%} and {corr['pca_first_ratios'][1]:.1%}."
        ),
        figure(
            figures["correlation"], "Correlation matrix, correlation by pixel distance, cumulative explained variance"
        ),
    ]
    return blocks


def _duplicate_blocks(numbers: Dict[str, Any], figures: Dict[str, str], names: List[str]) -> list:
    """The EDA page's duplicates."""
    blocks: list = []
    exact, near = numbers["duplicates"]["exact"], numbers["duplicates"]["near"]
    blocks += [
        heading(2, "6. Noise and anomalies"),
        heading(3, "Duplicates"),
        paragraph(
            f"Exact (byte-identical, by hashing every image): {exact['groups']} groups holding "
            f"{exact['images_in_groups']} images; {exact['groups_across_splits']} groups span splits "
            f"({exact['groups_train_test']} train and test); {exact['groups_with_conflicting_labels']} carry "
            f"different labels. Near duplicates (RMS pixel difference <= {near['rms_threshold']}, found by a k-d "
            f"tree over the first PCA components, {near['candidates_checked']} candidate pairs measured on all "
            f"pixels): {near['pairs']} pairs over {near['images_involved']} images, "
            f"{near['pairs_with_different_labels']} with different labels. Test images with a byte-identical copy "
            f"in the training split: {len(exact['test_images_with_a_train_copy'])}; with a near-identical twin "
            f"there: {len(near['test_images_with_a_train_twin'])}."
        ),
        table(["splits", "near-duplicate pairs"], [[k, v] for k, v in near["by_splits"].items()] or [["-", 0]]),
    ]
    if near["listed"]:
        blocks.append(
            table(
                ["index", "split", "label", "index", "split", "label", "rms"],
                [
                    [
                        p["indices"][0],
                        p["splits"][0],
                        p["labels"][0],
                        p["indices"][1],
                        p["splits"][1],
                        p["labels"][1],
                        p["rms"],
                    ]
                    for p in near["listed"][:20]
                ],
            )
        )
    blocks += _optional(
        figures, "near_duplicates", "Near-duplicate pairs (dataset index, split, label, RMS difference)"
    )
    blocks += _optional(figures, "exact_duplicates", "Byte-identical images")
    return blocks


def _anomaly_blocks(numbers: Dict[str, Any], figures: Dict[str, str], names: List[str]) -> list:
    """The EDA page's blank, saturated and outlying images."""
    blocks: list = []
    flat, far = numbers["anomalies"]["blank_saturated"], numbers["anomalies"]["outliers"]
    blocks += [
        heading(3, "Blank and saturated images"),
        paragraph(
            f"{flat['blank']} nearly blank images (pixel std below {flat['blank_std_threshold']} of the range) and "
            f"{flat['saturated']} saturated ones (more than {flat['saturated_share_threshold']:.0%} of the pixels at "
            f"250 or above). Lowest pixel std: "
            + ", ".join(f"#{e['index']} {e['std']:.3f}" for e in flat["lowest_std"])
            + "."
        ),
    ]
    blocks += _optional(figures, "blank_saturated", "Nearly blank and saturated images")
    blocks += [
        heading(3, "Outliers"),
        paragraph(
            f"{far['outliers']} images lie farther from their class's mean training image than a robust z-score of "
            f"{far['threshold']} (median and MAD of the class's distances): "
            + ", ".join(f"{k} {v}" for k, v in far["per_class"].items())
            + "."
        ),
    ]
    blocks += _optional(figures, "outliers", "The farthest from their class mean")
    return blocks


def _label_error_blocks(numbers: Dict[str, Any], figures: Dict[str, str], names: List[str]) -> list:
    """The EDA page's likely label errors and class overlap."""
    blocks: list = []
    nb = numbers["neighbours"]
    blocks += [
        heading(3, "Likely label errors"),
        paragraph(
            f"{nb['suspects']} images have at least {nb['share']:.0%} of their {nb['k']} nearest neighbours (PCA-"
            f"{nb['dimensions']} space, scikit-learn's NearestNeighbors) in one other class: "
            + ", ".join(f"{k} {v}" for k, v in nb["suspects_per_class"].items())
            + f". Leave-one-out {nb['k']}-NN accuracy {nb['knn_accuracy']:.1%}. Each is a wrong label or an image "
            "that looks like the other class; the grid shows the most certain."
        ),
    ]
    if nb["listed"]:
        blocks.append(
            table(
                ["index", "label", "neighbours say", "share"],
                [[s["index"], s["label"], s["neighbours_say"], s["share"]] for s in nb["listed"]],
            )
        )
    blocks += _optional(figures, "label_errors", "Likely label errors")
    blocks += [
        heading(3, "Class overlap"),
        table(
            ["class"] + names,
            [[n] + [f"{v:.1%}" for v in nb["confusion"][n]] for n in names],
        ),
        paragraph(
            "Row: a class; columns: the share of its images' nearest neighbours in each class. Most overlapping: "
            + "; ".join(
                f"{p['classes'][0]} / {p['classes'][1]} {p['neighbour_share']:.1%}" for p in nb["overlapping_pairs"]
            )
            + "."
        ),
    ]
    return blocks


def _feature_blocks(numbers: Dict[str, Any], figures: Dict[str, str], names: List[str]) -> list:
    """The EDA page's hand-made features."""
    blocks: list = []
    feats = numbers["features"]
    classifier = feats["classifier"]
    blocks += [
        heading(2, "7. Feature engineering"),
        paragraph(
            f"Sobel edge magnitude (SciPy's ndimage.sobel; an edge is a magnitude above {feats['edges']['threshold']}, "
            "pixels in 0..1) and HOG (scikit-image; 9 orientations, 4x4 cells, 2x2 blocks). Edge density per class: "
            + ", ".join(f"{k} {v:.1%}" for k, v in feats["edges"]["edge_density"].items())
            + "."
        ),
        paragraph(
            f"Logistic regression (scikit-learn, lbfgs, C=1, at most 100 iterations) fitted on {classifier['train_examples']} "
            f"training images (a stratified subsample), scored on the {classifier['val_examples']} validation images:"
        ),
        table(
            ["inputs", "features", "validation accuracy", "training accuracy", "iterations", "seconds"],
            [
                [k, v["features"], v["val_accuracy"], v["train_accuracy"], v["iterations"], v["seconds"]]
                for k, v in classifier["results"].items()
            ],
        ),
    ]
    return blocks


def _augmentation_blocks(numbers: Dict[str, Any], figures: Dict[str, str], names: List[str]) -> list:
    """The EDA page's augmentations."""
    blocks: list = []
    aug = numbers["augmentation"]
    blocks += [
        heading(2, "8. Augmentation preview"),
        paragraph(
            f"The same validation images under each augmentation (Keras preprocessing layers, as the training "
            f"pipeline applies them; `--augment` uses flip and shift). Raw-pixel logistic regression on "
            f"{aug['scored_examples']} validation images: {aug['clean_raw_accuracy']:.1%} unchanged; the column "
            "below is its accuracy on the same images augmented (how far each moves the images from what a model "
            "trained without it has seen; not a measure of label safety)."
        ),
        table(
            ["augmentation", "what", "in --augment", "keeps the label", "why", "raw-pixel accuracy"],
            [
                [
                    k,
                    v["description"],
                    "yes" if v["in_pipeline"] else "no (preview)",
                    v["label_preserving"],
                    v["reason"],
                    v["raw_accuracy"],
                ]
                for k, v in aug["augmentations"].items()
            ],
        ),
        figure(figures["augmentations"], "Each augmentation on the same validation images"),
    ]
    return blocks


def _embedding_blocks(numbers: Dict[str, Any], figures: Dict[str, str], names: List[str]) -> list:
    """The EDA page's embedding."""
    blocks: list = []
    emb = numbers["embedding"]
    blocks += [
        heading(2, "9. Embedding"),
        paragraph(
            f"PCA's first two components of {emb['pca_points']} training images, and t-SNE (scikit-learn, perplexity "
            f"{emb['tsne_perplexity']:.0f}, PCA initialisation, KL divergence {emb['tsne_kl_divergence']:.2f}) of a "
            f"stratified {emb['tsne_points']}, computed from the first {emb['tsne_input_dimensions']} PCA components."
        ),
        figure(figures["embedding"], "PCA and t-SNE, coloured by class"),
    ]
    return blocks


def _timing_blocks(timings: Dict[str, float]) -> list:
    """The EDA page's time per section."""
    blocks: list = []
    blocks += [
        heading(2, "Time per section"),
        table(
            ["section", "seconds"],
            [[dict(analysis.SECTIONS)[k], v] for k, v in timings.items()] + [["all sections", sum(timings.values())]],
        ),
    ]
    return blocks


def default_output_dir(dataset: str) -> str:
    return os.path.join("runs", f"eda-{rundir.safe_name(dataset)}")


def check_eda_folder(out_dir: str) -> None:
    """An EDA's ``--output-dir`` is new, empty or an earlier EDA (its ``eda.json``), in a writable place."""
    rundir.check_writable_folder(os.path.dirname(os.path.abspath(out_dir)), "--output-dir")
    if os.path.exists(out_dir) and not os.path.isfile(os.path.join(out_dir, EDA_JSON)):
        if not os.path.isdir(out_dir) or os.listdir(out_dir):
            raise ValueError(
                f"--output-dir {out_dir} exists and is not an EDA folder (no {EDA_JSON}); pass a new or empty folder."
            )


def eda_paths(out_dir: str) -> Dict[str, str]:
    """Where an EDA folder's page, Markdown and numbers are."""
    return {
        "html": os.path.join(out_dir, EDA_HTML),
        "markdown": os.path.join(out_dir, EDA_MD),
        "json": os.path.join(out_dir, EDA_JSON),
        "out_dir": out_dir,
    }


def write_eda(
    config: EdaConfig,
    download: bool = True,
    progress: Optional[Callable[[str], None]] = None,
    command: Optional[List[str]] = None,
) -> Dict[str, Any]:
    """Loads ``config.data``, runs every EDA section and writes the folder ``config.output_dir``.

    Returns:
        ``{"html", "markdown", "json": paths, "implications": [...], "timings": {...}, "out_dir": path}``.
    """
    say = progress or (lambda text: None)
    out_dir = config.output_dir or default_output_dir(config.data.dataset)
    check_eda_folder(out_dir)
    started = time.perf_counter()
    say(f"loading {config.data.dataset} ...")
    dataset, splits = data.load_splits(config.data, config.seed, download=download)
    load_seconds = time.perf_counter() - started
    x, y = dataset.pooled()
    say(f"{len(x)} images {'x'.join(map(str, x.shape[1:]))}, {dataset.num_classes} classes, in {load_seconds:.1f} s")
    result = analysis.analyse(dataset, splits, config, progress=say)
    result["implications"] = analysis.implications(result["numbers"], dataset.class_names)

    header = {
        "dataset": config.data.dataset,
        "source": dataset.source,
        "examples": int(len(x)),
        "shape": "x".join(map(str, x.shape[1:])),
        "split": splits.protocol,
        "split_sizes": splits.sizes(),
        "seed": config.seed,
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": machine_description(),
        "load_seconds": load_seconds,
        "command": command,
    }
    with rundir.staged_folder(out_dir) as partial:  # an earlier EDA of the same folder is replaced as a whole
        os.makedirs(os.path.join(partial, FIGURES_DIR))
        say("figures ...")
        fig = lambda name: os.path.join(partial, FIGURES_DIR, name)  # noqa: E731
        figures_started = time.perf_counter()
        figures = eda_plots.draw_figures(
            result,
            x,
            y,
            dataset.class_names,
            stats.split_of(len(x), {"train": splits.train, "val": splits.val, "test": splits.test}),
            fig,
        )
        header["figure_seconds"] = time.perf_counter() - figures_started
        rundir.write_json(
            os.path.join(partial, EDA_JSON),
            {
                "header": header,
                "config": to_dict(config),
                "timings": result["timings"],
                "implications": result["implications"],
                "sections": result["numbers"],
            },
        )
        blocks = build_blocks(result, figures, header)
        write_pages(blocks, partial, f"tfcourse EDA: {config.data.dataset}", EDA_HTML, EDA_MD)
    say(f"figures and page: {header['figure_seconds']:.1f} s")
    return {
        **eda_paths(out_dir),
        "implications": result["implications"],
        "timings": result["timings"],
        "load_seconds": load_seconds,
        "figure_seconds": header["figure_seconds"],
    }
