"""The learning problems a worker can compute gradients for: each is a picklable object (it travels to Dask
worker processes) holding every worker's data, with pure methods, so a worker's result depends only on
(problem, worker id, iteration, weights) and any process can recompute it.

Interface (duck-typed; see ``LinearProblem``):
    names: parameter names; ``quantize``: which of them the server weight-quantizes (weights yes, biases no)
    init_params(seed) -> list of float64 arrays
    batch(worker, t) -> (x, y): worker ``worker``'s mini-batch at iteration t (1-based), from its own shard/stream
    loss(params, x, y) -> scalar Tensor (the engine computes the gradients)
    evaluate(params) -> dict of floats (test metrics), optional
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..engine import Tensor
from ..nn import functional as F


def loss_and_grads(problem: Any, params: list[np.ndarray], x: Any, y: Any) -> tuple[float, list[np.ndarray]]:
    """``problem.loss`` at ``params`` and its gradients (float64 arrays, the parameters' shapes)."""
    dtype = getattr(problem, "dtype", np.float64)
    tensors = [Tensor(np.asarray(p, dtype=dtype), requires_grad=True) for p in params]
    loss = problem.loss(tensors, x, y)
    loss.backward()
    grads = [np.zeros(p.shape) if t.grad is None else np.asarray(t.grad.data, dtype=np.float64)
             for p, t in zip(params, tensors)]
    return float(loss.data), grads


@dataclass
class LinearProblem:
    """The synthetic linear model of Section 4.1 (after ZipML): w*, x ~ U[-0.5, 0.5]^d, y ~ N(x.w*, noise^2),
    loss f_t(w) = ||X_t w - y_t||^2 / (2B). Every worker draws fresh samples from its own seeded stream.

    ``spike``: multiply feature 0 by ``spike`` (e.g. sqrt(d)): the gradient then has one coordinate ~spike times the
    others, so ||g||_inf ||g||_1 / ||g||^2 grows like sqrt(d) / 2 (the heavy-tailed variant; for the plain model
    the gradient is near Gaussian and the spread grows only like sqrt(log d)).
    Shapes: params [w (d,)]; x (B, d); y (B,).
    """

    d: int
    batch_size: int = 64
    noise: float = 0.2
    seed: int = 0
    spike: float = 1.0
    names: tuple[str, ...] = ("w",)
    quantize: tuple[bool, ...] = (True,)
    w_star: np.ndarray = field(init=False, repr=False)

    def __post_init__(self) -> None:
        if self.d < 1 or self.batch_size < 1:
            raise ValueError(f"need d >= 1 and batch_size >= 1, got d={self.d}, batch_size={self.batch_size}")
        self.w_star = np.random.default_rng([self.seed, 0]).uniform(-0.5, 0.5, self.d)

    def init_params(self, seed: int) -> list[np.ndarray]:
        return [np.random.default_rng([seed, 1]).uniform(-0.5, 0.5, self.d)]

    def batch(self, worker: int, t: int) -> tuple[np.ndarray, np.ndarray]:
        rng = np.random.default_rng([self.seed, 2, worker, t])
        x = rng.uniform(-0.5, 0.5, (self.batch_size, self.d))
        x[:, 0] *= self.spike
        return x, x @ self.w_star + self.noise * rng.standard_normal(self.batch_size)

    def loss(self, params: list[Tensor], x: np.ndarray, y: np.ndarray) -> Tensor:
        r = Tensor(x) @ params[0] - Tensor(y)
        return (r * r).sum() / (2 * len(y))

    def evaluate(self, params: list[np.ndarray]) -> dict[str, float]:
        """Expected loss E f(w) in closed form: E[(x.(w - w*))^2] / 2 + noise^2 / 2, x uniform (var 1/12)."""
        diff = params[0] - self.w_star
        scale = np.ones(self.d)
        scale[0] = self.spike
        return {"expected_loss": float(np.sum((scale * diff) ** 2) / 24 + self.noise**2 / 2)}


@dataclass
class MLPProblem:
    """A one-hidden-layer ReLU MLP ``784 -> hidden -> 10`` with softmax cross-entropy on 28x28 images.

    Worker n owns the disjoint shard ``train_images[n::workers]`` of a seeded permutation (weak scaling: add
    workers and add data); its batches walk a fresh permutation of its shard every epoch.
    Shapes: images uint8 (N, 28, 28); params W1 (hidden, 784), b1 (hidden,), W2 (10, hidden), b2 (10,);
    x float32 (B, 784) normalised with ``mean``/``std``; y int64 (B,). Workers compute in float32.
    """

    hidden: int
    train_images: np.ndarray
    train_labels: np.ndarray
    test_images: np.ndarray
    test_labels: np.ndarray
    workers: int = 2
    batch_size: int = 64
    seed: int = 0
    mean: float = 0.0
    std: float = 1.0
    dtype: Any = np.float32
    names: tuple[str, ...] = ("W1", "b1", "W2", "b2")
    quantize: tuple[bool, ...] = (True, False, True, False)
    shards: list[np.ndarray] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        for name, images, labels in (("train", self.train_images, self.train_labels),
                                     ("test", self.test_images, self.test_labels)):
            if images.ndim != 3 or images.shape[1:] != (28, 28) or len(images) != len(labels):
                raise ValueError(f"{name} images must be (N, 28, 28) with N labels, got {images.shape} and "
                                 f"{np.shape(labels)}")
        if self.workers < 1 or self.hidden < 1:
            raise ValueError(f"need workers >= 1 and hidden >= 1, got {self.workers}, {self.hidden}")
        order = np.random.default_rng([self.seed, 3]).permutation(len(self.train_labels))
        self.shards = [order[n::self.workers] for n in range(self.workers)]
        if len(self.shards[-1]) < self.batch_size:
            raise ValueError(f"{len(self.train_labels)} training images give worker shards of "
                             f"{len(self.shards[-1])} < batch_size {self.batch_size}")
        self._table = ((np.arange(256) / 255.0 - self.mean) / self.std).astype(np.float32)

    @classmethod
    def from_datasets(cls, hidden: int, train: Any, test: Any, **kw: Any) -> MLPProblem:
        """From two ``tinyqnn.data`` datasets (their uint8 images, labels and normalisation)."""
        return cls(hidden, train.images, train.labels, test.images, test.labels, mean=train.mean, std=train.std, **kw)

    def init_params(self, seed: int) -> list[np.ndarray]:
        """Uniform +-sqrt(1.5 / (fan_in + fan_out)) weights (the 2018 LAQ code's init), zero biases."""
        rng = np.random.default_rng([seed, 4])
        shapes = [(self.hidden, 784), (10, self.hidden)]
        w1, w2 = (rng.uniform(-1, 1, s) * math.sqrt(1.5 / sum(s)) for s in shapes)
        return [w1, np.zeros(self.hidden), w2, np.zeros(10)]

    def _inputs(self, images: np.ndarray) -> np.ndarray:
        return self._table[images].reshape(len(images), 784)

    def batch(self, worker: int, t: int) -> tuple[np.ndarray, np.ndarray]:
        shard = self.shards[worker]
        per_epoch = len(shard) // self.batch_size
        epoch, j = divmod(t - 1, per_epoch)
        order = np.random.default_rng([self.seed, 5, worker, epoch]).permutation(len(shard))
        idx = shard[order[j * self.batch_size:(j + 1) * self.batch_size]]
        return self._inputs(self.train_images[idx]), self.train_labels[idx]

    def loss(self, params: list[Tensor], x: np.ndarray, y: np.ndarray) -> Tensor:
        w1, b1, w2, b2 = params
        h = F.linear(Tensor(x.astype(w1.dtype, copy=False)), w1, b1).relu()
        return F.cross_entropy(F.linear(h, w2, b2), y)

    def evaluate(self, params: list[np.ndarray], chunk: int = 2000) -> dict[str, float]:
        """Test loss and accuracy (%) at ``params`` (in chunks of ``chunk`` images)."""
        w1, b1, w2, b2 = (np.asarray(p, dtype=self.dtype) for p in params)
        total, correct = 0.0, 0
        for i in range(0, len(self.test_labels), chunk):
            x, y = self._inputs(self.test_images[i:i + chunk]), self.test_labels[i:i + chunk]
            z = np.maximum(x @ w1.T + b1, 0) @ w2.T + b2
            z = z - z.max(axis=1, keepdims=True)
            logp = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
            total += float(-logp[np.arange(len(y)), y].sum())
            correct += int((z.argmax(axis=1) == y).sum())
        n = len(self.test_labels)
        return {"test_loss": total / n, "test_accuracy": 100.0 * correct / n}
