"""A model's cost report as Markdown (``cost.md`` in a run folder, and what ``python -m tfcourse.cost``
prints): one row per layer (output shape, parameters, multiply-adds) and the totals of
``tfcourse.models.cost.cost_report``."""

from __future__ import annotations

from typing import Any, Dict

from tfcourse.pages.blocks import markdown_table


def _human(number: float) -> str:
    for unit, size in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(number) >= size:
            return f"{number / size:.2f}{unit}"
    return f"{number:.0f}"


def format_report(report: Dict[str, Any], all_layers: bool = True) -> str:
    """The report as a Markdown table plus totals (``all_layers=False``: only layers with parameters or MACs)."""
    rows = [
        [
            row["name"],
            row["type"],
            "x".join(str(d) for d in row["output_shape"]) if row["output_shape"] else "?",
            f"{row['params']:,}",
            f"{row['macs']:,}",
        ]
        for row in report["layers"]
        if all_layers or row["params"] or row["macs"]
    ]
    lines = [
        f"# Cost of `{report['model']}` (per image of shape {tuple(report['input_shape'])})",
        "",
        markdown_table(["layer", "type", "output shape", "parameters", "MACs"], rows, align="lllrr"),
        "",
        f"- parameters: {report['total_params']:,} ({report['trainable_params']:,} trainable)",
        f"- multiply-adds (MACs) per image, forward: {report['macs']:,} ({_human(report['macs'])})",
        f"- forward FLOPs per image (2 per MAC): {_human(report['forward_flops'])}",
        f"- estimated training FLOPs per image (~3x forward): {_human(report['training_flops'])}",
        "",
        "Counted: convolutions, dense layers and attention; biases, batch norm, activations, pooling "
        "and additions are left out.",
    ]
    return "\n".join(lines) + "\n"
