"""How faithful is each explanation method to each image model, and what do the layer and the head change?

For each image run (``_runs.IMAGE_RUNS``: trained here with the quick recipe, or reused when exactly that
configuration), every map method that applies (Grad-CAM, Grad-CAM++, Score-CAM at the default layer, the
CAM methods also one resolution earlier; saliency, SmoothGrad) is measured by the same code as
``python -m tfcourse.explain RUN --evaluate`` (``tfcourse.pages.faithfulness_page.measure``) on the same
seeded ``--images`` validation images (never the test images), each image's true class explained:

- deletion and insertion AUC (mean ± std over the images) beside a random map's and a Sobel edge map's;
- how many images the method beats the random map on, image by image;
- the cascading randomisation check (median |Spearman rho| with the original maps after re-initialising
  the top 3 weighted layers; passes below 0.5);
- the silhouette ratio (mean heat on the garment over the background) and milliseconds per image.

A second table holds the trade of item 4 side by side: per run, its test accuracy and training seconds,
the map the run report would show (``run_page.choose_faithful`` among its candidates) and the most
faithful (method, layer) measured here, each as its insertion-minus-deletion margin over the random map's.

    python benchmarks/explain_quality.py              # ~20 min with the runs trained, ~35 min without
"""

from __future__ import annotations

import argparse
import os
import sys

from _runs import (
    IMAGE_RUNS,
    IMAGE_RUNS_FOLDER,
    image_run,
    image_run_command,
    read_run_file,
)  # benchmarks/ is on sys.path
from _tables import publish

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_RUNS = ["vgg", "vgg_gap", "cnn", "cnn_gap", "resnet_small", "cnn_attention"]
METHODS = ("gradcam", "gradcam++", "scorecam", "saliency", "smoothgrad")


def margin(entry, chance) -> float:
    """Insertion minus deletion area, over the random map's (0 = no better than random)."""
    return (entry["insertion"]["auc"] - entry["deletion"]["auc"]) - (
        chance["insertion"]["auc"] - chance["deletion"]["auc"]
    )


def rows_of(name, measured):
    from tfcourse.pages import faithfulness_page

    n = measured["images"]
    rows = []
    for label, key in (("random map", "random"), ("Sobel edges", "edges")):
        entry = measured["baselines"][key]
        rows.append(
            f"| {name} | *{label}* | | {entry['deletion']['auc']:.3f} ± {entry['deletion']['std']:.3f} | "
            f"{entry['insertion']['auc']:.3f} ± {entry['insertion']['std']:.3f} | | | | | |"
        )
    for method, entry in measured["methods"].items():
        check, gain = entry["randomisation"], entry["gain_over_random"]
        rows.append(
            f"| {name} | {faithfulness_page.split_candidate(method)[0]} | {entry['layer'] or '(input)'} | "
            f"{entry['deletion']['auc']:.3f} ± {entry['deletion']['std']:.3f} | "
            f"{entry['insertion']['auc']:.3f} ± {entry['insertion']['std']:.3f} | "
            f"{entry['beats_random']['deletion']} / {entry['beats_random']['insertion']} of {n} | "
            f"{gain['deletion']['mean']:+.3f} ± {gain['deletion']['std']:.3f} / "
            f"{gain['insertion']['mean']:+.3f} ± {gain['insertion']['std']:.3f} | "
            f"{check['rank_correlation'][-1]:.2f} ({'passed' if check['passed'] else 'FAILED'}) | "
            f"{entry['silhouette_ratio']:.2f} | {1000 * entry['seconds_per_image']:.1f} |"
        )
    return rows


def measure_run(name, run_dir, images):
    from tfcourse import explanations
    from tfcourse.evaluation import artifacts
    from tfcourse.pages import faithfulness_page, run_page

    run = artifacts.load(run_dir)
    model = run.keras_model()
    applies = [m for m in METHODS if explanations.method_applies(model, m)]
    earlier = explanations.earlier_layer(model)
    cams = [m for m in applies if m in explanations.CAM_METHODS] if earlier else []
    candidates = applies + [faithfulness_page.candidate(m, earlier) for m in cams]
    print(f"{name}: {', '.join(map(faithfulness_page.label, candidates))} on {images} validation images", flush=True)
    measured = faithfulness_page.measure(run, model, candidates, count=images)
    chance = measured["baselines"]["random"]
    report = {m: measured["methods"][m] for m in run_page.report_candidates(model)}
    chosen = run_page.choose_faithful({"methods": report})
    passed = {m: e for m, e in measured["methods"].items() if e["randomisation"]["passed"]} or measured["methods"]
    best = max(passed, key=lambda m: margin(passed[m], chance))
    metrics, record = read_run_file(run_dir, "metrics.json"), read_run_file(run_dir, "config.json")

    def described(method):
        entry = measured["methods"][method]
        failed = "" if entry["randomisation"]["passed"] else ", FAILED the randomisation check"
        return f"{faithfulness_page.split_candidate(method)[0]} at {entry['layer'] or '(input)'}: {margin(entry, chance):+.3f}{failed}"

    trade = (
        f"| {name} | {record['hyperparameters'].get('head', '')} | {100 * metrics['test_accuracy']:.2f}% | "
        f"{metrics['train_seconds']:.0f} s | {described(chosen)} | {described(best)} |"
    )
    return rows_of(name, measured), trade


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", nargs="+", default=DEFAULT_RUNS, choices=list(IMAGE_RUNS))
    parser.add_argument("--images", type=int, default=64, help="validation images per run (seeded)")
    parser.add_argument("--results", default=IMAGE_RUNS_FOLDER, help="where the runs are trained or reused")
    parser.add_argument("--out", default=os.path.join(HERE, "results", "explain_quality.md"))
    args = parser.parse_args(argv)
    from tfcourse.pages.run_page import REPORT_CANDIDATES, REPORT_FAITHFULNESS_IMAGES

    rows, trades, commands = [], [], []
    for name in args.runs:
        run_rows, trade = measure_run(name, image_run(name, args.results), args.images)
        rows += run_rows
        trades.append(trade)
        commands.append(image_run_command(name))
        print("\n".join(run_rows + [trade]), flush=True)
    text = "\n".join(
        [
            f"Every map method that applies, on the same {args.images} seeded validation images of each run (true "
            "class explained), measured as `python -m tfcourse.explain RUN --evaluate` measures. Deletion AUC: "
            "lower is more faithful; insertion AUC: higher is. Beats random: images (of the sample) where the "
            "map's area is better than the random map's on the same image; gain: by how much (the random "
            "map's deletion area minus the map's; the map's insertion area minus the random map's), mean ± "
            "std over the images. Randomisation: median |Spearman "
            "rho| between the maps before and after re-initialising the top 3 weighted layers (passes below "
            "0.5). A CAM method listed twice: at its default layer, then one resolution earlier.",
            "",
            "| run | map | layer | deletion AUC | insertion AUC | beats random (deletion / insertion) | "
            "gain over random, image by image (deletion / insertion) | randomisation | silhouette ratio | "
            "ms / image |",
            "|---|---|---|---:|---:|---:|---:|---|---:|---:|",
            *rows,
            "",
            "The trade, per run: margin = (insertion - deletion AUC) - the random map's (0 = no better than "
            "random); the report's map is the one `python -m tfcourse.report` would choose from these "
            f"measurements (among {', '.join(REPORT_CANDIDATES)}, the CAMs also one resolution earlier; the "
            f"report itself measures {REPORT_FAITHFULNESS_IMAGES} images); the most faithful is the best margin "
            "among every map above that passed the randomisation check.",
            "",
            "| run | head | test accuracy | training time | the report's map (margin) | most faithful here (margin) |",
            "|---|---|---:|---:|---|---|",
            *trades,
            "",
            "Runs (seed 42, quick recipe: 4 epochs, same data, precision auto): " + "; ".join(commands) + ".",
        ]
    )
    publish(text + "\n", args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
