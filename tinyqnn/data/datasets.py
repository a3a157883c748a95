"""MNIST and Fashion-MNIST as datasets: uint8 images + int64 labels, served normalised in batches.

A dataset is indexed with an int (one sample) or with an index array / slice (a whole batch at once,
by NumPy fancy indexing), which is what ``DataLoader`` relies on: no Python loop over samples.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from .idx import PathLike
from .sources import (
    FASHION_MNIST_SPEC, MNIST_SPEC, ChecksumError, DatasetSpec, load_verified, locate, split_keys,
)

BUNDLED_DIR = Path(__file__).resolve().parent
MNIST_SUBSET_FILE = BUNDLED_DIR / "mnist_subset.npz"
FASHION_MNIST_SUBSET_FILE = BUNDLED_DIR / "fashion_mnist_subset.npz"


class ImageDataset:
    """28x28 grayscale images with integer class labels.

    Attributes:
        images: uint8 (N, 28, 28), raw pixels 0..255.
        labels: int64 (N,), class indices into ``classes``.
        classes: class names; ``mean``/``std``: the normalisation applied by ``__getitem__``.
        train: which split the data comes from.

    ``ds[i]`` returns ``(x, y)`` with x float32 (1, 28, 28) and y an int64 scalar; ``ds[idx]`` for an
    index array or slice returns x float32 (B, 1, 28, 28) and y int64 (B,). ``x = (pixel/255 - mean) / std``.
    """

    classes: tuple[str, ...] = tuple(str(d) for d in range(10))
    mean: float = 0.0
    std: float = 1.0

    def __init__(self, images: np.ndarray, labels: np.ndarray, train: bool = True):
        images, labels = np.asarray(images), np.asarray(labels)
        if images.dtype != np.uint8 or images.ndim != 3 or images.shape[1:] != (28, 28):
            raise ValueError(f"images must be uint8 (N, 28, 28), got {images.dtype} {images.shape}")
        if labels.ndim != 1 or labels.dtype.kind not in "iu" or len(labels) != len(images):
            raise ValueError(f"labels must be integers of shape ({len(images)},), got {labels.dtype} {labels.shape}")
        if len(labels) and (labels.min() < 0 or labels.max() >= len(self.classes)):
            raise ValueError(f"labels must lie in [0, {len(self.classes)}), got [{labels.min()}, {labels.max()}]")
        self.images: np.ndarray = images
        self.labels: np.ndarray = labels.astype(np.int64)
        self.train = bool(train)
        # one float32 value per pixel level: normalising a batch is a table lookup, and matches the formula exactly
        self._table = ((np.arange(256) / 255.0 - self.mean) / self.std).astype(np.float32)

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: Any) -> tuple[np.ndarray, Any]:
        """index: int -> (x (1, 28, 28), y scalar); int array / bool mask / slice -> (x (B, 1, 28, 28), y (B,))."""
        if isinstance(index, (int, np.integer)) and not isinstance(index, bool):
            n = len(self)
            if not -n <= index < n:
                raise IndexError(f"index {index} out of range for {type(self).__name__} of length {n}")
            return self._table[self.images[index]][None], self.labels[index]
        if not isinstance(index, slice):
            index = np.asarray(index)
            if index.size == 0:  # np.asarray([]) is float64; an empty batch is still a valid request
                index = index.astype(np.intp)
            if index.dtype.kind not in "iub" or (index.dtype.kind == "b" and index.shape != (len(self),)):
                raise TypeError(
                    f"index a {type(self).__name__} with an int, a slice, an int array or a bool mask of length "
                    f"{len(self)}; got {index.dtype} array of shape {index.shape}"
                )
        return self._table[self.images[index]][:, None], self.labels[index]

    def __repr__(self) -> str:
        split = "train" if self.train else "test"
        return f"{type(self).__name__}(split={split}, n={len(self)}, mean={self.mean}, std={self.std})"

    @classmethod
    def from_arrays(cls, images: np.ndarray, labels: np.ndarray, train: bool = True) -> ImageDataset:
        """A dataset of this type around given arrays (no file access), e.g. a bundled subset."""
        dataset = cls.__new__(cls)
        ImageDataset.__init__(dataset, images, labels, train)
        return dataset


class _IDXDataset(ImageDataset):
    """A dataset read from the four standard IDX files located by ``sources.locate``."""

    spec: DatasetSpec

    def __init__(self, root: PathLike | None = None, train: bool = True, download: bool = True):
        """Args:
            root: a folder holding the files, as ``root/<name>/`` or directly; optional (see ``sources``).
            train: the 60,000-image training split, else the 10,000-image test split.
            download: allow downloading into the user cache when no local copy is found.
        """
        keys = split_keys(train)
        paths = locate(self.spec, keys, root=root, download=download)
        try:
            images, labels = (load_verified(paths[k], self.spec.files[k]) for k in keys)
        except ChecksumError as exc:  # a local copy is wrong: say what to do about it
            raise ChecksumError(f"{exc}\nThis is not the expected {self.spec.name} file (a damaged copy, or another "
                                f"dataset's file?); delete or replace it.") from None
        super().__init__(images, labels, train)
        self.paths: dict[str, Path] = paths


class MNIST(_IDXDataset):
    """Handwritten digits 0-9 (LeCun, Cortes, Burges). ``MNIST(root=None, train=True, download=True)``."""

    spec = MNIST_SPEC
    mean, std = 0.1307, 0.3081


class FashionMNIST(_IDXDataset):
    """Zalando's article images, 10 classes, same format as MNIST. ``FashionMNIST(root=None, train=True, download=True)``."""

    spec = FASHION_MNIST_SPEC
    classes = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot")
    mean, std = 0.2860, 0.3530


def _load_bundled(cls: type[ImageDataset], path: Path, train: bool) -> ImageDataset:
    split = "train" if train else "test"
    if not path.is_file():
        raise FileNotFoundError(f"bundled subset {path} is missing; rebuild it with `python -m tinyqnn.data.subset --root DIR`")
    with np.load(path, allow_pickle=False) as archive:
        return cls.from_arrays(archive[f"x_{split}"], archive[f"y_{split}"], train)


def mnist_subset(train: bool = True) -> MNIST:
    """The MNIST subset shipped with tinyqnn: 6000 train / 1000 test images, class-balanced. No download."""
    return _load_bundled(MNIST, MNIST_SUBSET_FILE, train)


def fashion_mnist_subset(train: bool = True) -> FashionMNIST:
    """The Fashion-MNIST subset shipped with tinyqnn (class-balanced; sizes in ``tinyqnn.data.subset``)."""
    return _load_bundled(FashionMNIST, FASHION_MNIST_SUBSET_FILE, train)
