"""The grader <-> sandbox protocol for objects and callables (tinyqnn.course.remote).

One sandboxed kernel holds a learner's code; the grader-side code below is executed as a test cell would be
(in a namespace named ``__grader__``), so its functions are the test's own.
"""
from __future__ import annotations

import base64
import pickle
import time

import nbformat
import numpy as np
import pytest

from tinyqnn.course import remote
from tinyqnn.course.sandbox import Limits, Sandbox

LEARNER = '''
import numpy as np

class Node:
    def __init__(self, data, parents=()):
        self.data = float(data)
        self.parents = tuple(parents)
        self.grad = 0.0

    def __add__(self, other):
        other = other if isinstance(other, Node) else Node(other)
        return Node(self.data + other.data, (self, other))

    __radd__ = __add__

    def double(self):
        return Node(2 * self.data, (self,))

def link(*nodes):
    return Node(sum(n.data for n in nodes), nodes)

def chain(n):
    x = Node(0.0)
    for _ in range(n):
        x = Node(x.data + 1, (x,))
    return x

def fill_grads(root, order_fn):
    for i, node in enumerate(order_fn(root)):
        node.grad = float(i)

def gradient_check(f, x, h=1e-5):
    x = np.array(x, dtype=np.float64)
    g = np.zeros_like(x)
    for i in range(x.size):
        e = np.zeros_like(x)
        e.flat[i] = h
        g.flat[i] = (f(x + e) - f(x - e)) / (2 * h)
    return g

def square(x):
    return x * x

def sum_squares(xs):
    return float(sum(square(x) for x in xs))

def reciprocal(x):
    return 1.0 / x

def spin():
    while True:
        pass

class Liar:
    """Says it equals anything, and converts to an array of itself."""
    def __eq__(self, other):
        return True
    def __bool__(self):
        return True
    def __array__(self, dtype=None, copy=None):
        return np.array([1.0, None], dtype=object)

class Pointer:
    """Would make the grader's NumPy read its memory at address 16, were the attribute read there."""
    __array_interface__ = {"shape": (1 << 20,), "typestr": "<f8", "data": (16, True), "version": 3}

def liar():
    return Liar()

def counter():
    return iter([1, 2])

def model():
    import tinyqnn
    return tinyqnn.nn.Sequential(tinyqnn.nn.Linear(3, 2), tinyqnn.nn.ReLU())

def pointer():
    return Pointer()

class Scale:
    factor = 2.0

def scaled(x):
    return Scale.factor * x
'''

NAMES = ("Node", "link", "chain", "fill_grads", "gradient_check", "square", "sum_squares", "reciprocal", "spin", "Liar", "liar", "pointer", "counter", "model",
         "Scale", "scaled")


@pytest.fixture(scope="module")
def ns():
    """The grader's namespace of a test cell: the learner's names are proxies of code in one sandbox."""
    with Sandbox({}, Limits(cell_seconds=4, notebook_seconds=300)) as box:
        remote.install(box)
        cell = box.execute(nbformat.v4.new_code_cell(LEARNER))
        assert not [o for o in cell.outputs if o.get("output_type") == "error"], cell.outputs
        namespace: dict = {"__name__": "__grader__", "np": np, "box": box}
        for name in NAMES:
            namespace[name] = remote.RemoteFunction(box, name, namespace, NAMES)
        yield namespace


def grader(ns: dict, source: str) -> dict:
    exec(source, ns)  # noqa: S102  (as verdict.run_in_grader runs a test cell)
    return ns


def test_objects_stay_in_the_sandbox_and_come_back_as_the_same_proxy(ns):
    grader(ns, "a, b = Node(2.0), Node(-3.0)\nc = link(a, b)\nd = c + 1.5\ne = 1.5 + a\n")
    a, b, c, d, e = (ns[k] for k in "abcde")
    assert isinstance(c, remote.RemoteObject) and c.data == -1.0   # data comes back as data
    assert c.parents[0] is a and c.parents[1] is b                 # handles across calls: the same proxies
    assert d.parents[0] is c and d.data == 0.5 and e.data == 3.5    # operators, reflected ones too
    assert c.double().parents == (c,)                               # method calls
    assert isinstance(a, ns["Node"]) and not isinstance(3.0, ns["Node"])
    a.grad = 7.0                                                    # attribute writes reach the object
    assert ns["link"](a).parents[0].grad == 7.0
    assert [n.data for n in ns["chain"](3).parents[0].parents] == [1.0]
    assert len(ns["chain"](2).parents) == 1 and list(iter(c.parents)) == [a, b]


def test_tinyqnn_objects_answer_isinstance_and_their_class_name_like_the_real_ones(ns):
    import tinyqnn

    m = ns["model"]()
    assert isinstance(m, tinyqnn.nn.Sequential) and not isinstance(m, tinyqnn.nn.Linear)
    assert [c.__class__.__name__ for c in m.children()] == ["Linear", "ReLU"]
    out = m(tinyqnn.tensor(np.ones((4, 3), np.float32)))           # a grader tensor travels pickled
    assert out.shape == (4, 2) and out.dtype == np.float32 and isinstance(out.data, np.ndarray)
    it = ns["counter"]()
    assert (next(it), next(it)) == (1, 2)
    with pytest.raises(StopIteration):
        next(it)


def test_handles_survive_cells_run_in_the_kernel_between_test_cells(ns):
    grader(ns, "kept = Node(4.0)\n")
    ns["box"].execute(nbformat.v4.new_code_cell("x = 1  # a learner cell between two test cells"))
    assert ns["link"](ns["kept"]).parents[0] is ns["kept"] and ns["kept"].data == 4.0


def test_a_learner_object_that_lies_about_equality_or_its_array_decides_nothing(ns):
    grader(ns, "x = liar()\n")
    x = ns["x"]
    assert not (x == 3) and x != 3 and not (x == x.__class__)       # identity here, never the learner's __eq__
    assert x == x
    with pytest.raises(TypeError, match="not something the grader can compare"):
        np.asarray(x)                                                # an object array is refused
    with pytest.raises(TypeError):
        np.allclose(x, 1.0)
    p = ns["pointer"]()
    with pytest.raises(AttributeError):
        p.__array_interface__                                        # protocols are never read from the sandbox
    with pytest.raises(TypeError, match="stays in the sandbox"):
        pickle.dumps(x)


def test_functions_the_test_passes_travel_by_value_and_stand_ins_are_called_back(ns):
    grader(ns, "calls = []\n"
               "def f(v):\n    calls.append(1)\n    return float(np.sum(v ** 3))\n"
               "class Cube:\n    def __call__(self, v):\n        return float(np.sum(v ** 3))\n"
               "g = gradient_check(f, np.array([1.0, -2.0, 0.5]))\n"
               "h = gradient_check(lambda v: float(v[0] * v[1]), [3.0, 4.0])\n"
               "k = gradient_check(Cube(), np.array([1.0, -2.0, 0.5]))\n")
    assert np.allclose(ns["g"], [3.0, 12.0, 0.75], atol=1e-6) and np.allclose(ns["h"], [4.0, 3.0], atol=1e-6)
    assert np.allclose(ns["k"], ns["g"])  # an object of a class the test defined: the class travels by value
    # f records its calls in the test's list: it is called back, so the test sees every evaluation (a copy sent
    # by value would have recorded them in the sandbox, and a test checking them would fail a right answer)
    assert len(ns["calls"]) >= 3, ns["calls"]
    # a function holding proxies: the learner's fill_grads walks the nodes in the order it gives
    grader(ns, "p, q = Node(1.0), Node(2.0)\nr = link(p, q)\n"
               "fill_grads(r, lambda root: [root, p, q])\n")
    assert (ns["r"].grad, ns["p"].grad, ns["q"].grad) == (0.0, 1.0, 2.0)
    # a stand-in bound to a learner's name runs here, and may call the learner's code again (nested)
    grader(ns, "calls.clear()\n_mine = square\n"
               "def square(v):\n    calls.append(v)\n    return link(Node(v)).data ** 2\n"
               "try:\n    total = sum_squares([1.0, 3.0])\nfinally:\n    square = _mine\n")
    assert ns["total"] == 10.0 and ns["calls"] == [1.0, 3.0]


def test_a_class_the_test_binds_to_a_learner_s_name_is_that_class_in_the_sandbox(ns):
    """A stand-in class (unit 7's known-correct STE in place of the learner's): the learner's code reads its
    attributes (``QuantReLUSTE.apply``), so it travels as a class, not as a call-back stub."""
    grader(ns, "_mine = Scale\nclass Scale:\n    factor = 5.0\n"
               "try:\n    five = scaled(1.0)\nfinally:\n    Scale = _mine\n")
    assert ns["five"] == 5.0 and ns["scaled"](1.0) == 2.0


def test_a_function_the_test_passes_raises_its_error_inside_the_learner_s_code(ns):
    grader(ns, "def bad(v):\n    raise KeyError('from the test')\n")
    with pytest.raises(KeyError, match="from the test"):
        ns["gradient_check"](ns["bad"], [1.0])


def test_map_is_the_loop_in_one_round_trip(ns):
    xs = [np.float32(1.5), np.arange(3), 2]
    got = ns["square"].map(xs)
    assert [np.asarray(g).dtype for g in got] == [np.asarray(x * x).dtype for x in xs]
    assert all(np.array_equal(g, x * x) for g, x in zip(got, xs))
    assert ns["link"].map([(ns["Node"](1.0), ns["Node"](2.0))])[0].data == 3.0
    with pytest.raises(ZeroDivisionError):
        ns["reciprocal"].map([1.0, 0.0, 2.0])


def test_warnings_and_errstate_of_the_grader_apply(ns):
    with np.errstate(divide="raise"):
        with pytest.raises(FloatingPointError):
            ns["reciprocal"](np.zeros(2))
    with pytest.warns(RuntimeWarning):
        ns["reciprocal"](np.zeros(2))


def test_a_runaway_call_is_interrupted_and_the_next_call_works(ns):
    with pytest.raises(remote.RemoteTimeout, match="cell limit"):
        ns["spin"]()
    assert ns["square"](3) == 9


def test_a_test_cell_past_its_limit_makes_no_more_calls(ns):
    """The cell limit bounds a whole grader-side test cell (as nbgrader's bounds a cell), not each call: once the
    cell's time is up, a call fails at once instead of spending another cell limit in the sandbox."""
    grader(ns, "box_calls = []\nn = Node(1.0)\n")
    ch = remote.channel(ns["box"])
    ch.cell_deadline = time.monotonic() - 1.0
    try:
        with pytest.raises(remote.RemoteTimeout, match="test cell ran past"):
            ns["n"].grad = 5.0
    finally:
        ch.cell_deadline = None
    assert ns["n"].grad == 0.0  # the write never reached the sandbox


def test_an_answer_that_would_be_unpickled_here_is_refused(tmp_path):
    """The learner replaces the kernel's answering with one that sends a pickle (whose loading would write a
    file in the grader) and then an object array: the grader reads neither."""
    marker = tmp_path / "unpickled"
    forge = f'''
import base64, json, os, pickle, struct
import numpy as np
from tinyqnn.course import remote as _r

class Boom:
    def __reduce__(self):
        return (os.mkdir, ({str(marker)!r},))

def _forged(message):
    if message.get("target") == "pickled":
        node = {{"pickle": base64.b64encode(pickle.dumps(Boom())).decode()}}
        return _r.bundle({{"dict": {{"kind": "result", "out": {{"dict": {{"result": node, "warnings": {{"list": []}}}}}}}}}}, {{}})
    arrays = {{"a0": np.zeros(2)}}
    data = _r.bundle({{"dict": {{"kind": "result", "out": {{"dict": {{"result": {{"array": "a0", "scalar": False}},
                                                                     "warnings": {{"list": []}}}}}}}}}}, arrays)
    size = struct.unpack("!Q", data[:8])[0]
    header = json.loads(data[8:8 + size])
    header["arrays"][0][1] = "|O"
    header = json.dumps(header).encode()
    return struct.pack("!Q", len(header)) + header + data[8 + size:]

__tinyqnn_kernel__.answer = _forged
'''
    with Sandbox({}, Limits(cell_seconds=20, notebook_seconds=120)) as box:
        remote.install(box)
        cell = box.execute(nbformat.v4.new_code_cell(forge))
        assert not [o for o in cell.outputs if o.get("output_type") == "error"], cell.outputs
        with pytest.raises(RuntimeError, match="could not be read as data"):
            remote.RemoteFunction(box, "pickled")()
        with pytest.raises(RuntimeError, match="could not be read as data"):
            remote.RemoteFunction(box, "object_array")()
    assert not marker.exists()


def test_data_round_trip_refuses_object_dtypes_and_pickles_from_the_sandbox():
    back = remote.unpack(remote.pack({"x": np.arange(4, dtype=">i2").reshape(2, 2), "e": np.zeros((0, 3), "U2"),
                                      "t": np.dtype(np.float32)}))
    assert back["t"] == np.float32
    assert back["x"].dtype == np.dtype(">i2") and back["x"].tolist() == [[0, 1], [2, 3]] and back["e"].shape == (0, 3)
    data = remote.pack({"x": np.zeros(3)})
    forged = data.replace(b'"<f8"', b'"|O8"')
    with pytest.raises(ValueError, match="not data"):
        remote.unpack(forged)
    sent = remote.pack([object()], "pickle")      # the grader may send objects ...
    with pytest.raises(ValueError, match="malformed"):
        remote.unpack(sent)                       # ... but nothing from the sandbox is ever unpickled
    with pytest.raises(ValueError, match="malformed"):
        remote.unpack(base64.b64decode(base64.b64encode(sent)), hook=lambda node: node)
