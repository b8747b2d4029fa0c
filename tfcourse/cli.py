"""What the nine command lines share: argparse value types, the data flags of ``tfcourse.train`` and
``tfcourse.tune``, Keras verbosity, the hyperparameter-space listing, and how every command ends
(``cli_errors``: a bad value or a write the machine refused exits 2 with one line, Ctrl-C 130, SIGTERM 143).

A CLI-layer module: it imports TensorFlow (through ``hparams``) only when a value is parsed, so
``--help`` stays fast.
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import math
import os
import signal
import sys
import threading
from typing import Optional

from tfcourse.config import NORMALIZATIONS, SPLIT_PROTOCOLS, TABLE_SETTINGS, DataConfig, TableDataConfig, TrainConfig
from tfcourse.data.table_data import CATALOGUE
from tfcourse.models import list_models

DEFAULTS = TrainConfig()
TABLE_MODELS = tuple(list_models("table"))


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """``--help`` with "(default: X)" after a flag's help only where the help does not state its default
    itself and X says something (not ``None``, an empty value or a switch's ``False``)."""

    def _get_help_string(self, action):
        text = action.help or ""
        if "default" in text.lower() or action.default is None or action.default in ((), [], "", False):
            return text
        return super()._get_help_string(action)


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text}")
    return value


def number(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number, got {text!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"must be a finite number, got {text}")
    return value


def positive_float(text: str) -> float:
    value = number(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be a positive number, got {text}")
    return value


def export_formats(text: str):
    """``--export-format savedmodel,onnx,litert`` (``config.parse_export_formats``)."""
    from tfcourse.config import parse_export_formats

    try:
        return parse_export_formats(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def fraction(text: str) -> float:
    value = number(text)
    if not 0 < value < 1:
        raise argparse.ArgumentTypeError(f"must be a fraction in (0, 1), got {text}")
    return value


def classes(text: str):
    """``--classes``: comma-separated labels and ranges, e.g. ``0-4`` or ``0,2,5-7``."""
    labels = []
    try:
        for part in text.split(","):
            low, sep, high = part.strip().partition("-")
            if sep and int(high) < int(low):
                raise argparse.ArgumentTypeError(
                    f"the range {part.strip()} is empty; write it low-high, e.g. {high.strip()}-{low.strip()}"
                )
            labels += list(range(int(low), int(high) + 1)) if sep else [int(low)]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected labels like 0-4 or 0,2,5-7, got {text!r}") from None
    return tuple(labels)


def hp_override(text: str):
    from tfcourse.tuning.hparams import parse_hp_value  # keras: only once a value is parsed

    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    return key.strip(), parse_hp_value(value)


def layer(text: str):
    """``--fine-tune-at``: a layer index (int) or a layer name."""
    return int(text) if text.lstrip("-").isdigit() else text


TABLE_SPLITS = ("time",)  # only a table can be split by time (tfcourse.data.table_data)


def add_data_arguments(
    parser: argparse.ArgumentParser, pipeline: bool = True, normalization: bool = True, tables: bool = False
) -> None:
    """The data flags ``tfcourse.train`` and ``tfcourse.tune`` share (see ``data_config_from_args``).

    Args:
        pipeline: Also the tf.data flags (``--augment``, ``--batch-size``); ``tfcourse.numpy_mlp``
            reads the same sources and splits but feeds NumPy arrays.
        normalization: Also ``--normalization`` (``tfcourse.eda`` looks at the raw pixels and has none).
        tables: ``--split`` also offers ``time`` (``tfcourse.train`` on a table).
    """
    parser.add_argument(
        "--dataset",
        default=DEFAULTS.data.dataset,
        help="fashion_mnist, mnist, digits (offline, 8x8), tfds:NAME, or a folder of IDX files "
        "or of class sub-folders of images",
    )
    parser.add_argument(
        "--data-dir",
        default=None,
        help="folder with the dataset's IDX files (before $TFCOURSE_DATA_DIR and the Debian folder)",
    )
    parser.add_argument(
        "--split",
        default=DEFAULTS.data.split,
        choices=SPLIT_PROTOCOLS + (TABLE_SPLITS if tables else ()),
        help="coursework: stratified 80/10/10 over all examples; official: official test set, "
        "validation carved from the official train set"
        + ("; time (tables only): the oldest rows train, the newest test (--time-column)" if tables else ""),
    )
    parser.add_argument("--val-fraction", type=fraction, default=DEFAULTS.data.val_fraction, help="validation share")
    parser.add_argument(
        "--test-fraction", type=fraction, default=DEFAULTS.data.test_fraction, help="test share (coursework split only)"
    )
    if normalization:
        parser.add_argument(
            "--normalization",
            default=DEFAULTS.data.normalization,
            choices=NORMALIZATIONS,
            help="unit: pixels to [0,1]; standardize: also training-set mean/std",
        )
    parser.add_argument(
        "--image-size",
        type=positive_int,
        nargs=2,
        metavar=("HEIGHT", "WIDTH"),
        default=None,
        help="resize an image folder to this size (default: size of its first image)",
    )
    if pipeline:
        parser.add_argument(
            "--augment",
            action=argparse.BooleanOptionalAction,
            default=None,
            help="random flips (datasets whose mirror images keep their class) and shifts on the training split "
            "(default: off; on with --recipe fast, off with --recipe quick)",
        )
    parser.add_argument(
        "--classes",
        type=classes,
        default=None,
        metavar="LIST",
        help="keep only these labels, renumbered 0..k-1, e.g. 0-4 or 5,6,7 (default: all)",
    )
    parser.add_argument(
        "--train-limit",
        type=positive_int,
        default=None,
        metavar="N",
        help="train on a stratified, seeded subset of N training examples (default: all)",
    )
    if pipeline:
        parser.add_argument(
            "--batch-size",
            type=positive_int,
            default=None,
            help=f"examples per batch (default: {DEFAULTS.data.batch_size}; 256 with --recipe fast, 128 with quick)",
        )
    parser.add_argument("--no-download", action="store_true", help="never let tfds download a missing dataset")


def data_config_from_args(args: argparse.Namespace, batch_size=None, augment=None) -> DataConfig:
    """The ``DataConfig`` of the flags; ``batch_size``/``augment`` are the defaults where a flag was not given
    (a recipe's), ``DataConfig``'s own otherwise."""
    given_batch = getattr(args, "batch_size", None)
    given_augment = getattr(args, "augment", None)
    return DataConfig(
        dataset=args.dataset,
        data_dir=args.data_dir,
        split=args.split,
        val_fraction=args.val_fraction,
        test_fraction=args.test_fraction,
        normalization=getattr(args, "normalization", DEFAULTS.data.normalization),
        batch_size=given_batch or batch_size or DEFAULTS.data.batch_size,
        augment=bool(given_augment if given_augment is not None else augment),
        image_size=tuple(args.image_size) if args.image_size else None,
        classes=args.classes,
        train_limit=args.train_limit,
    )


# ----------------------------------------------------------------------------- tables

TABLE_DATA_FLAGS = TABLE_SETTINGS
# The data flags of images that a table does not take: given with a table they are refused.
IMAGE_DATA_FLAGS = ("model", "data_dir", "normalization", "image_size", "augment", "classes", "train_limit")


def is_table(dataset: str) -> bool:
    """``--dataset csv:PATH`` or a catalogued table (``seattle_weather``)."""
    return dataset.startswith("csv:") or dataset in CATALOGUE


def names(text: str):
    """``--features`` and co.: comma-separated column names."""
    parts = tuple(part.strip() for part in text.split(",") if part.strip())
    if not parts:
        raise argparse.ArgumentTypeError(f"expected column names separated by commas, got {text!r}")
    return parts


def add_table_arguments(parser: argparse.ArgumentParser) -> None:
    """The table flags ``tfcourse.train`` and ``tfcourse.tune`` share (see ``table_data_config_from_args``)."""
    tables = parser.add_argument_group("tables (--dataset csv:PATH or seattle_weather)")
    tables.add_argument("--target", default=None, metavar="COLUMN", help="the column to predict (required for a CSV)")
    tables.add_argument(
        "--features",
        type=names,
        default=(),
        metavar="A,B",
        help="feature columns (default: all but the target and dates)",
    )
    tables.add_argument("--drop", type=names, default=(), metavar="A,B", help="columns never used as features")
    tables.add_argument(
        "--categorical", type=names, default=(), metavar="A,B", help="treat these columns as categories (e.g. codes)"
    )
    tables.add_argument("--numeric", type=names, default=(), metavar="A,B", help="treat these columns as numbers")
    tables.add_argument(
        "--positive-class",
        default=None,
        help="the positive class of a two-class target (default: Yes/yes/1/True if present)",
    )
    tables.add_argument("--time-column", default=None, metavar="COLUMN", help="the date column of --split time")
    tables.add_argument(
        "--class-weight", choices=("balanced",), default=None, help="weigh each class inversely to its share of rows"
    )


def _given(parser: argparse.ArgumentParser, args: argparse.Namespace, dests) -> list:
    """The flags among ``dests`` set to something other than their default, as ``--flag``."""
    return [f"--{d.replace('_', '-')}" for d in dests if getattr(args, d) != parser.get_default(d)]


def refuse_given(parser: argparse.ArgumentParser, args: argparse.Namespace, dests, where: str) -> None:
    """Raises ``ValueError`` naming the flags among ``dests`` that were given (image flags for a table).

    A ``--model`` of the table kind is let through: it is checked against the registry later.
    """
    refused = [flag for flag in _given(parser, args, dests) if not (flag == "--model" and args.model in TABLE_MODELS)]
    if refused:
        one = len(refused) == 1
        raise ValueError(
            f"{', '.join(refused)} {'does' if one else 'do'} not apply to a table; leave "
            f"{'it' if one else 'them'} out {where}."
        )
    if args.split == "official":
        raise ValueError("a table has no official test set; use --split coursework (stratified) or --split time.")


def refuse_table_flags(parser: argparse.ArgumentParser, args: argparse.Namespace, dests) -> None:
    """Raises ``ValueError`` naming the table flags among ``dests`` given for an image dataset."""
    given = _given(parser, args, dests)
    if getattr(args, "model", None) in TABLE_MODELS:
        given.insert(0, f"--model {args.model}")
    if given or args.split == "time":
        flags = given or ["--split time"]
        raise ValueError(
            f"{', '.join(flags)} {'applies' if len(flags) == 1 else 'apply'} to a table (--dataset csv:PATH or "
            f"seattle_weather), not to {args.dataset}."
        )


def table_data_config_from_args(args: argparse.Namespace) -> TableDataConfig:
    return TableDataConfig(
        dataset=args.dataset,
        target=args.target,
        features=args.features,
        drop=args.drop,
        categorical=args.categorical,
        numeric=args.numeric,
        positive_class=args.positive_class,
        time_column=args.time_column,
        split="time" if args.split == "time" else "stratified",
        val_fraction=args.val_fraction,
        test_fraction=args.test_fraction,
        batch_size=getattr(args, "batch_size", None) or TableDataConfig.batch_size,
        class_weight=args.class_weight,
    )


def verbosity(args: argparse.Namespace) -> int:
    """Keras progress: ``--verbose`` if given, else a bar on a terminal and a line per epoch otherwise."""
    return args.verbose if args.verbose is not None else (1 if sys.stdout.isatty() else 2)


def print_space(model: str, dataset: str, described) -> None:
    """Prints ``(input_shape, num_classes, rows)`` (``runs.space_rows`` / ``search.space_rows``): a line
    naming what the space was declared for, then one line per hyperparameter: name, type, settings."""
    shape, classes, entries = described
    print(f"# {model} for {'x'.join(map(str, shape))} inputs and {classes} classes ({dataset})")
    for entry in entries:
        settings = {k: v for k, v in entry.items() if k not in ("name", "type")}
        print(f"{entry['name']:18s} {entry['type']:8s} {settings}")


# --- how every command ends: errors, interrupts and write faults ---------------------------------


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised where the program stands so it unwinds exactly like Ctrl-C."""


@contextlib.contextmanager
def sigterm_unwinds():
    """Within the block, SIGTERM (``kill``, a scheduler stopping a job) raises ``Terminated``, so every
    ``except BaseException`` / ``finally`` that removes a half-written folder runs, as for Ctrl-C.
    The previous handler is restored afterwards (a CLI called from a test leaves no trace)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    received = []

    def handler(signum, frame):
        received.append(signum)
        raise Terminated()

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    except Exception as error:
        # raised inside TensorFlow's C code, the handler's exception can come out as another one
        # (CPython: ``SystemError: bad argument to internal function``); it was still SIGTERM
        if received:
            raise Terminated() from error
        raise
    finally:
        signal.signal(signal.SIGTERM, previous)


def interrupted_exit(parser, error: KeyboardInterrupt) -> None:
    """Exit status 143 for SIGTERM and 130 for Ctrl-C, as a shell reports them, with one line saying so."""
    terminated = isinstance(error, Terminated)
    parser.exit(
        143 if terminated else 130,
        f"{parser.prog}: {'terminated (SIGTERM)' if terminated else 'interrupted'}"
        "; unfinished output was removed, finished work is kept\n",
    )


# What the machine refused when writing, and what the user can do about it: the one answer of every
# command line to a full disk, a read-only or foreign folder, or another process that wrote first.
_WRITE_FAULTS = {
    errno.ENOSPC: "the disk is full; free some space or pass another output folder, then run the same command "
    "again (finished work is kept, unfinished output was removed)",
    errno.EDQUOT: "the disk quota is used up; free some space or pass another output folder",
    errno.EROFS: "the file system is read-only; pass an output folder on a writable disk",
    errno.EACCES: "permission denied; pass an output folder you can write to",
    errno.EPERM: "not permitted; pass an output folder you can write to",
    errno.EEXIST: "another process created it meanwhile; pass another output folder or run again",
    errno.ENOTEMPTY: "another process created it meanwhile; pass another output folder or run again",
    errno.EIO: "the disk reported an input/output error; check the disk, or pass an output folder on another",
}
_MESSAGES = {os.strerror(number): number for number in _WRITE_FAULTS}


def write_fault(error: BaseException, output: Optional[str] = None) -> Optional[str]:
    """One line for a write the machine refused (a full disk, a read-only folder, a collision): an
    ``OSError`` with one of those error numbers, or a TensorFlow error whose message carries the same text
    (TensorFlow's file writers raise ``ResourceExhaustedError: ... No space left on device``); ``None`` for
    anything else (a bug keeps its traceback). The line names the file, or where none is known (a file
    closed on a full disk), the command's ``output`` folder."""
    number = error.errno if isinstance(error, OSError) else None
    if number not in _WRITE_FAULTS:
        number = next((code for text, code in _MESSAGES.items() if text in str(error)), None)
        if number is None or isinstance(error, (ValueError, KeyboardInterrupt)):
            return None
    path = getattr(error, "filename", None)
    where = f"cannot write {path}" if path else f"cannot write into {output}" if output else "a write failed"
    return f"{where} ({os.strerror(number)}): {_WRITE_FAULTS[number]}."


@contextlib.contextmanager
def cli_errors(parser, output: Optional[str] = None):
    """The body of a CLI's ``main``: SIGTERM unwinds like Ctrl-C (``sigterm_unwinds``), a
    ``ValueError`` exits with status 2 and its message, so does a write the machine refused (``write_fault``:
    full disk, read-only folder, collision; ``output``, the command's output folder, is named where the
    error names no file), Ctrl-C and SIGTERM exit 130 / 143."""
    try:
        with sigterm_unwinds():
            yield
    except ValueError as error:
        parser.exit(2, f"{parser.prog}: error: {error}\n")
    except KeyboardInterrupt as error:
        interrupted_exit(parser, error)
    except Exception as error:  # noqa: BLE001  (only write faults are answered here; the rest is re-raised)
        line = write_fault(error, output)
        if line is None:
            raise
        parser.exit(2, f"{parser.prog}: error: {line}\n")
