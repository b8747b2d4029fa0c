"""Predicting on a person's own image files: a trained model (run folder, ``.keras`` file or SavedModel
export) and PNG/JPEG/BMP/GIF files of any size, colour or grey, brought to what the model was trained on.

``open_model`` finds what a path holds and returns a ``Predictor`` (class names, input shape, a function
from raw uint8 images to class probabilities, and whether the training images were light objects on a
black background); ``prepare_image`` turns a picture into the model's input (grey or RGB, the aspect kept
inside the model's frame, a light background inverted for such models); ``predict_files`` does both for
many files and lists those it could not read.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np

from tfcourse import data, rundir
from tfcourse.config import INVERT_MODES
from tfcourse.evaluation import artifacts, evaluate, novelty

NEAREST = "distance to training images"  # the novelty score of a model with features (novelty.NearestTraining)
LIGHT_BORDER = 128  # mean border brightness (0..255) above which a picture is taken as dark-on-light


@dataclasses.dataclass
class Predictor:
    """A trained image classifier ready for raw pixels.

    Attributes:
        source: The model folder or file actually opened (an export's version folder).
        kind: ``run``, ``keras`` (a ``.keras`` file in its run folder) or ``export``.
        class_names: One name per output.
        input_shape: ``(height, width, channels)`` the model takes.
        dark_background: Whether its training images are light objects on black (``None``: not known).
        probabilities: ``uint8 (N, H, W, C) -> float (N, classes)``, with the run's test-time augmentation.
        make_novelty_score: Given the run's validation sample, builds (once, lazily) ``uint8 images -> (N,)``,
            higher for inputs unlike the training data (``novelty``), and returns it with its values on that
            sample: ``(score, values)``, or ``None`` when the run's training data is not on this machine.
        novelty_name: What that score is (``distance to training images``; ``negative max probability``
            without a Keras model).
        run: The run the model comes from (its training images are the bank, its validation images calibrate).
    """

    source: str
    kind: str
    class_names: Tuple[str, ...]
    input_shape: Tuple[int, int, int]
    dark_background: Optional[bool]
    probabilities: Callable[[np.ndarray], np.ndarray]
    make_novelty_score: Optional[Callable[[np.ndarray], Optional[Tuple[Callable, np.ndarray]]]] = None
    novelty_name: str = ""
    run: Any = None
    _novelty: Any = dataclasses.field(default=None, repr=False)

    def novelty(self):
        """``(score, calibration)``, built once: the score function and its threshold calibrated on the run's
        validation images; ``(None, None)`` when the run's data cannot be loaded here."""
        if self._novelty is None:
            self._novelty = (None, None)
            images = (
                novelty.split_images(self.run, "val", novelty.CALIBRATION_IMAGES) if self.make_novelty_score else None
            )
            made = self.make_novelty_score(images) if images is not None else None
            if made is not None:
                score, values = made
                self._novelty = (score, novelty.calibrate(values, self.novelty_name))
        return self._novelty

    def calibration(self) -> Optional[Dict[str, Any]]:
        return self.novelty()[1]


def _versions(folder: str) -> List[int]:
    """The numbered SavedModel versions under an export's model folder, oldest first (by number: 10 after 9)."""
    return [
        number
        for number in rundir.version_numbers(folder)
        if os.path.isfile(os.path.join(folder, str(number), "saved_model.pb"))
    ]


def _dark_background(run) -> Optional[bool]:
    """``data.dark_background`` of the dataset the run was trained on (``None``: no run record to say)."""
    dataset = ((run.record or {}).get("config") or {}).get("data", {}).get("dataset")
    return data.dark_background(dataset) if dataset else None


def open_model(path: str) -> Predictor:
    """Opens a run folder, a ``.keras`` file inside its run folder, an export version folder, or an export's
    model folder (``saved_models/<name>``: its latest version).

    Raises:
        ValueError: If ``path`` is none of these (naming what was found and what to pass instead), or an
            image model is not what it holds.
    """
    if os.path.isfile(path) and path.endswith(".keras"):
        folder = os.path.dirname(os.path.abspath(path))
        _refuse_table_run(folder, path)
        if not os.path.isfile(os.path.join(folder, rundir.CONFIG_FILE)):
            raise ValueError(
                f"{path} has no {rundir.CONFIG_FILE} beside it, so its class names and preprocessing are unknown; "
                "pass the run folder python -m tfcourse.train wrote (it holds both), or an export."
            )
        return _from_run(artifacts.load(folder, keras_model=path), path, "keras")
    if not os.path.isdir(path):
        raise ValueError(
            f"{path} is neither a folder nor a .keras file; pass a run folder, its model.keras, or an export "
            "(saved_models/<name> or saved_models/<name>/<version>)."
        )
    if not os.path.isfile(os.path.join(path, "saved_model.pb")) and not os.path.isfile(
        os.path.join(path, rundir.CONFIG_FILE)
    ):
        versions = _versions(path)
        models = [] if versions else [name for name in sorted(os.listdir(path)) if _versions(os.path.join(path, name))]
        if models:
            raise ValueError(
                f"{path} holds {'several exported models' if len(models) > 1 else 'an exported model'} "
                f"({', '.join(models)}); pass one of them, e.g. {os.path.join(path, models[0])}."
            )
        if not versions:
            raise ValueError(
                f"{path} holds no model: no {rundir.CONFIG_FILE} + {rundir.MODEL_FILE} (a run folder), no "
                "saved_model.pb (an export version) and no numbered version folders (an export's model folder)."
            )
        path = os.path.join(path, str(versions[-1]))
    info = rundir.read_metadata(path)
    if isinstance(info, dict) and "inputs" in info:  # export_table_model: named columns in, no images
        raise ValueError(
            f"{path} is an export of a model for tables (inputs {', '.join(sorted(info['inputs']))}), not for "
            "images; tfcourse.predict reads image files."
        )
    _refuse_table_run(path, path)
    run = artifacts.load(path)
    if run.export_dir is not None:
        return _from_export(run)
    return _from_run(run, path, "run")


def _refuse_table_run(run_dir: str, given: str) -> None:
    if rundir.is_table_run(run_dir):
        raise ValueError(
            f"{given} is a run on a table (a model of named columns), not on images; tfcourse.predict reads image "
            "files. Its export serves raw rows: see docs/tables.md."
        )


def _check_images(input_shape, source: str) -> Tuple[int, int, int]:
    if len(input_shape) != 3:
        raise ValueError(
            f"{source} is a model for tables (input shape {tuple(input_shape)}), not for images; "
            "tfcourse.predict reads image files."
        )
    return tuple(int(dim) for dim in input_shape)


def _from_run(run, source: str, kind: str) -> Predictor:
    model = run.keras_model("predictions")
    shape = _check_images(model.inputs[0].shape[1:], source)

    def probabilities(images: np.ndarray) -> np.ndarray:
        return evaluate.probabilities(model, run.model_inputs(images), run.tta).numpy()

    return Predictor(
        source,
        kind,
        run.class_names,
        shape,
        _dark_background(run),
        probabilities,
        lambda validation: _nearest_training(run, model, validation),
        NEAREST,
        run,
    )


def _nearest_training(run, model, validation: np.ndarray):
    """The deep-nearest-neighbours score over a sample of the run's training images, each layer scaled on
    the ``validation`` sample the threshold is calibrated on, and its values there: ``(score, values)``
    (``None``: the training data is not here)."""
    bank = novelty.split_images(run, "train", novelty.BANK_IMAGES)
    if bank is None:
        return None
    features = novelty.feature_model(model, novelty.feature_layers(model))

    def features_of(images: np.ndarray) -> List[np.ndarray]:
        chunks = [features(run.model_inputs(images[i : i + 512]), training=False) for i in range(0, len(images), 512)]
        chunks = [chunk if isinstance(chunk, (list, tuple)) else [chunk] for chunk in chunks]  # one layer: a tensor
        return [np.concatenate([np.asarray(chunk[j]) for chunk in chunks]) for j in range(len(features.outputs))]

    score = novelty.NearestTraining(features_of, bank, validation)
    return score, score.scale_scores


def _from_export(run) -> Predictor:
    """The export's own uint8 signature (preprocessing and test-time augmentation inside); its input shape
    read from that signature."""
    import tensorflow as tf

    serve = tf.saved_model.load(run.export_dir).signatures[rundir.SIGNATURE_UINT8]
    shape = _check_images(serve.structured_input_signature[1]["images"].shape[1:], run.export_dir)

    def probabilities(images: np.ndarray) -> np.ndarray:
        return serve(images=tf.constant(images, tf.uint8))["probabilities"].numpy()

    def make_score(validation: np.ndarray):
        if run.keras_path is not None:  # the export's own Keras model, from the run folder it records
            return _nearest_training(run, run.keras_model("the novelty score"), validation)

        def score(images: np.ndarray) -> np.ndarray:  # probabilities only
            return novelty.negative_max_probability(probabilities(images))

        return score, score(validation)

    name = NEAREST if run.keras_path is not None else "negative max probability"
    # the dataset is known from the run folder the export came from, when that is still there
    return Predictor(
        run.export_dir, "export", run.class_names, shape, _dark_background(run), probabilities, make_score, name, run
    )


def _check_invert(invert: str) -> None:
    if invert not in INVERT_MODES:
        raise ValueError(f"--invert must be one of {', '.join(INVERT_MODES)}, got {invert!r}.")


def should_invert(grey: np.ndarray, invert: str, dark_background: Optional[bool]) -> bool:
    """``--invert``: ``yes``/``no``, or ``auto``: a picture whose border is light (mean above
    ``LIGHT_BORDER``) is inverted for a model trained on light objects on black."""
    _check_invert(invert)
    if invert != "auto":
        return invert == "yes"
    border = np.concatenate([grey[0], grey[-1], grey[:, 0], grey[:, -1]])
    return bool(dark_background) and float(border.mean()) > LIGHT_BORDER


def prepare_image(image, input_shape: Sequence[int], invert: str = "auto", dark_background=None):
    """A PIL image -> ``(uint8 (H, W, C) array the model takes, whether it was inverted)``.

    Grey for a one-channel model (RGB otherwise); inverted per ``should_invert``; scaled so that its longer
    side fills the model's frame with the aspect ratio kept, centred on a background of its own border's
    colour (black after an inversion).
    """
    from PIL import Image

    height, width, channels = input_shape
    picture = image.convert("L" if channels == 1 else "RGB")
    pixels = np.asarray(picture)
    grey = pixels if pixels.ndim == 2 else np.asarray(picture.convert("L"))
    inverted = should_invert(grey, invert, dark_background)
    if inverted:
        pixels = 255 - pixels
    border = np.concatenate([pixels[0], pixels[-1], pixels[:, 0], pixels[:, -1]])
    fill = np.median(border, axis=0).astype(np.uint8)
    scale = min(height / pixels.shape[0], width / pixels.shape[1])
    size = (max(1, round(pixels.shape[1] * scale)), max(1, round(pixels.shape[0] * scale)))
    resized = np.asarray(Image.fromarray(pixels).resize(size, Image.Resampling.LANCZOS))
    canvas = np.empty((height, width) + pixels.shape[2:], np.uint8)
    canvas[...] = fill
    top, left = (height - size[1]) // 2, (width - size[0]) // 2
    canvas[top : top + size[1], left : left + size[0]] = resized
    return canvas.reshape(height, width, channels), inverted


def image_files(paths: Sequence[str]) -> List[str]:
    """The files named, and the image files (by extension, sorted) inside the folders named."""
    found = []
    for path in paths:
        if os.path.isdir(path):
            found += sorted(
                os.path.join(folder, name)
                for folder, _, names in os.walk(path)
                for name in names
                if name.lower().endswith(data.IMAGE_EXTENSIONS)
            )
        else:
            found.append(path)
    return found


def predict_files(
    predictor: Predictor, paths: Sequence[str], invert: str = "auto", top_k: int = 3, batch_size: int = 256
) -> Tuple[List[Dict], List[Tuple[str, str]], np.ndarray]:
    """Reads, prepares and classifies each file.

    Returns:
        ``(rows, skipped, images)``: one row per readable file (``file``, ``inverted``, ``top`` as
        ``[(class name, probability)]`` best first, ``probabilities``), the unreadable files with the reason,
        and the prepared images (N, H, W, C) uint8 in row order.
    """
    from PIL import Image, UnidentifiedImageError

    if top_k < 1:
        raise ValueError(f"--top-k must be at least 1, got {top_k}.")
    _check_invert(invert)  # before the loop: a bad mode is the caller's error, not a file's
    prepared, rows, skipped = [], [], []
    for path in image_files(paths):
        try:
            with Image.open(path) as image:
                image.load()
                pixels, inverted = prepare_image(image, predictor.input_shape, invert, predictor.dark_background)
        except Image.DecompressionBombError as error:  # not an OSError: PIL's guard against exhausting memory
            skipped.append((path, f"refused, a decompression bomb or a huge scan ({error}); shrink it"))
            continue
        except (OSError, UnidentifiedImageError, ValueError, SyntaxError) as error:
            skipped.append((path, f"{type(error).__name__}: {error}"))
            continue
        prepared.append(pixels)
        rows.append({"file": path, "inverted": inverted})
    images = np.stack(prepared) if prepared else np.zeros((0,) + tuple(predictor.input_shape), np.uint8)
    probabilities = (
        np.concatenate(
            [predictor.probabilities(images[start : start + batch_size]) for start in range(0, len(images), batch_size)]
        )
        if len(images)
        else np.zeros((0, len(predictor.class_names)))
    )
    for row, probs in zip(rows, probabilities):
        best = np.argsort(-probs, kind="stable")[: min(top_k, len(probs))]
        row["top"] = [(predictor.class_names[i], float(probs[i])) for i in best]
        row["probabilities"] = probs
    _add_novelty(predictor, rows, images, batch_size)
    return rows, skipped, images


def _add_novelty(predictor: Predictor, rows: List[Dict], images: np.ndarray, batch_size: int) -> None:
    """Each row's ``novelty``: its score, the calibrated threshold and whether it is unlike the training data
    (``None`` where the score cannot be calibrated here)."""
    score, calibration = predictor.novelty() if rows else (None, None)
    if calibration is None:
        for row in rows:
            row["novelty"] = None
        return
    scores = np.concatenate([score(images[start : start + batch_size]) for start in range(0, len(images), batch_size)])
    for row, value, unlike in zip(rows, scores, novelty.flag(scores, calibration)):
        row["novelty"] = {**calibration, "value": float(value), "unlike_training_data": bool(unlike)}
