"""Plausible wrong answers for unit 03_layers: each must lose exactly the points of its own task."""

WRONG_ANSWERS = [
    dict(cell="linear_forward",
         fails=["test_linear_forward"],
         why="weight stored as (D_in, D_out): x @ W instead of x @ W.T",
         source='''def linear_forward(x, w, b):
    y = x @ w
    return y if b is None else y + b
'''),
    dict(cell="linear_forward",
         fails=["test_linear_forward"],
         why="bias forgotten",
         source='''def linear_forward(x, w, b):
    return x @ w.T
'''),
    dict(cell="linear_backward",
         fails=["test_linear_backward"],
         why="bias gradient averaged over the batch instead of summed",
         source='''def linear_backward(dout, x, w):
    return dout @ w, dout.T @ x, dout.mean(axis=0)
'''),
    dict(cell="linear_backward",
         fails=["test_linear_backward"],
         why="weight gradient transposed: x.T @ dout has shape (D_in, D_out)",
         source='''def linear_backward(dout, x, w):
    return dout @ w, x.T @ dout, dout.sum(axis=0)
'''),
    dict(cell="relu",
         fails=["test_relu"],
         why="derivative 1 at x == 0 (x >= 0 mask)",
         source='''def relu_forward(x):
    return np.maximum(x, 0)


def relu_backward(dout, x):
    return dout * (x >= 0)
'''),
    dict(cell="relu",
         fails=["test_relu"],
         why="forward modifies its input in place",
         source='''def relu_forward(x):
    x[x < 0] = 0
    return x


def relu_backward(dout, x):
    return dout * (x > 0)
'''),
    dict(cell="kaiming_uniform",
         fails=["test_kaiming_uniform"],
         why="ReLU gain forgotten: bound sqrt(3 / fan_in) (LeCun uniform)",
         source='''def kaiming_uniform(shape, rng):
    fan_in = int(np.prod(shape[1:]))
    bound = np.sqrt(3.0 / fan_in)
    return rng.uniform(-bound, bound, size=shape).astype(np.float32)
'''),
    dict(cell="kaiming_uniform",
         fails=["test_kaiming_uniform"],
         why="fan_out (shape[0]) used instead of fan_in",
         source='''def kaiming_uniform(shape, rng):
    bound = np.sqrt(6.0 / shape[0])
    return rng.uniform(-bound, bound, size=shape).astype(np.float32)
'''),
    dict(cell="kaiming_uniform",
         fails=["test_kaiming_uniform"],
         why="std sqrt(2 / fan_in) used as the uniform bound",
         source='''def kaiming_uniform(shape, rng):
    fan_in = int(np.prod(shape[1:]))
    bound = np.sqrt(2.0 / fan_in)
    return rng.uniform(-bound, bound, size=shape).astype(np.float32)
'''),
    dict(cell="softmax_cross_entropy",
         fails=["test_softmax_cross_entropy"],
         why="no max subtraction: exp overflows for large logits",
         source='''def softmax_cross_entropy(logits, y):
    n = logits.shape[0]
    e = np.exp(logits)
    p = e / e.sum(axis=1, keepdims=True)
    loss = -np.log(p[np.arange(n), y]).mean()
    d = p.copy()
    d[np.arange(n), y] -= 1
    return float(loss), d / n
'''),
    dict(cell="softmax_cross_entropy",
         fails=["test_softmax_cross_entropy"],
         why="gradient of the summed loss: not divided by the batch size",
         source='''def softmax_cross_entropy(logits, y):
    n = logits.shape[0]
    s = logits - logits.max(axis=1, keepdims=True)
    log_p = s - np.log(np.exp(s).sum(axis=1, keepdims=True))
    d = np.exp(log_p)
    d[np.arange(n), y] -= 1
    return float(-log_p[np.arange(n), y].mean()), d
'''),
    dict(cell="sgd_momentum_step",
         fails=["test_sgd_momentum_step"],
         why="buffer starts at zero, so dampening is applied at the first step too",
         source='''def sgd_momentum_step(param, grad, buf, lr, momentum=0.0, dampening=0.0, weight_decay=0.0):
    g = grad + weight_decay * param
    if momentum == 0:
        return param - lr * g, None
    if buf is None:
        buf = np.zeros_like(param)
    buf = momentum * buf + (1 - dampening) * g
    return param - lr * buf, buf
'''),
    dict(cell="sgd_momentum_step",
         fails=["test_sgd_momentum_step"],
         why="CS231n velocity form v = mu*v - lr*g, p += v (differs from torch when lr changes)",
         source='''def sgd_momentum_step(param, grad, buf, lr, momentum=0.0, dampening=0.0, weight_decay=0.0):
    g = grad + weight_decay * param
    if momentum == 0:
        return param - lr * g, None
    v = -lr * g if buf is None else momentum * buf - lr * (1 - dampening) * g
    return param + v, v
'''),
    dict(cell="sgd_momentum_step",
         fails=["test_sgd_momentum_step"],
         why="weight decay added after the momentum buffer instead of before",
         source='''def sgd_momentum_step(param, grad, buf, lr, momentum=0.0, dampening=0.0, weight_decay=0.0):
    if momentum == 0:
        return param - lr * (grad + weight_decay * param), None
    buf = grad.copy() if buf is None else momentum * buf + (1 - dampening) * grad
    return param - lr * (buf + weight_decay * param), buf
'''),
    dict(cell="train_step",
         fails=["test_train_step"],
         why="ReLU skipped in the backward pass",
         source='''def train_step(params, bufs, x, y, lr, momentum=0.9):
    a1 = linear_forward(x, params["W1"], params["b1"])
    h = relu_forward(a1)
    z = linear_forward(h, params["W2"], params["b2"])
    loss, dz = softmax_cross_entropy(z, y)
    dh, dW2, db2 = linear_backward(dz, h, params["W2"])
    _, dW1, db1 = linear_backward(dh, x, params["W1"])
    grads = {"W1": dW1, "b1": db1, "W2": dW2, "b2": db2}
    for key in params:
        params[key], bufs[key] = sgd_momentum_step(params[key], grads[key], bufs[key], lr, momentum=momentum)
    return loss
'''),
    dict(cell="train_step",
         fails=["test_train_step"],
         why="momentum buffers not stored back, so every step restarts momentum",
         source='''def train_step(params, bufs, x, y, lr, momentum=0.9):
    a1 = linear_forward(x, params["W1"], params["b1"])
    h = relu_forward(a1)
    z = linear_forward(h, params["W2"], params["b2"])
    loss, dz = softmax_cross_entropy(z, y)
    dh, dW2, db2 = linear_backward(dz, h, params["W2"])
    da1 = relu_backward(dh, a1)
    _, dW1, db1 = linear_backward(da1, x, params["W1"])
    grads = {"W1": dW1, "b1": db1, "W2": dW2, "b2": db2}
    for key in params:
        params[key], _ = sgd_momentum_step(params[key], grads[key], bufs[key], lr, momentum=momentum)
    return loss
'''),
    # Caught only by the adversarial hidden tests added after the grading audit (issue 10).
    dict(cell="softmax_cross_entropy",
         fails=["test_softmax_cross_entropy"],
         why="subtracts one global maximum instead of each row's: a row far below it underflows to log(0)",
         source='''def softmax_cross_entropy(logits, y):
    n = logits.shape[0]
    shifted = logits - logits.max()
    log_p = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    dlogits = np.exp(log_p)
    dlogits[np.arange(n), y] -= 1
    return float(-log_p[np.arange(n), y].mean()), dlogits / n
'''),
    dict(cell="sgd_momentum_step",
         fails=["test_sgd_momentum_step"],
         why="returns early on a zero gradient, but momentum must still move the parameter",
         source='''def sgd_momentum_step(param, grad, buf, lr, momentum=0.0, dampening=0.0, weight_decay=0.0):
    if not np.any(grad):
        return param.copy(), (None if buf is None else buf.copy())
    g = grad + weight_decay * param
    new_buf = None
    if momentum != 0:
        new_buf = g.copy() if buf is None else momentum * buf + (1 - dampening) * g
        g = new_buf
    return param - lr * g, new_buf
'''),
    dict(cell="train_step",
         fails=["test_train_step"],
         why="ignores the momentum argument and always uses 0.9 (the first step looks the same for any momentum)",
         source='''def train_step(params, bufs, x, y, lr, momentum=0.9):
    a1 = linear_forward(x, params["W1"], params["b1"])
    h = relu_forward(a1)
    z = linear_forward(h, params["W2"], params["b2"])
    loss, dz = softmax_cross_entropy(z, y)
    dh, dW2, db2 = linear_backward(dz, h, params["W2"])
    da1 = relu_backward(dh, a1)
    _, dW1, db1 = linear_backward(da1, x, params["W1"])
    grads = {"W1": dW1, "b1": db1, "W2": dW2, "b2": db2}
    for key in params:
        params[key], bufs[key] = sgd_momentum_step(params[key], grads[key], bufs[key], lr, momentum=0.9)
    return loss
'''),
]

# Correct answers in another style than the reference solution: each must keep full marks.
RIGHT_ANSWERS = [
    dict(cell="linear_forward",
         why="einsum over the input index, bias added with np.add",
         source='''def linear_forward(x, w, b):
    y = np.einsum("ni,ki->nk", x, w)
    return y if b is None else np.add(y, b)
'''),
    dict(cell="linear_backward",
         why="einsum for every gradient, bias gradient with np.einsum too",
         source='''def linear_backward(dout, x, w):
    dx = np.einsum("nk,ki->ni", dout, w)
    dw = np.einsum("nk,ni->ki", dout, x)
    db = np.einsum("nk->k", dout)
    return dx, dw, db
'''),
    dict(cell="relu",
         why="multiplication by a mask forward, np.where backward",
         source='''def relu_forward(x):
    return x * (x > 0)


def relu_backward(dout, x):
    return np.where(x > 0, dout, np.zeros_like(dout))
'''),
    dict(cell="kaiming_uniform",
         why="rng.random scaled to [-a, a) instead of rng.uniform; fan_in by a loop over shape[1:]",
         source='''def kaiming_uniform(shape, rng):
    fan_in = 1
    for size in shape[1:]:
        fan_in *= size
    bound = (6.0 / fan_in) ** 0.5
    return ((2.0 * rng.random(size=shape) - 1.0) * bound).astype(np.float32)
'''),
    dict(cell="softmax_cross_entropy",
         why="log-sum-exp with np.logaddexp.reduce and a one-hot matrix instead of fancy-index subtraction",
         source='''def softmax_cross_entropy(logits, y):
    n, k = logits.shape
    lse = np.logaddexp.reduce(logits, axis=1, keepdims=True)
    onehot = np.eye(k, dtype=logits.dtype)[y]
    loss = np.mean(lse[:, 0] - np.sum(onehot * logits, axis=1))
    return float(loss), (np.exp(logits - lse) - onehot) / n
'''),
    dict(cell="sgd_momentum_step",
         why="in-place updates on fresh copies, keyword-style NumPy calls",
         source='''def sgd_momentum_step(param, grad, buf, lr, momentum=0.0, dampening=0.0, weight_decay=0.0):
    g = np.array(grad, copy=True)
    if weight_decay:
        g += weight_decay * param
    if momentum:
        if buf is None:
            buf = g.copy()
        else:
            buf = np.multiply(buf, momentum)
            buf += (1.0 - dampening) * g
        g = buf
    else:
        buf = None
    new_param = param.copy()
    new_param -= lr * g
    return new_param, buf
'''),
    dict(cell="train_step",
         why="calls every helper with keyword arguments (the documented parameter names)",
         source='''def train_step(params, bufs, x, y, lr, momentum=0.9):
    a1 = linear_forward(x=x, w=params["W1"], b=params["b1"])
    h = relu_forward(x=a1)
    z = linear_forward(x=h, w=params["W2"], b=params["b2"])
    loss, dz = softmax_cross_entropy(logits=z, y=y)
    dh, dW2, db2 = linear_backward(dout=dz, x=h, w=params["W2"])
    da1 = relu_backward(dout=dh, x=a1)
    _, dW1, db1 = linear_backward(dout=da1, x=x, w=params["W1"])
    grads = {"W1": dW1, "b1": db1, "W2": dW2, "b2": db2}
    for key in ("W1", "b1", "W2", "b2"):
        params[key], bufs[key] = sgd_momentum_step(param=params[key], grad=grads[key], buf=bufs[key], lr=lr,
                                                   momentum=momentum)
    return loss
'''),
]
