"""``python -m tfcourse.numpy_mlp``: the course's NumPy-by-hand experiment against scikit-learn.

A thin argparse layer over ``tfcourse.numpy_nn.experiment.run_experiment``: for each activation,
``NumpyMLP`` and ``MLPClassifier`` on the same split, checkpoints tested, one figure per activation,
a table of every test accuracy and ``report.html``/``report.md``. Bad flags and bad input exit with
status 2 and a message saying what was wrong; nothing is written before the input is checked.
"""

from __future__ import annotations

import argparse
import sys
from typing import List, Optional

from tfcourse.cli import (
    HelpFormatter,
    add_data_arguments,
    cli_errors,
    data_config_from_args,
    number,
    positive_float,
    positive_int,
)
from tfcourse.config import NUMPY_ACTIVATIONS, NUMPY_INITS, SKLEARN_INITS, NumpyExperimentConfig

DEFAULTS = NumpyExperimentConfig()


def _names(text: str):
    names = tuple(part.strip() for part in text.split(",") if part.strip())
    unknown = [name for name in names if name not in NUMPY_ACTIVATIONS]
    if unknown or not names:
        raise argparse.ArgumentTypeError(
            f"expected a comma-separated list of {', '.join(NUMPY_ACTIVATIONS)}; got {text!r}"
        )
    return names


def _widths(text: str):
    try:
        widths = tuple(int(part) for part in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected hidden-layer widths like 256,128,64; got {text!r}") from None
    if not widths or min(widths) < 1:
        raise argparse.ArgumentTypeError(f"hidden-layer widths must be positive; got {text!r}")
    return widths


def _momentum(text: str) -> float:
    value = number(text)
    if not 0 <= value < 1:
        raise argparse.ArgumentTypeError(f"must be in [0, 1), got {text}")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m tfcourse.numpy_mlp",
        description="Train the NumPy-only network (hand-written backpropagation) and scikit-learn's "
        "MLPClassifier alike, one pair per activation; test their checkpoints; write figures, a table of "
        "every test accuracy naming the best model, and report.html/report.md.",
        formatter_class=HelpFormatter,
    )
    add_data_arguments(parser, pipeline=False)
    parser.add_argument(
        "--activations",
        type=_names,
        default=DEFAULTS.activations,
        metavar="LIST",
        help="hidden activations to run, comma-separated",
    )
    parser.add_argument(
        "--hidden",
        type=_widths,
        default=DEFAULTS.hidden,
        metavar="WIDTHS",
        help="hidden-layer widths, comma-separated; input and output sizes come from the data",
    )
    parser.add_argument(
        "--learning-rate", type=positive_float, default=DEFAULTS.learning_rate, help="NumpyMLP's SGD step"
    )
    parser.add_argument(
        "--sklearn-learning-rate",
        type=positive_float,
        default=None,
        help="MLPClassifier's learning_rate_init (None: the same as --learning-rate)",
    )
    parser.add_argument("--batch-size", type=positive_int, default=DEFAULTS.batch_size, help="examples per SGD step")
    parser.add_argument(
        "--weight-init",
        choices=NUMPY_INITS,
        default=DEFAULTS.weight_init,
        help="NumpyMLP's initialisation: normal = N(0,1) x 0.01, random = U[0,1) x 0.01, zero (cannot break "
        "symmetry: the report shows it), he, glorot",
    )
    parser.add_argument("--epochs", type=positive_int, default=DEFAULTS.epochs, help="epochs of both networks")
    parser.add_argument(
        "--checkpoint-every",
        type=positive_int,
        default=DEFAULTS.checkpoint_every,
        help="save both networks every this many epochs and score those checkpoints on the test split",
    )
    parser.add_argument(
        "--momentum", type=_momentum, default=DEFAULTS.momentum, help="SGD momentum of both (0: plain SGD)"
    )
    parser.add_argument("--batch-norm", action="store_true", help="batch norm in NumpyMLP's hidden layers")
    parser.add_argument("--no-sklearn", action="store_true", help="train NumpyMLP only")
    parser.add_argument(
        "--sklearn-init",
        choices=SKLEARN_INITS,
        default=DEFAULTS.sklearn_init,
        help="own: MLPClassifier's own initialisation; numpy: NumpyMLP's initial weights (the two then differ "
        "only in their code and their shuffles; plain SGD without batch norm)",
    )
    parser.add_argument("--seed", type=int, default=DEFAULTS.seed, help="fixes the split, initialisation and shuffling")
    parser.add_argument(
        "--output-dir", default=None, help="experiment folder (default runs/numpy_mlp-<dataset>); a rerun resumes it"
    )
    parser.add_argument(
        "--overwrite", action="store_true", help="replace an experiment folder that holds other settings"
    )
    parser.add_argument("--quiet", action="store_true", help="no progress output")
    return parser


def config_from_args(args: argparse.Namespace) -> NumpyExperimentConfig:
    return NumpyExperimentConfig(
        activations=args.activations,
        hidden=args.hidden,
        learning_rate=args.learning_rate,
        sklearn_learning_rate=args.sklearn_learning_rate,
        batch_size=args.batch_size,
        weight_init=args.weight_init,
        epochs=args.epochs,
        checkpoint_every=args.checkpoint_every,
        momentum=args.momentum,
        batch_norm=args.batch_norm,
        sklearn=not args.no_sklearn,
        sklearn_init=args.sklearn_init,
        seed=args.seed,
        output_dir=args.output_dir,
        data=data_config_from_args(args),
    )


def main(argv: Optional[List[str]] = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    with cli_errors(parser):
        config = config_from_args(args)
        from tfcourse.numpy_nn import experiment  # scikit-learn and matplotlib load after the flags are read

        try:
            report = experiment.run_experiment(
                config, overwrite=args.overwrite, download=not args.no_download, verbose=0 if args.quiet else 1
            )
        except OSError as error:  # a full disk or a folder that vanished: finished activations are kept
            raise ValueError(
                f"cannot write {error.filename or 'the experiment folder'} ({error.strerror}); free space or pass "
                "another --output-dir, then run the same command again (finished activations are kept)."
            ) from None
        print(report["table"])
        for line in report["findings"]:
            print(line)
        print(f"Report: {report['html']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
