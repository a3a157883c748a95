"""Plausible wrong answers for unit 09_quantized_gradients: each must lose exactly the points of its own task.

RIGHT_ANSWERS: for every task a correct answer in another style than the reference solution (dithering with
floor(x + u), a loop over entries, np.linalg.norm, np.average with weights, a bit string through a Python int,
keyword arguments); each must get full marks.

One wrong answer per task is caught only by the hidden tests (a scale or sigma per row instead of per layer, one
uniform number shared by the layer, max(g) instead of max|g|, np.sign's sign(0) = 0, a range check on one side
only, clipping after quantizing).
"""

WRONG_ANSWERS = [
    # ---- task 1: stochastic_quantize
    dict(cell="stochastic_quantize",
         fails=["test_stochastic_quantize"],
         why="rounds to the nearest level (deterministic): biased",
         source='''def stochastic_quantize(g, bits, rng):
    if bits < 2:
        raise ValueError("bits must be >= 2")
    k = 2 ** (bits - 1) - 1
    s = np.max(np.abs(g))
    if s == 0:
        return np.zeros(np.shape(g))
    return s * np.sign(g) * np.rint(np.abs(g) / s * k) / k
'''),
    dict(cell="stochastic_quantize",
         fails=["test_stochastic_quantize"],
         why="one scale per row (max over the last axis) instead of one per layer; only 2-D layers show it",
         source='''def stochastic_quantize(g, bits, rng):
    if bits < 2:
        raise ValueError("bits must be >= 2")
    k = 2 ** (bits - 1) - 1
    g = np.asarray(g, dtype=float)
    s = np.max(np.abs(g), axis=-1, keepdims=True)
    safe = np.where(s > 0, s, 1.0)
    x = np.abs(g) / safe * k
    low = np.floor(x)
    return s * np.sign(g) * (low + (rng.random(g.shape) < x - low)) / k
'''),
    dict(cell="stochastic_quantize",
         fails=["test_stochastic_quantize"],
         why="draws from np.random's global state instead of rng: not reproducible",
         source='''def stochastic_quantize(g, bits, rng):
    if bits < 2:
        raise ValueError("bits must be >= 2")
    k = 2 ** (bits - 1) - 1
    g = np.asarray(g, dtype=float)
    s = np.max(np.abs(g))
    if s == 0:
        return np.zeros(g.shape)
    x = np.abs(g) / s * k
    low = np.floor(x)
    return s * np.sign(g) * (low + (np.random.random(g.shape) < x - low)) / k
'''),
    dict(cell="stochastic_quantize",
         fails=["test_stochastic_quantize"],
         why="one uniform number shared by the whole layer: unbiased per entry, but entries not rounded independently",
         source='''def stochastic_quantize(g, bits, rng):
    if bits < 2:
        raise ValueError("bits must be >= 2")
    k = 2 ** (bits - 1) - 1
    g = np.asarray(g, dtype=float)
    s = np.max(np.abs(g))
    if s == 0:
        return np.zeros(g.shape)
    x = np.abs(g) / s * k
    low = np.floor(x)
    u = rng.random(g.shape[:-1] + (1,)) if g.ndim > 1 else rng.random()
    return s * np.sign(g) * (low + (u < x - low)) / k
'''),
    # ---- task 2: sq_variance
    dict(cell="sq_variance",
         fails=["test_sq_variance"],
         why="(s/k) p (1 - p): the step is not squared",
         source='''def sq_variance(g, bits):
    g = np.asarray(g, dtype=float)
    k = 2 ** (bits - 1) - 1
    s = float(np.max(np.abs(g)))
    if s == 0:
        return 0.0
    x = np.abs(g) / s * k
    p = x - np.floor(x)
    return float(np.sum(s / k * p * (1 - p)))
'''),
    dict(cell="sq_variance",
         fails=["test_sq_variance"],
         why="a Monte-Carlo estimate (5000 draws) instead of the formula",
         source='''def sq_variance(g, bits):
    g = np.asarray(g, dtype=float)
    k = 2 ** (bits - 1) - 1
    s = float(np.max(np.abs(g)))
    if s == 0:
        return 0.0
    rng = np.random.default_rng(0)
    x = np.abs(g) / s * k
    draws = np.floor(x) + (rng.random((5000,) + g.shape) < x - np.floor(x))
    q = s * np.sign(g) * draws / k
    return float(np.mean(np.sum((q - g) ** 2, axis=tuple(range(1, q.ndim)))))
'''),
    # ---- task 3: spread, worst_case_vector
    dict(cell="spread",
         fails=["test_spread"],
         why="sum(g) instead of sum|g| for the 1-norm; worst case with a = 1 / sqrt(d) instead of 1 / (1 + sqrt d)",
         source='''def spread(g):
    g = np.asarray(g, dtype=float)
    return float(np.max(np.abs(g)) * np.sum(g) / np.sum(g * g))


def worst_case_vector(d):
    x = np.full(d, 1.0 / math.sqrt(d))
    x[0] = 1.0
    return x
'''),
    dict(cell="spread",
         fails=["test_spread"],
         why="max(g) instead of max|g| (only a layer whose largest entry is negative shows it)",
         source='''def spread(g):
    g = np.asarray(g, dtype=float)
    return float(np.max(g) * np.sum(np.abs(g)) / np.sum(g * g))


def worst_case_vector(d):
    x = np.full(d, 1.0 / (1.0 + math.sqrt(d)))
    x[0] = 1.0
    return x
'''),
    # ---- task 4: clip_gradient
    dict(cell="clip_gradient",
         fails=["test_clip_gradient"],
         why="the sample standard deviation (ddof=1) instead of dividing by n",
         source='''def clip_gradient(g, c):
    if c <= 0:
        raise ValueError("c must be > 0")
    sigma = np.std(g, ddof=1)
    return np.clip(g, -c * sigma, c * sigma)
'''),
    dict(cell="clip_gradient",
         fails=["test_clip_gradient"],
         why="one sigma per row of a 2-D layer instead of one for the layer (only 2-D layers show it)",
         source='''def clip_gradient(g, c):
    if c <= 0:
        raise ValueError("c must be > 0")
    g = np.asarray(g, dtype=float)
    sigma = np.std(g, axis=-1, keepdims=True)
    return np.clip(g, -c * sigma, c * sigma)
'''),
    # ---- task 5: lab
    dict(cell="lab",
         fails=["test_lab"],
         why="alpha = mean|w|: the plain binarizer, D ignored",
         source='''def lab(w, D):
    return float(np.mean(np.abs(w))), np.where(w >= 0, 1.0, -1.0)
'''),
    dict(cell="lab",
         fails=["test_lab"],
         why="np.sign: sign(0) = 0, so b is not +-1 where w = 0 (only the hidden tests have zeros)",
         source='''def lab(w, D):
    return float(np.sum(D * np.abs(w)) / np.sum(D)), np.sign(w)
'''),
    # ---- task 6: pack_codes, unpack_codes
    dict(cell="pack",
         fails=["test_pack"],
         why="one code per byte: the bits are not packed",
         source='''def pack_codes(codes, bits):
    k = 2 ** (bits - 1) - 1
    c = np.asarray(codes)
    if c.size and (c.min() < -k or c.max() > k):
        raise ValueError("code out of range")
    return (c + k).astype(np.uint8).tobytes()


def unpack_codes(payload, bits, count):
    if len(payload) != count:
        raise ValueError("wrong payload length")
    return np.frombuffer(payload, dtype=np.uint8).astype(int) - (2 ** (bits - 1) - 1)
'''),
    dict(cell="pack",
         fails=["test_pack"],
         why="checks only the upper end of [-k, k]: a code below -k is packed silently (hidden tests)",
         source='''def pack_codes(codes, bits):
    k = 2 ** (bits - 1) - 1
    c = np.asarray(codes, dtype=np.int64).reshape(-1)
    if c.size and c.max() > k:
        raise ValueError("code out of range")
    u = (c + k) & (2**bits - 1)
    planes = np.stack([(u >> j) & 1 for j in range(bits)], axis=1).astype(np.uint8)
    return np.packbits(planes.reshape(-1)).tobytes()


def unpack_codes(payload, bits, count):
    if len(payload) != (bits * count + 7) // 8:
        raise ValueError("wrong payload length")
    flat = np.unpackbits(np.frombuffer(payload, dtype=np.uint8), count=bits * count)
    u = np.sum(flat.reshape(count, bits).astype(np.int64) << np.arange(bits), axis=1)
    return u - (2 ** (bits - 1) - 1)
'''),
    # ---- task 7: worker_average
    dict(cell="worker_average",
         fails=["test_worker_average"],
         why="the server quantizes the average once (with rngs[0]) instead of each worker its own gradient",
         source='''def worker_average(grads, bits, rngs, c=None):
    shapes = [np.shape(g) for g in grads]
    if len(set(shapes)) != 1 or len(rngs) != len(grads):
        raise ValueError(f"shapes {shapes}, {len(rngs)} generators")
    d = int(np.prod(shapes[0]))
    gs = [clip_gradient(g, c) if c is not None else g for g in grads]
    mean = np.mean(gs, axis=0)
    if bits is None:
        return mean, len(grads) * 32 * d
    return stochastic_quantize(mean, bits, rngs[0]), len(grads) * (8 * ((bits * d + 7) // 8) + 32)
'''),
    dict(cell="worker_average",
         fails=["test_worker_average"],
         why="counts m * d bits per worker: neither whole bytes nor the 32-bit scale",
         source='''def worker_average(grads, bits, rngs, c=None):
    shapes = [np.shape(g) for g in grads]
    if len(set(shapes)) != 1 or len(rngs) != len(grads):
        raise ValueError(f"shapes {shapes}, {len(rngs)} generators")
    d = int(np.prod(shapes[0]))
    sent = []
    for g, rng in zip(grads, rngs):
        g = clip_gradient(g, c) if c is not None else g
        sent.append(g if bits is None else stochastic_quantize(g, bits, rng))
    return np.mean(sent, axis=0), len(grads) * (32 if bits is None else bits) * d
'''),
    dict(cell="worker_average",
         fails=["test_worker_average"],
         why="clips after quantizing instead of before (only the hidden tests clip)",
         source='''def worker_average(grads, bits, rngs, c=None):
    shapes = [np.shape(g) for g in grads]
    if len(set(shapes)) != 1 or len(rngs) != len(grads):
        raise ValueError(f"shapes {shapes}, {len(rngs)} generators")
    d = int(np.prod(shapes[0]))
    sent = []
    for g, rng in zip(grads, rngs):
        q = g if bits is None else stochastic_quantize(g, bits, rng)
        sent.append(clip_gradient(q, c) if c is not None else q)
    nbits = 32 * d if bits is None else 8 * ((bits * d + 7) // 8) + 32
    return np.mean(sent, axis=0), len(grads) * nbits
'''),
]

RIGHT_ANSWERS = [
    dict(cell="stochastic_quantize",
         why="dithering: floor(x + u) with u = rng.uniform() is floor(x) + 1 with probability frac(x)",
         source='''def stochastic_quantize(g, bits, rng):
    if bits < 2:
        raise ValueError("SQm needs at least 2 bits, got %d" % bits)
    levels = (1 << (bits - 1)) - 1
    g = np.array(g, dtype=float)
    if not np.any(g):
        return np.zeros_like(g)
    scale = np.abs(g).max()
    q = np.floor(np.abs(g) * (levels / scale) + rng.uniform(0.0, 1.0, size=g.shape))
    return np.copysign(q * scale / levels, g)
'''),
    dict(cell="sq_variance",
         why="a loop over the entries with math.modf",
         source='''def sq_variance(g, bits):
    values = [abs(float(v)) for v in np.ravel(g)]
    s = max(values, default=0.0)
    if s == 0:
        return 0.0
    k = 2 ** (bits - 1) - 1
    total = 0.0
    for v in values:
        p, _ = math.modf(v * k / s)
        total += p * (1.0 - p)
    return total * (s / k) ** 2
'''),
    dict(cell="spread",
         why="np.linalg.norm on the flattened array; the worst case with the large entry last, scaled by 5",
         source='''def spread(g):
    v = np.ravel(g).astype(float)
    return float(np.linalg.norm(v, np.inf) * np.linalg.norm(v, 1) / np.linalg.norm(v) ** 2)


def worst_case_vector(d):
    small = 1.0 / (1.0 + np.sqrt(d))
    return 5.0 * np.r_[np.full(d - 1, small), 1.0]
'''),
    dict(cell="clip_gradient",
         why="sigma by hand, np.minimum/np.maximum instead of np.clip",
         source='''def clip_gradient(g, c):
    if c <= 0:
        raise ValueError("clipping factor must be positive, got %r" % (c,))
    g = np.asarray(g, dtype=float)
    sigma = math.sqrt(float(np.mean((g - g.mean()) ** 2)))
    return np.maximum(np.minimum(g, c * sigma), -c * sigma)
'''),
    dict(cell="lab",
         why="np.average with weights D; np.sign with the zeros set to +1 afterwards",
         source='''def lab(w, D):
    b = np.sign(w)
    b[b == 0] = 1
    return float(np.average(np.abs(w), weights=D)), b
'''),
    dict(cell="pack",
         why="a bit string through one Python int (int.to_bytes / int.from_bytes), a loop over the codes",
         source='''def pack_codes(codes, bits):
    k = 2 ** (bits - 1) - 1
    codes = [int(c) for c in np.ravel(codes)]
    if any(c < -k or c > k for c in codes):
        raise ValueError("codes must lie in [%d, %d]" % (-k, k))
    nbytes = (bits * len(codes) + 7) // 8
    text = "".join(format(c + k, "0%db" % bits) for c in codes)
    return int(text or "0", 2).to_bytes(nbytes, "big") if nbytes else b""


def unpack_codes(payload, bits, count):
    nbytes = (bits * count + 7) // 8
    if len(payload) != nbytes:
        raise ValueError("expected %d bytes, got %d" % (nbytes, len(payload)))
    if count == 0:
        return np.zeros(0, dtype=int)
    text = format(int.from_bytes(payload, "big"), "0%db" % (bits * count))
    k = 2 ** (bits - 1) - 1
    return np.array([int(text[i * bits:(i + 1) * bits], 2) - k for i in range(count)])
'''),
    dict(cell="worker_average",
         why="keyword arguments, a list comprehension, sum / N, math.ceil for the bytes",
         source='''def worker_average(grads, bits, rngs, c=None):
    if len(grads) != len(rngs):
        raise ValueError("%d gradients, %d generators" % (len(grads), len(rngs)))
    shape = np.shape(grads[0])
    for g in grads[1:]:
        if np.shape(g) != shape:
            raise ValueError("gradient shapes differ: %s vs %s" % (shape, np.shape(g)))
    pre = [g if c is None else clip_gradient(g=g, c=c) for g in grads]
    sent = [np.asarray(g, dtype=float) if bits is None else stochastic_quantize(g=g, bits=bits, rng=rng)
            for g, rng in zip(pre, rngs)]
    d = math.prod(shape)
    per_worker = 32 * d if bits is None else 8 * math.ceil(bits * d / 8) + 32
    return sum(sent) / len(sent), per_worker * len(grads)
'''),
]
