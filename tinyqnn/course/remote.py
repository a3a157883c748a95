"""Calling a learner's function inside the sandbox from the grader, with data (never pickle) coming back.

The grader sends ``name(*args, **kwargs)`` (through the sandbox worker, which writes it to a file in the scratch
folder: the grader itself never touches files a submission can plant links in) to the sandboxed kernel; the kernel calls the learner's function and
answers with the result as data (never pickle: the grader unpickles nothing that comes from the sandbox; the other
way round, a model the test built may travel pickled): JSON for the structure (lists, tuples, dicts, None, bool, int, float, str,
bytes) and an ``.npz`` archive (``allow_pickle=False``) for arrays and NumPy scalars, dtype kept. The input
arrays come back too, so a test can see whether the function modified them. Anything else (a model, a
generator the learner returns) is refused with a clear error: the verdict is computed on data only.

``np.errstate`` of the grader is applied around the call, and warnings the call emits are re-emitted in the
grader (a warning in a test cell costs the task, as nbgrader's "anything on stderr" rule says).
"""
from __future__ import annotations

import base64
import builtins
import io
import json
import warnings
from typing import Any

import numpy as np



def encode(obj: Any, arrays: dict[str, np.ndarray], other: str = "refuse") -> Any:
    """A JSON tree for ``obj``; arrays and NumPy scalars go into ``arrays`` (referenced by key).

    other: what to do with a value that is not data: "refuse" (TypeError; answers from the sandbox),
        "pickle" (requests from the grader to the sandbox, e.g. a model the test built: the sandbox may
        unpickle what the grader sends, never the reverse) or "opaque" (a placeholder: arguments sent back).
    """
    if obj is None or isinstance(obj, (bool, str)):
        return obj
    if isinstance(obj, (int, float)) and not isinstance(obj, np.generic):
        if isinstance(obj, float) and not np.isfinite(obj):
            return {"float": repr(obj)}
        return obj
    if isinstance(obj, (np.ndarray, np.generic)):
        key = f"a{len(arrays)}"
        arr = np.asarray(obj)
        if arr.dtype.hasobject:
            raise TypeError("an object array is not data the grader can compare")
        arrays[key] = arr
        return {"array": key, "scalar": isinstance(obj, np.generic)}
    if isinstance(obj, (bytes, bytearray)):
        return {"bytes": base64.b64encode(bytes(obj)).decode()}
    if isinstance(obj, np.random.Generator):
        return {"generator": type(obj.bit_generator).__name__, "state": _jsonable(obj.bit_generator.state)}
    if isinstance(obj, (list, tuple)):
        return {"list" if isinstance(obj, list) else "tuple": [encode(x, arrays, other) for x in obj]}
    if isinstance(obj, dict):
        if not all(isinstance(k, str) for k in obj):
            raise TypeError("only dicts with string keys are data the grader can compare")
        return {"dict": {k: encode(v, arrays, other) for k, v in obj.items()}}
    if other == "pickle":
        import pickle

        return {"pickle": base64.b64encode(pickle.dumps(obj)).decode()}
    if other == "opaque":
        return {"opaque": type(obj).__qualname__}
    raise TypeError(f"a {type(obj).__module__}.{type(obj).__qualname__} is not data the grader can compare "
                    "(arrays, numbers, strings, bytes, lists, tuples and dicts of them are)")


def _jsonable(state: Any) -> Any:
    if isinstance(state, dict):
        return {k: _jsonable(v) for k, v in state.items()}
    if isinstance(state, np.ndarray):
        return {"uint_array": state.tolist(), "dtype": str(state.dtype)}
    if isinstance(state, np.integer):
        return int(state)
    return state


def _unjson(state: Any) -> Any:
    if isinstance(state, dict):
        if "uint_array" in state:
            return np.array(state["uint_array"], dtype=state["dtype"])
        return {k: _unjson(v) for k, v in state.items()}
    return state


class Opaque:
    """Stands for a value that was sent to the sandbox pickled and is not sent back."""


def decode(tree: Any, arrays: Any, trusted: bool = False) -> Any:
    """The value of a tree from ``encode``; ``{"pickle"}`` nodes only when ``trusted`` (the grader sent them)."""
    if tree is None or isinstance(tree, (bool, int, float, str)):
        return tree
    if not isinstance(tree, dict) or len(tree) not in (1, 2):
        raise ValueError("malformed result from the sandbox")
    if "array" in tree:
        arr = arrays[tree["array"]]
        return arr[()] if tree.get("scalar") else arr
    if "float" in tree:
        return float(tree["float"])
    if "bytes" in tree:
        return base64.b64decode(tree["bytes"])
    if "generator" in tree:
        bit_generator = getattr(np.random, tree["generator"])()
        bit_generator.state = _unjson(tree["state"])
        return np.random.Generator(bit_generator)
    if "list" in tree:
        return [decode(x, arrays, trusted) for x in tree["list"]]
    if "tuple" in tree:
        return tuple(decode(x, arrays, trusted) for x in tree["tuple"])
    if "dict" in tree:
        return {k: decode(v, arrays, trusted) for k, v in tree["dict"].items()}
    if "opaque" in tree:
        return Opaque()
    if "pickle" in tree and trusted:
        import pickle

        return pickle.loads(base64.b64decode(tree["pickle"]))  # noqa: S301  (sent by the grader)
    raise ValueError("malformed result from the sandbox")


def pack(obj: Any, other: str = "refuse") -> bytes:
    """``obj`` as the bytes of one ``.npz`` archive: its arrays, plus the JSON tree under ``__tree__``."""
    arrays: dict[str, np.ndarray] = {}
    tree = encode(obj, arrays, other)
    arrays["__tree__"] = np.frombuffer(json.dumps(tree).encode(), dtype=np.uint8)
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return buf.getvalue()


def unpack(data: bytes, trusted: bool = False) -> Any:
    """The inverse of ``pack``. Unpickles nothing unless ``trusted`` (the sandbox reading the grader's request)."""
    with np.load(io.BytesIO(data), allow_pickle=False) as archive:
        arrays = {k: archive[k] for k in archive.files}
    return decode(json.loads(arrays.pop("__tree__").tobytes()), arrays, trusted)


def copy_back(sent: Any, returned: Any) -> None:
    """Write arrays the call modified back into the grader's own arrays (same shape and dtype only)."""
    if isinstance(returned, Opaque):
        return
    if isinstance(sent, np.ndarray) and isinstance(returned, np.ndarray):
        if sent.shape == returned.shape and sent.dtype == returned.dtype and sent.flags.writeable:
            np.copyto(sent, returned)
    elif isinstance(sent, np.random.Generator) and isinstance(returned, np.random.Generator):
        sent.bit_generator.state = returned.bit_generator.state
    elif isinstance(sent, (list, tuple)) and isinstance(returned, (list, tuple)) and len(sent) == len(returned):
        for s, r in zip(sent, returned):
            copy_back(s, r)
        if isinstance(sent, list):  # a list the function changed in place (entries replaced)
            sent[:] = [s if isinstance(s, (np.ndarray, np.random.Generator)) or isinstance(r, Opaque) else r
                       for s, r in zip(sent, returned)]
    elif isinstance(sent, dict) and isinstance(returned, dict):
        for k in list(returned):
            if k in sent:
                copy_back(sent[k], returned[k])
                if not isinstance(sent[k], (np.ndarray, np.random.Generator)) and not isinstance(returned[k], Opaque):
                    sent[k] = returned[k]
            else:
                sent[k] = returned[k]
        for k in [k for k in sent if k not in returned]:
            del sent[k]


# ------------------------------------------------------------------------------------------ kernel side

#: Defined once in the sandboxed kernel, before any learner code; ``{marker}`` prefixes the answer line.
KERNEL_HELPER = r'''
def __tinyqnn_call__(name, request_path, answer_path):
    import warnings as _w
    import numpy as _np
    from tinyqnn.course import remote as _remote
    with open(request_path, "rb") as f:
        args, kwargs, errstate, standins = _remote.unpack(f.read(), trusted=True)
    if standins:  # the test's known-correct helpers, in place of the learner's own during this call
        import cloudpickle as _cp
        standins = _cp.loads(standins)
    saved = {k: globals().get(k) for k in standins or {}}
    globals().update(standins or {})
    fn = globals().get(name)
    out = {}
    with _w.catch_warnings(record=True) as caught:
        _w.simplefilter("always")
        try:
            if fn is None:
                raise NameError(f"name {name!r} is not defined (did its cell run without an error?)")
            with _np.errstate(**errstate):
                out["result"] = fn(*args, **kwargs)
        except BaseException as err:  # reported to the grader, which raises it in the test
            out["raised"] = [type(err).__name__, str(err)[:2000]]
        finally:
            for k, v in saved.items():
                if v is None:
                    globals().pop(k, None)
                else:
                    globals()[k] = v
    out["warnings"] = [[type(c.message).__name__, str(c.message)[:500]] for c in caught]
    try:
        _remote.pack(out)
    except TypeError as err:
        out = {"raised": ["TypeError", f"{name} returned something the grader cannot compare: {err}"],
               "warnings": out["warnings"]}
    data = _remote.pack({"out": out, "args": args, "kwargs": kwargs}, "opaque")  # out is data: checked above
    with open(answer_path, "wb") as f:
        f.write(data)
'''


class RemoteError(Exception):
    """Stands for an exception type the grader does not have under that name."""


def _exception(name: str, message: str) -> BaseException:
    cls = getattr(builtins, name, None)
    if isinstance(cls, type) and issubclass(cls, Exception):
        try:
            return cls(message)
        except Exception:
            pass
    if name in ("FloatingPointError", "AxisError"):
        return FloatingPointError(message)
    return RemoteError(f"{name}: {message}")


class RemoteFunction:
    """The learner's function ``name`` in the sandbox, callable from grader-side test code."""

    def __init__(self, box: Any, name: str, namespace: dict | None = None, names: tuple[str, ...] = ()):
        self.box, self.__name__ = box, name
        self.namespace, self.names = namespace, names  # the grader's namespace and all learner names

    def _standins(self) -> bytes | None:
        """Learner names the test has rebound to its own known-correct helpers (grading independence: a test
        that swaps in correct helpers for the learner's other functions); they travel by value (cloudpickle)."""
        if self.namespace is None:
            return None
        swapped = {n: self.namespace[n] for n in self.names
                   if n != self.__name__ and callable(self.namespace.get(n))
                   and not isinstance(self.namespace[n], RemoteFunction)}
        if not swapped:
            return None
        try:
            import cloudpickle
        except ImportError:
            raise RuntimeError("this test swaps in its own helpers, which travel to the sandbox with cloudpickle: "
                               "install it (pip install cloudpickle)") from None
        return cloudpickle.dumps(swapped)

    def __repr__(self) -> str:
        return f"<your function {self.__name__}, run in the grading sandbox>"

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        request = pack((list(args), kwargs, {k: v for k, v in np.geterr().items()}, self._standins()), "pickle")
        reply = self.box.request({"op": "call", "name": self.__name__, "payload": base64.b64encode(request).decode()},
                                 f"calling {self.__name__}")
        if not reply.get("payload"):
            errors = [f"{o.get('ename')}: {o.get('evalue')}" for o in reply["outputs"]
                      if o.get("output_type") == "error"]
            raise RuntimeError(f"calling your {self.__name__} gave no result"
                               + (f" ({errors[0]})" if errors else " (was the grading helper overwritten?)"))
        try:
            answer = unpack(base64.b64decode(reply["payload"]))
        except (ValueError, KeyError, TypeError, OSError) as err:
            raise RuntimeError(f"the answer of your {self.__name__} could not be read as data ({err})") from None
        out = answer["out"]
        if answer.get("args") is not None:
            copy_back(list(args), answer["args"])
            copy_back(kwargs, answer["kwargs"])
        for category, message in out.get("warnings", []):
            cls = getattr(builtins, category, None)
            warnings.warn(message, cls if isinstance(cls, type) and issubclass(cls, Warning) else UserWarning,
                          stacklevel=2)
        if "raised" in out:
            raise _exception(*out["raised"])
        return out["result"]
