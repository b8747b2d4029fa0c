"""``python -m tfcourse.export RUN``: export a finished run folder as a TF Serving SavedModel.

For a run trained without ``--export``, or whose export failed after training (full disk,
read-only export root): the same export and fresh-process check as ``tfcourse.train --export``,
from the run folder's ``model.keras`` and ``config.json``. Bad input exits with status 2.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import List, Optional

from tfcourse import machine
from tfcourse.cli import HelpFormatter, export_formats


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m tfcourse.export",
        description="Export a run folder's model as a TensorFlow Serving SavedModel (<export-dir>/<model>/<version>/), "
        "checked in a fresh process before it gets its version number; records it in RUN/export.json.",
        formatter_class=HelpFormatter,
    )
    parser.add_argument("run", metavar="RUN", help="a run folder written by python -m tfcourse.train")
    parser.add_argument("--export-dir", default="saved_models", help="export root: <dir>/<model>/<version>/")
    parser.add_argument(
        "--model-name", default=None, help="the model's name under the export root (default: the run's model)"
    )
    parser.add_argument("--no-verify", action="store_true", help="skip the fresh-process check")
    parser.add_argument(
        "--format",
        type=export_formats,
        default=("savedmodel",),
        help="savedmodel (always written), onnx, litert (float32, float16 and int8 files), comma-separated; "
        "each file checked in a fresh process against the model (needs the [runtimes] extra)",
    )
    return parser


def export_run_folder(
    run_dir: str, export_root: str, model_name: Optional[str] = None, verify: bool = True, formats=("savedmodel",)
) -> str:
    """Exports a run folder's model; returns the version folder.

    A table run is exported for raw rows (``table_run.export_run``), checked on its test rows. The
    check of an image run runs on the run's own test images when its data can be loaded without a
    download, else on seeded random images (it compares the served and the Keras model's
    probabilities, so any input shows a mismatch). ONNX/LiteRT ``formats`` need the run's data (the
    int8 file is calibrated on its training images).

    Raises:
        ValueError: If ``run_dir`` is not a run folder, its files cannot be read, or the export fails.
    """
    import numpy as np

    machine.load_tensorflow()
    from tfcourse import rundir
    from tfcourse.evaluation import artifacts
    from tfcourse.jobs import table_run
    from tfcourse.jobs.image_run import calibration_images, export_run
    from tfcourse.rundir import is_table_run
    from tfcourse.serving import runtimes

    runtimes.require(formats)
    if is_table_run(run_dir):  # raw rows in: the table is read again for the check's test rows
        if tuple(formats) != ("savedmodel",):
            raise ValueError(f"--format {','.join(formats)}: a table run is exported as a SavedModel only.")
        rundir.check_writable_folder(export_root, "--export-dir")
        run = table_run.load_run(run_dir)
        name = model_name or json_model(run_dir)
        return table_run.export_run(run, export_root, name, verify=verify)
    run = artifacts.load(run_dir)
    if run.export_dir is not None:
        raise ValueError(f"{run_dir} is already an export; pass the run folder it came from.")
    rundir.check_writable_folder(export_root, "--export-dir")
    model = run.keras_model("export")
    calibration = None
    try:
        test = run.test_data()
        images = test.images[:32]
        if tuple(formats) != ("savedmodel",):
            calibration = calibration_images(test.dataset.pooled()[0], test.splits, int(run.record["config"]["seed"]))
    except ValueError:
        if tuple(formats) != ("savedmodel",):
            raise ValueError(
                f"--format {','.join(formats)} needs the run's data (test images for the check, training images "
                "for the int8 calibration), which cannot be loaded here."
            ) from None
        shape = tuple(model.inputs[0].shape[1:])
        images = np.random.default_rng(0).integers(0, 256, size=(32,) + shape, dtype=np.uint8)
        print("tfcourse: the run's data is not available here; checking the export on 32 random images", flush=True)
    name = model_name or (run.record.get("config") or {}).get("model") or "model"
    return export_run(
        model,
        run_dir,
        export_root,
        name,
        run.class_names,
        run.normalization,
        images,
        run.metrics.get("test_accuracy"),
        verify=verify,
        tta=run.tta,
        formats=formats,
        calibration=calibration,
    )


def json_model(run_dir: str) -> str:
    from tfcourse import rundir

    record = rundir.read_json(os.path.join(run_dir, rundir.CONFIG_FILE), "run configuration")
    return record["config"]["model"]


def main(argv: Optional[List[str]] = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not os.path.isdir(args.run):
        parser.exit(
            2,
            f"{parser.prog}: error: {args.run} is not a folder; pass a run folder written by "
            "python -m tfcourse.train.\n",
        )
    from tfcourse.cli import cli_errors

    with cli_errors(parser):
        export_run_folder(args.run, args.export_dir, args.model_name, verify=not args.no_verify, formats=args.format)
    return 0


if __name__ == "__main__":
    sys.exit(main())
