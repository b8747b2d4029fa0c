"""How benchmarks train: the real ``python -m tfcourse.train``, one process per run, logged beside the run.

A run folder is reused only when it was trained with exactly the configuration asked for now
(every ``tfcourse.train`` setting, and the same TensorFlow, Keras and tfcourse versions); any
difference stops the benchmark with the differences listed, so a table never publishes a run
of other settings (a digits run under "fashion_mnist, official").
"""

import json
import os
import subprocess
import sys
from typing import List


def train_run(argv, run_dir: str) -> None:
    """Runs ``python -m tfcourse.train ARGV --output-dir RUN_DIR --verbose 2``, its output in ``RUN_DIR.log``;
    exits naming the log if the run fails."""
    command = [sys.executable, "-m", "tfcourse.train", *argv, "--output-dir", run_dir, "--verbose", "2"]
    print("$ " + " ".join(command), flush=True)
    log_path = run_dir.rstrip("/") + ".log"
    with open(log_path, "w", encoding="utf-8") as log:
        result = subprocess.run(command, stdout=log, stderr=subprocess.STDOUT)
    if result.returncode != 0:
        raise SystemExit(f"training into {run_dir} failed (exit {result.returncode}); see {log_path}")


def read_run_file(run_dir: str, name: str):
    """A JSON file of a finished run folder (``metrics.json``, ``config.json``, ``history.json``)."""
    with open(os.path.join(run_dir, name), encoding="utf-8") as handle:
        return json.load(handle)


def requested_config(argv) -> dict:
    """The ``config.json`` "config" entry a ``tfcourse.train ARGV`` run would record (as JSON reads it back)."""
    from tfcourse import config as config_lib
    from tfcourse import train

    args = train.build_parser().parse_args(list(argv) + ["--output-dir", "unused"])
    return json.loads(json.dumps(config_lib.to_dict(train.config_from_args(args))))


def current_versions() -> dict:
    import keras
    import tensorflow as tf

    import tfcourse

    return {"tensorflow": tf.__version__, "keras": keras.__version__, "tfcourse": tfcourse.__version__}


def reuse_differences(run_dir: str, argv) -> List[str]:
    """What differs between the run in ``run_dir`` and a run of ``argv`` now (empty: it may be reused)."""
    from tfcourse import config as config_lib

    record = read_run_file(run_dir, "config.json")
    recorded, wanted = record.get("config", {}), requested_config(argv)
    # a setting added after the run was trained, asked at its default, is what that run did
    defaults = json.loads(json.dumps(config_lib.to_dict(config_lib.TrainConfig())))
    differences = []
    for key in sorted(set(recorded) | set(wanted)):
        if key == "output_dir" or (key not in recorded and wanted.get(key) == defaults.get(key)):
            continue
        old, new = recorded.get(key), wanted.get(key)
        if isinstance(old, dict) and isinstance(new, dict):
            differences += [
                f"{key}.{sub}: {old.get(sub)!r} there, {new.get(sub)!r} asked"
                for sub in sorted(set(old) | set(new))
                if old.get(sub) != new.get(sub)
            ]
        elif old != new:
            differences.append(f"{key}: {old!r} there, {new!r} asked")
    versions = record.get("versions", {})
    differences += [
        f"{name} {versions.get(name)} there, {version} now"
        for name, version in current_versions().items()
        if versions.get(name) != version
    ]
    return differences


def train_or_reuse(argv, run_dir: str, label: str) -> bool:
    """``train_run`` unless ``run_dir`` already holds a finished run of exactly this configuration,
    which is reused. Returns whether it was reused.

    Raises:
        SystemExit: If ``run_dir`` holds a run of other settings or library versions (listed);
            delete or move that folder to retrain.
    """
    if os.path.isfile(os.path.join(run_dir, "metrics.json")):
        differences = reuse_differences(run_dir, argv)
        if differences:
            raise SystemExit(
                f"{label}: {run_dir} holds a run of other settings ({'; '.join(differences)}); "
                "delete or move it to retrain, or point --results elsewhere."
            )
        print(f"{label}: reusing {run_dir} (same configuration and versions)", flush=True)
        return True
    train_run(argv, run_dir)
    return False


# The image runs the explanation and novelty benchmarks study: the README's main job and its peers, all
# with the quick recipe (4 epochs, same data, seed 42), no report (the scripts measure what they need).
IMAGE_RUNS = {
    "vgg": "--model vgg --recipe quick --split official --no-report",  # the README's main job (head gmp)
    "vgg_gap": "--model vgg --recipe quick --split official --no-report --hp head=gap",
    "cnn": "--model cnn --recipe quick --split official --no-report",
    "cnn_gap": "--model cnn --recipe quick --split official --no-report --hp head=gap",
    "resnet_small": "--model resnet_small --recipe quick --split official --no-report",
    "cnn_attention": "--model cnn_attention --recipe quick --split official --no-report",
}
IMAGE_RUNS_FOLDER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results", "image_runs")


def image_run_command(name: str) -> str:
    """How ``IMAGE_RUNS[name]`` is trained, as a results file names it."""
    return f"`{name}`: `python -m tfcourse.train {IMAGE_RUNS[name]}`"


def image_run(name: str, folder: str = IMAGE_RUNS_FOLDER) -> str:
    """The run folder of ``IMAGE_RUNS[name]`` in ``folder``: trained now, or reused when it holds exactly
    that configuration (``train_or_reuse``)."""
    run_dir = os.path.join(folder, name)
    os.makedirs(folder, exist_ok=True)
    train_or_reuse(IMAGE_RUNS[name].split(), run_dir, name)
    return run_dir
