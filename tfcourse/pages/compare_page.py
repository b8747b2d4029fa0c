"""A page that puts several runs side by side: ``compare.html`` + ``compare.md``."""

from __future__ import annotations

import os
from typing import Dict, Sequence

from tfcourse.evaluation import artifacts
from tfcourse.pages import plots
from tfcourse.pages.blocks import figure, heading, paragraph, table, write_pages
from tfcourse.pages.run_page import FIGURES_DIR, ensure_evaluation


def write_comparison(paths: Sequence[str], out_dir: str) -> Dict[str, str]:
    """``compare.html`` + ``compare.md``: several runs' numbers, curves and per-class accuracy side by side."""
    if len(paths) < 2:
        raise ValueError("--compare needs at least two run folders.")
    runs = [artifacts.load(p) for p in paths]
    names = []
    for run in runs:
        name = run.name
        while name in names:
            name += "'"
        names.append(name)
    metrics = [ensure_evaluation(run) for run in runs]
    classes = [list(run.class_names) for run in runs]
    if any(c != classes[0] for c in classes):
        raise ValueError("The runs were evaluated on different classes; compare runs of the same dataset and classes.")
    os.makedirs(os.path.join(out_dir, FIGURES_DIR), exist_ok=True)
    chart = plots.plot_compare_runs(
        {n: r.history for n, r in zip(names, runs)},
        {n: m["test_accuracy"] for n, m in zip(names, metrics)},
        os.path.join(out_dir, FIGURES_DIR, "compare.png"),
    )
    rows = []
    for name, run, m in zip(names, runs, metrics):
        report = m["classification_report"]
        per_class = {k: v for k, v in m["per_class_accuracy"].items() if v is not None}
        rows.append(
            [
                name,
                run.record.get("config", {}).get("model"),
                m.get("parameters"),
                round(m.get("macs_per_image", 0) / 1e6, 2) if m.get("macs_per_image") else None,
                m.get("epochs_trained"),
                m.get("train_seconds"),
                m.get("train_images_per_second"),
                m["test_accuracy"],
                m["top_k_accuracy"].get("2"),
                report["macro avg"]["f1-score"],
                min(per_class, key=per_class.get),
            ]
        )
    best = max(range(len(runs)), key=lambda i: metrics[i]["test_accuracy"])
    lines = [f"Best test accuracy: {names[best]} ({metrics[best]['test_accuracy']:.2%})."]
    for i, name in enumerate(names):
        if i != best:
            diff = metrics[best]["test_accuracy"] - metrics[i]["test_accuracy"]
            n = metrics[i]["test_examples"]
            # a difference of two accuracies on n images has a binomial standard error of about sqrt(2 p (1-p) / n)
            p = (metrics[best]["test_accuracy"] + metrics[i]["test_accuracy"]) / 2
            se = (2 * p * (1 - p) / n) ** 0.5
            lines.append(
                f"{names[best]} is {diff:.2%} ahead of {name} ({diff / se:.1f} standard errors on {n} test images)."
            )
    blocks = [
        heading(1, "Runs compared"),
        *[paragraph(line) for line in lines],
        table(
            [
                "run",
                "model",
                "parameters",
                "MMACs/img",
                "epochs",
                "train s",
                "img/s",
                "test accuracy",
                "top-2",
                "macro F1",
                "worst class",
            ],
            rows,
        ),
        figure(chart, "Validation accuracy per epoch and test accuracy"),
        heading(2, "Per-class test accuracy"),
        table(["class"] + names, [[c] + [m["per_class_accuracy"][c] for m in metrics] for c in classes[0]]),
        heading(2, "Runs"),
        table(["run", "folder"], [[n, os.path.abspath(r.run_dir or r.export_dir)] for n, r in zip(names, runs)]),
    ]
    return write_pages(blocks, out_dir, "tfcourse: runs compared", "compare.html", "compare.md")
