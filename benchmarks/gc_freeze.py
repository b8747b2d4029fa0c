"""What freezing the imported libraries out of the garbage collector's reach saves (``gc.freeze``).

Keras' ``clear_session`` and KerasTuner run ``gc.collect()`` before every model and trial, and tracing
a training step allocates enough to start more full collections; each walked the ~420,000 objects of
TensorFlow, Keras and KerasTuner. ``tfcourse.train`` and ``tfcourse.tune`` now freeze those objects once
they are imported (``tfcourse.machine.freeze_imported_objects``). This script runs each command in a new
process both ways (the "without" arm replaces the freeze with nothing), interleaved over ``--rounds``
rounds, and reports the wall time of the command, the time spent in full (generation 2) collections and
their number; medians. Each command's result (best score, or test accuracy) is printed beside it: the
same seed gives the same result both ways.

Usage: python benchmarks/gc_freeze.py [--rounds 2]
Writes benchmarks/results/gc_freeze.md (or --out).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile

from _interleave import interleaved, median  # benchmarks/ is on sys.path when a script in it runs
from _tables import publish

# Runs one command line in this new process, timing full collections with gc.callbacks.
DRIVER = r"""
import gc, json, sys, time
freeze, module, argv = sys.argv[1] == "1", sys.argv[2], json.loads(sys.argv[3])
from tfcourse import machine
if not freeze:
    machine.freeze_imported_objects = lambda: None
spent, count, start = [0.0], [0], [0.0]
def timer(phase, info):
    if info["generation"] != 2:
        return
    if phase == "start":
        start[0] = time.perf_counter()
    else:
        spent[0] += time.perf_counter() - start[0]
        count[0] += 1
gc.callbacks.append(timer)
import importlib
began = time.perf_counter()
code = importlib.import_module(module).main(argv)
wall = time.perf_counter() - began
print("GC_FREEZE_RESULT " + json.dumps({"code": code, "wall": wall, "gc": spent[0], "collections": count[0]}))
"""

JOBS = [
    (
        "tune mlp, 6 random trials",
        "tfcourse.tune",
        "--dataset digits --model mlp --tuner random --max-trials 6 --epochs 2 --seed 5",
    ),
    (
        "tune cnn, hyperband",
        "tfcourse.tune",
        "--dataset digits --model cnn --tuner hyperband --max-epochs 3 --seed 5",
    ),
    (
        "train cnn",
        "tfcourse.train",
        "--dataset digits --model cnn --epochs 5 --seed 5",
    ),
]


def run_job(module, flags, freeze, folder):
    argv = flags.split() + ["--verbose", "0"]
    if module == "tfcourse.tune":
        argv += ["--directory", folder, "--project-name", "search"]
    else:
        argv += ["--output-dir", os.path.join(folder, "run")]
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    done = subprocess.run(
        [sys.executable, "-c", DRIVER, "1" if freeze else "0", module, json.dumps(argv)],
        capture_output=True,
        text=True,
        env=env,
    )
    lines = [line for line in done.stdout.splitlines() if line.startswith("GC_FREEZE_RESULT ")]
    if done.returncode != 0 or not lines:
        raise RuntimeError(f"{module} {flags} failed:\n{done.stderr[-3000:]}")
    result = json.loads(lines[-1].split(" ", 1)[1])
    if module == "tfcourse.tune":
        with open(os.path.join(folder, "search", "trials.json")) as handle:
            result["result"] = (
                f"best val {max(row['score'] for row in json.load(handle) if row['score'] is not None):.4f}"
            )
    else:
        with open(os.path.join(folder, "run", "metrics.json")) as handle:
            result["result"] = f"test {json.load(handle)['test_accuracy']:.4f}"
    return result


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=2, help="interleaved repetitions; the median is reported")
    parser.add_argument(
        "--out", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "results", "gc_freeze.md")
    )
    args = parser.parse_args(argv)

    def run(job, freeze):
        with tempfile.TemporaryDirectory() as folder:
            return run_job(job[1], job[2], freeze, folder)

    results = interleaved(
        args.rounds,
        JOBS,
        run,
        lambda job, freeze, result: (
            f"{job[0]}, {'frozen' if freeze else 'not frozen'}: {result['wall']:.1f} s, full collections "
            f"{result['gc']:.1f} s ({result['collections']}), {result['result']}"
        ),
    )

    lines = [
        f"Each command in a new process, with and without gc.freeze after the imports; median of {args.rounds} "
        "interleaved rounds. Wall time from main() called to main() returned (imports before it excluded).",
        "",
        "| command | flags | wall s, not frozen | wall s, frozen | speed-up | full-collection s, not frozen "
        "| full-collection s, frozen | full collections | result (not frozen / frozen) |",
        "|---|---|---:|---:|---:|---:|---:|---:|---|",
    ]
    for job in JOBS:
        label, module, flags = job
        ours, theirs = results[(job, True)], results[(job, False)]
        lines.append(
            f"| {label} | `python -m {module} {flags}` | {median(theirs, 'wall'):.1f} | {median(ours, 'wall'):.1f} "
            f"| {median(theirs, 'wall') / median(ours, 'wall'):.2f}x | {median(theirs, 'gc'):.1f} "
            f"| {median(ours, 'gc'):.1f} | {median(ours, 'collections'):.0f} "
            f"| {theirs[0]['result']} / {ours[0]['result']} |"
        )
    publish("\n".join(lines) + "\n", args.out)


if __name__ == "__main__":
    main()
