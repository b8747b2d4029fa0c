"""Transfer learning that works offline: pretrain ``vgg`` on some classes, transfer to the others.

1. ``vgg`` is trained on Fashion-MNIST classes 0-4 (T-shirt/top, Trouser, Pullover, Dress, Coat);
2. its convolutional base, frozen, gets a new head trained on classes 5-9 (Sandal, Shirt, Sneaker,
   Bag, Ankle boot), ``python -m tfcourse.train --base RUN --freeze-base``;
3. the same ``vgg`` is trained from scratch on classes 5-9 for the same number of epochs.

Steps 2 and 3 see only ``--train-limit`` (1000) labelled images of classes 5-9, the situation
transfer learning is for; the pretraining is reused when its run folder is complete.

Every run uses the real CLI with early stopping off (all epochs run). Prints and writes (``--out``)
validation accuracy per epoch side by side, test accuracy, training seconds per epoch and whether
the frozen weights stayed unchanged (checked by the run itself, recorded in its metrics.json).

    python benchmarks/transfer_demo.py                          # Fashion-MNIST (~5 min on 2 cores)
    python benchmarks/transfer_demo.py --dataset digits --split coursework --pretrain-epochs 15 \
        --epochs 2 --train-limit 200 --hp blocks=2 --results /tmp/td --out /tmp/td/table.md     # a minute, to try it
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys

from _runs import read_run_file, train_or_reuse, train_run  # benchmarks/ is on sys.path when a script in it runs
from _tables import publish

HERE = os.path.dirname(os.path.abspath(__file__))


def train(argv, run_dir):
    train_run(argv, run_dir)
    return read_run_file(run_dir, "metrics.json"), read_run_file(run_dir, "history.json")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", default="fashion_mnist")
    parser.add_argument("--split", default="official")
    parser.add_argument("--pretrain-epochs", type=int, default=5)
    parser.add_argument("--epochs", type=int, default=10, help="epochs of transfer and of scratch training")
    parser.add_argument(
        "--train-limit",
        type=int,
        default=1000,
        help="labelled training images of classes 5-9 (transfer pays off with few of them); 0: all",
    )
    parser.add_argument("--hp", action="append", default=[], help="vgg hyperparameters (both vgg runs)")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--results", default=os.path.join(HERE, "results", "transfer_demo"))
    parser.add_argument("--out", default=os.path.join(HERE, "results", "transfer_demo.md"))
    args = parser.parse_args(argv)

    os.makedirs(args.results, exist_ok=True)
    data = ["--dataset", args.dataset, "--split", args.split, "--seed", str(args.seed), "--patience", "1000"]
    hps = [flag for hp in args.hp for flag in ("--hp", hp)]
    pretrain_dir = os.path.join(args.results, "pretrain_0-4")
    # a finished pretraining of exactly these settings is reused; one of other settings stops the script
    train_or_reuse(
        ["--model", "vgg", *hps, *data, "--classes", "0-4", "--epochs", str(args.pretrain_epochs)],
        pretrain_dir,
        "pretraining",
    )
    pre = read_run_file(pretrain_dir, "metrics.json")
    limit = ["--train-limit", str(args.train_limit)] if args.train_limit else []
    target = [*data, "--classes", "5-9", "--epochs", str(args.epochs), *limit]
    for name in ("transfer_5-9", "scratch_5-9"):
        shutil.rmtree(os.path.join(args.results, name), ignore_errors=True)
    moved, moved_history = train(
        ["--base", pretrain_dir, "--freeze-base", *target], os.path.join(args.results, "transfer_5-9")
    )
    scratch, scratch_history = train(["--model", "vgg", *hps, *target], os.path.join(args.results, "scratch_5-9"))

    head = moved["transfer"]["phases"][0]
    n_train = read_run_file(os.path.join(args.results, "scratch_5-9"), "config.json")["data"]["split_sizes"]["train"]
    lines = [
        f"{args.dataset} ({args.split} split): vgg pretrained on classes 0-4 for {args.pretrain_epochs} epochs "
        f"(test accuracy {100 * pre['test_accuracy']:.2f}%), then classes 5-9 from "
        f"{'' if args.train_limit else 'all '}{n_train:,} labelled "
        f"training images for {args.epochs} epochs: frozen base + new head vs the same vgg from scratch "
        "(validation and test: all images of classes 5-9).",
        "",
        "| epoch | scratch val accuracy | transfer (frozen base) val accuracy |",
        "|---:|---:|---:|",
    ]
    for epoch, (a, b) in enumerate(zip(scratch_history["val_accuracy"], moved_history["val_accuracy"]), start=1):
        lines.append(f"| {epoch} | {100 * a:.2f}% | {100 * b:.2f}% |")
    lines += [
        "",
        "| | scratch | transfer |",
        "|---|---:|---:|",
        f"| test accuracy | {100 * scratch['test_accuracy']:.2f}% | {100 * moved['test_accuracy']:.2f}% |",
        f"| trainable parameters | {scratch['trainable_parameters']:,} | {moved['trainable_parameters']:,} |",
        f"| training seconds per epoch (mean) | {sum(scratch['epoch_train_seconds']) / args.epochs:.1f} | "
        f"{sum(moved['epoch_train_seconds']) / args.epochs:.1f} |",
        "",
        f"Trainable layers of the transfer run: {', '.join(head['trainable'])}; frozen: {len(head['frozen'])} base "
        f"layers ({head['frozen_params']:,} parameters), unchanged after training: {head['frozen_weights_unchanged']}.",
    ]
    text = "\n".join(lines) + "\n"
    publish(text, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
