"""The exploratory page of a table (``python -m tfcourse.eda --dataset csv:PATH --target COLUMN`` or
``seattle_weather``): ``eda.json``, ``figures/``, ``eda.md`` and ``eda.html`` in one folder, published
only when complete (a rerun replaces it as a whole).

Sections: the table (rows, dropped rows, split), each column's kind, missing cells and values, the
target's balance per split, missing values per column, and each feature by class, with what follows
for training (``eda.table.findings``).
"""

from __future__ import annotations

import datetime
import os
from typing import Any, Callable, Dict, List, Optional

from tfcourse import rundir
from tfcourse.config import TableDataConfig, to_dict
from tfcourse.data import table_data
from tfcourse.exploration import table_eda
from tfcourse.pages import eda_plots
from tfcourse.pages.blocks import figure, heading, machine_description, paragraph, table, write_pages
from tfcourse.pages.eda_page import (
    EDA_HTML,
    EDA_JSON,
    EDA_MD,
    FIGURES_DIR,
    check_eda_folder,
    default_output_dir,
    eda_paths,
)

PANELS_PER_FIGURE = 9


def _numbers(column: Dict[str, Any], key: str) -> Any:
    value = column.get(key)
    return "" if value is None else float(value)


def write_table_eda(
    data: TableDataConfig,
    seed: int = 42,
    output_dir: Optional[str] = None,
    progress: Optional[Callable[[str], None]] = None,
    command: Optional[List[str]] = None,
) -> Dict[str, Any]:
    """Reads and splits the table ``data`` names, measures it and writes the EDA folder.

    Returns:
        ``{"html", "markdown", "json", "out_dir", "implications"}``.

    Raises:
        ValueError: Bad data or settings, or an ``output_dir`` that holds something other than an EDA.
    """
    say = progress or (lambda text: None)
    out_dir = output_dir or default_output_dir(data.dataset)
    check_eda_folder(out_dir)
    say(f"reading {data.dataset} ...")
    dataset, splits = table_data.load_split_table(data, seed)
    columns = table_eda.column_summary(dataset)
    balance = table_eda.target_balance(dataset, splits)
    panels = table_eda.feature_by_class(dataset, splits.train)
    implications = table_eda.findings(columns, balance, panels, dataset.class_names)
    say(f"{dataset.num_rows} rows, {len(columns)} feature columns, target {dataset.target}: figures ...")

    header = {
        "dataset": data.dataset,
        "source": dataset.source,
        "target": dataset.target,
        "rows": dataset.num_rows,
        "dropped_rows_without_target": dataset.dropped_rows,
        "split": splits.protocol,
        "split_sizes": splits.sizes(),
        "seed": seed,
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": machine_description(),
        "command": command,
    }
    with rundir.staged_folder(out_dir) as partial:  # an earlier EDA of the same folder is replaced as a whole
        figures, by_class = _draw_figures(dataset, columns, balance, panels, os.path.join(partial, FIGURES_DIR))
        numbers = [{k: v for k, v in p.items() if k != "values"} for p in panels]  # the arrays stay out of JSON
        rundir.write_json(
            os.path.join(partial, EDA_JSON),
            {
                "header": header,
                "config": {"data": to_dict(data), "seed": seed},
                "implications": implications,
                "columns": columns,
                "target_balance": balance,
                "features_by_class": numbers,
            },
        )
        blocks = _blocks(dataset, columns, balance, panels, implications, figures, by_class, header)
        write_pages(blocks, partial, f"tfcourse EDA: {data.dataset}", EDA_HTML, EDA_MD)
    return {**eda_paths(out_dir), "implications": implications}


def _draw_figures(dataset, columns, balance, panels, figures_dir: str):
    """The target's balance per split, the missing cells per column, and every feature by class (a few
    columns per figure): ``(figures, by_class)``."""
    os.makedirs(figures_dir)

    def fig(name: str) -> str:
        return os.path.join(figures_dir, name)

    figures = {
        "balance": eda_plots.plot_class_counts(balance, fig("target_balance.png"), f"{dataset.target} per split"),
        "missing": eda_plots.plot_missing_values(
            {c["name"]: c["missing"] for c in columns}, dataset.num_rows, fig("missing_values.png")
        ),
    }
    by_class = []
    for start in range(0, len(panels), PANELS_PER_FIGURE):
        by_class.append(
            eda_plots.plot_columns_by_class(
                panels[start : start + PANELS_PER_FIGURE],
                dataset.class_names,
                fig(f"features_by_class_{start // PANELS_PER_FIGURE + 1}.png"),
                f"features by {dataset.target} (training rows)",
            )
        )
    return figures, by_class


def _blocks(dataset, columns, balance, panels, implications, figures, by_class, header) -> list:
    blocks = [
        heading(1, f"Exploratory analysis: {header['dataset']}"),
        paragraph(
            f"{header['source']}: {header['rows']} rows ({header['dropped_rows_without_target']} dropped without a "
            f"target), {len(columns)} feature columns, target {dataset.target} ({', '.join(dataset.class_names)}). "
            f"Split {header['split']} (seed {header['seed']}): "
            + ", ".join(f"{k} {v}" for k, v in header["split_sizes"].items())
            + f". {header['date']}, {header['machine']}."
        ),
        heading(2, "What follows for training"),
    ]
    blocks += [paragraph(f"- {line}") for line in implications]
    blocks += [
        heading(2, "Columns"),
        table(
            ["column", "kind", "missing", "missing share", "distinct values", "mean", "std", "min", "median", "max"],
            [
                [c["name"], c["kind"], c["missing"], c["missing_share"], c["distinct"]]
                + [_numbers(c, key) for key in ("mean", "std", "min", "median", "max")]
                for c in columns
            ],
        ),
        figure(figures["missing"], "Share of rows missing per column (the count beside each bar)."),
        heading(2, "The target"),
        table(
            ["split"] + list(dataset.class_names), [[part] + list(counts.values()) for part, counts in balance.items()]
        ),
        figure(figures["balance"], f"Rows of each {dataset.target} class per split."),
        heading(2, "Each feature by class"),
    ]
    numeric = [p for p in panels if p["kind"] == "numeric"]
    if numeric:
        header_row = ["column"] + [f"mean ({name})" for name in dataset.class_names]
        header_row += [f"missing ({name})" for name in dataset.class_names]
        binary = any("auc" in p for p in numeric)
        rows = []
        for p in numeric:
            row = [p["name"]] + ["" if m is None else m for m in p["means"]] + p["missing_share_by_class"]
            rows.append(row + ([p.get("auc", "")] if binary else []))
        blocks.append(table(header_row + (["ROC-AUC alone"] if binary else []), rows))
        if binary:
            blocks.append(
                paragraph(
                    f"ROC-AUC alone: how well the value by itself ranks {dataset.class_names[1]} above "
                    f"{dataset.class_names[0]} on the training rows (0.5: not at all; below 0.5: smaller values "
                    f"mean {dataset.class_names[1]})."
                )
            )
    for index, path in enumerate(by_class):
        blocks.append(
            figure(
                path,
                f"Features by class, part {index + 1}: numbers as densities per class; categories as the class "
                "shares within each of their most common values.",
            )
        )
    return blocks
