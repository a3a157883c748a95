"""Whether a code object is tinyqnn's own: the guard of ``metadata.tinyqnn.internal_only`` functions.

While grading, a function listed there keeps its body for tinyqnn's modules and raises for everyone else
(``verdict.redacted_source``). The caller is judged by its code object (read from a traceback, not from a function
the learner could replace), and a file name proves nothing: ``compile(src, "<a path inside tinyqnn>", "exec")``
makes one up. So the code object must equal one that Python compiles from that file of the package as it is on
disk (the sandbox's copy, redactions included): the same bytecode, constants, names and line numbers. Code that
passes is tinyqnn's own code, unchanged. And it must name the guarded function: tinyqnn code that calls whatever
it is handed (the grading server calling the learner's ``f``, ``Module.__call__``, ``call_each``) would otherwise
pass on a learner's ``f = tinyqnn's_function`` or ``functools.partial`` of it as its own call.
"""
from __future__ import annotations

import os
import types
from pathlib import Path

import tinyqnn

_PACKAGE = os.path.join(os.path.dirname(os.path.abspath(tinyqnn.__file__)), "")
_KNOWN: dict[str, frozenset] = {}      # file -> the code objects compiled from it
_SEEN: dict[int, types.CodeType] = {}  # id -> a code object already found genuine (kept alive: ids stay unique)


def from_tinyqnn(code: types.CodeType, name: str | None = None) -> bool:
    """True when ``code`` is the code of a function (or module, class body) in a file of the tinyqnn package, and
    (given ``name``) it names that function itself (a global or attribute it reads), rather than calling a
    function it was handed."""
    if type(code) is not types.CodeType:
        return False
    if name is not None and name not in code.co_names:
        return False
    if _SEEN.get(id(code)) is code:
        return True
    name = code.co_filename
    if not isinstance(name, str) or not name.startswith(_PACKAGE) or not name.endswith(".py"):
        return False
    known = _KNOWN.get(name)
    if known is None:
        try:
            text = Path(name).read_text(encoding="utf-8")
            module = compile(text, name, "exec", dont_inherit=True)  # as the import system compiles it
        except (OSError, SyntaxError, ValueError, UnicodeDecodeError):
            return False
        known = _KNOWN[name] = frozenset(_all_code(module))
    if code in known:
        _SEEN[id(code)] = code
        return True
    return False


def _all_code(code: types.CodeType) -> list[types.CodeType]:
    found, stack = [], [code]
    while stack:
        c = stack.pop()
        found.append(c)
        stack += [k for k in c.co_consts if type(k) is types.CodeType]
    return found
