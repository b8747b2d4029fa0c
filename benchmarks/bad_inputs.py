"""A battery of bad inputs through every CLI: each must be refused (or survived) cleanly.

For every case the CLI's ``main`` runs in a fresh scratch folder (its working directory) with the
case's files planted there, and the script records the exit status, the first line of what it
printed to stderr, whether a traceback escaped, and what was left behind in the scratch folder
beyond the planted files. A case passes when the exit status is the expected one (2 for a
refusal), no traceback escaped, the message matches what the case expects, and nothing was left
behind. ``--subprocess`` runs each case as ``python -m tfcourse.<cli>`` instead (slower: each
process imports TensorFlow), which also covers the module entry points.

Faults of the machine are real, not simulated: a case with ``mounts`` runs its CLI as a subprocess in
its own user and mount namespace (``unshare -rm``) with a tiny or read-only tmpfs mounted in its scratch
folder (a full disk, a read-only file system), and what the CLI left on that file system is listed from
inside before the namespace ends. A case with ``cli="api"`` calls the Python API a program would
(``call``): a ``ValueError`` there is its refusal (exit status 2 in the table).

Usage: python benchmarks/bad_inputs.py [--subprocess] [--only SUBSTRING] [--out FILE]
Writes benchmarks/results/bad_inputs.md; exits 1 if any case fails.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import gzip
import io
import os
import re
import shutil
import struct
import subprocess
import sys
import tempfile
import time
import traceback
from typing import Callable, List, Optional

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _tables import publish  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@dataclasses.dataclass
class Case:
    name: str
    cli: str  # train, tune, explain, report, export, cost, eda
    argv: List[str]  # "{scratch}" is replaced by the case's scratch folder
    expect: str  # a regular expression the stderr must match
    plant: Callable[[str], None] = lambda scratch: None
    code: int = 2
    keep: bool = False  # True: the case writes on purpose (e.g. --summary); only new files are checked
    mounts: Optional[str] = None  # shell lines run first inside `unshare -rm` (tmpfs mounts in the scratch)
    call: Optional[Callable[[List[str]], Optional[int]]] = None  # cli="api": the API call, given argv


# ----------------------------------------------------------------------------- planted files


def _write_idx(path, array):
    array = np.asarray(array, dtype=np.uint8)
    header = bytes([0, 0, 0x08, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    with gzip.open(path, "wb") as handle:
        handle.write(header + array.tobytes())


def _idx(stray):
    def plant(scratch):
        folder = os.path.join(scratch, "idx")
        os.makedirs(folder)
        rng = np.random.default_rng(0)
        for prefix, count in (("train", 300), ("t10k", 50)):
            labels = np.arange(count) % 10
            if prefix == "train":
                labels[: len(stray)] = stray
            _write_idx(os.path.join(folder, f"{prefix}-images-idx3-ubyte.gz"), rng.integers(0, 255, (count, 8, 8)))
            _write_idx(os.path.join(folder, f"{prefix}-labels-idx1-ubyte.gz"), labels)

    return plant


def _images(classes=("a", "b"), extra=None):
    def plant(scratch):
        from PIL import Image

        for name in classes:
            folder = os.path.join(scratch, "images", name)
            os.makedirs(folder)
            for i in range(6):
                Image.fromarray(np.full((8, 8), 30 * i, dtype=np.uint8)).save(os.path.join(folder, f"{i}.png"))
        if extra:
            extra(os.path.join(scratch, "images", classes[0]))

    return plant


def _bomb(folder):
    from PIL import Image

    Image.new("1", (14000, 14000)).save(os.path.join(folder, "bomb.png"))


def _corrupt_png(folder):
    with open(os.path.join(folder, "broken.png"), "wb") as handle:
        handle.write(b"\x89PNG\r\n\x1a\n" + b"\x00" * 20)


def _file(name, text="a file\n"):
    def plant(scratch):
        with open(os.path.join(scratch, name), "w", encoding="utf-8") as handle:
            handle.write(text)

    return plant


def _bytes(name, payload: bytes):
    def plant(scratch):
        with open(os.path.join(scratch, name), "wb") as handle:
            handle.write(payload)

    return plant


def _run(change=None):
    """A copy of the shared trained run folder as ``run``, optionally damaged."""

    def plant(scratch):
        shutil.copytree(SHARED["run"], os.path.join(scratch, "run"))
        if change:
            change(os.path.join(scratch, "run"))

    return plant


def _both(*plants):
    def plant(scratch):
        for one in plants:
            one(scratch)

    return plant


def _foreign_project(scratch):
    os.makedirs(os.path.join(scratch, "tuning", "photos"))
    _file(os.path.join("tuning", "photos", "holiday.jpg"))(scratch)


def _search_with_corrupt_trial(scratch):
    shutil.copytree(SHARED["search"], os.path.join(scratch, "tuning", "s"))
    import glob

    path = sorted(glob.glob(os.path.join(scratch, "tuning", "s", "trial_*", "trial.json")))[0]
    with open(path, encoding="utf-8") as handle:
        text = handle.read()
    with open(path, "w", encoding="utf-8") as handle:
        handle.write(text[:30])


def _overwrite(name, content):
    def change(run_dir):
        with open(os.path.join(run_dir, name), "w", encoding="utf-8") as handle:
            handle.write(content)

    return change


def _nan_weights(run_dir):
    """The run's model.keras with one kernel overflowed to NaN: what a diverged training wrote before
    tfcourse checked the weights (the loss had stayed finite)."""
    import keras
    import numpy as np

    import tfcourse  # noqa: F401  (registers the custom layers)

    model = keras.models.load_model(os.path.join(run_dir, "model.keras"))
    kernel = next(w for w in model.weights if "kernel" in w.path)
    kernel.assign(np.full(kernel.shape, np.nan, dtype="float32"))
    model.save(os.path.join(run_dir, "model.keras"))


def _png(name, side=8, value=200):
    def plant(scratch):
        from PIL import Image

        Image.fromarray(np.full((side, side), value, dtype=np.uint8)).save(os.path.join(scratch, name))

    return plant


def _numbers_csv(stray=None, rows=400):
    """A table whose column ``a`` is numbers (``stray``: line -> a cell that is not)."""

    def plant(scratch):
        lines = ["a,b,y"] + [f"{i % 37 / 3:.2f},{'xyz'[i % 3]},{'pn'[i % 2]}" for i in range(rows)]
        for line, cell in (stray or {}).items():
            lines[line - 1] = f'"{cell}",x,p'
        _file("t.csv", "\n".join(lines) + "\n")(scratch)

    return plant


def _awkward_names_csv(scratch):
    rng = np.random.default_rng(1)
    lines = ["wind speed,temp(C),speed km/h,rain"]
    for _ in range(200):
        wind = rng.uniform(0, 10)
        lines.append(f"{wind:.2f},{rng.uniform(-5, 30):.1f},{rng.uniform(0, 50):.1f},{'Yes' if wind > 5 else 'No'}")
    _file("t.csv", "\n".join(lines) + "\n")(scratch)


def _huge_cell_csv(scratch):
    with open(os.path.join(scratch, "t.csv"), "w", encoding="utf-8") as handle:
        handle.write("a,b,y\n" + "".join(f"{i},x,{'pn'[i % 2]}\n" for i in range(50)))
        handle.write('1,"' + "z" * 50_000_000 + '",p\n')  # 50 MB: NumPy once asked for 78 GiB


def _held_lock(folder):
    """A live process holding the lock of ``folder`` (``rundir.folder_lock``, as a running ``tune`` holds its
    search folder's and a running ``train`` its run folder's) while the case runs."""

    def plant(scratch):
        os.makedirs(os.path.dirname(os.path.join(scratch, folder)), exist_ok=True)
        ready = os.path.join(scratch, ".holder-ready")
        holder = subprocess.Popen(
            [
                sys.executable,
                "-c",
                # the lock protocol of rundir.folder_lock, written out: another tfcourse process at work there
                "import fcntl, os, sys, time\n"
                "parent, name = os.path.split(os.path.abspath(sys.argv[1]))\n"
                "handle = open(os.path.join(parent, '.' + name + '.lock'), 'w')\n"
                "fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)\n"
                "handle.write(f'{os.getpid()}\\n'); handle.flush()\n"
                "open(sys.argv[2], 'w').close(); time.sleep(120)",
                os.path.join(scratch, folder),
                ready,
            ],
        )
        HOLDERS.append(holder)
        while not os.path.exists(ready):
            if holder.poll() is not None:
                raise RuntimeError("the lock holder could not start")
            time.sleep(0.01)
        os.remove(ready)

    return plant


def _empty_oracle(scratch):
    shutil.copytree(SHARED["search"], os.path.join(scratch, "tuning", "s"))
    open(os.path.join(scratch, "tuning", "s", "oracle.json"), "w").close()


def _checkpoint_call(argv):
    from tfcourse.numpy_nn import NumpyMLP

    NumpyMLP.load(argv[0])


def _extra_column_call(argv):
    """A table run's model.keras fed a row with a column it does not know: the answer must equal the row's
    own (before: the extra value was read as another column)."""
    import tensorflow as tf

    from tfcourse.jobs import table_run

    model = table_run.load_run_model(argv[0])
    row = {"precipitation": 0.0, "temp_max": 12.2, "temp_min": 5.0, "weather": "sun", "wind": 3.1}
    feed = {key: tf.constant([[value]]) for key, value in row.items()}
    alone = model(feed).numpy()
    extra = model(dict(feed, weather_code=tf.constant([[99.0]]))).numpy()
    if not np.allclose(alone, extra):
        raise SystemExit(f"the extra column changed the answer: {alone.ravel()} -> {extra.ravel()}")
    print(f"an extra column is left alone: the same logit {alone.ravel()[0]:.4f}", file=sys.stderr)


HOLDERS: List[subprocess.Popen] = []
TRAIN = ["--dataset", "digits", "--model", "mlp", "--epochs", "1", "--verbose", "0", "--no-report"]
TUNE = [
    "--dataset",
    "digits",
    "--model",
    "mlp",
    "--tuner",
    "random",
    "--epochs",
    "1",
    "--verbose",
    "0",
    "--max-trials",
    "1",
]

CASES = [
    # train: flags
    Case("unknown model", "train", ["--model", "nope"], r"invalid choice: 'nope'"),
    Case("unknown dataset", "train", ["--dataset", "nosuch"], r"Unknown dataset 'nosuch'"),
    Case("missing dataset folder", "train", ["--dataset", "./no/such"], r"does not exist"),
    Case(
        "a CSV file as dataset",
        "train",
        ["--dataset", "table.csv"],
        r"is a file.*For a table, pass --dataset csv:table.csv --target COLUMN",
        _file("table.csv", "a,b\n1,2\n"),
    ),
    Case("tfds typo", "train", ["--dataset", "tfds:mnistt", "--no-download"], r"did you mean tfds:mnist"),
    Case("zero epochs", "train", TRAIN + ["--epochs", "0"], r"--epochs: must be a positive integer"),
    Case("epochs not a number", "train", TRAIN + ["--epochs", "x"], r"--epochs: must be a positive integer"),
    Case("zero batch size", "train", TRAIN + ["--batch-size", "0"], r"--batch-size: must be a positive integer"),
    Case("validation fraction above 1", "train", TRAIN + ["--val-fraction", "1.5"], r"must be a fraction"),
    Case("validation fraction NaN", "train", TRAIN + ["--val-fraction", "nan"], r"must be a finite number"),
    Case("official split without a test set", "train", TRAIN + ["--split", "official"], r"no official test set"),
    Case("empty class range", "train", TRAIN + ["--classes", "5-2"], r"the range 5-2 is empty"),
    Case("one class", "train", TRAIN + ["--classes", "0"], r"at least two different labels"),
    Case("class not in the data", "train", TRAIN + ["--classes", "0,99"], r"\[99\] are not labels"),
    Case("classes not numbers", "train", TRAIN + ["--classes", "a-b"], r"expected labels like 0-4"),
    Case("train limit below the classes", "train", TRAIN + ["--train-limit", "5"], r"below the number of classes"),
    Case("train limit above the data", "train", TRAIN + ["--train-limit", "100000"], r"more than the 1437"),
    Case("image size on digits", "train", TRAIN + ["--image-size", "16", "16"], r"image folder only"),
    Case("unknown hyperparameter", "train", TRAIN + ["--hp", "nosuch=1"], r"has no hyperparameter 'nosuch'"),
    Case("hyperparameter off its step", "train", TRAIN + ["--model", "cnn", "--hp", "filters=33"], r"step grid"),
    Case("hyperparameter out of range", "train", TRAIN + ["--model", "cnn", "--hp", "dropout=2"], r"must be in \["),
    Case(
        "too deep for 8x8",
        "train",
        TRAIN + ["--model", "cnn", "--hp", "conv_blocks=5"],
        r"conv_blocks=5 for model 'cnn' must be in \[1, 3\] \(the space declared for 8x8x1 inputs\)",
    ),
    Case("negative patience", "train", TRAIN + ["--patience", "-1"], r"patience must be 0 or more"),
    Case("infinite fine-tune scale", "train", TRAIN + ["--fine-tune-lr-scale", "inf"], r"finite number"),
    Case("zero fine-tune scale", "train", TRAIN + ["--fine-tune-lr-scale", "0"], r"positive number"),
    Case(
        "fine-tune without freezing",
        "train",
        ["--dataset", "digits", "--base", "run", "--fine-tune-at", "1"],
        r"--fine-tune-at unfreezes part of a frozen base; add --freeze-base",
        _run(),
    ),
    Case("unknown base", "train", ["--dataset", "digits", "--base", "nosuch"], r"neither a keras.applications model"),
    Case("--model with --base", "train", TRAIN + ["--base", "nosuch"], r"--base replaces --model"),
    Case("run folder exists", "train", TRAIN + ["--output-dir", "run"], r"exists already", _run()),
    Case("output folder under a file", "train", TRAIN + ["--output-dir", "f/run"], r"is a file", _file("f")),
    Case(
        "export root is a file",
        "train",
        TRAIN + ["--export", "--export-dir", "f"],
        r"--export-dir f: .* is a file",
        _file("f"),
    ),
    Case("unknown schedule", "train", TRAIN + ["--lr-schedule", "nope"], r"invalid choice"),
    # train: data
    Case(
        "255 as a stray IDX label",
        "train",
        TRAIN + ["--dataset", "idx"],
        r"labels above that gap: 255",
        _idx([255] * 5),
    ),
    Case("one stray IDX label", "train", TRAIN + ["--dataset", "idx"], r"labels 10 \(1 example\)", _idx([10])),
    Case("image folder with one class", "train", TRAIN + ["--dataset", "images"], r"found 1 class", _images(("a",))),
    Case(
        "empty class folder",
        "train",
        TRAIN + ["--dataset", "images"],
        r"have no examples",
        _both(_images(), lambda s: os.makedirs(os.path.join(s, "images", "c"))),
    ),
    Case("decompression bomb", "train", TRAIN + ["--dataset", "images"], r"decompression bomb", _images(extra=_bomb)),
    Case(
        "corrupt PNG",
        "train",
        TRAIN + ["--dataset", "images"],
        r"Cannot read image .*broken.png",
        _images(extra=_corrupt_png),
    ),
    Case(
        "images too small for a CNN",
        "train",
        TRAIN + ["--dataset", "images", "--model", "cnn", "--image-size", "1", "1"],
        r"at least 2x2",
        _images(),
    ),
    # tune
    Case("project name ..", "tune", TUNE + ["--project-name", "..", "--overwrite"], r"one plain folder name"),
    Case(
        "absolute project name",
        "tune",
        TUNE + ["--project-name", "{scratch}/victim", "--overwrite"],
        r"one plain folder name",
        _file("victim"),
    ),
    Case(
        "overwrite a foreign folder",
        "tune",
        TUNE + ["--project-name", "photos", "--overwrite"],
        r"no tfcourse search.json",
        _foreign_project,
    ),
    Case("space off the step", "tune", ["--model", "cnn", "--space", "filters=33", "--show-space"], r"step grid"),
    Case(
        "unknown space entry",
        "tune",
        ["--model", "cnn", "--space", "nosuch=1", "--show-space"],
        r"has no hyperparameter 'nosuch'",
    ),
    Case(
        "space range not numbers", "tune", ["--model", "cnn", "--space", "learning_rate=1..x"], r"must be two numbers"
    ),
    Case(
        "space file not JSON",
        "tune",
        ["--model", "cnn", "--space", "s.json", "--show-space"],
        r"not valid JSON",
        _file("s.json", "{nope"),
    ),
    Case("summary of a missing folder", "tune", ["--summary", "no/such"], r"holds no KerasTuner trials"),
    Case(
        "resume over a corrupt trial.json",
        "tune",
        TUNE + ["--project-name", "s", "--seed", "3"],
        r"trial_0+/trial.json: .*not valid JSON.*rm -r",
        _search_with_corrupt_trial,
    ),
    Case("worker without an oracle", "tune", TUNE + ["--role", "worker"], r"needs --oracle"),
    Case("negative time budget", "tune", TUNE + ["--max-minutes", "-1"], r"positive number"),
    # explain, report, export, cost
    Case("explain a missing run", "explain", ["no/such"], r"is not a folder"),
    Case("Grad-CAM on an MLP", "explain", ["run", "--method", "gradcam"], r"no convolution|saliency", _run()),
    Case(
        "units not numbers",
        "explain",
        ["run", "--method", "activation_max", "--units", "0,x"],
        r"'x' is not a filter or class index",
        _run(),
    ),
    Case(
        "explain output under a file",
        "explain",
        ["run", "--method", "saliency", "--output-dir", "f/out"],
        r"is a file",
        _both(_run(), _file("f")),
    ),
    Case(
        "config.json is {}",
        "explain",
        ["run", "--method", "saliency"],
        r"config.json: the run configuration lacks",
        _run(_overwrite("config.json", "{}")),
    ),
    Case(
        "config.json not JSON",
        "explain",
        ["run", "--method", "saliency"],
        r"config.json: .*not valid JSON",
        _run(_overwrite("config.json", "{nope")),
    ),
    Case(
        "zero-byte model.keras",
        "explain",
        ["run", "--method", "saliency"],
        r"model.keras is empty",
        _run(_overwrite("model.keras", "")),
    ),
    Case(
        "unknown layer",
        "explain",
        ["run", "--method", "saliency", "--method", "activation_max", "--layer", "nope"],
        r"nope",
        _run(),
    ),
    Case("report a missing run", "report", ["no/such"], r"is not a folder"),
    Case(
        "report output under a file",
        "report",
        ["run", "--output-dir", "f/out", "--no-explanations"],
        r"is a file",
        _both(_run(), _file("f")),
    ),
    Case("export a missing run", "export", ["no/such"], r"is not a folder"),
    Case("export root is a file", "export", ["run", "--export-dir", "f"], r"is a file", _both(_run(), _file("f"))),
    Case("export a zero-byte model", "export", ["run"], r"model.keras is empty", _run(_overwrite("model.keras", ""))),
    Case("cost of an unknown model", "cost", ["--model", "nope"], r"Unknown model 'nope'"),
    Case(
        "table: no such target",
        "train",
        ["--dataset", "csv:t.csv", "--target", "nope"],
        r"no column named 'nope'",
        _file("t.csv", "a,b\n1,x\n2,y\n"),
    ),
    Case(
        "table: one class",
        "train",
        ["--dataset", "csv:t.csv", "--target", "b"],
        r"one class only",
        _file("t.csv", "a,b\n1,x\n2,x\n"),
    ),
    Case(
        "table: ragged rows",
        "train",
        ["--dataset", "csv:t.csv", "--target", "b"],
        r"wrong number of fields",
        _file("t.csv", "a,b\n1,x\n2,y,3\n"),
    ),
    Case(
        "table: not UTF-8",
        "train",
        ["--dataset", "csv:t.csv", "--target", "b"],
        r"is not UTF-8",
        _bytes("t.csv", b"a,b\n1,caf\xe9\n2,y\n"),
    ),
    Case("table: empty CSV", "train", ["--dataset", "csv:t.csv", "--target", "b"], r"is empty", _file("t.csv", "")),
    Case("table: image flag", "train", ["--dataset", "seattle_weather", "--augment"], r"does not apply to a table"),
    Case(
        "table: image model", "train", ["--dataset", "seattle_weather", "--model", "cnn"], r"does not apply to a table"
    ),
    Case("table: table flag for images", "train", ["--dataset", "digits", "--target", "y"], r"applies to a table"),
    Case(
        "table: export root is a file",
        "train",
        ["--dataset", "seattle_weather", "--export", "--export-dir", "f"],
        r"is a file",
        _file("f"),
    ),
    Case("table tune: image model", "tune", ["--dataset", "seattle_weather", "--model", "vgg"], r"does not apply"),
    Case(
        "table tune: no such target",
        "tune",
        ["--dataset", "csv:t.csv", "--target", "nope"],
        r"no column named 'nope'",
        _file("t.csv", "a,b\n1,x\n2,y\n"),
    ),
    Case("table EDA: image flag", "eda", ["--dataset", "seattle_weather", "--max-side", "8"], r"does not apply"),
    Case(
        "table EDA: one class",
        "eda",
        ["--dataset", "csv:t.csv", "--target", "b"],
        r"one class only",
        _file("t.csv", "a,b\n1,x\n2,x\n"),
    ),
    Case("EDA of an unknown dataset", "eda", ["--dataset", "nosuch"], r"Unknown dataset 'nosuch'"),
    Case("EDA of one class", "eda", ["--dataset", "digits", "--classes", "3"], r"at least two different labels"),
    Case("EDA near-duplicate threshold 0", "eda", ["--near-duplicate-rms", "0"], r"positive number"),
    Case("EDA into a file", "eda", ["--dataset", "digits", "--output-dir", "f/eda"], r"is a file", _file("f")),
    Case(
        "EDA over a folder of other files",
        "eda",
        ["--dataset", "digits", "--output-dir", "."],
        r"is not an EDA folder",
        _file("notes.txt"),
    ),
    # issue 39, round three: silent garbage
    Case(
        "predict with a model.keras of NaN weights",
        "predict",
        ["run", "seven.png"],
        r"model.keras holds [\d,]+ non-finite weights .*diverged",
        _both(_run(_nan_weights), _png("seven.png")),
    ),
    Case(
        "export a model.keras of NaN weights",
        "export",
        ["run", "--export-dir", "exports"],
        r"holds [\d,]+ non-finite weights",
        _run(_nan_weights),
    ),
    Case(
        "table: two stray cells in a numeric column",
        "train",
        ["--dataset", "csv:t.csv", "--target", "y"],
        r"column 'a' is numbers but for 2 of 400 cells \(line 18: '12;5', line 91: 'abc'\)",
        _numbers_csv({18: "12;5", 91: "abc"}),
    ),
    Case(
        "table: model.keras fed an extra column",
        "api",
        ["run"],
        r"an extra column is left alone",
        lambda scratch: shutil.copytree(SHARED["table_run"], os.path.join(scratch, "run")),
        code=0,
        call=_extra_column_call,
    ),
    Case(
        "tune: a second process on a search in progress",
        "tune",
        TUNE + ["--project-name", "s"],
        r"tuning/s is in use by another process \(PID \d+\); wait until it has finished",
        _held_lock(os.path.join("tuning", "s")),
    ),
    Case(
        "table: a numeric target of 500 values",
        "train",
        ["--dataset", "csv:t.csv", "--target", "y"],
        r"--target y holds numbers with 500 distinct values: .*regression",
        _file("t.csv", "a,y\n" + "".join(f"{i % 7},{i * 1.5}\n" for i in range(500))),
    ),
    # tracebacks where one line belongs
    Case(
        "table: columns named 'wind speed', 'temp(C)', 'speed km/h'",
        "train",
        ["--dataset", "csv:t.csv", "--target", "rain", "--epochs", "2", "--verbose", "0", "--output-dir", "out"],
        r"^(?!.*Error).*$",
        _awkward_names_csv,
        code=0,
        keep=True,
    ),
    Case(
        "table: a 50 MB cell",
        "train",
        ["--dataset", "csv:t.csv", "--target", "y"],
        r"column 'b' on line 52 holds a cell of 50,000,000 characters",
        _huge_cell_csv,
    ),
    Case(
        "predict: a decompression bomb among good images",
        "predict",
        ["run", "seven.png", "bomb.png"],
        r"skipped bomb.png: refused, a decompression bomb",
        _both(_run(), _png("seven.png"), _bomb),
        code=0,
    ),
    Case(
        "predict: only a decompression bomb",
        "predict",
        ["run", "bomb.png"],
        r"skipped bomb.png: refused, a decompression bomb.*none of the 1 file",
        _both(_run(), _bomb),
    ),
    Case(
        "predict --output on a read-only file system",
        "predict",
        ["run", "seven.png", "--output", "ro/p.csv"],
        r"--output ro: cannot write into \S*ro \(permission denied or read-only\)",
        _both(_run(), _png("seven.png")),
        mounts="mount -t tmpfs -o ro,size=64k tmpfs ro",
    ),
    Case(
        "train: a second run into the same --output-dir",
        "train",
        TRAIN + ["--output-dir", "run"],
        r"run is in use by another process \(PID \d+\); pass another --output-dir",
        _held_lock("run"),
    ),
    Case(
        "train: --output-dir on a full disk",
        "train",
        ["--dataset", "digits", "--model", "cnn", "--epochs", "1", "--verbose", "0", "--output-dir", "full/run"],
        r"error: cannot write (into )?full/run\S* \(No space left on device\): the disk is full",
        mounts="mount -t tmpfs -o size=96k tmpfs full",
    ),
    Case(
        "tune: a search folder on a full disk",
        "tune",
        TUNE + ["--directory", "full"],
        r"error: cannot write (into )?full\S* \(No space left on device\): the disk is full",
        mounts="mount -t tmpfs -o size=32k tmpfs full",
    ),
    # unclear answers
    Case(
        "a text file as a NumPy checkpoint",
        "api",
        ["4_relu_weights.npz"],
        r"4_relu_weights.npz: the weights file is text, not a NumPy .npz archive",
        _file("4_relu_weights.npz", "these are not weights\n"),
        call=_checkpoint_call,
    ),
    Case(
        "tune: resume with an empty oracle.json",
        "tune",
        TUNE + ["--project-name", "s", "--seed", "3"],
        r"oracle.json: the KerasTuner state file is empty.*trials' own files are intact and stay.*--summary",
        _empty_oracle,
    ),
]

SHARED = {}


def prepare_shared(root: str) -> None:
    """One trained digits run and one finished search, which the cases copy (never change)."""
    from tfcourse import train, tune

    SHARED["run"] = os.path.join(root, "run")
    with contextlib.redirect_stdout(io.StringIO()):
        if train.main(TRAIN + ["--output-dir", SHARED["run"]]) != 0:
            raise SystemExit("could not train the shared run")
        SHARED["search"] = os.path.join(root, "tuning", "s")
        if tune.main(TUNE + ["--directory", os.path.join(root, "tuning"), "--project-name", "s", "--seed", "3"]) != 0:
            raise SystemExit("could not run the shared search")
        SHARED["table_run"] = os.path.join(root, "table_run")
        table = ["--dataset", "seattle_weather", "--epochs", "2", "--verbose", "0", "--no-report"]
        if train.main(table + ["--output-dir", SHARED["table_run"]]) != 0:
            raise SystemExit("could not train the shared table run")


def _main_of(cli: str) -> Callable:
    import importlib

    module = importlib.import_module(f"tfcourse.{cli}")  # python -m tfcourse.X runs tfcourse/X.py
    return module.main


def _listing(folder: str) -> set:
    found = set()
    for root, dirs, files in os.walk(folder):
        for name in dirs + files:
            found.add(os.path.relpath(os.path.join(root, name), folder))
    return found


INSIDE = ".left-inside"  # what a namespaced case left on its own mounts, listed before they vanish


def _api_main(case: Case) -> Callable:
    """``case.call`` as a CLI would behave: a ``ValueError`` is a refusal (its message, status 2)."""

    def main(argv):
        try:
            return case.call(argv) or 0
        except ValueError as error:
            print(f"python API: error: {error}", file=sys.stderr)
            return 2

    return main


def _mount_points(case: Case) -> List[str]:
    """The folders a case's ``mounts`` mount on: the last word of each ``mount ... tmpfs POINT``."""
    return re.findall(r"\btmpfs (\S+)\s*(?:&&|;|$)", case.mounts or "")


def _namespaced(case: Case, argv: List[str]) -> List[str]:
    """The command line of a ``mounts`` case: its CLI in a new user and mount namespace, after the mounts;
    then what it left under the mount points is listed into ``INSIDE``."""
    points = " ".join(_mount_points(case))
    script = f'{case.mounts} || exit 99; "$@"; status=$?; find {points} -mindepth 1 > {INSIDE}; exit $status'
    return ["unshare", "-rm", "sh", "-c", script, "sh", sys.executable, "-m", f"tfcourse.{case.cli}", *argv]


def run_case(case: Case, as_subprocess: bool = False) -> dict:
    scratch = tempfile.mkdtemp(prefix="bad-input-")
    try:
        case.plant(scratch)
        for point in _mount_points(case):
            os.makedirs(os.path.join(scratch, point))  # the mount points are the case's own, not left behind
        before = _listing(scratch)
        argv = [arg.replace("{scratch}", scratch) for arg in case.argv]
        if (as_subprocess or case.mounts) and case.cli != "api":
            done = subprocess.run(
                _namespaced(case, argv) if case.mounts else [sys.executable, "-m", f"tfcourse.{case.cli}", *argv],
                cwd=scratch,
                capture_output=True,
                text=True,
                env=dict(os.environ, PYTHONPATH=ROOT),
            )
            code, err = done.returncode, done.stderr
            if code == 99:
                err += f"\nthe mounts failed (unshare -rm is needed for this case): {case.mounts}"
        else:
            err_buffer, out_buffer = io.StringIO(), io.StringIO()
            cwd = os.getcwd()
            os.chdir(scratch)
            try:
                with contextlib.redirect_stderr(err_buffer), contextlib.redirect_stdout(out_buffer):
                    try:
                        code = (_api_main(case) if case.cli == "api" else _main_of(case.cli))(argv)
                    except SystemExit as stop:
                        code = stop.code if isinstance(stop.code, int) else 1
                    except Exception:  # noqa: BLE001  (a traceback escaping main is exactly what is measured)
                        traceback.print_exc()
                        code = 1
            finally:
                os.chdir(cwd)
            err = err_buffer.getvalue()
        left = sorted(path for path in _listing(scratch) - before if not path.startswith(("__pycache__", INSIDE)))
        if os.path.isfile(os.path.join(scratch, INSIDE)):
            with open(os.path.join(scratch, INSIDE), encoding="utf-8") as handle:
                left += sorted(line.strip() for line in handle if line.strip())
        lines = [
            line for line in err.splitlines() if line.strip() and not line.startswith(("WARNING", "I0000", "W0000"))
        ]
        first = next((line for line in lines if "error" in line.lower()), lines[-1] if lines else "")
        traceback_seen = "Traceback (most recent call last)" in err
        matched = re.search(case.expect, err, re.DOTALL) is not None
        ok = code == case.code and not traceback_seen and matched and (case.keep or not left)
        return {
            "case": case,
            "code": code,
            "first": first.strip(),
            "traceback": traceback_seen,
            "left": left,
            "matched": matched,
            "ok": ok,
        }
    finally:
        while HOLDERS:
            holder = HOLDERS.pop()
            holder.kill()
            holder.wait()
        shutil.rmtree(scratch, ignore_errors=True)


def _cell(text: str, limit: int = 150) -> str:
    text = text.replace("|", "\\|").replace("`", "'")
    return text if len(text) <= limit else text[: limit - 3] + "..."


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--subprocess", action="store_true", help="run each case as python -m tfcourse.<cli>")
    parser.add_argument("--only", default=None, help="run only the cases whose name contains this")
    parser.add_argument("--out", default=os.path.join(ROOT, "benchmarks", "results", "bad_inputs.md"))
    args = parser.parse_args(argv)
    cases = [case for case in CASES if args.only is None or args.only in case.name]
    with tempfile.TemporaryDirectory(prefix="bad-inputs-shared-") as shared:
        prepare_shared(shared)
        results = []
        for number, case in enumerate(cases, 1):
            result = run_case(case, args.subprocess)
            results.append(result)
            print(
                f"[{number}/{len(cases)}] {'ok  ' if result['ok'] else 'FAIL'} {case.cli} {case.name}: "
                f"exit {result['code']}, {result['first'][:120]}",
                file=sys.stderr,
                flush=True,
            )
    passed = sum(result["ok"] for result in results)
    lines = [
        f"{len(results)} bad inputs and faults through the CLIs ({'one process each' if args.subprocess else 'in-process'}"
        f"; the full and read-only file systems as a process in its own user and mount namespace, tmpfs mounted "
        f"for real; `api`: the Python API): {passed} passed, {len(results) - passed} failed. A case passes when "
        "it exits with the expected status (2: refused; 0: a valid input answered), no traceback escapes, the "
        "message says what it should, and nothing is left behind in its scratch folder (nor on its mounts).",
        "",
        "| # | CLI | bad input | arguments | exit | traceback | left behind | first line of the message | pass |",
        "|---:|---|---|---|---:|---|---|---|---|",
    ]
    for number, result in enumerate(results, 1):
        case = result["case"]
        lines.append(
            f"| {number} | {case.cli} | {case.name} | `{_cell(' '.join(case.argv), 80)}` | {result['code']} | "
            f"{'yes' if result['traceback'] else 'no'} | {_cell(', '.join(result['left'])) or 'nothing'} | "
            f"{_cell(result['first'])} | {'yes' if result['ok'] else '**no**'} |"
        )
    publish("\n".join(lines) + "\n", args.out)
    return 0 if passed == len(results) else 1


if __name__ == "__main__":
    sys.exit(main())
