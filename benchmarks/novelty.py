"""Does ``predict`` tell an input unlike the training data? Its novelty score against the field's others.

For each image run (``_runs.IMAGE_RUNS``: trained here, or reused when exactly that configuration), the
scores are calibrated on the same validation images (6,000: all of them) at their 99th percentile and measured on:

- **in distribution**: the whole official test split (never used to calibrate): the share flagged, which
  the calibration promises to be about 1%;
- **shifted sets**, each as AUROC against the test images (1.0: every shifted image scores above every
  test image; 0.5: chance) and the share flagged: scikit-learn's handwritten **digits** (1,797, 8x8 scaled
  up), scikit-image's **faces** (``lfw_subset``, 200 at 25x25) and **photos** (scikit-image's sample images
  and matplotlib's ``grace_hopper.jpg``, 28 files), each brought to the model's input by ``predict``'s own
  ``prepare_image`` (grey, inverted when light-bordered, fitted into the frame);
- the two sample photos of the issue, ``grace_hopper.jpg`` and ``rocket.jpg``: their score over the threshold
  (above 1.00 = flagged).

Scores: **predict's** (``tfcourse.evaluation.novelty``: distance to the 10th nearest of 5,000 training
images at several layers, each in units of its validation 99th percentile, the largest), the same distance
at the **penultimate layer only** (Sun et al., ICML 2022), the **energy** score (Liu et al., NeurIPS 2020,
``-logsumexp(logits)``) and the **negative maximum softmax probability** (Hendrycks and Gimpel, ICLR 2017).

    python benchmarks/novelty.py                        # ~3 min with the runs trained; ~15 min without
"""

from __future__ import annotations

import argparse
import glob
import os
import sys

import numpy as np
from _runs import (
    IMAGE_RUNS,
    IMAGE_RUNS_FOLDER,
    image_run,
    image_run_command,
)  # benchmarks/ is on sys.path when a script in it runs
from _tables import publish

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_RUNS = ["vgg", "cnn", "resnet_small", "cnn_attention"]
NAMED = ("grace_hopper.jpg", "rocket.jpg")


def photo_files():
    import matplotlib
    import skimage

    folder = os.path.join(os.path.dirname(skimage.__file__), "data")
    found = [
        path for path in sorted(glob.glob(os.path.join(folder, "*"))) if path.lower().endswith((".png", ".jpg", ".gif"))
    ]
    return found + [os.path.join(matplotlib.get_data_path(), "sample_data", "grace_hopper.jpg")]


def shifted_sets(predictor):
    """name -> uint8 images at the model's input, prepared as ``predict`` prepares a file."""
    import skimage
    from PIL import Image
    from sklearn.datasets import load_digits

    from tfcourse.evaluation import inference

    def prepare(pixels):
        image = Image.fromarray(pixels)
        return inference.prepare_image(image, predictor.input_shape, "auto", predictor.dark_background)[0]

    faces = np.load(os.path.join(os.path.dirname(skimage.__file__), "data", "lfw_subset.npy"))
    return {
        "digits": np.stack([prepare((image * 255 / 16).astype(np.uint8)) for image in load_digits().images]),
        "faces": np.stack([prepare((face * 255).astype(np.uint8)) for face in faces]),
    }


def scores_of(run, predictor):
    """score name -> (images -> scores), all calibrated the same way by the caller."""
    from scipy.special import logsumexp, softmax

    from tfcourse.evaluation import novelty

    model = run.keras_model()
    logits_model = novelty.feature_model(model, [novelty.PENULTIMATE])
    head = model.get_layer("logits")

    def logits(images):
        return np.asarray(head(logits_model(run.model_inputs(images), training=False)))

    penultimate = novelty.NearestTraining(
        lambda images: [np.asarray(logits_model(run.model_inputs(images), training=False))],
        novelty.split_images(run, "train", novelty.BANK_IMAGES),
    )
    score, _ = predictor.novelty()
    layers = novelty.feature_layers(model)
    return {
        f"predict's: nearest training images at {len(layers)} layers ({', '.join(layers)})": score,
        "nearest training images, penultimate layer only": penultimate,
        "energy, -logsumexp(logits)": lambda images: -logsumexp(logits(images), axis=1),
        "negative max softmax probability": lambda images: novelty.negative_max_probability(
            softmax(logits(images), axis=1)
        ),
    }


def batched(score, images, size=512):
    return np.concatenate([score(images[start : start + size]) for start in range(0, len(images), size)])


def measure(name: str, run_dir: str):
    from tfcourse.evaluation import artifacts, inference, novelty

    run = artifacts.load(run_dir)
    predictor = inference.open_model(run_dir)
    rows, skipped, photos = inference.predict_files(predictor, photo_files())
    assert not skipped, skipped
    named = [next(i for i, row in enumerate(rows) if os.path.basename(row["file"]) == file) for file in NAMED]
    sets = {**shifted_sets(predictor), "photos": photos}
    test = run.test_data().images
    validation = novelty.split_images(run, "val", novelty.CALIBRATION_IMAGES)
    lines = []
    for label, score in scores_of(run, predictor).items():
        threshold = novelty.calibrate(batched(score, validation), label)["threshold"]
        inside = batched(score, test)
        cells = [f"{100 * np.mean(inside > threshold):.2f}%"]
        for images in sets.values():
            outside = batched(score, images)
            cells += [f"{novelty.auroc(inside, outside):.3f}", f"{100 * np.mean(outside > threshold):.0f}%"]
        values = batched(score, photos[named])
        cells += [f"{'YES' if value > threshold else 'no'} ({value - threshold:+.3g})" for value in values]
        lines.append(f"| {name} | {label} | " + " | ".join(cells) + " |")
    accuracy = 100 * float(np.mean(run.predictions()["logits"].argmax(axis=1) == run.predictions()["labels"]))
    return lines, len(test), {key: len(value) for key, value in sets.items()}, accuracy, len(validation)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", nargs="+", default=DEFAULT_RUNS, choices=list(IMAGE_RUNS))
    parser.add_argument("--results", default=IMAGE_RUNS_FOLDER, help="where the runs are trained or reused")
    parser.add_argument("--out", default=os.path.join(HERE, "results", "novelty.md"))
    args = parser.parse_args(argv)
    body, notes = [], []
    for name in args.runs:
        run_dir = image_run(name, args.results)
        lines, tests, sizes, accuracy, calibration = measure(name, run_dir)
        body += lines
        notes.append(f"{image_run_command(name)}, test accuracy {accuracy:.2f}%")
    header = (
        "| run | score | test images flagged | digits AUROC | digits flagged | faces AUROC | faces flagged | "
        "photos AUROC | photos flagged | grace_hopper.jpg (score - threshold) | rocket.jpg (score - threshold) |"
    )
    text = "\n".join(
        [
            f"Every score calibrated at the 99th percentile of the same {calibration:,} validation images (so about 1% of "
            f"in-distribution images are flagged); in distribution: the {tests:,} official test images; shifted: "
            + ", ".join(f"{key} ({value})" for key, value in sizes.items())
            + ", each prepared as `predict` prepares a file. AUROC against the test images.",
            "",
            header,
            "|---|---|" + "---:|" * 9,
            *body,
            "",
            "Runs (seed 42, the quick recipe, same data): " + "; ".join(notes) + ".",
        ]
    )
    publish(text + "\n", args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
