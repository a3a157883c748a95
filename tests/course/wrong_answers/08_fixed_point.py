"""Plausible wrong answers for unit 08_fixed_point: each must lose exactly the points of its own task.

RIGHT_ANSWERS: for every task a correct answer in another style than the reference solution; full marks.
"""

WRONG_ANSWERS = [
    dict(cell="wrap",
         fails=["test_wrap"],
         why="always wraps into the signed range: the signed flag is ignored",
         source='''def wrap(x, bits, signed=True):
    half = 1 << (bits - 1)
    return (np.asarray(x).astype(np.int64) + half) % (1 << bits) - half
'''),
    dict(cell="wrap",
         fails=["test_wrap"],
         why="casts to NumPy's int8/int16/int32: right for those widths only (bits 1, 7, 13, 31 fail)",
         source='''def wrap(x, bits, signed=True):
    kind = "int" if signed else "uint"
    return np.asarray(x).astype(f"{kind}{bits}").astype(np.int64)
'''),
    dict(cell="accumulate",
         fails=["test_accumulate"],
         why="saturates the exact final sum instead of after every addition",
         source='''def accumulate(products, acc_bits, overflow="wrap"):
    if overflow not in ("wrap", "saturate"):
        raise ValueError(overflow)
    running = np.cumsum(np.asarray(products).astype(np.int64), axis=1)
    lo, hi = -(1 << (acc_bits - 1)), (1 << (acc_bits - 1)) - 1
    total = running[:, -1] if running.shape[1] else np.zeros(running.shape[0], dtype=np.int64)
    count = ((running < lo) | (running > hi)).sum(axis=1)
    if overflow == "wrap":
        return wrap(total, acc_bits), count
    return np.clip(total, lo, hi), count
'''),
    dict(cell="accumulate",
         fails=["test_accumulate"],
         why="wrap is right at the end, but overflows are counted on the exact running sums, not the wrapped register",
         source='''def accumulate(products, acc_bits, overflow="wrap"):
    if overflow not in ("wrap", "saturate"):
        raise ValueError(overflow)
    products = np.asarray(products).astype(np.int64)
    lo, hi = -(1 << (acc_bits - 1)), (1 << (acc_bits - 1)) - 1
    acc = np.zeros(products.shape[0], dtype=np.int64)
    exact = np.zeros(products.shape[0], dtype=np.int64)
    count = np.zeros(products.shape[0], dtype=np.int64)
    for k in range(products.shape[1]):
        exact = exact + products[:, k]
        count += (exact < lo) | (exact > hi)
        acc = acc + products[:, k]
        acc = wrap(acc, acc_bits) if overflow == "wrap" else np.clip(acc, lo, hi)
    return acc, count
'''),
    dict(cell="saturating_rounding_doubling_high_mul",
         fails=["test_saturating_rounding_doubling_high_mul"],
         why="symmetric nudge: ties rounded away from zero (-0.5 -> -1) instead of toward +inf",
         source='''def saturating_rounding_doubling_high_mul(a, b):
    a64, b64 = np.asarray(a).astype(np.int64), np.asarray(b).astype(np.int64)
    ab = a64 * b64
    mag = (np.abs(ab) + (1 << 30)) >> 31
    return np.where((a64 == INT32_MIN) & (b64 == INT32_MIN), INT32_MAX, np.sign(ab) * mag)
'''),
    dict(cell="saturating_rounding_doubling_high_mul",
         fails=["test_saturating_rounding_doubling_high_mul"],
         why="float64 product: a * b needs up to 62 bits, float64 keeps 53, so large products round wrongly",
         source='''def saturating_rounding_doubling_high_mul(a, b):
    a64, b64 = np.asarray(a).astype(np.int64), np.asarray(b).astype(np.int64)
    high = np.floor(a64.astype(np.float64) * b64.astype(np.float64) / 2.0**31 + 0.5).astype(np.int64)
    return np.where((a64 == INT32_MIN) & (b64 == INT32_MIN), INT32_MAX, high)
'''),
    dict(cell="rounding_divide_by_pot",
         fails=["test_rounding_divide_by_pot"],
         why="adds half and shifts: ties go toward +inf (-2.5 -> -2), not away from zero",
         source='''def rounding_divide_by_pot(x, exponent):
    x = np.asarray(x).astype(np.int64)
    e = np.asarray(exponent).astype(np.int64)
    half = np.where(e > 0, np.int64(1) << np.maximum(e - 1, 0), 0)
    return (x + half) >> e
'''),
    dict(cell="rounding_divide_by_pot",
         fails=["test_rounding_divide_by_pot"],
         why="np.round rounds ties to even (2.5 -> 2)",
         source='''def rounding_divide_by_pot(x, exponent):
    x = np.asarray(x).astype(np.int64)
    return np.round(x / 2.0 ** np.asarray(exponent)).astype(np.int64)
'''),
    dict(cell="quantize_multiplier",
         fails=["test_quantize_multiplier"],
         why="no carry: q just below 1 gives M0 = 2**31, which does not fit int32",
         source='''def quantize_multiplier(real_multiplier):
    if real_multiplier == 0:
        return 0, 0
    q, shift = math.frexp(real_multiplier)
    return int(math.floor(q * 2**31 + 0.5)), int(shift)
'''),
    dict(cell="quantize_multiplier",
         fails=["test_quantize_multiplier"],
         why="Python's round: ties to even instead of away from zero",
         source='''def quantize_multiplier(real_multiplier):
    if real_multiplier == 0:
        return 0, 0
    q, shift = math.frexp(real_multiplier)
    m0 = round(q * 2**31)
    if m0 == 2**31:
        m0, shift = 2**30, shift + 1
    return m0, shift
'''),
    dict(cell="multiply_by_quantized_multiplier",
         fails=["test_multiply_by_quantized_multiplier"],
         why="single rounding round(x * M) (TFLite's newer option), not the kernels' double rounding",
         source='''def multiply_by_quantized_multiplier(x, quantized_multiplier, shift):
    total = 31 - np.asarray(shift).astype(np.int64)
    prod = np.asarray(x).astype(np.int64) * np.asarray(quantized_multiplier).astype(np.int64)
    return (prod + (np.int64(1) << (total - 1))) >> total
'''),
    dict(cell="multiply_by_quantized_multiplier",
         fails=["test_multiply_by_quantized_multiplier"],
         why="a positive shift is ignored (no left shift before the high multiply)",
         source='''def multiply_by_quantized_multiplier(x, quantized_multiplier, shift):
    right = np.maximum(-np.asarray(shift).astype(np.int64), 0)
    return rounding_divide_by_pot(saturating_rounding_doubling_high_mul(x, quantized_multiplier), right)
'''),
    dict(cell="int_linear",
         fails=["test_int_linear"],
         why="bias added after requantization, at the output scale instead of the accumulator's",
         source='''def int_linear(x, weight, bias, quantized_multiplier, shift, act_bits, zero_point=0):
    acc = np.asarray(x).astype(np.int64) @ np.asarray(weight).astype(np.int64).T
    y = multiply_by_quantized_multiplier(acc, np.asarray(quantized_multiplier)[None], np.asarray(shift)[None])
    return np.clip(zero_point + np.asarray(y) + np.asarray(bias), 0, 2**act_bits - 1)
'''),
    dict(cell="int_linear",
         fails=["test_int_linear"],
         why="accumulates in float32: not exact once sums pass 2**24 (16-bit activations)",
         source='''def int_linear(x, weight, bias, quantized_multiplier, shift, act_bits, zero_point=0):
    acc = np.asarray(x).astype(np.float32) @ np.asarray(weight).astype(np.float32).T
    acc = acc.astype(np.int64) + np.asarray(bias).astype(np.int64)
    y = multiply_by_quantized_multiplier(acc, np.asarray(quantized_multiplier)[None], np.asarray(shift)[None])
    return np.clip(zero_point + np.asarray(y), 0, 2**act_bits - 1)
'''),
    dict(cell="lenet_agreement",
         fails=["test_lenet_agreement"],
         why="accuracies as fractions, not in percent",
         source='''def lenet_agreement(model, dataset, weight_bits=8):
    fake = quantize_weights(model, "symmetric", weight_bits, per_channel=True)
    fake.eval()
    x, labels = dataset[np.arange(len(dataset))]
    with tinyqnn.no_grad():
        fq_pred = fake(tinyqnn.Tensor(x)).data.argmax(axis=1)
    int_pred = predict(convert_lenet(model, weight_bits=weight_bits, per_channel=True, mean=dataset.mean,
                                     std=dataset.std), dataset.images)
    return {"fake_quant": float(np.mean(fq_pred == labels)), "integer": float(np.mean(int_pred == labels)),
            "agreement": float(np.mean(int_pred == fq_pred))}
'''),
    dict(cell="lenet_agreement",
         fails=["test_lenet_agreement"],
         why="weight_bits ignored: both models always use 8-bit weights",
         source='''def lenet_agreement(model, dataset, weight_bits=8):
    fake = quantize_weights(model, "symmetric", 8, per_channel=True)
    fake.eval()
    x, labels = dataset[np.arange(len(dataset))]
    with tinyqnn.no_grad():
        fq_pred = fake(tinyqnn.Tensor(x)).data.argmax(axis=1)
    int_pred = predict(convert_lenet(model, weight_bits=8, per_channel=True, mean=dataset.mean, std=dataset.std),
                       dataset.images)
    return {"fake_quant": 100.0 * float(np.mean(fq_pred == labels)),
            "integer": 100.0 * float(np.mean(int_pred == labels)), "agreement": float(np.mean(int_pred == fq_pred))}
'''),
]

RIGHT_ANSWERS = [
    dict(cell="wrap",
         why="bit mask of the low bits, then the sign bit read back with np.where (no modulo)",
         source='''def wrap(x, bits, signed=True):
    v = np.asarray(x).astype(np.int64) & ((1 << bits) - 1)
    if signed:
        v = np.where(v >= (1 << (bits - 1)), v - (1 << bits), v)
    return v
'''),
    dict(cell="accumulate",
         why="in-place updates and np.where instead of clip, the wrap written inline with a mask, keyword-free",
         source='''def accumulate(products, acc_bits, overflow="wrap"):
    if overflow != "wrap" and overflow != "saturate":
        raise ValueError("unknown overflow mode " + repr(overflow))
    p = np.array(products, dtype=np.int64)
    n, k = p.shape
    lo, hi = -2 ** (acc_bits - 1), 2 ** (acc_bits - 1) - 1
    acc, count = np.zeros(n, dtype=np.int64), np.zeros(n, dtype=np.int64)
    for j in range(k):
        acc += p[:, j]
        over = (acc > hi) | (acc < lo)
        count += over.astype(np.int64)
        if overflow == "saturate":
            acc = np.where(acc > hi, hi, np.where(acc < lo, lo, acc))
        else:
            acc = ((acc - lo) & (2 ** acc_bits - 1)) + lo
    return acc, count
'''),
    dict(cell="saturating_rounding_doubling_high_mul",
         why="gemmlowp's formulation: sign-dependent nudge and division truncating toward zero",
         source='''def saturating_rounding_doubling_high_mul(a, b):
    a, b = np.broadcast_arrays(np.asarray(a, dtype=np.int64), np.asarray(b, dtype=np.int64))
    ab = a * b
    num = ab + np.where(ab >= 0, 1 << 30, 1 - (1 << 30))
    q = (np.abs(num) // (1 << 31)) * np.sign(num)
    return np.where((a == -2**31) & (b == -2**31), 2**31 - 1, q)
'''),
    dict(cell="rounding_divide_by_pot",
         why="float64 division (exact for int32 / 2**e) and round half away from zero with floor",
         source='''def rounding_divide_by_pot(x, exponent):
    q = np.asarray(x, dtype=np.float64) / np.exp2(np.asarray(exponent, dtype=np.float64))
    return (np.sign(q) * np.floor(np.abs(q) + 0.5)).astype(np.int64)
'''),
    dict(cell="quantize_multiplier",
         why="exact fractions and a loop to normalise, no frexp",
         source='''def quantize_multiplier(real_multiplier):
    from fractions import Fraction
    if real_multiplier == 0:
        return (0, 0)
    m, shift = Fraction(real_multiplier), 0
    while m >= 1:
        m, shift = m / 2, shift + 1
    while m < Fraction(1, 2):
        m, shift = m * 2, shift - 1
    scaled = m * 2**31
    m0 = int(scaled)
    if scaled - m0 >= Fraction(1, 2):
        m0 += 1
    if m0 == 2**31:
        m0, shift = 2**30, shift + 1
    return (m0, shift)
'''),
    dict(cell="multiply_by_quantized_multiplier",
         why="np.where for the two shifts, 2**left as a power, helpers called with keyword arguments",
         source='''def multiply_by_quantized_multiplier(x, quantized_multiplier, shift):
    s = np.asarray(shift, dtype=np.int64)
    left = np.where(s > 0, s, 0)
    right = np.where(s < 0, -s, 0)
    high = saturating_rounding_doubling_high_mul(a=np.asarray(x, dtype=np.int64) * 2**left, b=quantized_multiplier)
    return rounding_divide_by_pot(x=high, exponent=right)
'''),
    dict(cell="int_linear",
         why="einsum in int64, reshape instead of [None], keyword arguments, minimum/maximum instead of clip",
         source='''def int_linear(x, weight, bias, quantized_multiplier, shift, act_bits, zero_point=0):
    acc = np.einsum("nk,fk->nf", np.asarray(x, dtype=np.int64), np.asarray(weight, dtype=np.int64))
    acc = acc + np.asarray(bias, dtype=np.int64).reshape(1, -1)
    y = multiply_by_quantized_multiplier(x=acc, quantized_multiplier=np.asarray(quantized_multiplier).reshape(1, -1),
                                         shift=np.asarray(shift).reshape(1, -1))
    return np.minimum(np.maximum(np.asarray(y) + zero_point, 0), 2**act_bits - 1)
'''),
    dict(cell="lenet_agreement",
         why="predictions in batches of 100 with a loop, keyword arguments everywhere, counts instead of means",
         source='''def lenet_agreement(model, dataset, weight_bits=8):
    fake = quantize_weights(model=model, weight_quantizer="symmetric", weight_bits=weight_bits, per_channel=True)
    fake.eval()
    n = len(dataset)
    fq_pred, labels = [], []
    for start in range(0, n, 100):
        xb, yb = dataset[np.arange(start, min(start + 100, n))]
        with tinyqnn.no_grad():
            fq_pred.append(fake(tinyqnn.Tensor(xb)).data.argmax(axis=1))
        labels.append(yb)
    fq_pred, labels = np.concatenate(fq_pred), np.concatenate(labels)
    imodel = convert_lenet(model, weight_bits=weight_bits, per_channel=True, mean=dataset.mean, std=dataset.std)
    int_pred = predict(imodel, dataset.images)
    return dict(fake_quant=100.0 * int((fq_pred == labels).sum()) / n, integer=100.0 * int((int_pred == labels).sum()) / n,
                agreement=int((int_pred == fq_pred).sum()) / n)
'''),
]
