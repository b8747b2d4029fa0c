"""Tables for the feed-forward network: a CSV read into named columns, each column's kind inferred
(numeric, categorical or date), the target encoded, rows without a target dropped and counted, and
train/val/test splits (stratified at random, or by time: train on the past, test on the future).

pandas reads the file (the field's CSV reader: quoting, ragged rows, encodings) with every cell as
text, so the kinds are decided here, from the values, and said out loud; a bad file is refused with
the row or byte that is wrong and what to do. Missing cells stay missing here (NaN for numbers, ``""``
for categories): the model imputes them itself, so a served model takes raw rows as they come.

``seattle_weather`` is the offline course dataset: Seattle's daily weather 2012-2015 (shipped in the
``vega_datasets`` package) as "will it rain tomorrow?" from today's observations only.

It imports ``data`` (the split checks and the stratified split) and nothing above it.
"""

from __future__ import annotations

import csv
import dataclasses
import functools
import os
import re
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from tfcourse import data

KINDS = ("numeric", "categorical", "date")
# What a feature column of each kind holds: numbers (float64 here, float32 into the model and the export, NaN
# for a missing cell) or strings ("" for a missing cell). The EDA, the model's inputs, the export's signature
# and its check ask ``holds_numbers``, so a new kind is added in data/ alone: here, in ``infer_kind`` /
# ``_feature_column``, and its encoding in ``table_features.make_feature_space``. (A date is no feature.)
HOLDS_NUMBERS = {"numeric": True, "categorical": False}


def holds_numbers(kind: str) -> bool:
    """Whether a feature column of this kind holds numbers (else strings)."""
    return HOLDS_NUMBERS[kind]


# A cell is a number or a category: one longer than this is free text (or a broken file), and a column of
# long cells costs rows x longest cell x 4 bytes as a NumPy string array (a 50 MB cell asked for 78 GiB).
MAX_CELL_CHARACTERS = 1000
# A column whose present cells are at least this share numbers is a numeric column with stray cells, not
# a categorical one: refused with the cells named, rather than one-hot encoded one value per number.
MOSTLY_NUMERIC = 0.9
# A target of numbers with more distinct values than this is a measurement (regression), not class labels.
MAX_NUMERIC_CLASSES = 20
MISSING = ("", "NA", "N/A", "n/a", "na", "NaN", "nan", "null", "NULL", "None", "?")
SPLIT_PROTOCOLS = ("stratified", "time")
CATALOGUE = {
    "seattle_weather": "Seattle daily weather 2012-2015 (vega_datasets' seattle-weather.csv): will it rain tomorrow?"
}


_KEY_CHARACTERS = re.compile(r"[^A-Za-z0-9_.-]+")


def input_keys(names: Sequence[str]) -> Dict[str, str]:
    """Column name -> the key the model's input goes by: the name itself where TensorFlow's naming rules
    allow it (letters, digits, ``_``, ``.``, ``-``, starting with a letter or digit), else the name with
    each run of other characters made one ``_`` (``wind speed`` -> ``wind_speed``, ``temp(C)`` ->
    ``temp_C``). Keys are unique: a clash takes ``_2``, ``_3``, ... (names that are keys already first)."""
    keys: Dict[str, str] = {}
    taken = set()
    for name in sorted(names, key=lambda n: (input_key_candidate(n) != n, n)):
        key, number = input_key_candidate(name), 2
        while key in taken:
            key, number = f"{input_key_candidate(name)}_{number}", number + 1
        keys[name] = key
        taken.add(key)
    return {name: keys[name] for name in names}


def input_key_candidate(name: str) -> str:
    key = _KEY_CHARACTERS.sub("_", name).strip("_.-")
    return key or "column"


@dataclasses.dataclass(frozen=True)
class TabularDataset:
    """Validated columns of one table and an encoded target.

    Attributes:
        name: The dataset name or the CSV path it was read from.
        columns: Feature name -> values: float64 with NaN where missing (numeric), or str with ``""``
            where missing (categorical).
        kinds: Feature name -> ``numeric`` or ``categorical``.
        y: int64 labels, ``class_names[y[i]]`` is row ``i``'s target.
        class_names: The target's values, sorted; for a binary target the positive class is last.
        target: The target column's name.
        source: Where the table came from.
        dropped_rows: Rows left out because their target was missing.
        times: Row -> datetime64 of the time column (``None`` without one), for ``--split time``.
        time_column: That column's name.
    """

    name: str
    columns: Dict[str, np.ndarray]
    kinds: Dict[str, str]
    y: np.ndarray
    class_names: Tuple[str, ...]
    target: str
    source: str
    dropped_rows: int = 0
    times: Optional[np.ndarray] = None
    time_column: Optional[str] = None

    @property
    def num_rows(self) -> int:
        return len(self.y)

    @functools.cached_property
    def keys(self) -> Dict[str, str]:
        """Column name -> the model's input key for it (``input_keys``): the name itself unless TensorFlow
        forbids a character of it."""
        return input_keys(list(self.columns))

    @property
    def key_kinds(self) -> Dict[str, str]:
        """The model's input key -> ``numeric`` or ``categorical``."""
        keys = self.keys
        return {keys[name]: kind for name, kind in self.kinds.items()}

    @property
    def renamed(self) -> Dict[str, str]:
        """Input key -> column name, for the columns whose key is not their name."""
        return {key: name for name, key in self.keys.items() if key != name}

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def binary(self) -> bool:
        return len(self.class_names) == 2

    def rows(self, indices: np.ndarray) -> Dict[str, np.ndarray]:
        """The feature columns of the given rows."""
        return {name: values[indices] for name, values in self.columns.items()}


# ----------------------------------------------------------------------------- reading


def read_csv(path: str):
    """Reads ``path`` as a table of strings (pandas), refusing an empty file, ragged rows, bytes that
    are not UTF-8 and repeated column names, each with the fix."""
    import pandas as pd

    if not os.path.isfile(path):
        raise ValueError(f"{path}: no such CSV file; give the path of a comma-separated file with a header row.")
    try:
        frame = pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8", on_bad_lines="error")
    except pd.errors.EmptyDataError:
        raise ValueError(f"{path} is empty; a CSV needs a header row and at least one row of data.") from None
    except pd.errors.ParserError as error:
        raise ValueError(
            f"{path} has a row with the wrong number of fields ({str(error).strip()}); every row needs one value per "
            "header column (quote values that contain commas)."
        ) from None
    except UnicodeDecodeError:
        with open(path, "rb") as handle:  # pandas' offset is into its own buffer: find the byte in the file
            raw = handle.read()
        try:
            raw.decode("utf-8")
            where = "somewhere"
        except UnicodeDecodeError as error:
            line = raw[: error.start].count(b"\n") + 1
            where = f"byte 0x{raw[error.start]:02x} on line {line}"
        raise ValueError(
            f"{path} is not UTF-8 text ({where}); save it as UTF-8 (e.g. iconv -f latin1 -t utf-8)."
        ) from None
    if frame.empty:
        raise ValueError(f"{path} has a header but no rows of data.")
    # pandas renames a repeated column ("a" -> "a.1"); the header itself tells
    with open(path, newline="", encoding="utf-8") as handle:
        header = next(csv.reader(handle))
    repeated = sorted({name for name in header if header.count(name) > 1})
    if repeated:
        raise ValueError(f"{path}: repeated column names ({', '.join(repeated)}); give every column its own name.")
    return frame


def _is_missing(values: np.ndarray) -> np.ndarray:
    return np.isin(np.char.strip(values.astype(str)), MISSING)


def _check_cell_lengths(frame, columns: Sequence[str], source: str) -> None:
    """Refuses a cell longer than ``MAX_CELL_CHARACTERS`` in ``columns``, naming its line and column."""
    for column in columns:
        lengths = frame[column].str.len().to_numpy()
        if len(lengths) and lengths.max() > MAX_CELL_CHARACTERS:
            row = int(lengths.argmax())
            raise ValueError(
                f"{source}: column {column!r} on line {row + 2} holds a cell of {int(lengths[row]):,} characters; a "
                f"table cell is a number or a category (at most {MAX_CELL_CHARACTERS:,} characters). Leave the column "
                f"out with --drop {column}, or fix the file (an unclosed quote makes one cell of many lines)."
            )


def _stray_cells(cells: np.ndarray, lines: np.ndarray, column: str) -> None:
    """Refuses a column that is numbers but for a few stray cells (``12;5``, ``abc``), naming them."""
    import pandas as pd

    present = np.flatnonzero(~_is_missing(cells))
    if len(present) < 10:
        return
    parsed = pd.to_numeric(pd.Series(cells[present]), errors="coerce").to_numpy(np.float64)
    stray = present[np.isnan(parsed)]
    if 0 < len(stray) <= (1 - MOSTLY_NUMERIC) * len(present):
        shown = ", ".join(f"line {lines[i]}: {str(cells[i])!r}" for i in stray[:3]) + (
            ", ..." if len(stray) > 3 else ""
        )
        raise ValueError(
            f"column {column!r} is numbers but for {len(stray)} of {len(present)} cells ({shown}); as it is it "
            f"would become a category per value. Fix or empty those cells (an empty cell is a missing value), or "
            f"pass --categorical {column} if its values are categories."
        )


def infer_kind(values: np.ndarray) -> str:
    """``numeric`` when every present value is a number, ``date`` when every present value is an ISO
    date or a ``YYYY/MM/DD`` date, else ``categorical``. A column with no value at all is categorical."""
    import pandas as pd

    present = values[~_is_missing(values)]
    if not len(present):
        return "categorical"
    if pd.to_numeric(pd.Series(present), errors="coerce").notna().all():
        return "numeric"
    looks_like_date = pd.Series(present).str.fullmatch(r"\d{4}[-/]\d{1,2}[-/]\d{1,2}([ T].*)?").all()
    if looks_like_date and pd.to_datetime(pd.Series(present), errors="coerce", format="mixed").notna().all():
        return "date"
    return "categorical"


def _check_names(names: Sequence[str], columns: Sequence[str], flag: str) -> None:
    unknown = [n for n in names if n not in columns]
    if unknown:
        raise ValueError(
            f"{flag}: no column named {', '.join(map(repr, unknown))}; the columns are {', '.join(columns)}."
        )


def _check_column_flags(columns, target, features, drop, categorical, numeric, time_column) -> None:
    """Every column a flag names exists, and no column is both --categorical and --numeric."""
    _check_names([target], columns, "--target")
    for flag, names in (("--features", features or ()), ("--drop", drop), ("--categorical", categorical)):
        _check_names(names, columns, flag)
    _check_names(numeric, columns, "--numeric")
    if time_column is not None:
        _check_names([time_column], columns, "--time-column")
    both = sorted(set(categorical) & set(numeric))
    if both:
        raise ValueError(f"{', '.join(both)} named by both --categorical and --numeric; choose one.")


def _encode_target(frame, target: str, categorical: Sequence[str], positive_class: Optional[str]):
    """Rows without a target dropped; the target's classes (a two-class target's positive class last) and
    labels: ``(frame, y, class_names, dropped rows, each kept row's line in the file)``."""
    raw_target = frame[target].to_numpy(dtype=str)
    keep = ~_is_missing(raw_target)
    dropped = int((~keep).sum())
    lines = np.flatnonzero(keep) + 2  # the file's line of each kept row (the header is line 1)
    frame = frame[keep].reset_index(drop=True)
    labels = np.char.strip(raw_target[keep])
    class_names = sorted(set(labels.tolist()))
    if len(class_names) < 2:
        raise ValueError(
            f"--target {target} has {'no value' if not class_names else 'one class only (' + class_names[0] + ')'}"
            f"{f' after dropping {dropped} rows without one' if dropped else ''}; a classifier needs at least two "
            "classes: pick another target column."
        )
    if len(class_names) > MAX_NUMERIC_CLASSES and target not in categorical:
        import pandas as pd

        if pd.to_numeric(pd.Series(class_names), errors="coerce").notna().all():
            raise ValueError(
                f"--target {target} holds numbers with {len(class_names)} distinct values: a measurement to "
                "predict (regression), not classes, and tfcourse trains classifiers. Bin it into a few classes, "
                f"pick a categorical target, or pass --categorical {target} if its values are class labels."
            )
    if len(class_names) == 2:
        if positive_class is None:
            positive_class = next((c for c in ("Yes", "yes", "1", "True", "true") if c in class_names), class_names[1])
        if positive_class not in class_names:
            raise ValueError(
                f"--positive-class {positive_class!r} is not a value of {target} ({', '.join(class_names)})."
            )
        class_names = [c for c in class_names if c != positive_class] + [positive_class]
    elif positive_class is not None:
        raise ValueError(f"--positive-class is for a two-class target; {target} has {len(class_names)} classes.")
    index = {c: i for i, c in enumerate(class_names)}
    y = np.array([index[v] for v in labels], dtype=np.int64)
    return frame, y, class_names, dropped, lines


def _feature_column(column: str, cells: np.ndarray, lines: np.ndarray, categorical, numeric):
    """A feature column's kind and values: float64 with NaN for a missing number, stripped strings ("" missing)
    for a category; ``("date", None)`` for a date."""
    kind = "categorical" if column in categorical else "numeric" if column in numeric else infer_kind(cells)
    if kind == "categorical" and column not in categorical:
        _stray_cells(cells, lines, column)
    if kind == "date":
        return kind, None
    missing = _is_missing(cells)
    if kind != "numeric":
        return kind, np.where(missing, "", np.char.strip(cells)).astype(str)
    import pandas as pd

    parsed = pd.to_numeric(pd.Series(np.where(missing, "nan", cells)), errors="coerce").to_numpy(np.float64)
    bad = np.flatnonzero(~missing & np.isnan(parsed))
    if len(bad):
        raise ValueError(
            f"--numeric {column}: line {lines[bad[0]]} holds {str(cells[bad[0]])!r}, not a number; drop the "
            "override or clean the column."
        )
    return kind, parsed


def from_frame(
    frame,
    target: str,
    name: str,
    source: str,
    features: Optional[Sequence[str]] = None,
    drop: Sequence[str] = (),
    categorical: Sequence[str] = (),
    numeric: Sequence[str] = (),
    positive_class: Optional[str] = None,
    time_column: Optional[str] = None,
) -> TabularDataset:
    """A ``TabularDataset`` from a table of strings (``read_csv``'s).

    Args:
        target: The column to predict; rows where it is missing are dropped (and counted).
        features: The feature columns (default: every other column but dates and ``drop``).
        drop: Columns never used as features.
        categorical, numeric: Kinds forced for these columns (e.g. a numeric code that is a category).
        positive_class: For a binary target, the class counted as positive (default: the second in
            sorted order, or ``Yes``/``yes``/``1``/``True`` when present).
        time_column: A date column kept as the rows' times (``--split time``).

    Raises:
        ValueError: Unknown columns, a target with fewer than two classes, a numeric override of a column
            that holds text, no feature left.
    """
    columns = [str(c) for c in frame.columns]
    _check_column_flags(columns, target, features, drop, categorical, numeric, time_column)
    chosen = list(features) if features else [c for c in columns if c != target and c not in drop]
    _check_cell_lengths(frame, [target] + chosen + ([time_column] if time_column else []), source)
    frame, y, class_names, dropped, lines = _encode_target(frame, target, categorical, positive_class)

    if target in chosen:
        raise ValueError(f"--features names the target {target}; a model cannot see what it predicts.")
    kinds, values = {}, {}
    times = None
    if time_column is not None:
        times = _dates(frame[time_column].to_numpy(dtype=str), time_column, lines)
    for column in chosen:
        kind, column_values = _feature_column(column, frame[column].to_numpy(dtype=str), lines, categorical, numeric)
        if kind != "date":  # a calendar date is no feature here; --time-column keeps it for a time split
            kinds[column], values[column] = kind, column_values
    if not values:
        raise ValueError(
            f"{source}: no feature column left (dates and --drop removed them all); name some with --features."
        )
    return TabularDataset(name, values, kinds, y, tuple(class_names), target, source, dropped, times, time_column)


def _dates(cells: np.ndarray, column: str, lines: np.ndarray) -> np.ndarray:
    import pandas as pd

    parsed = pd.to_datetime(pd.Series(cells), errors="coerce", format="mixed")
    bad = np.flatnonzero(parsed.isna().to_numpy())
    if len(bad):
        raise ValueError(f"--time-column {column}: line {lines[bad[0]]} holds {str(cells[bad[0]])!r}, not a date.")
    return parsed.to_numpy(dtype="datetime64[ns]")


def load_csv(path: str, target: str, **options) -> TabularDataset:
    """``read_csv`` + ``from_frame`` (options as there)."""
    return from_frame(read_csv(path), target, name=path, source=f"CSV file {path}", **options)


# ----------------------------------------------------------------------------- the course dataset


def seattle_weather_path() -> str:
    """``seattle-weather.csv`` inside the installed ``vega_datasets`` package (no download)."""
    import importlib.resources

    try:
        path = importlib.resources.files("vega_datasets") / "_data" / "seattle-weather.csv"
    except ModuleNotFoundError:
        raise ValueError("seattle_weather comes with the vega_datasets package: pip install vega_datasets.") from None
    return str(path)


def rain_tomorrow(frame):
    """Seattle's daily rows as "will it rain tomorrow?": each day's observations (date, precipitation,
    temperatures, wind, weather) and, as the target, ``Yes`` when the next day's precipitation is above 0.
    Nothing of the next day but that one fact enters a row; the last day (no tomorrow) is dropped."""
    import pandas as pd

    precipitation = pd.to_numeric(frame["precipitation"], errors="raise").to_numpy()
    today = frame.iloc[:-1].reset_index(drop=True).copy()
    today["rain_tomorrow"] = np.where(precipitation[1:] > 0, "Yes", "No")
    return today


def load_seattle_weather() -> TabularDataset:
    frame = rain_tomorrow(read_csv(seattle_weather_path()))
    return from_frame(
        frame,
        "rain_tomorrow",
        name="seattle_weather",
        source="vega_datasets seattle-weather.csv (rain tomorrow = next day's precipitation > 0)",
        time_column="date",
    )


def load_table(name: str, target: Optional[str] = None, **options) -> TabularDataset:
    """``seattle_weather`` or ``csv:PATH`` (then ``target`` is required)."""
    if name in CATALOGUE:
        given = [
            f"--{k.replace('_', '-')}" for k, v in options.items() if v and not (k == "time_column" and v == "date")
        ]
        if target not in (None, "rain_tomorrow") or given:
            flags = ", ".join(given + (["--target"] if target not in (None, "rain_tomorrow") else []))
            raise ValueError(
                f"{name} has a fixed task (rain_tomorrow from today's columns, dated by date); leave out {flags}."
            )
        return load_seattle_weather()
    if not name.startswith("csv:"):
        raise ValueError(f"Unknown table {name!r}; use one of {', '.join(CATALOGUE)} or csv:PATH.")
    if not target:
        raise ValueError(f"{name} needs --target COLUMN: the column to predict.")
    return load_csv(name[len("csv:") :], target, **options)


# ----------------------------------------------------------------------------- splits


def make_splits(
    dataset: TabularDataset,
    protocol: str = "stratified",
    val_fraction: float = 0.1,
    test_fraction: float = 0.1,
    seed: int = 42,
) -> data.Splits:
    """Disjoint train/val/test row indices, sorted.

    ``stratified``: a seeded split that keeps each class's share (the data layer's). ``time``: rows in
    time order, the earliest for training, the next ``val_fraction`` for validation and the latest
    ``test_fraction`` for testing, so nothing of the future is seen in training (rows on the same date
    stay in one split).
    """
    if protocol not in SPLIT_PROTOCOLS:
        raise ValueError(f"Unknown split {protocol!r} for a table; use one of {', '.join(SPLIT_PROTOCOLS)}.")
    data.check_split_fractions(val_fraction, test_fraction)
    if protocol == "stratified":
        return data.Splits(protocol, seed, *data.stratified_three_way(dataset.y, val_fraction, test_fraction, seed))
    if dataset.times is None:
        raise ValueError("--split time needs --time-column, the column that dates each row.")
    order = np.argsort(dataset.times, kind="stable")
    times = dataset.times[order]

    def boundary(share: float) -> int:  # the first row of the last `share`, moved back to a date's first row
        cut = int(round(len(order) * (1 - share)))
        return int(np.searchsorted(times, times[min(cut, len(order) - 1)], side="left"))

    test_start = boundary(test_fraction)
    val_start = boundary(test_fraction + val_fraction)
    train, val, test = order[:val_start], order[val_start:test_start], order[test_start:]
    if not len(train) or not len(val) or not len(test):
        raise ValueError("--split time left a split empty (too few distinct dates); use more rows or larger fractions.")
    return data.Splits(protocol, seed, np.sort(train), np.sort(val), np.sort(test))


def load_split_table(config, seed: int):
    """``(dataset, splits)``: the table a ``config.TableDataConfig`` names, and its splits."""
    dataset = load_table(
        config.dataset,
        config.target,
        features=list(config.features) or None,
        drop=config.drop,
        categorical=config.categorical,
        numeric=config.numeric,
        positive_class=config.positive_class,
        time_column=config.time_column,
    )
    return dataset, make_splits(dataset, config.split, config.val_fraction, config.test_fraction, seed)


def describe(dataset: TabularDataset) -> List[str]:
    """One line per column: kind, missing count and, for categories, how many values."""
    lines = []
    for name, values in dataset.columns.items():
        if dataset.kinds[name] == "numeric":
            missing = int(np.isnan(values).sum())
            lines.append(f"{name}: numeric, {missing} missing")
        else:
            missing = int((values == "").sum())
            lines.append(f"{name}: categorical ({len(set(values.tolist()) - {''})} values), {missing} missing")
    return lines
