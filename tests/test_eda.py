"""The exploratory data analysis: every detector on data with planted answers (duplicates across
splits, a blank and a saturated image, an imbalance, an outlier, a mislabelled example, a known pixel
correlation, texture that only gradients see), the k-d tree against brute force, Sobel on a stack
against each image alone, the CLI end to end with the page in headless Chromium, bad input, and faults.
"""

import json
import math
import os
import re
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from tests.conftest import write_idx
from tfcourse import data
from tfcourse import eda as eda_cli
from tfcourse.config import DataConfig
from tfcourse.exploration import analysis, features, stats
from tfcourse.pages import browser, eda_page

needs_chromium = pytest.mark.skipif(
    browser.find_chromium() is None and os.environ.get("CI") != "true",
    reason="headless Chromium is not installed (apt-get install chromium)",
)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# ----------------------------------------------------------------------------- the planted dataset

SIZE = 16
BOX = (slice(2, 14), slice(1, 15))  # the object: rows 2..13, columns 1..14 of 16x16 on a 0 background
BAR_ROWS = (3, 7, 11)  # class k: a bright bar at this row inside the box
TRAIN_COUNTS, TEST_COUNTS = (200, 100, 50), (20, 20, 20)
CLASS_NAMES = ["0", "1", "2"]
RMS = 0.02  # the EDA's default near-duplicate threshold


def _image(label, noise):
    """Class ``label`` with the given (12, 14) noise in the box."""
    image = np.zeros((SIZE, SIZE), dtype=np.int64)
    image[BOX] = 60 + noise
    image[BAR_ROWS[label] : BAR_ROWS[label] + 2, BOX[1]] += 140
    return np.clip(image, 0, 255).astype(np.uint8)


def _noise(rng):
    return rng.integers(-25, 26, size=(12, 14))


def _rms(a, b):
    return float(np.sqrt(np.mean((a.astype(np.float64) / 255 - b.astype(np.float64) / 255) ** 2)))


def _sibling(label, noise, rng, low, high):
    """Class ``label`` with ``noise`` drawn afresh pixel by pixel until the image differs from the
    original by an RMS in (low, high): a new sample of the class, exactly as noisy as any other."""
    original, fresh = _image(label, noise), noise.copy()
    for k in range(fresh.size):
        fresh.flat[k] = rng.integers(-25, 26)
        if low < _rms(_image(label, fresh), original) < high:
            return _image(label, fresh)
    raise AssertionError("could not reach the RMS band")


def planted_dataset(seed=0):
    """Three classes of 16x16 images (200/100/50 official training, 20/20/20 test) and what was planted,
    by position in ``Dataset.pooled()`` (training images first, then test)."""
    rng = np.random.default_rng(seed)
    y_train = np.repeat(np.arange(3), TRAIN_COUNTS)
    y_test = np.repeat(np.arange(3), TEST_COUNTS)
    noise = [_noise(rng) for _ in y_train]
    x_train = np.stack([_image(c, e) for c, e in zip(y_train, noise)])
    x_test = np.stack([_image(c, _noise(rng)) for c in y_test])
    n = len(x_train)
    x_test[0] = x_train[10]  # byte-identical across train/test
    x_test[1] = _sibling(0, noise[11], rng, 0.008, 0.014)  # a near duplicate of train 11 in test
    x_test[2] = _sibling(0, noise[12], rng, 0.025, 0.03)  # just above the threshold: not a near duplicate
    x_train[20] = 0  # blank (class 0)
    x_train[300][BOX] = 255  # saturated: 168 of 256 pixels at 255 (class 2)
    x_train[310] = _image(0, _noise(rng))  # labelled 2, looks like class 0
    x_train[250] = _image(1, 4 * _noise(rng))  # an outlier of class 1: four times the noise
    planted = {
        "exact": [10, n + 0],
        "near": [11, n + 1],
        "just_above": [12, n + 2],
        "blank": 20,
        "saturated": 300,
        "mislabelled": 310,
        "outlier": 250,
    }
    return x_train[..., None], y_train, x_test[..., None], y_test, planted


def write_planted(folder):
    x_train, y_train, x_test, y_test, planted = planted_dataset()
    folder.mkdir()
    write_idx(folder / "train-images-idx3-ubyte.gz", x_train[..., 0])
    write_idx(folder / "train-labels-idx1-ubyte.gz", y_train)
    write_idx(folder / "t10k-images-idx3-ubyte.gz", x_test[..., 0])
    write_idx(folder / "t10k-labels-idx1-ubyte.gz", y_test)
    return planted


SMALL = ["--split", "official", "--tsne-samples", "200", "--classifier-examples", "300"]


@pytest.fixture(scope="module")
def planted_run(tmp_path_factory):
    """The CLI on the planted dataset (IDX files, official split), with the Chromium check where Chromium
    is installed: ``(out_dir, planted, stdout, folder)``."""
    root = tmp_path_factory.mktemp("eda")
    folder = root / "planted"
    planted = write_planted(folder)
    out = root / "eda-planted"
    check = ["--check"] if browser.find_chromium() or os.environ.get("CI") == "true" else []
    result = subprocess.run(
        [sys.executable, "-m", "tfcourse.eda", "--dataset", str(folder), "--output-dir", str(out)] + SMALL + check,
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2"),
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return out, planted, result.stdout, folder


@pytest.mark.slow
def test_the_analysis_finds_exactly_what_was_planted(planted_run):
    out, planted, stdout, folder = planted_run
    saved = json.loads((out / "eda.json").read_text())
    sections = saved["sections"]
    dataset, splits = data.load_splits(DataConfig(dataset=str(folder), split="official"), 42)
    split_of = stats.split_of(len(dataset.pooled()[1]), {"train": splits.train, "val": splits.val, "test": splits.test})

    # 1. the 4:1 imbalance of the official training set (90% of it is the train split, stratified)
    train = sections["classes"]["balance"]["train"]
    assert sections["classes"]["counts"]["train"] == {"0": 180, "1": 90, "2": 45}
    assert train["max_min_ratio"] == 4.0 and not train["balanced"]
    shares = np.array([4, 2, 1]) / 7
    assert train["relative_entropy"] == pytest.approx(-(shares * np.log(shares)).sum() / math.log(3))
    assert sections["classes"]["balance"]["test"]["balanced"]

    # 3. the object box leaves 2 rows top and bottom, 1 column left and right; the blank image has none
    dims = sections["dimensions"]
    assert dims["margin_all"] == {"top": 2, "bottom": 2, "left": 1, "right": 1}
    assert dims["empty_images"] == 1 and dims["all_same_size"] and dims["background"] == [0]
    assert dims["box_median"] == {"height": 12.0, "width": 14.0}

    # 6. one byte-identical pair and one near-duplicate pair, both across train/test; the pair just
    # above the threshold is not reported
    exact, near = sections["duplicates"]["exact"], sections["duplicates"]["near"]
    assert exact["groups"] == 1 and exact["listed"][0]["indices"] == planted["exact"]
    assert exact["listed"][0]["splits"] == [split_of[i] for i in planted["exact"]] == ["train", "test"]
    assert exact["groups_train_test"] == 1 and exact["groups_with_conflicting_labels"] == 0
    assert near["pairs"] == 1 and near["listed"][0]["indices"] == planted["near"]
    assert near["by_splits"] == {"train-test": 1} and near["pairs_train_test"] == 1
    x, _ = dataset.pooled()
    assert near["listed"][0]["rms"] == pytest.approx(_rms(x[planted["near"][0]], x[planted["near"][1]]), rel=1e-5)
    assert _rms(x[planted["just_above"][0]], x[planted["just_above"][1]]) > RMS  # the control is real

    anomalies = sections["anomalies"]
    assert anomalies["blank_saturated"]["blank_indices"] == [planted["blank"]]
    assert anomalies["blank_saturated"]["saturated_indices"] == [planted["saturated"]]
    # outliers: the noisy one, and the blank, saturated and mislabelled images (far from their class mean)
    outlying = {o["index"] for o in anomalies["outliers"]["listed"]}
    assert outlying == {planted[k] for k in ("outlier", "blank", "saturated", "mislabelled")}
    # the one image whose neighbours carry another label is the mislabelled one, and they say class 0
    neighbours = sections["neighbours"]
    assert neighbours["suspects"] == 1
    assert neighbours["listed"] == [
        {"index": planted["mislabelled"], "label": "2", "neighbours_say": "0", "share": 1.0}
    ]

    # 10. the implications follow from these numbers
    implications = " ".join(saved["implications"])
    assert "Imbalanced: 0 has 4.0x the training examples of 2" in implications
    assert "1 groups of byte-identical images (1 across splits) and 1 near-duplicate pairs" in implications
    assert "2 test images have a byte-identical or near-identical twin in the training split" in implications
    assert exact["test_images_with_a_train_copy"] == [planted["exact"][1]]
    assert near["test_images_with_a_train_twin"] == [planted["near"][1]]
    assert "1 nearly blank and 1 saturated images" in implications
    assert "check by eye: flip" in implications  # an unknown folder: whether a mirror keeps the label is unknown

    # progress for every section, then the page: every figure the Markdown links exists and is in the HTML
    for k in range(1, 12):
        assert f"tfcourse.eda: [{k}/11]" in stdout
    markdown = (out / "eda.md").read_text()
    page = (out / "eda.html").read_text()
    linked = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", markdown)
    assert len(linked) >= 12 and all((out / path).is_file() for path in linked)
    assert page.count('src="data:image/png;base64,') == len(linked)
    for section in ("Implications", "1. Class distribution", "6. Noise and anomalies", "9. Embedding"):
        assert f"## {section}" in markdown
    assert set(saved["timings"]) == {key for key, _ in analysis.SECTIONS}
    assert not [p for p in os.listdir(out.parent) if ".partial-" in p]


@needs_chromium
@pytest.mark.slow
def test_the_page_opens_in_headless_chromium(planted_run):
    """``--check`` ran in the fixture (it exits 2 otherwise); here the same check once more, counted."""
    out, _, stdout, _ = planted_run
    assert re.search(r"tfcourse.eda: Chromium: (\d+)/\1 images loaded, 0 console errors", stdout)
    result = browser.check_page(str(out / "eda.html"))
    assert result["ok"] and result["images"] >= 12, result["problems"]


# ----------------------------------------------------------------------------- one detector at a time


def test_near_duplicates_equal_the_brute_force_answer():
    """The k-d tree over 16 PCA components finds exactly the pairs a full pairwise comparison finds,
    with pairs planted on both sides of the threshold; byte-identical pairs are left to the exact check."""
    rng = np.random.default_rng(1)
    base = rng.random((400, 64)).astype(np.float32)
    vectors = [base]
    for k, target in enumerate(np.linspace(0.005, 0.04, 60)):  # a copy of image k at this RMS distance
        step = rng.standard_normal(64).astype(np.float32)
        vectors.append(base[k] + step * target / np.sqrt(np.mean(step**2)))
    vectors.append(base[100:103])  # three exact copies
    vectors = np.concatenate([np.atleast_2d(v) for v in vectors]).astype(np.float32)
    n = len(vectors)
    group_of = np.arange(n)
    group_of[-3:] = [100, 101, 102]
    pca = stats.fit_pca(vectors)
    projected = pca.transform(vectors)[:, :16].astype(np.float64)
    y = np.zeros(n, dtype=np.int64)
    splits = np.array(["train"] * 400 + ["test"] * (n - 400), dtype=object)
    found = stats.near_duplicates(vectors, projected, y, splits, ["a"], rms=RMS, group_of=group_of, top=1000)

    from scipy.spatial.distance import pdist, squareform

    distance = squareform(pdist(vectors.astype(np.float64))) / np.sqrt(vectors.shape[1])
    i, j = np.nonzero(np.triu(distance <= RMS, k=1))
    expected = {(a, b) for a, b in zip(i.tolist(), j.tolist()) if group_of[a] != group_of[b]}
    assert len(expected) == int(np.sum(np.linspace(0.005, 0.04, 60) <= RMS))  # only the planted ones
    assert {tuple(p["indices"]) for p in found["numbers"]["listed"]} == expected
    assert found["numbers"]["pairs"] == len(expected) == found["numbers"]["by_splits"]["train-test"]
    assert found["numbers"]["test_images_with_a_train_twin"] == sorted({b for a, b in expected})
    assert found["numbers"]["candidates_checked"] < n * (n - 1) / 20  # the tree prunes


def test_exact_duplicates_group_by_bytes():
    rng = np.random.default_rng(2)
    x = rng.integers(0, 256, size=(30, 5, 4, 3), dtype=np.uint8)
    x[7] = x[3]
    x[19] = x[3]  # a group of three, one in test with another label
    x[12] = x[5]
    x[13] = x[5].copy()
    x[13, -1, -1, -1] ^= 1  # one bit apart, in the last byte: not byte-identical
    y = np.zeros(30, dtype=np.int64)
    y[19] = 1
    splits = np.array(["train"] * 20 + ["test"] * 10, dtype=object)
    splits[19] = "test"
    found = stats.exact_duplicates(x, y, splits, ["a", "b"])["numbers"]
    assert found["groups"] == 2 and found["images_in_groups"] == 5
    assert [g["indices"] for g in found["listed"]] == [[3, 7, 19], [5, 12]]
    assert found["groups_across_splits"] == found["groups_train_test"] == 1
    assert found["groups_with_conflicting_labels"] == 1


def test_correlation_of_two_by_two_blocks():
    """Images of independent 2x2 blocks: pixels in one block correlate 1, others 0, so the mean
    correlation at each (rounded) pixel distance is the share of pixel pairs sharing a block, and the 16
    blocks of an 8x8 image are exactly 16 PCA components of equal variance."""
    rng = np.random.default_rng(3)
    blocks = rng.random((20000, 4, 4)).astype(np.float32)
    vectors = np.repeat(np.repeat(blocks, 2, axis=1), 2, axis=2).reshape(20000, 64)
    pca = stats.fit_pca(vectors)
    result = stats.correlation(vectors, (8, 8), pca)["numbers"]
    same, total = {}, {}
    for a in range(64):
        for b in range(64):
            if a != b:
                (ra, ca), (rb, cb) = divmod(a, 8), divmod(b, 8)
                d = round(math.hypot(ra - rb, ca - cb))
                total[d] = total.get(d, 0) + 1
                same[d] = same.get(d, 0) + (ra // 2 == rb // 2 and ca // 2 == cb // 2)
    for d, value in result["by_distance"].items():
        assert value == pytest.approx(same.get(d, 0) / total[d], abs=0.01), d
    assert result["neighbour_correlation"] == pytest.approx(same[1] / total[1], abs=0.01)
    assert result["pca_components_for"] == {"0.9": 15, "0.95": 16, "0.99": 16}
    assert result["pca_first_ratios"] == pytest.approx([1 / 16] * 10, abs=0.005)


def test_correlation_by_distance_of_rows_with_a_known_correlation():
    """Rows of stationary AR(1) noise along the columns (coefficient 0.8), rows independent: two pixels
    correlate 0.8^|column difference| in one row and 0 across rows. The mean at each pixel distance
    (rounded) follows from that, pair by pair."""
    rng = np.random.default_rng(9)
    count, side, rho = 20000, 8, 0.8
    rows = np.empty((count, side, side))
    rows[:, :, 0] = rng.standard_normal((count, side))
    for c in range(1, side):
        rows[:, :, c] = rho * rows[:, :, c - 1] + math.sqrt(1 - rho**2) * rng.standard_normal((count, side))
    vectors = rows.reshape(count, side * side).astype(np.float32)
    result = stats.correlation(vectors, (side, side), stats.fit_pca(vectors))["numbers"]
    sums, total = {}, {}
    for a in range(side * side):
        for b in range(side * side):
            if a != b:
                (ra, ca), (rb, cb) = divmod(a, side), divmod(b, side)
                d = round(math.hypot(ra - rb, ca - cb))
                total[d] = total.get(d, 0) + 1
                sums[d] = sums.get(d, 0.0) + (rho ** abs(ca - cb) if ra == rb else 0.0)
    expected = {d: sums[d] / total[d] for d in total}
    assert set(result["by_distance"]) == set(expected)
    for d, value in result["by_distance"].items():
        assert value == pytest.approx(expected[d], abs=0.01), d
    assert result["distance_below_0.5"] == min(d for d in expected if d > 0 and expected[d] < 0.5)
    assert result["neighbour_correlation"] == pytest.approx(expected[1], abs=0.01)


def test_class_distribution_names_a_missing_class():
    y = np.array([0] * 8 + [1] * 2 + [0] * 5 + [1] * 5)
    result = stats.class_distribution(y, ["a", "b", "c"], {"train": np.arange(10), "test": np.arange(10, 20)})
    assert result["balance"]["train"]["max_min_ratio"] == 4.0
    assert result["balance"]["train"]["missing_classes"] == ["c"] and not result["balance"]["test"]["balanced"]
    assert result["shares"]["train"] == {"a": 0.8, "b": 0.2, "c": 0.0}
    assert result["balance"]["train"]["relative_entropy"] == pytest.approx(
        0.5004024 / 1.0986123, abs=1e-6
    )  # H(0.8, 0.2) / ln 3, in nats


def test_sobel_on_a_stack_equals_each_image_alone():
    """The stack's Sobel magnitude of each image is SciPy's 2-D Sobel of that image alone: nothing leaks
    from the neighbouring images of the stack."""
    from scipy import ndimage

    rng = np.random.default_rng(4)
    stack = rng.random((5, 9, 7)).astype(np.float32)
    together = features.sobel_magnitude(stack)
    for image, magnitude in zip(stack, together):
        alone = np.hypot(ndimage.sobel(image, axis=1, mode="nearest"), ndimage.sobel(image, axis=0, mode="nearest"))
        np.testing.assert_allclose(magnitude, alone, rtol=1e-5, atol=1e-6)


def test_gradient_features_see_texture_that_raw_pixels_cannot():
    """Horizontal against vertical stripes at a random phase: a linear model on raw pixels is near
    chance (every pixel averages out over the phase), on HOG + Sobel it is near perfect."""
    rng = np.random.default_rng(5)
    n, size = 600, 16
    y = np.arange(n) % 2
    phase = rng.uniform(0, 2 * np.pi, n)
    grid = np.arange(size)
    images = np.empty((n, size, size))
    for k in range(n):
        wave = 0.5 + 0.5 * np.sin(2 * np.pi * grid / 4 + phase[k])
        images[k] = wave[:, None] * np.ones(size) if y[k] else wave[None, :] * np.ones((size, 1))
    x = (images * 255).round().astype(np.uint8)[..., None]
    result = features.feature_comparison(x, y, np.arange(400), np.arange(400, 600), train_examples=400, seed=0)
    accuracy = {k: v["val_accuracy"] for k, v in result["numbers"]["results"].items()}
    assert accuracy["raw pixels"] < 0.7 and accuracy["HOG + Sobel"] > 0.95 and accuracy["both"] > 0.95
    assert result["numbers"]["best"] != "raw pixels"


def test_edge_density_counts_edge_pixels():
    image = np.zeros((1, 10, 10), dtype=np.float32)
    image[0, :, 5:] = 1.0  # one vertical step: Sobel magnitude 4 on columns 4 and 5, 0 elsewhere
    result = features.edge_statistics(image, np.array([0]), ["a"])
    assert result["numbers"]["edge_density"] == {"a": pytest.approx(0.2)}


def test_outliers_by_robust_z_within_the_class():
    rng = np.random.default_rng(6)
    vectors = rng.normal(0.5, 0.05, size=(200, 25)).astype(np.float32)
    vectors[[17, 150]] = 1.0  # far from either class mean
    y = np.repeat([0, 1], 100)
    found = stats.outliers(vectors, y, np.arange(200), ["a", "b"])["numbers"]
    assert {o["index"] for o in found["listed"]} == {17, 150} and found["per_class"] == {"a": 1, "b": 1}


def test_image_folder_sizes_before_resizing(tmp_path):
    from PIL import Image

    rng = np.random.default_rng(7)
    for name, sizes in (("cat", [(12, 10)] * 5), ("dog", [(20, 16)] * 3 + [(12, 10)])):
        (tmp_path / name).mkdir()
        for i, (h, w) in enumerate(sizes):
            Image.fromarray(rng.integers(0, 255, (h, w, 3), dtype=np.uint8)).save(tmp_path / name / f"{i}.png")
    dataset = data.load_image_folder(str(tmp_path), image_size=(8, 8))
    x, y = dataset.pooled()
    result = stats.dimensions(x, y, dataset.class_names, np.arange(len(x)), dataset.original_sizes)["numbers"]
    assert result["stored_shape"] == [8, 8, 3] and not result["all_same_size"]
    assert result["original_sizes"]["most_common"] == [
        {"height": 12, "width": 10, "images": 6},
        {"height": 20, "width": 16, "images": 3},
    ]
    assert result["original_sizes"]["height_range"] == [12, 20]


def test_flip_is_refused_for_digits_and_kept_for_clothing():
    from sklearn.linear_model import LogisticRegression

    x = np.random.default_rng(8).integers(0, 255, (40, 8, 8, 1), dtype=np.uint8)
    x[:, :, :4] = 0  # the left half empty: a mirrored image differs
    y = np.arange(40) % 2
    model = LogisticRegression().fit(x.reshape(40, -1) / 255.0, y)
    margins = np.zeros((40, 4), dtype=np.int64)
    verdicts = {}
    for name in ("digits", "fashion_mnist"):
        result = features.augmentation_check(x, y, ["a", "b"], np.arange(40), model, name, margins, scored=40)
        verdicts[name] = result["numbers"]["augmentations"]["flip"]["label_preserving"]
        flipped, original = result["arrays"]["augmented"]["flip"], result["arrays"]["original"]
        mirrored = [np.array_equal(f, o[:, ::-1]) for f, o in zip(flipped, original)]
        unchanged = [np.array_equal(f, o) for f, o in zip(flipped, original)]
        assert all(m or u for m, u in zip(mirrored, unchanged)) and any(mirrored)  # the pipeline's own flip
    assert verdicts == {"digits": "no", "fashion_mnist": "yes"}


# ----------------------------------------------------------------------------- the CLI: bad input and faults


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--near-duplicate-rms", "0"], "must be a positive number"),
        (["--label-error-share", "1.5"], "must be a fraction"),
        (["--tsne-samples", "-3"], "must be a positive integer"),
        (["--dataset", "no/such/folder"], "no/such/folder"),
    ],
)
def test_bad_input_exits_2_and_writes_nothing(argv, message, tmp_path, capsys):
    out = tmp_path / "eda"
    with pytest.raises(SystemExit) as done:
        eda_cli.main(argv + ["--output-dir", str(out), "--quiet"])
    assert done.value.code == 2
    assert message in capsys.readouterr().err
    assert os.listdir(tmp_path) == []


def test_a_folder_that_is_not_an_eda_folder_is_left_alone(tmp_path, capsys):
    out = tmp_path / "mine"
    out.mkdir()
    (out / "notes.txt").write_text("keep me")
    with pytest.raises(SystemExit) as done:
        eda_cli.main(["--dataset", "digits", "--output-dir", str(out), "--quiet"])
    assert done.value.code == 2
    assert "is not an EDA folder" in capsys.readouterr().err
    assert os.listdir(out) == ["notes.txt"] and (out / "notes.txt").read_text() == "keep me"


@pytest.mark.slow
def test_a_failure_while_writing_keeps_the_earlier_page_and_leaves_no_partial(
    planted_run, tmp_path, monkeypatch, capsys
):
    _, _, _, folder = planted_run
    out = tmp_path / "eda"
    assert eda_cli.main(["--dataset", str(folder), "--output-dir", str(out), "--quiet"] + SMALL) == 0
    before = (out / "eda.json").read_bytes()

    def full_disk(*args, **kwargs):
        raise OSError(28, "No space left on device", str(out / "figures"))

    monkeypatch.setattr(eda_page, "write_pages", full_disk)
    with pytest.raises(SystemExit) as done:
        eda_cli.main(["--dataset", str(folder), "--output-dir", str(out), "--quiet", "--seed", "7"] + SMALL)
    assert done.value.code == 2
    assert "No space left on device" in capsys.readouterr().err
    assert (out / "eda.json").read_bytes() == before  # the earlier EDA is whole
    assert sorted(os.listdir(tmp_path)) == ["eda"]  # no partial folder, no old copy


@pytest.mark.slow
def test_kill_9_while_drawing_leaves_nothing_that_looks_finished(planted_run, tmp_path):
    _, _, _, folder = planted_run
    out = tmp_path / "eda"
    command = [sys.executable, "-m", "tfcourse.eda", "--dataset", str(folder), "--output-dir", str(out)] + SMALL
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, cwd=ROOT)
    for line in process.stdout:
        if line.startswith("tfcourse.eda: figures ..."):
            time.sleep(0.5)
            process.send_signal(signal.SIGKILL)
            break
    process.wait(timeout=60)
    assert process.returncode == -signal.SIGKILL
    assert not out.exists()
    leftovers = [p for p in os.listdir(tmp_path) if ".partial-" in p]
    assert len(leftovers) <= 1  # the dead run's hidden partial, if it got that far
    assert eda_cli.main(["--dataset", str(folder), "--output-dir", str(out), "--quiet"] + SMALL) == 0
    assert sorted(os.listdir(tmp_path)) == ["eda"]  # the rerun swept it
    assert (out / "eda.html").is_file()


@pytest.mark.slow
def test_a_tfds_source_through_mock_data(tmp_path, capsys):
    """``tfds:mnist`` (tfds's mock data: no download): the whole EDA runs on a tfds source, and the flip
    verdict is the catalogue's for mnist (a mirrored digit is not its class)."""
    import tensorflow_datasets as tfds

    out = tmp_path / "eda"
    with tfds.testing.mock_data(num_examples=300):
        argv = ["--dataset", "tfds:mnist", "--output-dir", str(out), "--quiet"] + SMALL
        assert eda_cli.main(argv) == 0
    saved = json.loads((out / "eda.json").read_text())
    assert saved["header"]["examples"] == 600 and saved["header"]["split_sizes"]["test"] == 300
    assert saved["sections"]["augmentation"]["augmentations"]["flip"]["label_preserving"] == "no"
    assert "not: flip" in " ".join(saved["implications"])


def test_check_without_a_browser_is_refused_before_any_work(tmp_path, monkeypatch, capsys):
    """``--check`` with no Chromium on the PATH: exit 2 naming the Debian packages before the analysis
    starts (no section ran), and nothing written."""
    monkeypatch.setenv(browser.ENV_BINARY, "no-such-chromium")
    out = tmp_path / "eda"
    with pytest.raises(SystemExit) as done:
        eda_cli.main(["--dataset", "digits", "--output-dir", str(out), "--check"])
    assert done.value.code == 2
    err = capsys.readouterr()
    assert "apt-get install chromium" in err.err and "[1/11]" not in err.out
    assert os.listdir(tmp_path) == []
