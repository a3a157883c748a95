"""Plausible wrong answers for unit 06_ste: each must lose exactly the points of its own task.

RIGHT_ANSWERS are correct answers written in a different style from the reference solution; each must get
full marks (the tests check the specified behaviour, not the reference's incidental choices).
"""

WRONG_ANSWERS = [
    dict(cell="identity_ste",
         fails=["test_identity_ste"],
         why="backward returns ones (mu'(x) = 1) instead of passing the upstream gradient on",
         source='''class IdentitySTE(Function):
    @staticmethod
    def forward(ctx, x, bits=1, alpha=1.0):
        return quantize_relu(x, bits, alpha)

    @staticmethod
    def backward(ctx, grad):
        return np.ones_like(grad)
'''),
    dict(cell="identity_ste",
         fails=["test_identity_ste"],
         why="the surrogate used as the forward: y = x instead of the quantized ReLU",
         source='''class IdentitySTE(Function):
    @staticmethod
    def forward(ctx, x, bits=1, alpha=1.0):
        return x.copy()

    @staticmethod
    def backward(ctx, grad):
        return grad
'''),
    dict(cell="relu_ste",
         fails=["test_relu_ste"],
         why="derivative 1 at x == 0 (mask x >= 0)",
         source='''class ReLUSTE(Function):
    @staticmethod
    def forward(ctx, x, bits=1, alpha=1.0):
        ctx.save_for_backward(x)
        return quantize_relu(x, bits, alpha)

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return grad * (x >= 0)
'''),
    dict(cell="relu_ste",
         fails=["test_relu_ste"],
         why="the ReLU STE clipped at the top level (that is the clipped-ReLU STE)",
         source='''class ReLUSTE(Function):
    @staticmethod
    def forward(ctx, x, bits=1, alpha=1.0):
        ctx.save_for_backward(x)
        ctx.top = (2**bits - 1) * alpha
        return quantize_relu(x, bits, alpha)

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return grad * ((x > 0) & (x <= ctx.top))
'''),
    dict(cell="clipped_relu_ste",
         fails=["test_clipped_relu_ste"],
         why="window open at the top: x < (2^b - 1) alpha drops the gradient at the clip level itself",
         source='''class ClippedReLUSTE(Function):
    @staticmethod
    def forward(ctx, x, bits=1, alpha=1.0):
        ctx.save_for_backward(x)
        ctx.clip = (2**bits - 1) * alpha
        return quantize_relu(x, bits, alpha)

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return grad * ((x > 0) & (x < ctx.clip))
'''),
    dict(cell="clipped_relu_ste",
         fails=["test_clipped_relu_ste"],
         why="clip level 2^b alpha (one level too high)",
         source='''class ClippedReLUSTE(Function):
    @staticmethod
    def forward(ctx, x, bits=1, alpha=1.0):
        ctx.save_for_backward(x)
        ctx.clip = 2**bits * alpha
        return quantize_relu(x, bits, alpha)

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return grad * ((x > 0) & (x <= ctx.clip))
'''),
    dict(cell="clipped_relu_ste",
         fails=["test_clipped_relu_ste"],
         why="clip level kept on the class, not the context: a later call with other bits changes an earlier backward",
         source='''class ClippedReLUSTE(Function):
    clip = 1.0

    @staticmethod
    def forward(ctx, x, bits=1, alpha=1.0):
        ctx.save_for_backward(x)
        ClippedReLUSTE.clip = (2**bits - 1) * alpha
        return quantize_relu(x, bits, alpha)

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return grad * ((x > 0) & (x <= ClippedReLUSTE.clip))
'''),
    dict(cell="coarse_gradients",
         fails=["test_coarse_gradients"],
         why="sum over the samples instead of the mean",
         source='''def coarse_gradients(z, v, w, v_star, w_star, ste):
    V = Tensor(np.array(v, dtype=np.float64), requires_grad=True)
    W = Tensor(np.array(w, dtype=np.float64), requires_grad=True)
    y = (ste.apply(Tensor(z) @ W) * V).sum(axis=1)
    y_star = (z @ w_star > 0).astype(np.float64) @ v_star
    loss = 0.5 * ((y - Tensor(y_star)) ** 2).sum()
    loss.backward()
    return loss.item(), V.grad.data, W.grad.data
'''),
    dict(cell="coarse_gradients",
         fails=["test_coarse_gradients"],
         why="the ReLU mask hard-coded instead of the backward of the given ste",
         source='''def coarse_gradients(z, v, w, v_star, w_star, ste):
    pre = z @ w
    act = (pre > 0).astype(np.float64)
    r = act @ v - (z @ w_star > 0) @ v_star
    grad_v = np.mean(act * r[:, None], axis=0)
    grad_w = np.mean(np.einsum("smn,sm->sn", z, act * v) * r[:, None], axis=0)
    return float(0.5 * np.mean(r ** 2)), grad_v, grad_w
'''),
    dict(cell="expected_coarse_gradient",
         fails=["test_expected_coarse_gradient"],
         why="cos(theta) instead of cos(theta / 2) in the ReLU formula",
         source='''def expected_coarse_gradient(v, w, v_star, w_star, ste):
    u = w / np.linalg.norm(w)
    u_star = w_star / np.linalg.norm(w_star)
    vv = float(v @ v_star)
    if ste == "identity":
        return (v @ v * u - vv * u_star) / math.sqrt(2 * math.pi)
    if ste == "relu":
        theta = math.acos(float(np.clip(u @ u_star, -1.0, 1.0)))
        s = u + u_star
        e = s / np.linalg.norm(s) if np.linalg.norm(s) > 0 else np.zeros_like(u)
        h = v @ v + v.sum() ** 2 - v.sum() * v_star.sum() + vv
        return h / (2 * math.sqrt(2 * math.pi)) * u - math.cos(theta) * vv / math.sqrt(2 * math.pi) * e
    raise ValueError(ste)
'''),
    dict(cell="expected_coarse_gradient",
         fails=["test_expected_coarse_gradient"],
         why="w* used without normalising it (the paper assumes |w*| = 1)",
         source='''def expected_coarse_gradient(v, w, v_star, w_star, ste):
    u = w / np.linalg.norm(w)
    vv = float(v @ v_star)
    if ste == "identity":
        return (v @ v * u - vv * w_star) / math.sqrt(2 * math.pi)
    if ste == "relu":
        theta = math.acos(float(np.clip(u @ w_star / np.linalg.norm(w_star), -1.0, 1.0)))
        s = u + w_star
        e = s / np.linalg.norm(s) if np.linalg.norm(s) > 0 else np.zeros_like(u)
        h = v @ v + v.sum() ** 2 - v.sum() * v_star.sum() + vv
        return h / (2 * math.sqrt(2 * math.pi)) * u - math.cos(theta / 2) * vv / math.sqrt(2 * math.pi) * e
    raise ValueError(ste)
'''),
    dict(cell="true_grad_w",
         fails=["test_true_grad_w"],
         why="no projection: the direction of w* instead of P_w w* / |P_w w*|",
         source='''def true_grad_w(v, w, v_star, w_star):
    u_star = w_star / np.linalg.norm(w_star)
    return -(v @ v_star) / (2 * math.pi * np.linalg.norm(w)) * u_star
'''),
    dict(cell="true_grad_w",
         fails=["test_true_grad_w"],
         why="parallel case tested with == 0: rounding leaves a tiny P_w w*, normalised into a random direction",
         source='''def true_grad_w(v, w, v_star, w_star):
    u = w / np.linalg.norm(w)
    u_star = w_star / np.linalg.norm(w_star)
    p = u_star - (u @ u_star) * u
    norm = np.linalg.norm(p)
    if norm == 0:
        return np.zeros_like(u)
    return -(v @ v_star) / (2 * math.pi * np.linalg.norm(w)) * p / norm
'''),
    dict(cell="true_grad_w",
         fails=["test_true_grad_w"],
         why="central differences of Lemma 1 instead of Lemma 2's formula (right to ~1e-10, not to rounding error)",
         source='''def true_grad_w(v, w, v_star, w_star):
    m = v.size
    A = np.eye(m) + np.ones((m, m))

    def f(w_):
        c = np.clip(w_ @ w_star / (np.linalg.norm(w_) * np.linalg.norm(w_star)), -1.0, 1.0)
        B = (1 - 2 * np.arccos(c) / np.pi) * np.eye(m) + np.ones((m, m))
        return (v @ A @ v - 2 * v @ B @ v_star + v_star @ A @ v_star) / 8

    g = np.zeros(w.size)
    for i in range(w.size):
        step = np.zeros(w.size)
        step[i] = 1e-6
        g[i] = (f(w + step) - f(w - step)) / 2e-6
    return g
'''),
    dict(cell="coarse_gradient_descent",
         fails=["test_coarse_gradient_descent"],
         why="v updated first and g_w evaluated at the new v (Gauss-Seidel, not Algorithm 1)",
         source='''def coarse_gradient_descent(v0, w0, grad_fn, lr, steps):
    vs, ws = [np.array(v0, dtype=float)], [np.array(w0, dtype=float)]
    for _ in range(steps):
        gv, _ = grad_fn(vs[-1], ws[-1])
        v = vs[-1] - lr * gv
        _, gw = grad_fn(v, ws[-1])
        vs.append(v)
        ws.append(ws[-1] - lr * gw)
    return np.array(vs), np.array(ws)
'''),
    dict(cell="coarse_gradient_descent",
         fails=["test_coarse_gradient_descent"],
         why="in-place updates of one array appended every step: every row is the last iterate (and v0 changes)",
         source='''def coarse_gradient_descent(v0, w0, grad_fn, lr, steps):
    v, w = v0, w0
    vs, ws = [v], [w]
    for _ in range(steps):
        gv, gw = grad_fn(v, w)
        v -= lr * gv
        w -= lr * gw
        vs.append(v)
        ws.append(w)
    return np.array(vs), np.array(ws)
'''),
    dict(cell="spurious_minimizer",
         fails=["test_spurious_minimizer"],
         why="(I + 11^T)^{-1} taken as I - 11^T / m",
         source='''def spurious_minimizer(v_star, w_star):
    m = v_star.size
    if not v_star.sum() ** 2 < (m + 1) * (v_star @ v_star) / 2:
        raise ValueError("no spurious minimizer")
    ones = np.ones((m, m))
    v = (np.eye(m) - ones / m) @ ((ones - np.eye(m)) @ v_star)
    return v, -w_star / np.linalg.norm(w_star)
'''),
    dict(cell="spurious_minimizer",
         fails=["test_spurious_minimizer"],
         why="condition with <= : the boundary case (1^T v*)^2 = (m + 1)|v*|^2 / 2 is accepted",
         source='''def spurious_minimizer(v_star, w_star):
    m = v_star.size
    if v_star.sum() ** 2 > (m + 1) * (v_star @ v_star) / 2:
        raise ValueError("no spurious minimizer")
    ones = np.ones((m, m))
    v = (np.eye(m) - ones / (m + 1)) @ ((ones - np.eye(m)) @ v_star)
    return v, -w_star / np.linalg.norm(w_star)
'''),
]

RIGHT_ANSWERS = [
    dict(cell="identity_ste",
         why="keyword call of the helper; backward returns a copy of the gradient as a one-element tuple",
         source='''class IdentitySTE(Function):
    @staticmethod
    def forward(ctx, x, bits=1, alpha=1.0):
        out = quantize_relu(x, bits=bits, alpha=alpha)
        return out

    @staticmethod
    def backward(ctx, grad):
        return (np.array(grad, copy=True),)
'''),
    dict(cell="relu_ste",
         why="the mask is computed in forward and kept as a ctx attribute; np.where in backward",
         source='''class ReLUSTE(Function):
    @staticmethod
    def forward(ctx, x, bits=1, alpha=1.0):
        ctx.mask = x > 0
        return quantize_relu(x, bits, alpha)

    @staticmethod
    def backward(ctx, grad):
        return np.where(ctx.mask, grad, 0.0)
'''),
    dict(cell="clipped_relu_ste",
         why="saves the window mask (not x) with save_for_backward; clip written alpha * (2 ** bits - 1); logical_and",
         source='''class ClippedReLUSTE(Function):
    @staticmethod
    def forward(ctx, x, bits=1, alpha=1.0):
        top = alpha * (2 ** bits - 1)
        ctx.save_for_backward(np.logical_and(x > 0, x <= top))
        return quantize_relu(x, bits, alpha)

    @staticmethod
    def backward(ctx, grad):
        window, = ctx.saved_tensors
        return grad * window.astype(grad.dtype)
'''),
    dict(cell="coarse_gradients",
         why="NumPy einsum formulas; mu' read off the given ste by one backward pass through it",
         source='''def coarse_gradients(z, v, w, v_star, w_star, ste):
    pre = np.einsum("smn,n->sm", z, w)
    t = Tensor(pre.copy(), requires_grad=True)
    act_t = ste.apply(t)
    act_t.sum().backward()
    act, mu_prime = act_t.data, t.grad.data
    r = np.einsum("sm,m->s", act, v) - np.einsum("sm,m->s", (np.einsum("smn,n->sm", z, w_star) > 0) * 1.0, v_star)
    loss = 0.5 * np.mean(r ** 2)
    grad_v = np.einsum("sm,s->m", act, r) / len(r)
    grad_w = np.einsum("smn,sm,m,s->n", z, mu_prime, v, r) / len(r)
    return float(loss), grad_v, grad_w
'''),
    dict(cell="expected_coarse_gradient",
         why="angle from arctan2, bisector e written as (u + w*)/(2 cos(theta/2)), a dict of formulas",
         source='''def expected_coarse_gradient(v, w, v_star, w_star, ste):
    u = w / np.sqrt(np.dot(w, w))
    us = w_star / np.sqrt(np.dot(w_star, w_star))
    c = float(np.dot(u, us))
    theta = float(np.arctan2(np.linalg.norm(us - c * u), c))
    vv, k = float(np.dot(v, v_star)), 1.0 / np.sqrt(2.0 * np.pi)
    half = np.cos(theta / 2)
    e = (u + us) / (2 * half) if half > 1e-12 else np.zeros_like(u)
    h = np.dot(v, v) + np.sum(v) ** 2 - np.sum(v) * np.sum(v_star) + vv
    formulas = {
        "identity": lambda: k * (np.dot(v, v) * u - vv * us),
        "relu": lambda: k * (h / 2 * u - half * vv * e),
    }
    if ste not in formulas:
        raise ValueError("unknown STE " + repr(ste))
    return formulas[ste]()
'''),
    dict(cell="true_grad_w",
         why="the projection matrix built with np.outer; the parallel case detected from the projection's norm",
         source='''def true_grad_w(v, w, v_star, w_star):
    n = w.size
    P = np.eye(n) - np.outer(w, w) / np.dot(w, w)
    pw = P @ (w_star / np.linalg.norm(w_star))
    size = np.sqrt(np.sum(pw ** 2))
    if size < 1e-12:
        return np.zeros(n)
    scale = -np.dot(v, v_star) / (2.0 * np.pi * np.linalg.norm(w))
    return scale * pw / size
'''),
    dict(cell="coarse_gradient_descent",
         why="preallocated result arrays filled row by row, gradients unpacked by index",
         source='''def coarse_gradient_descent(v0, w0, grad_fn, lr, steps):
    vs = np.empty((steps + 1, len(v0)))
    ws = np.empty((steps + 1, len(w0)))
    vs[0], ws[0] = v0, w0
    for t in range(steps):
        g = grad_fn(vs[t].copy(), ws[t].copy())
        vs[t + 1] = vs[t] - lr * np.asarray(g[0])
        ws[t + 1] = ws[t] - lr * np.asarray(g[1])
    return vs, ws
'''),
    dict(cell="coarse_gradient_descent",
         why="wasteful but right: grad_fn called twice per step (once for g_v, once for g_w), both at the old point",
         source='''def coarse_gradient_descent(v0, w0, grad_fn, lr, steps):
    v, w = np.copy(v0), np.copy(w0)
    vs, ws = [v], [w]
    for t in range(steps):
        g_v = grad_fn(v, w)[0]
        g_w = grad_fn(v, w)[1]
        v, w = v - lr * g_v, w - lr * g_w
        vs.append(v)
        ws.append(w)
    return np.stack(vs), np.stack(ws)
'''),
    dict(cell="spurious_minimizer",
         why="np.linalg.solve instead of the Sherman-Morrison inverse; the condition written as a difference",
         source='''def spurious_minimizer(v_star, w_star):
    m = len(v_star)
    gap = (m + 1) * np.dot(v_star, v_star) / 2 - np.sum(v_star) ** 2
    if gap <= 0:
        raise ValueError(f"(1^T v*)^2 = {np.sum(v_star) ** 2} must be < (m+1)|v*|^2/2 = {(m + 1) * np.dot(v_star, v_star) / 2}")
    J = np.ones((m, m))
    v = np.linalg.solve(np.eye(m) + J, J @ v_star - v_star)
    w = -np.asarray(w_star, dtype=float) / np.linalg.norm(w_star)
    return v, w
'''),
]
