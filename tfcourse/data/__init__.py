"""The data a model learns from: sources, splits and tf.data pipelines.

- ``images``: the image datasets (catalogue, IDX / image folder / tfds / digits sources, validation,
  seeded stratified splits, CV folds, normalisation, augmentation and tf.data pipelines);
- ``idx``: the IDX file format, strictly validated;
- ``table_data``: CSV tables (read as text, column kinds inferred, target encoded, seattle_weather, splits);
- ``table_features``: a table's preprocessing inside the model (keras.utils.FeatureSpace, TablePipelines).

This face hands the image data's names on (``from tfcourse import data; data.load_splits(...)``).
"""

from tfcourse.data.images import (  # noqa: F401  (the package's face)
    AUGMENTATIONS,
    CATALOGUE,
    DATA_DIR_ENV,
    DIGIT_CLASSES,
    FASHION_MNIST_CLASSES,
    IMAGE_EXTENSIONS,
    PIPELINE_AUGMENTATIONS,
    PREFETCH_BATCHES,
    SHIFT_FRACTION,
    Dataset,
    Normalization,
    Pipelines,
    Splits,
    augment_batch,
    augmentation_layer,
    check_inferred_classes,
    check_label_coverage,
    check_split_fractions,
    cv_folds,
    dark_background,
    from_arrays,
    limit_train,
    load_dataset,
    load_digits,
    load_idx_dataset,
    load_image_folder,
    load_pipelines,
    load_splits,
    load_tfds,
    make_pipeline,
    make_pipelines,
    make_splits,
    mirror_safe,
    pipeline_options,
    select_classes,
    stratified_three_way,
    validate_arrays,
)
