"""Plausible wrong answers for unit 07_qat: each must lose exactly the points of its own task.

RIGHT_ANSWERS: for every task a correct answer in another style than the reference solution; each must get
full marks (the tests check the behaviour the task text states, not the reference's incidental choices).
"""

# ---------------------------------------------------------------------------------------------- shared pieces
_QUANT_RELU_OK = '''class QuantReLU(nn.Module):
    def __init__(self, bits, alpha, surrogate="clipped_relu"):
        super().__init__()
        self.bits, self.alpha, self.surrogate = bits, alpha, surrogate

    def forward(self, x):
        return QuantReLUSTE.apply(x, bits=self.bits, alpha=self.alpha, surrogate=self.surrogate)
'''

_STE_BACKWARD_OK = '''
    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        if ctx.surrogate == "identity":
            return grad
        window = x > 0
        if ctx.surrogate == "clipped_relu":
            window = window & (x <= (2**ctx.bits - 1) * ctx.alpha)
        return grad * window
'''

_PACT_BACKWARD_OK = '''
    @staticmethod
    def backward(ctx, grad):
        x, clip = ctx.saved_tensors
        a = clip.reshape(())
        return grad * ((x >= 0) & (x < a)), np.sum(grad * (x >= a)).reshape(clip.shape)
'''

_PACT_FORWARD_OK = '''class PACTClip(Function):
    @staticmethod
    def forward(ctx, x, clip, bits=2):
        a = clip.reshape(())
        k = 2**bits - 1
        ctx.save_for_backward(x, clip)
        return np.rint(np.clip(x, 0, a) * k / a) * a / k
'''

_DEEP_IMPORTS = '''import math
import tempfile

from tinyqnn.experiments import deep
'''

_PREDICTION_OK = '''

def my_prediction():
    return "clipped_relu", "It vanishes where the quantizer is flat, so it stays correlated with the true gradient."
'''

_DEEP_LOSSES_OK = '''

def deep_ste_losses(depth=20, seed=0):
    cfg = deep.quick_config(depths=(depth,), width=4, train_limit=128, test_limit=32, batch_size=32,
                            pretrain_epochs=1, epochs=2, lr=0.1, seed=seed)
    with tempfile.TemporaryDirectory() as folder:
        cells = deep.run_deep(cfg, folder, progress=False, plots=False, log=lambda line: None,
                              instability=False)["cells"][f"resnet{depth}"]
    return {ste: float(cells[f"2bit_{ste}"]["final_train_loss"]) for ste in ("identity", "relu", "clipped_relu")}
'''

WRONG_ANSWERS = [
    # ---------------------------------------------------------------------------------- 1. QuantReLUSTE
    dict(cell="quant_relu_ste",
         fails=["test_quant_relu_ste"],
         why="clip level of the clipped ReLU written for 2 bits, (2**2 - 1) * alpha, whatever bits is",
         source='''class QuantReLUSTE(Function):
    @staticmethod
    def forward(ctx, x, bits, alpha, surrogate="clipped_relu"):
        if surrogate not in ("identity", "relu", "clipped_relu"):
            raise ValueError(f"unknown surrogate {surrogate!r}")
        ctx.save_for_backward(x)
        ctx.alpha, ctx.surrogate = alpha, surrogate
        return quantize_relu(x, bits, alpha)

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        if ctx.surrogate == "identity":
            return grad
        window = x > 0
        if ctx.surrogate == "clipped_relu":
            window = window & (x <= 3 * ctx.alpha)
        return grad * window
'''),
    dict(cell="quant_relu_ste",
         fails=["test_quant_relu_ste"],
         why="forward rounds to the nearest level instead of the paper's ceiling rule",
         source='''class QuantReLUSTE(Function):
    @staticmethod
    def forward(ctx, x, bits, alpha, surrogate="clipped_relu"):
        if surrogate not in ("identity", "relu", "clipped_relu"):
            raise ValueError(f"unknown surrogate {surrogate!r}")
        ctx.save_for_backward(x)
        ctx.bits, ctx.alpha, ctx.surrogate = bits, alpha, surrogate
        return quantize_relu(x, bits, alpha, "round")
''' + _STE_BACKWARD_OK),
    dict(cell="quant_relu_ste",
         fails=["test_quant_relu_ste"],
         why="an unknown surrogate silently falls back to the clipped ReLU instead of raising",
         source='''class QuantReLUSTE(Function):
    @staticmethod
    def forward(ctx, x, bits, alpha, surrogate="clipped_relu"):
        ctx.save_for_backward(x)
        ctx.bits, ctx.alpha, ctx.surrogate = bits, alpha, surrogate
        return quantize_relu(x, bits, alpha)
''' + _STE_BACKWARD_OK),
    # ---------------------------------------------------------------------------------- 2. qat_lenet5
    dict(cell="qat_lenet5",
         fails=["test_qat_lenet5"],
         why="batch norm with a learned scale and shift (bn_affine left at True): not the paper's scale-free BN",
         source=_QUANT_RELU_OK + '''

def qat_lenet5(bits, surrogate="clipped_relu", alpha=None, pretrained=None):
    alpha = PAPER_ALPHA[bits] if alpha is None else alpha
    model = LeNet5(batch_norm=True, activation=lambda name, n: QuantReLU(bits, alpha, surrogate))
    if pretrained is not None:
        model.load_state_dict(pretrained.state_dict(), strict=False)
    return model
'''),
    dict(cell="qat_lenet5",
         fails=["test_qat_lenet5"],
         why="quantizes the pretrained network in place (set_activation) and returns it: no copy, training "
             "changes the float network",
         source=_QUANT_RELU_OK + '''

def qat_lenet5(bits, surrogate="clipped_relu", alpha=None, pretrained=None):
    alpha = PAPER_ALPHA[bits] if alpha is None else alpha
    factory = lambda name, n: QuantReLU(bits, alpha, surrogate)
    if pretrained is not None:
        pretrained.set_activation(factory)
        return pretrained
    return LeNet5(batch_norm=True, bn_affine=False, activation=factory)
'''),
    dict(cell="qat_lenet5",
         fails=["test_qat_lenet5"],
         why="the surrogate argument is never passed on: every activation uses the default clipped ReLU",
         source=_QUANT_RELU_OK + '''

def qat_lenet5(bits, surrogate="clipped_relu", alpha=None, pretrained=None):
    alpha = PAPER_ALPHA[bits] if alpha is None else alpha
    model = LeNet5(batch_norm=True, bn_affine=False, activation=lambda name, n: QuantReLU(bits, alpha))
    if pretrained is not None:
        model.load_state_dict(pretrained.state_dict())
    return model
'''),
    # ---------------------------------------------------------------------------------- 3. qat_step
    dict(cell="qat_step",
         fails=["test_qat_step"],
         why="clears the gradients after the step instead of before the backward pass (stale gradients leak in)",
         source='''def qat_step(model, optimizer, x, y):
    model.train()
    loss = F.cross_entropy(model(x), y)
    value = loss.item()
    if not np.isfinite(value):
        raise FloatingPointError(f"loss is {value}")
    loss.backward()
    optimizer.step()
    optimizer.zero_grad()
    return value
'''),
    dict(cell="qat_step",
         fails=["test_qat_step"],
         why="never sets training mode: a model left in eval mode trains with BN running statistics",
         source='''def qat_step(model, optimizer, x, y):
    optimizer.zero_grad()
    loss = F.cross_entropy(model(x), y)
    value = loss.item()
    if not np.isfinite(value):
        raise FloatingPointError(f"loss is {value}")
    loss.backward()
    optimizer.step()
    return value
'''),
    dict(cell="qat_step",
         fails=["test_qat_step"],
         why="checks only for NaN: an infinite loss passes and the weights are updated",
         source='''def qat_step(model, optimizer, x, y):
    model.train()
    optimizer.zero_grad()
    loss = F.cross_entropy(model(x), y)
    value = loss.item()
    if np.isnan(value):
        raise FloatingPointError(f"loss is {value}")
    loss.backward()
    optimizer.step()
    return value
'''),
    # ---------------------------------------------------------------------------------- 4. evaluate_accuracy
    dict(cell="evaluate_accuracy",
         fails=["test_evaluate_accuracy"],
         why="averages the per-batch accuracies: wrong when the last batch is smaller",
         source='''def evaluate_accuracy(model, dataset, batch_size=500):
    was_training = model.training
    model.eval()
    accs = []
    with tinyqnn.no_grad():
        for x, y in DataLoader(dataset, batch_size=batch_size):
            accs.append(np.mean(model(x).data.argmax(axis=1) == y.data))
    model.train(was_training)
    return float(np.mean(accs))
'''),
    dict(cell="evaluate_accuracy",
         fails=["test_evaluate_accuracy"],
         why="evaluates in training mode: batch norm uses the test batch's statistics",
         source='''def evaluate_accuracy(model, dataset, batch_size=500):
    correct = 0
    with tinyqnn.no_grad():
        for x, y in DataLoader(dataset, batch_size=batch_size):
            correct += int(np.sum(model(x).data.argmax(axis=1) == y.data))
    return correct / len(dataset)
'''),
    dict(cell="evaluate_accuracy",
         fails=["test_evaluate_accuracy"],
         why="always switches back to training mode, also when the model was in eval mode",
         source='''def evaluate_accuracy(model, dataset, batch_size=500):
    model.eval()
    correct = 0
    with tinyqnn.no_grad():
        for x, y in DataLoader(dataset, batch_size=batch_size):
            correct += int(np.sum(model(x).data.argmax(axis=1) == y.data))
    model.train()
    return correct / len(dataset)
'''),
    # ---------------------------------------------------------------------------------- 5. PACTClip
    dict(cell="pact_clip",
         fails=["test_pact_clip"],
         why="dL/da averages over the elements instead of summing",
         source=_PACT_FORWARD_OK + '''
    @staticmethod
    def backward(ctx, grad):
        x, clip = ctx.saved_tensors
        a = clip.reshape(())
        return grad * ((x >= 0) & (x < a)), np.mean(grad * (x >= a)).reshape(clip.shape)
'''),
    dict(cell="pact_clip",
         fails=["test_pact_clip"],
         why="x == a sends its gradient to x instead of a (x <= a and x > a)",
         source=_PACT_FORWARD_OK + '''
    @staticmethod
    def backward(ctx, grad):
        x, clip = ctx.saved_tensors
        a = clip.reshape(())
        return grad * ((x >= 0) & (x <= a)), np.sum(grad * (x > a)).reshape(clip.shape)
'''),
    dict(cell="pact_clip",
         fails=["test_pact_clip"],
         why="rounds halves up (floor(v + 0.5)) instead of np.rint's half to even",
         source='''class PACTClip(Function):
    @staticmethod
    def forward(ctx, x, clip, bits=2):
        a = clip.reshape(())
        k = 2**bits - 1
        ctx.save_for_backward(x, clip)
        return np.floor(np.clip(x, 0, a) * k / a + 0.5) * a / k
''' + _PACT_BACKWARD_OK),
    # ---------------------------------------------------------------------------------- 6. table1_markdown
    dict(cell="table1_markdown",
         fails=["test_table1_markdown"],
         why="a hyphen '-' for missing numbers instead of the em dash the text asks for",
         source='''def table1_markdown(ours, full, paper, bits=(1, 2, 4), stes=("identity", "relu", "clipped_relu")):
    def fmt(table, key):
        return f"{table[key]:.2f}" if key in table else "-"

    lines = ["| bits | " + " | ".join(stes) + " |", "|" + "---|" * (len(stes) + 1)]
    for b in bits:
        lines.append(f"| {b} | " + " | ".join(" / ".join(fmt(t, (b, s)) for t in (ours, full, paper)) for s in stes) + " |")
    return "\\n".join(lines)
'''),
    dict(cell="table1_markdown",
         fails=["test_table1_markdown"],
         why="sorts the bit widths instead of keeping the order given in bits",
         source='''def table1_markdown(ours, full, paper, bits=(1, 2, 4), stes=("identity", "relu", "clipped_relu")):
    def fmt(table, key):
        return f"{table[key]:.2f}" if key in table else "—"

    lines = ["| bits | " + " | ".join(stes) + " |", "|" + "---|" * (len(stes) + 1)]
    for b in sorted(bits):
        lines.append(f"| {b} | " + " | ".join(" / ".join(fmt(t, (b, s)) for t in (ours, full, paper)) for s in stes) + " |")
    return "\\n".join(lines)
'''),
    # ---------------------------------------------------------------------------------- 7. deep_ste_check
    dict(cell="deep_ste_check",
         fails=["test_deep_ste_check"],
         why="predicts the identity STE, whose run diverges on ResNet-20 (the check does not confirm it)",
         source=_DEEP_IMPORTS + '''

def my_prediction():
    return "identity", "It passes every gradient through unchanged, so its correlation with the true gradient is best."
''' + _DEEP_LOSSES_OK),
    dict(cell="deep_ste_check",
         fails=["test_deep_ste_check"],
         why="a reason that never ties the prediction to the coarse gradient's correlation with the true gradient",
         source=_DEEP_IMPORTS + '''

def my_prediction():
    return "clipped_relu", "Clipping keeps the activations small, so deep nets are easier to train."
''' + _DEEP_LOSSES_OK),
    dict(cell="deep_ste_check",
         fails=["test_deep_ste_check"],
         why="runs the paper's learning rate 0.01 instead of the stated 0.1: not the losses of the stated configuration",
         source=_DEEP_IMPORTS + _PREDICTION_OK + _DEEP_LOSSES_OK.replace("lr=0.1", "lr=0.01")),
    dict(cell="deep_ste_check",
         fails=["test_deep_ste_check"],
         why="always runs ResNet-20 with seed 0: the depth and seed arguments are ignored",
         source=_DEEP_IMPORTS + _PREDICTION_OK + '''

def deep_ste_losses(depth=20, seed=0):
    cfg = deep.quick_config(depths=(20,), width=4, train_limit=128, test_limit=32, batch_size=32,
                            pretrain_epochs=1, epochs=2, lr=0.1, seed=0)
    with tempfile.TemporaryDirectory() as folder:
        cells = deep.run_deep(cfg, folder, progress=False, plots=False, log=lambda line: None,
                              instability=False)["cells"]["resnet20"]
    return {ste: float(cells[f"2bit_{ste}"]["final_train_loss"]) for ste in ("identity", "relu", "clipped_relu")}
'''),
]

RIGHT_ANSWERS = [
    dict(cell="quant_relu_ste",
         why="own ceiling rule with np.where instead of quantize_relu; a table of derivative functions",
         source='''_MU_PRIME = {
    "identity": lambda x, top: np.ones_like(x),
    "relu": lambda x, top: (x > 0).astype(x.dtype),
    "clipped_relu": lambda x, top: ((x > 0) & (x <= top)).astype(x.dtype),
}


class QuantReLUSTE(Function):
    @staticmethod
    def forward(ctx, x, bits, alpha, surrogate="clipped_relu"):
        if surrogate not in _MU_PRIME:
            raise ValueError("surrogate must be one of %s, not %r" % (sorted(_MU_PRIME), surrogate))
        levels = 2**bits - 1
        ctx.x, ctx.top, ctx.mu_prime = x, levels * alpha, _MU_PRIME[surrogate]
        k = np.minimum(np.ceil(x / alpha), levels)
        return np.where(x > 0, k * alpha, 0).astype(x.dtype)

    @staticmethod
    def backward(ctx, grad):
        return grad * ctx.mu_prime(ctx.x, ctx.top)
'''),
    dict(cell="qat_lenet5",
         why="keyword arguments kept in a dict; set_activation on a fresh network; state copied key by key",
         source='''class QuantReLU(nn.Module):
    def __init__(self, bits, alpha, surrogate="clipped_relu"):
        super().__init__()
        self.kwargs = {"bits": bits, "alpha": alpha, "surrogate": surrogate}

    def forward(self, x):
        return QuantReLUSTE.apply(x, **self.kwargs)


def qat_lenet5(bits, surrogate="clipped_relu", alpha=None, pretrained=None):
    if alpha is None:
        alpha = PAPER_ALPHA[bits]
    net = LeNet5(num_classes=10, batch_norm=True, bn_affine=False)
    net.set_activation(lambda name, num_features: QuantReLU(bits=bits, alpha=alpha, surrogate=surrogate))
    if pretrained:
        net.load_state_dict({key: np.array(value, copy=True) for key, value in pretrained.state_dict().items()})
    return net
'''),
    dict(cell="qat_step",
         why="gradients cleared by setting p.grad = None; math.isfinite; float(loss.data)",
         source='''import math


def qat_step(model, optimizer, x, y):
    model.train(True)
    for p in model.parameters():
        p.grad = None
    logits = model(x)
    loss = F.cross_entropy(logits, y, reduction="mean")
    value = float(loss.data)
    if not math.isfinite(value):
        raise FloatingPointError("non-finite loss: %r" % value)
    loss.backward()
    optimizer.step()
    return value
'''),
    dict(cell="evaluate_accuracy",
         why="collects all predictions and labels, then one comparison; no no_grad, no try/finally",
         source='''def evaluate_accuracy(model, dataset, batch_size=500):
    mode = model.training
    model.eval()
    preds, labels = [], []
    for x, y in DataLoader(dataset, batch_size):
        preds.append(np.argmax(model(x).data, axis=-1))
        labels.append(y.data)
    model.train(mode)
    return float(np.mean(np.concatenate(preds) == np.concatenate(labels)))
'''),
    dict(cell="pact_clip",
         why="step a / k with np.minimum/np.maximum; masks kept on ctx; dL/da with np.where and np.full",
         source='''class PACTClip(Function):
    @staticmethod
    def forward(ctx, x, clip, bits=2):
        a = clip.reshape(())
        step = a / (2**bits - 1)
        ctx.inside = (x >= 0) & (x < a)
        ctx.above = x >= a
        ctx.clip_shape = clip.shape
        return np.rint(np.minimum(np.maximum(x, 0), a) / step) * step

    @staticmethod
    def backward(ctx, grad):
        dclip = np.full(ctx.clip_shape, np.where(ctx.above, grad, 0).sum(), dtype=grad.dtype)
        return np.where(ctx.inside, grad, 0), dclip
'''),
    dict(cell="table1_markdown",
         why="no spaces around the bars; str.format; dict.get with None for missing entries",
         source='''def table1_markdown(ours, full, paper, bits=(1, 2, 4), stes=("identity", "relu", "clipped_relu")):
    def entry(b, s):
        values = [table.get((b, s)) for table in (ours, full, paper)]
        return " / ".join("—" if v is None else "{:.2f}".format(v) for v in values)

    rows = ["|bits|" + "|".join(stes) + "|", "|" + "|".join(["---"] * (1 + len(stes))) + "|"]
    rows += ["|%d|" % b + "|".join(entry(b, s) for s in stes) + "|" for b in bits]
    return "\\n".join(rows)
'''),
    dict(cell="deep_ste_check",
         why="predicts the ReLU STE (it also still trains); builds DeepConfig with dataclasses.replace and reads the "
             "losses from the deep.csv the sweep writes (4 significant digits, inside the tolerance)",
         source='''import csv
import dataclasses
import tempfile
from pathlib import Path

from tinyqnn.experiments import deep


def my_prediction():
    return ("relu", "Its surrogate derivative is zero wherever the ReLU is, so its coarse gradient keeps a positive "
                    "correlation with the true gradient.")


def deep_ste_losses(depth=20, seed=0):
    cfg = dataclasses.replace(deep.quick_config(), depths=(depth,), width=4, train_limit=128, test_limit=32,
                              batch_size=32, pretrain_epochs=1, epochs=2, lr=0.1, seed=seed)
    with tempfile.TemporaryDirectory() as folder:
        deep.run_deep(cfg, folder, progress=False, plots=False, log=lambda line: None, instability=False)
        with open(Path(folder) / "deep.csv") as f:
            rows = list(csv.DictReader(f))
    return {row["ste"]: float(row["final_train_loss"]) for row in rows if row["bits"] == "2"}
'''),
]
