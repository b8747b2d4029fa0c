"""Every registered model on one dataset: size, cost, training speed, accuracy, side by side.

For each model, ``python -m tfcourse.train --model NAME --split official --epochs N`` runs in
its own process into ``<results>/<model>/`` (a run folder that already holds ``metrics.json``
is reused, so an interrupted benchmark resumes; delete it to retrain). The machine's FP32
matmul rate is measured in this run (TensorFlow and NumPy, 2048x2048, best of 10) before and
after the training, and each model's achieved training GFLOP/s (train images/s x ~6 x MACs)
is shown as a share of it.

Prints a Markdown table and writes it to ``--out``:

    python benchmarks/compare_models.py                 # Fashion-MNIST, all models (~1.5 h on 2 cores)
    python benchmarks/compare_models.py --models mlp cnn --dataset digits --split coursework \
        --results /tmp/cmp --out /tmp/cmp/table.md      # a minute, to try it
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

from _runs import train_or_reuse  # benchmarks/ is on sys.path when a script in it runs
from _tables import publish

HERE = os.path.dirname(os.path.abspath(__file__))
# Epoch caps on this 2-core CPU (early stopping on val_loss may end sooner). ResNet50 (23.6M
# parameters, inputs resized to 32x32) gets a short budget: ~4 min an epoch here.
DEFAULT_EPOCHS = {"mlp": 30, "cnn": 20, "vgg": 20, "resnet_small": 20, "resnet50": 3, "attention": 30,
                  "cnn_attention": 20}
# Training flags a model gets unless --model-flags says otherwise (the published table's runs).
# Other recipes for the ViT-style model: benchmarks/attention_recipes.py.
DEFAULT_FLAGS = {"resnet_small": "--augment"}
MODELS = ["mlp", "cnn", "vgg", "resnet_small", "resnet50", "attention", "cnn_attention"]


def matmul_gflops(size: int = 2048, repeats: int = 10):
    """Best-of-``repeats`` FP32 matmul rate (GFLOP/s) of TensorFlow and of NumPy on this machine."""
    import numpy as np
    import tensorflow as tf

    a = np.random.default_rng(0).random((size, size), dtype=np.float32)
    b = np.random.default_rng(1).random((size, size), dtype=np.float32)
    flops = 2 * size**3
    ta, tb = tf.constant(a), tf.constant(b)
    tf.linalg.matmul(ta, tb).numpy()  # warm up
    best_tf = best_np = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        tf.linalg.matmul(ta, tb).numpy()
        best_tf = min(best_tf, time.perf_counter() - start)
        start = time.perf_counter()
        a @ b
        best_np = min(best_np, time.perf_counter() - start)
    return {"tensorflow": flops / best_tf / 1e9, "numpy": flops / best_np / 1e9}


def train_flags(model: str, args):
    """The ``tfcourse.train`` flags of ``model``'s run (without the output folder)."""
    return ["--model", model, "--dataset", args.dataset, "--split", args.split,
            "--epochs", str(args.epochs.get(model, DEFAULT_EPOCHS.get(model, 20))), "--seed", str(args.seed),
            *args.model_flags.get(model, "").split()]


def row(model: str, run_dir: str, matmul: float):
    with open(os.path.join(run_dir, "metrics.json"), encoding="utf-8") as handle:
        metrics = json.load(handle)
    with open(os.path.join(run_dir, "config.json"), encoding="utf-8") as handle:
        config = json.load(handle)
    if "macs_per_image" not in metrics:  # a run folder written before runs recorded their cost
        import keras

        from tfcourse import cost, models  # noqa: F401

        report = cost.cost_report(keras.models.load_model(os.path.join(run_dir, "model.keras"), compile=False))
        metrics["macs_per_image"], metrics["training_flops_per_image"] = report["macs"], report["training_flops"]
    epochs = metrics["epoch_train_seconds"]
    images_per_epoch = metrics["train_images_per_second"] * sum(epochs) / len(epochs)
    # the median epoch: robust to the first epoch's graph tracing and to other work on the machine
    images_per_second = images_per_epoch / sorted(epochs)[len(epochs) // 2]
    gflops = images_per_second * metrics["training_flops_per_image"] / 1e9
    flags = ["--augment"] if config["config"]["data"]["augment"] else []
    if config["config"].get("lr_schedule", "plateau") != "plateau":
        flags.append(f"--lr-schedule {config['config']['lr_schedule']}")
    if config["config"]["patience"] != 4:
        flags.append(f"--patience {config['config']['patience']}")
    flags += [f"--hp {key}={value}" for key, value in sorted(config["config"]["hp"].items())]
    return {
        "model": model + (f" ({' '.join(flags)})" if flags else ""),
        "params": metrics["parameters"],
        "macs": metrics["macs_per_image"],
        "images_per_second": images_per_second,
        "gflops": gflops,
        "share": gflops / matmul,
        "epochs": f"{metrics['epochs_trained']}/{config['config']['epochs']}",
        "best_epoch": metrics["best_epoch"],
        "minutes": metrics["train_seconds"] / 60,
        "test_accuracy": metrics["test_accuracy"],
    }


def table(rows, matmul, args, reused=()) -> str:
    lines = [
        f"Dataset {args.dataset}, split {args.split}, seed {args.seed}; default hyperparameters of each model; "
        "Adam 1e-3, batch 128; learning rate cut to 30% after 2 epochs without val_loss improvement, early "
        "stopping after 4 with the best weights restored; flags in brackets where a row differs.",
        "",
        f"FP32 matmul rate measured in this run (2048x2048, best of 10): TensorFlow "
        f"{matmul['tensorflow']:.0f} GFLOP/s, NumPy {matmul['numpy']:.0f} GFLOP/s"
        + (f"; {len(reused)} of {len(rows)} rows are earlier runs reused ({', '.join(reused)}), so their share of it "
           "compares across runs." if reused else "."),
        "",
        "| model | parameters | MACs / image | train images/s | achieved GFLOP/s | % of TF matmul | epochs (run/cap) "
        "| best epoch | train wall (min) | test accuracy |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r['model']} | {r['params']:,} | {r['macs'] / 1e6:.1f}M | {r['images_per_second']:.0f} | "
            f"{r['gflops']:.1f} | {100 * r['share']:.0f}% | {r['epochs']} | {r['best_epoch']} | {r['minutes']:.1f} | "
            f"{100 * r['test_accuracy']:.2f}% |"
        )
    lines += [
        "",
        "Train images/s: training steps only (validation passes excluded), in the median epoch (so neither the "
        "first epoch's graph tracing nor a slow epoch skews it). Achieved GFLOP/s = images/s x training FLOPs per image (~3 x forward, 2 FLOPs per MAC; see "
        "`python -m tfcourse.inspect`). Train wall includes validation passes.",
    ]
    if "resnet50" in [r["model"] for r in rows]:
        lines.append(f"ResNet50: weights=None (no ImageNet download here), images resized to 32x32 inside the "
                     f"model, capped at {args.epochs.get('resnet50', DEFAULT_EPOCHS['resnet50'])} epochs on the "
                     "full training split because an epoch costs ~4 minutes on this CPU.")
    return "\n".join(lines) + "\n"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+", default=MODELS)
    parser.add_argument("--dataset", default="fashion_mnist")
    parser.add_argument("--split", default="official")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--epochs", nargs="*", default=[], metavar="MODEL=N", help="epoch caps, e.g. vgg=10")
    parser.add_argument("--model-flags", nargs="*", default=[], metavar="MODEL=FLAGS",
                        help='more tfcourse.train flags for one model, e.g. "resnet_small=--augment"')
    parser.add_argument("--results", default=os.path.join(HERE, "results", "compare_models"))
    parser.add_argument("--out", default=os.path.join(HERE, "results", "compare_models.md"))
    args = parser.parse_args(argv)
    args.epochs = {key: int(value) for key, _, value in (item.partition("=") for item in args.epochs)}
    args.model_flags = {**DEFAULT_FLAGS, **dict(item.partition("=")[::2] for item in args.model_flags)}

    os.makedirs(args.results, exist_ok=True)
    before = matmul_gflops()
    print(f"matmul FP32: TensorFlow {before['tensorflow']:.0f} GFLOP/s, NumPy {before['numpy']:.0f} GFLOP/s", flush=True)
    reused = [model for model in args.models
              if train_or_reuse(train_flags(model, args), os.path.join(args.results, model), model)]
    after = matmul_gflops()
    matmul = {key: max(before[key], after[key]) for key in before}
    print(f"matmul FP32 after training: TensorFlow {after['tensorflow']:.0f}, NumPy {after['numpy']:.0f} GFLOP/s")
    rows = [row(model, os.path.join(args.results, model), matmul["tensorflow"]) for model in args.models]
    text = table(rows, matmul, args, reused)
    publish(text, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
