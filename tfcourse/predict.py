"""``python -m tfcourse.predict MODEL IMAGE_OR_FOLDER...``: classify your own image files.

MODEL is a run folder, its ``model.keras``, or an export (``saved_models/<name>`` for its latest version,
or ``saved_models/<name>/<version>``). Each PNG/JPEG/BMP/GIF file (a folder: every such file inside it) is
brought to the model's input (``tfcourse.evaluation.inference.prepare_image``) and its top classes are printed;
``--output`` writes them as CSV or JSON, ``--grid`` draws each image as the model saw it with its top 3.
Unreadable files are listed and skipped; when none can be read the command exits with status 2.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import List, Optional

from tfcourse import machine, rundir
from tfcourse.cli import HelpFormatter, positive_int
from tfcourse.config import INVERT_MODES

OUTPUT_FORMATS = (".csv", ".json")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m tfcourse.predict",
        description="Predict the classes of image files with a trained model (a run folder, its model.keras, "
        "or a SavedModel export).",
        formatter_class=HelpFormatter,
    )
    parser.add_argument("model", metavar="MODEL", help="run folder, .keras file, or saved_models/<name>[/<version>]")
    parser.add_argument("images", metavar="IMAGE_OR_FOLDER", nargs="+", help="image files or folders of them")
    parser.add_argument("--top-k", type=positive_int, default=3, help="classes listed per image")
    parser.add_argument(
        "--invert",
        choices=INVERT_MODES,
        default="auto",
        help="invert the pictures (dark garment on white paper -> the light-on-black of Fashion-MNIST); auto: "
        "when a picture's border is light and the model's data is light on black",
    )
    parser.add_argument("--output", default=None, metavar="FILE", help="write the predictions to FILE.csv or FILE.json")
    parser.add_argument("--grid", default=None, metavar="FILE.png", help="draw the images as the model saw them")
    parser.add_argument("--batch-size", type=positive_int, default=256, help="images per prediction batch")
    return parser


def _check_outputs(args) -> None:
    if args.output and os.path.splitext(args.output)[1].lower() not in OUTPUT_FORMATS:
        raise ValueError(f"--output {args.output}: name a .csv or .json file.")
    if args.grid and not args.grid.lower().endswith(".png"):
        raise ValueError(f"--grid {args.grid}: name a .png file.")
    for path in filter(None, (args.output, args.grid)):
        folder = os.path.dirname(os.path.abspath(path))
        if not os.path.isdir(folder):
            raise ValueError(f"{path}: its folder {folder} does not exist; create it or write elsewhere.")
        rundir.check_writable_folder(os.path.dirname(path) or ".", "--output" if path == args.output else "--grid")


def _unlike(row) -> str:
    found = row.get("novelty")
    if found is None:
        return "?"
    return f"{'YES' if found['unlike_training_data'] else 'no'} ({found['value']:.2f})"


def table(rows, top_k: int) -> str:
    """The predictions as a plain-text table: file, then ``class probability`` for each of the top k, then
    whether the image is unlike the training data (its novelty score in brackets)."""
    header = ["file"] + [f"top {i + 1}" for i in range(top_k)] + ["unlike the training data?"]
    lines = [[row["file"]] + [f"{name} {p:.3f}" for name, p in row["top"]] + [_unlike(row)] for row in rows]
    widths = [max(len(str(line[i])) for line in [header] + lines if i < len(line)) for i in range(len(header))]
    return "\n".join(
        "  ".join(str(cell).ljust(w) for cell, w in zip(line, widths)).rstrip() for line in [header] + lines
    )


def write_output(path: str, rows, class_names) -> None:
    """CSV (file, inverted, top1, p1, ..., then one probability column per class) or JSON, atomically."""
    import csv
    import io

    if path.lower().endswith(".json"):
        payload = [
            {
                "file": row["file"],
                "inverted": row["inverted"],
                "top": [{"class": name, "probability": p} for name, p in row["top"]],
                "probabilities": dict(zip(class_names, (float(p) for p in row["probabilities"]))),
                "novelty": row.get("novelty"),
            }
            for row in rows
        ]
        rundir.write_json(path, payload)
        return
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    top_k = len(rows[0]["top"])
    writer.writerow(
        ["file", "inverted"]
        + [f"{kind}{i + 1}" for i in range(top_k) for kind in ("class", "p")]
        + [f"p_{name}" for name in class_names]
        + ["novelty_score", "novelty_threshold", "unlike_training_data"]
    )
    for row in rows:
        writer.writerow(
            [row["file"], row["inverted"]]
            + [value for name, p in row["top"] for value in (name, f"{p:.6f}")]
            + [f"{p:.6f}" for p in row["probabilities"]]
            + (
                [
                    f"{row['novelty']['value']:.6f}",
                    f"{row['novelty']['threshold']:.6f}",
                    row["novelty"]["unlike_training_data"],
                ]
                if row.get("novelty")
                else ["", "", ""]
            )
        )
    rundir.write_text(path, buffer.getvalue())


def predict_command(args) -> None:
    machine.load_tensorflow()
    from tfcourse.evaluation import inference
    from tfcourse.pages import plots  # TensorFlow loads here, after the flags are read

    predictor = inference.open_model(args.model)
    rows, skipped, images = inference.predict_files(predictor, args.images, args.invert, args.top_k, args.batch_size)
    for path, reason in skipped:
        print(f"tfcourse.predict: skipped {path}: {reason}", file=sys.stderr)
    if not rows:
        raise ValueError(
            f"none of the {len(skipped)} file(s) given could be read as an image"
            if skipped
            else "no image files found (PNG, JPEG, BMP or GIF) in " + ", ".join(args.images)
        )
    print(f"tfcourse.predict: {predictor.kind} {predictor.source}, {len(rows)} image(s)")
    print(table(rows, min(args.top_k, len(predictor.class_names))))
    calibration = predictor.calibration()
    if calibration is None:
        print("tfcourse.predict: unlike the training data? '?': the run's validation images are not on this machine")
    else:
        print(
            f"tfcourse.predict: unlike the training data = {calibration['score']} above {calibration['threshold']:.2f}, "
            f"the {calibration['quantile']:.0%} quantile of {calibration['images']} validation images (so about "
            f"{1 - calibration['quantile']:.0%} of images like the training data are flagged too)"
        )
    if args.output:
        write_output(args.output, rows, predictor.class_names)
        print(f"tfcourse.predict: wrote {args.output}")
    if args.grid:
        titles = [
            os.path.basename(row["file"])[:18]
            + ("\n(inverted)" if row["inverted"] else "")
            + "".join(f"\n{name} {p:.2f}" for name, p in row["top"][:3])
            + ("\nUNLIKE TRAINING DATA" if (row.get("novelty") or {}).get("unlike_training_data") else "")
            for row in rows
        ]
        plots.plot_examples(images, titles, args.grid, f"predictions of {predictor.source}")
        print(f"tfcourse.predict: wrote {args.grid}")


def main(argv: Optional[List[str]] = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    from tfcourse.cli import cli_errors

    with cli_errors(parser):
        _check_outputs(args)
        predict_command(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
