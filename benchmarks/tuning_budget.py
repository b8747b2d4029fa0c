"""Hyperband vs RandomSearch on the same time budget, then the Hyperband winner retrained and tested.

Runs, one after the other, with the real CLI (``python -m tfcourse.tune``):
1. Hyperband over the ``cnn`` space narrowed by ``benchmarks/tuning_space.json`` (the budget);
2. ``--retrain`` of the Hyperband search (resumes the finished search, then trains the best
   hyperparameters on train+val for the best trial's epoch count and tests once);
3. RandomSearch over the same space with ``--max-minutes`` set to Hyperband's wall time.

Prints and writes (``benchmarks/results/tuning_budget.md``) a table of the best validation
accuracy each tuner had reached after the same wall-clock times, and the retrained test accuracy.

    python benchmarks/tuning_budget.py                       # Fashion-MNIST, official split (~1.5 h here)
    python benchmarks/tuning_budget.py --dataset digits --split coursework --max-epochs 2 --factor 2 \
        --directory /tmp/tb --out /tmp/tb/table.md     # about two minutes, to try it
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

from _tables import publish  # benchmarks/ is on sys.path when a script in it runs

HERE = os.path.dirname(os.path.abspath(__file__))


def run(command, log_path):
    print("$ " + " ".join(command), flush=True)
    start = time.perf_counter()
    with open(log_path, "w", encoding="utf-8") as log:
        subprocess.run(command, check=True, stdout=log, stderr=subprocess.STDOUT)
    return time.perf_counter() - start


def best_so_far(rows, seconds):
    """Best score among trials that had finished ``seconds`` after the search's first trial started."""
    timed = [row for row in rows if row.get("end_time") and row.get("wall_seconds")]
    if not timed:
        return None, 0
    start = min(row["end_time"] - row["wall_seconds"] for row in timed)
    done = [row for row in timed if row["end_time"] - start <= seconds and row["score"] is not None]
    return (max(row["score"] for row in done) if done else None), len(done)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", default="fashion_mnist")
    parser.add_argument("--split", default="official")
    parser.add_argument("--max-epochs", type=int, default=12)
    parser.add_argument("--factor", type=int, default=4)
    parser.add_argument("--space", default=os.path.join(HERE, "tuning_space.json"))
    parser.add_argument("--directory", default="tuning/benchmark")
    parser.add_argument("--out", default=os.path.join(HERE, "results", "tuning_budget.md"))
    parser.add_argument(
        "--reuse", action="store_true", help="skip the phases whose wall time <directory>/walls.json already records"
    )
    args = parser.parse_args(argv)

    common = [
        sys.executable,
        "-m",
        "tfcourse.tune",
        "--model",
        "cnn",
        "--dataset",
        args.dataset,
        "--split",
        args.split,
        "--space",
        args.space,
        "--directory",
        args.directory,
        "--seed",
        "42",
        "--verbose",
        "2",
    ]
    hyperband = common + [
        "--tuner",
        "hyperband",
        "--max-epochs",
        str(args.max_epochs),
        "--factor",
        str(args.factor),
        "--project-name",
        "hyperband",
        "--overwrite",
    ]
    os.makedirs(args.directory, exist_ok=True)
    logs = {name: os.path.join(args.directory, f"{name}.log") for name in ("hyperband", "random", "retrain")}
    walls_path = os.path.join(args.directory, "walls.json")
    walls = json.load(open(walls_path)) if args.reuse and os.path.exists(walls_path) else {}

    def phase(name, command):
        if name not in walls:
            walls[name] = run(command, logs[name])
            with open(walls_path, "w", encoding="utf-8") as handle:
                json.dump(walls, handle)
        return walls[name]

    hb_wall = phase("hyperband", hyperband)
    budget_minutes = hb_wall / 60
    retrain = [c for c in hyperband if c != "--overwrite"] + [
        "--retrain",
        "--retrain-on",
        "train+val",
        "--output-dir",
        os.path.join(args.directory, "retrained"),
        "--export-dir",
        os.path.join(args.directory, "saved_models"),
    ]
    rt_wall = phase("retrain", retrain)
    random = common + [
        "--tuner",
        "random",
        "--max-trials",
        "1000",
        "--epochs",
        str(args.max_epochs),
        "--max-minutes",
        f"{budget_minutes:.2f}",
        "--project-name",
        "random",
        "--overwrite",
    ]
    rs_wall = phase("random", random)

    rows = {
        name: json.load(open(os.path.join(args.directory, name, "trials.json"))) for name in ("hyperband", "random")
    }
    metrics = json.load(open(os.path.join(args.directory, "retrained", "metrics.json")))
    config = json.load(open(os.path.join(args.directory, "retrained", "config.json")))
    search = json.load(open(os.path.join(args.directory, "hyperband", "search.json")))

    marks = sorted({round(hb_wall * f) for f in (0.25, 0.5, 0.75, 1.0)})
    lines = [
        f"# Hyperband vs RandomSearch, same budget ({args.dataset}, split {args.split}, cnn)",
        "",
        f"Space: `{os.path.relpath(args.space)}`; Hyperband max_epochs={args.max_epochs}, factor={args.factor}; "
        f"RandomSearch {args.max_epochs} epochs per trial, no new trial after {budget_minutes:.1f} min. "
        f"Both (as their search.json records): early stopping after {search['patience']} epochs without "
        f"val_loss improvement and the `{search.get('lr_schedule', 'plateau')}` learning-rate schedule inside "
        f"trials, seed {search['seed']}.",
        "",
        "| tuner | "
        + " | ".join(f"best val acc after {m / 60:.1f} min" for m in marks)
        + " | trials finished in budget | wall time |",
        "|---|" + "---:|" * (len(marks) + 2),
    ]
    for name, wall in (("hyperband", hb_wall), ("random", rs_wall)):
        cells = []
        for mark in marks:
            best, count = best_so_far(rows[name], mark)
            cells.append("-" if best is None else f"{best:.4f} ({count})")
        _, in_budget = best_so_far(rows[name], hb_wall)
        lines.append(
            f"| {name} | " + " | ".join(cells) + f" | {in_budget} of {len(rows[name])} | {wall / 60:.1f} min |"
        )
    lines += [
        "",
        "(n) = trials finished by then.",
        "",
        f"Hyperband's best trial {config['tuned_from']['trial_id']} (val accuracy "
        f"{config['tuned_from']['score']:.4f}, best epoch {config['tuned_from']['best_epoch']}), retrained on "
        f"train+val for {metrics['epochs_trained']} epochs: **test accuracy {metrics['test_accuracy']:.4f}** "
        f"({rt_wall / 60:.1f} min wall incl. export and its check).",
        "",
        "Best hyperparameters: `" + json.dumps(config["tuned_from"]["hyperparameters"], sort_keys=True) + "`",
        "",
        "Commands:",
        "",
        "```",
        " ".join(hyperband[1:]),
        " ".join(random[1:]),
        " ".join(retrain[1:]),
        "```",
    ]
    text = "\n".join(lines) + "\n"
    publish(text, args.out)


if __name__ == "__main__":
    main()
