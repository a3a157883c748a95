"""Data-parallel training with quantized weights/gradients (tinyqnn.distributed.training), in process."""
import math
from dataclasses import dataclass

import numpy as np
import pytest

from tinyqnn.data import mnist_subset
from tinyqnn.distributed import (
    InProcessExecutor, LinearProblem, MLPProblem, Server, TrainConfig, WorkerFailure, loss_and_grads, train,
)
from tinyqnn.engine.gradcheck import gradcheck


@pytest.fixture(scope="module")
def tiny_mlp():
    train_set, test_set = mnist_subset(train=True), mnist_subset(train=False)
    return MLPProblem.from_datasets(6, train_set, test_set, workers=2, batch_size=16, dtype=np.float64)


def test_linear_problem_gradient_against_central_differences():
    p = LinearProblem(d=7, batch_size=5, spike=3.0)
    x, y = p.batch(0, 1)
    assert gradcheck(lambda w: p.loss([w], x, y), np.random.default_rng(0).standard_normal(7))


def test_mlp_problem_gradient_against_central_differences(tiny_mlp):
    x, y = tiny_mlp.batch(1, 2)
    x, y = x[:4], y[:4]
    params = tiny_mlp.init_params(0)
    params[1] = np.random.default_rng(1).standard_normal(6) * 0.1  # nonzero biases: every path is exercised
    assert gradcheck(lambda *ps: tiny_mlp.loss(list(ps), x, y), *params)


def test_mlp_shards_are_disjoint_and_batches_come_from_the_own_shard(tiny_mlp):
    a, b = tiny_mlp.shards
    assert not np.intersect1d(a, b).size and len(a) + len(b) == len(tiny_mlp.train_labels)
    _, y = tiny_mlp.batch(1, 5)
    per_epoch = len(b) // 16
    order = np.random.default_rng([0, 5, 1, 4 // per_epoch]).permutation(len(b))
    assert np.array_equal(y, tiny_mlp.train_labels[b[order[(4 % per_epoch) * 16:(4 % per_epoch + 1) * 16]]])


def test_first_rmsprop_step_by_hand():
    """One worker, FP weights and gradients: w1 = w0 - lr * g / (sqrt(g^2) + eps) = w0 - lr * sign(g)."""
    p = LinearProblem(d=5)
    cfg = TrainConfig(workers=1, iterations=1, weight_bits=None, grad_bits=None, lr=0.1)
    server, _ = train(p, cfg)
    w0 = p.init_params(0)[0]
    w0_sent = w0.astype(np.float32).astype(np.float64)  # the weights travel as float32
    _, (g,) = loss_and_grads(p, [w0_sent], *p.batch(0, 1))
    g32 = g.astype(np.float32).astype(np.float64)
    assert np.allclose(server.params[0], w0 - 0.1 * g32 / (np.abs(g32) + 1e-8), rtol=0, atol=1e-12)


def test_server_averages_all_workers_at_the_quantized_weights():
    """Adam, LAB weights, FP gradients, 3 workers: the step uses the mean of the gradients at w_hat."""
    p = LinearProblem(d=6)
    cfg = TrainConfig(workers=3, iterations=1, weight_bits=1, grad_bits=None, optimizer="adam", lr=0.01,
                      lr_decay="none")
    server = Server(p.init_params(0), p.names, p.quantize, cfg)
    w_hat = server.quantized_params()[0]
    assert len(np.unique(np.abs(w_hat))) == 1  # LAB: +-alpha only
    replies = InProcessExecutor()
    replies.setup(p)
    r = replies.run(1, server.broadcast(), cfg)
    grads = [loss_and_grads(p, [w_hat], *p.batch(n, 1))[1][0].astype(np.float32).astype(np.float64) for n in range(3)]
    g = sum(grads) / 3
    w_before = server.params[0].copy()
    server.step(r)
    # Adam's first step: m_hat = g, v_hat = g^2
    assert np.allclose(server.params[0], w_before - 0.01 * g / (np.abs(g) + 1e-8), atol=1e-12)
    assert not np.allclose(server.params[0], w_before - 0.01 * grads[0] / (np.abs(grads[0]) + 1e-8), atol=1e-6)


@pytest.mark.parametrize("weight_bits, grad_bits, down_per_layer, up_per_layer", [
    (1, 2, 104 + 32, 200 + 32), (3, 3, 304 + 32, 304 + 32), (None, None, 3200, 3200), (2, 4, 200 + 32, 400 + 32),
])
def test_bit_accounting_is_exact(weight_bits, grad_bits, down_per_layer, up_per_layer):
    """d = 100: m-bit messages carry ceil(100 m / 8) bytes + a 32-bit scale; float32 messages 3200 bits."""
    _, h = train(LinearProblem(d=100), TrainConfig(workers=2, iterations=3, weight_bits=weight_bits,
                                                  grad_bits=grad_bits))
    assert h.bits_down == [2 * down_per_layer] * 3
    assert h.bits_up == [2 * up_per_layer] * 3


def test_runs_are_deterministic_and_seeded():
    cfg = TrainConfig(workers=2, iterations=20, weight_bits=2, grad_bits=2, clip=3.0)
    s1, h1 = train(LinearProblem(d=30), cfg)
    s2, h2 = train(LinearProblem(d=30), cfg)
    s3, _ = train(LinearProblem(d=30), TrainConfig(**{**cfg.__dict__, "seed": 1}))
    assert np.array_equal(s1.params[0], s2.params[0]) and h1.loss == h2.loss
    assert not np.array_equal(s1.params[0], s3.params[0])


def test_training_converges_to_a_floor_that_grows_with_weight_quantization():
    """FP weights reach the noise floor (0.02); LAB's expected loss stays well above it (Theorem 1's floor)."""
    fp, _ = train(LinearProblem(d=20), TrainConfig(workers=2, iterations=1500, weight_bits=None, lr=0.1))
    lab, _ = train(LinearProblem(d=20), TrainConfig(workers=2, iterations=1500, weight_bits=1, lr=0.1))
    p = LinearProblem(d=20)
    fp_loss = p.evaluate(fp.quantized_params())["expected_loss"]
    lab_loss = p.evaluate(lab.quantized_params())["expected_loss"]
    assert fp_loss < 0.025 < 0.03 < lab_loss


def test_mlp_learns_with_laq3_and_sq3(tiny_mlp):
    cfg = TrainConfig(workers=2, iterations=150, weight_bits=3, grad_bits=3, optimizer="adam", lr=0.01,
                      lr_decay="none")
    server, h = train(tiny_mlp, cfg, eval_every=150)
    assert h.evals[-1]["test_accuracy"] > 60
    assert np.mean(h.loss[-20:]) < 0.6 * np.mean(h.loss[:5])
    # only the weight matrices are quantized; biases travel as float32
    assert server.alphas[0] is not None and server.alphas[1] is None


@pytest.mark.parametrize("kwargs, match", [
    (dict(weight_bits=0), "bits"), (dict(grad_bits=0), "bits"), (dict(grad_bits=1), ">= 2"),
    (dict(clip=0.0), "c must be"), (dict(clip=-3.0), "c must be"), (dict(workers=0), "workers"),
    (dict(optimizer="sgd"), "optimizer"),
])
def test_config_errors(kwargs, match):
    with pytest.raises(ValueError, match=match):
        TrainConfig(**kwargs)


def test_mismatched_worker_shapes_are_named():
    from tinyqnn.distributed import WorkerReply
    from tinyqnn.distributed.packing import encode_float

    p = LinearProblem(d=4)
    cfg = TrainConfig(workers=2, iterations=1)
    server = Server(p.init_params(0), p.names, p.quantize, cfg)
    good = WorkerReply(0, 1, 0.0, [encode_float(np.zeros(4))], {})
    bad = WorkerReply(1, 1, 0.0, [encode_float(np.zeros(5))], {})
    with pytest.raises(ValueError, match=r"worker 1 sent a gradient of shape \(5,\) for parameter 'w' of shape \(4,\)"):
        server.step([good, bad])
    assert server.t == 0


@dataclass
class DiesAt(LinearProblem):
    """Worker ``who`` raises at iteration ``when`` (a crashed worker in the in-process model)."""

    who: int = 1
    when: int = 3

    def batch(self, worker, t):
        if worker == self.who and t == self.when:
            raise ConnectionError("worker lost")
        return super().batch(worker, t)


def test_a_failing_worker_stops_the_run_without_averaging_the_others():
    cfg = TrainConfig(workers=2, iterations=5, grad_bits=2)
    with pytest.raises(WorkerFailure, match="worker 1 failed at iteration 3: ConnectionError"):
        train(DiesAt(d=10), cfg)
    # no partial update: the state after the failure equals a clean 2-iteration run
    seen = {}
    with pytest.raises(WorkerFailure):
        train(DiesAt(d=10), cfg, callback=lambda t, server, h: seen.update(t=t, w=server.params[0].copy()))
    clean, _ = train(LinearProblem(d=10), TrainConfig(**{**cfg.__dict__, "iterations": 2}))
    assert seen["t"] == 2 and np.array_equal(seen["w"], clean.params[0])


def test_missing_or_misrouted_replies_are_refused():
    p = LinearProblem(d=4)
    cfg = TrainConfig(workers=2, iterations=1)
    server = Server(p.init_params(0), p.names, p.quantize, cfg)
    ex = InProcessExecutor()
    ex.setup(p)
    replies = ex.run(1, server.broadcast(), cfg)
    with pytest.raises(WorkerFailure, match="worker 1 sent no gradient"):
        server.step([replies[0], None])
    with pytest.raises(WorkerFailure, match="expected 2 worker replies, got 1"):
        server.step(replies[:1])
    with pytest.raises(WorkerFailure, match="holds worker 1's reply"):
        server.step([replies[1], replies[0]])
    assert server.t == 0
    server.step(replies)
    assert server.t == 1


def test_mlp_problem_rejects_bad_shards():
    imgs = np.zeros((100, 28, 28), np.uint8)
    with pytest.raises(ValueError, match=r"train images must be \(N, 28, 28\)"):
        MLPProblem(4, np.zeros((100, 28, 27), np.uint8), np.zeros(100, int), imgs, np.zeros(100, int))
    with pytest.raises(ValueError, match="shards of 12 < batch_size 64"):
        MLPProblem(4, imgs, np.zeros(100, int), imgs, np.zeros(100, int), workers=8)


def test_nan_gradient_is_not_sent():
    @dataclass
    class NaNProblem(LinearProblem):
        def batch(self, worker, t):
            x, y = super().batch(worker, t)
            return x, y * np.nan

    with pytest.raises(WorkerFailure, match="NaN"):
        train(NaNProblem(d=3), TrainConfig(workers=1, iterations=2, grad_bits=2))


def test_blowup_and_clip_bias_diagnostics():
    _, h = train(LinearProblem(d=1000), TrainConfig(workers=1, iterations=30, grad_bits=2))
    assert 1.5 < h.blowup()[0] < 1 + (1 + math.sqrt(1000)) / 2
    _, h = train(LinearProblem(d=1000), TrainConfig(workers=1, iterations=30, grad_bits=None, clip=1.0))
    assert h.blowup()[0] < 1 and h.clip_bias()[0] == pytest.approx(0.1507, rel=0.15)
