"""Data-parallel training with quantized weights and quantized (optionally clipped) gradients (Hou et al. 2019).

One iteration t (1-based), parameter-server form:

    server -> workers   the quantized weights w_hat_t (LAB: 1 bit, LAQm: m bits per coordinate, + alpha; or float32)
    worker n            g_n = grad f(w_hat_t) on its own mini-batch           (gradient at the *quantized* weights)
                        g_n <- Clip(g_n) at +-c sigma  (optional),  then SQm with its own seeded stream
    workers -> server   m bits per coordinate + the 32-bit scale s, per layer   (or float32)
    server              g = mean_n g_n (all N, in worker order; a missing or malformed one stops the run)
                        RMSProp / Adam step on the full-precision weights w (only the server has them)
                        w_hat_{t+1} = LAB / LAQm of w with D = sqrt(v_hat) + eps, the optimizer's own second moment

A worker's reply depends only on (problem, worker id, t, weights, config): its batch and quantizer streams are
``np.random.default_rng([seed, ..., worker, t])``. So the same step can run in this process (``InProcessExecutor``,
the default, deterministic) or in other processes (``tinyqnn.distributed.dask_backend.DaskExecutor``) with bit-for-bit
identical results, and a step lost with a dead process can simply be recomputed.

Bits are counted from the real packed messages: ``History.bits_up`` (all workers -> server) and ``bits_down``
(server -> all workers) per iteration. The diagnostics a worker returns (norms for the blow-up ratios) are
measurement side-channels and not counted.
"""
from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from ..quant.activation import check_bits
from ..quant.loss_aware import MAX_CODE_BITS, loss_aware_quantize
from .gradient import check_clip, check_grad_bits, clip_gradient, stochastic_quantize_codes
from .packing import Message, encode_codes, encode_float
from .problems import loss_and_grads


class WorkerFailure(RuntimeError):
    """A worker raised, died or sent something unusable; no update was applied for that iteration."""


@dataclass(frozen=True)
class TrainConfig:
    """What to train with (the paper's notation in brackets).

    workers: N. iterations: T. weight_bits: None = full precision, 1 = LAB, m >= 2 = LAQm.
    grad_bits: None = float32 gradients (FP), m >= 2 = SQm. clip: None, or c > 0 (clip at +-c sigma first).
    optimizer: "rmsprop" (the analysis: v = beta v + (1 - beta) g^2, w -= lr_t g / (sqrt(v_hat) + eps)) or "adam"
    (the deep-net runs: beta1 = 0.9 momentum too). Both bias-correct v (v_hat = v / (1 - beta^t)), so the first step
    is not 1/sqrt(1 - beta) times too long. lr_decay "sqrt": lr_t = lr / sqrt(t) (eta / sqrt(t)); "none": constant.
    weight_clip: clip the full-precision weights to +-weight_clip after each step (the 2018 code uses 1), or None.
    blas_threads: BLAS threads of every worker's gradient, in this process and on Dask alike (``worker_threads``).
    """

    workers: int = 2
    iterations: int = 100
    weight_bits: int | None = 1
    grad_bits: int | None = None
    clip: float | None = None
    optimizer: str = "rmsprop"
    lr: float = 0.03
    lr_decay: str = "sqrt"
    beta: float = 0.999
    beta1: float = 0.9
    eps: float = 1e-8
    weight_clip: float | None = None
    seed: int = 0
    blas_threads: int = 1

    def __post_init__(self) -> None:
        for name in ("workers", "blas_threads"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
        if self.iterations < 0:
            raise ValueError(f"iterations must be >= 0, got {self.iterations}")
        if self.weight_bits is not None:
            check_bits(self.weight_bits, minimum=1, maximum=MAX_CODE_BITS)  # int8 codes
        if self.grad_bits is not None:
            check_grad_bits(self.grad_bits)
        if self.clip is not None:
            check_clip(self.clip)
        if self.optimizer not in ("rmsprop", "adam"):
            raise ValueError(f"optimizer must be 'rmsprop' or 'adam', got {self.optimizer!r}")
        if self.lr_decay not in ("sqrt", "none"):
            raise ValueError(f"lr_decay must be 'sqrt' or 'none', got {self.lr_decay!r}")
        if not (self.lr > 0 and 0 <= self.beta < 1 and 0 <= self.beta1 < 1 and self.eps > 0):
            raise ValueError(f"need lr > 0, beta and beta1 in [0, 1), eps > 0; got lr={self.lr}, beta={self.beta}, "
                             f"beta1={self.beta1}, eps={self.eps}")

    @property
    def label(self) -> str:
        """E.g. ``LAB/SQ2 c=3`` (FP for full precision)."""
        w = "FP" if self.weight_bits is None else ("LAB" if self.weight_bits == 1 else f"LAQ{self.weight_bits}")
        g = "FP" if self.grad_bits is None else f"SQ{self.grad_bits}"
        return f"{w}/{g}" + ("" if self.clip is None else f" c={self.clip:g}")


@dataclass
class WorkerReply:
    """What worker ``worker`` sends at iteration ``t``: one message per parameter, plus diagnostics (not counted).

    loss: f at the quantized weights on its batch. stats: per parameter, ``grad_sq`` = ||g||^2 (before clipping),
    ``sent_sq`` = ||Q(Clip g)||^2, ``inf_l1`` = ||g||_inf ||g||_1, ``clip_sq`` = ||Clip(g) - g||^2, ``var`` = sigma^2
    of g's entries.
    """

    worker: int
    t: int
    loss: float
    messages: list[Message]
    stats: dict[str, list[float]]


def encode_gradient(g: np.ndarray, config: TrainConfig, rng: np.random.Generator) -> tuple[Message, dict[str, float]]:
    """Clip (optional) and quantize one layer's gradient into a message; returns it with the diagnostics."""
    g = np.asarray(g, dtype=np.float64)
    if not np.all(np.isfinite(g)):
        raise ValueError(f"gradient of shape {g.shape} has {int(np.sum(~np.isfinite(g)))} NaN/inf entries")
    clipped = g if config.clip is None else clip_gradient(g, config.clip)[0]
    if config.grad_bits is None:
        message = encode_float(clipped)
    else:
        codes, s = stochastic_quantize_codes(clipped, config.grad_bits, rng)
        message = encode_codes(codes, config.grad_bits, s)
    sent_sq = float(np.sum(clipped * clipped)) if config.grad_bits is None else \
        float(s * s * np.sum(np.square(codes, dtype=np.int64))) / (2 ** (config.grad_bits - 1) - 1) ** 2
    stats = {"grad_sq": float(np.sum(g * g)), "sent_sq": sent_sq,
             "inf_l1": float(np.max(np.abs(g)) * np.sum(np.abs(g))) if g.size else 0.0,
             "clip_sq": float(np.sum((clipped - g) ** 2)), "var": float(np.var(g)) if g.size else 0.0}
    return message, stats


_CONTROLLER: Any = None  # one threadpoolctl controller per process: finding the BLAS libraries costs milliseconds


@contextmanager
def worker_threads(blas_threads: int) -> Iterator[None]:
    """Compute with ``blas_threads`` BLAS threads and one tinyqnn thread, then restore both.

    How BLAS splits a float32 product among threads changes how its sums are rounded; a worker's reply must not
    depend on the process it runs in (this one, whatever its threads, or a Dask worker, which has one BLAS
    thread), so every worker step runs with the configuration's count.
    """
    global _CONTROLLER
    from threadpoolctl import ThreadpoolController

    from ..engine import parallel

    if _CONTROLLER is None:
        _CONTROLLER = ThreadpoolController()
    threads, parallel.THREADS = parallel.THREADS, 1
    try:
        with _CONTROLLER.limit(limits=blas_threads, user_api="blas"):
            yield
    finally:
        parallel.THREADS = threads


def worker_step(problem: Any, worker: int, t: int, weights: Sequence[Message], config: TrainConfig) -> WorkerReply:
    """One worker's iteration: decode the weights, gradient on its own batch, clip/quantize, reply. Pure: the
    same reply in any process (``worker_threads`` fixes the thread counts the float32 sums depend on)."""
    params = [m.decode() for m in weights]
    x, y = problem.batch(worker, t)
    with worker_threads(config.blas_threads):
        loss, grads = loss_and_grads(problem, params, x, y)
    rng = np.random.default_rng([config.seed, 7, worker, t])  # the worker's own quantizer stream
    messages, stats = [], {"grad_sq": [], "sent_sq": [], "inf_l1": [], "clip_sq": [], "var": []}
    for g in grads:
        message, s = encode_gradient(g, config, rng)
        messages.append(message)
        for key, value in s.items():
            stats[key].append(value)
    return WorkerReply(worker, t, loss, messages, stats)


class Server:
    """Holds the full-precision weights and the optimizer state; averages replies, steps, re-quantizes.

    Args:
        params: initial full-precision weights (float64 arrays); ``names`` for messages;
        quantize: which parameters get weight-quantized (the others travel as float32).
    """

    def __init__(self, params: Sequence[np.ndarray], names: Sequence[str], quantize: Sequence[bool],
                 config: TrainConfig):
        if not (len(params) == len(names) == len(quantize)):
            raise ValueError(f"{len(params)} parameters, {len(names)} names, {len(quantize)} quantize flags")
        self.params = [np.array(p, dtype=np.float64) for p in params]
        self.names, self.quantize, self.config = list(names), list(quantize), config
        self.t = 0
        self.exp_avg = [np.zeros_like(p) for p in self.params]
        self.exp_avg_sq = [np.zeros_like(p) for p in self.params]
        self.alphas: list[float | None] = [None] * len(self.params)
        self._messages = self._quantize()

    def preconditioner(self, i: int) -> np.ndarray:
        """D = sqrt(v_hat) + eps for parameter i (eps alone before the first step: plain least squares)."""
        v = self.exp_avg_sq[i]
        if self.t > 0:
            v = v / (1 - self.config.beta**self.t)
        return np.sqrt(v) + self.config.eps

    def _quantize(self) -> list[Message]:
        messages = []
        for i, (p, q) in enumerate(zip(self.params, self.quantize)):
            bits = self.config.weight_bits
            if not q or bits is None:
                messages.append(encode_float(p))
                continue
            # warm start LAQ from the last alpha (weights move little per step), as the 2018 code reuses b
            result = loss_aware_quantize(p, self.preconditioner(i), bits, alpha0=self.alphas[i])
            alpha = float(np.float32(result.alpha))  # alpha travels as float32, and workers and server agree on it
            self.alphas[i] = alpha
            messages.append(encode_codes(result.codes, bits, alpha))
        return messages

    def broadcast(self) -> list[Message]:
        """The quantized weights w_hat_t as messages (the same object goes to every worker)."""
        return self._messages

    def quantized_params(self) -> list[np.ndarray]:
        """w_hat_t as float64 arrays (what the workers compute with)."""
        return [m.decode() for m in self._messages]

    def check_replies(self, replies: Sequence[WorkerReply | None], t: int) -> None:
        """Every worker 0..N-1 exactly once, at iteration t, one message per parameter of the right shape."""
        n = self.config.workers
        if len(replies) != n:
            raise WorkerFailure(f"iteration {t}: expected {n} worker replies, got {len(replies)}; no update applied")
        for expected, reply in enumerate(replies):
            if reply is None:
                raise WorkerFailure(f"iteration {t}: worker {expected} sent no gradient; refusing to average "
                                    f"{n - 1} of {n} gradients, no update applied")
            if reply.worker != expected or reply.t != t:
                raise WorkerFailure(f"iteration {t}: reply slot {expected} holds worker {reply.worker}'s reply for "
                                    f"iteration {reply.t}; no update applied")
            if len(reply.messages) != len(self.params):
                raise ValueError(f"iteration {t}: worker {expected} sent {len(reply.messages)} gradients for "
                                 f"{len(self.params)} parameters {self.names}")
            for name, p, m in zip(self.names, self.params, reply.messages):
                if tuple(m.shape) != p.shape:
                    raise ValueError(f"iteration {t}: worker {expected} sent a gradient of shape {tuple(m.shape)} "
                                     f"for parameter {name!r} of shape {p.shape}")

    def step(self, replies: Sequence[WorkerReply | None]) -> None:
        """Average the N decoded gradients (in worker order), take the optimizer step, re-quantize."""
        t = self.t + 1
        self.check_replies(replies, t)
        cfg = self.config
        lr = cfg.lr / math.sqrt(t) if cfg.lr_decay == "sqrt" else cfg.lr
        beta1 = cfg.beta1 if cfg.optimizer == "adam" else 0.0
        new_params = []
        for i, p in enumerate(self.params):
            g = sum(r.messages[i].decode() for r in replies) / len(replies)
            m = beta1 * self.exp_avg[i] + (1 - beta1) * g
            v = cfg.beta * self.exp_avg_sq[i] + (1 - cfg.beta) * g * g
            step = (m / (1 - beta1**t)) / (np.sqrt(v / (1 - cfg.beta**t)) + cfg.eps)
            new = p - lr * step
            if cfg.weight_clip is not None:
                new = np.clip(new, -cfg.weight_clip, cfg.weight_clip)
            if not np.all(np.isfinite(new)):
                raise FloatingPointError(f"iteration {t}: parameter {self.names[i]!r} became NaN/inf "
                                         f"(lr {lr:g}); the run stops here")
            new_params.append((new, m, v))
        # commit only when every parameter is fine: a failed step leaves the server as it was
        for i, (new, m, v) in enumerate(new_params):
            self.params[i], self.exp_avg[i], self.exp_avg_sq[i] = new, m, v
        self.t = t
        self._messages = self._quantize()


class InProcessExecutor:
    """Runs the workers one after another in this process (the deterministic teaching model)."""

    def setup(self, problem: Any) -> None:
        self.problem = problem

    def run(self, t: int, weights: list[Message], config: TrainConfig) -> list[WorkerReply]:
        replies = []
        for n in range(config.workers):
            try:
                replies.append(worker_step(self.problem, n, t, weights, config))
            except Exception as error:  # name the worker and iteration; nothing is averaged
                raise WorkerFailure(f"worker {n} failed at iteration {t}: {type(error).__name__}: {error}; "
                                    f"no update applied (weights are those after iteration {t - 1})") from error
        return replies

    def close(self) -> None:
        pass


@dataclass
class History:
    """Per-iteration records of a run. ``loss[t-1]`` = mean worker loss f_t(w_hat_t); ``bits_up``/``bits_down``:
    bits sent that iteration; ``blowup``: per parameter, sum_t ||Q g||^2 / sum_t ||g||^2 over all workers, etc."""

    config: dict[str, Any]
    loss: list[float] = field(default_factory=list)
    bits_up: list[int] = field(default_factory=list)
    bits_down: list[int] = field(default_factory=list)
    sums: dict[str, list[float]] = field(default_factory=dict)
    sizes: list[int] = field(default_factory=list)
    evals: list[dict[str, float]] = field(default_factory=list)

    def average_loss(self) -> np.ndarray:
        """The paper's curve: sum_{s <= t} f_s / t."""
        return np.cumsum(self.loss) / np.arange(1, len(self.loss) + 1)

    def blowup(self) -> list[float]:
        """Per parameter: the mean over the run of ||Q(Clip g)||^2 / ||g||^2, as sum over sum."""
        return [s / g if g > 0 else math.nan for s, g in zip(self.sums["sent_sq"], self.sums["grad_sq"])]

    def spread(self) -> list[float]:
        """Per parameter: sum_t ||g||_inf ||g||_1 / sum_t ||g||^2 (Lemma 3's factor; at most (1 + sqrt d) / 2)."""
        return [a / g if g > 0 else math.nan for a, g in zip(self.sums["inf_l1"], self.sums["grad_sq"])]

    def clip_bias(self) -> list[float]:
        """Per parameter: sum_t ||Clip(g) - g||^2 / sum_t d sigma^2 (compare with F(c))."""
        return [c / (d * v) if v > 0 else math.nan
                for c, v, d in zip(self.sums["clip_sq"], self.sums["var"], self.sizes)]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def train(problem: Any, config: TrainConfig, executor: Any = None, progress: bool = False,
          eval_every: int = 0, callback: Callable[[int, Server, History], None] | None = None
          ) -> tuple[Server, History]:
    """Train ``problem`` for ``config.iterations`` iterations; returns the server (its weights) and the history.

    executor: ``InProcessExecutor()`` by default, or a ``DaskExecutor``. eval_every: call ``problem.evaluate`` on
    the quantized weights every that many iterations (and at the end) when > 0.
    """
    executor = executor or InProcessExecutor()
    server = Server(problem.init_params(config.seed), problem.names, problem.quantize, config)
    history = History(config=asdict(config), sums={k: [0.0] * len(server.params)
                                                   for k in ("grad_sq", "sent_sq", "inf_l1", "clip_sq", "var")},
                      sizes=[p.size for p in server.params])
    executor.setup(problem)
    steps = range(1, config.iterations + 1)
    if progress:
        from tqdm.auto import tqdm

        steps = tqdm(steps, desc=config.label, leave=False)
    for t in steps:
        weights = server.broadcast()
        replies = executor.run(t, weights, config)
        server.step(replies)
        losses = [r.loss for r in replies]
        if not all(math.isfinite(x) for x in losses):
            raise FloatingPointError(f"iteration {t}: worker losses {losses} are not finite; the run stops here")
        history.loss.append(float(np.mean(losses)))
        history.bits_down.append(config.workers * sum(m.nbits for m in weights))
        history.bits_up.append(sum(m.nbits for r in replies for m in r.messages))
        for key, acc in history.sums.items():
            for r in replies:
                for i, value in enumerate(r.stats[key]):
                    acc[i] += value
        if eval_every and (t % eval_every == 0 or t == config.iterations):
            history.evals.append({"t": t, **problem.evaluate(server.quantized_params())})
        if callback is not None:
            callback(t, server, history)
    return server, history
