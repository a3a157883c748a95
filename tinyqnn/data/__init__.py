"""Data for tinyqnn: IDX files, MNIST / Fashion-MNIST / CIFAR-10 (located, downloaded, verified), bundled subsets,
DataLoader.

Quick start::

    from tinyqnn.data import DataLoader, mnist_subset
    for x, y in DataLoader(mnist_subset(), batch_size=64, shuffle=True):
        ...  # x: Tensor float32 (64, 1, 28, 28), normalised; y: Tensor int64 (64,)

``MNIST(root=None, train=True, download=True)`` loads the full set; see ``tinyqnn.data.sources`` for where
it looks (root, $TINYQNN_DATA, ~/.cache/tinyqnn, mirrors, npm).
"""
from .cifar import CIFAR10, CIFARFormatError, RandomCropFlip
from .datasets import FashionMNIST, ImageDataset, MNIST, fashion_mnist_subset, mnist_subset
from .idx import IDXError, read_idx, write_idx
from .loader import DataLoader
from .sources import ChecksumError, DatasetNotFoundError, cache_dir

__all__ = [
    "CIFAR10", "CIFARFormatError", "RandomCropFlip", "ChecksumError", "DataLoader", "DatasetNotFoundError", "FashionMNIST", "IDXError", "ImageDataset", "MNIST",
    "cache_dir", "fashion_mnist_subset", "mnist_subset", "read_idx", "write_idx",
]
