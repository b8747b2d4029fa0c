"""``python -m tfcourse.eda`` on a table: a planted CSV whose answers are known (kinds, missing cells,
class balance, a feature that decides the class, a category that is always one class), the page in
headless Chromium, and the flags that do not apply refused."""

import json
import os

import numpy as np
import pytest

from tfcourse import eda
from tfcourse.config import TableDataConfig
from tfcourse.data import table_data
from tfcourse.pages import browser


def planted_csv(path, rows=400):
    rng = np.random.default_rng(3)
    lines = ["x,noise,colour,gappy,label"]
    for i in range(rows):
        x = rng.normal()
        label = "Yes" if x > 0.4 else "No"
        colour = "violet" if i % 10 == 0 else rng.choice(["red", "green", "blue"])
        if colour == "violet":
            label = "Yes"  # violet rows are always Yes
        gappy = "" if i % 4 == 0 else f"{rng.normal():.3f}"  # exactly a quarter missing
        lines.append(f"{x:.4f},{rng.normal():.4f},{colour},{gappy},{label}")
    path.write_text("\n".join(lines) + "\n")
    return path


def rank_auc(labels, scores):
    """P(a positive row scores above a negative one), ties counted half: ROC-AUC by its definition."""
    positives, negatives = scores[labels == 1], scores[labels == 0]
    return np.mean([(p > n) + 0.5 * (p == n) for p in positives for n in negatives])


needs_chromium = pytest.mark.skipif(
    browser.find_chromium() is None and os.environ.get("CI") != "true",
    reason="headless Chromium is not installed (apt-get install chromium)",
)


@needs_chromium
def test_a_planted_table_gives_its_known_answers(tmp_path, capsys):
    csv_path = planted_csv(tmp_path / "t.csv")
    out = tmp_path / "eda"
    argv = ["--dataset", f"csv:{csv_path}", "--target", "label", "--output-dir", str(out), "--check", "--quiet"]
    assert eda.main(argv) == 0
    printed = capsys.readouterr().out
    assert "gappy (25%)" in printed and "The single most telling number is x" in printed
    result = json.load(open(out / "eda.json"))
    columns = {c["name"]: c for c in result["columns"]}
    assert {n: c["kind"] for n, c in columns.items()} == {
        "x": "numeric",
        "noise": "numeric",
        "colour": "categorical",
        "gappy": "numeric",
    }
    assert columns["gappy"]["missing"] == 100 and columns["x"]["missing"] == 0 and columns["colour"]["distinct"] == 4

    dataset, splits = table_data.load_split_table(TableDataConfig(dataset=f"csv:{csv_path}", target="label"), 42)
    balance = result["target_balance"]
    assert {part: sum(counts.values()) for part, counts in balance.items()} == splits.sizes()
    assert balance["train"]["Yes"] == int(np.sum(dataset.y[splits.train] == 1))
    panels = {p["name"]: p for p in result["features_by_class"]}
    train = splits.train
    assert panels["x"]["auc"] == pytest.approx(rank_auc(dataset.y[train], dataset.columns["x"][train]))
    assert panels["x"]["auc"] > 0.9 and abs(panels["noise"]["auc"] - 0.5) < 0.1
    colour = panels["colour"]
    violet = colour["categories"].index("violet")
    assert colour["counts"][0][violet] == 0 and colour["counts"][1][violet] == int(np.sum(train % 10 == 0))
    assert sorted(os.listdir(out)) == ["eda.html", "eda.json", "eda.md", "figures"]
    assert len(os.listdir(out / "figures")) == 3  # balance, missing values, one figure of 4 features


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--dataset", "seattle_weather", "--tsne-samples", "50"], "--tsne-samples does not apply to a table"),
        (["--dataset", "digits", "--target", "y"], "--target applies to a table"),
        (["--dataset", "seattle_weather", "--split", "official"], "a table has no official test set"),
        (["--dataset", "csv:nowhere.csv", "--target", "y"], "no such CSV file"),
    ],
)
def test_flags_that_do_not_apply_exit_2_and_write_nothing(argv, message, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as done:
        eda.main(argv + ["--quiet"])
    assert done.value.code == 2 and message in capsys.readouterr().err
    assert os.listdir(tmp_path) == []
