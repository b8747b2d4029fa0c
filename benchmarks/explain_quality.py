"""Where do class activation maps put their heat, and what do the explanation methods cost?

For each trained run folder (default: the Fashion-MNIST runs of ``compare_models.py``), on the first
``--examples`` correctly classified test images (their true class explained), for each CAM method
at the default layer (and any ``--layers``): the mean heat inside the object's silhouette (pixels
> 0) over the mean heat on the background, the share of all heat inside, how many maps are blank,
the correlation of tf-keras-vis's Grad-CAM with the direct ``tf.GradientTape`` one, and
milliseconds per image. All methods of one run are measured in the same process, side by side.

    python benchmarks/explain_quality.py                       # ~3 min on 2 cores
    python benchmarks/explain_quality.py --runs RUN [RUN ...] --layers cnn=block0_conv0_relu
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np
from _tables import publish  # benchmarks/ is on sys.path when a script in it runs

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
# cnn_gap is the cnn with a global-average-pooling head, trained like compare_models.py trains cnn:
#   python -m tfcourse.train --model cnn --split official --epochs 20 --hp head=gap \
#       --output-dir benchmarks/results/compare_models/cnn_gap
DEFAULT_RUNS = [
    os.path.join(HERE, "results", "compare_models", name) for name in ("cnn", "cnn_gap", "vgg", "resnet_small")
]
METHODS = ("gradcam", "gradcam_tape", "gradcam++", "scorecam", "saliency", "smoothgrad")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", nargs="+", default=DEFAULT_RUNS)
    parser.add_argument(
        "--layers", nargs="*", default=["cnn=block0_conv0_relu"], help="extra layers to measure, RUNNAME=LAYER"
    )
    parser.add_argument("--examples", type=int, default=200)
    parser.add_argument("--out", default=os.path.join(HERE, "results", "explain_quality.md"))
    args = parser.parse_args()

    from tfcourse import explanations
    from tfcourse.evaluation import artifacts
    from tfcourse.pages import gallery

    extra = {}
    for item in args.layers:
        name, layer = item.split("=", 1)
        extra.setdefault(name, []).append(layer)
    lines = [
        f"Explanations on the first {args.examples} correctly classified test images of each run "
        "(true class explained); heat ratio = mean heat inside the silhouette (pixels > 0) / mean heat outside.",
        "",
        "| run | method | layer | heat ratio in/out | share of heat inside | blank maps | "
        "corr. with gradcam_tape | ms / image |",
        "|---|---|---|---:|---:|---:|---:|---:|",
    ]
    for path in args.runs:
        run = artifacts.load(path)
        model = run.keras_model()
        test = run.test_data()
        predicted = run.predictions()["logits"].argmax(axis=1)
        right = np.flatnonzero(predicted == test.labels)[: args.examples]
        inputs, labels, raw = run.model_inputs(test.images[right]), test.labels[right], test.images[right]
        for layer in [None] + extra.get(run.name, []):
            reference = explanations.gradcam_tape(model, inputs, labels, layer=layer)
            for method in METHODS:
                if layer is not None and method not in explanations.CAM_METHODS:
                    continue
                explanations.explain(model, method, inputs[:4], labels[:4], layer=layer)  # warm-up (tracing)
                start = time.perf_counter()
                result = explanations.explain(model, method, inputs, labels, layer=layer)
                seconds = time.perf_counter() - start
                maps = result["maps"]
                ratio = gallery.silhouette_ratio(maps, raw)
                blank = int((maps.reshape(len(maps), -1).max(axis=1) == 0).sum())
                corr = f"{gallery.correlation(maps, reference):.4f}" if method in explanations.CAM_METHODS else ""
                lines.append(
                    f"| {run.name} | {method} | {result['layer'] or '(input)'} | {ratio['ratio']:.2f} | "
                    f"{ratio['share_inside']:.0%} | {blank} | {corr} | {1000 * seconds / len(maps):.1f} |"
                )
                print(lines[-1], flush=True)
        accuracy = float((predicted == test.labels).mean())
        lines.append(
            f"| {run.name} | (silhouette area; test accuracy {accuracy:.2%}) | | | "
            f"{ratio['area_inside']:.0%} of pixels | | | |"
        )
    publish("\n".join(lines) + "\n", args.out)


if __name__ == "__main__":
    main()
