"""Global switch for graph recording (``no_grad``), as in ``torch.no_grad``."""
from __future__ import annotations

import contextlib
from collections.abc import Iterator

_grad_enabled = True


def is_grad_enabled() -> bool:
    """True when new operations are recorded for ``backward``."""
    return _grad_enabled


@contextlib.contextmanager
def set_grad_enabled(mode: bool) -> Iterator[None]:
    """Turn graph recording on or off inside a ``with`` block, restoring it afterwards."""
    global _grad_enabled
    previous, _grad_enabled = _grad_enabled, bool(mode)
    try:
        yield
    finally:
        _grad_enabled = previous


def no_grad() -> contextlib.AbstractContextManager[None]:
    """Evaluation mode for the graph: ``with no_grad(): y = model(x)`` records nothing."""
    return set_grad_enabled(False)
