"""Calling a learner's functions, classes and objects inside the sandbox from the grader; data comes back.

The sandboxed kernel runs a small server (``Kernel``) while a grader-side test cell runs; the grader reaches it
through the sandbox worker, which relays each message over one loopback socket (no kernel round trip per call).

Grader -> sandbox (the sandbox may unpickle what the grader sends, never the reverse): a request is a JSON
tree plus an ``.npz`` archive for arrays; any other value travels pickled, with two exceptions resolved by
persistent ids: a ``RemoteObject`` stands for the sandbox object it proxies; a function the test defined (module
``__grader__``), or a class it defined, travels by value (cloudpickle: it runs in the sandbox, so a large array
it is called on does not travel), unless it reads a list, dict or set of the test (it records its calls there:
it is called back, so the test sees them); a stand-in helper the test binds to a learner's name stays in the grader and the sandbox gets a stub
that calls it back (so it behaves exactly as in the grader, ``id`` and all; its arguments come back as data or
handles).

Sandbox -> grader: DATA ONLY (JSON for lists, tuples, dicts with string keys, None, bool, int, float, str,
bytes; an ``.npz`` archive, ``allow_pickle=False``, for arrays and NumPy scalars, dtype kept). Any other result
(a Value node, a model, a learner's class instance) stays in the sandbox, in the kernel's registry, and comes
back as a handle that the grader wraps in a ``RemoteObject``: attribute reads, method calls, ``__call__``,
indexing, ``len``, iteration and arithmetic are forwarded and answer again with data or handles. The same
sandbox object always comes back as the same proxy, so ``is`` and ``id`` work across calls. Equality and
hashing of a proxy are identity in the grader: a learner's ``__eq__`` never decides a verdict, and nothing
the sandbox sends is unpickled or evaluated.

The input arrays come back too, so a test can see whether the function modified them. ``np.errstate`` of the
grader is applied around each call, and warnings the call emits are re-emitted in the grader (a warning in a
test cell costs the task, as nbgrader's "anything on stderr" rule says). ``RemoteFunction.map`` runs many
argument sets in one round trip.
"""
from __future__ import annotations

import base64
import builtins
import io
import json
import operator
import pickle
import socket
import struct
import time
import warnings
from typing import Any, Iterator

import numpy as np

#: iteration over a sandbox object is materialized in the sandbox, up to this many items
MAX_ITEMS = 1_000_000
#: the binary operators a proxy forwards (``a + b`` with a or b a learner's object)
BINARY = ("add", "sub", "mul", "truediv", "floordiv", "mod", "pow", "matmul")
UNARY = ("neg", "pos", "abs", "invert")


def encode(obj: Any, arrays: dict[str, np.ndarray], other: str = "refuse", hook: Any = None) -> Any:
    """A JSON tree for ``obj``; arrays and NumPy scalars go into ``arrays`` (referenced by key).

    other: what to do with a value that is not data: "refuse" (TypeError), "pickle" (requests from the
        grader to the sandbox, e.g. a model the test built: the sandbox may unpickle what the grader sends,
        never the reverse; ``hook`` is then the pickler class) or "opaque" (a placeholder).
    hook: for "refuse"/"opaque", a function tried first on a value that is not data: a tree node or None
        (the kernel's registry: a handle for an object that stays in the sandbox).
    """
    if obj is None or isinstance(obj, (bool, str)):
        return obj
    if isinstance(obj, (int, float)) and not isinstance(obj, np.generic):
        if isinstance(obj, float) and not np.isfinite(obj):
            return {"float": repr(float(obj))}
        return int(obj) if isinstance(obj, int) else float(obj)
    if isinstance(obj, (np.ndarray, np.generic)) and type(obj).__module__ == "numpy":
        key = f"a{len(arrays)}"
        arr = np.asarray(obj)
        if arr.dtype.hasobject:
            raise TypeError("an object array is not data the grader can compare")
        arrays[key] = arr
        return {"array": key, "scalar": isinstance(obj, np.generic)}
    if isinstance(obj, (bytes, bytearray)):
        return {"bytes": base64.b64encode(bytes(obj)).decode()}
    if type(obj) is np.dtype or isinstance(obj, np.dtype) and type(obj).__module__.startswith("numpy"):
        if obj.kind not in DATA_KINDS or obj.hasobject or obj.fields is not None or obj.subdtype is not None:
            raise TypeError(f"dtype {obj} is not data the grader can compare")
        return {"dtype": obj.str}
    if isinstance(obj, np.random.Generator):
        return {"generator": type(obj.bit_generator).__name__, "state": _jsonable(obj.bit_generator.state)}
    if type(obj) in (list, tuple):
        return {"list" if isinstance(obj, list) else "tuple": [encode(x, arrays, other, hook) for x in obj]}
    if type(obj) is dict and all(type(k) is str for k in obj):
        return {"dict": {k: encode(v, arrays, other, hook) for k, v in obj.items()}}
    if other == "pickle":
        buf = io.BytesIO()
        (hook or pickle.Pickler)(buf).dump(obj)
        return {"pickle": base64.b64encode(buf.getvalue()).decode()}
    node = hook(obj) if hook is not None else None
    if node is not None:
        return node
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


def decode(tree: Any, arrays: Any, trusted: Any = False, hook: Any = None) -> Any:
    """The value of a tree from ``encode``.

    trusted: False for anything from the sandbox: ``{"pickle"}`` nodes are refused. In the sandbox, reading
        the grader's request: True, or an unpickler class (it resolves handles and callbacks).
    hook: the grader's: turns a ``{"handle"}`` node into a proxy (nodes the hook does not know are malformed).
    """
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
    if "dtype" in tree:
        return _data_dtype(tree["dtype"])
    if "generator" in tree:
        bit_generator = getattr(np.random, tree["generator"])()
        bit_generator.state = _unjson(tree["state"])
        return np.random.Generator(bit_generator)
    if "list" in tree:
        return [decode(x, arrays, trusted, hook) for x in tree["list"]]
    if "tuple" in tree:
        return tuple(decode(x, arrays, trusted, hook) for x in tree["tuple"])
    if "dict" in tree:
        return {k: decode(v, arrays, trusted, hook) for k, v in tree["dict"].items()}
    if "opaque" in tree:
        return Opaque()
    if "handle" in tree and hook is not None:
        return hook(tree)
    if "pickle" in tree and trusted:
        data = io.BytesIO(base64.b64decode(tree["pickle"]))
        return (pickle.Unpickler if trusted is True else trusted)(data).load()  # noqa: S301  (from the grader)
    raise ValueError("malformed result from the sandbox")


def pack(obj: Any, other: str = "refuse", hook: Any = None) -> bytes:
    """``obj`` as bytes: a JSON header (the tree, and each array's dtype, shape and place) then the arrays' raw
    bytes, one after another (one buffer: no archive member per array, so a thousand small results are cheap)."""
    arrays: dict[str, np.ndarray] = {}
    return bundle(encode(obj, arrays, other, hook), arrays)


def bundle(tree: Any, arrays: dict[str, np.ndarray]) -> bytes:
    meta, blobs, offset = [], [], 0
    for key, arr in arrays.items():
        data = np.ascontiguousarray(arr).tobytes()
        meta.append([key, arr.dtype.str, list(arr.shape), offset, len(data)])
        blobs.append(data)
        offset += len(data)
    header = json.dumps({"tree": tree, "arrays": meta}).encode()
    return struct.pack("!Q", len(header)) + header + b"".join(blobs)


#: dtype kinds an array from the sandbox may have: numbers, booleans, strings, bytes, dates (never objects)
DATA_KINDS = "biufcSUmM"


def unpack(data: bytes, trusted: Any = False, hook: Any = None) -> Any:
    """The inverse of ``pack``. Unpickles nothing unless ``trusted`` (the sandbox reading the grader's request);
    arrays are rebuilt from raw bytes and a dtype checked to be plain data (no object, no structured dtype)."""
    if len(data) < 8:
        raise ValueError("malformed result from the sandbox")
    size = struct.unpack("!Q", data[:8])[0]
    header = json.loads(data[8:8 + size])
    body = memoryview(data)[8 + size:]
    arrays = {}
    for key, dtype, shape, offset, nbytes in header["arrays"]:
        dt = _data_dtype(dtype)
        shape = tuple(int(n) for n in shape)
        if nbytes != int(np.prod(shape, dtype=np.int64)) * dt.itemsize or offset < 0 or offset + nbytes > len(body):
            raise ValueError("malformed result from the sandbox (array size)")
        arr = np.frombuffer(body[offset:offset + nbytes], dtype=dt) if nbytes else np.empty(0, dt)
        arrays[key] = arr.reshape(shape).copy()
    return decode(header["tree"], arrays, trusted, hook)


def _data_dtype(text: Any) -> np.dtype:
    """The dtype named by ``text`` if it is plain data (numbers, booleans, strings, bytes, dates)."""
    try:
        dt = np.dtype(str(text))
    except TypeError:
        raise ValueError(f"malformed result from the sandbox (dtype {text!r})") from None
    if dt.kind not in DATA_KINDS or dt.hasobject or dt.fields is not None or dt.subdtype is not None:
        raise ValueError(f"malformed result from the sandbox (dtype {text!r} is not data)")
    return dt


def copy_back(sent: Any, returned: Any) -> None:
    """Write arrays the call modified back into the grader's own arrays (same shape and dtype only)."""
    if isinstance(returned, Opaque) or isinstance(sent, RemoteObject):
        return
    if type(sent) is np.ndarray and isinstance(returned, np.ndarray):
        if sent.shape == returned.shape and sent.dtype == returned.dtype and sent.flags.writeable:
            np.copyto(sent, returned)
    elif isinstance(sent, np.random.Generator) and isinstance(returned, np.random.Generator):
        sent.bit_generator.state = returned.bit_generator.state
    elif type(sent) in (list, tuple) and isinstance(returned, (list, tuple)) and len(sent) == len(returned):
        for s, r in zip(sent, returned):
            copy_back(s, r)
        if type(sent) is list:  # a list the function changed in place (entries replaced)
            sent[:] = [s if _keep(s, r) else r for s, r in zip(sent, returned)]
    elif type(sent) is dict and isinstance(returned, dict):
        for k in list(returned):
            if k in sent:
                copy_back(sent[k], returned[k])
                if not _keep(sent[k], returned[k]):
                    sent[k] = returned[k]
            else:
                sent[k] = returned[k]
        for k in [k for k in sent if k not in returned]:
            del sent[k]


def _keep(sent: Any, returned: Any) -> bool:
    return isinstance(sent, (np.ndarray, np.random.Generator)) or isinstance(returned, Opaque)


def _frame(data: bytes) -> bytes:
    return struct.pack("!Q", len(data)) + data


def read_frame(sock: socket.socket) -> bytes | None:
    """One length-prefixed message, or None at the end of the stream."""
    head = _read_exactly(sock, 8)
    return None if head is None else _read_exactly(sock, struct.unpack("!Q", head)[0])


def _read_exactly(sock: socket.socket, n: int) -> bytes | None:
    chunks, left = [], n
    while left:
        chunk = sock.recv(min(left, 1 << 20))
        if not chunk:
            return None
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


def send_frame(sock: socket.socket, data: bytes) -> None:
    sock.sendall(_frame(data))


# ------------------------------------------------------------------------------------------ kernel side

#: Run once in the sandboxed kernel, before any learner code (the worker appends the connect call).
KERNEL_HELPER = r'''
def __tinyqnn_connect__(port, token):
    from tinyqnn.course import remote as _remote
    globals()["__tinyqnn_kernel__"] = _remote.Kernel(globals(), port, token)
'''
#: The cell the worker runs while a grader-side test cell talks to the kernel.
SERVE = "__tinyqnn_kernel__.serve()"


class Kernel:
    """The sandbox end: serves the grader's requests on the worker's socket, one at a time, in the kernel's
    main thread (so an interrupt reaches a runaway learner function as it would reach a cell)."""

    def __init__(self, namespace: dict, port: int, token: str):
        self.namespace = namespace
        self.sock = socket.create_connection(("127.0.0.1", port))
        self.sock.sendall(token.encode())
        self.objects: dict[int, Any] = {}     # handle -> object (kept alive, so ids stay unique)
        self.handles: dict[int, int] = {}     # id(object) -> handle
        self.serving = False
        kernel = self

        class Unpickler(pickle.Unpickler):
            def persistent_load(self, pid: Any) -> Any:
                kind, key = pid
                if kind == "ref":
                    return kernel.objects[key]
                if kind == "callback":
                    return kernel.stub(key)
                if kind == "name":
                    return kernel.namespace[key]
                if kind == "value":  # a function of the test, by value (cloudpickle), maybe holding handles
                    return Unpickler(io.BytesIO(key)).load()
                raise pickle.UnpicklingError(f"unknown persistent id {kind!r}")

        self.unpickler = Unpickler

    # handles
    def register(self, obj: Any) -> dict:
        hid = self.handles.get(id(obj))
        if hid is None or self.objects.get(hid) is not obj:
            hid = len(self.objects) + 1
            self.objects[hid], self.handles[id(obj)] = obj, hid
        return {"handle": hid, "type": _type_name(obj)}

    def known(self, obj: Any) -> dict | None:
        hid = self.handles.get(id(obj))
        return {"handle": hid, "type": _type_name(obj)} if hid and self.objects[hid] is obj else None

    def stub(self, key: int) -> Any:
        kernel = self

        def grader_function(*args: Any, **kwargs: Any) -> Any:
            return kernel.call_back(key, args, kwargs)

        grader_function.__name__ = grader_function.__qualname__ = f"grader_function_{key}"
        return grader_function

    # messages
    def receive(self) -> Any:
        data = read_frame(self.sock)
        if data is None:
            raise EOFError("the grader closed the connection")
        return unpack(data, trusted=self.unpickler)

    def serve(self) -> None:
        """Answer requests until the worker says the test cell is over."""
        self.serving = True
        try:
            while True:
                message = self.receive()
                if message.get("op") == "end":
                    return
                send_frame(self.sock, self.safe_answer(message))
        finally:
            self.serving = False

    def call_back(self, key: int, args: tuple, kwargs: dict) -> Any:
        """Call the grader's function ``key``; requests that arrive meanwhile (the function calls the learner's
        code again) are answered first."""
        if not self.serving:
            raise RuntimeError("a function the grader passed can only be called while the grader's call runs")
        send_frame(self.sock, pack({"kind": "callback", "key": key, "args": list(args), "kwargs": kwargs},
                                   hook=self.register))
        while True:
            message = self.receive()
            if message.get("op") == "answer":
                if "raised" in message:
                    raise _exception(*message["raised"])
                return message["result"]
            send_frame(self.sock, self.safe_answer(message))

    def safe_answer(self, message: dict) -> bytes:
        """An answer, whatever happens: a broken answer is reported at once, not after the cell limit."""
        try:
            return self.answer(message)
        except BaseException as err:
            return pack({"kind": "result", "out": {"raised": [type(err).__name__, str(err)[:2000]], "warnings": []}})

    def answer(self, message: dict) -> bytes:
        import warnings as _w

        standins = message.get("standins") or {}
        saved = {k: self.namespace.get(k, _MISSING) for k in standins}
        self.namespace.update(standins)
        out: dict[str, Any] = {}
        with _w.catch_warnings(record=True) as caught:
            _w.simplefilter("always")
            try:
                with np.errstate(**(message.get("errstate") or {})):
                    if message["op"] == "map":
                        out["result"] = [self.run({**message, "op": "call", "args": a, "kwargs": k})
                                         for a, k in message["items"]]
                    else:
                        out["result"] = self.run(message)
            except BaseException as err:  # reported to the grader, which raises it in the test
                out = {"raised": [type(err).__name__, str(err)[:2000]]}
            finally:
                for k, v in saved.items():
                    if v is _MISSING:
                        self.namespace.pop(k, None)
                    else:
                        self.namespace[k] = v
        out["warnings"] = [[type(c.message).__name__, str(c.message)[:500]] for c in caught]
        arrays: dict[str, np.ndarray] = {}
        try:
            tree = {"kind": "result", "out": encode(out, arrays, hook=self.register)}
        except TypeError as err:  # an object array: not data, and not a handle either
            arrays = {}
            tree = {"kind": "result", "out": encode(
                {"raised": ["TypeError", f"the answer is not something the grader can compare: {err}"],
                 "warnings": out["warnings"]}, arrays)}
        if message["op"] == "call":  # the arguments as they are now: a test sees whether they were modified
            tree["args"] = encode(message.get("args", []), arrays, "opaque", self.known)
            tree["kwargs"] = encode(message.get("kwargs", {}), arrays, "opaque", self.known)
        return bundle({"dict": tree}, arrays)  # a dict of trees already: encode() would wrap it again

    def run(self, message: dict) -> Any:
        op, target = message["op"], message.get("target")
        if isinstance(target, str):
            if target not in self.namespace:
                raise NameError(f"name {target!r} is not defined (did its cell run without an error?)")
            target = self.namespace[target]
        args, kwargs = message.get("args", []), message.get("kwargs", {})
        if op == "call":
            fn = getattr(target, message["attr"]) if message.get("attr") else target
            return fn(*args, **kwargs)
        if op == "getattr":
            return getattr(target, message["name"])
        if op == "setattr":
            setattr(target, message["name"], args[0])
            return None
        if op == "getitem":
            return target[args[0]]
        if op == "setitem":
            target[args[0]] = args[1]
            return None
        if op == "len":
            return len(target)
        if op == "next":
            return next(target)
        if op == "bool":
            return bool(target)
        if op in ("repr", "str", "float", "int", "index"):
            value = {"repr": repr, "str": str, "float": float, "int": int, "index": operator.index}[op](target)
            return {"repr": str, "str": str, "float": float, "int": int, "index": int}[op](value)
        if op == "array":
            return np.array(np.asarray(target))  # a plain ndarray (a subclass is not data)
        if op == "iter":
            items = []
            for item in target:
                if len(items) == MAX_ITEMS:
                    raise ValueError(f"iterating gave more than {MAX_ITEMS} items")
                items.append(item)
            return items
        if op == "isinstance":
            return isinstance(args[0], target)
        if op == "binary":
            name = message["name"]
            if name not in BINARY and name not in UNARY:
                raise ValueError(f"operator {name!r} is not forwarded")
            return getattr(operator, name)(*args)
        raise ValueError(f"unknown request {op!r}")


_MISSING = object()


def _type_name(obj: Any) -> str:
    return f"{type(obj).__module__}:{type(obj).__qualname__}"


# ------------------------------------------------------------------------------------------ grader side

def _keeps_grader_state(fn: Any) -> bool:
    """Whether a test's function reads a list, dict or set of the grader (global or closed over): a copy sent by
    value would record into the sandbox's copy, so such a function stays in the grader and is called back."""
    return any(isinstance(v, (list, dict, set, bytearray)) for v in _referenced_values(fn))


def channel_used_by(fn: Any) -> "Channel | None":
    """The channel of the first learner's name (a ``RemoteObject``) that the test's function ``fn`` reads, or None
    (``fn`` calls no learner code in a sandbox: it runs where it is)."""
    for value in _referenced_values(fn):
        if isinstance(value, RemoteObject):
            return object.__getattribute__(value, "_channel")
    return None


def _referenced_values(fn: Any) -> list:
    """The globals ``fn`` (and functions nested in it) reads by name, and the values it closes over."""
    code = getattr(fn, "__code__", None)
    if code is None:
        return []
    names, stack = set(), [code]
    while stack:
        c = stack.pop()
        names |= set(c.co_names)
        stack += [k for k in c.co_consts if isinstance(k, type(code))]
    g = getattr(fn, "__globals__", {})
    values = [g[n] for n in names if n in g]
    for cell in getattr(fn, "__closure__", None) or ():
        try:
            values.append(cell.cell_contents)
        except ValueError:  # an empty cell
            pass
    return values


class RemoteError(Exception):
    """Stands for an exception type the grader does not have under that name."""


class RemoteTimeout(Exception):
    """A call into the sandbox ran past the cell time limit (the kernel was interrupted)."""


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


class Channel:
    """The grader end for one sandbox: proxies by handle, the test's functions by key, and the round trips."""

    def __init__(self, box: Any, namespace: dict | None = None, names: tuple[str, ...] = ()):
        self.box, self.namespace, self.names = box, namespace, tuple(names)
        self.proxies: dict[int, RemoteObject] = {}
        self.functions: dict[int, Any] = {}
        self._keys: dict[int, int] = {}
        self.grader_module = (namespace or {}).get("__name__", "__grader__")
        self.cell_deadline: float | None = None  # monotonic time the running test cell's calls must end by
        channel = self

        class Pickler(pickle.Pickler):
            def persistent_id(self, obj: Any) -> Any:
                return channel.persistent_id(obj)

        self.pickler = Pickler

    def persistent_id(self, obj: Any, inside: Any = None) -> Any:
        """How an object of a request travels: a proxy as its handle (or the learner's name), a stand-in helper
        as a call-back, a function or class the test defined by value (cloudpickle; it runs in the sandbox, on
        what the learner's code passes it) unless it keeps state in the test or cannot be pickled (then as a
        call-back); anything else pickled."""
        if isinstance(obj, RemoteObject):
            target = object.__getattribute__(obj, "_target")
            if not isinstance(target, dict):
                return ("name", target)  # a learner's name: each sandbox has its own
            if object.__getattribute__(obj, "_channel") is not self:  # a handle means nothing in another kernel
                raise ValueError(f"{obj!r} lives in the other grading sandbox (a sealed function's, see "
                                 "metadata.tinyqnn.sealed): pass data to a sealed function, not an object")
            return ("ref", target["ref"])
        if isinstance(obj, _GraderSide):
            return ("callback", self.key(obj.fn))
        if (obj is not inside and inside is None and callable(obj)
                and getattr(obj, "__module__", None) == self.grader_module):
            if _keeps_grader_state(obj):  # it records its calls in the test's list/dict: the test must see them
                return ("callback", self.key(obj))
            try:
                return ("value", self.by_value(obj))
            except Exception:  # noqa: BLE001  (a lock, a generator...: it runs here instead)
                return ("callback", self.key(obj))
        return None

    def by_value(self, fn: Any) -> bytes:
        import cloudpickle

        channel = self

        class ValuePickler(cloudpickle.CloudPickler):
            def persistent_id(self, obj: Any) -> Any:
                return channel.persistent_id(obj, inside=fn)

        buf = io.BytesIO()
        ValuePickler(buf).dump(fn)
        return buf.getvalue()

    def key(self, fn: Any) -> int:
        if id(fn) not in self._keys or self.functions[self._keys[id(fn)]] is not fn:
            self._keys[id(fn)] = len(self.functions) + 1
            self.functions[self._keys[id(fn)]] = fn
        return self._keys[id(fn)]

    def proxy(self, node: dict) -> "RemoteObject":
        hid = node["handle"]
        if not isinstance(hid, int) or not isinstance(node.get("type"), str):
            raise ValueError("malformed handle from the sandbox")
        if hid not in self.proxies:
            self.proxies[hid] = RemoteObject(self, {"ref": hid}, node["type"][:200])
        return self.proxies[hid]

    def standins(self, calling: str | None) -> dict:
        """Learner names the test has rebound to its own known-correct helpers (grading independence): during
        the call the sandbox's names call back the test's helpers, which run here. A class travels as a class
        (by value if the test defined it): the learner's code uses its attributes (``KnownSTE.apply``), which a
        call-back stub does not have."""
        if self.namespace is None:
            return {}
        return {n: (v if isinstance(v, type) else _GraderSide(v)) for n in self.names
                if n != calling and callable(v := self.namespace.get(n)) and not isinstance(v, RemoteObject)}

    def request(self, message: dict, what: str) -> Any:
        """Send one request; answer the sandbox's calls of the test's functions meanwhile; return the result
        (raising the learner's exception, re-emitting its warnings)."""
        message = {**message, "errstate": dict(np.geterr()),
                   "standins": self.standins(message.get("target") if isinstance(message.get("target"), str)
                                             else None)}
        payload = pack(message, "pickle", self.pickler)
        while True:
            answer = self._round_trip(payload, what)
            if answer.get("kind") == "callback":
                payload = self._call_back(answer)
                continue
            break
        out = answer["out"]
        if "args" in answer and message["op"] == "call":
            copy_back(list(message.get("args", [])), answer["args"])
            copy_back(message.get("kwargs", {}), answer["kwargs"])
        for category, text in out.get("warnings", []):
            cls = getattr(builtins, category, None)
            warnings.warn(text, cls if isinstance(cls, type) and issubclass(cls, Warning) else UserWarning,
                          stacklevel=3)
        if "raised" in out:
            raise _exception(*out["raised"])
        return out["result"]

    def _round_trip(self, payload: bytes, what: str) -> dict:
        seconds = None
        if self.cell_deadline is not None:  # the cell limit bounds a whole test cell, as nbgrader's does
            seconds = self.cell_deadline - time.monotonic()
            if seconds <= 0:
                raise RemoteTimeout(f"{what}: the test cell ran past the {self.box.limits.cell_seconds} s cell limit")
        reply = self.box.request({"op": "rpc", "payload": base64.b64encode(payload).decode()}, what, seconds)
        if reply.get("timed_out"):
            raise RemoteTimeout(f"{what} ran past the {self.box.limits.cell_seconds} s cell limit")
        if not reply.get("payload"):
            raise RuntimeError(f"{what} gave no result ({reply.get('why') or 'was the grading helper overwritten?'})")
        try:
            answer = unpack(base64.b64decode(reply["payload"]), hook=self.proxy)
            if not isinstance(answer, dict) or answer.get("kind") not in ("result", "callback"):
                raise ValueError("not an answer")
            if answer["kind"] == "result" and not isinstance(answer.get("out"), dict):
                raise ValueError("not an answer")
        except (ValueError, KeyError, TypeError, OSError) as err:
            raise RuntimeError(f"the answer to {what} could not be read as data ({err})") from None
        return answer

    def run(self, fn: Any, *args: Any) -> Any:
        """``fn(*args)`` in the sandbox, in one round trip (a function of the test travels by value, tinyqnn's by
        name; the learner's names in ``args`` are theirs there); the result comes back as data or proxies. For
        grader-side helpers that call the learner's code many times (``tinyqnn.course.gradients``)."""
        what = f"{getattr(fn, '__name__', 'a function')} in the grading sandbox"
        return self.request({"op": "map", "target": fn, "items": [(list(args), {})]}, what)[0]

    def _call_back(self, request: dict) -> bytes:
        fn = self.functions.get(request.get("key"))
        try:
            if fn is None:
                raise RuntimeError("the sandbox called a grader function that does not exist")
            answer = {"op": "answer", "result": fn(*request.get("args", []), **request.get("kwargs", {}))}
        except Exception as err:  # the learner's code sees it raised by the function it called
            answer = {"op": "answer", "raised": [type(err).__name__, str(err)[:2000]]}
        return pack(answer, "pickle", self.pickler)


class _GraderSide:
    """Marks a function that must run in the grader even if it could be pickled (a test's stand-in helper)."""

    def __init__(self, fn: Any):
        self.fn = fn


def channel(box: Any, namespace: dict | None = None, names: tuple[str, ...] = ()) -> Channel:
    """The box's channel (one per sandbox, so a handle means the same proxy in every test cell)."""
    ch = getattr(box, "_tinyqnn_channel", None)
    if ch is None:
        ch = Channel(box, namespace, names)
        box._tinyqnn_channel = ch
    elif namespace is not None:
        ch.namespace, ch.names = namespace, tuple(names)
        ch.grader_module = namespace.get("__name__", "__grader__")
    return ch


def install(box: Any) -> None:
    """Start the kernel side (before any learner code runs) and connect it to the worker."""
    end = base64.b64encode(pack({"op": "end"})).decode()
    reply = box.request({"op": "rpc_setup", "code": KERNEL_HELPER, "serve": SERVE, "end": end},
                        "starting the grading helper")
    if not reply.get("connected"):
        raise RuntimeError(f"the grading helper failed in the kernel: {reply}")


class RemoteObject:
    """A learner's object that stays in the sandbox. Attribute reads, calls, indexing, ``len``, iteration and
    arithmetic are forwarded (each answer: data, or another proxy); ``==`` and ``hash`` are identity here."""

    __slots__ = ("_channel", "_target", "_type", "__weakref__")

    def __init__(self, ch: Channel, target: Any, type_name: str):
        object.__setattr__(self, "_channel", ch)
        object.__setattr__(self, "_target", target)
        object.__setattr__(self, "_type", type_name)

    def _ask(self, op: str, **fields: Any) -> Any:
        target = object.__getattribute__(self, "_target")
        what = f"{self!r}" if op == "call" else f"{op} of {self!r}"
        return object.__getattribute__(self, "_channel").request(
            {"op": op, "target": self if isinstance(target, dict) else target, **fields}, what)

    def __repr__(self) -> str:
        name = object.__getattribute__(self, "_type").rpartition(":")[2]
        return f"<your {name}, in the grading sandbox>"

    @property
    def __class__(self) -> type:  # type: ignore[override]
        """The grader's own class of the same name when the object's class is tinyqnn's, NumPy's or a builtin
        (``isinstance(model, nn.Sequential)``, ``m.__class__.__name__``); else the proxy's class. Only modules
        the grader has already imported are looked in: nothing is imported or evaluated on the sandbox's word."""
        import sys

        module, _, qualname = object.__getattribute__(self, "_type").partition(":")
        if module == "builtins" or module.split(".")[0] in ("tinyqnn", "numpy"):
            found: Any = sys.modules.get(module)
            for part in qualname.split("."):
                found = getattr(found, part, None) if part.isidentifier() and not part.startswith("__") else None
            if isinstance(found, type) and not issubclass(found, (np.ndarray, np.generic)):
                return found
        return type(self)

    def __next__(self) -> Any:
        return self._ask("next")

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__") and name.endswith("__"):
            # protocols (NumPy's __array_interface__, pickle's, copy's) are never read from the sandbox
            raise AttributeError(name)
        return self._ask("getattr", name=name)

    def __setattr__(self, name: str, value: Any) -> None:
        self._ask("setattr", name=name, args=[value])

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self._ask("call", args=list(args), kwargs=kwargs)

    def __getitem__(self, key: Any) -> Any:
        return self._ask("getitem", args=[key])

    def __setitem__(self, key: Any, value: Any) -> None:
        self._ask("setitem", args=[key, value])

    def __len__(self) -> int:
        return int(self._ask("len"))

    def __iter__(self) -> Iterator[Any]:
        return iter(self._ask("iter"))

    def __bool__(self) -> bool:
        return bool(self._ask("bool"))

    def __float__(self) -> float:
        return float(self._ask("float"))

    def __int__(self) -> int:
        return int(self._ask("int"))

    def __index__(self) -> int:
        return int(self._ask("index"))

    def __str__(self) -> str:
        return str(self._ask("str"))

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        arr = self._ask("array")
        if not isinstance(arr, np.ndarray):
            raise TypeError(f"{self!r} did not convert to an array")
        return arr if dtype is None else arr.astype(dtype)

    def __instancecheck__(self, obj: Any) -> bool:
        """``isinstance(x, LearnersClass)``: asked in the sandbox (False for anything that is not a proxy)."""
        return isinstance(obj, RemoteObject) and bool(self._ask("isinstance", args=[obj]))

    # identity, never the learner's __eq__ (which could say "equal" to anything)
    def __eq__(self, other: Any) -> bool:
        return self is other

    def __ne__(self, other: Any) -> bool:
        return self is not other

    __hash__ = object.__hash__

    def __reduce_ex__(self, protocol: Any) -> Any:
        raise TypeError(f"{self!r} stays in the sandbox: pass it as an argument, it cannot be copied here")


def _binary(name: str, reflected: bool) -> Any:
    def method(self: RemoteObject, other: Any) -> Any:
        args = [other, self] if reflected else [self, other]
        return self._ask("binary", name=name, args=args)

    method.__name__ = f"__{'r' if reflected else ''}{name}__"
    return method


def _unary(name: str) -> Any:
    def method(self: RemoteObject) -> Any:
        return self._ask("binary", name=name, args=[self])

    method.__name__ = f"__{name}__"
    return method


for _name in BINARY:
    setattr(RemoteObject, f"__{_name}__", _binary(_name, False))
    setattr(RemoteObject, f"__r{_name}__", _binary(_name, True))
for _name in UNARY:
    setattr(RemoteObject, f"__{_name}__", _unary(_name))


class RemoteFunction(RemoteObject):
    """The learner's function or class ``name`` in the sandbox, callable from grader-side test code (a class
    called gives a proxy of the new instance)."""

    __slots__ = ()

    def __init__(self, box: Any, name: str, namespace: dict | None = None, names: tuple[str, ...] = ()):
        super().__init__(channel(box, namespace, names), name, "function")

    @property
    def __name__(self) -> str:  # type: ignore[override]
        return object.__getattribute__(self, "_target")

    def __repr__(self) -> str:
        return f"<your {self.__name__}, run in the grading sandbox>"

    def map(self, argsets: Any, **kwargs: Any) -> list:
        """``[self(*args, **kwargs) for args in argsets]`` in one round trip: each item is a tuple of positional
        arguments (anything else is the one argument). The first exception is raised, as the loop would."""
        items = [(list(a) if type(a) is tuple else [a], kwargs) for a in argsets]
        return self._ask("map", items=items)
