"""``DataLoader``: mini-batches of a dataset as Tensors, shuffled by its own seeded generator."""
from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np

from ..engine import Tensor, default_generator


class DataLoader:
    """Iterate over ``dataset`` in batches of ``batch_size``.

    Each batch is fetched with ONE fancy-indexing call ``dataset[indices]`` (no per-sample loop), so the
    dataset must accept an int index array and return ``(x (B, ...), y (B,))`` arrays.

    Args:
        dataset: e.g. ``MNIST`` / ``mnist_subset()``; needs ``__len__`` and array ``__getitem__``.
        batch_size: samples per batch (>= 1).
        shuffle: draw a fresh permutation at every ``iter()``, i.e. every epoch; after ``set_epoch(e)``
            (``fit`` calls it before each epoch) the permutation depends only on ``(seed, e)``.
        drop_last: drop the final batch when it is smaller than ``batch_size``.
        seed: seeds this loader's generator; if None the seed is drawn from
            ``tinyqnn.engine.default_generator()``, so ``tinyqnn.manual_seed`` makes runs repeatable.

    Yields:
        ``(x, y)``: Tensor float32 (B, 1, 28, 28) and Tensor int64 (B,) for the MNIST datasets.
    """

    def __init__(self, dataset: Any, batch_size: int = 64, shuffle: bool = False, drop_last: bool = False,
                 seed: int | None = None):
        if not isinstance(batch_size, (int, np.integer)) or isinstance(batch_size, bool) or batch_size < 1:
            raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
        if not (hasattr(dataset, "__len__") and hasattr(dataset, "__getitem__")):
            raise TypeError(f"dataset must support len() and indexing, got {type(dataset).__name__}")
        self.dataset = dataset
        self.batch_size = int(batch_size)
        self.shuffle = bool(shuffle)
        self.drop_last = bool(drop_last)
        if seed is None:  # drawn once, here: the loader's order then depends only on manual_seed
            seed = int(default_generator().integers(2**63))
        self.seed = seed
        self.generator = np.random.default_rng(seed)

    def set_epoch(self, epoch: int) -> None:
        """Make the next epoch's order a function of ``(seed, epoch)`` alone, so that a run resumed at
        ``epoch`` sees the batches an uninterrupted one would (the grid's ``EpochLoader`` uses the same rule)."""
        if isinstance(epoch, bool) or not isinstance(epoch, (int, np.integer)) or epoch < 0:
            raise ValueError(f"epoch must be a non-negative integer, got {epoch!r}")
        self.generator = np.random.default_rng(self.seed * 1_000_003 + int(epoch))

    def __len__(self) -> int:
        """Number of batches per epoch."""
        n = len(self.dataset)
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)

    def __iter__(self) -> Iterator[tuple[Tensor, Tensor]]:
        n = len(self.dataset)
        order = self.generator.permutation(n) if self.shuffle else np.arange(n)
        for start in range(0, len(self) * self.batch_size, self.batch_size):
            x, y = self.dataset[order[start:start + self.batch_size]]
            yield Tensor(x), Tensor(np.asarray(y, dtype=np.int64))

    def __repr__(self) -> str:
        return (f"DataLoader({type(self.dataset).__name__}, n={len(self.dataset)}, batch_size={self.batch_size}, "
                f"shuffle={self.shuffle}, drop_last={self.drop_last}, batches={len(self)})")
