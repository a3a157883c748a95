"""A gradient check for tests of a learner's ``Function``: the central differences and the verdict stay here.

``gradcheck(fn, *inputs)`` checks the same thing as ``tinyqnn.gradcheck`` (float64 inputs, the output weighted by
fixed random weights so that a permuted gradient cannot hide), but it asks ``fn`` only for values: its output and
the inputs' gradients once, then its output at every nudged input, all in one batch per input. Under grader-side
verdicts (``tinyqnn.course.verdict``) ``fn`` calls the learner's ``Function``, so each batch runs in the grading
sandbox, where that code lives, and comes back as arrays; the differences, the tolerances and the comparison are
computed by the grader's own NumPy. Anywhere else (nbgrader, a learner's kernel) the batches run right here.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from tinyqnn.engine.gradcheck import GradcheckError


def gradcheck(fn: Callable[..., Any], *inputs: Any, eps: float = 1e-6, atol: float = 1e-5, rtol: float = 1e-4,
              seed: int = 0) -> bool:
    """Check the backward of ``fn`` against central differences of its forward, in float64.

    Args:
        fn: function of tensors returning a tensor, e.g. ``lambda t: LogSumExp.apply(t, axis=1)``.
        *inputs: arrays (or tensors); floating ones are checked (as float64 copies), others passed unchanged.
        eps: finite-difference step; atol/rtol: tolerance, as in ``np.allclose``; seed: of the output weights.
    Returns:
        True; raises ``GradcheckError`` naming the input, index and both values when a gradient differs.
    """
    arrays = [_as_input(x) for x in inputs]
    checked = [k for k, a in enumerate(arrays) if isinstance(a, np.ndarray) and a.dtype == np.float64]
    run = _runner(fn)
    (out,) = run(forward_values, fn, [arrays])
    out = np.asarray(out)
    if out.dtype != np.float64:
        raise GradcheckError(f"gradcheck: fn turned float64 inputs into a {out.dtype} output")
    weights = np.random.default_rng(seed).uniform(0.5, 1.5, size=out.shape)
    grads = run(input_gradients, fn, arrays, weights)
    for k in checked:
        x = arrays[k]
        nudged = []
        for i in range(x.size):
            for step in (eps, -eps):
                moved = x.copy()
                moved.reshape(-1)[i] += step
                nudged.append([moved if j == k else a for j, a in enumerate(arrays)])
        outs = [np.asarray(o, dtype=np.float64) for o in run(forward_values, fn, nudged)]
        if any(o.shape != out.shape for o in outs):
            raise GradcheckError(f"gradcheck: fn's output shape changed when input {k} was nudged")
        totals = np.array([np.sum(o * weights) for o in outs]).reshape(x.size, 2)
        numeric = ((totals[:, 0] - totals[:, 1]) / (2 * eps)).reshape(x.shape)
        analytic = np.asarray(grads[k], dtype=np.float64)
        if analytic.shape != x.shape:
            raise GradcheckError(f"gradcheck: the gradient of input {k} has shape {analytic.shape}, "
                                 f"the input has shape {x.shape}")
        bad = ~np.isclose(analytic, numeric, atol=atol, rtol=rtol)
        if bad.any():
            where = tuple(int(i) for i in np.argwhere(bad)[0])
            raise GradcheckError(
                f"gradcheck failed for input {k} (shape {x.shape}) at index {where}: central difference gives "
                f"{numeric[where]:.6g}, backward gave {analytic[where]:.6g} ({int(bad.sum())} of {bad.size} "
                f"entries differ; atol={atol}, rtol={rtol})")
    return True


def _as_input(x: Any) -> Any:
    data = getattr(x, "data", x) if type(x).__name__ == "Tensor" else x
    arr = np.asarray(data)
    return np.array(arr, dtype=np.float64, order="C") if arr.dtype.kind == "f" else data


def _runner(fn: Any) -> Callable[..., Any]:
    """Where ``fn``'s batches run: in the grading sandbox when it reads a learner's name that lives there."""
    from tinyqnn.course import remote

    channel = remote.channel_used_by(fn)
    if channel is None:
        return lambda helper, *args: helper(*args)
    return channel.run


# ---------------------------------------------------------------- run where fn runs (the sandbox, under grading)

def forward_values(fn: Callable[..., Any], argsets: list) -> list[np.ndarray]:
    """``fn(*tensors).data`` for each list of inputs (floating arrays become tensors), without recording graphs."""
    from tinyqnn.engine import Tensor, no_grad

    outs = []
    with no_grad():
        for arrays in argsets:
            out = fn(*[Tensor(a) if _floating(a) else a for a in arrays])
            if not isinstance(out, Tensor):
                raise TypeError(f"gradcheck: fn must return a Tensor, got {type(out).__name__}")
            outs.append(np.array(out.data))
    return outs


def input_gradients(fn: Callable[..., Any], arrays: list, weights: np.ndarray) -> list:
    """d sum(weights * fn(*inputs)) / d input, per input (None for one that is not floating)."""
    from tinyqnn.engine import Tensor

    tensors = [Tensor(a, requires_grad=True) if _floating(a) else a for a in arrays]
    out = fn(*tensors)
    if not isinstance(out, Tensor):
        raise TypeError(f"gradcheck: fn must return a Tensor, got {type(out).__name__}")
    (out * Tensor(weights)).sum().backward()
    return [(np.array(t.grad.data) if t.grad is not None else np.zeros_like(t.data)) if isinstance(t, Tensor)
            else None for t in tensors]


def _floating(a: Any) -> bool:
    return isinstance(a, np.ndarray) and a.dtype.kind == "f"
