"""Plausible wrong answers for solutions/02_tensors: each must lose exactly the points of its own task.

Format: see INSTRUCTORS.md, section 5 (``cell`` = grade_id of the solution cell replaced by ``source``;
``fails`` = grade_ids of the test cells that must score 0; every other test cell keeps full points).
"""

WRONG_ANSWERS = [
    # ------------------------------------------------------------------ 1. gradient_check
    dict(cell="gradient_check",
         fails=["test_gradient_check"],
         why="forward differences (error O(h)) instead of central differences (O(h^2))",
         source='''def gradient_check(f, analytic, x, h=1e-6):
    x = np.array(x, dtype=np.float64)
    numeric = np.zeros_like(x)
    f0 = float(f(x))
    for idx in np.ndindex(x.shape):
        old = x[idx]
        x[idx] = old + h
        numeric[idx] = (float(f(x)) - f0) / h
        x[idx] = old
    analytic = np.asarray(analytic, dtype=np.float64)
    scale = max(np.abs(analytic).max(), np.abs(numeric).max(), 1e-12)
    return numeric, float(np.abs(analytic - numeric).max() / scale)
'''),
    dict(cell="gradient_check",
         fails=["test_gradient_check"],
         why="differences computed in the input's dtype (float32 rounding error / h swamps the slope)",
         source='''def gradient_check(f, analytic, x, h=1e-6):
    x = np.array(x)  # a copy, but float32 stays float32
    numeric = np.zeros_like(x)
    for idx in np.ndindex(x.shape):
        old = x[idx]
        x[idx] = old + h
        f_plus = f(x)
        x[idx] = old - h
        f_minus = f(x)
        x[idx] = old
        numeric[idx] = (f_plus - f_minus) / (2 * h)
    scale = max(np.abs(analytic).max(), np.abs(numeric).max(), 1e-12)
    return numeric, float(np.abs(analytic - numeric).max() / scale)
'''),
    # ------------------------------------------------------------------ 2. unbroadcast
    dict(cell="unbroadcast",
         fails=["test_unbroadcast"],
         why="sums only the size-1 axes and forgets the leading axes broadcasting added",
         source='''def unbroadcast(grad, shape):
    stretched = tuple(i for i, n in enumerate(shape) if n == 1)
    return grad.sum(axis=stretched, keepdims=True)
'''),
    dict(cell="unbroadcast",
         fails=["test_unbroadcast"],
         why="averages the copies' gradients instead of adding them",
         source='''def unbroadcast(grad, shape):
    extra = grad.ndim - len(shape)
    grad = grad.mean(axis=tuple(range(extra)))
    stretched = tuple(i for i, n in enumerate(shape) if n == 1)
    return grad.mean(axis=stretched, keepdims=True).reshape(shape)
'''),
    # ------------------------------------------------------------------ 3. mul_backward
    dict(cell="mul_backward",
         fails=["test_mul_backward"],
         why="returns grad * b with the broadcast shape, never reduced back to a's shape",
         source='''def mul_backward(grad, a, b):
    return grad * b, grad * a
'''),
    dict(cell="mul_backward",
         fails=["test_mul_backward"],
         why="product rule mixed up: da uses a instead of b",
         source='''def mul_backward(grad, a, b):
    return unbroadcast(grad * a, a.shape), unbroadcast(grad * b, b.shape)
'''),
    # ------------------------------------------------------------------ 4. mean_backward
    dict(cell="mean_backward",
         fails=["test_mean_backward"],
         why="broadcasts grad without re-inserting the reduced axes (lines up with the wrong axis)",
         source='''def mean_backward(grad, shape, axis=None, keepdims=False):
    axes = tuple(range(len(shape))) if axis is None else (axis if isinstance(axis, tuple) else (axis,))
    count = int(np.prod([shape[a] for a in axes]))
    return np.broadcast_to(np.asarray(grad) / count, shape).copy()
'''),
    dict(cell="mean_backward",
         fails=["test_mean_backward"],
         why="divides by the total number of entries instead of the number averaged per output",
         source='''def mean_backward(grad, shape, axis=None, keepdims=False):
    axes = tuple(range(len(shape))) if axis is None else (axis if isinstance(axis, tuple) else (axis,))
    grad = np.asarray(grad)
    if not keepdims:
        grad = np.expand_dims(grad, axes)
    return np.broadcast_to(grad / np.prod(shape), shape).astype(grad.dtype)
'''),
    # ------------------------------------------------------------------ 5. max_backward
    dict(cell="max_backward",
         fails=["test_max_backward"],
         why="sends the gradient to every element, as if max were sum",
         source='''def max_backward(grad, x, axis=None, keepdims=False):
    axes = tuple(range(x.ndim)) if axis is None else axis
    grad = np.asarray(grad)
    if not keepdims:
        grad = np.expand_dims(grad, axes)
    return np.broadcast_to(grad, x.shape).astype(x.dtype)
'''),
    dict(cell="max_backward",
         fails=["test_max_backward"],
         why="every tied maximum gets the full gradient (ties double-count)",
         source='''def max_backward(grad, x, axis=None, keepdims=False):
    axes = tuple(range(x.ndim)) if axis is None else axis
    mask = x == x.max(axis=axes, keepdims=True)
    grad = np.asarray(grad)
    if not keepdims:
        grad = np.expand_dims(grad, axes)
    return (grad * mask).astype(x.dtype)
'''),
    # ------------------------------------------------------------------ 6. matmul_backward
    dict(cell="matmul_backward",
         fails=["test_matmul_backward"],
         why=".T reverses all axes: right for 2-D, wrong for batches of matrices",
         source='''def matmul_backward(grad, a, b):
    return unbroadcast(grad @ b.T, a.shape), unbroadcast(a.T @ grad, b.shape)
'''),
    dict(cell="matmul_backward",
         fails=["test_matmul_backward"],
         why="forgets to sum the gradient of a matrix broadcast across the batch",
         source='''def matmul_backward(grad, a, b):
    return grad @ np.swapaxes(b, -1, -2), np.swapaxes(a, -1, -2) @ grad
'''),
    # ------------------------------------------------------------------ 7. softmax_cross_entropy
    dict(cell="softmax_cross_entropy",
         fails=["test_softmax_cross_entropy"],
         why="unstable softmax: exp of raw logits overflows at 1e4 (inf / inf = nan)",
         source='''def softmax_cross_entropy(logits, labels):
    n = logits.shape[0]
    rows = np.arange(n)
    probs = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    loss = -np.log(probs[rows, labels]).mean()
    dlogits = probs.copy()
    dlogits[rows, labels] -= 1
    return float(loss), dlogits / n
'''),
    dict(cell="softmax_cross_entropy",
         fails=["test_softmax_cross_entropy"],
         why="loss is the batch mean but the gradient forgets the 1/N",
         source='''def softmax_cross_entropy(logits, labels):
    n = logits.shape[0]
    rows = np.arange(n)
    shifted = logits - logits.max(axis=1, keepdims=True)
    exp = np.exp(shifted)
    total = exp.sum(axis=1, keepdims=True)
    loss = -(shifted - np.log(total))[rows, labels].mean()
    dlogits = exp / total
    dlogits[rows, labels] -= 1
    return float(loss), dlogits
'''),
    # ------------------------------------------------------------------ 8. logsumexp
    dict(cell="logsumexp",
         fails=["test_logsumexp"],
         why="naive forward log(sum(exp(x))) overflows for inputs around 1000",
         source='''class LogSumExp(tinyqnn.Function):
    @staticmethod
    def forward(ctx, x, axis=-1):
        exp = np.exp(x)
        total = exp.sum(axis=axis, keepdims=True)
        ctx.save_for_backward(exp / total)
        ctx.axis = axis
        return np.log(np.squeeze(total, axis=axis))

    @staticmethod
    def backward(ctx, grad):
        (softmax,) = ctx.saved_tensors
        return np.expand_dims(grad, ctx.axis) * softmax
'''),
    dict(cell="logsumexp",
         fails=["test_logsumexp"],
         why="backward copies grad to every entry (the derivative of sum) and forgets the softmax weights",
         source='''class LogSumExp(tinyqnn.Function):
    @staticmethod
    def forward(ctx, x, axis=-1):
        m = x.max(axis=axis, keepdims=True)
        ctx.shape, ctx.axis = x.shape, axis
        return np.squeeze(m + np.log(np.exp(x - m).sum(axis=axis, keepdims=True)), axis=axis)

    @staticmethod
    def backward(ctx, grad):
        return np.broadcast_to(np.expand_dims(grad, ctx.axis), ctx.shape)
'''),
]
