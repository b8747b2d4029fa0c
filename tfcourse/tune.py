"""``python -m tfcourse.tune``: KerasTuner searches over a registered model, their summaries, and the retrained best.

A thin argparse layer over ``tfcourse.jobs.search``. Bad flags and bad input exit with status 2
and a message saying what was wrong.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import socket
import sys
from typing import Any, Dict, List, Optional

from tfcourse import machine, rundir
from tfcourse.cli import (
    IMAGE_DATA_FLAGS,
    TABLE_DATA_FLAGS,
    HelpFormatter,
    add_data_arguments,
    add_table_arguments,
    cli_errors,
    data_config_from_args,
    export_formats,
    is_table,
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
    OBJECTIVES,
    PRECISIONS,
    TRAIN_ON,
    TUNER_KINDS,
    TableConfig,
    TuneConfig,
    parse_keep_checkpoints,
)
from tfcourse.models import MODELS

DEFAULTS = TuneConfig()


def _space_item(text: str):
    """``KEY=VALUE`` (fix), ``KEY=[a,b]`` (choices), ``KEY=lo..hi`` (range), or a JSON file of such entries."""
    from tfcourse.tuning.hparams import parse_space_value  # keras: only once a value is parsed

    key, sep, value = text.partition("=")
    if not sep:
        if text.endswith(".json") or os.path.isfile(text):
            return ("@file", text)
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, KEY=[a,b], KEY=lo..hi or a .json file, got {text!r}")
    if not key.strip():
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    try:
        return key.strip(), parse_space_value(value)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def load_space(items) -> Dict[str, Any]:
    """Merges ``--space`` items in order; a JSON file maps names to a value, a list, or {min, max, step, sampling}."""
    space: Dict[str, Any] = {}
    for key, value in items:
        if key != "@file":
            space[key] = value
            continue
        loaded = rundir.read_json(
            value, "search-space file", "Give a JSON object of name -> value, list or range (docs/tuning.md)."
        )
        if not isinstance(loaded, dict):
            raise ValueError(f"Search-space file {value} must hold a JSON object of name -> value, list or range.")
        space.update(loaded)
    return space


def _keep_checkpoints(text: str) -> Optional[int]:
    try:
        return parse_keep_checkpoints(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def _oracle_address(text: str):
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit():
        raise argparse.ArgumentTypeError(f"expected HOST:PORT, e.g. 10.0.0.1:8000, got {text!r}")
    return host, int(port)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m tfcourse.tune",
        description="Search a model's hyperparameters with KerasTuner (trials train on the train split and are "
        "scored on the validation split), write trials.csv/trials.json, the search page (search.md, search.html) and plots, and "
        "optionally retrain the best trial, evaluate it once on test and export it.",
        formatter_class=HelpFormatter,
    )
    parser.add_argument(
        "--model",
        default=None,
        choices=sorted(MODELS),
        help=f"registered model to tune (default {DEFAULTS.model}; for a table {TableConfig.model})",
    )
    parser.add_argument(
        "--tuner", default=DEFAULTS.tuner, choices=TUNER_KINDS, help="RandomSearch, Hyperband or BayesianOptimization"
    )
    parser.add_argument(
        "--max-trials",
        type=positive_int,
        default=DEFAULTS.max_trials,
        help="trials (random, bayesian); Hyperband sizes itself from --max-epochs and --factor",
    )
    parser.add_argument(
        "--epochs",
        type=positive_int,
        default=DEFAULTS.epochs,
        help="epochs per trial (random, bayesian), early stopping may end a trial sooner",
    )
    parser.add_argument(
        "--max-epochs",
        type=positive_int,
        default=DEFAULTS.max_epochs,
        help="Hyperband: epochs of the models that reach the last round",
    )
    parser.add_argument("--factor", type=int, default=DEFAULTS.factor, help="Hyperband: reduction factor")
    parser.add_argument(
        "--executions-per-trial",
        type=positive_int,
        default=DEFAULTS.executions_per_trial,
        help="models trained per trial (scores averaged)",
    )
    parser.add_argument(
        "--objective", default=DEFAULTS.objective, choices=OBJECTIVES, help="validation metric to optimise"
    )
    parser.add_argument(
        "--patience",
        type=int,
        default=DEFAULTS.patience,
        help="early stopping inside a trial: epochs without val_loss improvement",
    )
    parser.add_argument(
        "--lr-schedule",
        choices=LR_SCHEDULES,
        default=DEFAULTS.lr_schedule,
        help="plateau: cut the learning rate on val_loss plateaus; cosine: decay it to ~0 over --epochs "
        "(Hyperband: --max-epochs), in every trial and in the retrained model",
    )
    parser.add_argument(
        "--precision",
        choices=PRECISIONS,
        default=DEFAULTS.precision,
        help="mixed_bfloat16: bfloat16 compute with float32 weights and logits, in every trial and the retrained "
        "model; auto: mixed_bfloat16 on a CPU with AMX-BF16 or AVX-512 BF16, float32 otherwise (images only)",
    )
    parser.add_argument(
        "--space",
        type=_space_item,
        action="append",
        default=[],
        metavar="KEY=VALUE|FILE.json",
        help="fix (filters=64), give choices (filters=[64,128]) or narrow (learning_rate=1e-4..3e-3) "
        "a hyperparameter, or read such entries from a JSON file (repeatable)",
    )
    parser.add_argument(
        "--show-space", action="store_true", help="print the search space (with --space applied) and exit"
    )
    parser.add_argument(
        "--cv",
        type=positive_int,
        default=None,
        metavar="K",
        help="score each trial by K-fold stratified cross-validation on the training split (mean of the folds "
        "ranks the trials; random and bayesian tuners; the validation split is then not used by the search)",
    )
    parser.add_argument(
        "--keep-checkpoints",
        type=_keep_checkpoints,
        default=None,
        metavar="all|best|top-K|none",
        help="trials whose best-epoch weights stay on disk (KerasTuner keeps all; Hyperband prunes at the end "
        "of the search, as later rounds start from them)",
    )
    parser.add_argument(
        "--max-minutes",
        type=positive_float,
        default=None,
        help="a time budget for the command: no new trial starts after this many minutes, a running trial stops "
        "at the epoch boundary that would overrun it (its score so far kept, marked in trials.csv), and with "
        "--retrain the search leaves the retrain its estimated time",
    )
    parser.add_argument("--directory", default=DEFAULTS.directory, help="root of the search directories")
    parser.add_argument(
        "--project-name", default=None, help="search directory name (default <model>-<dataset>-<tuner>)"
    )
    parser.add_argument("--overwrite", action="store_true", help="start afresh instead of resuming an existing search")
    parser.add_argument(
        "--summary",
        metavar="DIR",
        default=None,
        help="only (re)write the summaries and plots of an existing search directory, and print them",
    )
    parser.add_argument(
        "--top", type=positive_int, default=5, help="trials printed at the end (the search page lists them all)"
    )
    parser.add_argument(
        "--check",
        action="store_true",
        help="open search.html in headless Chromium; fail unless every figure loads without console errors",
    )
    add_data_arguments(parser, tables=True)
    add_table_arguments(parser)
    parser.add_argument(
        "--seed",
        type=int,
        default=DEFAULTS.seed,
        help="fixes the split, the tuner's sampling and each trial's initialisation",
    )
    parser.add_argument(
        "--steps-per-execution",
        type=positive_int,
        default=DEFAULTS.steps_per_execution,
        help="training steps per graph call",
    )
    parser.add_argument(
        "--retrain",
        action="store_true",
        help="after the search, retrain the best trial, evaluate on test once and export it",
    )
    parser.add_argument("--retrain-on", default="train", choices=TRAIN_ON, help="what the retrained model fits on")
    parser.add_argument(
        "--retrain-epochs",
        type=positive_int,
        default=None,
        help="epochs for the retrained model (default: the best trial's best epoch count)",
    )
    parser.add_argument("--output-dir", default=None, help="run folder of the retrained model (default runs/...)")
    parser.add_argument("--export-dir", default="saved_models", help="export root of the retrained model")
    parser.add_argument(
        "--export-format",
        type=export_formats,
        default=None,
        help="with --retrain: savedmodel (always written), onnx, litert, comma-separated, as tfcourse.train's",
    )
    parser.add_argument(
        "--role",
        choices=("chief", "worker"),
        default=None,
        help="KerasTuner distributed mode: the chief hands out trials, workers train them",
    )
    parser.add_argument(
        "--oracle",
        type=_oracle_address,
        default=None,
        metavar="HOST:PORT",
        help="the chief's address (the chief listens on it); needed with --role",
    )
    parser.add_argument("--tuner-id", default=None, help="a worker's unique name (default worker-<host>-<pid>)")
    parser.add_argument(
        "--distribution",
        choices=("none", "mirrored"),
        default="none",
        help="mirrored: train each trial's model with tf.distribute.MirroredStrategy over local devices",
    )
    parser.add_argument(
        "--verbose",
        type=int,
        choices=(0, 1, 2),
        default=None,
        help="Keras progress output (default: bar on a terminal, a line per epoch otherwise)",
    )
    return parser


def config_from_args(parser: argparse.ArgumentParser, args: argparse.Namespace) -> TuneConfig:
    """The search's settings; a table (``--dataset csv:PATH`` or ``seattle_weather``) gets a
    ``TableDataConfig`` and refuses the image flags, an image dataset refuses the table flags."""
    if is_table(args.dataset):
        refuse_given(parser, args, IMAGE_DATA_FLAGS + ("precision", "export_format"), f"for {args.dataset}")
        data, model = table_data_config_from_args(args), args.model or TableConfig.model
    else:
        refuse_table_flags(parser, args, TABLE_DATA_FLAGS)
        data, model = data_config_from_args(args), args.model or DEFAULTS.model
    return TuneConfig(
        model=model,
        tuner=args.tuner,
        max_trials=args.max_trials,
        epochs=args.epochs,
        max_epochs=args.max_epochs,
        factor=args.factor,
        executions_per_trial=args.executions_per_trial,
        objective=args.objective,
        patience=args.patience,
        space=load_space(args.space),
        directory=args.directory,
        project_name=args.project_name,
        overwrite=args.overwrite,
        max_minutes=args.max_minutes,
        seed=args.seed,
        steps_per_execution=args.steps_per_execution,
        lr_schedule=args.lr_schedule,
        precision=args.precision,
        cv=args.cv,
        keep_checkpoints=args.keep_checkpoints,
        data=data,
    )


def configure_distributed(role: Optional[str], oracle, tuner_id: Optional[str]) -> None:
    """Sets KerasTuner's ``KERASTUNER_*`` environment for a chief or a worker.

    Raises:
        ValueError: Without ``--oracle``, or with a worker name containing ``chief``
            (KerasTuner treats any such name as the chief).
    """
    if role is None:
        if oracle or tuner_id:
            raise ValueError("--oracle and --tuner-id only apply with --role chief or --role worker.")
        return
    if oracle is None:
        raise ValueError(f"--role {role} needs --oracle HOST:PORT (the address the chief listens on).")
    if role == "chief":
        name = "chief"
    else:
        name = tuner_id or f"worker-{socket.gethostname()}-{os.getpid()}"
        if "chief" in name:
            raise ValueError(f"--tuner-id {name!r}: a worker's name must not contain 'chief'.")
    os.environ.update(KERASTUNER_TUNER_ID=name, KERASTUNER_ORACLE_IP=oracle[0], KERASTUNER_ORACLE_PORT=str(oracle[1]))


def show_summary(project_directory: str, top: int, check: bool = False) -> None:
    """Rewrites a search directory's summaries and its page and prints the best trials and where the page
    is; with ``check`` the page is loaded in headless Chromium."""
    from tfcourse.jobs import search
    from tfcourse.tuning import search_state

    paths = search.summarize(project_directory)
    print("\n".join(search_state.top_trials_lines(project_directory, top)))
    print("tfcourse: wrote " + ", ".join(os.path.join(project_directory, name) for name in sorted(paths)))
    print(f"tfcourse: search page {paths['search.html']}")
    if check:
        check_page(os.path.join(project_directory, "search.html"))


@contextlib.contextmanager
def _new_search_removed_on_failure(project_dir: str, role: Optional[str]):
    """A search folder this command creates is removed again if the command fails (a full disk, Ctrl-C)
    before any trial completed: nothing half-written is left; one with a completed trial is kept to resume."""
    made = [] if role == "worker" else rundir.missing_folders(project_dir)
    try:
        yield
    except BaseException:
        from tfcourse.tuning import search_state

        if made and not search_state.completed_trials(project_dir):
            shutil.rmtree(project_dir, ignore_errors=True)
            rundir.remove_empty_folders(made[1:])
        raise


def check_page(path: str) -> None:
    """``--check``: the search page in headless Chromium (every figure loaded, no console error)."""
    from tfcourse.pages import browser

    browser.require_clean_page(path, "tfcourse.tune")


def main(argv: Optional[List[str]] = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    with cli_errors(parser, output=args.directory):
        if args.check:
            from tfcourse.pages import browser

            browser.require_available()  # before the search, not after it
        if args.summary:
            show_summary(args.summary, args.top, check=args.check)
            return 0
        config = config_from_args(parser, args)
        if args.export_format and not args.retrain:
            raise ValueError("--export-format sets what --retrain exports; add --retrain.")
        machine.load_tensorflow(show_startup=args.verbose == 2)
        from tfcourse.jobs import search  # TensorFlow loads here, after the flags are read

        machine.freeze_imported_objects()
        if args.export_format:  # before the search: a missing converter must not wait for its end
            from tfcourse.serving import runtimes

            runtimes.require(args.export_format)

        if args.show_space:
            print_space(config.model, config.data.dataset, search.space_rows(config, download=not args.no_download))
            return 0
        search.validate(config)  # a safe folder name before a lock file is put beside it
        busy = (
            "wait until it has finished (this command then resumes its trials), or pass another --project-name; "
            "to share one search, start it with --role chief and the others with --role worker"
        )
        project = search.project_dir(config)
        lock = (
            contextlib.nullcontext()
            if args.role == "worker"  # workers train the chief's trials in its folder
            else rundir.folder_lock(project, busy)
        )
        with lock, _new_search_removed_on_failure(project, args.role):
            configure_distributed(args.role, args.oracle, args.tuner_id)
            strategy = None
            if args.distribution == "mirrored":
                import tensorflow as tf

                strategy = tf.distribute.MirroredStrategy()
                print(f"tfcourse: MirroredStrategy over {strategy.num_replicas_in_sync} device(s)", flush=True)
            result = search.run_search(
                config,
                download=not args.no_download,
                verbose=verbosity(args),
                role=args.role,
                distribution_strategy=strategy,
                top=args.top,
                retrain=(args.retrain_epochs, args.retrain_on) if args.retrain and args.role != "worker" else None,
            )
            if args.retrain and args.role != "worker":
                search.retrain_best(
                    config,
                    result.project_dir,
                    train_on=args.retrain_on,
                    epochs=args.retrain_epochs,
                    output_dir=args.output_dir,
                    export_dir=args.export_dir,
                    download=not args.no_download,
                    verbose=verbosity(args),
                    export_formats=args.export_format or ("savedmodel",),
                )
            if args.check and result.summary_paths:  # after --retrain: the page links the retrained run's report
                check_page(result.summary_paths["search.html"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
