"""Plausible wrong answers for unit 04_conv_lenet: each must lose exactly the points of its own task."""

WRONG_ANSWERS = [
    dict(cell="im2col",
         fails=["test_im2col"],
         why="columns ordered (i, j, c) instead of (c, i, j): does not match w.reshape(F, -1)",
         source='''def im2col(x, kh, kw, stride=1, padding=0):
    n, c, h, w = x.shape
    oh = (h + 2 * padding - kh) // stride + 1
    ow = (w + 2 * padding - kw) // stride + 1
    xp = np.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding)))
    cols = np.empty((n, c, kh, kw, oh, ow), dtype=x.dtype)
    for i in range(kh):
        for j in range(kw):
            cols[:, :, i, j] = xp[:, :, i:i + stride * oh:stride, j:j + stride * ow:stride]
    return cols.transpose(0, 4, 5, 2, 3, 1).reshape(n * oh * ow, c * kh * kw)
'''),
    dict(cell="im2col",
         fails=["test_im2col"],
         why="rows ordered (oh, ow, n): samples interleaved",
         source='''def im2col(x, kh, kw, stride=1, padding=0):
    n, c, h, w = x.shape
    oh = (h + 2 * padding - kh) // stride + 1
    ow = (w + 2 * padding - kw) // stride + 1
    xp = np.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding)))
    cols = np.empty((n, c, kh, kw, oh, ow), dtype=x.dtype)
    for i in range(kh):
        for j in range(kw):
            cols[:, :, i, j] = xp[:, :, i:i + stride * oh:stride, j:j + stride * ow:stride]
    return cols.transpose(4, 5, 0, 1, 2, 3).reshape(n * oh * ow, c * kh * kw)
'''),
    dict(cell="im2col",
         fails=["test_im2col"],
         why="stride ignored in the window positions (always steps by 1)",
         source='''def im2col(x, kh, kw, stride=1, padding=0):
    n, c, h, w = x.shape
    oh = (h + 2 * padding - kh) // stride + 1
    ow = (w + 2 * padding - kw) // stride + 1
    xp = np.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding)))
    cols = np.empty((n, c, kh, kw, oh, ow), dtype=x.dtype)
    for i in range(kh):
        for j in range(kw):
            cols[:, :, i, j] = xp[:, :, i:i + oh, j:j + ow]
    return cols.transpose(0, 4, 5, 1, 2, 3).reshape(n * oh * ow, c * kh * kw)
'''),
    dict(cell="conv2d_forward",
         fails=["test_conv2d_forward"],
         why="kernel flipped (true convolution instead of the cross-correlation deep learning uses)",
         source='''def conv2d_forward(x, w, b, stride=1, padding=0):
    n, _, h, wd = x.shape
    f, _, kh, kw = w.shape
    oh = (h + 2 * padding - kh) // stride + 1
    ow = (wd + 2 * padding - kw) // stride + 1
    out = im2col(x, kh, kw, stride, padding) @ w[:, :, ::-1, ::-1].reshape(f, -1).T
    if b is not None:
        out = out + b
    return out.reshape(n, oh, ow, f).transpose(0, 3, 1, 2)
'''),
    dict(cell="conv2d_forward",
         fails=["test_conv2d_forward"],
         why="matrix product reshaped straight to (N, F, OH, OW) without moving the channel axis",
         source='''def conv2d_forward(x, w, b, stride=1, padding=0):
    n, _, h, wd = x.shape
    f, _, kh, kw = w.shape
    oh = (h + 2 * padding - kh) // stride + 1
    ow = (wd + 2 * padding - kw) // stride + 1
    out = im2col(x, kh, kw, stride, padding) @ w.reshape(f, -1).T
    if b is not None:
        out = out + b
    return out.reshape(n, f, oh, ow)
'''),
    dict(cell="conv2d_backward",
         fails=["test_conv2d_backward"],
         why="col2im assigns (=) instead of accumulating (+=): overlapping windows overwrite each other",
         source='''def col2im(cols, x_shape, kh, kw, stride=1, padding=0):
    n, c, h, w = x_shape
    oh = (h + 2 * padding - kh) // stride + 1
    ow = (w + 2 * padding - kw) // stride + 1
    cols6 = cols.reshape(n, oh, ow, c, kh, kw).transpose(0, 3, 4, 5, 1, 2)
    xp = np.zeros((n, c, h + 2 * padding, w + 2 * padding), dtype=cols.dtype)
    for i in range(kh):
        for j in range(kw):
            xp[:, :, i:i + stride * oh:stride, j:j + stride * ow:stride] = cols6[:, :, i, j]
    return xp[:, :, padding:padding + h, padding:padding + w]


def conv2d_backward(dout, x, w, stride=1, padding=0):
    f, _, kh, kw = w.shape
    d_y = dout.transpose(0, 2, 3, 1).reshape(-1, f)
    cols = im2col(x, kh, kw, stride, padding)
    dx = col2im(d_y @ w.reshape(f, -1), x.shape, kh, kw, stride, padding)
    return dx, (d_y.T @ cols).reshape(w.shape), d_y.sum(axis=0)
'''),
    dict(cell="conv2d_backward",
         fails=["test_conv2d_backward"],
         why="dx as a 'full' correlation of dout with the kernel NOT flipped",
         source='''def col2im(cols, x_shape, kh, kw, stride=1, padding=0):
    raise NotImplementedError


def conv2d_backward(dout, x, w, stride=1, padding=0):
    f, c, kh, kw = w.shape
    d_y = dout.transpose(0, 2, 3, 1).reshape(-1, f)
    cols = im2col(x, kh, kw, stride, padding)
    # full correlation: pad dout by k-1 and slide the (unflipped) kernel, transposed over channels
    dpad = np.pad(dout, ((0, 0), (0, 0), (kh - 1, kh - 1), (kw - 1, kw - 1)))
    w_t = w.transpose(1, 0, 2, 3)
    n, _, hp, wp = dpad.shape
    oh, ow = hp - kh + 1, wp - kw + 1
    full = (im2col(dpad, kh, kw) @ w_t.reshape(c, -1).T).reshape(n, oh, ow, c).transpose(0, 3, 1, 2)
    dx = full[:, :, padding:padding + x.shape[2], padding:padding + x.shape[3]]
    return dx, (d_y.T @ cols).reshape(w.shape), d_y.sum(axis=0)
'''),
    dict(cell="conv2d_backward",
         fails=["test_conv2d_backward"],
         why="dw transposed: cols.T @ dY reshaped to the weight shape",
         source='''def col2im(cols, x_shape, kh, kw, stride=1, padding=0):
    n, c, h, w = x_shape
    oh = (h + 2 * padding - kh) // stride + 1
    ow = (w + 2 * padding - kw) // stride + 1
    cols6 = cols.reshape(n, oh, ow, c, kh, kw).transpose(0, 3, 4, 5, 1, 2)
    xp = np.zeros((n, c, h + 2 * padding, w + 2 * padding), dtype=cols.dtype)
    for i in range(kh):
        for j in range(kw):
            xp[:, :, i:i + stride * oh:stride, j:j + stride * ow:stride] += cols6[:, :, i, j]
    return xp[:, :, padding:padding + h, padding:padding + w]


def conv2d_backward(dout, x, w, stride=1, padding=0):
    f, _, kh, kw = w.shape
    d_y = dout.transpose(0, 2, 3, 1).reshape(-1, f)
    cols = im2col(x, kh, kw, stride, padding)
    dx = col2im(d_y @ w.reshape(f, -1), x.shape, kh, kw, stride, padding)
    return dx, (cols.T @ d_y).reshape(w.shape), d_y.sum(axis=0)
'''),
    dict(cell="maxpool_forward",
         fails=["test_maxpool_forward"],
         why="running max started from zeros: wrong for negative activations",
         source='''def maxpool_forward(x, kernel_size=2, stride=None):
    k = kernel_size
    s = k if stride is None else stride
    _, _, h, w = x.shape
    oh, ow = (h - k) // s + 1, (w - k) // s + 1
    out = np.zeros(x.shape[:2] + (oh, ow), dtype=x.dtype)
    for i in range(k):
        for j in range(k):
            out = np.maximum(out, x[:, :, i:i + s * oh:s, j:j + s * ow:s])
    return out
'''),
    dict(cell="maxpool_forward",
         fails=["test_maxpool_forward"],
         why="reshape trick that assumes H and W are multiples of k and stride == k",
         source='''def maxpool_forward(x, kernel_size=2, stride=None):
    k = kernel_size
    n, c, h, w = x.shape
    return x.reshape(n, c, h // k, k, w // k, k).max(axis=(3, 5))
'''),
    dict(cell="maxpool_backward",
         fails=["test_maxpool_backward"],
         why="gradient sent to every element of the window",
         source='''def maxpool_backward(dout, x, kernel_size=2, stride=None):
    k = kernel_size
    s = k if stride is None else stride
    _, _, oh, ow = dout.shape
    dx = np.zeros_like(x)
    for i in range(k):
        for j in range(k):
            dx[:, :, i:i + s * oh:s, j:j + s * ow:s] += dout
    return dx
'''),
    dict(cell="maxpool_backward",
         fails=["test_maxpool_backward"],
         why="ties: gradient given to every element equal to the maximum",
         source='''def maxpool_backward(dout, x, kernel_size=2, stride=None):
    k = kernel_size
    s = k if stride is None else stride
    _, _, oh, ow = dout.shape
    windows = [x[:, :, i:i + s * oh:s, j:j + s * ow:s] for i in range(k) for j in range(k)]
    best = np.max(windows, axis=0)
    dx = np.zeros_like(x)
    for idx, win in enumerate(windows):
        i, j = divmod(idx, k)
        dx[:, :, i:i + s * oh:s, j:j + s * ow:s] += np.where(win == best, dout, 0)
    return dx
'''),
    dict(cell="build_lenet5",
         fails=["test_build_lenet5"],
         why="conv1 without padding: 28 -> 24 -> 12 -> 8 -> 4, so 16*4*4 = 256 features reach fc1 (400 expected)",
         source='''def build_lenet5():
    return nn.Sequential(
        nn.Conv2d(1, 6, 5), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(6, 16, 5), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(16 * 5 * 5, 120), nn.ReLU(),
        nn.Linear(120, 84), nn.ReLU(),
        nn.Linear(84, 10),
    )
'''),
    dict(cell="build_lenet5",
         fails=["test_build_lenet5"],
         why="ReLU missing between fc1 and fc2 (same parameter count, different layers)",
         source='''def build_lenet5():
    return nn.Sequential(
        nn.Conv2d(1, 6, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(6, 16, 5), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(16 * 5 * 5, 120),
        nn.Linear(120, 84), nn.ReLU(),
        nn.Linear(84, 10),
    )
'''),
    dict(cell="confusion_matrix",
         fails=["test_confusion_matrix"],
         why="fancy-index += 1 does not count repeated (true, pred) pairs",
         source='''def confusion_matrix(y_true, y_pred, num_classes=10):
    cm = np.zeros((num_classes, num_classes), dtype=np.int64)
    cm[y_true, y_pred] += 1
    return cm
'''),
    dict(cell="confusion_matrix",
         fails=["test_confusion_matrix"],
         why="transposed: rows are predictions",
         source='''def confusion_matrix(y_true, y_pred, num_classes=10):
    cm = np.zeros((num_classes, num_classes), dtype=np.int64)
    np.add.at(cm, (y_pred, y_true), 1)
    return cm
'''),
    # Caught only by the adversarial hidden tests added after the grading audit (issue 10).
    dict(cell="im2col",
         fails=["test_im2col"],
         why="rounds the number of window steps up (ceil): right only when the stride divides H + 2p - KH",
         source='''def im2col(x, kh, kw, stride=1, padding=0):
    n, c, h, w = x.shape
    oh = -(-(h + 2 * padding - kh) // stride) + 1
    ow = -(-(w + 2 * padding - kw) // stride) + 1
    if oh <= 0 or ow <= 0:
        raise ValueError(f"kernel {kh}x{kw} does not fit into input {h}x{w} with padding {padding}")
    xp = np.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding)))
    cols = np.empty((n, c, kh, kw, oh, ow), dtype=x.dtype)
    for i in range(kh):
        for j in range(kw):
            cols[:, :, i, j] = xp[:, :, i:i + stride * oh:stride, j:j + stride * ow:stride]
    return cols.transpose(0, 4, 5, 1, 2, 3).reshape(n * oh * ow, c * kh * kw)
'''),
]

# Correct answers in another style than the reference solution: each must keep full marks.
RIGHT_ANSWERS = [
    dict(cell="im2col",
         why="sliding_window_view plus a strided slice instead of a loop over kernel offsets",
         source='''from numpy.lib.stride_tricks import sliding_window_view


def im2col(x, kh, kw, stride=1, padding=0):
    n, c, h, w = x.shape
    if h + 2 * padding < kh or w + 2 * padding < kw:
        raise ValueError(f"a {kh}x{kw} kernel does not fit into {h}x{w} padded by {padding}")
    xp = np.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding)))
    win = sliding_window_view(xp, (kh, kw), axis=(2, 3))[:, :, ::stride, ::stride]  # (N, C, OH, OW, kh, kw)
    oh, ow = win.shape[2], win.shape[3]
    return win.transpose(0, 2, 3, 1, 4, 5).reshape(n * oh * ow, c * kh * kw)
'''),
    dict(cell="conv2d_forward",
         why="einsum on the window matrix, im2col called with keyword arguments",
         source='''def conv2d_forward(x, w, b, stride=1, padding=0):
    n, _, h, wd = x.shape
    f, _, kh, kw = w.shape
    cols = im2col(x, kh=kh, kw=kw, stride=stride, padding=padding)
    oh = (h + 2 * padding - kh) // stride + 1
    ow = cols.shape[0] // (n * oh)
    y = np.einsum("rk,fk->rf", cols, w.reshape(f, -1))
    if b is not None:
        y += b
    return np.moveaxis(y.reshape(n, oh, ow, f), 3, 1)
'''),
    dict(cell="conv2d_backward",
         why="col2im with one np.add.at on index grids instead of a loop, tensordot for dw",
         source='''def col2im(cols, x_shape, kh, kw, stride=1, padding=0):
    n, c, h, w = x_shape
    oh = (h + 2 * padding - kh) // stride + 1
    ow = (w + 2 * padding - kw) // stride + 1
    vals = cols.reshape(n, oh, ow, c, kh, kw).transpose(0, 3, 1, 2, 4, 5)  # (N, C, OH, OW, kh, kw)
    rows = (np.arange(oh) * stride)[:, None, None, None] + np.arange(kh)[None, None, :, None]
    cols_ = (np.arange(ow) * stride)[None, :, None, None] + np.arange(kw)[None, None, None, :]
    xp = np.zeros((n, c, h + 2 * padding, w + 2 * padding), dtype=cols.dtype)
    np.add.at(xp, (slice(None), slice(None), rows, cols_), vals)
    return xp[:, :, padding:padding + h, padding:padding + w]


def conv2d_backward(dout, x, w, stride=1, padding=0):
    f, _, kh, kw = w.shape
    d_y = np.moveaxis(dout, 1, 3).reshape(-1, f)
    cols = im2col(x, kh, kw, stride=stride, padding=padding)
    dw = np.tensordot(d_y, cols, axes=([0], [0])).reshape(w.shape)
    dx = col2im(np.tensordot(d_y, w.reshape(f, -1), axes=([1], [0])), x.shape, kh, kw, stride, padding)
    return dx, dw, np.sum(dout, axis=(0, 2, 3))
'''),
    dict(cell="maxpool_forward",
         why="sliding_window_view and a max over the window axes",
         source='''from numpy.lib.stride_tricks import sliding_window_view


def maxpool_forward(x, kernel_size=2, stride=None):
    s = kernel_size if stride is None else stride
    win = sliding_window_view(x, (kernel_size, kernel_size), axis=(2, 3))[:, :, ::s, ::s]
    return win.max(axis=(-2, -1))
'''),
    dict(cell="maxpool_backward",
         why="argmax over sliding windows, gradients scattered with one np.add.at",
         source='''from numpy.lib.stride_tricks import sliding_window_view


def maxpool_backward(dout, x, kernel_size=2, stride=None):
    k = kernel_size
    s = k if stride is None else stride
    n, c, oh, ow = dout.shape
    win = sliding_window_view(x, (k, k), axis=(2, 3))[:, :, ::s, ::s][:, :, :oh, :ow]
    first = win.reshape(n, c, oh, ow, k * k).argmax(axis=-1)  # row-major: the first maximum
    rows = np.arange(oh)[None, None, :, None] * s + first // k
    cols = np.arange(ow)[None, None, None, :] * s + first % k
    nn_ = np.arange(n)[:, None, None, None]
    cc = np.arange(c)[None, :, None, None]
    dx = np.zeros_like(x)
    np.add.at(dx, (nn_, cc, rows, cols), dout)
    return dx
'''),
    dict(cell="build_lenet5",
         why="layers collected in a list, every constructor called with keyword arguments",
         source='''def build_lenet5():
    layers = [nn.Conv2d(in_channels=1, out_channels=6, kernel_size=5, padding=2), nn.ReLU(),
              nn.MaxPool2d(kernel_size=2),
              nn.Conv2d(in_channels=6, out_channels=16, kernel_size=5), nn.ReLU(), nn.MaxPool2d(kernel_size=2),
              nn.Flatten()]
    sizes = [400, 120, 84, 10]
    for i, (d_in, d_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(nn.Linear(in_features=d_in, out_features=d_out))
        if i < len(sizes) - 2:
            layers.append(nn.ReLU())
    return nn.Sequential(*layers)
'''),
    dict(cell="confusion_matrix",
         why="np.add.at on a zero matrix instead of np.bincount",
         source='''def confusion_matrix(y_true, y_pred, num_classes=10):
    cm = np.zeros((num_classes, num_classes), dtype=np.int64)
    np.add.at(cm, (np.asarray(y_true, dtype=np.int64), np.asarray(y_pred, dtype=np.int64)), 1)
    return cm
'''),
]
