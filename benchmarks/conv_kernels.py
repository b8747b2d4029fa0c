"""Where a VGG training step's time goes: the same convolutions timed in TensorFlow and in PyTorch, each
direction on its own (forward, gradient of the input, gradient of the weights), float32 and bfloat16.

Both frameworks run these convolutions with oneDNN, each with its own bundled copy; the results file names
both copies' versions and threading runtimes. The shapes are the six convolutions of the fast recipe's
VGG (``peer_throughput.py``'s ``vgg``: 3x3, stride 1, same padding) at batch 256, NHWC in TensorFlow and
channels_last in PyTorch, as the training runs use them (the first one, which takes the images, has no
input gradient in training: not timed). Each time is the median of ``--repeats`` calls
after a warm-up call, of the op alone on resident tensors (TensorFlow: the raw op in a ``tf.function``;
PyTorch: ``aten.convolution`` and ``aten.convolution_backward`` with one output asked for). Each
framework runs in its own process (two threads each, nothing else running); ``--rounds`` rounds
alternate them and the median round is reported.

Usage: python benchmarks/conv_kernels.py [--repeats 20] [--rounds 2] [--batch-size 256] [--images 12800]
PyTorch comes with the [bench] extra; without it the PyTorch column says so.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from _tables import publish  # noqa: E402  (benchmarks/ is on sys.path when a script in it runs)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# (side, input channels, output channels) of the VGG's convolutions, in the order the net runs them
VGG_CONVS = ((28, 1, 32), (28, 32, 32), (14, 32, 64), (14, 64, 64), (7, 64, 128), (7, 128, 128))
DIRECTIONS = ("forward", "input gradient", "weight gradient")
# The first convolution takes the images, whose gradient neither framework computes in training: its
# "input gradient" is not timed and not counted.
PRECISIONS = ("float32", "bfloat16")


def median_ms(call, repeats: int) -> float:
    call()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1e3


def tensorflow_calls(side, cin, cout, precision, batch):
    """Zero-argument calls of one convolution's three directions in TensorFlow, on resident tensors."""
    import tensorflow as tf

    dtype = tf.bfloat16 if precision == "bfloat16" else tf.float32
    generator = tf.random.Generator.from_seed(0)
    x = tf.cast(generator.normal((batch, side, side, cin)), dtype)
    dy = tf.cast(generator.normal((batch, side, side, cout)), dtype)
    w = tf.cast(generator.normal((3, 3, cin, cout)), dtype)
    geometry = {"strides": [1, 1, 1, 1], "padding": "SAME"}
    forward = tf.function(lambda x, w: tf.nn.conv2d(x, w, 1, "SAME"), autograph=False)
    input_gradient = tf.function(
        lambda w, dy: tf.raw_ops.Conv2DBackpropInput(input_sizes=x.shape, filter=w, out_backprop=dy, **geometry),
        autograph=False,
    )
    weight_gradient = tf.function(
        lambda x, dy: tf.raw_ops.Conv2DBackpropFilter(input=x, filter_sizes=w.shape, out_backprop=dy, **geometry),
        autograph=False,
    )
    # .numpy(): the result is there (a CPU call returns when its kernels have run; this makes it certain)
    return {
        "forward": lambda: forward(x, w).numpy(),
        "input gradient": lambda: input_gradient(w, dy).numpy(),
        "weight gradient": lambda: weight_gradient(x, dy).numpy(),
    }


def torch_calls(side, cin, cout, precision, batch):
    """The same in PyTorch, channels_last: ``aten.convolution`` and ``aten.convolution_backward`` asked
    for one gradient."""
    import torch

    aten = torch.ops.aten
    dtype = torch.bfloat16 if precision == "bfloat16" else torch.float32
    generator = torch.Generator().manual_seed(0)

    def tensor(*shape):
        return torch.randn(*shape, generator=generator).to(dtype).contiguous(memory_format=torch.channels_last)

    x, dy, w = tensor(batch, cin, side, side), tensor(batch, cout, side, side), tensor(cout, cin, 3, 3)
    geometry = ([1, 1], [1, 1], [1, 1], False, [0, 0], 1)  # stride, padding, dilation, transposed, ..., groups
    return {
        "forward": lambda: aten.convolution(x, w, None, *geometry),
        "input gradient": lambda: aten.convolution_backward(dy, x, w, None, *geometry, [True, False, False]),
        "weight gradient": lambda: aten.convolution_backward(dy, x, w, None, *geometry, [False, True, False]),
    }


def time_convolutions(framework, convs, batch, repeats):
    make_calls = tensorflow_calls if framework == "tensorflow" else torch_calls
    results = {}
    for side, cin, cout in convs:
        for precision in PRECISIONS:
            calls = make_calls(side, cin, cout, precision, batch)
            if (side, cin, cout) == convs[0]:
                del calls["input gradient"]
            for direction, call in calls.items():
                results[f"{side}/{cin}/{cout}/{precision}/{direction}"] = median_ms(call, repeats)
    results["overhead"] = median_ms(empty_call(framework), repeats)
    return results


def empty_call(framework):
    """A call that does (almost) nothing, the same way: what each timed call costs besides its kernel
    (a training step's graph does not pay it per convolution)."""
    if framework == "tensorflow":
        import tensorflow as tf

        one = tf.ones((1,))
        add = tf.function(lambda t: t + 1.0, autograph=False)
        return lambda: add(one).numpy()
    import torch

    one = torch.ones(1)
    return lambda: torch.ops.aten.add(one, 1.0)


def whole_steps(framework: str, images: int, batch: int):
    """Milliseconds per batch of the whole VGG training step, as ``peer_throughput.py`` times it (tfcourse's
    pipeline and fit; the plain PyTorch loop), one timed pass over ``images`` images after a warm-up pass."""
    import peer_throughput

    x, y = peer_throughput.load_images(images)
    steps = {}
    for precision in PRECISIONS:
        policy = "mixed_bfloat16" if precision == "bfloat16" else "float32"
        if framework == "tensorflow":
            rate = peer_throughput.time_keras("vgg", policy, "tfcourse", x, y, batch, 1)
        else:
            rate = peer_throughput.time_torch("vgg", policy, x, y, batch, 1)
        steps[f"step/{precision}"] = batch / rate * 1e3
    return steps


def onednn_version(framework: str) -> str:
    """The oneDNN copy a framework runs, and its threading runtime, as oneDNN's verbose mode prints them."""
    if framework == "tensorflow":
        code = "import tensorflow as tf; tf.nn.conv2d(tf.zeros((1, 4, 4, 1)), tf.zeros((3, 3, 1, 1)), 1, 'SAME')"
    else:
        code = (  # big enough, and channels_last, for PyTorch to hand it to oneDNN
            "import torch; cl = torch.channels_last; "
            "torch.nn.functional.conv2d(torch.zeros(8, 32, 8, 8).to(memory_format=cl), "
            "torch.zeros(32, 32, 3, 3).to(memory_format=cl))"
        )
    env = {**os.environ, "ONEDNN_VERBOSE": "1"}
    output = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True).stdout
    version = re.search(r"info,(oneDNN v[0-9.]+)", output)
    runtime = re.search(r"info,cpu,runtime:([A-Za-z]+)", output)
    if not version:
        return "oneDNN version not reported"
    return version.group(1) + (f" ({runtime.group(1)} threading)" if runtime else "")


def run_worker(framework: str, args):
    with tempfile.TemporaryDirectory() as scratch:
        out = os.path.join(scratch, "times.json")
        command = [sys.executable, os.path.abspath(__file__), "--worker", framework, "--worker-out", out]
        command += ["--repeats", str(args.repeats), "--batch-size", str(args.batch_size), "--convs", args.convs]
        command += ["--images", str(args.images)]
        subprocess.run(command, check=True, cwd=ROOT)
        with open(out, encoding="utf-8") as handle:
            return json.load(handle)


def parse_convs(text: str):
    convs = []
    for item in text.split(","):
        side, cin, cout = (int(part) for part in item.split("x"))
        convs.append((side, cin, cout))
    return convs


def fmt(value) -> str:
    return "" if value is None else f"{value:.2f}"


def conv_ms(times, framework, precision, direction=None, less=0.0):
    """The summed milliseconds of a framework's timed convolutions in one precision (one direction, or all
    three), each less ``less``; None where the framework was not run."""
    if framework not in times:
        return None
    keys = [key.split("/") for key in times[framework] if key.count("/") == 4]
    return sum(
        times[framework]["/".join(key)] - less for key in keys if key[3] == precision and direction in (None, key[4])
    )


def row(label, precision, direction, tf_ms, torch_ms, torch_note) -> str:
    ratio = f"{tf_ms / torch_ms:.2f}x" if tf_ms is not None and torch_ms is not None else torch_note
    return f"| {label} | {precision} | {direction} | {fmt(tf_ms)} | {fmt(torch_ms)} | {ratio} |"


def table(times, convs, torch_note):
    lines = [
        "| convolution (side, in -> out) | precision | direction | TensorFlow ms | PyTorch ms | TensorFlow / PyTorch |",
        "|---|---|---|---:|---:|---:|",
    ]
    for side, cin, cout in convs:
        for precision in PRECISIONS:
            for direction in DIRECTIONS:
                key = f"{side}/{cin}/{cout}/{precision}/{direction}"
                if key not in times["tensorflow"]:
                    continue  # the first convolution's input gradient
                torch_ms = times["torch"][key] if "torch" in times else None
                label = f"{side}x{side}, {cin} -> {cout}"
                lines.append(row(label, precision, direction, times["tensorflow"][key], torch_ms, torch_note))
    every = f"all {len(convs)}"
    for precision in PRECISIONS:
        for direction, name in [(d, d) for d in DIRECTIONS] + [(None, "**the step's convolutions**")]:
            totals = [conv_ms(times, framework, precision, direction) for framework in ("tensorflow", "torch")]
            lines.append(row(every, precision, name, *totals, torch_note))
    return lines


def step_table(times, convs, batch):
    """The whole training step beside its convolutions alone (each call's empty-call time taken off), per
    framework and precision, and the images/s the convolutions alone would train at."""
    lines = [
        "| precision | framework | whole training step, ms per batch (images/s) | its convolutions alone, ms "
        "(less an empty call's time each) | convolutions' share | images/s with nothing but the convolutions |",
        "|---|---|---:|---:|---:|---:|",
    ]
    sentences = []
    for precision in PRECISIONS:
        convolutions = {}
        for framework in times:
            convolutions[framework] = conv_ms(times, framework, precision, less=times[framework]["overhead"])
            step_ms = times[framework][f"step/{precision}"]
            name = "TensorFlow (tfcourse)" if framework == "tensorflow" else "PyTorch (plain loop)"
            lines.append(
                f"| {precision} | {name} | {step_ms:.1f} ({batch / step_ms * 1e3:,.0f}) | {convolutions[framework]:.1f} "
                f"| {convolutions[framework] / step_ms:.0%} | {batch / convolutions[framework] * 1e3:,.0f} |"
            )
        if "torch" in times:
            target = 1.2 * batch / times["torch"][f"step/{precision}"] * 1e3
            sentences.append(
                f"{precision}: 1.2x PyTorch's whole step is {target:,.0f} images/s ({batch / target * 1e3:.1f} ms per "
                f"batch); TensorFlow's convolutions alone, called one at a time, take {convolutions['tensorflow']:.1f} ms "
                f"({batch / convolutions['tensorflow'] * 1e3:,.0f} images/s)."
            )
    empty = ", ".join(
        f"{'TensorFlow' if framework == 'tensorflow' else 'PyTorch'} {times[framework]['overhead']:.3f} ms"
        for framework in times
    )
    note = (
        f"An empty call (taken off each convolution's time above): {empty}. Inside a training step TensorFlow "
        "may run two convolutions at once (the input and weight gradients of one layer), so a step can take a "
        "little less than its convolutions one at a time."
    )
    return lines + ["", note, ""] + sentences


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=20, help="timed calls per op (after one warm-up call)")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument(
        "--convs",
        default=",".join(f"{s}x{i}x{o}" for s, i, o in VGG_CONVS),
        help="side x in x out of each convolution (default: the VGG's six)",
    )
    parser.add_argument(
        "--images",
        type=int,
        default=12800,
        help="images for the whole VGG training step beside the convolutions (0: convolutions only)",
    )
    parser.add_argument("--worker", choices=("tensorflow", "torch"), default=None, help=argparse.SUPPRESS)
    parser.add_argument("--worker-out", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--out", default=os.path.join(ROOT, "benchmarks", "results", "conv_kernels.md"))
    args = parser.parse_args(argv)
    convs = parse_convs(args.convs)
    if args.worker:
        result = time_convolutions(args.worker, convs, args.batch_size, args.repeats)
        if args.images:
            result.update(whole_steps(args.worker, args.images, args.batch_size))
        with open(args.worker_out, "w", encoding="utf-8") as handle:
            json.dump(result, handle)
        return
    try:
        import torch  # noqa: F401

        frameworks = ("tensorflow", "torch")
        torch_note = ""
    except ImportError:
        frameworks = ("tensorflow",)
        torch_note = "PyTorch not installed (pip install -e '.[bench]')"
    rounds = {framework: [] for framework in frameworks}
    for round_index in range(args.rounds):
        order = frameworks if round_index % 2 == 0 else frameworks[::-1]
        for framework in order:
            rounds[framework].append(run_worker(framework, args))
            print(f"round {round_index} {framework} done", flush=True)
    times = {
        framework: {key: statistics.median(r[key] for r in results) for key in results[0]}
        for framework, results in rounds.items()
    }
    versions = "; ".join(
        f"{'TensorFlow' if f == 'tensorflow' else 'PyTorch ' + __import__('torch').__version__}: {onednn_version(f)}"
        for f in frameworks
    )
    lines = [
        f"Milliseconds per call of each convolution, batch {args.batch_size}, median of {args.repeats} calls after a "
        f"warm-up call; the median of {args.rounds} rounds alternating the two frameworks (each in its own process, "
        f"two threads). oneDNN copies: {versions}.",
        "",
        *table(times, convs, torch_note),
    ]
    if args.images and convs == list(VGG_CONVS):
        lines += [
            "",
            f"The VGG's whole training step in the same processes ({args.images} images, one timed pass after a "
            "warm-up pass, as `peer_throughput.py` times it):",
            "",
            *step_table(times, convs, args.batch_size),
        ]
    publish("\n".join(lines) + "\n", args.out)


if __name__ == "__main__":
    main()
