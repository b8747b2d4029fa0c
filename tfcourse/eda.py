"""``python -m tfcourse.eda``: the exploratory data analysis of a dataset and its split, written as
``eda.json``, ``figures/``, ``eda.md`` and ``eda.html`` (``tfcourse.pages.eda_page``).

A thin argparse layer; the data flags are those of ``tfcourse.train``. Bad flags and bad input exit
with status 2 and a message saying what was wrong; the folder appears only when it is complete.
"""

from __future__ import annotations

import argparse
import sys
from typing import List, Optional

from tfcourse import machine
from tfcourse.cli import (
    TABLE_DATA_FLAGS,
    HelpFormatter,
    add_data_arguments,
    add_table_arguments,
    cli_errors,
    data_config_from_args,
    fraction,
    is_table,
    positive_float,
    positive_int,
    refuse_given,
    refuse_table_flags,
    table_data_config_from_args,
)
from tfcourse.config import EdaConfig

DEFAULTS = EdaConfig()


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m tfcourse.eda",
        description="Exploratory data analysis of an image dataset: class balance, pixel statistics, object "
        "extent, samples, pixel correlation and PCA, duplicates and train/test leakage, blank and outlying "
        "images, likely label errors, edge and HOG features against raw pixels, augmentations, PCA and t-SNE, "
        "and what follows for training; or of a table (--dataset csv:PATH --target COLUMN, or seattle_weather): "
        "column kinds, missing values, the target's balance, each feature by class. Writes eda.json, figures/, "
        "eda.md and eda.html.",
        formatter_class=HelpFormatter,
    )
    add_data_arguments(parser, pipeline=False, normalization=False, tables=True)
    add_table_arguments(parser)
    parser.add_argument("--seed", type=int, default=DEFAULTS.seed, help="fixes the split, every subsample and t-SNE")
    parser.add_argument(
        "--output-dir", default=None, help="the EDA folder (default runs/eda-<dataset>); a rerun replaces it"
    )
    parser.add_argument(
        "--samples-per-class",
        type=positive_int,
        default=DEFAULTS.samples_per_class,
        help="images per class in the samples grid",
    )
    parser.add_argument(
        "--max-side",
        type=positive_int,
        default=DEFAULTS.max_side,
        help="larger images are shrunk (grey, block mean) to at most this side for correlation, PCA, distances "
        "and features",
    )
    parser.add_argument(
        "--near-duplicate-rms",
        type=positive_float,
        default=DEFAULTS.near_duplicate_rms,
        help="two images are near duplicates when their RMS pixel difference (pixels 0..1) is at most this",
    )
    parser.add_argument(
        "--neighbours", type=positive_int, default=DEFAULTS.neighbours, help="k of the nearest-neighbour label check"
    )
    parser.add_argument(
        "--label-error-share",
        type=fraction,
        default=DEFAULTS.label_error_share,
        help="flag an image when at least this share of its neighbours carries one other label",
    )
    parser.add_argument(
        "--tsne-samples",
        type=positive_int,
        default=DEFAULTS.tsne_samples,
        help="training images in the t-SNE embedding",
    )
    parser.add_argument(
        "--classifier-examples",
        type=positive_int,
        default=DEFAULTS.classifier_examples,
        help="training images the logistic regressions are fitted on (a stratified subsample)",
    )
    parser.add_argument(
        "--check",
        action="store_true",
        help="open eda.html in headless Chromium; fail unless every image loads without console errors",
    )
    parser.add_argument("--quiet", action="store_true", help="no progress output")
    return parser


# The image analysis's own flags and image data flags: a table refuses them.
IMAGE_EDA_FLAGS = (
    "data_dir",
    "image_size",
    "classes",
    "train_limit",
    "samples_per_class",
    "max_side",
    "near_duplicate_rms",
    "neighbours",
    "label_error_share",
    "tsne_samples",
    "classifier_examples",
)


def config_from_args(args: argparse.Namespace) -> EdaConfig:
    return EdaConfig(
        samples_per_class=args.samples_per_class,
        max_side=args.max_side,
        near_duplicate_rms=args.near_duplicate_rms,
        neighbours=args.neighbours,
        label_error_share=args.label_error_share,
        tsne_samples=args.tsne_samples,
        classifier_examples=args.classifier_examples,
        seed=args.seed,
        output_dir=args.output_dir,
        data=data_config_from_args(args),
    )


def main(argv: Optional[List[str]] = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    with cli_errors(parser):
        if is_table(args.dataset):
            return _table_main(parser, args, argv)
        refuse_table_flags(parser, args, TABLE_DATA_FLAGS)
        config = config_from_args(args)
        machine.load_tensorflow()
        from tfcourse.pages import browser, eda_page  # TensorFlow, scikit-learn, matplotlib load after the flags

        if args.check:
            browser.require_available()  # before a minute of work, not after it

        _write_and_show(
            lambda say, command: eda_page.write_eda(
                config, download=not args.no_download, progress=say, command=command
            ),
            args,
            argv,
            browser,
        )
    return 0


def _write_and_show(write, args: argparse.Namespace, argv, browser) -> None:
    """Runs ``write(progress, command)`` (an EDA page writer), prints what follows for training and the
    page's paths, and with ``--check`` opens it in headless Chromium. A full disk or an unwritable
    folder becomes a ``ValueError`` with the fix (the page writers leave no partial folder behind)."""
    say = (lambda text: None) if args.quiet else (lambda text: print(f"tfcourse.eda: {text}", flush=True))
    command = ["python", "-m", "tfcourse.eda"] + list(sys.argv[1:] if argv is None else argv)
    try:
        paths = write(say, command)
    except OSError as error:
        raise ValueError(
            f"cannot write {error.filename or 'the EDA folder'} ({error.strerror}); free space or pass another "
            "--output-dir, then run the same command again."
        ) from None
    for line in paths["implications"]:
        print(f"- {line}")
    if args.check:
        browser.require_clean_page(paths["html"], "tfcourse.eda")
    print(paths["html"])
    print(paths["markdown"])


def _table_main(parser: argparse.ArgumentParser, args: argparse.Namespace, argv) -> int:
    refuse_given(parser, args, IMAGE_EDA_FLAGS, f"for {args.dataset}")
    data = table_data_config_from_args(args)
    from tfcourse.pages import browser, table_eda_page  # pandas, scikit-learn, matplotlib load after the flags

    if args.check:
        browser.require_available()
    _write_and_show(
        lambda say, command: table_eda_page.write_table_eda(
            data, seed=args.seed, output_dir=args.output_dir, progress=say, command=command
        ),
        args,
        argv,
        browser,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
