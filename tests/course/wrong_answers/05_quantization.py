"""Plausible wrong answers for unit 05_quantization: each must lose exactly the points of its own task.

RIGHT_ANSWERS: for every task a correct answer in another style than the reference solution (loops over
levels or channels, brute force, keyword arguments, another quadrature); each must get full marks.

Two wrong answers per task keep the CI run short (each costs one notebook execution); where possible one of
them is caught only by the hidden tests. Six more were graded once with nbgrader and lost exactly their task
(quantize's arguments swapped; Lloyd without the top clip, or refitting with mean(x / k); fake quantization
without the clamp; an observer reducing over the channel axis; a ternary scale averaged over all entries).
"""

WRONG_ANSWERS = [
    dict(cell="quantize_relu_ceil",
         fails=["test_quantize_relu_ceil"],
         why="floor(x / alpha) + 1: an input exactly on a level goes up one level",
         source='''def quantize_relu_ceil(x, bits, alpha):
    k = np.where(x > 0, np.floor(x / alpha) + 1, 0)
    return np.minimum(k, 2**bits - 1) * alpha
'''),
    dict(cell="quantize_relu_ceil",
         fails=["test_quantize_relu_ceil"],
         why="saturates at 2**bits levels above 0 (one level too many)",
         source='''def quantize_relu_ceil(x, bits, alpha):
    return np.clip(np.ceil(x / alpha), 0, 2**bits) * alpha
'''),
    dict(cell="quantize_relu_round",
         fails=["test_quantize_relu_round"],
         why="no saturation at the top level",
         source='''def quantize_relu_round(x, bits, alpha):
    return np.maximum(np.rint(x / alpha), 0) * alpha
'''),
    dict(cell="quantize_relu_round",
         fails=["test_quantize_relu_round"],
         why="truncates (floor) instead of rounding to the nearest level",
         source='''def quantize_relu_round(x, bits, alpha):
    return np.clip(np.floor(x / alpha), 0, 2**bits - 1) * alpha
'''),
    dict(cell="relu_quantization_mse",
         fails=["test_relu_quantization_mse"],
         why="integrates over x >= 0 only (forgets that quantize may be nonzero for x < 0)",
         source='''def relu_quantization_mse(quantize, bits, alpha):
    x = np.linspace(0.0, 10.0, 1_000_001)
    density = np.exp(-0.5 * x * x) / math.sqrt(2.0 * math.pi)
    err = (quantize(x, bits, alpha) - np.maximum(x, 0.0)) ** 2
    return float(np.trapezoid(err * density, x))
'''),
    dict(cell="relu_quantization_mse",
         fails=["test_relu_quantization_mse"],
         why="Monte Carlo with a million samples: error ~1e-4, the text asks for 1e-5",
         source='''def relu_quantization_mse(quantize, bits, alpha):
    x = np.random.default_rng(0).standard_normal(1_000_000)
    return float(np.mean((quantize(x, bits, alpha) - np.maximum(x, 0.0)) ** 2))
'''),
    dict(cell="lloyd_alpha",
         fails=["test_lloyd_alpha"],
         why="assigns with the ceiling rule instead of the nearest level",
         source='''def lloyd_alpha(samples, bits, alpha0, max_iter=100, tol=1e-12):
    x = np.ravel(samples).astype(float)
    alpha = float(alpha0)
    for _ in range(max_iter):
        k = np.clip(np.ceil(x / alpha), 0, 2**bits - 1)
        if np.sum(k * k) == 0:
            raise ValueError("no sample at a nonzero level")
        new = float(np.sum(k * x) / np.sum(k * k))
        done = abs(new - alpha) < tol
        alpha = new
        if done:
            break
    return alpha
'''),
    dict(cell="lloyd_alpha",
         fails=["test_lloyd_alpha"],
         why="ignores tol: always runs max_iter updates",
         source='''def lloyd_alpha(samples, bits, alpha0, max_iter=100, tol=1e-12):
    x = np.ravel(samples).astype(float)
    alpha = float(alpha0)
    for _ in range(max_iter):
        k = np.clip(np.rint(x / alpha), 0, 2**bits - 1)
        if np.sum(k * k) == 0:
            raise ValueError("no sample at a nonzero level")
        alpha = float(np.sum(k * x) / np.sum(k * k))
    return alpha
'''),
    dict(cell="affine",
         fails=["test_affine"],
         why="range not widened to contain 0 (zero point outside the integer range, 0 not exact)",
         source='''def affine_qparams(min_val, max_val, bits=8):
    lo, hi = np.asarray(min_val, dtype=float), np.asarray(max_val, dtype=float)
    if np.any(lo > hi):
        raise ValueError(f"min_val {min_val} > max_val {max_val}")
    scale = np.where(hi > lo, (hi - lo) / (2**bits - 1), 1.0)
    return scale, np.rint(-lo / scale).astype(int)


def affine_fake_quantize(x, scale, zero_point, bits=8):
    q = np.clip(np.rint(x / scale) + zero_point, 0, 2**bits - 1)
    return (q - zero_point) * scale
'''),
    dict(cell="affine",
         fails=["test_affine"],
         why="rounds halves up with floor(v + 0.5) instead of to even",
         source='''def affine_qparams(min_val, max_val, bits=8):
    if np.any(np.asarray(min_val) > np.asarray(max_val)):
        raise ValueError(f"min_val {min_val} > max_val {max_val}")
    lo = np.minimum(min_val, 0.0)
    hi = np.maximum(max_val, 0.0)
    scale = np.where(hi > lo, (hi - lo) / (2**bits - 1), 1.0)
    return scale, np.floor(-lo / scale + 0.5).astype(int)


def affine_fake_quantize(x, scale, zero_point, bits=8):
    q = np.clip(np.floor(x / scale + 0.5) + zero_point, 0, 2**bits - 1)
    return (q - zero_point) * scale
'''),
    dict(cell="observer",
         fails=["test_observer"],
         why="moving average with the weights swapped: m <- c m + (1 - c) m_batch",
         source='''class MovingAverageMinMaxObserver:
    def __init__(self, averaging_constant=0.01, axis=None):
        self.averaging_constant, self.axis = averaging_constant, axis
        self.min_val = self.max_val = None

    def observe(self, x):
        x = np.asarray(x)
        others = None if self.axis is None else tuple(i for i in range(x.ndim) if i != self.axis % x.ndim)
        lo, hi = x.min(axis=others), x.max(axis=others)
        if self.min_val is None:
            self.min_val, self.max_val = lo, hi
        else:
            c = self.averaging_constant
            self.min_val = c * self.min_val + (1 - c) * lo
            self.max_val = c * self.max_val + (1 - c) * hi
'''),
    dict(cell="observer",
         fails=["test_observer"],
         why="a negative axis is compared with the axis numbers as is: axis=-1 reduces over every axis",
         source='''class MovingAverageMinMaxObserver:
    def __init__(self, averaging_constant=0.01, axis=None):
        self.averaging_constant, self.axis = averaging_constant, axis
        self.min_val = self.max_val = None

    def observe(self, x):
        x = np.asarray(x)
        others = None if self.axis is None else tuple(i for i in range(x.ndim) if i != self.axis)
        lo, hi = x.min(axis=others), x.max(axis=others)
        if self.min_val is None:
            self.min_val, self.max_val = lo, hi
        else:
            c = self.averaging_constant
            self.min_val = self.min_val + c * (lo - self.min_val)
            self.max_val = self.max_val + c * (hi - self.max_val)
'''),
    dict(cell="quantize_weight_symmetric",
         fails=["test_quantize_weight_symmetric"],
         why="t = 2**bits - 1 (the unsigned level count) instead of 2**(bits - 1) - 1",
         source='''def quantize_weight_symmetric(w, bits, per_channel=False):
    t = 2**bits - 1
    axes = tuple(range(1, w.ndim)) if per_channel else None
    peak = np.max(np.abs(w), axis=axes, keepdims=True)
    scale = np.where(peak > 0, peak / t, 1.0)
    return np.clip(np.rint(w / scale), -t, t) * scale
'''),
    dict(cell="quantize_weight_symmetric",
         fails=["test_quantize_weight_symmetric"],
         why="divides by a zero scale for an all-zero channel (NaN and a NumPy warning)",
         source='''def quantize_weight_symmetric(w, bits, per_channel=False):
    t = 2 ** (bits - 1) - 1
    axes = tuple(range(1, w.ndim)) if per_channel else None
    scale = np.max(np.abs(w), axis=axes, keepdims=True) / t
    return np.clip(np.rint(w / scale), -t, t) * scale
'''),
    dict(cell="binary_ternary",
         fails=["test_binary_ternary"],
         why="np.sign for the binary code: a zero weight becomes 0 instead of +s",
         source='''def binarize_weights(w, per_channel=False):
    axes = tuple(range(1, w.ndim)) if per_channel else None
    return np.sign(w) * np.mean(np.abs(w), axis=axes, keepdims=True)


def ternarize_weights(w, per_channel=False, threshold=0.7):
    axes = tuple(range(1, w.ndim)) if per_channel else None
    a = np.abs(w)
    keep = a > threshold * np.mean(a, axis=axes, keepdims=True)
    scale = np.sum(a * keep, axis=axes, keepdims=True) / np.maximum(np.sum(keep, axis=axes, keepdims=True), 1)
    return np.sign(w) * keep * scale
'''),
    dict(cell="binary_ternary",
         fails=["test_binary_ternary"],
         why="ternary keeps |w| >= delta (an entry exactly at the threshold survives)",
         source='''def binarize_weights(w, per_channel=False):
    axes = tuple(range(1, w.ndim)) if per_channel else None
    return np.where(w >= 0, 1.0, -1.0) * np.mean(np.abs(w), axis=axes, keepdims=True)


def ternarize_weights(w, per_channel=False, threshold=0.7):
    axes = tuple(range(1, w.ndim)) if per_channel else None
    a = np.abs(w)
    keep = a >= threshold * np.mean(a, axis=axes, keepdims=True)
    scale = np.sum(a * keep, axis=axes, keepdims=True) / np.maximum(np.sum(keep, axis=axes, keepdims=True), 1)
    return np.sign(w) * keep * scale
'''),
]

RIGHT_ANSWERS = [
    dict(cell="quantize_relu_ceil",
         why="a loop over the levels with comparisons, no ceil",
         source='''def quantize_relu_ceil(x, bits, alpha):
    x = np.asarray(x, dtype=float)
    out = np.zeros_like(x)
    for k in range(1, 2**bits):
        out = np.where(x > (k - 1) * alpha, k * alpha, out)
    return out
'''),
    dict(cell="quantize_relu_round",
         why="brute force: argmin of the distance to every level",
         source='''def quantize_relu_round(x, bits, alpha):
    levels = alpha * np.arange(2**bits)
    x = np.asarray(x, dtype=float)
    return levels[np.abs(x[..., None] - levels).argmin(axis=-1)]
'''),
    dict(cell="relu_quantization_mse",
         why="midpoint rule on [-12, 12] with keyword arguments to quantize",
         source='''def relu_quantization_mse(quantize, bits, alpha):
    n = 3_000_000
    dx = 24.0 / n
    x = -12.0 + (np.arange(n) + 0.5) * dx
    pdf = np.exp(-x**2 / 2) / np.sqrt(2 * np.pi)
    q = quantize(x, bits=bits, alpha=alpha)
    return float(np.sum((q - np.where(x > 0, x, 0.0)) ** 2 * pdf) * dx)
'''),
    dict(cell="lloyd_alpha",
         why="levels by brute-force argmin, np.dot for the sums, a while loop",
         source='''def lloyd_alpha(samples, bits, alpha0, max_iter=100, tol=1e-12):
    x = np.asarray(samples, dtype=float).ravel()
    ks = np.arange(2**bits, dtype=float)
    alpha, it = float(alpha0), 0
    while it < max_iter:
        k = ks[np.argmin(np.abs(x[:, None] - alpha * ks), axis=1)]
        kk = np.dot(k, k)
        if kk == 0:
            raise ValueError(f"no sample reaches a nonzero level (alpha = {alpha})")
        new = float(np.dot(k, x) / kk)
        it += 1
        change, alpha = abs(new - alpha), new
        if change < tol:
            break
    return alpha
'''),
    dict(cell="affine",
         why="a loop over channels with Python math, np.round and np.minimum/np.maximum for the clamp",
         source='''def affine_qparams(min_val, max_val, bits=8):
    mins, maxs = np.atleast_1d(min_val).astype(float), np.atleast_1d(max_val).astype(float)
    scales, zps = [], []
    for m, M in zip(mins, maxs):
        if m > M:
            raise ValueError(f"empty range [{m}, {M}]")
        m, M = min(m, 0.0), max(M, 0.0)
        s = (M - m) / (2**bits - 1) if M > m else 1.0
        scales.append(s)
        zps.append(int(np.round(-m / s)))
    if np.ndim(min_val) == 0:
        return scales[0], zps[0]
    return np.array(scales), np.array(zps)


def affine_fake_quantize(x, scale, zero_point, bits=8):
    q = np.round(np.asarray(x) / scale) + zero_point
    q = np.minimum(np.maximum(q, 0), 2**bits - 1)
    return scale * (q - zero_point)
'''),
    dict(cell="observer",
         why="moveaxis + reshape for the per-channel range, the average written as (1 - c) m + c m_batch",
         source='''class MovingAverageMinMaxObserver:
    def __init__(self, averaging_constant=0.01, axis=None):
        self.averaging_constant = averaging_constant
        self.axis = axis
        self.min_val, self.max_val = None, None

    def observe(self, x):
        x = np.asarray(x)
        if self.axis is None:
            flat = x.reshape(1, -1)
        else:
            flat = np.moveaxis(x, self.axis, 0).reshape(x.shape[self.axis], -1)
        lo, hi = flat.min(axis=1), flat.max(axis=1)
        if self.axis is None:
            lo, hi = float(lo[0]), float(hi[0])
        if self.min_val is None:
            self.min_val, self.max_val = lo, hi
            return
        c = self.averaging_constant
        self.min_val = (1 - c) * self.min_val + c * lo
        self.max_val = (1 - c) * self.max_val + c * hi
'''),
    dict(cell="quantize_weight_symmetric",
         why="a loop over output channels calling a per-tensor helper, np.round",
         source='''def quantize_weight_symmetric(w, bits, per_channel=False):
    t = 2 ** (bits - 1) - 1

    def one(block):
        peak = np.abs(block).max()
        if peak == 0:
            return np.zeros_like(block, dtype=float)
        s = peak / t
        return s * np.clip(np.round(block / s), -t, t)

    if not per_channel:
        return one(w)
    return np.stack([one(w[c]) for c in range(w.shape[0])])
'''),
    dict(cell="binary_ternary",
         why="a loop over channels with boolean indexing",
         source='''def binarize_weights(w, per_channel=False):
    groups = [w] if not per_channel else list(w)
    out = [np.abs(g).mean() * np.where(g < 0, -1.0, 1.0) for g in groups]
    return out[0] if not per_channel else np.stack(out)


def ternarize_weights(w, per_channel=False, threshold=0.7):
    def one(g):
        a = np.abs(g)
        keep = a > threshold * a.mean()
        if not keep.any():
            return np.zeros(g.shape)
        return np.where(keep, a[keep].mean() * np.sign(g), 0.0)
    return one(w) if not per_channel else np.stack([one(g) for g in w])
'''),
]
