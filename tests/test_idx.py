import gzip

import numpy as np
import pytest

from tests.conftest import write_idx
from tfcourse.data import idx


def test_reads_gzipped_and_plain_files(tmp_path):
    images = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    np.testing.assert_array_equal(idx.read_idx(str(write_idx(tmp_path / "a.gz", images))), images)
    np.testing.assert_array_equal(idx.read_idx(str(write_idx(tmp_path / "a", images, compress=False))), images)


def test_empty_file(tmp_path):
    (tmp_path / "empty").write_bytes(b"")
    with pytest.raises(ValueError, match="empty"):
        idx.read_idx(str(tmp_path / "empty"))


def test_truncated_gzip(tmp_path):
    path = write_idx(tmp_path / "t.gz", np.ones((50, 28, 28)))
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match="corrupt or truncated"):
        idx.read_idx(str(path))


def test_truncated_payload(tmp_path):
    path = write_idx(tmp_path / "t", np.ones((5, 4, 4)), compress=False)
    path.write_bytes(path.read_bytes()[:-3])
    with pytest.raises(ValueError, match=r"declares shape \(5, 4, 4\)"):
        idx.read_idx(str(path))


def test_bad_magic_and_dtype(tmp_path):
    (tmp_path / "png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"0" * 20)
    with pytest.raises(ValueError, match="not an IDX file"):
        idx.read_idx(str(tmp_path / "png"))
    (tmp_path / "float").write_bytes(bytes([0, 0, 0x0D, 1]) + (4).to_bytes(4, "big") + b"\0" * 16)
    with pytest.raises(ValueError, match="only unsigned bytes"):
        idx.read_idx(str(tmp_path / "float"))


def test_folder_missing_file_and_count_mismatch(idx_folder):
    (idx_folder / "t10k-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(ValueError, match="lacks t10k-labels-idx1-ubyte.gz"):
        idx.load_idx_folder(str(idx_folder))
    write_idx(idx_folder / "t10k-labels-idx1-ubyte.gz", np.zeros(7))
    with pytest.raises(ValueError, match="50 images, 7 labels"):
        idx.load_idx_folder(str(idx_folder))


def test_corrupt_gzip_member(tmp_path):
    path = tmp_path / "bad.gz"
    with gzip.open(path, "wb") as handle:
        handle.write(b"\0\0\x08\x01" + (3).to_bytes(4, "big") + b"abc")
    raw = bytearray(path.read_bytes())
    raw[-8] ^= 0xFF  # corrupt the CRC-32 in the gzip trailer
    path.write_bytes(bytes(raw))
    with pytest.raises(ValueError, match="corrupt or truncated"):
        idx.read_idx(str(path))
