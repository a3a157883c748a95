"""``Module`` and ``Parameter``: the containers every layer and model is built from.

A ``Module`` owns three ordered collections, filled simply by assigning attributes::

    self.weight = Parameter(...)        # -> _parameters  (trained by the optimizer)
    self.register_buffer("running_mean", np.zeros(C))   # -> _buffers (state, not trained)
    self.conv1 = Conv2d(...)            # -> _modules     (sub-modules, recursed into)

Everything else (``parameters()``, ``state_dict()``, ``train()``, ``repr``) walks those three
dictionaries, in the order the attributes were first assigned, the way PyTorch does.
"""
from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping
from typing import Any, NamedTuple

import numpy as np

from ..engine import Tensor


class Parameter(Tensor):
    """A Tensor that a Module registers as trainable (``requires_grad=True`` by default).

    Args:
        data: array-like or Tensor; copied. Floating NumPy arrays keep their dtype, Python
            floats and lists become float32.
        requires_grad: set False to freeze the parameter (it is still saved in ``state_dict``).
    """

    def __init__(self, data: Any, requires_grad: bool = True):
        super().__init__(data, requires_grad=requires_grad)

    def __repr__(self) -> str:
        return "Parameter containing:\n" + super().__repr__()


class IncompatibleKeys(NamedTuple):
    """What ``load_state_dict(strict=False)`` could not match."""

    missing_keys: list[str]
    unexpected_keys: list[str]


class RemovableHandle:
    """Returned by ``register_forward_hook``; ``handle.remove()`` detaches the hook."""

    def __init__(self, hooks: dict[int, Callable], key: int):
        self._hooks, self._key = hooks, key

    def remove(self) -> None:
        self._hooks.pop(self._key, None)


class Module:
    """Base class of layers and models: subclass, assign sub-modules in ``__init__``, write ``forward``.

    Example::

        class MLP(Module):
            def __init__(self):
                super().__init__()
                self.fc1 = Linear(784, 100)
                self.fc2 = Linear(100, 10)

            def forward(self, x):            # x: (N, 784) -> (N, 10)
                return self.fc2(self.fc1(x).relu())
    """

    training: bool

    def __init__(self) -> None:
        # object.__setattr__: our own __setattr__ needs these dictionaries to exist already
        object.__setattr__(self, "training", True)
        object.__setattr__(self, "_parameters", OrderedDict())
        object.__setattr__(self, "_buffers", OrderedDict())
        object.__setattr__(self, "_non_persistent", set())
        object.__setattr__(self, "_modules", OrderedDict())
        object.__setattr__(self, "_forward_hooks", OrderedDict())

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError(f"{type(self).__name__} must implement forward()")

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        output = self.forward(*args, **kwargs)
        for hook in list(self._forward_hooks.values()):
            replaced = hook(self, args, output)
            if replaced is not None:
                output = replaced
        return output

    def register_forward_hook(self, hook: Callable[[Module, tuple, Any], Any]) -> RemovableHandle:
        """Call ``hook(module, inputs, output)`` after every forward (e.g. to record activations).

        A hook that returns something other than None replaces the output.
        """
        key = max(self._forward_hooks, default=-1) + 1
        self._forward_hooks[key] = hook
        return RemovableHandle(self._forward_hooks, key)

    # ------------------------------------------------------------------ registration
    def __setattr__(self, name: str, value: Any) -> None:
        if "_parameters" not in self.__dict__:
            raise AttributeError(
                f"cannot assign {name!r} before Module.__init__() ran; call super().__init__() first in "
                f"{type(self).__name__}.__init__"
            )
        params, buffers, modules = self._parameters, self._buffers, self._modules
        if isinstance(value, Parameter):
            self._forget(name)
            params[name] = value
        elif isinstance(value, Module):
            self._forget(name)
            modules[name] = value
        elif name in params:
            if value is not None:
                raise TypeError(
                    f"cannot assign a {type(value).__name__} to parameter {name!r} of {type(self).__name__}; "
                    "wrap it in nn.Parameter, or assign to .data to change the values"
                )
            params[name] = None
        elif name in buffers:
            if value is not None and not isinstance(value, np.ndarray):
                raise TypeError(
                    f"buffer {name!r} of {type(self).__name__} must be an np.ndarray or None, got {type(value).__name__}"
                )
            buffers[name] = value
        elif name in modules:
            if value is not None:
                raise TypeError(
                    f"cannot assign a {type(value).__name__} to sub-module {name!r} of {type(self).__name__}; "
                    "assign a Module or None"
                )
            modules[name] = None
        else:
            object.__setattr__(self, name, value)

    def __getattr__(self, name: str) -> Any:
        # only called when normal lookup fails; read __dict__ directly so copy/pickle of a
        # half-built object cannot recurse
        d = self.__dict__
        for store in ("_parameters", "_buffers", "_modules"):
            if store in d and name in d[store]:
                return d[store][name]
        raise AttributeError(f"'{type(self).__name__}' object has no attribute '{name}'")

    def __delattr__(self, name: str) -> None:
        for store in (self._parameters, self._buffers, self._modules):
            if name in store:
                del store[name]
                self._non_persistent.discard(name)
                return
        object.__delattr__(self, name)

    def _forget(self, name: str) -> None:
        """Remove ``name`` from every registry and the instance dict (before re-registering it)."""
        for store in (self._parameters, self._buffers, self._modules):
            store.pop(name, None)
        self._non_persistent.discard(name)
        self.__dict__.pop(name, None)

    def __dir__(self) -> list[str]:
        return sorted(set(super().__dir__()) | set(self._parameters) | set(self._buffers) | set(self._modules))

    def register_parameter(self, name: str, param: Parameter | None) -> None:
        """Register ``param`` (or None, e.g. an absent bias) under ``name``."""
        self._check_name(name)
        if param is not None and not isinstance(param, Parameter):
            raise TypeError(f"register_parameter({name!r}) expects a Parameter or None, got {type(param).__name__}")
        self._forget(name)
        self._parameters[name] = param

    def register_buffer(self, name: str, array: np.ndarray | None, persistent: bool = True) -> None:
        """Register non-trainable state (e.g. BatchNorm's running mean).

        Args:
            name: attribute name.
            array: np.ndarray (stored as is, not copied) or None.
            persistent: include it in ``state_dict``.
        """
        self._check_name(name)
        if array is not None and not isinstance(array, np.ndarray):
            raise TypeError(f"register_buffer({name!r}) expects an np.ndarray or None, got {type(array).__name__}")
        self._forget(name)
        self._buffers[name] = array
        if not persistent:
            self._non_persistent.add(name)

    def add_module(self, name: str, module: Module | None) -> None:
        """Register a sub-module under ``name`` (names like "0", "1" are fine, as in Sequential)."""
        self._check_name(name)
        if module is not None and not isinstance(module, Module):
            raise TypeError(f"add_module({name!r}) expects a Module or None, got {type(module).__name__}")
        self._forget(name)
        self._modules[name] = module

    def _check_name(self, name: str) -> None:
        if "_parameters" not in self.__dict__:
            raise AttributeError(f"call super().__init__() in {type(self).__name__}.__init__ before registering {name!r}")
        if not isinstance(name, str) or not name or "." in name:
            raise KeyError(f"attribute name must be a non-empty string without '.', got {name!r}")

    # ------------------------------------------------------------------ traversal
    def named_modules(self, prefix: str = "", memo: set[int] | None = None) -> Iterator[tuple[str, Module]]:
        """This module and all sub-modules, depth first, with dotted names ("" for self)."""
        memo = set() if memo is None else memo
        if id(self) in memo:
            return
        memo.add(id(self))
        yield prefix, self
        for name, child in self._modules.items():
            if child is not None:
                yield from child.named_modules(f"{prefix}.{name}" if prefix else name, memo)

    def modules(self) -> Iterator[Module]:
        for _, m in self.named_modules():
            yield m

    def named_children(self) -> Iterator[tuple[str, Module]]:
        """Direct sub-modules only."""
        seen: set[int] = set()
        for name, child in self._modules.items():
            if child is not None and id(child) not in seen:
                seen.add(id(child))
                yield name, child

    def children(self) -> Iterator[Module]:
        for _, child in self.named_children():
            yield child

    def _named_members(self, store: str, prefix: str, recurse: bool) -> Iterator[tuple[str, Any]]:
        seen: set[int] = set()  # a tensor shared by two modules is reported once
        modules = self.named_modules(prefix) if recurse else [(prefix, self)]
        for module_name, module in modules:
            for name, value in getattr(module, store).items():
                if value is None or id(value) in seen:
                    continue
                seen.add(id(value))
                yield (f"{module_name}.{name}" if module_name else name), value

    def named_parameters(self, prefix: str = "", recurse: bool = True) -> Iterator[tuple[str, Parameter]]:
        """(dotted name, Parameter) pairs, e.g. ("features.0.weight", ...), in registration order."""
        return self._named_members("_parameters", prefix, recurse)

    def parameters(self, recurse: bool = True) -> Iterator[Parameter]:
        for _, p in self.named_parameters(recurse=recurse):
            yield p

    def named_buffers(self, prefix: str = "", recurse: bool = True) -> Iterator[tuple[str, np.ndarray]]:
        return self._named_members("_buffers", prefix, recurse)

    def buffers(self, recurse: bool = True) -> Iterator[np.ndarray]:
        for _, b in self.named_buffers(recurse=recurse):
            yield b

    def num_parameters(self, trainable_only: bool = False) -> int:
        """Total number of scalar parameters (optionally only those with ``requires_grad``)."""
        return sum(p.size for p in self.parameters() if p.requires_grad or not trainable_only)

    def apply(self, fn: Callable[[Module], None]) -> Module:
        """Call ``fn`` on every sub-module, then on self (e.g. custom initialisation)."""
        for child in self.children():
            child.apply(fn)
        fn(self)
        return self

    # ------------------------------------------------------------------ modes, grads, dtype
    def train(self, mode: bool = True) -> Module:
        """Training mode for self and every sub-module (affects Dropout, BatchNorm); returns self."""
        if not isinstance(mode, bool):
            raise TypeError(f"train(mode) expects a bool, got {type(mode).__name__}")
        for m in self.modules():
            object.__setattr__(m, "training", mode)
        return self

    def eval(self) -> Module:
        """Evaluation mode, same as ``train(False)``."""
        return self.train(False)

    def requires_grad_(self, flag: bool = True) -> Module:
        """Freeze (False) or unfreeze every parameter."""
        for p in self.parameters():
            p.requires_grad_(flag)
        return self

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Reset every parameter's ``.grad`` (to None, or to zeros with ``set_to_none=False``)."""
        for p in self.parameters():
            if set_to_none or p.grad is None:
                p.grad = None
            else:
                p.grad = Tensor(np.zeros_like(p.data), _copy=False)

    def to(self, dtype: Any) -> Module:
        """Convert floating parameters and buffers to ``dtype`` in place (e.g. float64 for gradcheck)."""
        dtype = np.dtype(dtype)
        if dtype.kind != "f":
            raise TypeError(f"Module.to expects a floating dtype, got {dtype}")
        for m in self.modules():
            for p in m._parameters.values():
                if p is not None and p.is_floating_point():
                    p.data = p.data.astype(dtype)
                    p.grad = None if p.grad is None else Tensor(p.grad.data.astype(dtype), _copy=False)
            for name, b in m._buffers.items():
                if b is not None and b.dtype.kind == "f":
                    m._buffers[name] = b.astype(dtype)
        return self

    def float(self) -> Module:
        return self.to(np.float32)

    def double(self) -> Module:
        return self.to(np.float64)

    # ------------------------------------------------------------------ state dict
    def _state_targets(self) -> OrderedDict[str, Tensor | tuple[Module, str]]:
        """Every saved entry: dotted name -> Parameter, or (owning module, buffer name)."""
        targets: OrderedDict[str, Any] = OrderedDict()
        for module_name, module in self.named_modules():
            prefix = f"{module_name}." if module_name else ""
            for name, p in module._parameters.items():
                if p is not None:
                    targets[prefix + name] = p
            for name, b in module._buffers.items():
                if b is not None and name not in module._non_persistent:
                    targets[prefix + name] = (module, name)
        return targets

    def state_dict(self) -> OrderedDict[str, np.ndarray]:
        """Parameters and persistent buffers as ``dotted name -> np.ndarray`` COPIES.

        Plain arrays only, so ``np.savez(path, **model.state_dict())`` needs no pickle.
        """
        out: OrderedDict[str, np.ndarray] = OrderedDict()
        for key, target in self._state_targets().items():
            array = target.data if isinstance(target, Tensor) else target[0]._buffers[target[1]]
            out[key] = np.array(array, copy=True)
        return out

    def load_state_dict(self, state: Mapping[str, Any], strict: bool = True) -> IncompatibleKeys:
        """Copy arrays from ``state`` into the parameters and buffers, in place.

        Values are cast to each parameter's/buffer's own dtype (a float64 checkpoint loads into a
        float32 model as float32). Nothing is changed unless every entry can be loaded.

        Args:
            state: ``name -> array`` (a ``state_dict()``, or the result of ``np.load`` on a saved one).
            strict: require exactly the same keys; with False, missing and unexpected keys are
                reported in the returned ``IncompatibleKeys`` instead of raising.
        Raises:
            KeyError: strict and keys missing/unexpected (both lists are named).
            ValueError: an array's shape differs from the model's (name, expected and got shapes),
                also with ``strict=False``.
        """
        if not hasattr(state, "keys") or not hasattr(state, "__getitem__"):
            raise TypeError(f"load_state_dict expects a mapping name -> array, got {type(state).__name__}")
        targets = self._state_targets()
        given = list(state.keys())
        missing = [k for k in targets if k not in state]
        unexpected = [k for k in given if k not in targets]
        problems: list[str] = []
        if strict and missing:
            problems.append(f"missing keys: {', '.join(missing)}")
        if strict and unexpected:
            problems.append(f"unexpected keys: {', '.join(unexpected)}")
        loads: list[tuple[Any, np.ndarray]] = []
        for key, target in targets.items():
            if key not in state:
                continue
            value = state[key]
            value = np.asarray(value.data if isinstance(value, Tensor) else value)
            current = target.data if isinstance(target, Tensor) else target[0]._buffers[target[1]]
            if value.shape != current.shape:
                problems.append(f"shape mismatch for {key}: expected {current.shape}, got {value.shape}")
            elif value.dtype.kind not in "fiub":
                problems.append(f"{key}: cannot load an array of dtype {value.dtype}")
            else:
                loads.append((target, value.astype(current.dtype)))
        if problems:
            kind = KeyError if all(p.startswith(("missing", "unexpected")) for p in problems) else ValueError
            message = f"error(s) loading state_dict into {type(self).__name__}:\n  " + "\n  ".join(problems)
            raise kind(message)
        for target, value in loads:  # all checked: now write, in place so references stay valid
            if isinstance(target, Tensor):
                target.data[...] = value
            else:
                module, name = target
                module._buffers[name][...] = value
        return IncompatibleKeys(missing, unexpected)

    # ------------------------------------------------------------------ repr
    def extra_repr(self) -> str:
        """The text inside the parentheses of ``repr`` (layers override, e.g. "in_features=3, ...")."""
        return ""

    def __repr__(self) -> str:
        extra = self.extra_repr()
        lines = extra.split("\n") if extra else []
        for name, child in self._modules.items():
            child_repr = repr(child).replace("\n", "\n  ")
            lines.append(f"({name}): {child_repr}")
        if not lines:
            return f"{type(self).__name__}()"
        if len(lines) == 1 and not self._modules:
            return f"{type(self).__name__}({lines[0]})"
        return f"{type(self).__name__}(\n  " + "\n  ".join(lines) + "\n)"
