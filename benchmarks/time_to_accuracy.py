"""Accuracy against training wall time: the README's main job, the fast recipe on several models, float32
against bfloat16.

Runs each job with the real ``python -m tfcourse.train`` in its own process, one after the other
(``_runs``: a finished run folder of exactly this configuration and library versions is reused), into
``<results>/<name>/``, and tabulates the test accuracy, the training time, training images/s, the
precision the run used, (runs with a validation split) the validation accuracy reached after 60,
120 and 180 seconds of training steps (the last epoch finished by then), and the Grad-CAM silhouette
ratio the run report measures (mean heat inside the garment over mean heat on the background, on 200
correctly classified test images; above 1: the heat lies on the garment).

    python benchmarks/time_to_accuracy.py --jobs main-job fast-vgg-bf16 fast-vgg-fp32
Writes benchmarks/results/time_to_accuracy.md (or --out): only the jobs run (or reused) this time.
"""

from __future__ import annotations

import argparse
import os
import time

from _runs import read_run_file, train_or_reuse  # benchmarks/ is on sys.path when a script in it runs
from _tables import publish

HERE = os.path.dirname(os.path.abspath(__file__))
FAST = "--recipe fast --split official --train-on train+val"
# name -> tfcourse.train flags
JOBS = {
    "main-job": "--model vgg --recipe quick --split official",  # the README's command (a), without --export
    "fast-vgg-bf16": f"--model vgg {FAST} --precision mixed_bfloat16",
    "fast-vgg-fp32": f"--model vgg {FAST} --precision float32",
    "fast-vgg-bf16-5": "--model vgg --recipe fast --split official --epochs 5 --precision mixed_bfloat16",
    "fast-vgg-fp32-5": "--model vgg --recipe fast --split official --epochs 5 --precision float32",
    "fast-vgg-bf16-5-noaug": "--model vgg --recipe fast --split official --epochs 5 --precision mixed_bfloat16 "
    "--no-augment",
    "fast-cnn": f"--model cnn {FAST} --precision mixed_bfloat16",
    "fast-resnet_small": f"--model resnet_small {FAST} --precision mixed_bfloat16 --epochs 10",
    "fast-vgg-20": f"--model vgg {FAST} --precision mixed_bfloat16 --epochs 20",  # under 15 minutes on 2 EPYC cores
    "fast-vgg-21": f"--model vgg {FAST} --precision mixed_bfloat16 --epochs 21",  # ~15 minutes on 2 EPYC cores
    "fast-vgg-36": f"--model vgg {FAST} --precision mixed_bfloat16 --epochs 36",
}
MARKS = (60, 120, 180)


def accuracy_by(history, epoch_seconds, seconds: float):
    """Validation accuracy of the last epoch finished within ``seconds`` of training steps (``None``: none)."""
    elapsed, reached = 0.0, None
    for accuracy, spent in zip(history.get("val_accuracy") or [], epoch_seconds):
        elapsed += spent
        if elapsed > seconds:
            break
        reached = accuracy
    return reached


def silhouette(run) -> float:
    """The run report's Grad-CAM silhouette ratio of a finished run (an ``artifacts.Run``;
    ``gallery.silhouette_measure``)."""
    from tfcourse.pages import gallery

    return gallery.silhouette_measure(run, run.keras_model("Grad-CAM"), "gradcam")["ratio"]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--jobs", nargs="+", default=["main-job"], choices=list(JOBS))
    parser.add_argument("--results", default=os.path.join(HERE, "results", "time_to_accuracy"))
    parser.add_argument("--out", default=os.path.join(HERE, "results", "time_to_accuracy.md"))
    args = parser.parse_args(argv)
    os.makedirs(args.results, exist_ok=True)
    from tfcourse.evaluation import artifacts  # TensorFlow loads here, after the flags are read

    lines = [
        "Fashion-MNIST, official test set (10,000 images), seed 42; one run per row, one after the other. "
        "Training time: the run's train_seconds (model.fit's wall time: training steps, graph tracing and "
        "validation passes). Validation accuracy at 60/120/180 s: of the last epoch whose training steps "
        "had all finished by then (blank: trained on train+val, no validation split).",
        "",
        "| job | command | precision | epochs | training images/s | training s | test accuracy | "
        + " | ".join(f"val acc at {m} s" for m in MARKS)
        + " | Grad-CAM silhouette ratio |",
        "|---|---|---|---:|---:|---:|---:|" + "---:|" * len(MARKS) + "---:|",
    ]
    for name in args.jobs:
        run_dir = os.path.join(args.results, name)
        start = time.perf_counter()
        train_or_reuse(JOBS[name].split(), run_dir, name)
        print(f"{name}: {time.perf_counter() - start:.0f} s", flush=True)
        metrics, record = read_run_file(run_dir, "metrics.json"), read_run_file(run_dir, "config.json")
        history = read_run_file(run_dir, "history.json")
        marks = [accuracy_by(history, metrics["epoch_train_seconds"], m) for m in MARKS]
        lines.append(
            f"| {name} | `python -m tfcourse.train {JOBS[name]}` | {record['precision']['policy']} | "
            f"{metrics['epochs_trained']} | {metrics['train_images_per_second']:,.0f} | "
            f"{metrics['train_seconds']:.0f} | {metrics['test_accuracy']:.2%} | "
            + " | ".join("" if m is None else f"{m:.2%}" for m in marks)
            + f" | {silhouette(artifacts.load(run_dir)):.2f} |"
        )
    publish("\n".join(lines) + "\n", args.out)


if __name__ == "__main__":
    main()
