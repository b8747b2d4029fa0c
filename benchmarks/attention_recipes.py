"""Training recipes for the ViT-style ``attention`` model on one dataset, side by side.

Each recipe is ``python -m tfcourse.train --model attention`` with extra flags, run in its own
process into ``<results>/<label>/`` (a folder that already holds ``metrics.json`` is reused; delete
it to retrain). The table shows what each recipe costs and where it ends: epochs, wall time,
training accuracy and validation accuracy at the restored (best val_loss) epoch, best validation
accuracy, and the test accuracy of the restored model.

    python benchmarks/attention_recipes.py                    # Fashion-MNIST, ~3.2 h on 2 cores
    python benchmarks/attention_recipes.py --recipes default --dataset digits --split coursework \\
        --results /tmp/recipes --out /tmp/recipes/table.md    # a minute, to try it
"""

from __future__ import annotations

import argparse
import os
import sys

from _runs import read_run_file, train_or_reuse  # benchmarks/ is on sys.path when a script in it runs
from _tables import publish

HERE = os.path.dirname(os.path.abspath(__file__))
RECIPES = {
    "default": "--epochs 30",
    "dropout0.1": "--epochs 30 --hp dropout=0.1",
    "spt-cosine": "--epochs 30 --lr-schedule cosine --patience 8 --hp shifted_patches=true",
    "spt-augment-cosine": "--epochs 40 --augment --lr-schedule cosine --patience 10 --hp shifted_patches=true",
    "spt-augment-cosine80": "--epochs 80 --augment --lr-schedule cosine --patience 15 --hp shifted_patches=true",
}


def row(label: str, flags: str, run_dir: str) -> str:
    metrics, history = read_run_file(run_dir, "metrics.json"), read_run_file(run_dir, "history.json")
    best = metrics["best_epoch"] - 1
    return (
        f"| {label} | `{flags}` | {metrics['epochs_trained']} ({best + 1}) | {metrics['train_seconds'] / 60:.1f} | "
        f"{metrics['train_images_per_second']:.0f} | {100 * history['accuracy'][best]:.1f}% | "
        f"{100 * history['val_accuracy'][best]:.2f}% | {100 * max(history['val_accuracy']):.2f}% | "
        f"{100 * metrics['test_accuracy']:.2f}% |"
    )


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--recipes", nargs="+", default=list(RECIPES), choices=list(RECIPES))
    parser.add_argument("--dataset", default="fashion_mnist")
    parser.add_argument("--split", default="official")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--results", default=os.path.join(HERE, "results", "attention_recipes"))
    parser.add_argument("--out", default=os.path.join(HERE, "results", "attention_recipes.md"))
    args = parser.parse_args(argv)

    os.makedirs(args.results, exist_ok=True)
    rows = []
    for label in args.recipes:
        run_dir = os.path.join(args.results, label)
        train_or_reuse(
            [
                "--model",
                "attention",
                "--dataset",
                args.dataset,
                "--split",
                args.split,
                "--seed",
                str(args.seed),
                *RECIPES[label].split(),
            ],
            run_dir,
            label,
        )
        rows.append(row(label, RECIPES[label], run_dir))
    # what the first recipe's run recorded (the others differ only by their flags)
    first = read_run_file(os.path.join(args.results, args.recipes[0]), "config.json")
    hp = first["hyperparameters"]
    lines = [
        f"`attention` as recorded by the {args.recipes[0]} run (ViT: patch {hp['patch_size']}, dim {hp['embed_dim']}, "
        f"{hp['depth']} blocks x {hp['num_heads']} heads, mlp_ratio {hp['mlp_ratio']}, pool {hp['pool']}) on "
        f"{first['config']['data']['dataset']}, split {first['config']['data']['split']}, seed {first['config']['seed']}; "
        f"{hp['optimizer']} at learning rate {hp['learning_rate']:g}, batch {first['config']['data']['batch_size']}; "
        "early stopping on val_loss restores the best epoch; each recipe's flags in its row.",
        "",
        "| recipe | flags | epochs (restored) | train wall (min) | train images/s | train acc (restored) "
        "| val acc (restored) | best val acc | test accuracy |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ] + rows
    lines += [
        "",
        "Train accuracy is measured with augmentation and dropout active, as Keras logs it during fit. "
        "Train images/s: training steps only, all epochs (machine noise included).",
    ]
    publish("\n".join(lines) + "\n", args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
