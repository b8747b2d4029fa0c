"""Training images/s of the same nets, the same batch and data: tfcourse's pipeline, the course notebook
way, and a plain PyTorch loop, each in float32 and bfloat16, with TensorFlow's matmul rate as the yardstick.

Nets (the same layers on both sides):
  vgg   the fast recipe's net: 3 blocks of two 3x3 convs (32/64/128) with batch norm and ReLU, max pooling,
        global max pooling, one linear layer (tfcourse ``vgg`` with head=gmp, dense_layers=0, conv_dropout=0).
  cnn   the course CNN at its defaults: conv 32 -> BN -> ReLU -> pool -> dropout, conv 64 -> ..., flatten,
        dense 128 -> dropout -> logits.

Runners:
  tfcourse       ``tfcourse.data.make_pipeline`` (uint8 cache, shuffle, per-batch scaling, prefetch) and
                 ``model.fit`` with steps_per_execution 8, as ``python -m tfcourse.train`` runs it.
  keras-bn       the same, with Keras' own ``BatchNormalization`` instead of tfcourse's fused one: what the
                 fused kernel changed.
  autotune       the same pipeline with tf.data's autotuner on (``prefetch(AUTOTUNE)``, tf.data's default):
                 what ``tfcourse.data.pipeline_options`` (autotuner off) changed.
  notebook       ``model.fit(x / 255.0, y, batch_size=...)`` on NumPy arrays, as the course notebooks do.
  torch          a plain PyTorch loop (channels_last; bfloat16: autocast), in its own process.

bfloat16 means Keras' ``mixed_bfloat16`` policy (tfcourse's ``--precision mixed_bfloat16``: float32
weights and logits) and PyTorch's CPU autocast. No augmentation: the training step and its input only.
Every measurement: one warm-up pass (graph tracing, caches) then ``--passes`` timed passes over
``--images`` Fashion-MNIST training images; ``--rounds`` interleaved rounds, the median reported.
Achieved GFLOP/s = images/s x the net's training FLOPs per image (``tfcourse.cost``: 3 x 2 x MACs), as
a share of TensorFlow's own 2048x2048 matmul rate measured in the same run and precision.

Usage: python benchmarks/peer_throughput.py [--images 12800] [--batch-size 256] [--rounds 2]
PyTorch comes with the [bench] extra; without it the torch rows say so.
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

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
from _tables import publish  # noqa: E402  (benchmarks/ is on sys.path when a script in it runs)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NETS = {
    "vgg": ("vgg", {"head": "gmp", "dense_layers": 0, "conv_dropout": 0.0}),
    "cnn": ("cnn", {}),
}
POLICIES = ("float32", "mixed_bfloat16")


def load_images(count: int):
    from tfcourse.data import load_dataset

    data = load_dataset("fashion_mnist", download=False)
    return np.asarray(data.x_train[:count]), np.asarray(data.y_train[:count])


def keras_model(net: str, policy: str, keras_bn: bool = False):
    import keras

    from tfcourse.models import build_model, common
    from tfcourse.training import fit
    from tfcourse.tuning import hparams

    name, overrides = NETS[net]
    hp = hparams.make_hyperparameters(name, {**overrides, "optimizer": "sgd", "learning_rate": 0.01}, (28, 28, 1), 10)
    keras.utils.set_random_seed(0)
    original = common.batch_norm_layer
    if keras_bn:
        common.batch_norm_layer = lambda layer_name: keras.layers.BatchNormalization(
            momentum=common.BN_MOMENTUM, name=layer_name
        )
    try:
        with fit.dtype_policy(policy):
            model = build_model(name, hp, (28, 28, 1), 10)
    finally:
        common.batch_norm_layer = original
    return fit.compile_model(model, hp, steps_per_execution=8)


def time_keras(net, policy, runner, x, y, batch_size, passes) -> float:
    """Images/s of ``passes`` timed passes after one warm-up pass."""
    from tfcourse import data

    model = keras_model(net, policy, keras_bn=runner == "keras-bn")
    if runner == "notebook":
        inputs = x.astype(np.float32) / 255.0
        model.fit(inputs, y, batch_size=batch_size, epochs=1, verbose=0)
        start = time.perf_counter()
        model.fit(inputs, y, batch_size=batch_size, epochs=passes, verbose=0)
    else:
        import tensorflow as tf

        normalization = data.Normalization.fit("unit", x)
        pipeline = data.make_pipeline(x, y, normalization, batch_size, training=True)
        if runner == "autotune":
            options = tf.data.Options()
            options.autotune.enabled = True
            pipeline = pipeline.prefetch(tf.data.AUTOTUNE).with_options(options)
        model.fit(pipeline, epochs=1, verbose=0)
        start = time.perf_counter()
        model.fit(pipeline, epochs=passes, verbose=0)
    return len(x) * passes / (time.perf_counter() - start)


def torch_net(net: str):
    import torch.nn as nn

    def conv(cin, cout):
        return [nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout, momentum=0.1), nn.ReLU()]

    if net == "vgg":
        layers = []
        for cin, cout in ((1, 32), (32, 64), (64, 128)):
            layers += conv(cin, cout) + conv(cout, cout) + [nn.MaxPool2d(2)]
        return nn.Sequential(*layers, nn.AdaptiveMaxPool2d(1), nn.Flatten(), nn.Linear(128, 10))
    return nn.Sequential(
        *conv(1, 32), nn.MaxPool2d(2), nn.Dropout(0.25),
        *conv(32, 64), nn.MaxPool2d(2), nn.Dropout(0.25),
        nn.Flatten(), nn.Linear(64 * 7 * 7, 128), nn.ReLU(), nn.Dropout(0.25), nn.Linear(128, 10),
    )  # fmt: skip


def time_torch(net, policy, x, y, batch_size, passes) -> float:
    import torch
    import torch.nn.functional as F

    torch.manual_seed(0)
    model = torch_net(net).to(memory_format=torch.channels_last)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, nesterov=True)
    images = torch.tensor(x, dtype=torch.uint8).permute(0, 3, 1, 2)
    labels = torch.tensor(y, dtype=torch.long)

    def one_pass():
        order = torch.randperm(len(images))
        for i in range(0, len(images), batch_size):
            index = order[i : i + batch_size]
            batch = (images[index].float() / 255.0).contiguous(memory_format=torch.channels_last)
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=policy != "float32"):
                loss = F.cross_entropy(model(batch), labels[index])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()

    one_pass()
    start = time.perf_counter()
    for _ in range(passes):
        one_pass()
    return len(images) * passes / (time.perf_counter() - start)


def torch_worker(args) -> None:
    x, y = load_images(args.images)
    result = {
        f"{net}/{policy}": time_torch(net, policy, x, y, args.batch_size, args.passes)
        for net in NETS
        for policy in POLICIES
    }
    with open(args.torch_worker, "w", encoding="utf-8") as handle:
        json.dump(result, handle)


def run_torch_round(args):
    try:
        import torch  # noqa: F401
    except ImportError:
        return None
    with tempfile.TemporaryDirectory() as scratch:
        out = os.path.join(scratch, "torch.json")
        command = [sys.executable, os.path.abspath(__file__), "--torch-worker", out, "--images", str(args.images)]
        command += ["--batch-size", str(args.batch_size), "--passes", str(args.passes)]
        subprocess.run(command, check=True, cwd=ROOT)
        with open(out, encoding="utf-8") as handle:
            return json.load(handle)


def matmul_gflops(policy: str, size: int = 2048, repeats: int = 20) -> float:
    import tensorflow as tf

    dtype = tf.bfloat16 if policy == "mixed_bfloat16" else tf.float32
    a = tf.random.normal((size, size), dtype=tf.float32)
    a, b = tf.cast(a, dtype), tf.cast(tf.transpose(a), dtype)
    step = tf.function(lambda: tf.reduce_sum(tf.cast(tf.matmul(a, b), tf.float32)))
    step()
    start = time.perf_counter()
    for _ in range(repeats):
        step().numpy()
    return 2 * size**3 * repeats / (time.perf_counter() - start) / 1e9


def training_flops(net: str) -> float:
    from tfcourse.models import cost

    return cost.cost_report(keras_model(net, "float32"))["training_flops"]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=12800)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--passes", type=int, default=1, help="timed passes per measurement (after a warm-up pass)")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--runners", default="tfcourse,keras-bn,autotune,notebook,torch")
    parser.add_argument("--torch-worker", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--out", default=os.path.join(ROOT, "benchmarks", "results", "peer_throughput.md"))
    args = parser.parse_args(argv)
    if args.torch_worker:
        torch_worker(args)
        return
    runners = args.runners.split(",")
    x, y = load_images(args.images)
    rates = {}
    matmul = {policy: [] for policy in POLICIES}
    torch_missing = False
    for round_index in range(args.rounds):
        for policy in POLICIES:
            matmul[policy].append(matmul_gflops(policy))
        for net in NETS:
            for policy in POLICIES:
                for runner in [r for r in runners if r != "torch"]:
                    rate = time_keras(net, policy, runner, x, y, args.batch_size, args.passes)
                    rates.setdefault((net, runner, policy), []).append(rate)
                    print(f"round {round_index} {net} {runner} {policy}: {rate:.0f} images/s", flush=True)
        if "torch" in runners:
            result = run_torch_round(args)
            if result is None:
                torch_missing = True
            else:
                for key, rate in result.items():
                    net, policy = key.split("/")
                    rates.setdefault((net, "torch", policy), []).append(rate)
                    print(f"round {round_index} {net} torch {policy}: {rate:.0f} images/s", flush=True)
    matmul_rate = {policy: statistics.median(values) for policy, values in matmul.items()}
    flops = {net: training_flops(net) for net in NETS}
    lines = [
        f"Fashion-MNIST training images/s, {args.images} images, batch {args.batch_size}; median of {args.rounds} "
        f"interleaved rounds of {args.passes} timed pass(es) after a warm-up pass. TensorFlow 2048x2048 matmul "
        f"in the same run: float32 {matmul_rate['float32']:.0f} GFLOP/s, bfloat16 "
        f"{matmul_rate['mixed_bfloat16']:.0f} GFLOP/s.",
        "",
        "| net | runner | float32 images/s | bfloat16 images/s | bfloat16 / float32 | vs torch (float32) | "
        "vs torch (bfloat16) | achieved GFLOP/s (fp32; share of matmul) | achieved GFLOP/s (bf16; share) |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for net in NETS:
        for runner in runners:
            if runner == "torch" and torch_missing:
                lines.append(f"| {net} | torch | PyTorch not installed (pip install -e '.[bench]') | | | | | | |")
                continue
            median = {p: statistics.median(rates[(net, runner, p)]) for p in POLICIES if (net, runner, p) in rates}
            if len(median) < 2:
                continue
            torch_rates = {
                p: statistics.median(rates[(net, "torch", p)]) for p in POLICIES if (net, "torch", p) in rates
            }
            versus = [f"{median[p] / torch_rates[p]:.2f}x" if p in torch_rates else "" for p in POLICIES]
            achieved = [median[p] * flops[net] / 1e9 for p in POLICIES]
            lines.append(
                f"| {net} | {runner} | {median['float32']:,.0f} | {median['mixed_bfloat16']:,.0f} | "
                f"{median['mixed_bfloat16'] / median['float32']:.2f}x | {versus[0]} | {versus[1]} | "
                f"{achieved[0]:.0f} ({achieved[0] / matmul_rate['float32']:.0%}) | "
                f"{achieved[1]:.0f} ({achieved[1] / matmul_rate['mixed_bfloat16']:.0%}) |"
            )
    lines += [
        "",
        f"Training FLOPs per image (tfcourse.cost, 3 x 2 x MACs): vgg {flops['vgg'] / 1e6:.0f} M, "
        f"cnn {flops['cnn'] / 1e6:.0f} M. All rounds: "
        + "; ".join(f"{n} {r} {p}: {', '.join(f'{v:.0f}' for v in vs)}" for (n, r, p), vs in sorted(rates.items()))
        + ".",
    ]
    publish("\n".join(lines) + "\n", args.out)


if __name__ == "__main__":
    main()
