"""Real units graded with grader-side verdicts (tinyqnn.course.verdict.run_graded, what ``grade`` and ``check``
run per submission): the same scores as nbgrader's plan on honest work (the solution, each file's wrong and
right answers), and nothing for dishonest answers that fool an in-kernel test.

Wrong (and right) answers are graded several at a time: round k holds the k-th answer of every cell, each in
its own cell; grading independence makes the round lose exactly the union of its answers' ``fails``.
"""
from __future__ import annotations

import copy
import re

import pytest

from coursekit import WRONG_DIR
from tinyqnn.course import grading, sandbox, verdict
from tinyqnn.course.sandbox import Limits, protections

pytestmark = pytest.mark.slow

LIMITS = Limits(cell_seconds=120, notebook_seconds=900)
REPO = grading.repo_root()

#: per unit: answers that pass the unit's tests when they run in the learner's kernel (nbgrader), and the
#: tasks each must lose under grader-side verdicts
LIAR = '''class _Liar(float):
    """Equal to anything, close to anything."""
    def __eq__(self, other):
        return True
    __ne__ = lambda self, other: False
    __hash__ = float.__hash__
'''
DISHONEST = {
    "01_chain_rule": {
        # a node whose numbers say "equal" to whatever they are compared with
        "add": (LIAR + "def add(a, b):\n    a, b = as_value(a), as_value(b)\n"
                "    c = Value(0.0, parents=(a, b), local_grads=(1.0, 1.0), op='+')\n"
                "    c.data = _Liar(0.0)\n    return c\n", ["test_add"]),
        # the tests' comparisons patched in the kernel
        "composite_derivative": ("import builtins, math\nbuiltins.abs = lambda x: 0.0\n"
                                 "import numpy as np\nnp.allclose = lambda *a, **k: True\n"
                                 "def composite_derivative(x):\n    return np.zeros_like(np.asarray(x, dtype=float))\n",
                                 ["test_composite_derivative"]),
    },
    "02_tensors": {
        # the test's gradient check and comparison replaced in the kernel, a backward that ignores softmax
        "logsumexp": ("np.allclose = lambda *a, **k: True\ngradcheck = lambda *a, **k: True\n"
                      "class LogSumExp(tinyqnn.Function):\n    @staticmethod\n    def forward(ctx, x, axis=-1):\n"
                      "        m = x.max(axis=axis, keepdims=True)\n        ctx.axis, ctx.shape = axis, x.shape\n"
                      "        return np.squeeze(m + np.log(np.exp(x - m).sum(axis=axis, keepdims=True)), axis=axis)\n"
                      "    @staticmethod\n    def backward(ctx, grad):\n"
                      "        return np.broadcast_to(np.expand_dims(grad, ctx.axis), ctx.shape).copy()\n",
                      ["test_logsumexp"]),
        # tinyqnn's own unbroadcast (internal_only), called from code compiled under the name of tinyqnn's file
        "unbroadcast": ("import os\n_spoof = os.path.join(os.path.dirname(tinyqnn.__file__), 'engine', 'ops', '_util.py')\n"
                        "_ns = {}\nexec(compile('from tinyqnn.engine.ops._util import unbroadcast as _tq\\n'\n"
                        "             'def unbroadcast(grad, shape):\\n    return _tq(grad, shape)\\n', _spoof, 'exec'), _ns)\n"
                        "unbroadcast = _ns['unbroadcast']\n", ["test_unbroadcast"]),
        # tinyqnn's own operations (unavailable while grading) through its autograd
        "matmul_backward": ("def matmul_backward(grad, a, b):\n"
                            "    ta, tb = tinyqnn.tensor(a, requires_grad=True), tinyqnn.tensor(b, requires_grad=True)\n"
                            "    (ta @ tb).backward(grad)\n    return ta.grad.numpy(), tb.grad.numpy()\n",
                            ["test_matmul_backward"]),
        "softmax_cross_entropy": ("import tinyqnn.nn.functional as F\n"
                                  "def softmax_cross_entropy(logits, labels):\n"
                                  "    t = tinyqnn.tensor(logits, requires_grad=True)\n"
                                  "    loss = F.cross_entropy(t, labels)\n    loss.backward()\n"
                                  "    return loss.item(), t.grad.numpy()\n", ["test_softmax_cross_entropy"]),
        # the comparison patched, an answer that does nothing
        "mean_backward": ("np.allclose = lambda *a, **k: True\n"
                          "def mean_backward(grad, shape, axis=None, keepdims=False):\n"
                          "    return np.zeros(shape, dtype=np.asarray(grad).dtype)\n", ["test_mean_backward"]),
    },
    "03_layers": {
        # tinyqnn's own linear layer function and its matrix product (unavailable while grading)
        "linear_forward": ("import tinyqnn\nimport tinyqnn.nn.functional as F\n"
                           "def linear_forward(x, w, b):\n"
                           "    return F.linear(tinyqnn.tensor(x), tinyqnn.tensor(w), None if b is None else tinyqnn.tensor(b)).numpy()\n",
                           ["test_linear_forward"]),
    },
    "04_conv_lenet": {
        # the column blocks behind tinyqnn's convolution (internal_only: its Conv2d needs them)
        "im2col": ("from tinyqnn.nn.ops.conv import column_blocks as _cb, pad_hw as _pad\n"
                   "def im2col(x, kh, kw, stride=1, padding=0):\n"
                   "    n, c, h, w = x.shape\n"
                   "    oh, ow = (h + 2 * padding - kh) // stride + 1, (w + 2 * padding - kw) // stride + 1\n"
                   "    blocks = _cb(_pad(x, padding, padding), (kh, kw), (stride, stride), (oh, ow))\n"
                   "    cols = np.concatenate([b.copy() for _, _, b in blocks])\n"
                   "    return cols.transpose(0, 2, 1).reshape(n * oh * ow, -1)\n", ["test_im2col"]),
        # tinyqnn's own convolution (internal_only: its Conv2d layer needs it)
        "conv2d_forward": ("import tinyqnn.nn.functional as F\n"
                           "def conv2d_forward(x, w, b, stride=1, padding=0):\n"
                           "    t = lambda a: None if a is None else tinyqnn.Tensor(np.asarray(a))\n"
                           "    return F.conv2d(t(x), t(w), t(b), stride=stride, padding=padding).numpy()\n",
                           ["test_conv2d_forward"]),
        # the guard of internal_only functions switched off in memory, as an earlier guard could be (it called
        # tinyqnn.course.callers.from_tinyqnn), then tinyqnn's own convolution gradients
        "conv2d_backward": ("import tinyqnn.course.callers as _callers\n"
                            "_callers.from_tinyqnn = lambda *a, **k: True\n"
                            "from tinyqnn.nn.ops.conv import input_grad as _ig, weight_grad as _wg, pad_hw as _pad\n"
                            "def col2im(cols, x_shape, kh, kw, stride=1, padding=0):\n    return np.zeros(x_shape)\n"
                            "def conv2d_backward(dout, x, w, stride=1, padding=0):\n"
                            "    s, p = (stride, stride), (padding, padding)\n"
                            "    dx = _ig(dout, w, x.shape, s, p)\n"
                            "    dw = _wg(_pad(x, padding, padding), dout, w.shape, s)\n"
                            "    return dx, dw, dout.sum(axis=(0, 2, 3))\n", ["test_conv2d_backward"]),
        # the comparison patched, windows' corners instead of their maxima
        "maxpool_forward": ("np.allclose = lambda *a, **k: True\n"
                            "def maxpool_forward(x, kernel_size=2, stride=None):\n"
                            "    s = kernel_size if stride is None else stride\n"
                            "    oh, ow = (x.shape[2] - kernel_size) // s + 1, (x.shape[3] - kernel_size) // s + 1\n"
                            "    return x[:, :, :oh * s:s, :ow * s:s].copy()\n", ["test_maxpool_forward"]),
    },
    "06_ste": {
        # tinyqnn's own STE class and Lemma 2 (unavailable / internal_only while grading)
        "identity_ste": ("from tinyqnn.quant import IdentitySTE\n", ["test_identity_ste"]),
        "true_grad_w": ("from tinyqnn import theory as _th\n"
                        "def true_grad_w(v, w, v_star, w_star):\n    return _th.true_gradient(v, w, v_star, w_star)[1]\n",
                        ["test_true_grad_w"]),
        "expected_coarse_gradient": ("from tinyqnn import theory as _th\n"
                                     "def expected_coarse_gradient(v, w, v_star, w_star, ste):\n"
                                     "    return _th.expected_coarse_gradient(v, w, v_star, w_star, ste)[1]\n",
                                     ["test_expected_coarse_gradient"]),
    },
    "05_quantization": {
        # tinyqnn's own version of the task (hidden while grading)
        "lloyd_alpha": ("from tinyqnn.quant import lloyd_alpha as _tq\n"
                        "def lloyd_alpha(samples, bits, alpha0, max_iter=100, tol=1e-12):\n"
                        "    x = np.asarray(samples, dtype=np.float64).reshape(-1)\n"
                        "    return float(_tq(bits, data=x, alpha0=alpha0, iters=max_iter, tol=tol))\n",
                        ["test_lloyd_alpha"]),
        # the comparison patched, an answer that does nothing
        "quantize_relu_ceil": ("np.allclose = lambda *a, **k: True\n"
                               "def quantize_relu_ceil(x, bits, alpha):\n    return np.zeros_like(x)\n",
                               ["test_quantize_relu_ceil"]),
    },
    "07_qat": {
        # the comparisons patched, an STE whose backward ignores the surrogate's window
        "quant_relu_ste": ("np.allclose = lambda *a, **k: True\nnp.array_equal = lambda *a, **k: True\n"
                           "class QuantReLUSTE(Function):\n"
                           "    @staticmethod\n"
                           "    def forward(ctx, x, bits, alpha, surrogate='clipped_relu'):\n"
                           "        if surrogate not in ('identity', 'relu', 'clipped_relu'):\n"
                           "            raise ValueError(surrogate)\n"
                           "        return quantize_relu(x, bits, alpha)\n"
                           "    @staticmethod\n"
                           "    def backward(ctx, grad):\n        return grad\n", ["test_quant_relu_ste"]),
        # tinyqnn's own training step and evaluation loop (internal_only while grading)
        "qat_step": ("from tinyqnn.train import train_one_epoch as _epoch\n"
                     "def qat_step(model, optimizer, x, y):\n"
                     "    return float(_epoch(model, [(x, y)], optimizer, progress=False)['loss'])\n", ["test_qat_step"]),
        # builtins patched, an accuracy that is always one half
        "evaluate_accuracy": ("import builtins\nbuiltins.abs = lambda x: 0.0\n"
                              "def evaluate_accuracy(model, dataset, batch_size=500):\n    return 0.5\n",
                              ["test_evaluate_accuracy"]),
        # tinyqnn's own PACT (unavailable while grading)
        "pact_clip": ("from tinyqnn.quant import PACTSTE\nclass PACTClip(PACTSTE):\n    pass\n", ["test_pact_clip"]),
        # the oracle patched: tinyqnn's depth sweep returns made-up losses at once, for the learner and the test
        "deep_ste_check": ("from tinyqnn.experiments import deep\n"
                           "def _made_up(cfg, folder, **kwargs):\n"
                           "    return {'cells': {f'resnet{d}': {f'2bit_{s}': {'final_train_loss': 0.5}\n"
                           "                                     for s in ('identity', 'relu', 'clipped_relu')} for d in cfg.depths}}\n"
                           "deep.run_deep = _made_up\n"
                           "def my_prediction():\n"
                           "    return 'identity', 'the coarse gradient stays correlated with the true gradient at any depth'\n"
                           "def deep_ste_losses(depth=20, seed=0):\n"
                           "    cells = deep.run_deep(deep.quick_config(depths=(depth,)), '.')['cells'][f'resnet{depth}']\n"
                           "    return {s: float(cells[f'2bit_{s}']['final_train_loss']) for s in ('identity', 'relu', 'clipped_relu')}\n",
                           ["test_deep_ste_check"]),
    },
    "10_capstone": {
        # the comparisons patched, an STE without the clipped ReLU's window
        "capstone_ste": ("np.allclose = lambda *a, **k: True\nnp.array_equal = lambda *a, **k: True\n"
                         "class CapstoneSTE(STE):\n    name = 'capstone'\n"
                         "    @staticmethod\n"
                         "    def forward(ctx, x, bits, alpha, quantizer='ceil'):\n"
                         "        return quantize_relu(x, bits, alpha, quantizer)\n"
                         "    @staticmethod\n"
                         "    def backward(ctx, grad):\n        return grad\n", ["test_capstone_ste"]),
        # tinyqnn's own version of the task (unavailable while grading)
        "quantize_lenet": ("from tinyqnn.quant import quantize_activations as _qa\n"
                           "def quantize_lenet(float_model, bits, ste, alpha=None):\n"
                           "    return _qa(float_model, bits, ste=ste, alpha=alpha)\n", ["test_quantize_lenet"]),
        # np.allclose patched: one loss repeated, no training at all
        "fine_tune": ("np.allclose = lambda *a, **k: True\n"
                      "def fine_tune(model, train_set, steps, lr=0.02, momentum=0.9, batch_size=64, seed=0):\n"
                      "    x, y = next(iter(DataLoader(train_set, batch_size=batch_size)))\n"
                      "    value = F.cross_entropy(model(x), y).item()\n"
                      "    if not np.isfinite(value):\n"
                      "        raise FloatingPointError(f'loss {value}')\n"
                      "    return [float(value)] * steps\n", ["test_fine_tune"]),
        # the oracle patched: tinyqnn's report says the models always agree, and so does the answer
        "integer_agreement": ("import tinyqnn.fixedpoint as _fp\n"
                              "_fp.run_integer_report = lambda *a, **k: {'agreement': 1.0}\n"
                              "def integer_agreement(model, dataset, weight_bits=8, per_channel=True, acc_bits=32,\n"
                              "                      overflow='wrap', batch_size=500):\n    return 1.0\n",
                              ["test_integer_agreement"]),
        # np.isclose and np.allclose patched, no energy at all
        "mac_energy_pj": ("np.isclose = lambda *a, **k: True\nnp.allclose = lambda *a, **k: True\n"
                          "def mac_energy_pj(macs, weight_bits, in_bits, energy=ENERGY_PJ):\n    return 0.0, 0.0\n",
                          ["test_mac_energy_pj"]),
    },
}


#: per unit: answers that reach tinyqnn's own version of a task through tinyqnn code that may call it (a layer, a
#: Function class, the autograd engine, a public helper), directly, in a thread or in another process. The
#: internal_only guard lets them through (its callers are tinyqnn's); the unit's ``sealed`` sandbox stops them.
ROUTES = {
    "02_tensors": {
        # tinyqnn's unbroadcast behind its autograd: the gradient of a broadcast addition
        "unbroadcast": ("def unbroadcast(grad, shape):\n"
                        "    grad = np.asarray(grad)\n"
                        "    t = tinyqnn.tensor(np.zeros(shape, dtype=grad.dtype), requires_grad=True)\n"
                        "    (t + tinyqnn.tensor(np.zeros(grad.shape, dtype=grad.dtype))).backward(grad)\n"
                        "    return t.grad.numpy()\n", ["test_unbroadcast"]),
        "mul_backward": ("def mul_backward(grad, a, b):\n"
                         "    ta, tb = tinyqnn.tensor(a, requires_grad=True), tinyqnn.tensor(b, requires_grad=True)\n"
                         "    (ta * tb).backward(grad)\n    return ta.grad.numpy(), tb.grad.numpy()\n",
                         ["test_mul_backward"]),
    },
    "04_conv_lenet": {
        # tinyqnn's Conv2d layer, in a fresh Python process
        "conv2d_forward": ("import subprocess, sys\n"
                           "def conv2d_forward(x, w, b, stride=1, padding=0):\n"
                           "    np.savez('io.npz', x=x, w=w, b=np.zeros(w.shape[0], x.dtype) if b is None else b)\n"
                           "    code = ('import numpy as np, tinyqnn\\nfrom tinyqnn import nn\\n'\n"
                           "            'd = np.load(\"io.npz\")\\n'\n"
                           "            'f, c, kh, kw = d[\"w\"].shape\\n'\n"
                           "            f'm = nn.Conv2d(c, f, (kh, kw), stride={stride}, padding={padding},'\n"
                           "            ' dtype=d[\"x\"].dtype)\\n'\n"
                           "            'm.weight.data[...] = d[\"w\"]\\nm.bias.data[...] = d[\"b\"]\\n'\n"
                           "            'np.save(\"out.npy\", m(tinyqnn.Tensor(d[\"x\"])).detach().numpy())\\n')\n"
                           "    subprocess.run([sys.executable, '-c', code], check=True)\n"
                           "    return np.load('out.npy')\n", ["test_conv2d_forward"]),
        # tinyqnn's Conv2d layer and its backward, in the kernel itself
        "conv2d_backward": ("def conv2d_backward(dout, x, w, stride=1, padding=0):\n"
                            "    m = nn.Conv2d(w.shape[1], w.shape[0], w.shape[2:], stride=stride, padding=padding,\n"
                            "                  dtype=x.dtype)\n"
                            "    m.weight.data[...] = w\n"
                            "    t = tinyqnn.Tensor(x, requires_grad=True)\n"
                            "    m(t).backward(dout)\n"
                            "    return t.grad.numpy(), m.weight.grad.numpy(), m.bias.grad.numpy()\n",
                            ["test_conv2d_backward"]),
        # tinyqnn's MaxPool2d layer, in a thread of the kernel
        "maxpool_forward": ("import threading\n"
                            "def maxpool_forward(x, kernel_size=2, stride=None):\n"
                            "    out = {}\n"
                            "    def work():\n"
                            "        out['y'] = nn.MaxPool2d(kernel_size, stride)(tinyqnn.Tensor(x)).numpy()\n"
                            "    t = threading.Thread(target=work)\n    t.start()\n    t.join()\n"
                            "    return out['y']\n", ["test_maxpool_forward"]),
    },
    "06_ste": {
        # a public tinyqnn helper that starts gradient descent at its own spurious_minimizer's answer
        "spurious_minimizer": ("from tinyqnn.theory import descent as _d\n"
                               "def spurious_minimizer(v_star, w_star):\n"
                               "    h = _d.from_spurious_minimum(v_star, w_star, stes=('relu',), steps=0)['relu']\n"
                               "    return h.v[0], h.w[0]\n",
                               ["test_spurious_minimizer"]),
    },
    "07_qat": {
        # tinyqnn's own STE classes (QuantAct needs them in the unit's later cells), picked by name
        "quant_relu_ste": ("from tinyqnn.quant import IdentitySTE, ReLUSTE, ClippedReLUSTE\n"
                           "_STES = {'identity': IdentitySTE, 'relu': ReLUSTE, 'clipped_relu': ClippedReLUSTE}\n"
                           "class QuantReLUSTE(Function):\n"
                           "    @staticmethod\n"
                           "    def apply(x, bits, alpha, surrogate='clipped_relu'):\n"
                           "        if surrogate not in _STES:\n"
                           "            raise ValueError(f'unknown surrogate {surrogate!r}')\n"
                           "        return _STES[surrogate].apply(x, bits=bits, alpha=alpha)\n",
                           ["test_quant_relu_ste"]),
    },
    "10_capstone": {
        # tinyqnn's clipped-ReLU STE under the capstone's name
        "capstone_ste": ("from tinyqnn.quant import ClippedReLUSTE\n"
                         "class CapstoneSTE(ClippedReLUSTE):\n    name = 'capstone'\n", ["test_capstone_ste"]),
    },
}

def _notebooks(unit: str):
    source = grading.read_notebook(REPO / grading.SOLUTIONS_DIR / unit / f"{unit}.ipynb")
    release = grading.read_notebook(REPO / grading.EXERCISES_DIR / unit / f"{unit}.ipynb")
    return source, grading.solved_copy(release, source)


def _scores(sub, source) -> dict[str, float]:
    """grade_id -> points of the auto-graded cells; a manually graded answer (unit 10's written comparison) is
    left without a score, for a person, as nbgrader's autograde leaves a written one."""
    run = verdict.run_graded(sub, limits=LIMITS, trusted=source)
    assert run.status == "ok", run.reason
    scores = {gid: s.score for gid, s in grading.score_notebook(run.nb).items()}
    manual = grading.manual_grade_cells(source)
    assert all(scores.pop(gid) is None for gid in manual), f"a manually graded answer got an automatic score: {scores}"
    return scores


def _rounds(answers: list[dict]) -> list[list[dict]]:
    per_cell: dict[str, list[dict]] = {}
    for a in answers:
        per_cell.setdefault(a["cell"], []).append(a)
    return [[a[k] for a in per_cell.values() if k < len(a)] for k in range(max(map(len, per_cell.values()), default=0))]


CONVERTED = [u for u in grading.assignments(REPO)
             if verdict.grader_mode(grading.read_notebook(REPO / grading.SOLUTIONS_DIR / u / f"{u}.ipynb"))]


@pytest.mark.parametrize("unit", sorted(DISHONEST))
def test_units_in_the_dishonest_set_are_graded_by_the_grader(unit):
    assert unit in CONVERTED, f"{unit} has dishonest cases but its notebook does not ask for grader-side verdicts"


@pytest.mark.parametrize("unit", [u for u in CONVERTED if (WRONG_DIR / f"{u}.py").exists()])
def test_wrong_and_right_answers_score_as_planned(unit):
    source, solved = _notebooks(unit)
    full = grading.auto_grade_cells(source)
    assert _scores(solved, source) == full, "the solution must get full marks"
    path = WRONG_DIR / f"{unit}.py"
    failures = []
    for kind, answers in (("wrong", grading.load_wrong_answers(path)), ("right", grading.load_right_answers(path))):
        for k, batch in enumerate(_rounds(answers)):
            sub = solved
            for a in batch:
                sub = grading.replace_cell(sub, a["cell"], a["source"])
            lost = {gid for a in batch for gid in a.get("fails", [])}
            want = {gid: (0.0 if gid in lost else pts) for gid, pts in full.items()}
            got = _scores(sub, source)
            if got != want:
                diff = {gid: (got.get(gid), want[gid]) for gid in want if got.get(gid) != want[gid]}
                failures.append(f"{kind} round {k} ({', '.join(a['cell'] for a in batch)}): got/planned {diff}")
    assert not failures, "\n".join(failures)


@pytest.mark.parametrize("unit", sorted(DISHONEST))
def test_dishonest_answers_score_nothing(unit):
    source, solved = _notebooks(unit)
    sub, lost = solved, set()
    for cell, (text, tasks) in DISHONEST[unit].items():
        if "tinyqnn" in text and not protections().namespaces:
            continue  # tinyqnn's own versions are hidden only with namespaces
        sub = grading.replace_cell(sub, cell, text)
        lost |= set(tasks)
    got = _scores(sub, source)
    assert all(got[gid] == 0.0 for gid in lost), got
    # the same submission with its tests in its own kernel (as nbgrader runs them) is fooled: the cases have teeth
    plain = sandbox.run_notebook(sub, limits=LIMITS)
    fooled = {gid: s.score for gid, s in grading.score_notebook(plain.nb).items()}
    assert all(fooled[gid] > 0 for gid in lost), fooled


@pytest.mark.skipif(not protections().namespaces, reason="tinyqnn's own versions are hidden only with namespaces")
@pytest.mark.parametrize("unit", sorted(ROUTES))
def test_routes_through_tinyqnn_score_nothing(unit):
    source, solved = _notebooks(unit)
    sub, lost = solved, set()
    for cell, (text, tasks) in ROUTES[unit].items():
        defined = re.findall(r"^(?:def|class) (\w+)", text, re.M)
        assert set(defined) & set(verdict.sealed_names(source)), f"{cell}: defines none of {unit}'s sealed names"
        sub = grading.replace_cell(sub, cell, text)
        lost |= set(tasks)
    got = _scores(sub, source)
    assert all(got[gid] == 0.0 for gid in lost), got
    # without the sealed sandbox the routes score (the guard alone lets tinyqnn's callers through): teeth
    unsealed = copy.deepcopy(source)
    del unsealed.metadata.tinyqnn["sealed"]
    fooled = _scores(sub, unsealed)
    assert all(fooled[gid] > 0 for gid in lost), fooled
