"""Tests of bench/datasets.py that need no network: few_shot, the idx parser, argument checks.

The Fashion-MNIST shape check runs only where the Debian package's files are already installed.
"""

from __future__ import annotations

import gzip
import struct
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench import datasets  # noqa: E402
from bench.datasets import few_shot, read_idx  # noqa: E402


@pytest.fixture(autouse=True)
def _cache_in_tmp(tmp_path, monkeypatch):
    monkeypatch.setenv(datasets.CACHE_ENV, str(tmp_path / "cache"))


# --------------------------------------------------------------------------- few_shot


def test_few_shot_is_stratified_and_deterministic():
    y = np.repeat(np.arange(4), [10, 20, 5, 7])
    idx = few_shot(y, per_class=3, seed=0)
    assert idx.dtype == np.int64
    assert len(idx) == 12 and len(set(idx.tolist())) == 12
    assert np.all(np.diff(idx) > 0)  # sorted, no duplicates
    assert np.bincount(y[idx]).tolist() == [3, 3, 3, 3]
    assert np.array_equal(idx, few_shot(y, per_class=3, seed=0))
    assert np.array_equal(idx, few_shot(list(y), per_class=3, seed=0))


def test_few_shot_seed_changes_the_sample():
    y = np.repeat(np.arange(3), 50)
    samples = {tuple(few_shot(y, 5, seed)) for seed in range(5)}
    assert len(samples) > 1


def test_few_shot_string_labels_and_exact_class_size():
    y = np.array(["cat", "dog", "cat", "dog", "bird", "bird"])
    idx = few_shot(y, per_class=2, seed=1)
    assert sorted(idx.tolist()) == [0, 1, 2, 3, 4, 5]


def test_few_shot_names_the_short_class():
    y = np.array(["a"] * 5 + ["b"] * 2 + ["c"] * 5)
    with pytest.raises(ValueError, match=r"class 'b' has 2"):
        few_shot(y, per_class=3, seed=0)


@pytest.mark.parametrize("per_class", [0, -1, 1.5, True])
def test_few_shot_rejects_bad_per_class(per_class):
    with pytest.raises(ValueError, match="per_class"):
        few_shot(np.array([0, 1, 0, 1]), per_class=per_class, seed=0)


def test_few_shot_rejects_bad_y():
    with pytest.raises(ValueError, match="one-dimensional"):
        few_shot(np.zeros((2, 2)), 1, 0)
    with pytest.raises(ValueError, match="empty"):
        few_shot([], 1, 0)


# --------------------------------------------------------------------------- idx parser


def _idx_bytes(array: np.ndarray, type_byte: int = 0x08) -> bytes:
    header = bytes([0, 0, type_byte, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    return header + array.tobytes()


@pytest.mark.parametrize("compress", [False, True])
def test_read_idx_images_and_labels(tmp_path, compress):
    images = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    labels = np.array([7, 3], dtype=np.uint8)
    write = gzip.compress if compress else (lambda b: b)
    (tmp_path / "img.idx").write_bytes(write(_idx_bytes(images)))
    (tmp_path / "lab.idx").write_bytes(write(_idx_bytes(labels)))
    got = read_idx(tmp_path / "img.idx", expected_ndim=3)
    assert got.dtype == np.uint8 and got.shape == (2, 3, 4)
    assert np.array_equal(got, images)
    got.flags.writeable = True  # a real, writable copy, not a view on the file bytes
    assert np.array_equal(read_idx(tmp_path / "lab.idx", expected_ndim=1), labels)


def test_read_idx_big_endian_int32(tmp_path):
    values = np.array([[1, -2], [70000, 3]], dtype=">i4")
    (tmp_path / "x.idx").write_bytes(_idx_bytes(values, type_byte=0x0C))
    got = read_idx(tmp_path / "x.idx")
    assert got.tolist() == [[1, -2], [70000, 3]]
    assert got.dtype.isnative


def test_read_idx_rejects_bad_magic(tmp_path):
    data = bytearray(_idx_bytes(np.zeros((2, 2), dtype=np.uint8)))
    data[0] = 1
    (tmp_path / "bad.idx").write_bytes(bytes(data))
    with pytest.raises(ValueError, match="magic"):
        read_idx(tmp_path / "bad.idx")
    data[0], data[2] = 0, 0x42  # unknown type byte
    (tmp_path / "bad.idx").write_bytes(bytes(data))
    with pytest.raises(ValueError, match="magic"):
        read_idx(tmp_path / "bad.idx")


def test_read_idx_rejects_truncated_and_wrong_ndim(tmp_path):
    data = _idx_bytes(np.zeros((3, 4), dtype=np.uint8))
    (tmp_path / "short.idx").write_bytes(data[:-1])
    with pytest.raises(ValueError, match="data bytes"):
        read_idx(tmp_path / "short.idx")
    (tmp_path / "ok.idx").write_bytes(data)
    with pytest.raises(ValueError, match="expected 3"):
        read_idx(tmp_path / "ok.idx", expected_ndim=3)
    (tmp_path / "tiny.idx").write_bytes(b"\x00\x00")
    with pytest.raises(ValueError, match="too short"):
        read_idx(tmp_path / "tiny.idx")


# --------------------------------------------------------------------------- argument checks


def test_vader_unknown_domain_suggests_a_close_match():
    with pytest.raises(ValueError, match=r"movie, tweets, amazon, nyt.*Did you mean 'tweets'"):
        datasets.vader("tweet")


def test_fashion_mnist_rejects_unknown_split():
    with pytest.raises(ValueError, match="'train' or 'test'"):
        datasets.fashion_mnist("validation")


def test_fashion_mnist_missing_files_as_non_root_says_how_to_install(tmp_path, monkeypatch):
    monkeypatch.setattr(datasets, "FASHION_MNIST_DIR", tmp_path / "nowhere")
    monkeypatch.setattr(datasets.os, "geteuid", lambda: 1000)
    with pytest.raises(FileNotFoundError, match="apt-get install -y dataset-fashion-mnist"):
        datasets.fashion_mnist("test")


def test_cache_folder_follows_env(tmp_path):
    assert datasets.data_dir() == tmp_path / "cache"
    assert (tmp_path / "cache").is_dir()


# --------------------------------------------------------------------------- real data, if present

_FASHION_TEST_FILES = [datasets.FASHION_MNIST_DIR / n for n in datasets._FASHION_FILES["test"]]


@pytest.mark.skipif(
    not all(p.is_file() for p in _FASHION_TEST_FILES),
    reason="Debian package dataset-fashion-mnist not installed "
    "(apt-get install -y dataset-fashion-mnist)",
)
def test_fashion_mnist_test_split_shapes(tmp_path):
    X, y = datasets.fashion_mnist("test")
    assert X.shape == (10000, 28, 28) and X.dtype == np.uint8
    assert y.shape == (10000,) and y.dtype == np.int64
    assert np.bincount(y).tolist() == [1000] * 10
    X2, y2 = datasets.fashion_mnist("test")  # from the .npz cache
    assert (tmp_path / "cache" / "fashion_mnist_test.npz").is_file()
    assert np.array_equal(X, X2) and np.array_equal(y, y2)
