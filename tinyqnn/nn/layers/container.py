"""Containers: ``Sequential`` (a pipeline) and ``ModuleList`` (a registered list)."""
from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable, Iterator
from typing import Any

from ..module import Module


class _IndexedModules(Module):
    """Sub-modules registered under "0", "1", ...; indexable like a list."""

    def _index(self, idx: int) -> int:
        n = len(self._modules)
        if not isinstance(idx, int):
            raise TypeError(f"{type(self).__name__} indices must be integers or slices, got {type(idx).__name__}")
        if not -n <= idx < n:
            raise IndexError(f"index {idx} is out of range for {type(self).__name__} of length {n}")
        return idx % n

    def __len__(self) -> int:
        return len(self._modules)

    def __iter__(self) -> Iterator[Module]:
        return iter(self._modules.values())

    def __getitem__(self, idx: int | slice) -> Any:
        modules = list(self._modules.values())
        if isinstance(idx, slice):
            return type(self)(*modules[idx]) if isinstance(self, Sequential) else type(self)(modules[idx])
        return modules[self._index(idx)]

    def __setitem__(self, idx: int, module: Module) -> None:
        key = list(self._modules)[self._index(idx)]
        if not isinstance(module, Module):
            raise TypeError(f"{type(self).__name__} items must be Modules, got {type(module).__name__}")
        self._modules[key] = module  # keeps the position (add_module would move it to the end)

    def append(self, module: Module) -> _IndexedModules:
        if not isinstance(module, Module):
            raise TypeError(f"{type(self).__name__}.append expects a Module, got {type(module).__name__}")
        self.add_module(str(len(self._modules)), module)
        return self

    def extend(self, modules: Iterable[Module]) -> _IndexedModules:
        for m in modules:
            self.append(m)
        return self


class Sequential(_IndexedModules):
    """Apply modules one after another: ``Sequential(Linear(4, 8), ReLU(), Linear(8, 2))``.

    Also accepts an ``OrderedDict`` name -> module (then ``named_parameters`` uses those names).
    Shapes: whatever the first module takes -> whatever the last returns.
    """

    def __init__(self, *modules: Module | OrderedDict):
        super().__init__()
        if len(modules) == 1 and isinstance(modules[0], OrderedDict):
            for name, module in modules[0].items():
                self.add_module(name, module)
        else:
            for i, module in enumerate(modules):
                if not isinstance(module, Module):
                    raise TypeError(f"Sequential argument {i} is a {type(module).__name__}, not a Module")
                self.add_module(str(i), module)

    def forward(self, x: Any) -> Any:
        for module in self._modules.values():
            x = module(x)
        return x


class ModuleList(_IndexedModules):
    """A list of modules whose parameters are registered (a plain Python list would hide them).

    Has no forward: the owner decides how to call the items.
    """

    def __init__(self, modules: Iterable[Module] = ()):
        super().__init__()
        self.extend(modules)
