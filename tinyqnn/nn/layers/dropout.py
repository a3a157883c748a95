"""``Dropout``: zero activations at random while training, to regularise."""
from __future__ import annotations

from .. import functional as F
from ...engine import Tensor
from ..module import Module


class Dropout(Module):
    """Zero each element with probability ``p`` in training mode and scale survivors by 1/(1-p)
    (so the expected activation is unchanged); identity in eval mode.

    The mask is drawn from tinyqnn's seeded generator (``tinyqnn.manual_seed``).
    Shapes: any -> same.
    """

    def __init__(self, p: float = 0.5):
        super().__init__()
        if not 0.0 <= p < 1.0:  # p = 1 would leave nothing to rescale
            raise ValueError(f"dropout probability must be in [0, 1), got p={p}")
        self.p = float(p)

    def forward(self, x: Tensor) -> Tensor:
        return F.dropout(x, self.p, self.training)

    def extra_repr(self) -> str:
        return f"p={self.p}"
