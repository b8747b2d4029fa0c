"""The course's by-hand experiment: ``NumpyMLP`` and scikit-learn's ``MLPClassifier`` trained alike
(same data, split, architecture, activation, batch size, epochs, plain SGD), one pair per activation;
checkpoints every ``checkpoint_every`` epochs scored on the test split; one figure per activation,
a table of every test accuracy naming the best model, and a report page.

The experiment folder::

    experiment.json              the configuration and library versions (written first)
    <activation>/                one per activation, renamed from a hidden partial folder when complete
        numpy/<epoch>_<activation>_weights.npz, ..._biases.npz
        sklearn/<epoch>_<activation>_weights.npz, ..._biases.npz   (MLPClassifier's coefs_/intercepts_)
        result.json              histories, test accuracies, timings
    curves_<activation>.png      loss and accuracy of both implementations
    results.json                 every number of the tables
    report.html, report.md       the page

A finished activation is never trained again: a second call with the same settings resumes
(a kill loses only the activation in progress), other settings are refused unless ``overwrite``.
No TensorFlow is involved.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import statistics
import time
import warnings
from typing import Any, Dict, List, Optional, Tuple

import numpy as np

import tfcourse
from tfcourse import data, rundir
from tfcourse.config import NUMPY_ACTIVATIONS, NUMPY_INITS, SKLEARN_INITS, NumpyExperimentConfig, to_dict
from tfcourse.numpy_nn import NumpyMLP, SymmetryWarning, TrainingDiverged, checkpoints, softmax_cross_entropy
from tfcourse.pages import blocks, plots

EXPERIMENT_FILE = "experiment.json"
RESULT_FILE = "result.json"
RESULTS_FILE = "results.json"
REPORT_HTML, REPORT_MD = "report.html", "report.md"
SKLEARN_ACTIVATION = {"relu": "relu", "sigmoid": "logistic", "tanh": "tanh", "linear": "identity"}
IMPLEMENTATIONS = {"numpy": "NumpyMLP", "sklearn": "MLPClassifier"}


@dataclasses.dataclass
class Arrays:
    """The splits as float32 feature rows in [0, 1] (or standardised), and what they came from."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    class_names: Tuple[str, ...]
    source: str


def check_config(config: NumpyExperimentConfig) -> None:
    """Refuses settings that cannot run, before any data is read or folder made."""
    if not config.activations:
        raise ValueError(f"--activations is empty; name one or more of {', '.join(NUMPY_ACTIVATIONS)}.")
    unknown = [a for a in config.activations if a not in NUMPY_ACTIVATIONS]
    if unknown:
        raise ValueError(f"Unknown activation {', '.join(unknown)}; use {', '.join(NUMPY_ACTIVATIONS)}.")
    if len(set(config.activations)) != len(config.activations):
        raise ValueError(f"--activations names one twice: {','.join(config.activations)}.")
    if config.weight_init not in NUMPY_INITS:
        raise ValueError(f"Unknown --weight-init {config.weight_init!r}; use one of {', '.join(NUMPY_INITS)}.")
    if not config.hidden or any(width < 1 for width in config.hidden):
        raise ValueError(f"--hidden must list one or more positive widths, e.g. 256,128,64; got {config.hidden}.")
    if config.checkpoint_every > config.epochs:
        raise ValueError(
            f"--checkpoint-every {config.checkpoint_every} is more than --epochs {config.epochs}: no checkpoint "
            "would be written or tested; give at most the number of epochs."
        )
    if config.sklearn_init not in SKLEARN_INITS:
        raise ValueError(f"Unknown --sklearn-init {config.sklearn_init!r}; use one of {', '.join(SKLEARN_INITS)}.")
    if config.sklearn_init == "numpy" and (config.momentum or config.batch_norm):
        raise ValueError(
            "--sklearn-init numpy copies NumpyMLP's initial weights into MLPClassifier, which holds for plain SGD "
            "without batch norm only; leave out --momentum/--batch-norm or use --sklearn-init own."
        )
    if not 0 <= config.momentum < 1:
        raise ValueError(f"--momentum must be in [0, 1); got {config.momentum}.")


def load_arrays(config: NumpyExperimentConfig, download: bool = True) -> Arrays:
    """The data layer's splits (``data.load_splits``: the same seeded 80/10/10 as ``tfcourse.train``),
    flattened to rows and scaled as ``config.data.normalization`` says."""
    dataset, splits = data.load_splits(config.data, config.seed, download=download)
    x, y = dataset.pooled()
    norm = data.Normalization.fit(config.data.normalization, x[splits.train])
    channels = x.shape[-1]
    mean = np.asarray(norm.mean, np.float32).reshape((1,) * 3 + (channels,))
    std = np.asarray(norm.std, np.float32).reshape((1,) * 3 + (channels,))

    def rows(indices):
        scaled = (x[indices].astype(np.float32) / 255.0 - mean) / std
        return np.ascontiguousarray(scaled.reshape(len(indices), -1)), y[indices].astype(np.int64)

    return Arrays(*rows(splits.train), *rows(splits.val), *rows(splits.test), dataset.class_names, dataset.source)


def default_output_dir(config: NumpyExperimentConfig) -> str:
    return os.path.join("runs", f"numpy_mlp-{rundir.safe_name(config.data.dataset)}")


def _versions() -> Dict[str, str]:
    import sklearn

    return {"tfcourse": tfcourse.__version__, "numpy": np.__version__, "scikit-learn": sklearn.__version__}


def _claim_folder(out: str, record: Dict[str, Any], overwrite: bool) -> None:
    """Makes ``out`` or checks that it holds this very experiment (to resume); refuses anything else."""
    rundir.check_writable_folder(os.path.dirname(os.path.abspath(out)), "--output-dir")
    if os.path.isfile(out):
        raise ValueError(f"--output-dir {out} is a file; pass a folder.")
    if os.path.isdir(out) and os.listdir(out):
        existing = rundir.read_json(
            os.path.join(out, EXPERIMENT_FILE),
            "experiment record",
            fix="It is not a tfcourse.numpy_mlp experiment folder: pass another --output-dir.",
            missing=None,
        )
        if existing is None:
            raise ValueError(
                f"--output-dir {out} is not empty and holds no {EXPERIMENT_FILE}: it is not a numpy_mlp experiment "
                "folder, so it is left alone. Pass another --output-dir."
            )
        if overwrite:
            shutil.rmtree(out)
        elif existing != record:  # other settings, or other library versions: not one experiment any more
            old = {**existing.get("config", {}), **existing.get("versions", {})}
            new = {**record["config"], **record["versions"]}
            changed = sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k))
            raise ValueError(
                f"--output-dir {out} holds an experiment with other settings (differs in: {', '.join(changed)}). "
                "Pass --overwrite to replace it, or another --output-dir."
            )
    os.makedirs(out, exist_ok=True)
    rundir.sweep_stale_partials(out)
    rundir.write_json(os.path.join(out, EXPERIMENT_FILE), record)


def _median(values: List[float]) -> Optional[float]:
    return statistics.median(values) if values else None


def numpy_model(config: NumpyExperimentConfig, activation: str, arrays: Arrays, folder: Optional[str]) -> NumpyMLP:
    """The experiment's NumpyMLP for one activation (unfitted)."""
    sizes = (arrays.x_train.shape[1], *config.hidden, len(arrays.class_names))
    return NumpyMLP(
        n_layers=len(sizes),
        layer_sizes=sizes,
        activation=activation,
        learning_rate=config.learning_rate,
        weight_init=config.weight_init,
        batch_size=config.batch_size,
        num_epochs=config.epochs,
        seed=config.seed,
        momentum=config.momentum,
        batch_norm=config.batch_norm,
        checkpoint_every=config.checkpoint_every,
        checkpoint_dir=folder,
    )


def train_numpy(config: NumpyExperimentConfig, activation: str, arrays: Arrays, folder: str, verbose: int) -> Dict:
    """NumpyMLP for one activation; its checkpoints reloaded from disk and scored on the test split."""
    model = numpy_model(config, activation, arrays, folder).set_params(verbose=verbose)
    diverged = None
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", SymmetryWarning)
        try:
            model.fit(arrays.x_train, arrays.y_train, arrays.x_val, arrays.y_val)
        except TrainingDiverged as error:
            diverged = str(error)
    tests = {}
    for epoch, (weights, _) in sorted(model.checkpoints_.items()):
        restored = NumpyMLP.load(weights)
        tests[epoch] = restored.score(arrays.x_test, arrays.y_test)
    return {
        "history": model.history_,
        "test_accuracy": tests,
        "checkpoints": {e: [os.path.basename(p) for p in paths] for e, paths in model.checkpoints_.items()},
        "seconds_per_epoch": _median(model.history_["seconds"]),
        "diverged": diverged,
        "distinct_units": model.distinct_units() if diverged is None else None,  # a diverged model keeps no weights
        "layer_widths": list(config.hidden),
        "symmetry_warning": next((str(w.message) for w in caught if issubclass(w.category, SymmetryWarning)), None),
    }


def sklearn_model(config: NumpyExperimentConfig, activation: str, arrays: Arrays):
    """The experiment's MLPClassifier for one activation: the same architecture, activation, batch size and
    plain SGD; with ``sklearn_init="numpy"`` already holding NumpyMLP's initial weights."""
    from sklearn.neural_network import MLPClassifier

    model = MLPClassifier(
        hidden_layer_sizes=config.hidden,
        activation=SKLEARN_ACTIVATION[activation],
        solver="sgd",
        learning_rate="constant",
        learning_rate_init=config.sklearn_learning_rate or config.learning_rate,
        momentum=config.momentum,
        nesterovs_momentum=False,
        alpha=0.0,
        batch_size=config.batch_size,
        shuffle=True,
        # A RandomState, not the seed: MLPClassifier makes a new generator from an integer random_state on
        # every partial_fit call, so each epoch would get the same shuffle. An instance is kept and goes on.
        random_state=np.random.RandomState(config.seed),
    )
    if config.sklearn_init == "numpy":
        # One step on one example makes MLPClassifier build its layers, then its public coefs_ and
        # intercepts_ are overwritten with NumpyMLP's initial weights (plain SGD keeps no other state).
        start = numpy_model(config, activation, arrays, None).initialize()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "batch_size larger than sample size"
            model.partial_fit(arrays.x_train[:1], arrays.y_train[:1], classes=np.arange(len(arrays.class_names)))
        for theirs, ours in zip(model.coefs_ + model.intercepts_, start.coefs_ + start.intercepts_):
            theirs[...] = ours
    return model


def train_sklearn(config: NumpyExperimentConfig, activation: str, arrays: Arrays, folder: str, verbose: int) -> Dict:
    """``sklearn_model`` trained one ``partial_fit`` (one shuffled epoch) at a time; its weights saved in the
    same checkpoint format every ``checkpoint_every`` epochs and scored on the test split."""
    from sklearn.exceptions import ConvergenceWarning

    classes = np.arange(len(arrays.class_names))
    model = sklearn_model(config, activation, arrays)
    history = {"loss": [], "accuracy": [], "val_loss": [], "val_accuracy": [], "seconds": []}
    tests, saved, diverged = {}, {}, None
    os.makedirs(folder, exist_ok=True)
    start = time.perf_counter()
    for epoch in range(1, config.epochs + 1):
        began = time.perf_counter()
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ConvergenceWarning)
                model.partial_fit(arrays.x_train, arrays.y_train, classes=classes)
        except ValueError as error:  # "Solver produced non-finite parameter weights"
            diverged = f"Training diverged at epoch {epoch}: {error}"
            break
        history["seconds"].append(time.perf_counter() - began)
        history["loss"].append(float(model.loss_))
        history["accuracy"].append(float(model.score(arrays.x_train, arrays.y_train)))
        probabilities = model.predict_proba(arrays.x_val)
        history["val_loss"].append(softmax_cross_entropy(np.log(np.clip(probabilities, 1e-30, None)), arrays.y_val))
        history["val_accuracy"].append(float(np.mean(probabilities.argmax(axis=1) == arrays.y_val)))
        if not np.isfinite(model.loss_):
            diverged = f"Training diverged at epoch {epoch}: the loss is {model.loss_}."
            break
        if epoch % config.checkpoint_every == 0:
            saved[epoch] = checkpoints.save(folder, epoch, activation, model.coefs_, model.intercepts_)
            tests[epoch] = float(model.score(arrays.x_test, arrays.y_test))
        if verbose:
            print(
                f"  MLPClassifier {activation}: epoch {epoch}/{config.epochs} loss {model.loss_:.4f} "
                f"val_acc {history['val_accuracy'][-1]:.4f} {history['seconds'][-1]:.2f} s/epoch, "
                f"{(time.perf_counter() - start) / epoch * (config.epochs - epoch):.0f} s left",
                flush=True,
            )
    return {
        "history": history,
        "test_accuracy": tests,
        "checkpoints": {e: [os.path.basename(p) for p in paths] for e, paths in saved.items()},
        "seconds_per_epoch": _median(history["seconds"]),
        "diverged": diverged,
        "learning_rate": model.learning_rate_init,
    }


def _run_activation(config, activation, arrays, out, verbose) -> Tuple[Dict, bool]:
    """Trains one activation's pair in a hidden partial folder and renames it when complete; returns
    its result and whether it was finished earlier (kept, not trained again)."""
    final = os.path.join(out, activation)
    done = rundir.read_json(os.path.join(final, RESULT_FILE), "activation result", missing=None)
    if done is not None:
        if verbose:
            print(f"{activation}: finished earlier, kept ({os.path.join(final, RESULT_FILE)})", flush=True)
        return done, True
    if os.path.isdir(final):  # renamed only with result.json inside, so this is foreign: leave it to the user
        raise ValueError(f"{final} exists without {RESULT_FILE}; remove it (it is not a finished activation).")
    partial = rundir.claim_partial(final)  # another process on the same activation is refused here
    try:
        if verbose:
            print(f"{activation}: NumpyMLP, {config.epochs} epochs", flush=True)
        result = {
            "activation": activation,
            "numpy": train_numpy(config, activation, arrays, os.path.join(partial, "numpy"), verbose),
        }
        if config.sklearn:
            if verbose:
                print(f"{activation}: MLPClassifier, {config.epochs} epochs", flush=True)
            result["sklearn"] = train_sklearn(config, activation, arrays, os.path.join(partial, "sklearn"), verbose)
        rundir.write_json(os.path.join(partial, RESULT_FILE), result)
        final = rundir.publish_new_folder(partial, final)
    except BaseException:
        rundir.abandon_partial(partial)
        raise
    return rundir.read_json(os.path.join(final, RESULT_FILE), "activation result"), False


def result_rows(results: Dict[str, Dict]) -> List[Dict[str, Any]]:
    """One row per implementation, activation and checkpoint epoch: test and validation accuracy."""
    rows = []
    for activation, result in results.items():
        for key, name in IMPLEMENTATIONS.items():
            part = result.get(key)
            if part is None:
                continue
            val = part["history"].get("val_accuracy") or []
            for epoch, accuracy in sorted(part["test_accuracy"].items(), key=lambda item: int(item[0])):
                rows.append(
                    {
                        "implementation": name,
                        "activation": activation,
                        "epoch": int(epoch),
                        "test_accuracy": accuracy,
                        "val_accuracy": val[int(epoch) - 1] if int(epoch) <= len(val) else None,
                        "seconds_per_epoch": part["seconds_per_epoch"],
                    }
                )
            if part.get("diverged"):
                rows.append(
                    {"implementation": name, "activation": activation, "epoch": None, "test_accuracy": None,
                     "val_accuracy": None, "seconds_per_epoch": part["seconds_per_epoch"], "diverged": part["diverged"]}
                )  # fmt: skip
    return rows


def best_row(rows: List[Dict[str, Any]]) -> Optional[Dict[str, Any]]:
    """The checkpoint with the best validation accuracy (ties: the earlier row); its test accuracy is reported."""
    scored = [row for row in rows if row.get("val_accuracy") is not None]
    return max(scored, key=lambda row: row["val_accuracy"]) if scored else None


def _pct(value: Optional[float]) -> str:
    return "-" if value is None else f"{100 * value:.2f}%"


def _secs(value: Optional[float]) -> str:
    return "-" if value is None else f"{value:.3f}" if value < 0.1 else f"{value:.2f}"


def accuracy_table(rows: List[Dict[str, Any]], timing: bool = True) -> Tuple[List[str], List[List[Any]]]:
    """Header and rows of the table of every checkpoint; ``timing`` adds the median seconds per epoch."""
    header = ["implementation", "activation", "epoch", "test accuracy", "validation accuracy"]
    header += ["s/epoch (median)"] if timing else []
    body = []
    for row in rows:
        if row.get("diverged"):
            cells = [row["implementation"], row["activation"], "diverged", "-", "-"]
        else:
            cells = [row["implementation"], row["activation"], row["epoch"], _pct(row["test_accuracy"]),
                     _pct(row["val_accuracy"])]  # fmt: skip
        body.append(cells + ([_secs(row["seconds_per_epoch"])] if timing else []))
    return header, body


def markdown_table(header, body) -> str:
    """The results table: implementation and activation left, the numbers right."""
    return blocks.markdown_table(header, body, align="ll" + "r" * (len(header) - 2))


def summary(config, results: Dict[str, Dict], num_classes: int, timing: bool = True) -> Tuple[str, List[str]]:
    """The table (Markdown) and the findings of finished results; ``timing=False`` leaves out every
    seconds-per-epoch number (for a results file whose run shared the machine: speed has its own,
    interleaved benchmark)."""
    rows = result_rows(results)
    return markdown_table(*accuracy_table(rows, timing)), _findings(config, results, rows, num_classes, timing)


def _findings(config, results: Dict[str, Dict], rows, num_classes: int, timing: bool = True) -> List[str]:
    """Sentences generated from the numbers: the best model, NumPy vs scikit-learn (and their speed), a
    slow start, symmetry."""
    out = []
    best = best_row(rows)
    if best:
        out.append(
            f"Best model, chosen on the validation split: {best['implementation']} with {best['activation']} at epoch "
            f"{best['epoch']}: {_pct(best['test_accuracy'])} test accuracy ({_pct(best['val_accuracy'])} validation)."
        )
    last = config.epochs - config.epochs % config.checkpoint_every
    for activation, result in results.items():
        mine, theirs = result["numpy"], result.get("sklearn")
        if mine.get("diverged"):
            out.append(f"NumpyMLP {activation}: {mine['diverged']}")
        if theirs and theirs.get("diverged"):
            out.append(f"MLPClassifier {activation}: {theirs['diverged']}")
        a, b = mine["test_accuracy"].get(str(last)), theirs["test_accuracy"].get(str(last)) if theirs else None
        if a is not None and b is not None:
            out.append(
                f"{activation}, epoch {last}: NumpyMLP {_pct(a)} vs MLPClassifier {_pct(b)} test accuracy "
                f"({100 * (a - b):+.2f} points)"
                + (
                    f"; {mine['seconds_per_epoch']:.2f} vs {theirs['seconds_per_epoch']:.2f} s per epoch "
                    f"({theirs['seconds_per_epoch'] / mine['seconds_per_epoch']:.2f}x)."
                    if timing
                    else "."
                )
            )
        starts = {
            name: next(
                (i + 1 for i, v in enumerate(part["history"].get("val_accuracy") or []) if v > 2 / num_classes), None
            )
            for name, part in (("NumpyMLP", mine), ("MLPClassifier", theirs))
            if part
        }
        if starts.get("NumpyMLP") != 1:
            out.append(
                f"{activation}: the validation accuracy first passed twice chance ({2 / num_classes:.0%}): "
                + ", ".join(f"{n} {f'at epoch {starts[n]}' if starts[n] else 'never'}" for n in starts)
                + (
                    f"; the {config.weight_init} initialisation scales every weight by 0.01, so each layer's signal "
                    "and gradient start tiny: a plateau to climb off."
                    if config.weight_init in ("normal", "random")
                    else "."
                )
            )
        widths, distinct = mine["layer_widths"], mine["distinct_units"] or []
        stuck = [f"layer {i + 1}: {d} distinct of {w}" for i, (d, w) in enumerate(zip(distinct, widths)) if d < w]
        if mine.get("symmetry_warning") or stuck:
            out.append(
                f"NumpyMLP {activation} with weight_init={config.weight_init} did not break symmetry: after "
                f"{len(mine['history']['loss'])} epochs the hidden units are copies of each other ({'; '.join(stuck) or 'none'}). "
                "Equal weights get equal gradients, so every unit of a layer stays identical; use normal, he or glorot."
            )
    return out


def write_report(
    config, arrays: Arrays, results: Dict[str, Dict], out: str, versions: Dict[str, str]
) -> Dict[str, str]:
    """Figures, results.json and report.html/.md of the finished experiment."""
    rows = result_rows(results)
    header, body = accuracy_table(rows)
    figures = {}
    for activation, result in results.items():
        histories = {
            "NumpyMLP": dict(result["numpy"]["history"], train_accuracy_label="training (running over the epoch)")
        }
        if "sklearn" in result:
            histories["MLPClassifier"] = dict(
                result["sklearn"]["history"], train_accuracy_label="training (end of epoch)"
            )
        figures[activation] = plots.plot_implementations(
            histories,
            os.path.join(out, f"curves_{activation}.png"),
            f"{activation}: NumpyMLP vs MLPClassifier, {config.data.dataset}, batch {config.batch_size}",
        )
    findings = _findings(config, results, rows, len(arrays.class_names))
    sizes = (arrays.x_train.shape[1], *config.hidden, len(arrays.class_names))
    sk_rates = {r["sklearn"]["learning_rate"] for r in results.values() if "sklearn" in r}
    setup = (
        f"Data: {arrays.source}, {config.data.split} split (seed {config.seed}): {len(arrays.y_train)} training, "
        f"{len(arrays.y_val)} validation, {len(arrays.y_test)} test examples, pixels scaled ({config.data.normalization}). "
        f"Network {'-'.join(map(str, sizes))}, softmax output, cross-entropy, plain mini-batch SGD"
        f"{f' with momentum {config.momentum}' if config.momentum else ''}, batch {config.batch_size}, "
        f"{config.epochs} epochs, every epoch reshuffled. NumpyMLP: learning rate {config.learning_rate}, "
        f"{config.weight_init} initialisation{', batch norm' if config.batch_norm else ''}. "
        + (
            f"MLPClassifier (solver sgd, {f'momentum {config.momentum}' if config.momentum else 'no momentum'}, alpha 0, "
            + ("its own Glorot-style initialisation" if config.sklearn_init == "own" else "NumpyMLP's initial weights")
            + "): learning rate "
            f"{', '.join(map(str, sorted(sk_rates)))}. "
            if config.sklearn
            else ""
        )
        + f"Checkpoints every {config.checkpoint_every} epochs, each reloaded from its files and scored on the test split. "
        "Seconds per epoch: the SGD pass alone (median over epochs), the implementations one after the other, so "
        "other load on the machine shifts them; benchmarks/numpy_mlp_speed.py compares the speed interleaved. Libraries: "
        + ", ".join(f"{k} {v}" for k, v in versions.items())
        + f"; {blocks.machine_description()}."
    )
    page = [
        blocks.heading(1, f"NumPy MLP by hand vs scikit-learn: {config.data.dataset}"),
        blocks.paragraph(setup),
        blocks.heading(2, "Test accuracy of every checkpoint"),
        blocks.table(header, body),
        *[blocks.paragraph(text) for text in findings],
        blocks.heading(2, "Learning curves"),
    ]
    page += [
        blocks.figure(path, f"{activation}: loss (log scale) and accuracy per epoch")
        for activation, path in figures.items()
    ]
    rundir.write_json(
        os.path.join(out, RESULTS_FILE),
        {"config": to_dict(config), "versions": versions, "rows": rows, "best": best_row(rows), "findings": findings},
    )
    paths = blocks.write_pages(page, out, "NumPy MLP vs scikit-learn", REPORT_HTML, REPORT_MD)
    return dict(paths, figures=figures, table=markdown_table(header, body), findings=findings)


def run_experiment(
    config: NumpyExperimentConfig, overwrite: bool = False, download: bool = True, verbose: int = 1
) -> Dict[str, Any]:
    """Runs (or resumes) the whole experiment.

    Returns:
        The report's paths (``html``, ``markdown``, ``figures``), ``table`` (Markdown), ``findings``
        (sentences), ``results`` (per activation), ``resumed`` (activations kept from an earlier call).

    Raises:
        ValueError: For bad settings or data (before anything is written), or an output folder that
            holds something else.
    """
    check_config(config)
    arrays = load_arrays(config, download=download)
    out = config.output_dir or default_output_dir(config)
    versions = _versions()
    record = json.loads(json.dumps({"config": to_dict(config), "versions": versions}))  # tuples as JSON has them
    _claim_folder(out, record, overwrite)
    results, resumed = {}, []
    for activation in config.activations:
        results[activation], reused = _run_activation(config, activation, arrays, out, verbose)
        if reused:
            resumed.append(activation)
    report = write_report(config, arrays, results, out, versions)
    report.update(output_dir=out, results=results, resumed=resumed, classes=list(arrays.class_names))
    return report
