"""Each piece of the quick/fast recipe taken away (or added) alone: what it is worth on this machine.

The base is the README's main job, ``python -m tfcourse.train --model vgg --recipe quick --split official``
(4 epochs, seed 42). Each variant changes one thing:

- ``no-label-smoothing``: the recipe with label smoothing 0 (a recipe variant registered in the worker
  process: the command line has no flag for it);
- ``adam-standard``: ``--recipe standard`` (Adam at the model's learning rate with plateau cuts, no label
  smoothing) with everything else the quick recipe sets given as flags: batch 128, 4 epochs, flip TTA, the
  global-max-pooling head and no dropout;
- ``vgg-own-head``: the recipe without its model defaults (the vgg's flatten + dense 256 head with dropout);
- ``augment``: ``--augment`` (flips and 2-pixel shifts in training, as the fast recipe has);
- ``batch-256``: ``--batch-size 256`` (the fast recipe's batch, half the steps).

Every run is ``tfcourse.train`` in its own process, one after the other, into ``<results>/<name>/`` (reused
when it holds a finished run of exactly this configuration); the table gives the test accuracy with the
flip test-time augmentation of the run (``metrics.json``) and without it (the saved model on the test
split, here), the training time and the Grad-CAM silhouette ratio.

    python benchmarks/recipe_ablation.py [--variants base no-label-smoothing ...]
Writes benchmarks/results/recipe_ablation.md (or --out).
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import subprocess
import sys

from _runs import reuse_differences  # benchmarks/ is on sys.path when a script in it runs
from _tables import publish

HERE = os.path.dirname(os.path.abspath(__file__))
BASE = "--model vgg --recipe quick --split official"
# name -> (tfcourse.train flags, changes to the quick recipe or None, what it changes)
VARIANTS = {
    "base": (BASE, None, "the quick recipe as it is"),
    "no-label-smoothing": (BASE, {"label_smoothing": 0.0}, "label smoothing 0.1 -> 0"),
    "adam-standard": (
        "--model vgg --recipe standard --split official --batch-size 128 --epochs 4 --tta flip "
        "--hp head=gmp --hp dense_layers=0 --hp conv_dropout=0 --hp dense_dropout=0",
        None,
        "SGD-Nesterov one-cycle + label smoothing -> Adam with plateau cuts",
    ),
    "vgg-own-head": (BASE, {"model_defaults": {}}, "global max pooling to the logits -> flatten, dense 256, dropout"),
    "augment": (f"{BASE} --augment", None, "+ flips and 2-pixel shifts in training"),
    "batch-256": (f"{BASE} --batch-size 256", None, "batch 128 -> 256"),
}


def register(name: str):
    """The variant's ``tfcourse.train`` flags, its recipe (if it changes the quick one) registered in
    ``config.RECIPES`` under ``quick-<name>`` in this process, for the run and for reading the run back."""
    from tfcourse import config

    flags, changes, _ = VARIANTS[name]
    argv = flags.split()
    if changes is not None:
        recipe_name = f"quick-{name}"
        config.RECIPES[recipe_name] = dataclasses.replace(config.RECIPES["quick"], name=recipe_name, **changes)
        argv[argv.index("quick")] = recipe_name
    return argv


def worker(name: str, run_dir: str) -> int:
    """Trains variant ``name`` in this process."""
    from tfcourse import train

    return train.main(register(name) + ["--output-dir", run_dir, "--verbose", "2"])


def train_variant(name: str, run_dir: str) -> None:
    """The variant in a fresh process (its log beside the run), unless ``run_dir`` holds it finished."""
    if os.path.isfile(os.path.join(run_dir, "metrics.json")):
        differences = reuse_differences(run_dir, register(name))  # every setting, the variant's recipe included
        if differences:
            raise SystemExit(f"{name}: {run_dir} holds another run ({'; '.join(differences)}); delete it to retrain.")
        print(f"{name}: reusing {run_dir}", flush=True)
        return
    command = [sys.executable, os.path.abspath(__file__), "--worker", name, run_dir]
    print("$ " + " ".join(command), flush=True)
    with open(run_dir.rstrip("/") + ".log", "w", encoding="utf-8") as log:
        if subprocess.run(command, stdout=log, stderr=subprocess.STDOUT).returncode != 0:
            raise SystemExit(f"{name} failed; see {run_dir}.log")


def accuracy_without_tta(run) -> float:
    """The saved model's test accuracy on single images (no flip averaging), of an ``artifacts.Run``."""
    import numpy as np

    test = run.test_data()
    logits = run.keras_model("accuracy").predict(run.model_inputs(test.images), batch_size=500, verbose=0)
    return float(np.mean(np.argmax(logits, axis=1) == test.labels))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    parser.add_argument("--results", default=os.path.join(HERE, "results", "recipe_ablation"))
    parser.add_argument("--out", default=os.path.join(HERE, "results", "recipe_ablation.md"))
    parser.add_argument("--worker", nargs=2, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        return worker(*args.worker)
    os.makedirs(args.results, exist_ok=True)
    for name in args.variants:  # all training first, one process at a time; then the measurements
        train_variant(name, os.path.join(args.results, name))
    from time_to_accuracy import silhouette

    from tfcourse.evaluation import artifacts

    lines = [
        f"Fashion-MNIST, official split (54,000 training images, 10,000 test images), seed 42, one run per row, "
        f"one after the other. Base: `python -m tfcourse.train {BASE}`; each row changes one thing.",
        "",
        "| variant | change | training s | test accuracy (flip TTA) | without TTA | vs base (flip TTA) | "
        "Grad-CAM silhouette ratio |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    base = None
    for name in args.variants:
        register(name)
        run_dir = os.path.join(args.results, name)
        run = artifacts.load(run_dir)  # once: the test split and the model serve both measurements
        metrics = run.metrics
        accuracy = metrics["test_accuracy"]
        base = accuracy if name == "base" else base
        delta = "" if base is None or name == "base" else f"{100 * (accuracy - base):+.2f} points"
        lines.append(
            f"| {name} | {VARIANTS[name][2]} | {metrics['train_seconds']:.0f} | {accuracy:.2%} | "
            f"{accuracy_without_tta(run):.2%} | {delta} | {silhouette(run):.2f} |"
        )
    publish("\n".join(lines) + "\n", args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
