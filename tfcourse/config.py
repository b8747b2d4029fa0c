"""Every default of a run, in one place, as frozen dataclasses.

A run's configuration is written as JSON beside what it produced (``config.json``), so a
result can always be traced back to the settings that made it.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Mapping, Optional, Tuple, Union

DEFAULT_DATASET = "fashion_mnist"
DEFAULT_MODEL = "cnn"
SPLIT_PROTOCOLS = ("coursework", "official")
NORMALIZATIONS = ("unit", "standardize")
TRAIN_ON = ("train", "train+val")
LR_SCHEDULES = ("plateau", "cosine")
TUNER_KINDS = ("random", "hyperband", "bayesian")
OBJECTIVES = ("val_accuracy", "val_loss")  # trials are scored on the validation split
THRESHOLD_METRICS = ("f1", "balanced_accuracy", "accuracy")  # what a two-class table's threshold maximises
CLASS_WEIGHTS = (None, "balanced")
TTA_MODES = ("none", "flip")  # test-time augmentation: also predict on the mirrored image, average the probabilities
INVERT_MODES = ("auto", "yes", "no")  # tfcourse.predict --invert: tfcourse.evaluation.inference.should_invert
PRECISIONS = ("auto", "float32", "mixed_bfloat16")  # tfcourse.machine.resolve_precision says what auto picks
# --export-format: the SavedModel always; ONNX and LiteRT (float32, float16, int8) files beside it on request
EXPORT_FORMATS = ("savedmodel", "onnx", "litert")


def parse_export_formats(text: str) -> Tuple[str, ...]:
    """``"savedmodel,onnx"`` -> the formats to write, in ``EXPORT_FORMATS`` order, the SavedModel always among them.

    Raises:
        ValueError: For an unknown name.
    """
    names = [name.strip().lower() for name in str(text).split(",") if name.strip()]
    unknown = sorted(set(names) - set(EXPORT_FORMATS))
    if unknown:
        raise ValueError(
            f"unknown export format {', '.join(unknown)}; use a comma-separated list of "
            f"{', '.join(EXPORT_FORMATS)} (the SavedModel is always written)"
        )
    return tuple(name for name in EXPORT_FORMATS if name in names or name == "savedmodel")


def parse_keep_checkpoints(text: str) -> Optional[int]:
    """``--keep-checkpoints``: ``all`` -> ``None`` (KerasTuner's own: every trial's best-epoch weights),
    ``best`` -> 1, ``top-K`` -> K, ``none`` -> 0 (how many trials' checkpoints a search keeps).

    Raises:
        ValueError: For anything else.
    """
    value = str(text).strip().lower()
    named = {"all": None, "best": 1, "none": 0}
    if value in named:
        return named[value]
    prefix, _, count = value.partition("top-")
    if not prefix and count.isdigit() and int(count) >= 1:
        return int(count)
    raise ValueError(f"--keep-checkpoints {text!r}: use all, best, top-K (K a whole number >= 1, e.g. top-3) or none")


def keep_checkpoints_name(kept: Optional[int]) -> str:
    """The ``--keep-checkpoints`` spelling of ``parse_keep_checkpoints``'s value."""
    return {None: "all", 0: "none", 1: "best"}.get(kept, f"top-{kept}")


@dataclasses.dataclass(frozen=True)
class Recipe:
    """How a model is trained: the optimizer and its learning-rate curve, the loss, and the defaults of the
    run's shape that ``tfcourse.train`` fills in when their flags are not given.

    Attributes:
        name: ``standard``, ``fast`` or ``quick`` (``RECIPES``).
        optimizer: ``hp``: the model's ``optimizer``/``learning_rate`` hyperparameters (Adam by default);
            ``sgd_nesterov``: SGD with Nesterov momentum ``momentum`` and weight decay ``weight_decay``.
        schedule: ``hp``: ``TrainConfig.lr_schedule`` (plateau cuts or a per-epoch cosine, with early
            stopping); ``onecycle``: per step, linear from 0 up to ``peak_learning_rate`` over the first
            ``warmup_fraction`` of the steps, then linear down to 0 at the last step. Every epoch runs.
        label_smoothing: The loss's target is ``1 - s`` on the true class and ``s / classes`` spread over all.
        model_defaults: Hyperparameter values used where the model declares the name and ``--hp`` does not
            set it (less work per accuracy point: a global-pooling head straight to the logits, no dropout).
        batch_size, epochs, augment, tta: The command line's defaults under this recipe.
    """

    name: str
    optimizer: str = "hp"
    schedule: str = "hp"
    peak_learning_rate: Optional[float] = None
    warmup_fraction: float = 0.0
    momentum: float = 0.0
    weight_decay: float = 0.0
    label_smoothing: float = 0.0
    model_defaults: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    batch_size: int = 128
    epochs: int = 30
    augment: bool = False
    tta: str = "none"


# The fast recipe is the time-to-accuracy one (batch norm nets, SGD-Nesterov, one-cycle learning rate,
# label smoothing, flips and shifts, flip test-time augmentation; see docs/speed.md for each piece's
# measured effect).
RECIPES = {
    "standard": Recipe("standard"),
    "fast": Recipe(
        "fast",
        optimizer="sgd_nesterov",
        schedule="onecycle",
        peak_learning_rate=0.2,
        warmup_fraction=0.25,
        momentum=0.9,
        weight_decay=5e-4,
        label_smoothing=0.1,
        model_defaults={"head": "gmp", "dense_layers": 0, "conv_dropout": 0.0, "dropout": 0.0},
        batch_size=256,
        epochs=16,
        augment=True,
        tta="flip",
    ),
}
# The quick recipe is the fast one cut to about 3 minutes of training on 2 CPU cores (the README's main job):
# 4 epochs of batch 128 (more steps per epoch) and no augmentation, which pays off only over longer runs;
# and so no flip test-time augmentation either: a model that never saw a mirrored image is worse on one
# (both measured in docs/speed.md).
RECIPES["quick"] = dataclasses.replace(
    RECIPES["fast"], name="quick", batch_size=128, epochs=4, augment=False, tta="none"
)


@dataclasses.dataclass(frozen=True)
class DataConfig:
    """Where the data comes from and how it is split and fed.

    Attributes:
        dataset: A catalogue name (``fashion_mnist``, ``mnist``, ``digits``), ``tfds:NAME``
            for any TensorFlow Datasets dataset, or a path to a folder of IDX files or of
            images with one sub-folder per class.
        data_dir: Explicit folder holding the dataset's files (highest priority).
        split: ``coursework`` (80/10/10 stratified over every labelled example) or
            ``official`` (keep the official test set, carve validation from train).
        val_fraction: Share of examples for validation (of all examples for
            ``coursework``, of the official training set for ``official``).
        test_fraction: Share of all examples for test (``coursework`` only).
        normalization: ``unit`` scales pixels to [0, 1]; ``standardize`` also subtracts
            the training-set mean and divides by its standard deviation.
        batch_size: Examples per batch.
        augment: Random flips and shifts on the training split only.
        image_size: (height, width) to resize an image folder to; ``None`` keeps the
            size of the first image found.
        classes: Keep only these labels, renumbered ``0..k-1`` in this order (``None``: all).
        train_limit: Keep a stratified, seeded subset of this many training examples (``None``: all).
    """

    dataset: str = DEFAULT_DATASET
    data_dir: Optional[str] = None
    split: str = "coursework"
    val_fraction: float = 0.1
    test_fraction: float = 0.1
    normalization: str = "unit"
    batch_size: int = 128
    augment: bool = False
    image_size: Optional[Tuple[int, int]] = None
    classes: Optional[Tuple[int, ...]] = None
    train_limit: Optional[int] = None


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """One training run: the model, how long to train, and where results go.

    Attributes:
        model: Registered model name (see ``tfcourse.models.list_models()``).
        epochs: Upper bound on epochs; early stopping usually ends sooner.
        patience: Epochs without validation-loss improvement before stopping.
        seed: Fixes data splits, weight initialisation and shuffling.
        hp: Hyperparameter overrides (name -> value) applied with ``hp.Fixed``.
        output_dir: The run folder; ``None`` makes ``runs/<model>-<dataset>-<time>``.
        export: Also write a TensorFlow Serving SavedModel.
        export_dir: Root of the Serving layout ``<export_dir>/<model>/<version>/``.
        export_formats: ``EXPORT_FORMATS`` the export writes: the SavedModel, and ONNX / LiteRT files
            beside it in the version folder (``tfcourse.serving.runtimes``).
        steps_per_execution: Training steps run per call into the TensorFlow graph;
            more steps per call amortise Python overhead on small models.
        deterministic: Ask TensorFlow for deterministic kernels (slower, bitwise
            repeatable); the seed alone already fixes splits, init and shuffling.
        train_on: ``train``, or ``train+val`` to fit on both for exactly ``epochs`` epochs
            (e.g. the best epoch count a search found): without validation data there is no
            early stopping, and the learning rate follows a cosine decay instead of being
            cut on plateaus.
        lr_schedule: ``plateau``: the learning rate is cut to 30% after ``patience // 2`` epochs
            without ``val_loss`` improvement; ``cosine``: it decays from its value to near 0 over
            ``epochs`` (a fixed curve, as usual for transformers), with no plateau cuts. Early
            stopping (best weights restored) applies to both.
        base: Transfer learning: ``ResNet50``/``VGG16`` (``keras.applications``) or a run folder /
            ``.keras`` file of a trained model, whose convolutional base gets a new head. With a
            base, ``model`` is ``transfer``.
        base_weights: Weights of an applications base: ``imagenet``, ``none`` or a weights file.
        freeze_base: Train only the new head; the base's weights stay as they are.
        fine_tune_at: After the head is trained, unfreeze the base from this layer (name or
            index) to its top and train ``fine_tune_epochs`` more epochs at the learning rate
            times ``fine_tune_lr_scale``.
        report: Write ``report.html`` / ``report.md`` (figures, Grad-CAM gallery) into the run folder.
        recipe: ``standard``, ``fast`` or ``quick``: the optimizer, learning-rate curve and loss (``RECIPES``).
        peak_learning_rate: The one-cycle curve's peak (``None``: the recipe's); only with a one-cycle recipe.
        tta: ``flip``: test predictions average the model's probabilities on the image and its mirror
            image (also inside an export); ``none``: the image alone.
        precision: ``float32``, ``mixed_bfloat16`` (bfloat16 compute, float32 weights and logits) or
            ``auto`` (``tfcourse.machine.resolve_precision``: bfloat16 where the CPU has AMX-BF16 or AVX-512 BF16).
    """

    model: str = DEFAULT_MODEL
    epochs: int = 30
    patience: int = 4
    seed: int = 42
    hp: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    output_dir: Optional[str] = None
    export: bool = False
    export_dir: str = "saved_models"
    export_formats: Tuple[str, ...] = ("savedmodel",)
    steps_per_execution: int = 8
    deterministic: bool = False
    train_on: str = "train"
    lr_schedule: str = "plateau"
    base: Optional[str] = None
    base_weights: str = "imagenet"
    freeze_base: bool = False
    fine_tune_at: Optional[Any] = None
    fine_tune_epochs: int = 5
    fine_tune_lr_scale: float = 0.1
    report: bool = True
    recipe: str = "standard"
    peak_learning_rate: Optional[float] = None
    tta: str = "none"
    precision: str = "auto"
    data: DataConfig = dataclasses.field(default_factory=DataConfig)


TRANSFER_MODEL = "transfer"  # TrainConfig.model of a run with a base


# A table's own settings beyond the data source, split and batch (TableDataConfig's fields, the table
# flags of train/tune/eda and part of a table search's identity)
TABLE_SETTINGS = (
    "target",
    "features",
    "drop",
    "categorical",
    "numeric",
    "positive_class",
    "time_column",
    "class_weight",
)


@dataclasses.dataclass(frozen=True)
class TableDataConfig:
    """Where a table comes from and how it is split and fed (the table's ``DataConfig``).

    Attributes:
        dataset: ``seattle_weather`` or ``csv:PATH``.
        target: The column to predict (required for a CSV).
        features, drop, categorical, numeric, positive_class, time_column: As ``tabular.from_frame``.
        split: ``stratified`` (random, class shares kept) or ``time`` (past -> train, future -> test).
        val_fraction, test_fraction: Shares of the rows.
        batch_size: Rows per batch.
        class_weight: ``None`` or ``balanced`` (each training row weighs in inversely to its class's
            share of training rows; validation and test rows are not weighted).
    """

    dataset: str = "seattle_weather"
    target: Optional[str] = None
    features: Tuple[str, ...] = ()
    drop: Tuple[str, ...] = ()
    categorical: Tuple[str, ...] = ()
    numeric: Tuple[str, ...] = ()
    positive_class: Optional[str] = None
    time_column: Optional[str] = None
    split: str = "stratified"
    val_fraction: float = DataConfig.val_fraction
    test_fraction: float = DataConfig.test_fraction
    batch_size: int = DataConfig.batch_size
    class_weight: Optional[str] = None


@dataclasses.dataclass(frozen=True)
class TableConfig:
    """One feed-forward network on a table (``tfcourse.jobs.table_run.train_table``).

    Attributes:
        model: A registered model for tables (``tabular_mlp``).
        epochs, patience: Training; early stopping on the validation loss restores the best weights.
        seed: Fixes the split, initialisation and shuffling.
        hp: Hyperparameter overrides of the model and the optimizer (name -> value).
        threshold_metric: What the decision threshold maximises on validation (two-class targets).
        output_dir: The run folder; ``None`` makes ``runs/tabular_mlp-<dataset>-<time>``.
        report: Write ``report.html``/``report.md`` into the run folder.
        export: Also export a TensorFlow Serving SavedModel that takes raw rows.
        export_dir: Its root: ``<export_dir>/<model>/<version>/``.
        data: The table and its splits.
    """

    model: str = "tabular_mlp"
    # an image run's defaults, read from there: python -m tfcourse.train has one set
    epochs: int = TrainConfig.epochs
    patience: int = TrainConfig.patience
    seed: int = TrainConfig.seed
    hp: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    threshold_metric: str = "f1"
    output_dir: Optional[str] = None
    report: bool = True
    export: bool = False
    export_dir: str = TrainConfig.export_dir
    data: TableDataConfig = dataclasses.field(default_factory=TableDataConfig)


@dataclasses.dataclass(frozen=True)
class TuneConfig:
    """One hyperparameter search (``python -m tfcourse.tune``).

    Attributes:
        model: Registered model name whose builder's ``hp`` calls are the search space.
        tuner: ``random`` (RandomSearch), ``hyperband`` or ``bayesian`` (BayesianOptimization).
        max_trials: Trials for RandomSearch and Bayesian; Hyperband sizes itself from
            ``max_epochs`` and ``factor``.
        epochs: Epochs per trial (RandomSearch, Bayesian); early stopping may end a trial sooner.
        max_epochs: Hyperband's epochs for the models that survive to the last round.
        factor: Hyperband's reduction factor (keep the best 1/factor each round).
        executions_per_trial: Models trained per trial; their scores are averaged.
        objective: The metric to optimise, measured on the validation split; ``*loss``
            objectives are minimised, everything else maximised.
        patience: Early stopping inside a trial: epochs without ``val_loss`` improvement.
        space: Overrides of the search space, name -> a value (fixed), a list (choices)
            or ``{"min": .., "max": .., "step": .., "sampling": ..}`` (narrowed range).
        directory, project_name: KerasTuner's state lives in ``directory/project_name``.
        overwrite: Start afresh; otherwise an existing search of the same settings resumes.
        max_minutes: Start no new trial after this many minutes (``None``: no time limit).
        seed: Fixes data splits, the tuner's sampling and each model's initialisation.
        steps_per_execution: Training steps per graph call.
        lr_schedule: ``plateau`` or ``cosine``, as for ``TrainConfig``, in every trial and in the
            retrained model; the cosine decay runs over ``epochs`` (Hyperband: over ``max_epochs``,
            each round going on where the previous one stopped).
        precision: As ``TrainConfig.precision``, for every trial and the retrained model.
        cv: Score each trial by ``cv``-fold stratified cross-validation on the training split (the
            oracle ranks by the folds' mean); ``None``: train on train, score on validation.
        keep_checkpoints: How many trials' best-epoch weights the search keeps on disk (the best
            ones); ``None`` keeps every trial's (KerasTuner's own behaviour), 0 none.
        data: Where the data comes from and how it is split and fed: a ``DataConfig`` for images, a
            ``TableDataConfig`` for a table (then ``model`` is a table model).
    """

    model: str = DEFAULT_MODEL
    tuner: str = "hyperband"
    max_trials: int = 10
    epochs: int = 10
    max_epochs: int = 10
    factor: int = 3
    executions_per_trial: int = 1
    objective: str = "val_accuracy"
    patience: int = 3
    space: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    directory: str = "tuning"
    project_name: Optional[str] = None
    overwrite: bool = False
    max_minutes: Optional[float] = None
    seed: int = 42
    steps_per_execution: int = 8
    lr_schedule: str = "plateau"
    precision: str = "auto"
    cv: Optional[int] = None
    keep_checkpoints: Optional[int] = None
    data: Union[DataConfig, TableDataConfig] = dataclasses.field(default_factory=DataConfig)


NUMPY_ACTIVATIONS = ("relu", "sigmoid", "tanh", "linear")  # as tfcourse.numpy_nn.ACTIVATIONS
NUMPY_INITS = ("zero", "random", "normal", "he", "glorot")  # as tfcourse.numpy_nn.INITIALIZERS
SKLEARN_INITS = ("own", "numpy")


@dataclasses.dataclass(frozen=True)
class NumpyExperimentConfig:
    """The course's by-hand experiment (``python -m tfcourse.numpy_mlp``): ``NumpyMLP`` and
    scikit-learn's ``MLPClassifier`` trained alike, one pair per activation.

    Attributes:
        activations: Hidden activations to run, one network pair each.
        hidden: Hidden-layer widths (input and output sizes come from the data).
        learning_rate: NumpyMLP's SGD step.
        sklearn_learning_rate: MLPClassifier's ``learning_rate_init`` (``None``: the same as NumpyMLP's).
        batch_size: Examples per SGD step, both implementations.
        weight_init: NumpyMLP's initialisation (MLPClassifier's too with ``sklearn_init="numpy"``).
        epochs: Epochs of both.
        checkpoint_every: Save (and test) both every this many epochs.
        momentum: SGD momentum of both (0: plain SGD, the course's).
        batch_norm: Batch norm in NumpyMLP's hidden layers (MLPClassifier has none).
        sklearn: Also train MLPClassifier.
        sklearn_init: ``own``: MLPClassifier starts from its own initialisation, as a user runs it;
            ``numpy``: from NumpyMLP's initial weights (copied into its public ``coefs_``/``intercepts_``
            before its first epoch), so the two differ only in their code and their shuffles.
        seed: Fixes the split, both initialisations and every shuffle.
        output_dir: The experiment folder (``None``: ``runs/numpy_mlp-<dataset>``).
        data: Where the data comes from and how it is split (``batch_size`` there is unused).
    """

    activations: Tuple[str, ...] = NUMPY_ACTIVATIONS
    hidden: Tuple[int, ...] = (256, 128, 64)
    learning_rate: float = 0.1
    sklearn_learning_rate: Optional[float] = None
    batch_size: int = 32
    weight_init: str = "normal"
    epochs: int = 100
    checkpoint_every: int = 50
    momentum: float = 0.0
    batch_norm: bool = False
    sklearn: bool = True
    sklearn_init: str = "own"
    seed: int = 42
    output_dir: Optional[str] = None
    data: DataConfig = dataclasses.field(default_factory=DataConfig)


@dataclasses.dataclass(frozen=True)
class EdaConfig:
    """The exploratory data analysis (``python -m tfcourse.eda``).

    Attributes:
        samples_per_class: Training images per class in the samples grid.
        max_side: Images with a larger side are shrunk (block mean, grey) to at most this for the pixel
            correlation, PCA, distances and features; 28x28 Fashion-MNIST is used as it is.
        near_duplicate_rms: Two different images whose root-mean-square pixel difference (pixels in
            0..1) is at most this are near duplicates.
        duplicate_components: PCA components of the k-d tree that finds near-duplicate candidates.
        neighbour_components: PCA components of the nearest-neighbour space (label errors, overlap).
        neighbours: k of the nearest-neighbour check.
        label_error_share: An image is a likely label error when at least this share of its
            neighbours carries one same other label.
        outlier_z: Robust z-score of the distance to the class mean above which an image is an outlier.
        tsne_samples: Training images in the t-SNE embedding (a stratified subsample).
        classifier_examples: Training images (stratified subsample) the logistic regressions are fitted on.
        top: Examples shown in each grid of the anomalies.
        seed: Fixes the split, every subsample and t-SNE.
        output_dir: The EDA folder (``None``: ``runs/eda-<dataset>``).
        data: Where the data comes from and how it is split (batch size and normalization unused).
    """

    samples_per_class: int = 8
    max_side: int = 32
    near_duplicate_rms: float = 0.02
    duplicate_components: int = 16
    neighbour_components: int = 30
    neighbours: int = 10
    label_error_share: float = 0.8
    outlier_z: float = 3.5
    tsne_samples: int = 2000
    classifier_examples: int = 10000
    top: int = 16
    seed: int = 42
    output_dir: Optional[str] = None
    data: DataConfig = dataclasses.field(default_factory=DataConfig)


def to_dict(config: Any) -> dict:
    """Returns a JSON-ready dict of a (nested) config dataclass."""
    return dataclasses.asdict(config)
