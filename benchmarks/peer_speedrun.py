"""Time to 94% on Fashion-MNIST: tfcourse's fast recipe against a plain PyTorch script, side by side.

The PyTorch side is the ~60-line recipe of issue 20, written out below (``torch_recipe``): a VGG-style
net with batch norm (3 blocks of two 3x3 convs, widths 32/64/128, max pooling, global max pooling, one
linear layer), channels_last, bfloat16 autocast (``--precision mixed_bfloat16``), SGD-Nesterov (momentum
0.9, weight decay 5e-4) with a one-cycle learning rate (peak 0.2, 25% warm-up, linear), label smoothing
0.1, random flips and 2-pixel translations, batch 256, on the 60,000 official training images, and flip
test-time augmentation on the 10,000 official test images.

The tfcourse side is one command (``TFCOURSE_COMMAND``): ``python -m tfcourse.train --model vgg --recipe
fast --split official --train-on train+val`` (the same net, data and settings; its own pipeline, Keras
and KerasTuner's builder behind it), its numbers read from the run's metrics.json.

Each run is its own process, run one after the other (never two at once: this machine has 2 cores), in
the order given, interleaved over seeds. Training time is the wall time of the training loop: data
loading before it and the test evaluation after it are left out, on both sides.

Usage: python benchmarks/peer_speedrun.py [--epochs 16] [--tf-epochs N] [--seeds 42] [--torch-seeds 42]
       [--precision mixed_bfloat16] [--runners tfcourse,torch] [--out benchmarks/results/peer_speedrun.md]
``--tf-epochs`` gives the tfcourse command its own epoch count (default: ``--epochs``, the PyTorch script's):
doing less work for the same accuracy is part of the race.
PyTorch comes with the [bench] extra (pip install -e ".[bench]"); without it the torch rows say so.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

from _tables import publish  # benchmarks/ is on sys.path when a script in it runs

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TFCOURSE_COMMAND = [
    "-m",
    "tfcourse.train",
    "--model",
    "vgg",
    "--recipe",
    "fast",
    "--split",
    "official",
    "--train-on",
    "train+val",
    "--no-report",
]


def torch_recipe(epochs: int, seed: int, bf16: bool) -> dict:
    """The plain PyTorch recipe; returns test accuracy (flip TTA and without) and training seconds."""
    import numpy as np
    import torch
    import torch.nn as nn
    import torch.nn.functional as F

    from tfcourse.data import load_dataset

    torch.manual_seed(seed)
    data = load_dataset("fashion_mnist", download=False)
    to_tensor = lambda a: torch.tensor(np.asarray(a), dtype=torch.float32).permute(0, 3, 1, 2) / 255.0  # noqa: E731
    x_train, y_train = to_tensor(data.x_train), torch.tensor(np.asarray(data.y_train), dtype=torch.long)
    x_test, y_test = to_tensor(data.x_test), torch.tensor(np.asarray(data.y_test), dtype=torch.long)

    def block(cin, cout):
        layers = []
        for c in (cin, cout):
            layers += [nn.Conv2d(c, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True)]
        return layers + [nn.MaxPool2d(2)]

    net = nn.Sequential(
        *block(1, 32), *block(32, 64), *block(64, 128), nn.AdaptiveMaxPool2d(1), nn.Flatten(), nn.Linear(128, 10)
    ).to(memory_format=torch.channels_last)
    batch, steps_per_epoch = 256, -(-len(x_train) // 256)
    optimizer = torch.optim.SGD(net.parameters(), lr=0.2, momentum=0.9, nesterov=True, weight_decay=5e-4)
    schedule = torch.optim.lr_scheduler.OneCycleLR(
        optimizer, 0.2, total_steps=epochs * steps_per_epoch, pct_start=0.25, anneal_strategy="linear"
    )
    generator = torch.Generator().manual_seed(seed)

    def augment(x):
        flip = torch.rand(len(x), generator=generator) < 0.5
        x = torch.where(flip[:, None, None, None], x.flip(3), x)
        padded = F.pad(x, (2, 2, 2, 2))
        shifts = torch.randint(0, 5, (len(x), 2), generator=generator)
        out = torch.empty_like(x)
        for dy in range(5):
            for dx in range(5):
                chosen = (shifts[:, 0] == dy) & (shifts[:, 1] == dx)
                out[chosen] = padded[chosen, :, dy : dy + 28, dx : dx + 28]
        return out

    start = time.perf_counter()
    for _ in range(epochs):
        net.train()
        order = torch.randperm(len(x_train), generator=generator)
        for i in range(steps_per_epoch):
            index = order[i * batch : (i + 1) * batch]
            x = augment(x_train[index]).contiguous(memory_format=torch.channels_last)
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
                loss = F.cross_entropy(net(x), y_train[index], label_smoothing=0.1)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            schedule.step()
    seconds = time.perf_counter() - start
    net.eval()
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
        probabilities, mirrored = [], []
        for i in range(0, len(x_test), 1000):
            x = x_test[i : i + 1000].contiguous(memory_format=torch.channels_last)
            probabilities.append(net(x).float().softmax(1))
            mirrored.append(net(x.flip(3)).float().softmax(1))
    plain, both = torch.cat(probabilities), (torch.cat(probabilities) + torch.cat(mirrored)) / 2
    return {
        "test_accuracy": float((both.argmax(1) == y_test).float().mean()),
        "test_accuracy_no_tta": float((plain.argmax(1) == y_test).float().mean()),
        "train_seconds": seconds,
        "train_images": len(x_train),
    }


def run_torch(epochs: int, seed: int, precision: str) -> dict:
    """The PyTorch recipe in a fresh process (its threads and memory apart from TensorFlow's)."""
    try:
        import torch  # noqa: F401
    except ImportError:
        return {"missing": "PyTorch is not installed (pip install -e '.[bench]')"}
    with tempfile.TemporaryDirectory() as scratch:
        out = os.path.join(scratch, "torch.json")
        command = [sys.executable, os.path.abspath(__file__), "--torch-worker", out, "--epochs", str(epochs)]
        command += ["--seeds", str(seed), "--precision", precision]
        subprocess.run(command, check=True, cwd=ROOT)
        with open(out, encoding="utf-8") as handle:
            return json.load(handle)


def run_tfcourse(epochs: int, seed: int, precision: str, extra) -> dict:
    """The tfcourse command in a fresh process; its numbers from the run's metrics.json."""
    with tempfile.TemporaryDirectory() as scratch:
        run_dir = os.path.join(scratch, "run")
        command = [sys.executable] + TFCOURSE_COMMAND + ["--epochs", str(epochs), "--seed", str(seed)]
        command += ["--precision", precision, "--output-dir", run_dir, "--verbose", "0"] + list(extra)
        subprocess.run(command, check=True, cwd=ROOT)
        with open(os.path.join(run_dir, "metrics.json"), encoding="utf-8") as handle:
            metrics = json.load(handle)
        with open(os.path.join(run_dir, "config.json"), encoding="utf-8") as handle:
            record = json.load(handle)
    return {
        "test_accuracy": metrics["test_accuracy"],
        "train_seconds": metrics["train_seconds"],
        "train_images": record["data"]["split_sizes"]["train"] + record["data"]["split_sizes"]["val"],
        "command": "python "
        + " ".join(TFCOURSE_COMMAND + ["--epochs", str(epochs), "--seed", str(seed)] + list(extra)),
        "policy": record["precision"]["policy"],
    }


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs", type=int, default=16)
    parser.add_argument("--tf-epochs", type=int, default=None, help="the tfcourse command's epochs (default --epochs)")
    parser.add_argument("--seeds", default="42", help="comma-separated; runs are interleaved over seeds")
    parser.add_argument("--precision", default="mixed_bfloat16", choices=("float32", "mixed_bfloat16"))
    parser.add_argument("--runners", default="tfcourse,torch", help="in this order, for each seed")
    parser.add_argument("--torch-seeds", default=None, help="the seeds PyTorch runs for (default: --seeds)")
    parser.add_argument("--tf-args", default="", help="more flags for the tfcourse command (quoted)")
    parser.add_argument("--torch-worker", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--out", default=os.path.join(ROOT, "benchmarks", "results", "peer_speedrun.md"))
    args = parser.parse_args(argv)
    seeds = [int(s) for s in args.seeds.split(",")]
    tf_epochs = args.tf_epochs or args.epochs
    torch_seeds = seeds if args.torch_seeds is None else [int(s) for s in args.torch_seeds.split(",")]
    if args.torch_worker:
        result = torch_recipe(args.epochs, seeds[0], args.precision == "mixed_bfloat16")
        with open(args.torch_worker, "w", encoding="utf-8") as handle:
            json.dump(result, handle)
        return
    rows = []
    for seed in seeds:
        for runner in args.runners.split(","):
            if runner == "torch" and seed not in torch_seeds:
                continue
            epochs = args.epochs if runner == "torch" else tf_epochs
            print(f"peer_speedrun: {runner}, seed {seed}, {epochs} epochs, {args.precision} ...", flush=True)
            if runner == "torch":
                result = run_torch(epochs, seed, args.precision)
            else:
                result = run_tfcourse(epochs, seed, args.precision, args.tf_args.split())
            result["epochs"] = epochs
            rows.append((runner, seed, result))
            print(f"peer_speedrun: {runner} seed {seed}: {result}", flush=True)
    lines = [
        f"Fashion-MNIST, official split: train on the 60,000 training images, test on the 10,000 test images "
        f"with flip test-time augmentation; batch 256, {args.precision}; runs one after "
        "the other in fresh processes. Training seconds: the training loop's wall time (tfcourse: its "
        "metrics.json train_seconds, which include the first epoch's graph tracing).",
        "",
        "| runner | seed | epochs | training images | training s | test accuracy (flip TTA) | without TTA |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for runner, seed, result in rows:
        if "missing" in result:
            lines.append(f"| {runner} | {seed} | {result['epochs']} | | | {result['missing']} | |")
            continue
        no_tta = result.get("test_accuracy_no_tta")
        lines.append(
            f"| {runner} | {seed} | {result['epochs']} | {result['train_images']:,} | {result['train_seconds']:.0f} | "
            f"{result['test_accuracy']:.2%} | {'' if no_tta is None else f'{no_tta:.2%}'} |"
        )
    tf_rows = [r for name, _, r in rows if name == "tfcourse"]
    torch_rows = [r for name, _, r in rows if name == "torch" and "missing" not in r]
    if tf_rows:
        lines += ["", f"tfcourse command: `{tf_rows[0]['command']} --precision {args.precision}`."]
    if tf_rows and torch_rows:
        tf_seconds = statistics.median(r["train_seconds"] for r in tf_rows)
        torch_seconds = statistics.median(r["train_seconds"] for r in torch_rows)
        lines.append(
            f"Median training time: tfcourse {tf_seconds:.0f} s, PyTorch {torch_seconds:.0f} s "
            f"(tfcourse takes {tf_seconds / torch_seconds:.2f}x PyTorch's time)."
        )
    for name, runner_rows in (("tfcourse", tf_rows), ("PyTorch", torch_rows)):
        if len(runner_rows) > 1:
            accuracies = [r["test_accuracy"] for r in runner_rows]
            lines.append(
                f"{name} over {len(accuracies)} seeds: test accuracy mean {statistics.mean(accuracies):.2%}, "
                f"standard deviation {statistics.stdev(accuracies):.2%}, range {min(accuracies):.2%} to "
                f"{max(accuracies):.2%}; training s median {statistics.median(r['train_seconds'] for r in runner_rows):.0f}."
            )
    publish("\n".join(lines) + "\n", args.out)


if __name__ == "__main__":
    main()
