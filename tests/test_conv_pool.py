"""conv2d, max_pool2d, avg_pool2d: forward against slow nested-loop references and NumPy,
gradients against central differences, tie routing, dtypes and error messages."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tinyqnn
import tinyqnn.nn.functional as F
from tinyqnn import Tensor, gradcheck


# ---------------------------------------------------------------- obviously-correct references
def reference_conv2d(x, w, b, stride, padding):
    """One output element at a time: the definition of a (cross-correlation) convolution."""
    (sh, sw), (ph, pw) = stride, padding
    n, c, h, wd = x.shape
    f, _, kh, kw = w.shape
    xp = np.zeros((n, c, h + 2 * ph, wd + 2 * pw))
    xp[:, :, ph : ph + h, pw : pw + wd] = x
    oh, ow = (h + 2 * ph - kh) // sh + 1, (wd + 2 * pw - kw) // sw + 1
    out = np.zeros((n, f, oh, ow))
    for i in range(n):
        for k in range(f):
            for r in range(oh):
                for s in range(ow):
                    acc = 0.0 if b is None else float(b[k])
                    for ch in range(c):
                        for u in range(kh):
                            for v in range(kw):
                                acc += xp[i, ch, r * sh + u, s * sw + v] * w[k, ch, u, v]
                    out[i, k, r, s] = acc
    return out


def reference_pool2d(x, kernel, stride, padding, mode):
    """Max (padding -inf) or mean (padding counted as 0) of each window, one window at a time."""
    (kh, kw), (sh, sw), (ph, pw) = kernel, stride, padding
    n, c, h, w = x.shape
    fill = -np.inf if mode == "max" else 0.0
    xp = np.full((n, c, h + 2 * ph, w + 2 * pw), fill)
    xp[:, :, ph : ph + h, pw : pw + w] = x
    oh, ow = (h + 2 * ph - kh) // sh + 1, (w + 2 * pw - kw) // sw + 1
    out = np.zeros((n, c, oh, ow))
    for i in range(n):
        for ch in range(c):
            for r in range(oh):
                for s in range(ow):
                    window = [xp[i, ch, r * sh + u, s * sw + v] for u in range(kh) for v in range(kw)]
                    out[i, ch, r, s] = max(window) if mode == "max" else sum(window) / (kh * kw)
    return out


def numpy_conv2d(x, w, b, stride, padding):
    """Independent NumPy formulation: einsum over all shifted copies of the padded input."""
    (sh, sw), (ph, pw) = stride, padding
    xp = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    kh, kw = w.shape[2:]
    oh, ow = (xp.shape[2] - kh) // sh + 1, (xp.shape[3] - kw) // sw + 1
    out = sum(
        np.einsum("nchw,fc->nfhw", xp[:, :, u : u + sh * oh : sh, v : v + sw * ow : sw], w[:, :, u, v])
        for u in range(kh)
        for v in range(kw)
    )
    return out if b is None else out + b[None, :, None, None]


def distinct_values(rng, shape):
    """Values at least 1/size apart, so a max is never tied (nor flipped by a 1e-6 perturbation)."""
    size = int(np.prod(shape))
    return (rng.permutation(size).reshape(shape) / size - 0.5) * 4.0


# ---------------------------------------------------------------- hypothesis strategies
@st.composite
def conv_cases(draw):
    n, c, f = draw(st.integers(1, 3)), draw(st.integers(1, 3)), draw(st.integers(1, 3))
    kh, kw = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    sh, sw = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    ph, pw = draw(st.integers(0, 2)), draw(st.integers(0, 2))
    h = draw(st.integers(max(1, kh - 2 * ph), 8))
    w = draw(st.integers(max(1, kw - 2 * pw), 8))
    bias = draw(st.booleans())
    return (n, c, h, w), (f, c, kh, kw), (sh, sw), (ph, pw), bias


@st.composite
def pool_cases(draw):
    n, c = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    kh, kw = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    sh, sw = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    ph, pw = draw(st.integers(0, kh // 2)), draw(st.integers(0, kw // 2))
    h = draw(st.integers(max(1, kh - 2 * ph), 9))
    w = draw(st.integers(max(1, kw - 2 * pw), 9))
    return (n, c, h, w), (kh, kw), (sh, sw), (ph, pw)


# ---------------------------------------------------------------- conv2d
@settings(max_examples=25, deadline=None)
@given(conv_cases(), st.integers(0, 2**31 - 1))
def test_conv2d_forward_matches_loop_reference(case, seed):
    xs, ws, stride, padding, bias = case
    rng = np.random.default_rng(seed)
    x, w = rng.standard_normal(xs), rng.standard_normal(ws)
    b = rng.standard_normal(ws[0]) if bias else None
    out = F.conv2d(Tensor(x), Tensor(w), None if b is None else Tensor(b), stride=stride, padding=padding)
    expected = reference_conv2d(x, w, b, stride, padding)
    assert out.shape == expected.shape
    np.testing.assert_allclose(out.data, expected, rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(out.data, numpy_conv2d(x, w, b, stride, padding), rtol=1e-10, atol=1e-10)


@settings(max_examples=25, deadline=None)
@given(conv_cases(), st.integers(0, 2**31 - 1))
def test_conv2d_gradients(case, seed):
    xs, ws, stride, padding, bias = case
    rng = np.random.default_rng(seed)
    inputs = [rng.standard_normal(xs), rng.standard_normal(ws)] + ([rng.standard_normal(ws[0])] if bias else [])
    gradcheck(lambda x, w, *b: F.conv2d(x, w, *b, stride=stride, padding=padding), *inputs)


@settings(max_examples=30, deadline=None)
@given(conv_cases(), st.integers(1, 6), st.integers(1, 3000), st.booleans(), st.integers(1, 3), st.booleans(),
       st.integers(0, 2**31 - 1))
def test_conv2d_in_sample_blocks(case, n, block_bytes, rows, threads, keep, seed):
    """Columns built a few samples at a time (any block size, a short last block), in full or per kernel
    row, kept from forward for dW or rebuilt, give the same forward and gradients: the block size is
    forced tiny so that every batch is split, the per-row path is forced on (where the stride allows
    it) or off, and the batch is shared by 1-3 threads (more threads than samples included)."""
    import tinyqnn.engine.parallel as parallel
    import tinyqnn.nn.ops.conv as conv_ops

    xs, ws, stride, padding, bias = case
    xs = (n, *xs[1:])
    rng = np.random.default_rng(seed)
    x, w = rng.standard_normal(xs), rng.standard_normal(ws)
    b = rng.standard_normal(ws[0]) if bias else None
    names = "BLOCK_BYTES", "WHOLE_BATCH_BYTES", "MIN_ROW_DEPTH", "KEEP_COLUMNS_BYTES"
    saved = [getattr(conv_ops, name) for name in names], parallel.THREADS
    # the large-layer paths, on small data
    conv_ops.BLOCK_BYTES, conv_ops.WHOLE_BATCH_BYTES = block_bytes, 0
    conv_ops.MIN_ROW_DEPTH, parallel.THREADS = 1 if rows else 10**9, threads
    conv_ops.KEEP_COLUMNS_BYTES = 1 << 30 if keep else 0
    try:
        out = F.conv2d(Tensor(x), Tensor(w), None if b is None else Tensor(b), stride=stride, padding=padding)
        np.testing.assert_allclose(out.data, numpy_conv2d(x, w, b, stride, padding), rtol=1e-10, atol=1e-10)
        gradcheck(lambda x, w: F.conv2d(x, w, stride=stride, padding=padding), x, w)
    finally:
        for name, value in zip(names, saved[0]):
            setattr(conv_ops, name, value)
        parallel.THREADS = saved[1]


def test_conv2d_keeps_small_columns_for_the_weight_gradient(rng, monkeypatch):
    """LeNet-sized columns are kept from forward (no x_pad saved); large ones, and inference, keep nothing."""
    import tinyqnn.nn.ops.conv as conv_ops

    x, w = Tensor(rng.standard_normal((4, 2, 6, 6)), requires_grad=True), Tensor(rng.standard_normal((3, 2, 3, 3)),
                                                                                 requires_grad=True)
    out = F.conv2d(x, w, padding=1)
    x_pad, cols, _ = out._ctx.saved_tensors
    assert x_pad is None and cols.shape == (4, 2 * 3 * 3, 36)
    monkeypatch.setattr(conv_ops, "KEEP_COLUMNS_BYTES", cols.nbytes - 1)
    x_pad, cols, _ = F.conv2d(x, w, padding=1)._ctx.saved_tensors
    assert cols is None and x_pad.shape == (4, 2, 8, 8)
    assert F.conv2d(x, w.detach(), padding=1)._ctx.saved_tensors[:2] == (None, None)  # dW not needed


@pytest.mark.parametrize("kernel, stride, padding", [
    ((3, 3), (1, 1), (1, 1)),  # stride 1: dx as a correlation with the flipped filters
    ((2, 3), (1, 1), (1, 2)),  # padding = kernel - 1 along w: still the flipped path
    ((1, 1), (1, 1), (1, 1)),  # padding >= kernel: col2im path even at stride 1
    ((3, 2), (2, 3), (1, 0)),  # stride > 1: col2im path, stride does not divide the input
])
@pytest.mark.parametrize("whole_batch_bytes", [0, 1 << 23])
def test_conv2d_input_gradient_paths_against_loop_reference(kernel, stride, padding, whole_batch_bytes, rng,
                                                             monkeypatch):
    """Every way of computing dx (flipped filters, col2im for small and for large layers) agrees with
    the transposed reference: dx = sum over outputs of dout * the weights each output read."""
    import tinyqnn.nn.ops.conv as conv_ops

    monkeypatch.setattr(conv_ops, "WHOLE_BATCH_BYTES", whole_batch_bytes)
    monkeypatch.setattr(conv_ops, "MIN_ROW_DEPTH", 1)  # per-kernel-row columns wherever the stride allows
    x = rng.standard_normal((2, 3, 7, 8))
    w = rng.standard_normal((4, 3, *kernel))
    xt = Tensor(x, requires_grad=True)
    out = F.conv2d(xt, Tensor(w), stride=stride, padding=padding)
    g = rng.standard_normal(out.shape)
    out.backward(g)
    (sh, sw), (ph, pw) = stride, padding
    dxp = np.zeros((2, 3, 7 + 2 * ph, 8 + 2 * pw))
    for r in range(out.shape[2]):
        for s in range(out.shape[3]):
            window = (slice(None), slice(None), slice(r * sh, r * sh + kernel[0]), slice(s * sw, s * sw + kernel[1]))
            dxp[window] += np.einsum("nf,fcij->ncij", g[:, :, r, s], w)
    np.testing.assert_allclose(xt.grad.data, dxp[:, :, ph : ph + 7, pw : pw + 8], rtol=1e-10, atol=1e-10)


def test_conv2d_threads_split_the_batch_and_agree(rng, monkeypatch):
    """With THREADS > 1 every path runs on slices of the batch in worker threads; results are identical."""
    import threading

    import tinyqnn.engine.parallel as parallel
    import tinyqnn.nn.ops.conv as conv_ops

    x, w = rng.standard_normal((5, 4, 9, 9)), rng.standard_normal((3, 4, 3, 3))
    results, original = {}, conv_ops.correlate_into
    for threads in (1, 2):
        monkeypatch.setattr(parallel, "THREADS", threads)
        monkeypatch.setattr(conv_ops, "WHOLE_BATCH_BYTES", 0)
        monkeypatch.setattr(conv_ops, "MIN_ROW_DEPTH", 1)
        seen = set()
        monkeypatch.setattr(conv_ops, "correlate_into",
                            lambda *a: seen.add(threading.current_thread().name) or original(*a))
        for stride in (1, 2):
            xt, wt = Tensor(x, requires_grad=True), Tensor(w, requires_grad=True)
            F.conv2d(xt, wt, stride=stride, padding=1).sum().backward()
            results[threads, stride] = xt.grad.data, wt.grad.data
        assert any(name.startswith("tinyqnn-worker") for name in seen) == (threads > 1)
    for stride in (1, 2):
        for a, b in zip(results[1, stride], results[2, stride]):
            np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)


def test_conv2d_lenet_shapes_float32(rng):
    """The LeNet-5 layers: float32 result equals a float64 NumPy computation, and stays float32."""
    for xs, ws, padding in [((64, 1, 28, 28), (6, 1, 5, 5), 2), ((64, 6, 14, 14), (16, 6, 5, 5), 0)]:
        x = rng.standard_normal(xs).astype(np.float32)
        w = rng.standard_normal(ws).astype(np.float32)
        b = rng.standard_normal(ws[0]).astype(np.float32)
        xt, wt, bt = Tensor(x, requires_grad=True), Tensor(w, requires_grad=True), Tensor(b, requires_grad=True)
        out = F.conv2d(xt, wt, bt, padding=padding)
        assert out.dtype == np.float32
        expected = numpy_conv2d(x.astype(np.float64), w.astype(np.float64), b.astype(np.float64), (1, 1),
                                (padding, padding))
        np.testing.assert_allclose(out.data, expected, rtol=1e-4, atol=1e-4)
        out.sum().backward()
        assert xt.grad.dtype == wt.grad.dtype == bt.grad.dtype == np.float32
        # d(sum out)/db = number of output positions per filter; a hand-countable check
        np.testing.assert_allclose(bt.grad.data, np.full(ws[0], out.shape[0] * out.shape[2] * out.shape[3]))


def test_conv2d_single_sample_loop_reference_lenet(rng):
    x = rng.standard_normal((1, 6, 14, 14))
    w = rng.standard_normal((16, 6, 5, 5))
    out = F.conv2d(Tensor(x), Tensor(w))
    np.testing.assert_allclose(out.data, reference_conv2d(x, w, None, (1, 1), (0, 0)), rtol=1e-10, atol=1e-10)


def test_conv2d_input_without_grad_gets_none_and_weight_grad_still_right(rng):
    x = Tensor(rng.standard_normal((2, 1, 6, 6)))
    w = Tensor(rng.standard_normal((3, 1, 3, 3)), requires_grad=True)
    F.conv2d(x, w, padding=1).sum().backward()
    assert x.grad is None
    # d(sum out)/dw[f, 0, u, v] = sum of the input pixels that kernel tap (u, v) ever sees
    xp = np.pad(x.data, ((0, 0), (0, 0), (1, 1), (1, 1)))
    expected = np.array([[xp[:, 0, u : u + 6, v : v + 6].sum() for v in range(3)] for u in range(3)])
    np.testing.assert_allclose(w.grad.data, np.broadcast_to(expected, (3, 1, 3, 3)), rtol=1e-10)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_conv2d_keeps_dtype(dtype, rng):
    x = Tensor(rng.standard_normal((2, 2, 5, 5)).astype(dtype), requires_grad=True)
    w = Tensor(rng.standard_normal((3, 2, 3, 3)).astype(dtype), requires_grad=True)
    b = Tensor(np.zeros(3, dtype=dtype), requires_grad=True)
    out = F.conv2d(x, w, b, stride=2, padding=1)
    assert out.dtype == dtype
    out.sum().backward()
    assert x.grad.dtype == w.grad.dtype == b.grad.dtype == dtype


def test_conv2d_errors(rng):
    x = Tensor(rng.standard_normal((2, 3, 8, 8)))
    w = Tensor(rng.standard_normal((4, 3, 3, 3)))
    with pytest.raises(ValueError, match=r"\(N, C, H, W\).*\(3, 8, 8\)"):
        F.conv2d(Tensor(rng.standard_normal((3, 8, 8))), w)
    with pytest.raises(ValueError, match=r"\(F, C, KH, KW\)"):
        F.conv2d(x, Tensor(rng.standard_normal((4, 3, 3))))
    with pytest.raises(ValueError, match=r"\(2, 3, 8, 8\).*\(4, 2, 3, 3\)"):
        F.conv2d(x, Tensor(rng.standard_normal((4, 2, 3, 3))))
    with pytest.raises(ValueError, match="larger than the padded input"):
        F.conv2d(x, Tensor(rng.standard_normal((4, 3, 9, 9))))
    F.conv2d(x, Tensor(rng.standard_normal((4, 3, 9, 9))), padding=1)  # fits once padded
    with pytest.raises(ValueError, match="stride must be positive"):
        F.conv2d(x, w, stride=0)
    with pytest.raises(ValueError, match="stride must be positive"):
        F.conv2d(x, w, stride=(1, -1))
    with pytest.raises(ValueError, match="padding must be non-negative"):
        F.conv2d(x, w, padding=-1)
    with pytest.raises(ValueError, match="bias"):
        F.conv2d(x, w, Tensor(np.zeros(3)))
    with pytest.raises(TypeError, match="mix floating dtypes"):
        F.conv2d(Tensor(x.data.astype(np.float32)), w)


# ---------------------------------------------------------------- pooling
@settings(max_examples=25, deadline=None)
@given(pool_cases(), st.sampled_from(["max", "avg"]), st.integers(0, 2**31 - 1))
def test_pool_forward_matches_loop_reference(case, mode, seed):
    xs, kernel, stride, padding = case
    x = np.random.default_rng(seed).standard_normal(xs)
    pool = F.max_pool2d if mode == "max" else F.avg_pool2d
    out = pool(Tensor(x), kernel, stride, padding)
    expected = reference_pool2d(x, kernel, stride, padding, mode)
    assert out.shape == expected.shape
    np.testing.assert_allclose(out.data, expected, rtol=1e-12, atol=1e-12)


@settings(max_examples=25, deadline=None)
@given(pool_cases(), st.sampled_from(["max", "avg"]), st.integers(0, 2**31 - 1))
def test_pool_gradients(case, mode, seed):
    xs, kernel, stride, padding = case
    x = distinct_values(np.random.default_rng(seed), xs)
    pool = F.max_pool2d if mode == "max" else F.avg_pool2d
    gradcheck(lambda t: pool(t, kernel, stride, padding), x)


def test_pool_stride_defaults_to_kernel(rng):
    x = Tensor(rng.standard_normal((2, 3, 9, 7)))
    for pool, mode in [(F.max_pool2d, "max"), (F.avg_pool2d, "avg")]:
        out = pool(x, 3)
        assert out.shape == (2, 3, 3, 2)
        np.testing.assert_allclose(out.data, reference_pool2d(x.data, (3, 3), (3, 3), (0, 0), mode))


def test_pool_lenet_shapes_against_numpy_reshape(rng):
    """2x2/2 pooling of the LeNet feature maps equals the plain-NumPy block reduction."""
    for shape in [(64, 6, 28, 28), (64, 16, 10, 10)]:
        x = rng.standard_normal(shape).astype(np.float32)
        blocks = x.reshape(shape[0], shape[1], shape[2] // 2, 2, shape[3] // 2, 2)
        mx, av = F.max_pool2d(Tensor(x), 2), F.avg_pool2d(Tensor(x), 2)
        assert mx.dtype == av.dtype == np.float32
        np.testing.assert_array_equal(mx.data, blocks.max(axis=(3, 5)))
        np.testing.assert_allclose(av.data, blocks.mean(axis=(3, 5)), rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("stride", [2, 1])
def test_max_pool_ties_route_gradient_to_first_max_only(stride):
    """Like PyTorch: an all-equal window sends its whole gradient to its first (row-major) element."""
    x = Tensor(np.zeros((1, 1, 4, 4)), requires_grad=True)
    out = F.max_pool2d(x, 2, stride)
    out.backward(np.ones(out.shape))
    expected = np.zeros((4, 4))
    for r in range(out.shape[2]):
        for s in range(out.shape[3]):
            expected[r * stride, s * stride] += 1  # the window's top-left element
    np.testing.assert_array_equal(x.grad.data[0, 0], expected)
    assert x.grad.data.sum() == out.size  # one unit per window, never split or duplicated


def test_max_pool_tie_later_in_window():
    x = np.array([[[[0.0, 5.0], [5.0, 1.0]]]])  # max 5 at offsets 1 and 2: offset 1 wins
    t = Tensor(x, requires_grad=True)
    F.max_pool2d(t, 2).sum().backward()
    np.testing.assert_array_equal(t.grad.data[0, 0], [[0.0, 1.0], [0.0, 0.0]])


def test_max_pool_padding_is_minus_infinity():
    x = Tensor(-np.ones((1, 1, 2, 2)) * 7, requires_grad=True)  # all negative: zero padding would win
    out = F.max_pool2d(x, 2, stride=1, padding=1)
    np.testing.assert_array_equal(out.data, np.full((1, 1, 3, 3), -7.0))
    out.sum().backward()
    assert np.isfinite(x.grad.data).all() and x.grad.data.sum() == 9


def test_avg_pool_counts_padding_as_zero():
    x = Tensor(np.ones((1, 1, 2, 2)))
    out = F.avg_pool2d(x, 2, stride=1, padding=1)
    np.testing.assert_allclose(out.data[0, 0], [[0.25, 0.5, 0.25], [0.5, 1.0, 0.5], [0.25, 0.5, 0.25]])


def test_max_pool_without_grad_recording(rng):
    x = Tensor(rng.standard_normal((2, 2, 6, 6)), requires_grad=True)
    with tinyqnn.no_grad():
        out = F.max_pool2d(x, 3)
    assert not out.requires_grad and out.shape == (2, 2, 2, 2)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("pool", [F.max_pool2d, F.avg_pool2d])
def test_pool_keeps_dtype(pool, dtype, rng):
    x = Tensor(rng.standard_normal((2, 2, 6, 6)).astype(dtype), requires_grad=True)
    out = pool(x, 3, 2, 1)
    assert out.dtype == dtype
    out.sum().backward()
    assert x.grad.dtype == dtype


@pytest.mark.parametrize("pool", [F.max_pool2d, F.avg_pool2d])
def test_pool_errors(pool, rng):
    x = Tensor(rng.standard_normal((2, 3, 6, 6)))
    with pytest.raises(ValueError, match=r"\(N, C, H, W\)"):
        pool(Tensor(rng.standard_normal((3, 6, 6))), 2)
    with pytest.raises(ValueError, match="half the kernel"):
        pool(x, 2, padding=2)
    with pytest.raises(ValueError, match="larger than the padded input"):
        pool(x, 7)
    with pytest.raises(ValueError, match="positive"):
        pool(x, 2, stride=0)
    with pytest.raises(ValueError, match="positive"):
        pool(x, 0)


# ---------------------------------------------------------------- optional cross-check with PyTorch
def test_against_torch(rng):
    torch = pytest.importorskip("torch")
    x = rng.standard_normal((3, 4, 11, 9))
    w = rng.standard_normal((5, 4, 3, 2))
    b = rng.standard_normal(5)
    tx, tw, tb = (torch.tensor(a, requires_grad=True) for a in (x, w, b))
    ours = [Tensor(a, requires_grad=True) for a in (x, w, b)]
    out_t = torch.nn.functional.conv2d(tx, tw, tb, stride=(2, 1), padding=(1, 2))
    out_o = F.conv2d(*ours, stride=(2, 1), padding=(1, 2))
    g = rng.standard_normal(out_o.shape)
    out_t.backward(torch.tensor(g))
    out_o.backward(g)
    np.testing.assert_allclose(out_o.data, out_t.detach().numpy(), rtol=1e-10, atol=1e-10)
    for o, t in zip(ours, (tx, tw, tb)):
        np.testing.assert_allclose(o.grad.data, t.grad.numpy(), rtol=1e-10, atol=1e-10)
    xi = np.round(rng.standard_normal((2, 3, 9, 8)), 1)  # rounding makes ties common
    for ours_fn, torch_fn in [(F.max_pool2d, torch.nn.functional.max_pool2d),
                              (F.avg_pool2d, torch.nn.functional.avg_pool2d)]:
        for args in [(2,), (3, 2, 1), ((3, 2), (1, 2), (1, 0))]:
            tt, oo = torch.tensor(xi, requires_grad=True), Tensor(xi, requires_grad=True)
            a, c = torch_fn(tt, *args), ours_fn(oo, *args)
            g = rng.standard_normal(c.shape)
            a.backward(torch.tensor(g))
            c.backward(g)
            np.testing.assert_allclose(c.data, a.detach().numpy(), rtol=1e-12, atol=1e-12)
            np.testing.assert_allclose(oo.grad.data, tt.grad.numpy(), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("kw, w", [(3, 8), (3, 1), (3, 2), (1, 5), (5, 6), (5, 2)])
@pytest.mark.parametrize("block_bytes", [1, 10**9])
def test_row_blocks_shifted_copy_equals_the_definition(kw, w, block_bytes, rng, monkeypatch):
    """Narrow "same"-width maps copy each kernel offset as one shifted run per plane and zero the
    wrapped-around columns: the rows equal rows[n, (c, j), (y, o)] = x_pad[n, c, y, o + j] (built here
    from np.pad), for contiguous inputs (shifted path) and non-contiguous views (row-by-row path)."""
    import tinyqnn.nn.ops.conv as conv_ops

    monkeypatch.setattr(conv_ops, "BLOCK_BYTES", block_bytes)
    pw = kw // 2
    base = rng.standard_normal((5, 2, 4, w))
    # the second: the same values in a column-major (H, W) layout, which the row-by-row copy must take
    for x in (base, np.ascontiguousarray(base.transpose(0, 1, 3, 2)).transpose(0, 1, 3, 2)):
        assert x.flags.c_contiguous == (x is base) or w == 1
        x_pad = np.pad(x, ((0, 0), (0, 0), (1, 1), (pw, pw)))
        expected = np.stack([x_pad[:, :, :, j : j + w] for j in range(kw)], axis=2).reshape(5, 2 * kw, -1)
        for shifted in (True, False):
            monkeypatch.setattr(conv_ops, "SHIFTED_COPY_MAX_WIDTH", 10**9 if shifted else 0)
            got = np.concatenate([rows.copy() for _, _, rows in conv_ops.row_blocks(x, kw, 1, w, (1, pw))])
            np.testing.assert_array_equal(got, expected)


@pytest.mark.parametrize("shifted", [True, False])
def test_conv2d_per_row_path_gradients_with_shifted_copies(shifted, rng, monkeypatch):
    """The per-kernel-row path (forward, dW and the dx correlation) on a narrow "same" map, with the
    shifted copies on and off: forward against the loop reference, gradients against central differences."""
    import tinyqnn.nn.ops.conv as conv_ops

    monkeypatch.setattr(conv_ops, "MIN_ROW_DEPTH", 1)
    monkeypatch.setattr(conv_ops, "BLOCK_BYTES", 600)
    monkeypatch.setattr(conv_ops, "SHIFTED_COPY_MAX_WIDTH", 10**9 if shifted else 0)
    x, w = rng.standard_normal((3, 2, 5, 6)), rng.standard_normal((3, 2, 3, 3))
    out = F.conv2d(Tensor(x), Tensor(w), padding=1)
    np.testing.assert_allclose(out.data, reference_conv2d(x, w, None, (1, 1), (1, 1)), rtol=1e-10, atol=1e-10)
    assert gradcheck(lambda x, w: F.conv2d(x, w, padding=1), x, w)
