"""The data a model learns from: sources, splits and tf.data pipelines, for images and tables.

- ``catalogue``: ``Dataset``, the datasets known by name, validation, ``from_arrays``, ``select_classes``;
- ``sources``: IDX files (``idx``: the format), image folders, TensorFlow Datasets, digits; ``load_dataset``;
- ``splits``: seeded stratified train/val/test indices, ``limit_train``, ``load_splits`` (the one recipe);
- ``pipelines``: normalisation, augmentation and the tf.data pipelines; CV folds;
- ``table_data``: CSV tables (read as text, column kinds inferred, target encoded, seattle_weather, splits);
- ``table_features``: a table's preprocessing inside the model (keras.utils.FeatureSpace, TablePipelines).

This face hands the image data's names on (``from tfcourse import data; data.load_splits(...)``).
"""

from tfcourse.data.catalogue import (  # noqa: F401
    CATALOGUE,
    DATA_DIR_ENV,
    DIGIT_CLASSES,
    FASHION_MNIST_CLASSES,
    IMAGE_EXTENSIONS,
    Dataset,
    check_inferred_classes,
    check_label_coverage,
    dark_background,
    from_arrays,
    mirror_safe,
    select_classes,
    validate_arrays,
)
from tfcourse.data.pipelines import (  # noqa: F401
    AUGMENTATIONS,
    PIPELINE_AUGMENTATIONS,
    PREFETCH_BATCHES,
    SHIFT_FRACTION,
    Normalization,
    Pipelines,
    augment_batch,
    augmentation_layer,
    cv_folds,
    load_pipelines,
    make_pipeline,
    make_pipelines,
    pipeline_options,
)
from tfcourse.data.sources import load_dataset, load_digits, load_idx_dataset, load_image_folder, load_tfds  # noqa: F401
from tfcourse.data.splits import (  # noqa: F401
    Splits,
    check_split_fractions,
    limit_train,
    load_splits,
    make_splits,
    stratified_three_way,
)
