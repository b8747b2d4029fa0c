"""Every registered model on one dataset: size, cost, training speed, accuracy, side by side.

For each model, ``python -m tfcourse.train --model NAME --split official --epochs N`` runs in
its own process into ``<results>/<model>/`` (a run folder that already holds ``metrics.json``
is reused when it was trained with exactly these settings and library versions, so an interrupted
benchmark resumes; a folder of other settings stops it). The machine's FP32
matmul rate is measured in this run (TensorFlow and NumPy, 2048x2048, best of 10) before and
after the training, and each model's achieved training GFLOP/s (train images/s x ~6 x MACs)
is shown as a share of it.

Prints a Markdown table and writes it to ``--out``:

    python benchmarks/compare_models.py                 # Fashion-MNIST, all models (~2.2 h on 2 cores)
    python benchmarks/compare_models.py --models mlp cnn --dataset digits --split coursework \
        --results /tmp/cmp --out /tmp/cmp/table.md      # a minute, to try it
"""

from __future__ import annotations

import argparse
import os
import sys
import time

from _runs import read_run_file, train_or_reuse  # benchmarks/ is on sys.path when a script in it runs
from _tables import publish

HERE = os.path.dirname(os.path.abspath(__file__))
# Epoch caps (early stopping on val_loss may end sooner). ResNet50 (23.6M parameters, inputs
# resized to 32x32) gets a short budget: its epochs are the slowest by far on a CPU.
DEFAULT_EPOCHS = {
    "mlp": 30,
    "cnn": 20,
    "vgg": 20,
    "resnet_small": 20,
    "resnet50": 3,
    "attention": 30,
    "cnn_attention": 20,
}
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
    return [
        "--model",
        model,
        "--dataset",
        args.dataset,
        "--split",
        args.split,
        "--epochs",
        str(args.epochs.get(model, DEFAULT_EPOCHS.get(model, 20))),
        "--seed",
        str(args.seed),
        *args.model_flags.get(model, "").split(),
    ]


def row(model: str, run_dir: str, matmul: float):
    metrics, config = read_run_file(run_dir, "metrics.json"), read_run_file(run_dir, "config.json")
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
        "name": model,
        "config": config,
        "metrics": metrics,
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


def _one(values, what: str) -> str:
    """The one value every run recorded, or each run's value when they differ."""
    distinct = sorted({str(value) for value in values.values()})
    if len(distinct) == 1:
        return distinct[0]
    return f"{what} per run: " + ", ".join(f"{model} {value}" for model, value in values.items())


def settings_paragraph(rows) -> str:
    """What every row's run recorded in its config.json, in words (nothing here is typed in by hand)."""
    from tfcourse.training.fit import PLATEAU_FACTOR

    configs = {r["name"]: r["config"] for r in rows}

    def each(get):
        return {name: get(config) for name, config in configs.items()}

    data = each(
        lambda c: (
            f"dataset {c['config']['data']['dataset']}, split {c['config']['data']['split']}, "
            f"seed {c['config']['seed']}"
        )
    )
    optimizer = each(
        lambda c: (
            f"{c['hyperparameters'].get('optimizer')} at learning rate {c['hyperparameters'].get('learning_rate'):g}"
        )
    )
    batch = each(lambda c: c["config"]["data"]["batch_size"])
    training = each(
        lambda c: (
            (
                f"learning rate cut to {PLATEAU_FACTOR:.0%} after {max(1, c['config']['patience'] // 2)} epochs without "
                f"val_loss improvement"
                if c["config"].get("lr_schedule", "plateau") == "plateau"
                else f"{c['config']['lr_schedule']} learning-rate schedule"
            )
            + f", early stopping after {c['config']['patience']} epochs without improvement, best weights restored"
        )
    )
    overridden = [name for name, config in configs.items() if config["config"]["hp"]]
    return (
        f"Recorded in every run's config.json: {_one(data, 'data')}; "
        f"{'default hyperparameters' if not overridden else 'default hyperparameters except ' + ', '.join(overridden)}"
        f" of each model, {_one(optimizer, 'optimizer')}, batch {_one(batch, 'batch')}; {_one(training, 'training')}; "
        "flags in brackets where a row differs from the defaults."
    )


def table(rows, matmul, args, reused=()) -> str:
    lines = [
        settings_paragraph(rows),
        "",
        f"FP32 matmul rate measured in this run (2048x2048, best of 10): TensorFlow "
        f"{matmul['tensorflow']:.0f} GFLOP/s, NumPy {matmul['numpy']:.0f} GFLOP/s"
        + (
            f"; {len(reused)} of {len(rows)} rows are earlier runs reused ({', '.join(reused)}), so their share of it "
            "compares across runs."
            if reused
            else "; every row was trained in this run, one after another."
        ),
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
        "`python -m tfcourse.cost`). Train wall includes validation passes.",
    ]
    for r in rows:
        if r["name"] == "resnet50":
            hp, metrics = r["config"]["hyperparameters"], r["metrics"]
            lines.append(
                f"ResNet50: weights={hp.get('weights')}, images resized to {hp.get('image_size')}x"
                f"{hp.get('image_size')} inside the model, {metrics['epochs_trained']} of at most "
                f"{r['config']['config']['epochs']} epochs at "
                f"{metrics['train_seconds'] / metrics['epochs_trained'] / 60:.1f} min an epoch here."
            )
    return "\n".join(lines) + "\n"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+", default=MODELS)
    parser.add_argument("--dataset", default="fashion_mnist")
    parser.add_argument("--split", default="official")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--epochs", nargs="*", default=[], metavar="MODEL=N", help="epoch caps, e.g. vgg=10")
    parser.add_argument(
        "--model-flags",
        nargs="*",
        default=[],
        metavar="MODEL=FLAGS",
        help='more tfcourse.train flags for one model, e.g. "resnet_small=--augment"',
    )
    parser.add_argument("--results", default=os.path.join(HERE, "results", "compare_models"))
    parser.add_argument("--out", default=os.path.join(HERE, "results", "compare_models.md"))
    args = parser.parse_args(argv)
    args.epochs = {key: int(value) for key, _, value in (item.partition("=") for item in args.epochs)}
    args.model_flags = {**DEFAULT_FLAGS, **dict(item.partition("=")[::2] for item in args.model_flags)}

    os.makedirs(args.results, exist_ok=True)
    before = matmul_gflops()
    print(
        f"matmul FP32: TensorFlow {before['tensorflow']:.0f} GFLOP/s, NumPy {before['numpy']:.0f} GFLOP/s", flush=True
    )
    reused = [
        model
        for model in args.models
        if train_or_reuse(train_flags(model, args), os.path.join(args.results, model), model)
    ]
    after = matmul_gflops()
    matmul = {key: max(before[key], after[key]) for key in before}
    print(f"matmul FP32 after training: TensorFlow {after['tensorflow']:.0f}, NumPy {after['numpy']:.0f} GFLOP/s")
    rows = [row(model, os.path.join(args.results, model), matmul["tensorflow"]) for model in args.models]
    text = table(rows, matmul, args, reused)
    publish(text, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
