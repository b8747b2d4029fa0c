import os

import numpy as np
import pytest

from tests.conftest import make_images, write_idx
from tfcourse import data
from tfcourse.config import DataConfig

# ------------------------------------------------------------------ sources


def test_idx_folder_by_path(idx_folder):
    dataset = data.load_dataset(str(idx_folder))
    assert dataset.x_train.shape == (200, 28, 28, 1) and dataset.x_train.dtype == np.uint8
    assert dataset.x_test.shape == (50, 28, 28, 1)
    assert dataset.class_names == tuple(str(i) for i in range(10))


def test_image_folder(image_folder):
    dataset = data.load_dataset(str(image_folder))
    assert dataset.class_names == ("cat", "dog", "fish")
    assert dataset.x_train.shape == (24, 12, 10, 3)
    assert not dataset.has_official_test
    # each class was written with its own channel bright: labels follow folder names
    brightest = dataset.x_train.reshape(24, -1, 3).mean(axis=1).argmax(axis=1)
    np.testing.assert_array_equal(brightest, dataset.y_train)


def test_image_folder_resize_and_errors(image_folder, tmp_path):
    assert data.load_image_folder(str(image_folder), image_size=(6, 5)).x_train.shape == (24, 6, 5, 3)
    (image_folder / "dog" / "broken.png").write_bytes(b"not a png")
    with pytest.raises(ValueError, match="broken.png"):
        data.load_dataset(str(image_folder))
    (tmp_path / "flat").mkdir()
    with pytest.raises(ValueError, match="no class sub-folders"):
        data.load_dataset(str(tmp_path / "flat"))
    (tmp_path / "flat" / "cls").mkdir()
    with pytest.raises(ValueError, match="no images"):
        data.load_dataset(str(tmp_path / "flat"))


def test_digits_offline():
    dataset = data.load_dataset("digits")
    assert dataset.x_train.shape == (1797, 8, 8, 1)
    assert dataset.x_train.max() == 255 and dataset.x_train.min() == 0
    assert set(np.unique(dataset.y_train)) == set(range(10))


def test_tfds_through_mock_data():
    import tensorflow_datasets as tfds

    with tfds.testing.mock_data(num_examples=30):
        dataset = data.load_dataset("tfds:fashion_mnist")
    assert dataset.x_train.shape == (30, 28, 28, 1)
    assert dataset.x_test.shape == (30, 28, 28, 1)
    assert dataset.class_names[0] == "T-shirt/top" and dataset.class_names[-1] == "Ankle boot"


@pytest.fixture
def no_system_copy(monkeypatch, tmp_path):
    """Points the Debian folder of fashion_mnist somewhere empty and clears the env var."""
    monkeypatch.setitem(data.CATALOGUE["fashion_mnist"], "system_dir", str(tmp_path / "nowhere"))
    monkeypatch.delenv(data.DATA_DIR_ENV, raising=False)


def test_fashion_mnist_resolution_order(idx_folder, tmp_path, monkeypatch, no_system_copy):
    # an env var folder and the system folder: the env var wins, an explicit data_dir beats both
    env_dir = tmp_path / "env"
    env_dir.mkdir()
    x, y = make_images(3, seed=9)
    for name, array in [
        ("train-images-idx3-ubyte.gz", x),
        ("train-labels-idx1-ubyte.gz", y),
        ("t10k-images-idx3-ubyte.gz", x),
        ("t10k-labels-idx1-ubyte.gz", y),
    ]:
        write_idx(env_dir / name, array)
    monkeypatch.setitem(data.CATALOGUE["fashion_mnist"], "system_dir", str(idx_folder))
    assert len(data.load_dataset("fashion_mnist").y_train) == 200  # system folder
    monkeypatch.setenv(data.DATA_DIR_ENV, str(env_dir))
    from_env = data.load_dataset("fashion_mnist")
    assert len(from_env.y_train) == 30 and str(env_dir) in from_env.source
    assert from_env.class_names == data.FASHION_MNIST_CLASSES
    assert len(data.load_dataset("fashion_mnist", data_dir=str(idx_folder)).y_train) == 200


def test_fashion_mnist_env_var_parent_folder(idx_folder, monkeypatch, no_system_copy):
    parent = idx_folder.parent
    idx_folder.rename(parent / "fashion-mnist")
    monkeypatch.setenv(data.DATA_DIR_ENV, str(parent))
    assert len(data.load_dataset("fashion_mnist").y_train) == 200


def test_fashion_mnist_nothing_found_lists_what_was_tried(no_system_copy, tmp_path):
    with pytest.raises(ValueError) as error:
        data.load_dataset("fashion_mnist", download=False)
    message = str(error.value)
    assert "nowhere" in message and "tfds.load('fashion_mnist')" in message
    assert "apt-get install -y dataset-fashion-mnist" in message and "--dataset digits" in message


def test_fashion_mnist_falls_back_to_tfds(no_system_copy):
    import tensorflow_datasets as tfds

    with tfds.testing.mock_data(num_examples=20):
        dataset = data.load_dataset("fashion_mnist")
    assert dataset.source == "tfds.load('fashion_mnist')" and len(dataset.y_train) == 20


def test_explicit_data_dir_without_files_is_an_error(tmp_path):
    with pytest.raises(ValueError, match="does not hold the four IDX files"):
        data.load_dataset("fashion_mnist", data_dir=str(tmp_path))


def test_unknown_dataset_name():
    with pytest.raises(ValueError, match="Unknown dataset 'fashon_mnist'.*digits"):
        data.load_dataset("fashon_mnist")


# ------------------------------------------------------------------ validation


@pytest.mark.parametrize(
    "x, y, match",
    [
        (np.zeros((0, 8, 8)), np.zeros(0, int), "no images"),
        (np.zeros((4, 8)), np.zeros(4, int), "must have shape"),
        (np.zeros((4, 8, 8, 2)), np.zeros(4, int), "must have shape"),
        (np.zeros((4, 8, 8)), np.zeros(3, int), "labels must have shape"),
        (np.zeros((4, 8, 8)), np.array([0, 1, 2, 10]), r"labels must lie in \[0, 9\]"),
        (np.zeros((4, 8, 8)), np.array([0, -1, 2, 3]), r"labels must lie in \[0, 9\]"),
        (np.zeros((4, 8, 8)), np.array([0.5, 1, 2, 3]), "labels must be integers"),
        (np.full((4, 8, 8), np.nan), np.zeros(4, int), "NaN"),
        (np.full((4, 8, 8), 300.0), np.zeros(4, int), r"\[0, 255\]"),
    ],
)
def test_validation_errors(x, y, match):
    with pytest.raises(ValueError, match=match):
        data.from_arrays(x, y, [str(i) for i in range(10)])


def test_float_images_in_unit_range_become_uint8():
    dataset = data.from_arrays(np.full((2, 4, 4), 1.0), [0, 1], ["a", "b"])
    assert dataset.x_train.dtype == np.uint8 and dataset.x_train.max() == 255


# ------------------------------------------------------------------ splits


@pytest.fixture(scope="module")
def digits():
    return data.load_dataset("digits")


def test_coursework_split_sizes_stratified_disjoint(digits):
    splits = data.make_splits(digits, "coursework", seed=1)
    sizes = splits.sizes()
    assert sum(sizes.values()) == 1797
    assert abs(sizes["test"] - 180) <= 1 and abs(sizes["val"] - 180) <= 1
    assert not set(splits.train) & set(splits.val)
    assert not set(splits.train) & set(splits.test)
    assert not set(splits.val) & set(splits.test)
    _, labels = digits.pooled()
    overall = np.bincount(labels) / len(labels)
    for part in (splits.train, splits.val, splits.test):
        share = np.bincount(labels[part], minlength=10) / len(part)
        assert np.abs(share - overall).max() < 0.01  # stratified: class shares match the whole


def test_split_determinism(digits):
    a = data.make_splits(digits, seed=7)
    b = data.make_splits(digits, seed=7)
    c = data.make_splits(digits, seed=8)
    np.testing.assert_array_equal(a.train, b.train)
    np.testing.assert_array_equal(a.test, b.test)
    assert not np.array_equal(a.test, c.test)


def test_official_split_keeps_official_test(idx_folder):
    dataset = data.load_dataset(str(idx_folder))
    splits = data.make_splits(dataset, "official", val_fraction=0.1, seed=0)
    np.testing.assert_array_equal(splits.test, np.arange(200, 250))
    assert len(splits.val) == 20 and len(splits.train) == 180
    assert splits.train.max() < 200 and splits.val.max() < 200
    assert not set(splits.train) & set(splits.val)
    _, labels = dataset.pooled()
    assert (np.bincount(labels[splits.val], minlength=10) == 2).all()


def test_split_errors(digits):
    with pytest.raises(ValueError, match="no official test set; use --split coursework"):
        data.make_splits(digits, "official")
    with pytest.raises(ValueError, match="Unknown split protocol"):
        data.make_splits(digits, "random")
    with pytest.raises(ValueError, match="leave room for training"):
        data.make_splits(digits, val_fraction=0.5, test_fraction=0.5)


# ------------------------------------------------------------------ pipelines


def test_pipelines_scale_batch_and_shuffle_by_seed(digits):
    config = DataConfig(dataset="digits", batch_size=64)
    splits = data.make_splits(digits, seed=0)
    pipes = data.make_pipelines(digits, splits, config, seed=3)
    images, labels = next(iter(pipes.val))
    assert images.dtype.name == "float32" and images.shape == (64, 8, 8, 1)
    assert float(images.numpy().min()) >= 0.0 and float(images.numpy().max()) <= 1.0
    x, y = digits.pooled()
    np.testing.assert_array_equal(labels.numpy(), y[splits.val][:64])  # eval splits keep order

    def first_epoch_labels(seed):
        pipes = data.make_pipelines(digits, splits, config, seed=seed)
        return np.concatenate([batch_labels.numpy() for _, batch_labels in pipes.train])

    first = first_epoch_labels(3)
    np.testing.assert_array_equal(first, first_epoch_labels(3))
    assert not np.array_equal(first, first_epoch_labels(4))
    assert not np.array_equal(first, y[splits.train])  # shuffled
    np.testing.assert_array_equal(np.sort(first), np.sort(y[splits.train]))


def test_standardize_uses_training_statistics(digits):
    splits = data.make_splits(digits, seed=0)
    pipes = data.make_pipelines(digits, splits, DataConfig(normalization="standardize", batch_size=4096), seed=0)
    train_images = np.concatenate([images.numpy() for images, _ in pipes.train])
    assert abs(train_images.mean()) < 1e-4 and abs(train_images.std() - 1) < 1e-3
    x, _ = digits.pooled()
    assert pipes.normalization.mean[0] == pytest.approx(x[splits.train].mean() / 255)


def _square_centres(images, flip, seed=3):
    size, count = images.shape[1], len(images)
    dataset = data.from_arrays(images, np.arange(count) % 2, ["a", "b"])
    splits = data.Splits("coursework", 0, np.arange(count), np.arange(0), np.arange(0))
    pipeline = data.make_pipeline(
        dataset.x_train, dataset.y_train, data.Normalization.fit("unit", dataset.x_train), count, True, True, seed, flip
    )
    del splits
    batch = next(iter(pipeline))[0].numpy()[..., 0]
    rows, cols = np.mgrid[0:size, 0:size]
    mass = batch.sum(axis=(1, 2))
    np.testing.assert_allclose(mass, 16.0, rtol=1e-3)  # nothing lost off the edges, nothing invented
    return (batch * rows).sum(axis=(1, 2)) / mass, (batch * cols).sum(axis=(1, 2)) / mass


def test_augmentation_is_horizontal_flips_and_whole_pixel_shifts_of_at_most_ten_percent():
    """Each augmented image is its input flipped left-right or not, and moved by a whole number of pixels,
    at most 10% of the image size (2 on 28) in each direction; both flips and every shift occur. Read off
    the centre of mass of an off-centre bright square, which a flip mirrors and a shift moves."""
    size, count = 28, 512
    images = np.zeros((count, size, size), dtype=np.uint8)
    images[:, 8:12, 4:8] = 255  # centre (9.5, 5.5): away from the edges, far from the mirror axis
    row_centre, col_centre = _square_centres(images, flip=True)
    flipped = col_centre > size / 2
    col_shift = np.where(flipped, col_centre - (size - 1 - 5.5), col_centre - 5.5)
    row_shift = row_centre - 9.5
    np.testing.assert_allclose(col_shift, np.round(col_shift), atol=1e-4)  # whole pixels: no blur
    np.testing.assert_allclose(row_shift, np.round(row_shift), atol=1e-4)
    assert set(np.round(row_shift).astype(int)) == set(range(-2, 3))
    assert set(np.round(col_shift).astype(int)) == set(range(-2, 3))
    assert 0.35 < flipped.mean() < 0.65  # half the images
    # never flipped upside down: the square stays in its half of the rows
    assert (row_centre < size / 2).all()
    _, unflipped_cols = _square_centres(images, flip=False)
    assert (unflipped_cols < size / 2).all()  # flip=False (digits, mnist): shifts only


def test_augmentation_is_seeded_and_new_every_epoch():
    # one image 64 times: the shuffle cannot change a batch, only the augmentation can
    images = np.repeat(np.random.default_rng(0).integers(0, 255, size=(1, 28, 28, 1), dtype=np.uint8), 64, axis=0)
    labels = np.zeros(64, dtype=np.uint8)
    norm = data.Normalization.fit("unit", images)

    def two_epochs(seed):
        pipeline = data.make_pipeline(images, labels, norm, 64, training=True, augment=True, seed=seed)
        return [next(iter(pipeline))[0].numpy() for _ in range(2)]

    first, again = two_epochs(5), two_epochs(5)
    np.testing.assert_array_equal(first[0], again[0])
    np.testing.assert_array_equal(first[1], again[1])
    assert not np.array_equal(first[0], first[1])


def test_augmentation_only_on_training_split(digits):
    splits = data.make_splits(digits, seed=0)
    plain = data.make_pipelines(digits, splits, DataConfig(batch_size=4096), seed=0)
    augmented = data.make_pipelines(digits, splits, DataConfig(batch_size=4096, augment=True), seed=0)
    train_plain = next(iter(plain.train))[0].numpy()
    train_aug = next(iter(augmented.train))[0].numpy()
    assert not np.allclose(train_plain, train_aug)  # same shuffle order, different pixels
    np.testing.assert_array_equal(next(iter(plain.val))[0].numpy(), next(iter(augmented.val))[0].numpy())
    np.testing.assert_array_equal(next(iter(plain.test))[0].numpy(), next(iter(augmented.test))[0].numpy())


def test_debian_fashion_mnist_files():
    """The real dataset as the README's commands and CI install it (Debian dataset-fashion-mnist)."""
    folder = data.CATALOGUE["fashion_mnist"]["system_dir"]
    assert os.path.isdir(folder), "install it: apt-get install -y dataset-fashion-mnist"
    dataset = data.load_dataset("fashion_mnist", data_dir=folder)
    assert dataset.x_train.shape == (60000, 28, 28, 1) and dataset.x_test.shape == (10000, 28, 28, 1)
    assert (np.bincount(dataset.y_train) == 6000).all() and (np.bincount(dataset.y_test) == 1000).all()
    splits = data.make_splits(dataset, "official", seed=0)
    assert splits.sizes() == {"train": 54000, "val": 6000, "test": 10000}
    assert dataset.class_names[9] == "Ankle boot"


def test_select_classes_relabels_in_the_given_order(idx_folder):
    dataset = data.load_idx_dataset(str(idx_folder))
    subset = data.select_classes(dataset, (7, 2, 5))
    assert subset.class_names == (dataset.class_names[7], dataset.class_names[2], dataset.class_names[5])
    assert sorted(set(subset.y_train.tolist())) == [0, 1, 2] and sorted(set(subset.y_test.tolist())) == [0, 1, 2]
    for new, old in enumerate((7, 2, 5)):  # the same images, now under label `new`
        np.testing.assert_array_equal(subset.x_train[subset.y_train == new], dataset.x_train[dataset.y_train == old])
        np.testing.assert_array_equal(subset.x_test[subset.y_test == new], dataset.x_test[dataset.y_test == old])
    assert data.select_classes(dataset, None) is dataset
    with pytest.raises(ValueError, match="at least two different labels"):
        data.select_classes(dataset, (1, 1))
    with pytest.raises(ValueError, match=r"--classes \[10\] are not labels"):
        data.select_classes(dataset, (0, 10))


def test_train_limit_keeps_a_stratified_seeded_subset(digits):
    splits = data.make_splits(digits, seed=0)
    limited = data.limit_train(digits, splits, 200, seed=0)
    _, labels = digits.pooled()
    assert len(limited.train) == 200 and set(limited.train) <= set(splits.train)
    assert np.array_equal(limited.val, splits.val) and np.array_equal(limited.test, splits.test)
    assert np.bincount(labels[limited.train]).min() >= 19  # ~20 per class, stratified
    assert np.array_equal(data.limit_train(digits, splits, 200, seed=0).train, limited.train)
    assert not np.array_equal(data.limit_train(digits, splits, 200, seed=1).train, limited.train)
    assert data.limit_train(digits, splits, None, seed=0) is splits
    with pytest.raises(ValueError, match="below the number of classes"):
        data.limit_train(digits, splits, 5, seed=0)


def test_image_pipelines_run_without_the_tfdata_autotuner(digits):
    # tf.data's autotuner stalled training on 2 cores (docs/speed.md): every image pipeline turns it off
    splits = data.make_splits(digits, seed=0)
    pipelines = data.make_pipelines(digits, splits, DataConfig(batch_size=64, augment=True), seed=0)
    for pipeline in (pipelines.train, pipelines.val, pipelines.test):
        assert pipeline.options().autotune.enabled is False
