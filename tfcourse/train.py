"""``python -m tfcourse.train``: train, evaluate and (optionally) export one model.

A thin argparse layer over ``tfcourse.runs.train_and_evaluate``. Bad flags and bad input
exit with status 2 and a message saying what was wrong.
"""

from __future__ import annotations

import argparse
import math
import sys
from typing import List, Optional

from tfcourse.config import LR_SCHEDULES, NORMALIZATIONS, SPLIT_PROTOCOLS, DataConfig, TrainConfig
from tfcourse.rundir import cli_errors

DEFAULTS = TrainConfig()


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text}")
    return value


def _number(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number, got {text!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"must be a finite number, got {text}")
    return value


def _positive_float(text: str) -> float:
    value = _number(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be a positive number, got {text}")
    return value


def _fraction(text: str) -> float:
    value = _number(text)
    if not 0 < value < 1:
        raise argparse.ArgumentTypeError(f"must be a fraction in (0, 1), got {text}")
    return value


def _classes(text: str):
    """``--classes``: comma-separated labels and ranges, e.g. ``0-4`` or ``0,2,5-7``."""
    labels = []
    try:
        for part in text.split(","):
            low, sep, high = part.strip().partition("-")
            if sep and int(high) < int(low):
                raise argparse.ArgumentTypeError(f"the range {part.strip()} is empty; write it low-high, "
                                                 f"e.g. {high.strip()}-{low.strip()}")
            labels += list(range(int(low), int(high) + 1)) if sep else [int(low)]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected labels like 0-4 or 0,2,5-7, got {text!r}") from None
    return tuple(labels)


def _hp_override(text: str):
    from tfcourse.fit import parse_hp_value

    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    return key.strip(), parse_hp_value(value)


def add_data_arguments(parser: argparse.ArgumentParser) -> None:
    """The data flags ``tfcourse.train`` and ``tfcourse.tune`` share (see ``data_config_from_args``)."""
    parser.add_argument("--dataset", default=DEFAULTS.data.dataset,
                        help="fashion_mnist, mnist, digits (offline, 8x8), tfds:NAME, or a folder of IDX files "
                             "or of class sub-folders of images")
    parser.add_argument("--data-dir", default=None,
                        help="folder with the dataset's IDX files (before $TFCOURSE_DATA_DIR and the Debian folder)")
    parser.add_argument("--split", default=DEFAULTS.data.split, choices=SPLIT_PROTOCOLS,
                        help="coursework: stratified 80/10/10 over all examples; official: official test set, "
                             "validation carved from the official train set")
    parser.add_argument("--val-fraction", type=_fraction, default=DEFAULTS.data.val_fraction, help="validation share")
    parser.add_argument("--test-fraction", type=_fraction, default=DEFAULTS.data.test_fraction,
                        help="test share (coursework split only)")
    parser.add_argument("--normalization", default=DEFAULTS.data.normalization, choices=NORMALIZATIONS,
                        help="unit: pixels to [0,1]; standardize: also training-set mean/std")
    parser.add_argument("--image-size", type=_positive_int, nargs=2, metavar=("HEIGHT", "WIDTH"), default=None,
                        help="resize an image folder to this size (default: size of its first image)")
    parser.add_argument("--augment", action="store_true", help="random flips and shifts on the training split")
    parser.add_argument("--classes", type=_classes, default=None, metavar="LIST",
                        help="keep only these labels, renumbered 0..k-1, e.g. 0-4 or 5,6,7 (default: all)")
    parser.add_argument("--train-limit", type=_positive_int, default=None, metavar="N",
                        help="train on a stratified, seeded subset of N training examples (default: all)")
    parser.add_argument("--batch-size", type=_positive_int, default=DEFAULTS.data.batch_size, help="examples per batch")
    parser.add_argument("--no-download", action="store_true", help="never let tfds download a missing dataset")


def data_config_from_args(args: argparse.Namespace) -> DataConfig:
    return DataConfig(
        dataset=args.dataset, data_dir=args.data_dir, split=args.split, val_fraction=args.val_fraction,
        test_fraction=args.test_fraction, normalization=args.normalization, batch_size=args.batch_size,
        augment=args.augment, image_size=tuple(args.image_size) if args.image_size else None,
        classes=args.classes, train_limit=args.train_limit,
    )


def verbosity(args: argparse.Namespace) -> int:
    """Keras progress: ``--verbose`` if given, else a bar on a terminal and a line per epoch otherwise."""
    return args.verbose if args.verbose is not None else (1 if sys.stdout.isatty() else 2)


def build_parser() -> argparse.ArgumentParser:
    from tfcourse.models import MODELS

    parser = argparse.ArgumentParser(
        prog="python -m tfcourse.train",
        description="Train a model on an image dataset, evaluate it on the test split, save a run folder "
                    "(config.json, history.json, history.csv, metrics.json, model.keras, TensorBoard logs/) "
                    "and optionally export a TensorFlow Serving SavedModel.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--model", default=None, choices=sorted(MODELS),
                        help=f"registered model to train (default {DEFAULTS.model})")
    add_data_arguments(parser)
    parser.add_argument("--epochs", type=_positive_int, default=DEFAULTS.epochs, help="maximum epochs")
    parser.add_argument("--patience", type=int, default=DEFAULTS.patience,
                        help="early stopping: epochs without val_loss improvement")
    parser.add_argument("--lr-schedule", choices=LR_SCHEDULES, default=DEFAULTS.lr_schedule,
                        help="plateau: cut the learning rate to 30%% after patience/2 epochs without val_loss "
                             "improvement; cosine: decay it to ~0 over --epochs (usual for the attention model)")
    parser.add_argument("--seed", type=int, default=DEFAULTS.seed, help="fixes splits, initialisation and shuffling")
    parser.add_argument("--deterministic", action="store_true", help="also force deterministic TensorFlow kernels")
    parser.add_argument("--steps-per-execution", type=_positive_int, default=DEFAULTS.steps_per_execution,
                        help="training steps per graph call")
    parser.add_argument("--hp", type=_hp_override, action="append", default=[], metavar="KEY=VALUE",
                        help="fix a hyperparameter, e.g. --hp conv_blocks=3 --hp dropout=0.3 (repeatable)")
    transfer = parser.add_argument_group("transfer learning")
    transfer.add_argument("--base", default=None, metavar="MODEL_OR_PATH",
                          help="pretrained base: ResNet50 or VGG16 (keras.applications), or a run folder / .keras file "
                               "of a trained model; its convolutional base gets a new dense head (model 'transfer')")
    transfer.add_argument("--base-weights", default=DEFAULTS.base_weights,
                          help="weights of a ResNet50/VGG16 base: imagenet, none, or a local no-top weights file")
    transfer.add_argument("--freeze-base", action="store_true", help="train only the new head; the base stays as it is")
    transfer.add_argument("--fine-tune-at", default=None, metavar="LAYER",
                          help="after training the head, unfreeze the base from this layer (name or index) up")
    transfer.add_argument("--fine-tune-epochs", type=_positive_int, default=DEFAULTS.fine_tune_epochs,
                          help="epochs of fine-tuning after --fine-tune-at")
    transfer.add_argument("--fine-tune-lr-scale", type=_positive_float, default=DEFAULTS.fine_tune_lr_scale,
                          help="fine-tuning learning rate = learning_rate times this")
    parser.add_argument("--list-hp", action="store_true", help="print the model's hyperparameters and exit")
    parser.add_argument("--output-dir", default=None, help="run folder (default runs/<model>-<dataset>-<time>)")
    parser.add_argument("--no-report", action="store_true",
                        help="skip report.html/report.md (figures, Grad-CAM gallery); python -m tfcourse.report RUN "
                             "writes it later")
    parser.add_argument("--export", action="store_true", help="export a TensorFlow Serving SavedModel")
    parser.add_argument("--export-dir", default=DEFAULTS.export_dir, help="export root: <dir>/<model>/<version>/")
    parser.add_argument("--verbose", type=int, choices=(0, 1, 2), default=None,
                        help="Keras progress output (default: bar on a terminal, a line per epoch otherwise)")
    return parser


def config_from_args(args: argparse.Namespace) -> TrainConfig:
    data = data_config_from_args(args)
    from tfcourse import transfer
    from tfcourse.config import TRANSFER_MODEL

    model = args.model or (TRANSFER_MODEL if args.base else DEFAULTS.model)
    return TrainConfig(
        model=model, base=args.base, base_weights=args.base_weights, freeze_base=args.freeze_base,
        fine_tune_at=transfer.parse_layer(args.fine_tune_at), fine_tune_epochs=args.fine_tune_epochs,
        fine_tune_lr_scale=args.fine_tune_lr_scale, epochs=args.epochs, patience=args.patience,
        lr_schedule=args.lr_schedule, seed=args.seed, hp=dict(args.hp),
        output_dir=args.output_dir, export=args.export, export_dir=args.export_dir,
        steps_per_execution=args.steps_per_execution, deterministic=args.deterministic, report=not args.no_report,
        data=data,
    )


def print_space(entries) -> None:
    """Prints ``fit.describe_space`` entries, one per line: name, type, settings."""
    for entry in entries:
        settings = {k: v for k, v in entry.items() if k not in ("name", "type")}
        print(f"{entry['name']:18s} {entry['type']:8s} {settings}")


def main(argv: Optional[List[str]] = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    from tfcourse import transfer
    from tfcourse.runs import train_and_evaluate

    with cli_errors(parser):
        config = config_from_args(args)
        if args.list_hp:
            from tfcourse.fit import describe_space, hyperparameter_space

            from tfcourse.runs import model_builder, validate_config

            validate_config(config)
            shape = (28, 28, 1)
            if config.base and not transfer.is_application(config.base):  # a trained base fixes the image shape
                from tfcourse.models import load_keras_model

                shape = load_keras_model(transfer.resolve_base_path(config.base), compile=False).input_shape[1:]
            print_space(describe_space(hyperparameter_space(model_builder(config, for_space=True), shape, 10)))
            return 0
        train_and_evaluate(config, download=not args.no_download, verbose=verbosity(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
