"""The course's NumPy-by-hand experiment on Fashion-MNIST, as ``python -m tfcourse.numpy_mlp`` runs it
with its defaults (coursework 80/10/10 split, 784-256-128-64-10, learning rate 0.1, batch 32, normal
init, 100 epochs, relu/sigmoid/tanh/linear; scikit-learn's MLPClassifier alike), tabulated.

    python benchmarks/numpy_mlp_course.py            # ~35 min on 2 cores (MLPClassifier is most of it)
    python benchmarks/numpy_mlp_course.py --dataset digits --out /tmp/digits.md   # ~30 s
    python benchmarks/numpy_mlp_course.py --activations relu,tanh --sklearn-init numpy \
        --out benchmarks/results/numpy_mlp_course-sklearn-init-numpy.md   # both from NumpyMLP's start, ~15 min

The experiment folder (``--results``) resumes: a finished activation is kept, so an interrupted
run picks up where it stopped. Writes benchmarks/results/numpy_mlp_course.md (or --out).
"""

from __future__ import annotations

import argparse
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))

from _tables import blas_line, publish  # benchmarks/ is on sys.path when a script in it runs

from tfcourse.config import DataConfig, NumpyExperimentConfig
from tfcourse.numpy_nn import experiment


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", default="fashion_mnist")
    parser.add_argument("--epochs", type=int, default=NumpyExperimentConfig.epochs)
    parser.add_argument("--activations", default=",".join(NumpyExperimentConfig.activations))
    parser.add_argument("--sklearn-init", default=NumpyExperimentConfig.sklearn_init, choices=("own", "numpy"))
    parser.add_argument(
        "--results", default=None, help="experiment folder (default results/numpy_mlp_course-<dataset>[-...])"
    )
    parser.add_argument("--out", default=os.path.join(HERE, "results", "numpy_mlp_course.md"))
    args = parser.parse_args(argv)
    suffix = "" if args.sklearn_init == "own" else f"-sklearn-init-{args.sklearn_init}"
    results = args.results or os.path.join(HERE, "results", f"numpy_mlp_course-{args.dataset}{suffix}")
    config = NumpyExperimentConfig(
        activations=tuple(args.activations.split(",")),
        epochs=args.epochs,
        sklearn_init=args.sklearn_init,
        output_dir=results,
        data=DataConfig(dataset=args.dataset),
    )
    flags = f"--dataset {args.dataset} --epochs {args.epochs}"
    if config.activations != NumpyExperimentConfig.activations:
        flags += f" --activations {args.activations}"
    if args.sklearn_init != "own":
        flags += f" --sklearn-init {args.sklearn_init}"
    start = time.perf_counter()
    report = experiment.run_experiment(config, verbose=1)
    wall = time.perf_counter() - start
    resumed = report["resumed"]
    table, findings = experiment.summary(config, report["results"], len(report["classes"]), timing=False)
    lines = [
        f"`python -m tfcourse.numpy_mlp {flags}` (the course experiment; "
        f"experiment folder `{os.path.relpath(results, os.path.dirname(HERE))}`, "
        + (f"reused from it: {', '.join(resumed)}; " if resumed else "")
        + f"this command {wall:.0f} s"
        + f"). {blas_line()}.",
        "",
        table,
        "",
        *[f"- {line}" for line in findings],
        "",
        "Test accuracy: each checkpoint reloaded from its .npz files and scored on the test split. The experiment's "
        "own seconds per epoch are left out here: its activations ran one after the other while the machine did "
        "other work, so they do not compare; `numpy_mlp_speed.py` times the two side by side, interleaved.",
    ]
    publish("\n".join(lines) + "\n", args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
