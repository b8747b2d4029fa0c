"""The whole exploratory data analysis of Fashion-MNIST (70,000 images), timed: ``python -m tfcourse.eda``
run as a user runs it, in a subprocess, with ``--check`` (the page in headless Chromium), then the time
of every section and what it found, read back from the ``eda.json`` it wrote.

    python benchmarks/eda_fashion.py                     # ~2-3 min on 2 cores
    python benchmarks/eda_fashion.py --split coursework  # the default 80/10/10 split
    python benchmarks/eda_fashion.py --keep runs/eda-fashion  # keep the page to look at
Writes benchmarks/results/eda_fashion_mnist-<split>.md (or --out).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))

from _tables import publish  # benchmarks/ is on sys.path when a script in it runs

from tfcourse.exploration.analysis import SECTIONS


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="fashion_mnist")
    parser.add_argument("--split", default="official", choices=["official", "coursework"])
    parser.add_argument("--out", default=None)
    parser.add_argument("--keep", default=None, help="write the EDA folder here and keep it (default: a temporary one)")
    args = parser.parse_args(argv)
    out = args.out or os.path.join(HERE, "results", f"eda_{args.dataset}-{args.split}.md")
    with tempfile.TemporaryDirectory() as scratch:
        folder = args.keep or os.path.join(scratch, "eda")
        command = [sys.executable, "-m", "tfcourse.eda", "--dataset", args.dataset, "--split", args.split]
        command += ["--output-dir", folder, "--check"]
        started = time.perf_counter()
        done = subprocess.run(command, capture_output=True, text=True, env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2"))
        wall = time.perf_counter() - started
        if done.returncode != 0:
            sys.exit(f"tfcourse.eda failed ({done.returncode}):\n{done.stderr[-3000:]}")
        saved = json.load(open(os.path.join(folder, "eda.json"), encoding="utf-8"))
    check = re.search(r"Chromium: (\d+)/(\d+) images loaded, (\d+) console errors", done.stdout)
    header, timings, s = saved["header"], saved["timings"], saved["sections"]
    analysis_seconds = sum(timings.values())
    rows = [f"| {header['load_seconds']:.1f} | loading the IDX files |"]
    rows += [f"| {timings[key]:.1f} | {k + 1}. {name} |" for k, (key, name) in enumerate(SECTIONS)]
    rows += [f"| {header['figure_seconds']:.1f} | figures, eda.json, eda.md and eda.html |"]
    rest = wall - header["load_seconds"] - analysis_seconds - header["figure_seconds"]
    rows += [
        f"| {rest:.1f} | Python and library start-up, the Chromium check |",
        f"| **{wall:.1f}** | **the whole command** |",
    ]
    exact, near = s["duplicates"]["exact"], s["duplicates"]["near"]
    nb, far, flat = s["neighbours"], s["anomalies"]["outliers"], s["anomalies"]["blank_saturated"]
    classifier = s["features"]["classifier"]["results"]
    found = [
        ("images", f"{header['examples']} ({header['split']} split: {header['split_sizes']})"),
        ("balance (train split)", f"largest/smallest {s['classes']['balance']['train']['max_min_ratio']:.3f}"),
        ("byte-identical groups", f"{exact['groups']} ({exact['groups_across_splits']} across splits)"),
        ("near-duplicate pairs (RMS <= %g)" % near["rms_threshold"], f"{near['pairs']}: {near['by_splits']}"),
        ("near-duplicate pairs with different labels", near["pairs_with_different_labels"]),
        (
            "test images with a train twin (exact / near)",
            f"{len(exact['test_images_with_a_train_copy'])} / {len(near['test_images_with_a_train_twin'])}",
        ),
        ("nearly blank / saturated images", f"{flat['blank']} / {flat['saturated']}"),
        ("outliers (robust z > %g)" % far["threshold"], far["outliers"]),
        (f"likely label errors (>= {nb['share']:.0%} of {nb['k']} neighbours)", nb["suspects"]),
        ("leave-one-out k-NN accuracy (PCA-%d)" % nb["dimensions"], f"{nb['knn_accuracy']:.2%}"),
        (
            "most overlapping classes",
            "; ".join(
                f"{p['classes'][0]} / {p['classes'][1]} {p['neighbour_share']:.1%}" for p in nb["overlapping_pairs"][:3]
            ),
        ),
        (
            "PCA components for 90 / 95 / 99%",
            " / ".join(str(v) for v in s["correlation"]["pca_components_for"].values()),
        ),
        (
            "logistic regression, validation: raw / HOG + Sobel / both",
            " / ".join(f"{classifier[k]['val_accuracy']:.2%}" for k in ("raw pixels", "HOG + Sobel", "both")),
        ),
    ]
    text = (
        f"Dataset: {header['source']}. The page: "
        + (
            f"{check[1]}/{check[2]} images loaded in headless Chromium, {check[3]} console errors."
            if check
            else "not checked."
        )
        + "\n\n| seconds | step |\n|---:|---|\n"
        + "\n".join(rows)
        + "\n\n| what | found |\n|---|---|\n"
        + "\n".join(f"| {k} | {v} |" for k, v in found)
        + "\n"
    )
    publish(text, out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
