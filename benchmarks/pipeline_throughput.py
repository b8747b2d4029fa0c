"""Training throughput of the ``cnn`` model: tfcourse's tf.data pipeline vs ``model.fit(x, y)`` on NumPy.

Everything runs in one process, one configuration after another, on the same data and the
same model (rebuilt from the same seed each time), and prints a Markdown table of images/s
with ratios. Epoch 1 (graph tracing, cache fill) is timed separately and left out of the rate.

Configurations:
  notebook    x / 255.0 as float64 NumPy, model.fit(x, y) with Keras' default batch size 32,
              the way the course notebooks do it.
  numpy-128   the same NumPy arrays at tfcourse's batch size (isolates the batch-size effect).
  pipeline    tfcourse.data.make_pipeline (uint8 cache, seeded shuffle, per-batch scaling,
              prefetch) with steps_per_execution=8, tfcourse's defaults.
  pipeline-1  the pipeline with steps_per_execution=1 (isolates the graph-call batching).

Usage: python benchmarks/pipeline_throughput.py [--dataset fashion_mnist] [--epochs 3] [--limit N]
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402

from tfcourse import data, fit  # noqa: E402
from tfcourse.models import build_model  # noqa: E402


class EpochTimer(keras.callbacks.Callback):
    def on_epoch_begin(self, epoch, logs=None):
        self.start = time.perf_counter()

    def on_train_begin(self, logs=None):
        self.seconds = []

    def on_epoch_end(self, epoch, logs=None):
        self.seconds.append(time.perf_counter() - self.start)


def measure(fit_call, steps_per_execution, input_shape, num_classes, seed):
    keras.utils.set_random_seed(seed)
    hp = fit.make_hyperparameters("cnn", {}, input_shape, num_classes)
    model = fit.compile_model(build_model("cnn", hp, input_shape, num_classes), hp, steps_per_execution)
    timer = EpochTimer()
    history = fit_call(model, timer)
    keras.backend.clear_session()
    return timer.seconds, history.history["loss"][-1]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", default="fashion_mnist")
    parser.add_argument("--epochs", type=int, default=3, help="epochs per configuration (the first is warm-up)")
    parser.add_argument("--batch-size", type=int, default=128, help="tfcourse's batch size")
    parser.add_argument("--limit", type=int, default=None, help="use only the first N training images")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if args.epochs < 2:
        parser.error("--epochs must be at least 2 (epoch 1 is warm-up)")

    dataset = data.load_dataset(args.dataset)
    x_uint8, y = dataset.x_train[: args.limit], dataset.y_train[: args.limit]
    n = len(y)
    shape, classes = dataset.input_shape, dataset.num_classes
    x_notebook = x_uint8 / 255.0  # float64, as in the notebooks
    normalization = data.Normalization.fit("unit", x_uint8)

    def numpy_fit(batch_size):
        return lambda model, timer: model.fit(x_notebook, y, batch_size=batch_size, epochs=args.epochs,
                                              shuffle=True, callbacks=[timer], verbose=0)

    def pipeline_fit(model, timer):
        pipeline = data.make_pipeline(x_uint8, y, normalization, args.batch_size, training=True, seed=args.seed)
        return model.fit(pipeline, epochs=args.epochs, shuffle=False, callbacks=[timer], verbose=0)

    configs = [
        ("notebook", "NumPy float64, model.fit(x, y), batch 32", numpy_fit(32), 1),
        ("numpy-128", f"NumPy float64, model.fit(x, y), batch {args.batch_size}", numpy_fit(args.batch_size), 1),
        ("pipeline-1", f"tf.data pipeline, batch {args.batch_size}, steps_per_execution 1", pipeline_fit, 1),
        ("pipeline", f"tf.data pipeline, batch {args.batch_size}, steps_per_execution 8 (tfcourse default)", pipeline_fit, 8),
    ]
    rows = []
    for name, description, fit_call, steps in configs:
        print(f"running {name}: {description} ...", flush=True)
        seconds, loss = measure(fit_call, steps, shape, classes, args.seed)
        rate = n * (len(seconds) - 1) / sum(seconds[1:])
        rows.append((name, description, seconds[0], rate, loss))

    base = {name: rate for name, _, _, rate, _ in rows}
    print(f"\nTraining throughput, cnn model, {args.dataset}, {n} images, {args.epochs} epochs each "
          f"(rate over epochs 2..{args.epochs}), {os.cpu_count()} CPU cores\n")
    print("| config | what | epoch 1 s | images/s | vs notebook | vs numpy-128 | final loss |")
    print("|---|---|---:|---:|---:|---:|---:|")
    for name, description, first, rate, loss in rows:
        print(f"| {name} | {description} | {first:.1f} | {rate:,.0f} | {rate / base['notebook']:.2f}x | "
              f"{rate / base['numpy-128']:.2f}x | {loss:.3f} |")


if __name__ == "__main__":
    main()
