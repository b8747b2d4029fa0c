"""A 200,000-row, 25-column table in weatherAUS's shape, trained end to end by the real command line:
wall time and the peak memory (RSS) of the training process, beside the table's size.

The table is generated (seeded): 49 locations and 16 wind directions as strings, numeric weather
readings with a daily seasonal cycle and a per-location climate, RainToday Yes/No, about 10% of the
feature cells missing (some columns more, as in weatherAUS), and RainTomorrow drawn from a logistic
model of humidity, pressure, cloud, sunshine, rain today and the location, its intercept set so that
22% of the rows are Yes. ``python -m tfcourse.train --dataset csv:PATH --target RainTomorrow`` then
reads, splits by time, adapts the FeatureSpace on the training rows, trains on tf.data batches
encoded on the fly, evaluates, writes the report and exports the SavedModel (checked in a fresh
process).

    python benchmarks/table_scale.py                      # 200,000 rows (about 2 minutes)
    python benchmarks/table_scale.py --rows 20000 --out /tmp/t.md
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _tables  # noqa: E402

DIRECTIONS = ["N", "NNE", "NE", "ENE", "E", "ESE", "SE", "SSE", "S", "SSW", "SW", "WSW", "W", "WNW", "NW", "NNW"]
LOCATIONS = [f"Station{i:02d}" for i in range(49)]
# weatherAUS's sparsest columns are missing far more often than the rest; the mean share is ~10%
MISSING_SHARE = {"Evaporation": 0.35, "Sunshine": 0.40, "Cloud9am": 0.30, "Cloud3pm": 0.30}
DEFAULT_MISSING = 0.045
POSITIVE_SHARE = 0.22


def weather_like(rows: int, seed: int = 0):
    """The generated table as ``{column: values}`` (strings for categories, floats with NaN), 25 columns."""
    rng = np.random.default_rng(seed)
    days = np.sort(rng.integers(0, 3650, rows))
    dates = np.datetime64("2008-01-01") + days.astype("timedelta64[D]")
    location = rng.integers(0, len(LOCATIONS), rows)
    season = np.cos(2 * np.pi * (days % 365) / 365)  # 1 in midsummer (January), -1 in winter
    climate = rng.normal(0, 1, len(LOCATIONS))[location]  # wetter or drier places
    humidity3pm = np.clip(50 + 12 * climate + rng.normal(0, 18, rows), 0, 100)
    pressure3pm = 1015 - 4 * season + rng.normal(0, 7, rows) - 0.05 * (humidity3pm - 50)
    cloud3pm = np.clip(np.round(4 + 0.05 * (humidity3pm - 50) + rng.normal(0, 2.2, rows)), 0, 8)
    sunshine = np.clip(8 + 3 * season - 0.5 * (cloud3pm - 4) + rng.normal(0, 2, rows), 0, 14)
    rain_today = rng.random(rows) < 1 / (1 + np.exp(-(0.06 * (humidity3pm - 60) + 0.8 * climate - 1.2)))
    max_temp = 23 + 7 * season + rng.normal(0, 4, rows) - 0.05 * (humidity3pm - 50)
    columns = {
        "Date": dates.astype(str),
        "Location": np.array(LOCATIONS)[location],
        "MinTemp": max_temp - 10 + rng.normal(0, 2, rows),
        "MaxTemp": max_temp,
        "Rainfall": np.where(rain_today, rng.gamma(1.2, 6, rows), 0.0),
        "Evaporation": np.clip(5 + 2 * season + rng.normal(0, 2, rows), 0, None),
        "Sunshine": sunshine,
        "WindGustDir": np.array(DIRECTIONS)[rng.integers(0, 16, rows)],
        "WindGustSpeed": np.clip(40 + rng.normal(0, 13, rows), 6, None),
        "WindDir9am": np.array(DIRECTIONS)[rng.integers(0, 16, rows)],
        "WindDir3pm": np.array(DIRECTIONS)[rng.integers(0, 16, rows)],
        "WindSpeed9am": np.clip(14 + rng.normal(0, 8, rows), 0, None),
        "WindSpeed3pm": np.clip(18 + rng.normal(0, 8, rows), 0, None),
        "Humidity9am": np.clip(humidity3pm + 18 + rng.normal(0, 10, rows), 0, 100),
        "Humidity3pm": humidity3pm,
        "Pressure9am": pressure3pm + 2.5 + rng.normal(0, 1.5, rows),
        "Pressure3pm": pressure3pm,
        "Cloud9am": np.clip(np.round(cloud3pm + rng.normal(0, 1.5, rows)), 0, 8),
        "Cloud3pm": cloud3pm,
        "Temp9am": max_temp - 6 + rng.normal(0, 1.5, rows),
        "Temp3pm": max_temp - 1.5 + rng.normal(0, 1, rows),
        "Visibility9am": np.clip(20 - 0.1 * (humidity3pm - 50) + rng.normal(0, 4, rows), 0, None),
        "Visibility3pm": np.clip(22 - 0.1 * (humidity3pm - 50) + rng.normal(0, 4, rows), 0, None),
        "RainToday": np.where(rain_today, "Yes", "No"),
    }
    score = (
        0.07 * (humidity3pm - 50)
        - 0.08 * (pressure3pm - 1015)
        + 0.25 * (cloud3pm - 4)
        - 0.12 * (sunshine - 8)
        + 0.7 * rain_today
        + 0.5 * climate
    )
    low, high = -20.0, 20.0  # the intercept that makes POSITIVE_SHARE of the rows Yes on average (bisection)
    for _ in range(60):
        middle = (low + high) / 2
        low, high = (middle, high) if np.mean(1 / (1 + np.exp(-(score + middle)))) < POSITIVE_SHARE else (low, middle)
    columns["RainTomorrow"] = np.where(rng.random(rows) < 1 / (1 + np.exp(-(score + low))), "Yes", "No")
    for name, values in columns.items():
        if name in ("Date", "RainTomorrow"):
            continue
        missing = rng.random(rows) < MISSING_SHARE.get(name, DEFAULT_MISSING)
        if values.dtype.kind == "f":
            columns[name] = np.where(missing, np.nan, np.round(values, 1))
        else:
            columns[name] = np.where(missing, "NA", values)
    return columns


def write_weather_like_csv(path: str, rows: int, seed: int = 0) -> dict:
    """Writes the generated table as a CSV (``NA`` for a missing cell); returns its facts."""
    import pandas as pd

    columns = weather_like(rows, seed)
    frame = pd.DataFrame(columns)
    frame.to_csv(path, index=False, na_rep="NA")
    features = [name for name in columns if name not in ("Date", "RainTomorrow")]
    cells = frame[features].isna().to_numpy() | (frame[features] == "NA").to_numpy()
    return {
        "rows": rows,
        "columns": len(columns),
        "missing_share": float(cells.mean()),
        "positive_share": float(np.mean(columns["RainTomorrow"] == "Yes")),
        "bytes": os.path.getsize(path),
    }


def train_command(csv_path: str, run_dir: str, export_dir: str, extra) -> list:
    return [
        sys.executable,
        "-m",
        "tfcourse.train",
        "--dataset",
        f"csv:{csv_path}",
        "--target",
        "RainTomorrow",
        "--time-column",
        "Date",
        "--split",
        "time",
        "--output-dir",
        run_dir,
        "--export",
        "--export-dir",
        export_dir,
        "--verbose",
        "2",
        *extra,
    ]


def measure(rows: int, seed: int, extra, scratch: str) -> dict:
    """Generates a table of ``rows`` rows and runs the train command on it: its facts, wall time, the
    peak RSS of the train process (and anything it waited for), and the run's numbers."""
    folder = os.path.join(scratch, str(rows))
    os.makedirs(folder)
    csv_path = os.path.join(folder, "weather_like.csv")
    started = time.perf_counter()
    facts = write_weather_like_csv(csv_path, rows, seed)
    facts["generated_s"] = time.perf_counter() - started
    run_dir = os.path.join(folder, "run")
    command = train_command(csv_path, run_dir, os.path.join(folder, "saved_models"), extra)
    print("$ " + " ".join(command), flush=True)
    log_path = os.path.join(folder, "train.log")
    started = time.perf_counter()
    with open(log_path, "w") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
        _, status, usage = os.wait4(process.pid, 0)  # this child's own peak memory (Linux: KiB)
    facts["wall_s"] = time.perf_counter() - started
    if status != 0:
        print(open(log_path).read()[-3000:])
        raise SystemExit(f"training on {rows} rows failed (status {status})")
    facts["peak_mib"] = usage.ru_maxrss / 1024
    facts["metrics"] = json.load(open(os.path.join(run_dir, "metrics.json")))
    facts["data"] = json.load(open(os.path.join(run_dir, "config.json")))["data"]
    facts["epochs"] = len(json.load(open(os.path.join(run_dir, "history.json")))["loss"])
    facts["command"] = command
    return facts


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--train-args", default="--epochs 10 --batch-size 512", help="more tfcourse.train flags")
    parser.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "results", "table_scale.md"))
    args = parser.parse_args(argv)

    sizes = [args.rows // 10, args.rows]  # memory that grows with the rows shows beside the small run
    with tempfile.TemporaryDirectory() as scratch:
        runs = [measure(rows, args.seed, args.train_args.split(), scratch) for rows in sizes]

    def row(label, value):
        return f"| {label} | " + " | ".join(value(run) for run in runs) + " |"

    lines = [
        "| what | " + " | ".join(f"{run['rows']:,} rows" for run in runs) + " |",
        "|---|" + "---:|" * len(runs),
        row("columns", lambda r: str(r["columns"])),
        row("CSV size", lambda r: f"{r['bytes'] / 2**20:.1f} MiB"),
        row("missing feature cells", lambda r: f"{r['missing_share']:.1%}"),
        row("RainTomorrow = Yes", lambda r: f"{r['positive_share']:.1%}"),
        row("FeatureSpace inputs", lambda r: str(r["data"]["encoded_features"])),
        row(
            "encoded training rows, if they were held (float32)",
            lambda r: f"{r['data']['split_sizes']['train'] * r['data']['encoded_features'] * 4 / 2**20:.0f} MiB",
        ),
        row(
            "split (time): train / val / test",
            lambda r: " / ".join(f"{v:,}" for v in r["data"]["split_sizes"].values()),
        ),
        row("epochs run", lambda r: str(r["epochs"])),
        row("test ROC-AUC", lambda r: f"{r['metrics']['roc_auc']:.3f}"),
        row(
            "test accuracy (majority class)",
            lambda r: f"{r['metrics']['accuracy']:.2%} ({r['metrics']['majority_baseline_accuracy']:.2%})",
        ),
        row("F1 of Yes", lambda r: f"{r['metrics']['classification_report']['Yes']['f1-score']:.3f}"),
        row("**wall time of the train command, end to end**", lambda r: f"**{r['wall_s']:.1f} s**"),
        row("**peak RSS of the train process**", lambda r: f"**{r['peak_mib']:.0f} MiB**"),
    ]
    generated = ", ".join(f"{r['generated_s']:.1f} s" for r in runs)
    flags = " ".join(runs[-1]["command"][3:]).replace(os.path.dirname(runs[-1]["command"][4][4:]), "DIR")
    text = (
        f"`python -m tfcourse.train {flags}`, timed as a whole: read the CSV, split by time, adapt the "
        "FeatureSpace on the training rows, train on tf.data batches gathered and encoded on the fly, evaluate, "
        "write the report, export the SavedModel and check it in a fresh process. The CSV is generated first "
        f"({generated}; not counted). The encoded rows are never held: "
        "only the raw columns are, so memory grows with the table's cells, not with the one-hot width.\n\n"
        + "\n".join(lines)
        + "\n"
    )
    _tables.publish(text, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
