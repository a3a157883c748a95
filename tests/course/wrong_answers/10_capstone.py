"""Plausible wrong answers for unit 10_capstone: each must lose exactly the points of its own task.

RIGHT_ANSWERS: for every task a correct answer in another style than the reference solution; each must get
full marks (the tests check the behaviour the task text states, not the reference's incidental choices).
The written comparison (task 7) is graded by hand; autograde leaves it at 0 for every student.
"""

_STE_FORWARD_OK = '''class CapstoneSTE(STE):
    name = "capstone"

    @staticmethod
    def forward(ctx, x, bits, alpha, quantizer="ceil"):
        ctx.save_for_backward(x)
        ctx.bits, ctx.alpha = bits, alpha
        return quantize_relu(x, bits, alpha, quantizer)
'''

_FINE_TUNE_HEAD = '''def fine_tune(model, train_set, steps, lr=0.02, momentum=0.9, batch_size=64, seed=0):
    optimizer = optim.SGD(model.parameters(), lr=lr, momentum=momentum)
    losses = []
'''

_FINE_TUNE_STEP = '''            model.train()
            optimizer.zero_grad()
            loss = F.cross_entropy(model(x), y)
            value = loss.item()
            if not np.isfinite(value):
                raise FloatingPointError(f"loss is {value}")
            loss.backward()
            optimizer.step()
            losses.append(value)
            if len(losses) == steps:
                break
'''

WRONG_ANSWERS = [
    # ---------------------------------------------------------------------------------- 1. CapstoneSTE
    dict(cell="capstone_ste",
         fails=["test_capstone_ste"],
         why="clip level 2**bits * alpha (the number of levels times alpha) instead of (2**bits - 1) * alpha",
         source=_STE_FORWARD_OK + '''
    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return grad * ((x > 0) & (x <= 2**ctx.bits * ctx.alpha))
'''),
    dict(cell="capstone_ste",
         fails=["test_capstone_ste"],
         why="window [0, clip]: x = 0 passes its gradient (x >= 0 instead of x > 0)",
         source=_STE_FORWARD_OK + '''
    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return grad * ((x >= 0) & (x <= (2**ctx.bits - 1) * ctx.alpha))
'''),
    # ---------------------------------------------------------------------------------- 2. quantize_lenet
    dict(cell="quantize_lenet",
         fails=["test_quantize_lenet"],
         why="alpha dropped: QuantAct(bits, ste=ste) always takes the paper's step",
         source='''def quantize_lenet(float_model, bits, ste, alpha=None):
    model = LeNet5(batch_norm=True, bn_affine=False, activation=lambda name, n: QuantAct(bits, ste=ste))
    model.load_state_dict(float_model.state_dict())
    model.train(float_model.training)
    return model
'''),
    dict(cell="quantize_lenet",
         fails=["test_quantize_lenet"],
         why="copies only the parameters: the batch-norm running statistics stay at their initial values",
         source='''def quantize_lenet(float_model, bits, ste, alpha=None):
    model = LeNet5(batch_norm=True, bn_affine=False, activation=lambda name, n: QuantAct(bits, alpha, ste=ste))
    for (_, p), (_, q) in zip(model.named_parameters(), float_model.named_parameters()):
        p.data[...] = q.data
    model.train(float_model.training)
    return model
'''),
    # ---------------------------------------------------------------------------------- 3. fine_tune
    dict(cell="fine_tune",
         fails=["test_fine_tune"],
         why="a new DataLoader with the same seed for every pass: each pass repeats the first pass's order",
         source=_FINE_TUNE_HEAD + '''    while len(losses) < steps:
        for x, y in DataLoader(train_set, batch_size=batch_size, shuffle=True, seed=seed):
''' + _FINE_TUNE_STEP + '''    return losses
'''),
    dict(cell="fine_tune",
         fails=["test_fine_tune"],
         why="gradients never cleared: each step adds to the gradients of all earlier steps",
         source=_FINE_TUNE_HEAD + '''    loader = DataLoader(train_set, batch_size=batch_size, shuffle=True, seed=seed)
    while len(losses) < steps:
        for x, y in loader:
''' + _FINE_TUNE_STEP.replace("            optimizer.zero_grad()\n", "") + '''    return losses
'''),
    # ---------------------------------------------------------------------------------- 4. integer_agreement
    dict(cell="integer_agreement",
         fails=["test_integer_agreement"],
         why="compares the integer predictions with the model's own (float-weight) predictions, not the fake-quantized ones",
         source='''def integer_agreement(model, dataset, weight_bits=8, per_channel=True, acc_bits=32, overflow="wrap",
                      batch_size=500):
    imodel = convert_lenet(model, weight_bits=weight_bits, per_channel=per_channel, method="requant",
                           mean=dataset.mean, std=dataset.std)
    int_pred = predict(imodel, dataset.images, acc_bits=acc_bits, overflow=overflow)
    was_training = model.training
    model.eval()
    preds = []
    with tinyqnn.no_grad():
        for x, _ in DataLoader(dataset, batch_size=batch_size):
            preds.append(model(x).data.argmax(axis=1))
    model.train(was_training)
    return float(np.mean(np.concatenate(preds) == int_pred))
'''),
    dict(cell="integer_agreement",
         fails=["test_integer_agreement"],
         why="acc_bits and overflow not passed on: the integer model always runs with a 32-bit wrapping accumulator",
         source='''def integer_agreement(model, dataset, weight_bits=8, per_channel=True, acc_bits=32, overflow="wrap",
                      batch_size=500):
    imodel = convert_lenet(model, weight_bits=weight_bits, per_channel=per_channel, method="requant",
                           mean=dataset.mean, std=dataset.std)
    int_pred = predict(imodel, dataset.images)
    fq = quantize_weights(model, "symmetric", weight_bits, per_channel)
    fq.eval()
    preds = []
    with tinyqnn.no_grad():
        for x, _ in DataLoader(dataset, batch_size=batch_size):
            preds.append(fq(x).data.argmax(axis=1))
    return float(np.mean(np.concatenate(preds) == int_pred))
'''),
    # ---------------------------------------------------------------------------------- 5. memory_bits
    dict(cell="memory_bits",
         fails=["test_memory_bits"],
         why="counts 32 bits per entry of layer.bias instead of per output channel (conv1's folded bias is (6, 28, 28))",
         source='''def memory_bits(imodel):
    result = {}
    for layer in imodel.layers:
        n, f = layer.weight.size, layer.weight.shape[0]
        result[layer.name] = (n * layer.weight_bits + 32 * layer.bias.size, 32 * (n + f))
    return result
'''),
    dict(cell="memory_bits",
         fails=["test_memory_bits"],
         why="float32 count forgets the biases",
         source='''def memory_bits(imodel):
    result = {}
    for layer in imodel.layers:
        n, f = layer.weight.size, layer.weight.shape[0]
        result[layer.name] = (n * layer.weight_bits + 32 * f, 32 * n)
    return result
'''),
    # ---------------------------------------------------------------------------------- 6. mac_energy_pj
    dict(cell="mac_energy_pj",
         fails=["test_mac_energy_pj"],
         why="an 8-bit add for small operands: the accumulator is 32 bits wide, so the add is int32_add",
         source='''def mac_energy_pj(macs, weight_bits, in_bits, energy=ENERGY_PJ):
    small = weight_bits <= 8 and in_bits <= 8
    mult = energy["int8_mult"][0] if small else energy["int32_mult"][0]
    add = energy["int8_add"][0] if small else energy["int32_add"][0]
    return macs * (mult + add), macs * (energy["fp32_mult"][0] + energy["fp32_add"][0])
'''),
    dict(cell="mac_energy_pj",
         fails=["test_mac_energy_pj"],
         why="8-bit multiplier when EITHER operand fits in 8 bits (or instead of and)",
         source='''def mac_energy_pj(macs, weight_bits, in_bits, energy=ENERGY_PJ):
    mult = energy["int8_mult"][0] if weight_bits <= 8 or in_bits <= 8 else energy["int32_mult"][0]
    return macs * (mult + energy["int32_add"][0]), macs * (energy["fp32_mult"][0] + energy["fp32_add"][0])
'''),
]

RIGHT_ANSWERS = [
    dict(cell="capstone_ste",
         why="own ceiling/rounding levels with np.ceil/np.rint instead of quantize_relu; the mask is computed in "
             "forward and kept on ctx; np.logical_and and np.where",
         source='''class CapstoneSTE(STE):
    name = "capstone"

    @staticmethod
    def forward(ctx, x, bits, alpha, quantizer="ceil"):
        top = 2**bits - 1
        steps = np.ceil(x / alpha) if quantizer == "ceil" else np.rint(x / alpha)
        ctx.mask = np.logical_and(x > 0, x <= top * alpha)
        y = np.where(x > 0, np.minimum(np.maximum(steps, 0), top) * alpha, 0)
        return y.astype(x.dtype)

    @staticmethod
    def backward(ctx, grad):
        return np.where(ctx.mask, grad, 0).astype(grad.dtype)
'''),
    dict(cell="quantize_lenet",
         why="a named factory with keyword arguments; state copied key by key; mode set with an if",
         source='''def quantize_lenet(float_model, bits, ste, alpha=None):
    def factory(name, num_features):
        return QuantAct(bits=bits, alpha=alpha, ste=ste)

    model = LeNet5(batch_norm=True, bn_affine=False, activation=factory)
    state = {key: np.array(value, copy=True) for key, value in float_model.state_dict().items()}
    model.load_state_dict(state)
    if float_model.training:
        model.train()
    else:
        model.eval()
    return model
'''),
    dict(cell="fine_tune",
         why="an explicit iterator with next() and StopIteration instead of nested for loops; a step counter",
         source='''def fine_tune(model, train_set, steps, lr=0.02, momentum=0.9, batch_size=64, seed=0):
    opt = optim.SGD(model.parameters(), lr=lr, momentum=momentum)
    loader = DataLoader(train_set, batch_size=batch_size, shuffle=True, seed=seed)
    batches = iter(loader)
    losses = []
    for _ in range(steps):
        try:
            x, y = next(batches)
        except StopIteration:
            batches = iter(loader)
            x, y = next(batches)
        model.train()
        opt.zero_grad()
        loss = F.cross_entropy(model(x), y)
        if not np.isfinite(loss.data).all():
            raise FloatingPointError(f"non-finite loss {float(loss.data)}")
        loss.backward()
        opt.step()
        losses.append(float(loss.data))
    return losses
'''),
    dict(cell="integer_agreement",
         why="integer_forward's logits instead of predict; fake-quantized logits per batch with explicit index "
             "ranges; np.count_nonzero",
         source='''from tinyqnn.fixedpoint import integer_forward

def integer_agreement(model, dataset, weight_bits=8, per_channel=True, acc_bits=32, overflow="wrap",
                      batch_size=500):
    fq = quantize_weights(model, weight_quantizer="symmetric", weight_bits=weight_bits, per_channel=per_channel)
    fq.eval()
    n = len(dataset)
    fq_pred = np.empty(n, dtype=np.int64)
    with tinyqnn.no_grad():
        for start in range(0, n, batch_size):
            idx = np.arange(start, min(start + batch_size, n))
            x, _ = dataset[idx]
            fq_pred[idx] = fq(Tensor(x)).data.argmax(axis=1)
    imodel = convert_lenet(model, weight_bits, per_channel, "requant", dataset.mean, dataset.std)
    logits, _ = integer_forward(imodel, dataset.images, acc_bits=acc_bits, overflow=overflow)
    return np.count_nonzero(logits.argmax(axis=1) == fq_pred) / n
'''),
    dict(cell="memory_bits",
         why="a dict comprehension with np.prod of the shape and len(weight) for the channel count",
         source='''def memory_bits(imodel):
    return {layer.name: (int(np.prod(layer.weight.shape)) * layer.weight_bits + 32 * len(layer.weight),
                         32 * (int(np.prod(layer.weight.shape)) + len(layer.weight)))
            for layer in imodel.layers}
'''),
    dict(cell="mac_energy_pj",
         why="max of the two widths decides the multiplier; energies multiplied out term by term",
         source='''def mac_energy_pj(macs, weight_bits, in_bits, energy=ENERGY_PJ):
    value = lambda name: energy[name][0]
    multiply = value("int32_mult") if max(weight_bits, in_bits) > 8 else value("int8_mult")
    integer = macs * multiply + macs * value("int32_add")
    floating = macs * value("fp32_mult") + macs * value("fp32_add")
    return integer, floating
'''),
]
