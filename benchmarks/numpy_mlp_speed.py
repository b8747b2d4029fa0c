"""Seconds per epoch of ``NumpyMLP`` against scikit-learn's ``MLPClassifier`` on the same data, network
and batch size, and both against what this machine's BLAS can do.

Fashion-MNIST's coursework training split (the data layer's, seed 42), 784-256-128-64-10 relu, plain
SGD, batch 32, float32 for both (MLPClassifier keeps float32 input in float32). The two are timed
interleaved, a few epochs at a time, in one process, and the median epoch of each is compared as a
ratio (this machine is noisy: medians of interleaved runs, never one run against another). Each with
the BLAS's default threads and with one thread (threadpoolctl).

The limit: the same matrix products one SGD step of this network needs (forward, weight gradients and
the deltas, batch 32), timed alone in a loop over one epoch of batches, and a large 2048x2048 product
for the machine's float32 rate.

    python benchmarks/numpy_mlp_speed.py            # ~5 min on 2 cores
Writes benchmarks/results/numpy_mlp_speed.md (or --out).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
import warnings

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))

import numpy as np
from _tables import blas_line, publish  # benchmarks/ is on sys.path when a script in it runs
from threadpoolctl import threadpool_limits

from tfcourse.config import DataConfig, NumpyExperimentConfig
from tfcourse.numpy_nn import NumpyMLP
from tfcourse.numpy_nn.experiment import load_arrays

HIDDEN = (256, 128, 64)


def training_flops(sizes) -> int:
    """Multiply-adds x 2 per example of one SGD step: forward, weight gradients, and the deltas of every
    layer but the first (no gradient is taken with respect to the data)."""
    products = [a * b for a, b in zip(sizes[:-1], sizes[1:])]
    return 2 * (3 * sum(products) - products[0])


def time_numpy(x, y, sizes, epochs, batch):
    model = NumpyMLP(n_layers=len(sizes), layer_sizes=sizes, activation="relu", batch_size=batch, num_epochs=epochs)
    model.fit(x, y)
    return model.history_["seconds"]


def time_sklearn(model, x, y, epochs):
    seconds = []
    for _ in range(epochs):
        start = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model.partial_fit(x, y, classes=np.arange(10))
        seconds.append(time.perf_counter() - start)
    return seconds


def gemm_epoch_seconds(sizes, rows, batch, repeats=3):
    """The matrix products of one epoch of SGD steps alone (batch ``batch``), best of ``repeats``."""
    rng = np.random.default_rng(0)
    weights = [rng.standard_normal((a, b)).astype(np.float32) for a, b in zip(sizes[:-1], sizes[1:])]
    acts = [rng.standard_normal((batch, s)).astype(np.float32) for s in sizes]
    grads = [np.empty_like(w) for w in weights]
    deltas = [np.empty((batch, s), np.float32) for s in sizes]
    steps = rows // batch
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(steps):
            for i, w in enumerate(weights):
                np.matmul(acts[i], w, out=acts[i + 1])
            for i in range(len(weights) - 1, -1, -1):
                np.matmul(acts[i].T, acts[i + 1], out=grads[i])
                if i:
                    np.matmul(acts[i + 1], weights[i].T, out=deltas[i])
        best = min(best, time.perf_counter() - start)
    return best * rows / (steps * batch)


def big_gemm_gflops(n=2048, repeats=5):
    rng = np.random.default_rng(0)
    a, b = (rng.standard_normal((n, n)).astype(np.float32) for _ in range(2))
    out = np.empty_like(a)
    np.matmul(a, b, out=out)
    best = min(_timed(lambda: np.matmul(a, b, out=out)) for _ in range(repeats))
    return 2 * n**3 / best / 1e9


def _timed(call):
    start = time.perf_counter()
    call()
    return time.perf_counter() - start


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds")
    parser.add_argument("--epochs-per-round", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--dataset", default="fashion_mnist")
    parser.add_argument("--out", default=os.path.join(HERE, "results", "numpy_mlp_speed.md"))
    args = parser.parse_args(argv)
    from sklearn.neural_network import MLPClassifier

    arrays = load_arrays(NumpyExperimentConfig(data=DataConfig(dataset=args.dataset)))
    x, y = arrays.x_train, arrays.y_train
    sizes = (x.shape[1], *HIDDEN, 10)
    flops = training_flops(sizes) * len(x)
    rows = []
    for threads in (None, 1):
        with threadpool_limits(limits=threads, user_api="blas"):
            sklearn_model = MLPClassifier(
                HIDDEN, solver="sgd", learning_rate_init=0.1, momentum=0.0, alpha=0.0, batch_size=args.batch_size,
                random_state=42,
            )  # fmt: skip
            mine, theirs = [], []
            for _ in range(args.rounds):
                mine += time_numpy(x, y, sizes, args.epochs_per_round, args.batch_size)
                theirs += time_sklearn(sklearn_model, x, y, args.epochs_per_round)
            gemm = gemm_epoch_seconds(sizes, len(x), args.batch_size)
            big = big_gemm_gflops()
        label = "default" if threads is None else str(threads)
        a, b = statistics.median(mine), statistics.median(theirs)
        rows.append(
            f"| {label} | {a:.2f} | {b:.2f} | {b / a:.2f}x | {flops / a / 1e9:.1f} | {gemm:.2f} "
            f"({flops / gemm / 1e9:.1f} GFLOP/s) | {gemm / a:.0%} | {big:.0f} |"
        )
        print(rows[-1], flush=True)
    lines = [
        f"Fashion-MNIST training split ({len(x)} images, {args.dataset}), {'-'.join(map(str, sizes))} relu, "
        f"batch {args.batch_size}, float32, plain SGD; {args.rounds} interleaved rounds of {args.epochs_per_round} "
        f"epochs each, median epoch. {blas_line()}. One SGD epoch is {flops / 1e9:.1f} GFLOP of matrix products.",
        "",
        "| BLAS threads | NumpyMLP s/epoch | MLPClassifier s/epoch | NumpyMLP faster by | NumpyMLP GFLOP/s "
        "| same products alone, s/epoch | NumpyMLP's share of that limit | 2048x2048 sgemm GFLOP/s |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
        *rows,
        "",
        "The limit column times only the network's matrix products at batch 32 (forward, weight gradients, "
        "deltas), nothing else; the share is that time over NumpyMLP's epoch (100% would be a step that is "
        "nothing but its products). The last column is the machine's large-matrix float32 rate.",
    ]
    publish("\n".join(lines) + "\n", args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
