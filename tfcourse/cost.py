"""``python -m tfcourse.cost``: the cost report of a model (per layer shape, parameters, MACs).

A thin argparse layer over ``tfcourse.models.cost``: ``--model`` is a registered name (built with its
defaults, or ``--hp`` overrides, for ``--input-shape``) or the path of a saved ``.keras`` model
or of a run folder holding one.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import List, Optional

from tfcourse import machine
from tfcourse.cli import HelpFormatter, hp_override, positive_int
from tfcourse.models import cost
from tfcourse.pages import cost_page
from tfcourse.rundir import model_file


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m tfcourse.cost",
        description="Print a model's cost report: per layer output shape, parameters and multiply-adds, "
        "totals and estimated training FLOPs per image.",
        formatter_class=HelpFormatter,
    )
    parser.add_argument(
        "--model", required=True, help="registered model name, or a .keras file, or a run folder with model.keras"
    )
    parser.add_argument(
        "--input-shape",
        type=positive_int,
        nargs=3,
        metavar=("H", "W", "C"),
        default=(28, 28, 1),
        help="image shape to build a registered model for",
    )
    parser.add_argument("--num-classes", type=positive_int, default=10, help="number of classes")
    parser.add_argument(
        "--hp",
        type=hp_override,
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="fix a hyperparameter of a registered model (repeatable)",
    )
    parser.add_argument("--format", choices=("markdown", "json"), default="markdown", help="output format")
    parser.add_argument(
        "--summary-only", action="store_true", help="markdown: list only layers with parameters or multiply-adds"
    )
    return parser


def load_model_for_inspection(model: str, input_shape, num_classes: int, hp_overrides):
    """A registered model built from ``hp_overrides``, or a saved model read from a path.

    Raises:
        ValueError: For an unknown name that is not a path either, or a folder without model.keras.
    """
    machine.load_tensorflow()
    from tfcourse import models  # TensorFlow loads here, after the flags are read
    from tfcourse.tuning import hparams

    if os.path.isdir(model) or model.endswith(".keras"):
        path = model_file(model)
        if path is None:
            raise ValueError(
                f"{model} is a folder without model.keras; give a run folder or a .keras file."
                if os.path.isdir(model)
                else f"Model file {model} does not exist."
            )
        return models.load_keras_model(path, compile=False)
    hp = hparams.make_hyperparameters(model, dict(hp_overrides), input_shape, num_classes)
    return models.build_model(model, hp, input_shape, num_classes)


def main(argv: Optional[List[str]] = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        model = load_model_for_inspection(args.model, tuple(args.input_shape), args.num_classes, args.hp)
    except ValueError as error:
        parser.exit(2, f"{parser.prog}: error: {error}\n")
    report = cost.cost_report(model)
    if args.format == "json":
        print(json.dumps(report, indent=2))
    else:
        print(cost_page.format_report(report, all_layers=not args.summary_only), end="")
    return 0


if __name__ == "__main__":
    sys.exit(main())
