"""Which code may call a ``metadata.tinyqnn.internal_only`` function while grading: tinyqnn's own, that names it.

While grading, a function listed there keeps its body for tinyqnn's modules and raises for everyone else
(``verdict.redacted_source``). The caller is judged by its code object, read from a traceback (not from a
function the learner could replace). The code objects that may call it are computed here, in the grader, from
the package's files as the sandbox's kernel sees them (the redacted copies included): every function, method or
module body of the package that names the guarded function (a global or attribute it reads). Naming it matters:
tinyqnn code that calls whatever it is handed (the grading server calling the learner's ``f``,
``Module.__call__``) would otherwise pass on a learner's ``f = tinyqnn's_function`` or a ``functools.partial``
of it. A file name proves nothing (``compile(src, "<a path inside tinyqnn>", "exec")`` makes one up): the key is
the code itself (``key``), so learner code passes only if it is, byte for byte, code of the package.

The keys are written into the guard as a literal set: the guard then looks up no module, function or global
that a submission could replace in memory (an earlier guard called a function of this module, which one
assignment to ``callers.from_tinyqnn`` turned off).
"""
from __future__ import annotations

import types
from collections.abc import Iterable, Mapping
from pathlib import Path

Key = tuple[str, int, bytes, tuple[str, ...]]


def key(code: types.CodeType) -> Key:
    """What the guard compares: file, first line, bytecode and the names the code reads."""
    return code.co_filename, code.co_firstlineno, code.co_code, code.co_names


def callers_of(names: Iterable[str], package: Path,
               texts: Mapping[Path, str] | None = None) -> dict[str, frozenset[Key]]:
    """name -> the keys of the package's code objects that name it.

    package: the folder of the tinyqnn package (the sandbox imports it from the same path).
    texts: file -> the text the sandbox's kernel sees instead of the file's (a redacted module).
    """
    names = list(names)
    found: dict[str, set[Key]] = {name: set() for name in names}
    for path in sorted(Path(package).rglob("*.py")):
        text = (texts or {}).get(path)
        if text is None:
            text = path.read_text(encoding="utf-8")
        wanted = [name for name in names if name in text]
        if not wanted:  # a file that never spells the name has no code that reads it
            continue
        module = compile(text, str(path), "exec", dont_inherit=True)  # as the import system compiles it
        for code in _all_code(module):
            for name in wanted:
                if name in code.co_names:
                    found[name].add(key(code))
    return {name: frozenset(keys) for name, keys in found.items()}


def _all_code(code: types.CodeType) -> list[types.CodeType]:
    found, stack = [], [code]
    while stack:
        c = stack.pop()
        found.append(c)
        stack += [k for k in c.co_consts if type(k) is types.CodeType]
    return found
