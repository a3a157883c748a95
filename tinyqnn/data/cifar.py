"""CIFAR-10 (Krizhevsky 2009) from the official binary archive, and the usual training augmentation.

``CIFAR10(root=None, train=True, download=True, transform=None)`` reads ``cifar-10-binary.tar.gz`` (the
"binary version": no pickle), found in this order:

1. ``root``: the archive itself, or a folder holding it (as ``root/cifar10/`` or directly in ``root``);
2. ``$TINYQNN_DATA``, searched the same way;
3. the user cache, ``~/.cache/tinyqnn/cifar10/`` (``$XDG_CACHE_HOME`` respected);
4. a download from the dataset's page into the cache (``download=True``), through the same
   ``fetch`` and atomic, verified write as MNIST (``tinyqnn.data.sources``).

Every archive is checked against the MD5 published on the dataset's page before it is read (a copy
that is not the official archive is refused, saying so; ``verify=False`` reads any archive of the same
format, e.g. a subset you built). Members are read from the tar.gz in memory, nothing is extracted.
Each record of ``data_batch_{1..5}.bin`` / ``test_batch.bin`` is 1 label byte and 3,072 pixel bytes
(1,024 red, then green, then blue, row-major 32x32).

``RandomCropFlip(padding=4)`` is the augmentation of He et al. (2016) that Yin et al. use on CIFAR-10:
pad by 4 pixels (black), crop a random 32x32 window, flip horizontally with probability 1/2; it works
on a whole batch at once.
"""
from __future__ import annotations

import hashlib
import io
import os
import sys
import tarfile
import zlib
from pathlib import Path
from typing import Any

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from ..utils import atomic_path
from .idx import PathLike
from .sources import ENV_VAR, ChecksumError, DatasetNotFoundError, cache_dir

ARCHIVE = "cifar-10-binary.tar.gz"
#: published on https://www.cs.toronto.edu/~kriz/cifar.html for the binary version
ARCHIVE_MD5 = "c32a1d4ab5d03f1284b67883e8d87530"
URL = "https://www.cs.toronto.edu/~kriz/" + ARCHIVE
SUBFOLDER = "cifar10"
MEMBER_DIR = "cifar-10-batches-bin"
TRAIN_MEMBERS = tuple(f"data_batch_{i}.bin" for i in range(1, 6))
TEST_MEMBERS = ("test_batch.bin",)
RECORD = 1 + 3 * 32 * 32
CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")


class CIFARFormatError(ValueError):
    """The archive is not a readable CIFAR-10 binary archive (truncated, corrupt, members missing)."""


def md5_of(path: PathLike) -> str:
    digest = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def verify_archive(path: PathLike, source: str | None = None) -> None:
    """ChecksumError unless ``path`` has the published MD5 of ``cifar-10-binary.tar.gz``."""
    actual = md5_of(path)
    if actual != ARCHIVE_MD5:
        raise ChecksumError(f"{source or path}: MD5 {actual}, but the official {ARCHIVE} has {ARCHIVE_MD5} (a damaged "
                            "or partial download, or another file?); delete or replace it, or pass verify=False "
                            "for an archive you built yourself in the same format")


def read_archive(path: PathLike, train: bool) -> tuple[np.ndarray, np.ndarray]:
    """(images uint8 (N, 3, 32, 32), labels int64 (N,)) of one split, read from the tar.gz in memory.

    Raises CIFARFormatError naming the file and what is wrong (not a gzip/tar, a member missing, a
    member whose size is not a whole number of 3,073-byte records, a label outside 0..9).
    """
    members = TRAIN_MEMBERS if train else TEST_MEMBERS
    chunks = []
    try:
        with tarfile.open(path, "r:gz") as tar:
            names = {Path(m.name).name: m for m in tar.getmembers() if m.isfile()}
            for name in members:
                if name not in names:
                    raise CIFARFormatError(f"{path}: member {MEMBER_DIR}/{name} is missing (the archive holds "
                                           f"{', '.join(sorted(names)) or 'no files'})")
                data = tar.extractfile(names[name]).read()
                if len(data) == 0 or len(data) % RECORD:
                    raise CIFARFormatError(f"{path}: {name} has {len(data)} bytes, not a whole number of "
                                           f"{RECORD}-byte records (1 label + 3072 pixels): truncated?")
                chunks.append(np.frombuffer(data, dtype=np.uint8).reshape(-1, RECORD))
    except (tarfile.TarError, EOFError, zlib.error, OSError) as exc:
        if isinstance(exc, FileNotFoundError):
            raise
        raise CIFARFormatError(f"{path} is not a readable {ARCHIVE} (truncated or corrupt?): "
                               f"{type(exc).__name__}: {exc}") from None
    records = np.concatenate(chunks)
    labels = records[:, 0].astype(np.int64)
    if labels.max() >= len(CLASSES):
        raise CIFARFormatError(f"{path}: label {labels.max()} is outside 0..9: not a CIFAR-10 archive")
    return np.ascontiguousarray(records[:, 1:].reshape(-1, 3, 32, 32)), labels


def write_archive(path: PathLike, splits: dict[str, tuple[np.ndarray, np.ndarray]]) -> Path:
    """Write an archive in the official layout (for tests and home-made subsets): ``splits`` maps a member
    name (``data_batch_1.bin`` ... ``test_batch.bin``) to (images uint8 (N, 3, 32, 32), labels (N,))."""
    path = Path(path)
    with atomic_path(path) as tmp, tarfile.open(tmp, "w:gz") as tar:
        for name, (images, labels) in splits.items():
            images, labels = np.asarray(images, np.uint8), np.asarray(labels, np.uint8)
            records = np.concatenate([labels.reshape(-1, 1), images.reshape(len(images), -1)], axis=1)
            info = tarfile.TarInfo(f"{MEMBER_DIR}/{name}")
            info.size = records.nbytes
            tar.addfile(info, io.BytesIO(records.tobytes()))
    return path


def _candidates(place: PathLike) -> list[Path]:
    place = Path(place).expanduser()
    return [place] if place.is_file() else [place / SUBFOLDER / ARCHIVE, place / ARCHIVE]


def locate_archive(root: PathLike | None = None, download: bool = True) -> Path:
    """The archive's path (see the module docstring for the order); DatasetNotFoundError lists what was tried."""
    cache = cache_dir() / SUBFOLDER
    if root is not None and not Path(root).expanduser().exists():
        raise DatasetNotFoundError(f"root={str(root)!r} does not exist: pass {ARCHIVE} or the folder that holds it")
    tried = []
    for label, place in (("root argument", root), (f"${ENV_VAR}", os.environ.get(ENV_VAR) or None),
                         ("user cache", cache)):
        if place is None:
            tried.append(f"{label}: not given")
            continue
        hit = next((p for p in _candidates(place) if p.is_file()), None)
        if hit is not None:
            return hit
        tried.append(f"{label}: no {' or '.join(str(p) for p in _candidates(place))}")
    if download:
        dest = cache / ARCHIVE
        from . import sources  # through the module, so that tests replace sources.fetch

        print(f"tinyqnn: downloading CIFAR-10 {URL} -> {dest} (170 MB)", file=sys.stderr, flush=True)
        try:
            with atomic_path(dest) as tmp:
                sources.fetch(URL, tmp)
                verify_archive(tmp, source=f"download {URL}")
            return dest
        except Exception as exc:  # noqa: BLE001 - reported with every other source
            tried.append(f"download {URL}: {type(exc).__name__}: {exc}")
    else:
        tried.append("download: not attempted (download=False)")
    raise DatasetNotFoundError("Could not find the CIFAR-10 binary archive. Sources tried, in order:\n"
                               + "\n".join(f"  {i}. {t}" for i, t in enumerate(tried, 1))
                               + f"\nTo place it by hand: get {URL} (MD5 {ARCHIVE_MD5}) and put it in {cache}/, "
                               f"or pass root=FILE_OR_DIR or set {ENV_VAR}=DIR (DIR/{SUBFOLDER}/{ARCHIVE}).")


class RandomCropFlip:
    """Pad by ``padding`` (value 0), crop a random window of the original size, flip horizontally with
    probability 1/2; on a whole uint8 batch (B, C, H, W) at once, no per-image loop.

    The random numbers come from the transform's own generator; ``set_epoch(e)`` makes them a function
    of ``(seed, e)`` alone, so a resumed run sees the crops an uninterrupted one would.
    """

    def __init__(self, padding: int = 4, flip: bool = True, seed: int = 0):
        if padding < 0:
            raise ValueError(f"padding must be >= 0, got {padding}")
        self.padding, self.flip, self.seed = int(padding), bool(flip), int(seed)
        self.generator = np.random.default_rng(self.seed)

    def set_epoch(self, epoch: int) -> None:
        self.generator = np.random.default_rng([self.seed, int(epoch)])

    def __call__(self, images: np.ndarray) -> np.ndarray:
        """images (B, C, H, W) -> (B, C, H, W), a new array."""
        b, _, h, w = images.shape
        p = self.padding
        padded = np.pad(images, ((0, 0), (0, 0), (p, p), (p, p)))
        dy, dx = self.generator.integers(0, 2 * p + 1, size=(2, b))
        windows = sliding_window_view(padded, (h, w), axis=(2, 3))  # (B, C, 2p+1, 2p+1, H, W), a view
        out = windows[np.arange(b), :, dy, dx]  # (B, C, H, W): each sample's own window
        if self.flip:
            flip = self.generator.random(b) < 0.5
            out[flip] = out[flip, :, :, ::-1]
        return out

    def __repr__(self) -> str:
        return f"RandomCropFlip(padding={self.padding}, flip={self.flip}, seed={self.seed})"


class CIFAR10:
    """CIFAR-10: 50,000 training / 10,000 test colour images 32x32 in 10 classes.

    Attributes:
        images: uint8 (N, 3, 32, 32); labels: int64 (N,); classes: the 10 names; mean/std: per channel,
        the normalisation ``__getitem__`` applies (those of Yin et al.'s code); transform: None or a
        callable on uint8 batches (e.g. ``RandomCropFlip()``), applied before normalising.

    ``ds[idx]`` for an index array or slice returns x float32 (B, 3, 32, 32) and y int64 (B,);
    ``ds[i]`` returns x (3, 32, 32) and a scalar label.
    """

    classes = CLASSES
    mean = (0.4914, 0.4822, 0.4465)
    std = (0.2023, 0.1994, 0.2010)

    def __init__(self, root: PathLike | None = None, train: bool = True, download: bool = True,
                 transform: Any = None, verify: bool = True):
        path = locate_archive(root, download)
        if verify:
            verify_archive(path)
        images, labels = read_archive(path, train)
        self._setup(images, labels, train, transform)
        self.path = path

    def _setup(self, images: np.ndarray, labels: np.ndarray, train: bool, transform: Any) -> None:
        if images.dtype != np.uint8 or images.ndim != 4 or images.shape[1:] != (3, 32, 32):
            raise ValueError(f"images must be uint8 (N, 3, 32, 32), got {images.dtype} {images.shape}")
        if labels.shape != (len(images),):
            raise ValueError(f"labels must have shape ({len(images)},), got {labels.shape}")
        self.images, self.labels, self.train, self.transform = images, labels.astype(np.int64), bool(train), transform
        # one float32 value per (channel, pixel level): normalising is a table lookup
        levels = np.arange(256) / 255.0
        self._table = ((levels[None] - np.array(self.mean)[:, None]) / np.array(self.std)[:, None]).astype(np.float32)

    @classmethod
    def from_arrays(cls, images: np.ndarray, labels: np.ndarray, train: bool = True, transform: Any = None) -> CIFAR10:
        """A dataset around given arrays (no file access), e.g. a subset."""
        dataset = cls.__new__(cls)
        dataset._setup(np.asarray(images), np.asarray(labels), train, transform)
        return dataset

    def __len__(self) -> int:
        return len(self.labels)

    def set_epoch(self, epoch: int) -> None:
        """Passed on to the transform (its random numbers then depend only on its seed and ``epoch``)."""
        if hasattr(self.transform, "set_epoch"):
            self.transform.set_epoch(epoch)

    def __getitem__(self, index: Any) -> tuple[np.ndarray, Any]:
        single = isinstance(index, (int, np.integer)) and not isinstance(index, bool)
        if single and not -len(self) <= index < len(self):
            raise IndexError(f"index {index} out of range for CIFAR10 of length {len(self)}")
        images = self.images[[index] if single else index]
        if self.transform is not None:
            images = self.transform(images)
        x = self._table[np.arange(3)[None, :, None, None], images]  # (B, 3, 32, 32) float32
        y = self.labels[index]
        return (x[0], y) if single else (x, y)

    def __repr__(self) -> str:
        return (f"CIFAR10(split={'train' if self.train else 'test'}, n={len(self)}"
                + (f", transform={self.transform!r})" if self.transform is not None else ")"))
