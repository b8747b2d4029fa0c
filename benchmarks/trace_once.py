"""The first epoch's cost of tracing, with the optimizer built at compile time (tfcourse) or by Keras.

Keras (TensorFlow backend, no distribution strategy) creates the optimizer's slot variables
(momentum, Adam's moments) while it traces the first training step, and a ``tf.function`` that
creates variables is traced twice. ``fit.compile_model`` builds the optimizer before ``fit``
(``build_optimizer=True``, the default), so the step is traced once. This script measures what
that saves: for each model, the first epoch (tracing + one pass) and the second (no tracing) of a
real tf.data pipeline, both ways, interleaved over ``--rounds`` rounds in one process; medians.
It also counts the traces of the training step, and checks that both ways train to the same weights.

Usage: python benchmarks/trace_once.py [--models mlp cnn vgg resnet_small attention resnet50]
       [--limit 2048] [--rounds 2]
Writes benchmarks/results/trace_once.md (or --out).
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
from _interleave import interleaved, median  # noqa: E402  (benchmarks/ is on sys.path when a script in it runs)
from _tables import publish  # noqa: E402

from tfcourse import data
from tfcourse.models import build_model  # noqa: E402
from tfcourse.training import fit
from tfcourse.tuning import hparams  # noqa: E402

MODELS = ["mlp", "cnn", "vgg", "resnet_small", "attention", "resnet50"]


def measure(name, build_optimizer, dataset, args):
    """(first epoch s, second epoch s, traces of the training step, final weights) of one fresh model."""
    keras.backend.clear_session()
    keras.utils.set_random_seed(args.seed)
    hp = hparams.make_hyperparameters(name, {}, dataset.input_shape, dataset.num_classes)
    model = build_model(name, hp, dataset.input_shape, dataset.num_classes)
    fit.compile_model(model, hp, steps_per_execution=args.steps_per_execution, build_optimizer=build_optimizer)
    traces = []
    step = model.train_step
    model.train_step = lambda batch: traces.append(1) or step(batch)  # Python runs only while tracing
    x, y = dataset.x_train[: args.limit], dataset.y_train[: args.limit]
    normalization = data.Normalization.fit("unit", x)
    pipeline = data.make_pipeline(x, y, normalization, args.batch_size, training=True, seed=args.seed)
    seconds = []
    for _ in range(2):
        start = time.perf_counter()
        model.fit(pipeline, epochs=1, shuffle=False, verbose=0)
        seconds.append(time.perf_counter() - start)
    return seconds[0], seconds[1], len(traces), model.get_weights()


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+", default=MODELS)
    parser.add_argument("--dataset", default="fashion_mnist")
    parser.add_argument("--limit", type=int, default=2048, help="training images per epoch")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--steps-per-execution", type=int, default=8, help="tfcourse.train's default")
    parser.add_argument("--rounds", type=int, default=2, help="interleaved repetitions; the median is reported")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--out", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "results", "trace_once.md")
    )
    args = parser.parse_args(argv)

    dataset = data.load_dataset(args.dataset)
    results = interleaved(
        args.rounds,
        args.models,
        lambda name, built: measure(name, built, dataset, args),
        lambda name, built, result: (
            f"{name} optimizer built {'at compile' if built else 'by Keras'}: "
            f"epoch 1 {result[0]:.1f} s, epoch 2 {result[1]:.1f} s, {result[2]} traces"
        ),
    )
    same = {  # each round's two models, trained both ways, compared weight by weight
        name: max(
            float(np.max(np.abs(a - b)))
            for ours, theirs in zip(results[(name, True)], results[(name, False)])
            for a, b in zip(ours[3], theirs[3], strict=True)
        )
        for name in args.models
    }

    lines = [
        f"First-epoch cost of tracing, {args.dataset}, {args.limit} training images per epoch, batch {args.batch_size}, "
        f"steps_per_execution {args.steps_per_execution}, default hyperparameters; median of {args.rounds} "
        "interleaved rounds, all in one process. 'Tracing' is epoch 1 minus epoch 2.",
        "",
        "| model | traces (Keras / tfcourse) | epoch 1 s, Keras | epoch 1 s, tfcourse | epoch 2 s (both) "
        "| tracing s, Keras | tracing s, tfcourse | epoch 1 speed-up | max weight difference |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]

    for name in args.models:
        ours, theirs = results[(name, True)], results[(name, False)]
        second = median(ours + theirs, 1)
        lines.append(
            f"| {name} | {theirs[0][2]} / {ours[0][2]} | {median(theirs, 0):.1f} | {median(ours, 0):.1f} | {second:.2f} "
            f"| {median(theirs, 0) - median(theirs, 1):.1f} | {median(ours, 0) - median(ours, 1):.1f} "
            f"| {median(theirs, 0) / median(ours, 0):.2f}x | {same[name]:.1e} |"
        )
    publish("\n".join(lines) + "\n", args.out)


if __name__ == "__main__":
    main()
