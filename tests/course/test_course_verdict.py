"""Verdicts a submission cannot forge (tinyqnn.course.verdict, tinyqnn.course.remote).

A small assignment in the course's standard form (grader-side tests, a task tinyqnn also implements) is
graded for honest, wrong and dishonest submissions, each in its own sandbox.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import nbformat
import pytest

from tinyqnn.course import grading, remote, sandbox, verdict
from tinyqnn.course.sandbox import Limits

PROT = sandbox.protections()
LIMITS = Limits(cell_seconds=30, notebook_seconds=120)


def _cell(kind: str, gid: str, source: str, **meta):
    make = nbformat.v4.new_code_cell if kind == "code" else nbformat.v4.new_markdown_cell
    cell = make(source)
    cell.metadata["nbgrader"] = {"grade": False, "solution": False, "locked": False, "task": False,
                                 "schema_version": 3, "grade_id": gid, **meta}
    return cell


SETUP = "import numpy as np\nimport tinyqnn\n\nrng = np.random.default_rng(0)\n"
CLIP = '''def clip_gradient(g, c):
    """clip(g, -c sigma, c sigma), sigma = std of all entries of g. g: any shape -> g's shape (float64)."""
    return np.clip(g, -c * np.std(g), c * np.std(g))
'''
DOUBLE = '''def double(x):
    """2 x, same dtype."""
    return x * 2
'''
TEST_CLIP = '''from tinyqnn.distributed.gradient import clip_gradient as _oracle  # tinyqnn's version: the reference
g = rng.standard_normal((4, 5))
got = clip_gradient(g, 1.0)
assert np.allclose(got, _oracle(g, 1.0)[0]), f"expected {_oracle(g, 1.0)[0]}, got {got}"
### BEGIN HIDDEN TESTS
g = rng.standard_normal(100) ** 3
assert np.allclose(clip_gradient(g, 2.5), _oracle(g, 2.5)[0]), "heavy tails"
g_copy = g.copy()
clip_gradient(g, 0.5)
assert np.array_equal(g, g_copy), "clip_gradient must not modify g"
### END HIDDEN TESTS
'''
TEST_DOUBLE = '''x = np.arange(3.0)
assert np.allclose(double(x), [0.0, 2.0, 4.0]), f"expected [0, 2, 4], got {double(x)}"
### BEGIN HIDDEN TESTS
x32 = rng.standard_normal((2, 3)).astype(np.float32)
got = double(x32)
assert got.dtype == np.float32, f"float32 in, float32 out; got {got.dtype}"
assert all(np.equal(got, 2 * x32).ravel()), "values"
### END HIDDEN TESTS
'''


def assignment() -> nbformat.NotebookNode:
    nb = nbformat.v4.new_notebook(cells=[
        _cell("code", "setup", SETUP, locked=True),
        _cell("code", "clip_gradient", CLIP, solution=True),
        _cell("code", "test_clip_gradient", TEST_CLIP, grade=True, locked=True, points=2),
        _cell("code", "double", DOUBLE, solution=True),
        _cell("code", "test_double", TEST_DOUBLE, grade=True, locked=True, points=1),
    ])
    nb.metadata["tinyqnn"] = {"verdicts": "grader", "unavailable": ["tinyqnn.distributed.gradient:clip_gradient"]}
    return nb


def grade(limits: Limits = LIMITS, **answers: str) -> dict[str, float]:
    """grade_id -> points of a submission whose solution cells are replaced by ``answers``."""
    source = assignment()
    sub = grading.replace_cell(source, "clip_gradient", answers.get("clip_gradient", CLIP))
    sub = grading.replace_cell(sub, "double", answers.get("double", DOUBLE))
    run = verdict.run_graded(sub, limits=limits, trusted=source)
    assert run.status == "ok" or limits is not LIMITS, run.reason
    return {gid: s.score for gid, s in grading.score_notebook(run.nb).items()}


FULL = {"test_clip_gradient": 2.0, "test_double": 1.0}


def test_reference_and_other_styles_get_full_marks():
    assert grade() == FULL
    other_style = {
        "clip_gradient": "def clip_gradient(g, c):\n    s = c * float(np.sqrt(np.mean((g - g.mean()) ** 2)))\n"
                         "    return np.minimum(np.maximum(g, -s), s)\n",
        "double": "def double(x):\n    return x + x\n",
    }
    assert grade(**other_style) == FULL


def test_plausible_wrong_answers_lose_their_points():
    wrong = {
        "clip_gradient": "def clip_gradient(g, c):\n    return np.clip(g, -c * np.abs(g).max(), c * np.abs(g).max())\n",
        "double": "def double(x):\n    return np.asarray(x, dtype=np.float64) * 2\n",
    }
    assert grade(**wrong) == {"test_clip_gradient": 0.0, "test_double": 0.0}


def test_a_function_that_modifies_its_input_is_caught():
    inplace = "def clip_gradient(g, c):\n    s = c * np.std(g)\n    np.clip(g, -s, s, out=g)\n    return g\n"
    assert grade(clip_gradient=inplace)["test_clip_gradient"] == 0.0


PATCHES = {
    "np.allclose and np.array_equal": "np.allclose = lambda *a, **k: True\nnp.array_equal = lambda *a, **k: True\n",
    "builtins": "import builtins\nbuiltins.all = lambda *a: True\nbuiltins.isinstance = lambda *a: True\n",
    "the tinyqnn oracle": "import tinyqnn.distributed.gradient as _G\n_G.clip_gradient = lambda g, c: (g, 0.0)\n",
    "np.testing and AssertionError": "import builtins\nbuiltins.AssertionError = type('X', (Exception,), {})\n",
}


def test_patching_what_the_tests_use_scores_nothing():
    """The learner returns g unchanged and 0 * x, after patching everything an in-kernel test would rely on
    (all patches at once: one sandbox; each would have been enough under nbgrader). The patched builtins break
    the kernel's own machinery too, so calls time out: short limits."""
    patches = "".join(PATCHES.values())
    patched = {"clip_gradient": patches + "def clip_gradient(g, c):\n    return g\n",
               "double": patches + "def double(x):\n    return 0 * x\n"}
    assert grade(Limits(cell_seconds=3, notebook_seconds=40), **patched) == {"test_clip_gradient": 0.0,
                                                                              "test_double": 0.0}


def test_overwriting_the_grading_helper_scores_nothing():
    """The learner removes the kernel's end of the channel: the test cell's calls get no answer (the first
    waits for the cell limit, then the channel is known broken)."""
    forged = "__tinyqnn_kernel__ = None\ndef clip_gradient(g, c):\n    return g\n"
    assert grade(Limits(cell_seconds=3, notebook_seconds=60), clip_gradient=forged) == {"test_clip_gradient": 0.0,
                                                                                         "test_double": 0.0}


@pytest.mark.skipif(not PROT.namespaces, reason=f"tinyqnn's versions are hidden only with namespaces: {PROT.notes}")
@pytest.mark.parametrize("how", [
    "from tinyqnn.distributed.gradient import clip_gradient as _c\n",
    # the module's file and its bytecode cache, read directly
    "import importlib.util, tinyqnn.distributed.gradient as _m\n"
    "_s = importlib.util.spec_from_file_location('_copy', _m.__file__)\n_x = importlib.util.module_from_spec(_s)\n"
    "_s.loader.exec_module(_x)\n_c = _x.clip_gradient\n",
    "import glob, importlib.util, os, tinyqnn.distributed.gradient as _m\n"
    "_pyc = glob.glob(os.path.join(os.path.dirname(_m.__file__), '__pycache__', 'gradient*.pyc'))\n"
    "_s = importlib.util.spec_from_file_location('_copy', _pyc[0])\n_x = importlib.util.module_from_spec(_s)\n"
    "_s.loader.exec_module(_x)\n_c = _x.clip_gradient\n",
])
def test_delegating_to_tinyqnn_scores_nothing(how):
    delegate = how + "def clip_gradient(g, c):\n    return _c(g, c)[0]\n"
    assert grade(clip_gradient=delegate) == {"test_clip_gradient": 0.0, "test_double": 1.0}


def test_a_test_cell_edited_in_the_submission_is_replaced_by_the_source():
    source = assignment()
    sub = grading.replace_cell(source, "test_double", "pass\n")
    sub = grading.replace_cell(sub, "double", "def double(x):\n    return x\n")
    # the learner even marks their own cell as a grader-side test
    sub.cells.insert(0, _cell("code", "test_mine", "assert True\n", grade=True, locked=True, points=50))
    run = verdict.run_graded(sub, limits=LIMITS, trusted=source)
    scores = {gid: s.score for gid, s in grading.score_notebook(run.nb).items()}
    assert scores["test_double"] == 0.0, scores
    assert run.nb.cells[0].outputs == [] or all(o.get("output_type") != "error" for o in run.nb.cells[0].outputs)


def test_data_round_trip_keeps_dtypes_and_refuses_objects():
    value = {"a": np.arange(3, dtype=np.int16), "s": np.float32(1.5), "t": (1, 2.5, None, "x", b"\x00\x01"),
             "nan": float("nan"), "l": [np.zeros((2, 0))], "g": np.random.default_rng(3)}
    back = remote.unpack(remote.pack(value))
    assert back["a"].dtype == np.int16 and np.array_equal(back["a"], value["a"])
    assert isinstance(back["s"], np.float32) and back["s"] == 1.5
    assert back["t"] == value["t"] and np.isnan(back["nan"]) and back["l"][0].shape == (2, 0)
    assert back["g"].integers(1 << 30) == np.random.default_rng(3).integers(1 << 30)
    with pytest.raises(TypeError, match="not data"):
        remote.pack(object())
    sent = remote.pack([object()], "pickle")  # the grader may send objects ...
    with pytest.raises(ValueError, match="malformed"):
        remote.unpack(sent)  # ... but nothing that comes back is ever unpickled


def test_redacted_source_keeps_signature_and_docstring(tmp_path):
    path = tmp_path / "m.py"
    path.write_text('def f(x):\n    """doc"""\n    return x + 1\n\n\ndef g(y):\n    return f(y)\n')
    text = verdict.redacted_source(path, ["f"])
    ns: dict = {}
    exec(text, ns)
    assert ns["f"].__doc__ == "doc"
    with pytest.raises(NotImplementedError, match="not available while grading"):
        ns["g"](1)
    with pytest.raises(ValueError, match="no top-level function or class h"):
        verdict.redacted_source(path, ["h"])
    path.write_text('class C:\n    """doc"""\n    def __init__(self):\n        self.x = 1\n\n\nclass D(C):\n    pass\n')
    ns = {}
    exec(verdict.redacted_source(path, ["C"]), ns)
    assert ns["C"].__doc__ == "doc"
    for cls in (ns["C"], ns["D"]):
        with pytest.raises(NotImplementedError, match="tinyqnn's own C is not available"):
            cls()


def _guarded(package: Path, source_text: str, internal: list[str]) -> dict:
    """``source_text`` as the sandbox's kernel would import it from ``package``/m.py with ``internal`` guarded:
    the module's namespace."""
    from tinyqnn.course import callers

    package.mkdir(exist_ok=True)
    source = package.parent / "m_source.py"
    source.write_text(source_text)
    module = package / "m.py"  # the redacted copy the sandbox's kernel imports in place of the module
    draft = verdict.redacted_source(source, [], internal)
    module.write_text("")  # the package's file; what the kernel sees there is the draft
    allowed = callers.callers_of(internal, package, {module: draft})
    module.write_text(verdict.redacted_source(source, [], internal, allowed=allowed))
    exec(compile(module.read_text(), str(module), "exec", dont_inherit=True), ns := {})  # as the import system does
    return ns


def test_an_internal_only_function_raises_for_the_learner_and_works_for_tinyqnn(tmp_path, monkeypatch):
    """``metadata.tinyqnn.internal_only``: the body stays, behind a guard on the caller's code object, which must be
    code of the package (here a folder standing in for it) that names the function."""
    import builtins
    import sys

    package = tmp_path / "tinyqnn"
    ns = _guarded(package, 'def f(x):\n    """doc"""\n    return x + 1\n\n\ndef g(y):\n    return f(y)\n\n\n'
                           'def call(fn, *args):\n    return fn(*args)\n', ["f"])
    module = package / "m.py"
    assert ns["f"].__doc__ == "doc" and ns["g"](1) == 2  # tinyqnn's own caller g still gets f's result
    with pytest.raises(NotImplementedError, match="not available while grading"):
        ns["f"](1)  # called from here, outside the package
    # tinyqnn code that calls what it is handed (as the grading server calls the learner's name, bound to f)
    # does not name f: it does not pass f's guard
    with pytest.raises(NotImplementedError, match="not available while grading"):
        ns["call"](ns["f"], 1)
    assert ns["call"](ns["g"], 1) == 2
    # the spoof: the learner's own code compiled under the module's file name is not the module's code
    exec(compile("def h(y):\n    return f(y)\n", str(module), "exec"), ns)
    with pytest.raises(NotImplementedError, match="not available while grading"):
        ns["h"](1)
    # nor is code whose lines differ from the file's (the same text one line lower)
    exec(compile("\n" + module.read_text(), str(module), "exec", dont_inherit=True), spoof := {})
    with pytest.raises(NotImplementedError):
        spoof["g"](1)
    lookalike = tmp_path / "tinyqnn_copy" / "m.py"  # a folder whose name only starts like the package's
    lookalike.parent.mkdir()
    lookalike.write_text(module.read_text())
    exec(compile(lookalike.read_text(), str(lookalike), "exec", dont_inherit=True), other := {})
    with pytest.raises(NotImplementedError):
        other["g"](1)
    # the guard looks nothing up that a submission could replace in memory: not tinyqnn.course.callers (an
    # earlier guard called its from_tinyqnn, which one assignment turned off), not a builtin it names
    monkeypatch.setitem(sys.modules, "tinyqnn.course.callers", type("Forged", (), {
        "from_tinyqnn": staticmethod(lambda *a, **k: True), "__getattr__": lambda self, n: lambda *a, **k: True})())
    monkeypatch.setattr(builtins, "ZeroDivisionError", BaseException)
    with pytest.raises(NotImplementedError):
        ns["f"](1)
    assert ns["g"](1) == 2


def test_a_replaced_frame_reader_does_not_fool_the_guard(tmp_path, monkeypatch):
    """The guard reads its caller from a traceback: a learner's ``sys._getframe`` that answers with a tinyqnn
    frame changes nothing."""
    import sys

    ns = _guarded(tmp_path / "tinyqnn", "def f(x):\n    return x + 1\n\n\ndef g(y):\n    return f(y)\n", ["f"])
    try:
        genuine = sys._getframe  # a frame whose code is g's, as a forged _getframe would hand out
        fake_frame = type("F", (), {"f_code": ns["g"].__code__})()
        monkeypatch.setattr(sys, "_getframe", lambda depth=0: fake_frame)
        with pytest.raises(NotImplementedError):
            ns["f"](1)
    finally:
        sys._getframe = genuine
    assert ns["g"](1) == 2


def test_a_redacted_class_raises_from_apply_too(tmp_path):
    """A tinyqnn ``Function`` made unavailable: ``apply`` (which makes no instance) raises the clear message."""
    path = tmp_path / "ops.py"
    path.write_text("class Op:\n    @staticmethod\n    def forward(ctx, x):\n        return x\n\n"
                    "    @classmethod\n    def apply(cls, x):\n        return cls.forward(None, x)\n")
    exec(verdict.redacted_source(path, ["Op"]), ns := {})
    with pytest.raises(NotImplementedError, match="tinyqnn's own Op is not available"):
        ns["Op"].apply(1)


def test_the_grader_side_gradcheck_catches_a_wrong_backward_here():
    """``tinyqnn.course.gradients.gradcheck`` outside the grader: the same verdicts as ``tinyqnn.gradcheck``."""
    import tinyqnn
    from tinyqnn.course.gradients import gradcheck
    from tinyqnn.engine.gradcheck import GradcheckError

    class Cube(tinyqnn.Function):
        @staticmethod
        def forward(ctx, x):
            ctx.save_for_backward(x)
            return x ** 3

        @staticmethod
        def backward(ctx, grad):
            (x,) = ctx.saved_tensors
            return 3 * x ** 2 * grad

    class WrongCube(Cube):
        @staticmethod
        def backward(ctx, grad):
            (x,) = ctx.saved_tensors
            return 3 * x ** 2 * grad.T.reshape(grad.shape)  # a permuted gradient: a plain sum would not see it

    x = np.random.default_rng(0).standard_normal((3, 2))
    assert gradcheck(lambda t: Cube.apply(t) * 2.0, x.astype(np.float32)) is True  # checked in float64
    assert tinyqnn.gradcheck(lambda t: Cube.apply(t) * 2.0, x)
    with pytest.raises(GradcheckError, match="input 0 \\(shape \\(3, 2\\)\\)"):
        gradcheck(lambda t: WrongCube.apply(t), x)
    with pytest.raises(GradcheckError):
        tinyqnn.gradcheck(lambda t: WrongCube.apply(t), x)
    with pytest.raises(GradcheckError, match="float32 output"):
        gradcheck(lambda t: Cube.apply(t).float(), x)


@pytest.mark.skipif(not PROT.namespaces, reason=f"tinyqnn's versions are hidden only with namespaces: {PROT.notes}")
@pytest.mark.parametrize("answer", [
    "from tinyqnn.engine.ops._util import unbroadcast\n",  # the learner's name is tinyqnn's function itself
    "import functools\nfrom tinyqnn.engine.ops import _util\nunbroadcast = functools.partial(_util.unbroadcast)\n",
])
def test_a_learner_s_name_bound_to_an_internal_only_function_scores_nothing(answer):
    """Unit 2's ``unbroadcast`` answered with tinyqnn's own (``internal_only``: its engine needs it): the grading
    server, tinyqnn code, is then the function's caller, but it does not name it, so the guard refuses. The same
    submission with its tests in its own kernel scores."""
    sub, source = _unit_submission("02_tensors", {"unbroadcast": answer})
    run = verdict.run_graded(sub, limits=Limits(cell_seconds=120, notebook_seconds=600), trusted=source)
    scores = {gid: s.score for gid, s in grading.score_notebook(run.nb).items()}
    full = grading.auto_grade_cells(source)
    assert scores == {**full, "test_unbroadcast": 0.0}, scores
    plain = sandbox.run_notebook(sub, limits=Limits(cell_seconds=120, notebook_seconds=600))
    assert grading.score_notebook(plain.nb)["test_unbroadcast"].score == full["test_unbroadcast"]


def test_a_real_unit_delegating_and_patching_scores_nothing_for_those_tasks():
    """Unit 9 as shipped (grader-side verdicts, tinyqnn's gradient functions unavailable): an answer that calls
    tinyqnn's clip_gradient and one that patches np.allclose and builtins lose their tasks; independent tasks keep
    full marks."""
    unit = "09_quantized_gradients"
    source = grading.read_notebook(grading.repo_root() / grading.SOLUTIONS_DIR / unit / f"{unit}.ipynb")
    release = grading.read_notebook(grading.repo_root() / grading.EXERCISES_DIR / unit / f"{unit}.ipynb")
    sub = grading.solved_copy(release, source)
    sub = grading.replace_cell(sub, "clip_gradient", "from tinyqnn.distributed.gradient import clip_gradient as _c\n"
                               "def clip_gradient(g, c):\n    return _c(g, c)[0]\n")
    sub = grading.replace_cell(sub, "spread", "np.allclose = lambda *a, **k: True\nimport builtins\n"
                               "builtins.abs = lambda x: 0.0\ndef spread(g):\n    return 1.0\n"
                               "def worst_case_vector(d):\n    return np.ones(d)\n")
    run = verdict.run_graded(sub, limits=Limits(cell_seconds=60, notebook_seconds=300), trusted=source)
    scores = {gid: s.score for gid, s in grading.score_notebook(run.nb).items()}
    full = grading.auto_grade_cells(source)
    lost = {"test_spread"} | ({"test_clip_gradient"} if PROT.namespaces else set())
    assert all(scores[gid] == 0.0 for gid in lost), scores
    # tasks that do not use the two cheating answers keep full marks (worker_average calls clip_gradient)
    for gid in ("test_stochastic_quantize", "test_sq_variance", "test_lab", "test_pack"):
        assert scores[gid] == full[gid], scores


def test_a_stand_in_bound_by_the_test_replaces_the_learner_s_helper_during_the_call():
    """Grading independence under grader-side verdicts: quad uses the learner's double; its test swaps in a
    correct double (as unit 3's test_train_step does), so a wrong double costs only its own task."""
    source = assignment()
    source.cells += [
        _cell("code", "quad", "def quad(x):\n    return double(double(x))\n", solution=True),
        _cell("code", "test_quad", "_mine = double\ntry:\n    double = lambda x: 2 * x\n"
              "    assert np.allclose(quad(np.ones(3)), 4.0), quad(np.ones(3))\nfinally:\n    double = _mine\n",
              grade=True, locked=True, points=1),
    ]
    sub = grading.replace_cell(source, "double", "def double(x):\n    return 3 * x\n")
    run = verdict.run_graded(sub, limits=LIMITS, trusted=source)
    scores = {gid: s.score for gid, s in grading.score_notebook(run.nb).items()}
    assert scores == {"test_clip_gradient": 2.0, "test_double": 0.0, "test_quad": 1.0}, scores


def test_grader_side_cells_run_in_quick_mode_as_the_kernel_does(monkeypatch):
    """A demo cell run in the grader (``grader_cells``) shortens itself as it would in the sandbox's kernel."""
    for name in ("TINYQNN_QUICK", "NBGRADER_EXECUTION"):
        monkeypatch.delenv(name, raising=False)
    outputs = verdict.run_in_grader("from tinyqnn.course import quick_mode\nassert quick_mode()\n",
                                    {"__name__": "__grader__"}, "<cell demo>")
    assert outputs == [], outputs
    from tinyqnn.course import quick_mode

    assert not quick_mode()  # and only there


def _unit_submission(unit: str, answers: dict[str, str]):
    source = grading.read_notebook(grading.repo_root() / grading.SOLUTIONS_DIR / unit / f"{unit}.ipynb")
    release = grading.read_notebook(grading.repo_root() / grading.EXERCISES_DIR / unit / f"{unit}.ipynb")
    sub = grading.solved_copy(release, source)
    for gid, text in answers.items():
        sub = grading.replace_cell(sub, gid, text)
    return sub, source


def test_unit_8_delegating_to_tinyqnn_and_patching_numpy_scores_nothing_for_those_tasks():
    """Unit 8 (grader-side verdicts; tinyqnn's fixed-point functions unavailable to the learner's code, those that
    convert_lenet and predict need still working for tinyqnn itself): answers that call tinyqnn's wrap,
    quantize_multiplier, multiply_by_quantized_multiplier or run_integer_report, and one that patches
    np.array_equal, lose their tasks; the other tasks (lenet_agreement runs tinyqnn's converter) keep full marks."""
    sub, source = _unit_submission("08_fixed_point", {
        "wrap": "from tinyqnn.fixedpoint import wrap as _w\n"
                "def wrap(x, bits, signed=True):\n    return _w(x, bits, signed)\n",
        "quantize_multiplier": "def quantize_multiplier(real_multiplier):\n"
                               "    m0, shift = fp.quantize_multiplier(np.array([real_multiplier]))\n"
                               "    return int(m0[0]), int(shift[0])\n",
        "multiply_by_quantized_multiplier": "def multiply_by_quantized_multiplier(x, quantized_multiplier, shift):\n"
                                            "    return np.asarray(fp.multiply_by_quantized_multiplier(x, quantized_multiplier, shift))\n",
        "rounding_divide_by_pot": "np.array_equal = lambda *a, **k: True\nnp.allclose = lambda *a, **k: True\n"
                                  "def rounding_divide_by_pot(x, exponent):\n"
                                  "    return np.asarray(x) >> np.asarray(exponent)\n",
        "lenet_agreement": "from tinyqnn.fixedpoint.report import run_integer_report\n"
                           "def lenet_agreement(model, dataset, weight_bits=8):\n"
                           "    r = run_integer_report(model, dataset, weight_bits=weight_bits, per_channel=True)\n"
                           "    return {k: r[k] for k in ('fake_quant', 'integer', 'agreement')}\n",
    })
    run = verdict.run_graded(sub, limits=Limits(cell_seconds=120, notebook_seconds=600), trusted=source)
    scores = {gid: s.score for gid, s in grading.score_notebook(run.nb).items()}
    full = grading.auto_grade_cells(source)
    delegated = {"test_wrap", "test_quantize_multiplier", "test_multiply_by_quantized_multiplier",
                 "test_lenet_agreement"}
    lost = {"test_rounding_divide_by_pot"} | (delegated if PROT.namespaces else set())
    assert all(scores[gid] == 0.0 for gid in lost), scores
    for gid in ("test_accumulate", "test_saturating_rounding_doubling_high_mul", "test_int_linear"):
        assert scores[gid] == full[gid], scores
    if not PROT.namespaces:
        return
    # the same answers written by hand (no tinyqnn) keep their points: the guard stops only tinyqnn's versions
    honest, _ = _unit_submission("08_fixed_point", {})
    run = verdict.run_graded(honest, limits=Limits(cell_seconds=120, notebook_seconds=600), trusted=source)
    assert {gid: s.score for gid, s in grading.score_notebook(run.nb).items()} == full


def test_call_each_is_the_plain_loop_outside_the_grader():
    from tinyqnn.course import call_each

    assert call_each(lambda a, b=0: a + b, [1, (2, 3), np.float64(4.5)]) == [1, 5, 4.5]

    def half(x):
        if x == 3:
            raise ValueError("three")
        return x / 2
    with pytest.raises(ValueError, match="three"):
        call_each(half, [2, 3, 4])


def test_unit_6_patching_numpy_and_delegating_to_tinyqnn_score_nothing_for_those_tasks():
    """Unit 6 (grader-side verdicts; the tests' tensors are the sandbox's, so the learner's Function runs there and
    only arrays come back): an answer off by a factor 2 that patches np.allclose, and one that calls tinyqnn's
    spurious_minimizer, lose their tasks; the STE classes and the other tasks keep full marks."""
    true_grad = ("np.allclose = lambda *a, **k: True\nnp.isclose = lambda *a, **k: True\n"
                 "def true_grad_w(v, w, v_star, w_star):\n"
                 "    u, us = w / np.linalg.norm(w), w_star / np.linalg.norm(w_star)\n"
                 "    p = us - (u @ us) * u\n"
                 "    n = np.linalg.norm(p)\n"
                 "    return np.zeros_like(u) if n < 1e-12 else -(v @ v_star) / (math.pi * np.linalg.norm(w)) * p / n\n")
    sub, source = _unit_submission("06_ste", {
        "true_grad_w": true_grad,
        "spurious_minimizer": "from tinyqnn.theory.landscape import spurious_minimizer as _s\n"
                              "def spurious_minimizer(v_star, w_star):\n    return _s(v_star, w_star)\n",
    })
    run = verdict.run_graded(sub, limits=Limits(cell_seconds=120, notebook_seconds=600), trusted=source)
    scores = {gid: s.score for gid, s in grading.score_notebook(run.nb).items()}
    full = grading.auto_grade_cells(source)
    lost = {"test_true_grad_w"} | ({"test_spurious_minimizer"} if PROT.namespaces else set())
    assert all(scores[gid] == 0.0 for gid in lost), scores
    assert all(scores[gid] == full[gid] for gid in set(full) - lost), scores


def test_learner_side_makes_an_object_where_the_learner_s_code_changes_it():
    """``tinyqnn.course.learner_side`` (in ``sandbox_names``): the test's object is made in the sandbox, so what the
    learner's function does to it is what the test reads back; one the test makes itself arrives as a copy."""
    test = ("class Counter:\n    def __init__(self, n):\n        self.n = n\n"
            "mine = learner_side(Counter, 1)\nbump(mine)\nassert mine.n == 2, mine.n\n"
            "here = Counter(1)\nbump(here)\nassert here.n == (1 if __name__ == '__grader__' else 2), here.n\n")
    source = nbformat.v4.new_notebook(cells=[
        _cell("code", "setup", "from tinyqnn.course import learner_side\n", locked=True),
        _cell("code", "bump", "def bump(c):\n    c.n += 1\n", solution=True),
        _cell("code", "test_bump", test, grade=True, locked=True, points=1),
    ])
    source.metadata["tinyqnn"] = {"verdicts": "grader", "sandbox_names": ["learner_side"]}
    for answer, points in (("def bump(c):\n    c.n += 1\n", 1.0), ("def bump(c):\n    return c.n + 1\n", 0.0)):
        sub = grading.replace_cell(source, "bump", answer)
        run = verdict.run_graded(sub, limits=LIMITS, trusted=source)
        assert grading.score_notebook(run.nb)["test_bump"].score == points, run.nb.cells[2].outputs
        plain = sandbox.run_notebook(sub, limits=LIMITS)  # in the kernel (nbgrader): the plain call, same verdict
        assert grading.score_notebook(plain.nb)["test_bump"].score == points, plain.nb.cells[2].outputs


def _sealed_assignment(sealed: list[str]) -> nbformat.NotebookNode:
    """A function (``double``) answered in the sealed sandbox, and a class whose instances stay in the first."""
    nb = nbformat.v4.new_notebook(cells=[
        _cell("code", "setup", SETUP, locked=True),
        _cell("code", "double", DOUBLE + "\n\nclass Box:\n    def __init__(self, x):\n        self.x = x\n",
              solution=True),
        _cell("code", "test_box", "b = Box(np.arange(2.0))\nassert np.allclose(b.x, [0.0, 1.0])\n",
              grade=True, locked=True, points=1),
        _cell("code", "test_double", TEST_DOUBLE, grade=True, locked=True, points=1),
        _cell("code", "test_double_box", "double(b)\n", grade=True, locked=True, points=1),
    ])
    nb.metadata["tinyqnn"] = {"verdicts": "grader", "sealed": sealed}
    return nb


def test_a_sealed_name_must_be_one_the_tests_may_call():
    source = _sealed_assignment(["double", "tripple"])
    with pytest.raises(ValueError, match="sealed names tripple: no solution or locked cell defines"):
        verdict.run_graded(source, limits=LIMITS, trusted=source)


@pytest.mark.skipif(not PROT.namespaces, reason=f"the sealed sandbox needs namespaces: {PROT.notes}")
def test_a_sealed_function_runs_in_its_own_sandbox_and_is_refused_objects_from_the_first():
    """The cell that names ``double`` talks to the sealed sandbox; ``b`` was made in the first, by an earlier cell."""
    source = _sealed_assignment(["double"])
    run = verdict.run_graded(source, limits=LIMITS, trusted=source)
    scores = {gid: s.score for gid, s in grading.score_notebook(run.nb).items()}
    assert scores == {"test_box": 1.0, "test_double": 1.0, "test_double_box": 0.0}, scores
    (error,) = [o for c in run.nb.cells if grading.grade_id(c) == "test_double_box" for o in c.outputs
                if o.output_type == "error"]
    assert "lives in the other grading sandbox" in error.evalue and "pass data" in error.evalue, error.evalue
    # the same notebook unsealed: the object is the same kernel's, so the call goes through (and fails on its own)
    unsealed = _sealed_assignment([])
    run = verdict.run_graded(unsealed, limits=LIMITS, trusted=unsealed)
    outputs = [o for c in run.nb.cells if grading.grade_id(c) == "test_double_box" for o in c.outputs]
    assert any(o.get("ename") == "TypeError" for o in outputs), outputs
    assert not any("other grading sandbox" in o.get("evalue", "") for o in outputs), outputs
