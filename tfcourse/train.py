"""``python -m tfcourse.train``: train, evaluate and (optionally) export one model.

A thin argparse layer over ``tfcourse.jobs.image_run.train_and_evaluate`` (images) and
``tfcourse.jobs.table_run.train_table`` (a table: ``--dataset csv:PATH --target COLUMN`` or
``--dataset seattle_weather``). Bad flags and bad input exit with status 2 and a message saying
what was wrong; a flag that does not apply to the kind of data given is refused, never ignored.
"""

from __future__ import annotations

import argparse
import sys
from typing import List, Optional

from tfcourse import machine
from tfcourse.cli import (
    DEFAULTS,
    IMAGE_DATA_FLAGS,
    TABLE_DATA_FLAGS,
    HelpFormatter,
    add_data_arguments,
    add_table_arguments,
    cli_errors,
    data_config_from_args,
    export_formats,
    hp_override,
    is_table,
    layer,
    positive_float,
    positive_int,
    print_space,
    refuse_given,
    refuse_table_flags,
    table_data_config_from_args,
    verbosity,
)
from tfcourse.config import (
    LR_SCHEDULES,
    PRECISIONS,
    RECIPES,
    THRESHOLD_METRICS,
    TRAIN_ON,
    TRANSFER_MODEL,
    TTA_MODES,
    TableConfig,
    TrainConfig,
)
from tfcourse.models import MODELS


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m tfcourse.train",
        description="Train a model on an image dataset, evaluate it on the test split, save a run folder "
        "(config.json, history.json, history.csv, metrics.json, model.keras, TensorBoard logs/) "
        "and optionally export a TensorFlow Serving SavedModel; or a feed-forward network on a table "
        "(--dataset csv:PATH --target COLUMN, or seattle_weather).",
        formatter_class=HelpFormatter,
    )
    parser.add_argument(
        "--model", default=None, choices=sorted(MODELS), help=f"registered model to train (default {DEFAULTS.model})"
    )
    add_data_arguments(parser, tables=True)
    parser.add_argument(
        "--epochs",
        type=positive_int,
        default=None,
        help=f"maximum epochs (default: {DEFAULTS.epochs}; every one run with a one-cycle recipe: "
        f"{RECIPES['fast'].epochs} with --recipe fast, {RECIPES['quick'].epochs} with quick)",
    )
    parser.add_argument(
        "--recipe",
        choices=sorted(RECIPES),
        default=DEFAULTS.recipe,
        help="standard: the model's optimizer hyperparameters (Adam), --lr-schedule, early stopping; fast: "
        "SGD-Nesterov with a one-cycle learning rate, label smoothing 0.1, weight decay, flips and shifts, flip "
        "test-time augmentation, batch 256, 16 epochs; quick: fast cut to about 3 CPU-minutes (batch 128, "
        "4 epochs, no flips or shifts in training, no test-time augmentation) (docs/speed.md)",
    )
    parser.add_argument(
        "--peak-lr",
        type=positive_float,
        default=None,
        metavar="RATE",
        help=f"--recipe fast/quick: the one-cycle learning rate's peak (default {RECIPES['fast'].peak_learning_rate})",
    )
    parser.add_argument(
        "--tta",
        choices=TTA_MODES,
        default=None,
        help="test-time augmentation: flip averages the probabilities on each test image and its mirror image, "
        "in the evaluation and in the export (default: none; flip with --recipe fast on a dataset whose mirror "
        "images keep their class)",
    )
    parser.add_argument(
        "--precision",
        choices=PRECISIONS,
        default=DEFAULTS.precision,
        help="mixed_bfloat16: bfloat16 compute with float32 weights and logits; auto: mixed_bfloat16 on a CPU "
        "with AMX-BF16 or AVX-512 BF16, float32 otherwise (recorded in config.json and the report)",
    )
    parser.add_argument(
        "--patience", type=int, default=DEFAULTS.patience, help="early stopping: epochs without val_loss improvement"
    )
    parser.add_argument(
        "--lr-schedule",
        choices=LR_SCHEDULES,
        default=DEFAULTS.lr_schedule,
        help="plateau: cut the learning rate to 30%% after patience/2 epochs without val_loss "
        "improvement; cosine: decay it to ~0 over --epochs (usual for the attention model)",
    )
    parser.add_argument(
        "--train-on",
        choices=TRAIN_ON,
        default=DEFAULTS.train_on,
        help="train+val: fit on the training and validation splits together for exactly --epochs epochs (no "
        "validation, no early stopping; the final fit of a known recipe); the test split is never trained on",
    )
    parser.add_argument("--seed", type=int, default=DEFAULTS.seed, help="fixes splits, initialisation and shuffling")
    parser.add_argument("--deterministic", action="store_true", help="also force deterministic TensorFlow kernels")
    parser.add_argument(
        "--steps-per-execution",
        type=positive_int,
        default=DEFAULTS.steps_per_execution,
        help="training steps per graph call",
    )
    parser.add_argument(
        "--hp",
        type=hp_override,
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="fix a hyperparameter, e.g. --hp conv_blocks=3 --hp dropout=0.3 (repeatable)",
    )
    transfer = parser.add_argument_group("transfer learning")
    transfer.add_argument(
        "--base",
        default=None,
        metavar="MODEL_OR_PATH",
        help="pretrained base: ResNet50 or VGG16 (keras.applications), or a run folder / .keras file "
        "of a trained model; its convolutional base gets a new dense head (model 'transfer')",
    )
    transfer.add_argument(
        "--base-weights",
        default=DEFAULTS.base_weights,
        help="weights of a ResNet50/VGG16 base: imagenet, none, or a local no-top weights file",
    )
    transfer.add_argument("--freeze-base", action="store_true", help="train only the new head; the base stays as it is")
    transfer.add_argument(
        "--fine-tune-at",
        type=layer,
        default=None,
        metavar="LAYER",
        help="after training the head, unfreeze the base from this layer (name or index) up",
    )
    transfer.add_argument(
        "--fine-tune-epochs",
        type=positive_int,
        default=DEFAULTS.fine_tune_epochs,
        help="epochs of fine-tuning after --fine-tune-at",
    )
    transfer.add_argument(
        "--fine-tune-lr-scale",
        type=positive_float,
        default=DEFAULTS.fine_tune_lr_scale,
        help="fine-tuning learning rate = learning_rate times this",
    )
    add_table_arguments(parser)
    parser.add_argument(
        "--threshold-metric",
        choices=THRESHOLD_METRICS,
        default=TableConfig.threshold_metric,
        help="tables: what the decision threshold of a two-class target maximises on validation",
    )
    parser.add_argument("--list-hp", action="store_true", help="print the model's hyperparameters and exit")
    parser.add_argument("--output-dir", default=None, help="run folder (default runs/<model>-<dataset>-<time>)")
    parser.add_argument(
        "--no-report",
        action="store_true",
        help="skip report.html/report.md (figures, Grad-CAM gallery); python -m tfcourse.report RUN writes it later",
    )
    parser.add_argument("--export", action="store_true", help="export a TensorFlow Serving SavedModel")
    parser.add_argument("--export-dir", default=DEFAULTS.export_dir, help="export root: <dir>/<model>/<version>/")
    parser.add_argument(
        "--export-format",
        type=export_formats,
        default=None,
        help="with --export: savedmodel (always written), onnx, litert (float32, float16 and int8 files), "
        "comma-separated; each file checked in a fresh process against the model (needs the [runtimes] extra)",
    )
    parser.add_argument(
        "--verbose",
        type=int,
        choices=(0, 1, 2),
        default=None,
        help="Keras progress output (default: bar on a terminal, a line per epoch otherwise)",
    )
    return parser


TABLE_FLAGS = TABLE_DATA_FLAGS + ("threshold_metric",)
# Flags of the image path a table run does not take (yet); given with a table they are refused.
IMAGE_ONLY_FLAGS = IMAGE_DATA_FLAGS + (
    "export_format",
    "train_on",
    "recipe",
    "peak_lr",
    "tta",
    "precision",
    "lr_schedule",
    "deterministic",
    "steps_per_execution",
    "base",
    "base_weights",
    "freeze_base",
    "fine_tune_at",
    "fine_tune_epochs",
    "fine_tune_lr_scale",
    "list_hp",
)


def table_config_from_args(parser: argparse.ArgumentParser, args: argparse.Namespace) -> TableConfig:
    refuse_given(parser, args, IMAGE_ONLY_FLAGS, f"for {args.dataset}")
    model = args.model or TableConfig.model
    return TableConfig(
        model=model,
        epochs=args.epochs or TableConfig.epochs,
        patience=args.patience,
        seed=args.seed,
        hp=dict(args.hp),
        threshold_metric=args.threshold_metric,
        output_dir=args.output_dir,
        report=not args.no_report,
        export=args.export,
        export_dir=args.export_dir,
        data=table_data_config_from_args(args),
    )


def recipe_tta(recipe, dataset: str) -> str:
    """The recipe's test-time augmentation for ``dataset``: a flip only where mirror images are known to
    keep their class (Fashion-MNIST yes; digits no; an unknown folder: not assumed)."""
    from tfcourse.data import mirror_safe

    return recipe.tta if recipe.tta != "flip" or mirror_safe(dataset) is True else "none"


def config_from_args(args: argparse.Namespace) -> TrainConfig:
    recipe = RECIPES[args.recipe]
    data = data_config_from_args(args, batch_size=recipe.batch_size, augment=recipe.augment)
    model = args.model or (TRANSFER_MODEL if args.base else DEFAULTS.model)
    return TrainConfig(
        model=model,
        base=args.base,
        base_weights=args.base_weights,
        freeze_base=args.freeze_base,
        fine_tune_at=args.fine_tune_at,
        fine_tune_epochs=args.fine_tune_epochs,
        fine_tune_lr_scale=args.fine_tune_lr_scale,
        epochs=args.epochs or recipe.epochs,
        train_on=args.train_on,
        patience=args.patience,
        lr_schedule=args.lr_schedule,
        recipe=args.recipe,
        peak_learning_rate=args.peak_lr,
        tta=args.tta or recipe_tta(recipe, args.dataset),
        precision=args.precision,
        seed=args.seed,
        hp=dict(args.hp),
        output_dir=args.output_dir,
        export=args.export,
        export_dir=args.export_dir,
        export_formats=args.export_format or DEFAULTS.export_formats,
        steps_per_execution=args.steps_per_execution,
        deterministic=args.deterministic,
        report=not args.no_report,
        data=data,
    )


def main(argv: Optional[List[str]] = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    with cli_errors(parser, output=args.output_dir or "runs/"):
        if is_table(args.dataset):
            table = table_config_from_args(parser, args)
            machine.load_tensorflow(show_startup=args.verbose == 2)
            from tfcourse.jobs import table_run  # TensorFlow loads here, after the flags are read

            machine.freeze_imported_objects()
            run = table_run.train_table(table, verbose=verbosity(args))
            print(table_run.summary(run))
            return 0
        refuse_table_flags(parser, args, TABLE_FLAGS)
        config = config_from_args(args)
        machine.load_tensorflow(show_startup=args.verbose == 2)
        from tfcourse.jobs import image_run  # TensorFlow loads here, after the flags are read (``--help`` stays fast)

        machine.freeze_imported_objects()
        if args.list_hp:
            print_space(config.model, config.data.dataset, image_run.space_rows(config, download=not args.no_download))
            return 0
        image_run.train_and_evaluate(config, download=not args.no_download, verbose=verbosity(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
