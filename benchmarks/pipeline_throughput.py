"""Training throughput of the ``cnn`` model: tfcourse's tf.data pipeline vs ``model.fit(x, y)`` on NumPy.

Everything runs in one process on the same data and the same model (rebuilt from the same
seed each time). Configurations are interleaved over ``--rounds`` rounds and the median rate is
reported, because this machine's speed drifts by +-15% from minute to minute. In every
measurement epoch 1 (graph tracing, cache fill) is warm-up and left out of the rate.

Configurations:
  notebook    x / 255.0 as float64 NumPy, model.fit(x, y) with Keras' default batch size 32,
              the way the course notebooks do it. The reference (1.00x).
  numpy-128   the same NumPy arrays at tfcourse's batch size.
  pipeline-1  tfcourse.data.make_pipeline (uint8 cache, seeded shuffle, per-batch scaling,
              prefetch), steps_per_execution=1.
  pipeline    the same with steps_per_execution=8: what `python -m tfcourse.train` runs.
  ceiling     one float32 batch already in memory, repeated: no input work at all. No input
              pipeline can beat it, so ceiling/notebook bounds what any pipeline can gain.
  xla         the pipeline with the training step XLA-compiled (jit_compile=True).
  bfloat16    the pipeline under Keras' mixed_bfloat16 policy (bfloat16 compute, float32
              weights): fast where oneDNN has bfloat16 kernels (Intel AMX), see the machine line.

Usage: python benchmarks/pipeline_throughput.py [--dataset fashion_mnist] [--limit N] [--rounds 2]
Writes benchmarks/results/pipeline_throughput.md (or --out).
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import tensorflow as tf  # noqa: E402
from _tables import publish  # noqa: E402  (benchmarks/ is on sys.path when a script in it runs)

from tfcourse import data
from tfcourse.models import build_model  # noqa: E402
from tfcourse.training import fit
from tfcourse.tuning import hparams  # noqa: E402


def build(steps_per_execution, input_shape, num_classes, seed, jit_compile=False, policy="float32"):
    keras.utils.set_random_seed(seed)
    hp = hparams.make_hyperparameters("cnn", {}, input_shape, num_classes)
    # make_hyperparameters clears the Keras session, which resets the dtype policy: set it after
    keras.mixed_precision.set_global_policy(policy)
    try:
        model = build_model("cnn", hp, input_shape, num_classes)
    finally:
        keras.mixed_precision.set_global_policy("float32")
    return fit.compile_model(model, hp, steps_per_execution, jit_compile=jit_compile)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", default="fashion_mnist")
    parser.add_argument("--epochs", type=int, default=2, help="timed epochs per measurement (after 1 warm-up epoch)")
    parser.add_argument("--rounds", type=int, default=2, help="interleaved repetitions; the median is reported")
    parser.add_argument("--batch-size", type=int, default=128, help="tfcourse's batch size")
    parser.add_argument("--limit", type=int, default=None, help="use only the first N training images")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--configs", nargs="+", default=None, help="measure only these configurations")
    parser.add_argument(
        "--out", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "results", "pipeline_throughput.md")
    )
    args = parser.parse_args(argv)

    dataset = data.load_dataset(args.dataset)
    x_uint8, y = dataset.x_train[: args.limit], dataset.y_train[: args.limit]
    n, shape, classes = len(y), dataset.input_shape, dataset.num_classes
    x_notebook = x_uint8 / 255.0  # float64, as in the notebooks
    normalization = data.Normalization.fit("unit", x_uint8)
    steps = n // args.batch_size
    one_batch = (tf.cast(x_uint8[: args.batch_size], tf.float32) / 255.0, y[: args.batch_size])

    def numpy_fit(batch_size):
        return lambda model, epochs: model.fit(x_notebook, y, batch_size=batch_size, epochs=epochs, verbose=0)

    def pipeline_fit(model, epochs):
        pipeline = data.make_pipeline(x_uint8, y, normalization, args.batch_size, training=True, seed=args.seed)
        return model.fit(pipeline, epochs=epochs, shuffle=False, verbose=0)

    def ceiling_fit(model, epochs):
        resident = tf.data.Dataset.from_tensors(one_batch).cache().repeat(steps)
        return model.fit(resident, epochs=epochs, shuffle=False, verbose=0)

    configs = [
        ("notebook", "NumPy float64, model.fit(x, y), batch 32", numpy_fit(32), 1, n),
        ("numpy-128", f"NumPy float64, model.fit(x, y), batch {args.batch_size}", numpy_fit(args.batch_size), 1, n),
        ("pipeline-1", f"tf.data pipeline, batch {args.batch_size}, steps_per_execution 1", pipeline_fit, 1, n),
        (
            "pipeline",
            f"tf.data pipeline, batch {args.batch_size}, steps_per_execution 8 (tfcourse default)",
            pipeline_fit,
            8,
            n,
        ),
        (
            "ceiling",
            f"one resident float32 batch of {args.batch_size}, repeated (no input work)",
            ceiling_fit,
            8,
            steps * args.batch_size,
        ),
        (
            "xla",
            f"tf.data pipeline, batch {args.batch_size}, steps_per_execution 8, jit_compile=True",
            pipeline_fit,
            8,
            n,
            {"jit_compile": True},
        ),
        (
            "bfloat16",
            f"tf.data pipeline, batch {args.batch_size}, steps_per_execution 8, mixed_bfloat16 policy",
            pipeline_fit,
            8,
            n,
            {"policy": "mixed_bfloat16"},
        ),
    ]
    configs = [config if len(config) == 6 else config + ({},) for config in configs]
    configs = [config for config in configs if args.configs is None or config[0] in args.configs]
    rates = {name: [] for name, *_ in configs}
    for round_index in range(args.rounds):
        for name, _description, fit_call, steps_per_execution, images, options in configs:
            model = build(steps_per_execution, shape, classes, args.seed, **options)
            fit_call(model, 1)  # warm-up: tracing, cache fill
            start = time.perf_counter()
            fit_call(model, args.epochs)
            rates[name].append(images * args.epochs / (time.perf_counter() - start))
            keras.backend.clear_session()
            print(f"round {round_index + 1}/{args.rounds} {name}: {rates[name][-1]:,.0f} images/s", flush=True)

    median = {name: statistics.median(values) for name, values in rates.items()}
    reference = "notebook" if "notebook" in median else next(iter(median))
    lines = [
        f"Training throughput of the cnn model, {args.dataset}, {n} training images, batch {args.batch_size}; "
        f"median of {args.rounds} interleaved rounds of {args.epochs} timed epochs after one warm-up epoch, "
        "all in one process.",
        "",
        f"| config | what | images/s (median) | all rounds | vs {reference} |",
        "|---|---|---:|---|---:|",
    ]
    for name, description, *_ in configs:
        rounds = ", ".join(f"{value:,.0f}" for value in rates[name])
        lines.append(
            f"| {name} | {description} | {median[name]:,.0f} | {rounds} | {median[name] / median[reference]:.2f}x |"
        )
    if "pipeline" in median and "ceiling" in median:
        lines += [
            "",
            f"The pipeline reaches {median['pipeline'] / median['ceiling']:.0%} of the compute-bound ceiling"
            + (f"; the notebook path {median['notebook'] / median['ceiling']:.0%}." if "notebook" in median else "."),
        ]
    publish("\n".join(lines) + "\n", args.out)


if __name__ == "__main__":
    main()
