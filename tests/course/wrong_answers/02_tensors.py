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
    # Caught only by the adversarial hidden tests added after the grading audit (issue 10).
    dict(cell="gradient_check",
         fails=["test_gradient_check"],
         why="ignores the caller's step h and always uses 1e-6 (every other test uses the default)",
         source='''def gradient_check(f, analytic, x, h=1e-6):
    step = 1e-6
    x = np.array(x, dtype=np.float64)
    numeric = np.zeros_like(x)
    for idx in np.ndindex(x.shape):
        old = x[idx]
        x[idx] = old + step
        f_plus = float(f(x))
        x[idx] = old - step
        f_minus = float(f(x))
        x[idx] = old
        numeric[idx] = (f_plus - f_minus) / (2 * step)
    analytic = np.asarray(analytic, dtype=np.float64)
    scale = max(np.abs(analytic).max(initial=0.0), np.abs(numeric).max(initial=0.0), 1e-12)
    return numeric, float(np.abs(analytic - numeric).max(initial=0.0) / scale)
'''),
    dict(cell="gradient_check",
         fails=["test_gradient_check"],
         why="no 1e-12 floor in the denominator: a zero gradient checked against zero gives 0/0 = nan",
         source='''def gradient_check(f, analytic, x, h=1e-6):
    x = np.array(x, dtype=np.float64)
    numeric = np.zeros_like(x)
    for idx in np.ndindex(x.shape):
        old = x[idx]
        x[idx] = old + h
        f_plus = float(f(x))
        x[idx] = old - h
        f_minus = float(f(x))
        x[idx] = old
        numeric[idx] = (f_plus - f_minus) / (2 * h)
    analytic = np.asarray(analytic, dtype=np.float64)
    with np.errstate(invalid="ignore"):
        err = np.abs(analytic - numeric).max() / max(np.abs(analytic).max(), np.abs(numeric).max())
    return numeric, float(err)
'''),
]

# Correct answers in another style than the reference solution: each must keep full marks.
RIGHT_ANSWERS = [
    dict(cell="gradient_check",
         why="loop over the flat entries of a raveled float64 copy instead of np.ndindex",
         source='''def gradient_check(f, analytic, x, h=1e-6):
    work = np.array(x, dtype=np.float64)
    flat = work.reshape(-1)  # a view: writing flat[i] changes work
    grads = np.empty(flat.size)
    for i in range(flat.size):
        keep = flat[i]
        flat[i] = keep + h
        up = float(f(work))
        flat[i] = keep - h
        down = float(f(work))
        flat[i] = keep
        grads[i] = (up - down) / (2 * h)
    numeric = grads.reshape(work.shape)
    a = np.asarray(analytic, dtype=np.float64)
    denom = max(float(np.max(np.abs(a), initial=0.0)), float(np.max(np.abs(numeric), initial=0.0)), 1e-12)
    return numeric, float(np.max(np.abs(a - numeric), initial=0.0)) / denom
'''),
    dict(cell="unbroadcast",
         why="one axis at a time in loops instead of one sum over a tuple of axes",
         source='''def unbroadcast(grad, shape):
    while grad.ndim > len(shape):
        grad = grad.sum(axis=0)
    for i, n in enumerate(shape):
        if n == 1 and grad.shape[i] != 1:
            grad = grad.sum(axis=i, keepdims=True)
    return grad
'''),
    dict(cell="mul_backward",
         why="np.multiply and unbroadcast called with keyword arguments",
         source='''def mul_backward(grad, a, b):
    da = unbroadcast(grad=np.multiply(grad, b), shape=np.shape(a))
    db = unbroadcast(grad=np.multiply(grad, a), shape=np.shape(b))
    return da, db
'''),
    dict(cell="mean_backward",
         why="reshape to the keepdims shape (axes normalized with %) instead of np.expand_dims",
         source='''def mean_backward(grad, shape, axis=None, keepdims=False):
    if axis is None:
        axes = set(range(len(shape)))
    else:
        axes = {a % len(shape) for a in (axis if isinstance(axis, tuple) else (axis,))}
    count = 1
    for a in axes:
        count *= shape[a]
    kept = tuple(1 if i in axes else n for i, n in enumerate(shape))
    return np.broadcast_to(np.reshape(grad, kept), shape) / count
'''),
    dict(cell="max_backward",
         why="reshape of grad to the keepdims shape of x.max and np.where for the winners",
         source='''def max_backward(grad, x, axis=None, keepdims=False):
    top = np.max(x, axis=axis, keepdims=True)
    winners = np.where(x == top, 1.0, 0.0)
    ties = np.sum(winners, axis=axis, keepdims=True)
    g = np.reshape(grad, top.shape)
    return (winners * g / ties).astype(x.dtype)
'''),
    dict(cell="matmul_backward",
         why="einsum with an ellipsis for the batch axes, unbroadcast with keyword arguments",
         source='''def matmul_backward(grad, a, b):
    da = np.einsum("...mn,...kn->...mk", grad, b)
    db = np.einsum("...mk,...mn->...kn", a, grad)
    return unbroadcast(grad=da, shape=a.shape), unbroadcast(grad=db, shape=b.shape)
'''),
    dict(cell="softmax_cross_entropy",
         why="np.logaddexp.reduce for the log-sum-exp and a one-hot matrix for the target",
         source='''def softmax_cross_entropy(logits, labels):
    n, k = logits.shape
    lse = np.logaddexp.reduce(logits, axis=1, keepdims=True)
    onehot = np.eye(k, dtype=logits.dtype)[labels]
    loss = np.mean(lse[:, 0] - np.sum(onehot * logits, axis=1))
    return float(loss), ((np.exp(logits - lse) - onehot) / n).astype(logits.dtype)
'''),
    dict(cell="logsumexp",
         why="saves x and the output, recomputes softmax in backward as exp(x - y)",
         source='''class LogSumExp(tinyqnn.Function):
    @staticmethod
    def forward(ctx, x, axis=-1):
        m = np.max(x, axis=axis)
        y = m + np.log(np.sum(np.exp(x - np.expand_dims(m, axis)), axis=axis))
        ctx.save_for_backward(x, y)
        ctx.axis = axis
        return y

    @staticmethod
    def backward(ctx, grad):
        x, y = ctx.saved_tensors
        return np.exp(x - np.expand_dims(y, ctx.axis)) * np.expand_dims(grad, ctx.axis)
'''),
]
