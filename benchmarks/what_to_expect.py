"""The README's "What to expect" table: the main job and the quick offline runs, measured.

Runs each command with the real ``python -m tfcourse.train`` in its own process (``_runs``:
a run folder of exactly this configuration is reused) into ``<results>/<name>/`` and tabulates
test accuracy, epochs, training seconds and the whole command's wall time.

    python benchmarks/what_to_expect.py          # ~15 min on 2 AMD EPYC cores with AVX-512 BF16
Writes benchmarks/results/what_to_expect.md (or --out).
"""

from __future__ import annotations

import argparse
import os
import sys
import time

from _runs import read_run_file, train_or_reuse  # benchmarks/ is on sys.path when a script in it runs
from _tables import publish

HERE = os.path.dirname(os.path.abspath(__file__))
# name -> tfcourse.train flags (defaults otherwise: seed 42, precision auto, up to 30 epochs, patience 4)
JOBS = {
    "vgg-fashion": "--model vgg --recipe quick --split official",  # the README's command (a), without --export
    "cnn-fashion": "--model cnn --split official",  # the course's simple CNN
    "mlp-fashion": "--model mlp --split official",
    "cnn-digits": "--dataset digits --model cnn",
    "mlp-digits": "--dataset digits --model mlp",
}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--jobs", nargs="+", default=list(JOBS), choices=list(JOBS))
    parser.add_argument("--results", default=os.path.join(HERE, "results", "what_to_expect"))
    parser.add_argument("--out", default=os.path.join(HERE, "results", "what_to_expect.md"))
    args = parser.parse_args(argv)
    os.makedirs(args.results, exist_ok=True)
    lines = [
        "| command | test accuracy | epochs (best) | training time | command wall time |",
        "|---|---:|---:|---:|---:|",
    ]
    for name in args.jobs:
        run_dir = os.path.join(args.results, name)
        start = time.perf_counter()
        reused = train_or_reuse(JOBS[name].split(), run_dir, name)
        wall = None if reused else time.perf_counter() - start
        metrics, config = read_run_file(run_dir, "metrics.json"), read_run_file(run_dir, "config.json")
        source = config["data"]["source"].split(" in ")[0] if "fashion" in name else config["data"]["source"]
        lines.append(
            f"| `python -m tfcourse.train {JOBS[name]}` ({source}) | {100 * metrics['test_accuracy']:.2f}% | "
            f"{metrics['epochs_trained']} of {config['config']['epochs']} (best {metrics['best_epoch']}) | "
            f"{metrics['train_seconds']:.0f} s | "
            f"{'reused run' if wall is None else f'{wall:.0f} s'} |"
        )
    lines += [
        "",
        "Training time: model.fit with validation passes; the command's wall time adds loading the data, "
        "evaluation, the report and saving (no --export here).",
    ]
    publish("\n".join(lines) + "\n", args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
