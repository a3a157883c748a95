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
]
