"""One trained model in four runtimes: the SavedModel (TensorFlow), ONNX (ONNX Runtime) and LiteRT float32,
float16 and int8 (the LiteRT interpreter), on all 10,000 Fashion-MNIST test images.

For the course cnn and the README's vgg (the runs of ``what_to_expect.py``, reused when they exist with
exactly that configuration, else trained), the float32 copy of the trained model is exported with
``--export-format savedmodel,onnx,litert`` (``tfcourse.serving.savedmodel.export_saved_model``: preprocessing, softmax
and the run's test-time augmentation inside every file; int8 calibrated on 500 training images) into
``benchmarks/results/runtimes/<model>/``. Per format: file size, test accuracy, agreement with the
SavedModel (largest class-probability difference on the first 1,000 and on all 10,000 test images, share
of the same top-1 class), latency of one image (median of single-image calls) and images/s at batch 256
(median of passes over the 10,000 images). The formats are timed interleaved, round by round, in this one
process, each runtime with as many threads as the machine has cores.

    python benchmarks/runtimes.py [--models cnn vgg] [--rounds 5]   # ~4 min with the runs there
Writes benchmarks/results/runtimes.md (or --out). Needs the [runtimes] extra.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import time

import numpy as np
from _runs import train_or_reuse  # benchmarks/ is on sys.path when a script in it runs
from _tables import publish
from what_to_expect import JOBS

HERE = os.path.dirname(os.path.abspath(__file__))
RUNS = {"cnn": "cnn-fashion", "vgg": "vgg-fashion"}  # what_to_expect's run of each model
LABELS = {
    "savedmodel": "SavedModel (TensorFlow)",
    "onnx": "ONNX (ONNX Runtime)",
    "litert_float32": "LiteRT float32",
    "litert_float16": "LiteRT float16",
    "litert_int8": "LiteRT int8",
}


def export_all_formats(run_dir: str, out_root: str, name: str):
    """The float32 copy of the run's model exported in every format; returns (version folder, run, seconds)."""
    from tfcourse.evaluation import artifacts
    from tfcourse.jobs.image_run import calibration_images
    from tfcourse.models import float32_copy
    from tfcourse.serving import savedmodel

    run = artifacts.load(run_dir)
    test = run.test_data()
    shutil.rmtree(os.path.join(out_root, name), ignore_errors=True)
    start = time.perf_counter()
    version = savedmodel.export_saved_model(
        float32_copy(run.keras_model()),
        out_root,
        name,
        run.class_names,
        run.normalization,
        tta=run.tta,
        examples=test.images[:32],
        formats=("savedmodel", "onnx", "litert"),
        calibration=calibration_images(test.dataset.pooled()[0], test.splits, int(run.record["config"]["seed"])),
    )
    return version, run, time.perf_counter() - start


def predictors(version: str, threads: int):
    """Format -> ``predict(float32 images) -> probabilities``, each loaded once."""
    import tensorflow as tf

    from tfcourse.serving import runtime_runner

    serve = tf.saved_model.load(version).signatures["serving_default"]
    found = {"savedmodel": lambda images: serve(images=tf.constant(images))["probabilities"].numpy()}
    for key, file_name in runtime_runner.FILES.items():
        found[key] = runtime_runner.load(os.path.join(version, file_name), threads=threads)
    return found


def measure(version: str, run, rounds: int, threads: int):
    """Rows of the table for one model."""
    from tfcourse.serving import runtime_runner

    test = run.test_data()
    images, labels = test.images.astype(np.float32), test.labels
    predict = predictors(version, threads)
    probabilities = {key: runtime_runner.in_batches(fn, images) for key, fn in predict.items()}
    reference = probabilities["savedmodel"]
    latency = {key: [] for key in predict}
    throughput = {key: [] for key in predict}
    for _ in range(rounds):  # interleaved: every format once per round, medians over rounds
        for key, fn in predict.items():
            for i in range(5):  # warm the single-image shape
                fn(images[i : i + 1])
            calls = []
            for i in range(50):
                start = time.perf_counter()
                fn(images[i : i + 1])
                calls.append(time.perf_counter() - start)
            latency[key].append(statistics.median(calls))
            start = time.perf_counter()
            runtime_runner.in_batches(fn, images)
            throughput[key].append(len(images) / (time.perf_counter() - start))
    rows = []
    for key in predict:
        path = version if key == "savedmodel" else os.path.join(version, runtime_runner.FILES[key])
        size = folder_bytes(path) if key == "savedmodel" else os.path.getsize(path)
        diff = np.abs(probabilities[key] - reference)
        rows.append(
            {
                "format": key,
                "mb": size / 1e6,
                "accuracy": float(np.mean(probabilities[key].argmax(axis=1) == labels)),
                "dp_1000": float(diff[:1000].max()),
                "dp_all": float(diff.max()),
                "same_top1": float(np.mean(probabilities[key].argmax(axis=1) == reference.argmax(axis=1))),
                "latency_ms": 1000 * statistics.median(latency[key]),
                "per_second": statistics.median(throughput[key]),
            }
        )
    return rows


def folder_bytes(folder: str) -> int:
    """The SavedModel's own bytes: saved_model.pb and variables/ (not the other formats beside it)."""
    total = os.path.getsize(os.path.join(folder, "saved_model.pb"))
    for root, _, names in os.walk(os.path.join(folder, "variables")):
        total += sum(os.path.getsize(os.path.join(root, name)) for name in names)
    return total


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+", default=list(RUNS), choices=list(RUNS))
    parser.add_argument("--rounds", type=int, default=5, help="timing rounds (medians over them)")
    parser.add_argument("--runs", default=os.path.join(HERE, "results", "what_to_expect"), help="the trained runs")
    parser.add_argument("--exports", default=os.path.join(HERE, "results", "runtimes"))
    parser.add_argument("--out", default=os.path.join(HERE, "results", "runtimes.md"))
    args = parser.parse_args(argv)
    threads = os.cpu_count() or 1
    lines = [
        "| model | format | file MB | test accuracy | max \\|dp\\| vs SavedModel, first 1,000 / all | same top-1 | "
        "1 image, ms | images/s at batch 256 |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    notes = []
    for model in args.models:
        run_dir = os.path.join(args.runs, RUNS[model])
        train_or_reuse(JOBS[RUNS[model]].split(), run_dir, RUNS[model])
        version, run, seconds = export_all_formats(run_dir, args.exports, model)
        precision = (run.record.get("precision") or {}).get("policy") or run.record["config"]["precision"]
        notes.append(
            f"{model}: run `python -m tfcourse.train {JOBS[RUNS[model]]}` (trained in {precision}, "
            f"test-time augmentation {run.tta}); exporting its float32 copy in all formats, each checked, took "
            f"{seconds:.0f} s."
        )
        for row in measure(version, run, args.rounds, threads):
            lines.append(
                f"| {model} | {LABELS[row['format']]} | {row['mb']:.2f} | {100 * row['accuracy']:.2f}% | "
                f"{row['dp_1000']:.1e} / {row['dp_all']:.1e} | {100 * row['same_top1']:.2f}% | "
                f"{row['latency_ms']:.2f} | {row['per_second']:,.0f} |"
            )
    lines += [
        "",
        f"Fashion-MNIST official test split (10,000 images), raw pixels in, probabilities out, {threads} threads "
        f"per runtime; medians over {args.rounds} interleaved rounds (50 single-image calls, one pass at batch 256 "
        "each). The SavedModel's size is saved_model.pb + variables/.",
        "",
        *notes,
    ]
    publish("\n".join(lines) + "\n", args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
