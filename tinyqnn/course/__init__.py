"""Course helpers: quick mode for notebooks, the learner's self-check, and the release/grading machinery.

Notebooks only need ``quick_mode``; the heavier pieces (``check``, ``release``, ``grading``) import
nbformat/nbclient/nbgrader lazily, so ``import tinyqnn.course`` stays cheap inside a kernel.
"""
from __future__ import annotations

import os
from pathlib import Path

__all__ = ["quick_mode", "QUICK_ENV_VARS", "results_dir", "call_each", "learner_side"]

# nbgrader sets NBGRADER_EXECUTION ("autograde" / "validate") while it runs a notebook;
# TINYQNN_QUICK is ours (CI runs the lessons with it, learners may set it too).
QUICK_ENV_VARS = ("NBGRADER_EXECUTION", "TINYQNN_QUICK")


def quick_mode() -> bool:
    """True when long cells should shorten themselves (grading, self-check, CI).

    Set by nbgrader during autograde/validate (``NBGRADER_EXECUTION``) and by ``TINYQNN_QUICK``.
    An empty value or ``0`` counts as unset, so ``TINYQNN_QUICK=0`` switches quick mode off.
    """
    return any(os.environ.get(name, "").strip() not in ("", "0") for name in QUICK_ENV_VARS)


def results_dir() -> Path:
    """The checkout's ``results/`` folder (the README's full runs, e.g. ``table1_mnist/table1.csv``).

    Lessons read full-run results from here rather than from ``../results``: a learner's workspace (``python -m
    tinyqnn workspace``) holds copies of ``lessons/`` and ``exercises/`` only, and tinyqnn is installed editable
    from the checkout, so the package always knows where its results are.
    """
    return Path(__file__).resolve().parents[2] / "results"


def call_each(fn, argsets) -> list:
    """``[fn(*args) for args in argsets]`` (an item that is not a tuple is the one argument).

    For tests that call a learner's function many times: under grader-side verdicts ``fn`` runs in the grading
    sandbox and each call is a round trip, so its ``map`` sends them all in one (``tinyqnn.course.remote``);
    anywhere else (nbgrader, a plain kernel) this is the plain loop, with the same results and the same first
    exception.
    """
    many = getattr(type(fn), "map", None)
    if many is not None and type(fn).__module__ == "tinyqnn.course.remote":
        return fn.map(list(argsets))
    return [fn(*args) if type(args) is tuple else fn(args) for args in argsets]


def learner_side(make, *args, **kwargs):
    """``make(*args, **kwargs)``, made where the learner's code runs.

    For tests that build an object the learner's code changes in place (a model a training step updates, a
    tensor whose ``.grad`` backward fills): a notebook lists ``learner_side`` in ``metadata.tinyqnn.sandbox_names``,
    so under grader-side verdicts the call runs in the grading sandbox (``make`` and its arguments travel there)
    and the test gets a proxy of the object, which stays there; the test reads its results back as data and
    compares them with references it computes itself. Anywhere else (nbgrader, a plain kernel) it is the call.
    ``learner_side(copy.deepcopy, net)``: a copy of the grader's ``net`` there.
    """
    return make(*args, **kwargs)
