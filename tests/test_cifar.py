"""CIFAR-10 from the binary archive: a small archive in the official format, built here; checksum, errors,
download through the shared machinery, and the crop-and-flip augmentation."""
from __future__ import annotations

import numpy as np
import pytest

from tinyqnn.data import CIFAR10, ChecksumError, CIFARFormatError, DataLoader, DatasetNotFoundError, RandomCropFlip
from tinyqnn.data import cifar, sources


def make_splits(rng, per_batch=3, test=4):
    splits = {}
    for name in cifar.TRAIN_MEMBERS:
        splits[name] = (rng.integers(0, 256, (per_batch, 3, 32, 32), dtype=np.uint8), rng.integers(0, 10, per_batch))
    splits["test_batch.bin"] = (rng.integers(0, 256, (test, 3, 32, 32), dtype=np.uint8), rng.integers(0, 10, test))
    return splits


@pytest.fixture
def archive(tmp_path, rng, monkeypatch):
    """A small archive in the official layout, accepted as if it were the official one (its MD5 patched in)."""
    splits = make_splits(rng)
    path = cifar.write_archive(tmp_path / "data" / "cifar10" / cifar.ARCHIVE, splits)
    monkeypatch.setattr(cifar, "ARCHIVE_MD5", cifar.md5_of(path))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.delenv("TINYQNN_DATA", raising=False)
    return path, splits


def test_reads_both_splits_record_by_record(archive):
    path, splits = archive
    train, test = CIFAR10(path.parent.parent, train=True), CIFAR10(path, train=False)
    expected = np.concatenate([splits[n][0] for n in cifar.TRAIN_MEMBERS])
    np.testing.assert_array_equal(train.images, expected)
    np.testing.assert_array_equal(train.labels, np.concatenate([splits[n][1] for n in cifar.TRAIN_MEMBERS]))
    np.testing.assert_array_equal(test.images, splits["test_batch.bin"][0])
    x, y = test[np.arange(4)]
    assert x.shape == (4, 3, 32, 32) and x.dtype == np.float32 and y.dtype == np.int64
    red = (splits["test_batch.bin"][0][:, 0] / 255.0 - 0.4914) / 0.2023
    np.testing.assert_allclose(x[:, 0], red, rtol=1e-6)
    x0, y0 = test[2]
    assert x0.shape == (3, 32, 32) and y0 == splits["test_batch.bin"][1][2]
    batches = list(DataLoader(train, batch_size=4))
    assert [b[0].shape[0] for b in batches] == [4, 4, 4, 3]


def test_pixel_layout_is_red_green_blue_planes_row_major(tmp_path, monkeypatch):
    """Byte 1 + 1024*c + 32*row + col of a record is channel c, pixel (row, col)."""
    record = np.zeros(cifar.RECORD, np.uint8)
    record[0] = 7
    record[1 + 1024 * 2 + 32 * 5 + 9] = 200  # blue, row 5, column 9
    raw = np.tile(record, (1, 1))
    images = raw[:, 1:].reshape(1, 3, 32, 32)
    path = cifar.write_archive(tmp_path / "a.tar.gz", {n: (images, raw[:, 0]) for n in cifar.TRAIN_MEMBERS})
    ds = CIFAR10(path, verify=False)
    assert ds.labels[0] == 7 and ds.images[0, 2, 5, 9] == 200 and ds.images.sum() == 5 * 200


def test_an_archive_that_is_not_the_official_one_is_refused(archive, monkeypatch):
    path, _ = archive
    monkeypatch.setattr(cifar, "ARCHIVE_MD5", "c32a1d4ab5d03f1284b67883e8d87530")
    with pytest.raises(ChecksumError, match="c32a1d4ab5d03f1284b67883e8d87530.*verify=False"):
        CIFAR10(path)
    assert len(CIFAR10(path, verify=False)) == 15  # the same format, read on purpose


@pytest.mark.parametrize("damage", ["truncated", "garbage", "short member", "missing member", "bad label"])
def test_damaged_archives_give_one_clear_error(tmp_path, rng, damage):
    splits = make_splits(rng)
    path = tmp_path / "a.tar.gz"
    if damage == "short member":
        images, labels = splits["data_batch_3.bin"]
        cifar.write_archive(path, splits)
        import io
        import tarfile
        with tarfile.open(path, "w:gz") as tar:  # rewrite with one member cut short by 10 bytes
            for name, (im, lb) in splits.items():
                data = np.concatenate([np.asarray(lb, np.uint8)[:, None], im.reshape(len(im), -1)], 1).tobytes()
                data = data[:-10] if name == "data_batch_3.bin" else data
                info = tarfile.TarInfo(f"cifar-10-batches-bin/{name}")
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
        expected = "data_batch_3.bin has 9209 bytes, not a whole number of 3073-byte records"
    elif damage == "missing member":
        del splits["data_batch_5.bin"]
        cifar.write_archive(path, splits)
        expected = "member cifar-10-batches-bin/data_batch_5.bin is missing"
    elif damage == "bad label":
        splits["data_batch_1.bin"] = (splits["data_batch_1.bin"][0], np.array([1, 12, 3]))
        cifar.write_archive(path, splits)
        expected = "label 12 is outside 0..9"
    else:
        cifar.write_archive(path, splits)
        data = path.read_bytes()
        path.write_bytes(data[: len(data) // 2] if damage == "truncated" else b"not a tar at all" * 100)
        expected = "is not a readable cifar-10-binary.tar.gz"
    with pytest.raises(CIFARFormatError, match=expected):
        CIFAR10(path, verify=False)


def test_missing_data_lists_every_source(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.delenv("TINYQNN_DATA", raising=False)
    with pytest.raises(DatasetNotFoundError, match="does not exist"):
        CIFAR10(tmp_path / "typo")
    with pytest.raises(DatasetNotFoundError, match=r"(?s)root argument: not given.*user cache.*download: not attempted"):
        CIFAR10(download=False)


def test_download_goes_through_the_verified_atomic_machinery(tmp_path, rng, monkeypatch):
    good = cifar.write_archive(tmp_path / "src.tar.gz", make_splits(rng))
    monkeypatch.setattr(cifar, "ARCHIVE_MD5", cifar.md5_of(good))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.delenv("TINYQNN_DATA", raising=False)
    urls = []

    def bad_fetch(url, dest, timeout=None):
        urls.append(url)
        dest.write_bytes(good.read_bytes()[:1000])  # a cut-off download

    monkeypatch.setattr(sources, "fetch", bad_fetch)
    with pytest.raises(DatasetNotFoundError, match="ChecksumError"):
        CIFAR10()
    cache = tmp_path / "cache" / "tinyqnn" / "cifar10"
    assert urls == [cifar.URL] and not any(cache.glob("*"))  # nothing half-written stays
    monkeypatch.setattr(sources, "fetch", lambda url, dest, timeout=None: dest.write_bytes(good.read_bytes()))
    ds = CIFAR10(train=False)
    assert ds.path == cache / cifar.ARCHIVE and len(ds) == 4


def test_random_crop_flip_takes_a_window_of_the_padded_image_and_is_seeded(rng):
    images = rng.integers(1, 256, (64, 3, 32, 32), dtype=np.uint8)
    aug = RandomCropFlip(padding=4, seed=5)
    aug.set_epoch(3)
    out = aug(images)
    assert out.shape == images.shape and out.dtype == np.uint8
    padded = np.pad(images, ((0, 0), (0, 0), (4, 4), (4, 4)))
    flips = 0
    for i in range(64):  # each output is one of the 81 windows, flipped or not
        windows = [padded[i, :, a:a + 32, b:b + 32] for a in range(9) for b in range(9)]
        plain = any(np.array_equal(out[i], w) for w in windows)
        flipped = any(np.array_equal(out[i], w[:, :, ::-1]) for w in windows)
        assert plain or flipped
        flips += flipped and not plain
    assert 10 < flips < 54  # about half flipped
    assert (out == 0).any()  # some crops reach into the black border
    again = RandomCropFlip(padding=4, seed=5)
    again.set_epoch(3)
    np.testing.assert_array_equal(again(images), out)
    again.set_epoch(4)
    assert not np.array_equal(again(images), out)


def test_transform_applies_before_normalising(archive):
    path, splits = archive
    ds = CIFAR10(path, train=False, transform=lambda im: np.full_like(im, 255))
    x, _ = ds[np.arange(2)]
    np.testing.assert_allclose(x[:, 1], (1 - 0.4822) / 0.1994, rtol=1e-6)
