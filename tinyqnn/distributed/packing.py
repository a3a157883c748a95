"""Messages between workers and the server, really packed into m bits per coordinate (plus a 32-bit scale).

A ``Message`` carries one layer: ``bits`` = 32 means raw float32 values; ``bits`` = 1 means signs (value
``scale * (+-1)``, LAB weights); ``bits`` = m >= 2 means sign-magnitude codes c in [-k, k], k = 2^(m-1) - 1, stored
as the unsigned ``c + k`` in m bits (value ``scale * c / k``: SQm gradients, LAQm weights). ``nbits`` is what
travels: the payload's bytes (m * d bits rounded up to whole bytes) plus 32 bits for the scale. Shapes are agreed
in advance (the model's), so they are not counted.

Packing is vectorised: the m bits of every code are laid out little-endian in a (d, m) bit matrix and handed to
``np.packbits``; unpacking reverses both steps.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..quant.activation import check_bits

SCALE_BITS = 32
FLOAT_BITS = 32


def _offset(bits: int) -> int:
    return 0 if bits == 1 else 2 ** (bits - 1) - 1


def pack_codes(codes: np.ndarray, bits: int) -> bytes:
    """Pack integer codes (bits = 1: codes in {-1, +1}; bits = m >= 2: codes in [-k, k]) into m bits each."""
    bits = check_bits(bits, minimum=1)
    if bits > 8:
        raise ValueError(f"codes are packed with at most 8 bits, got bits={bits} (send float32 instead)")
    c = np.asarray(codes).ravel().astype(np.int64)
    if bits == 1:
        if c.size and not np.all(np.abs(c) == 1):
            raise ValueError(f"1-bit codes must be -1 or +1, got values in [{c.min()}, {c.max()}]")
        u = (c + 1) // 2
    else:
        k = _offset(bits)
        if c.size and (c.min() < -k or c.max() > k):
            raise ValueError(f"{bits}-bit codes must lie in [-{k}, {k}], got values in [{c.min()}, {c.max()}]")
        u = c + k
    u = u.astype(np.uint8)
    # (d, m) bit matrix, least significant bit first (a loop over the m bit planes, not over coordinates)
    bit_matrix = np.stack([(u >> j) & 1 for j in range(bits)], axis=1)
    return np.packbits(bit_matrix.ravel(), bitorder="little").tobytes()


def unpack_codes(payload: bytes, bits: int, count: int) -> np.ndarray:
    """Inverse of ``pack_codes``: ``count`` int8 codes from ``payload``."""
    bits = check_bits(bits, minimum=1)
    need = -(-count * bits // 8)
    if len(payload) != need:
        raise ValueError(f"payload has {len(payload)} bytes, {count} codes of {bits} bits need {need}")
    flat = np.unpackbits(np.frombuffer(payload, np.uint8), count=count * bits, bitorder="little")
    planes = flat.reshape(count, bits)
    u = planes[:, 0].astype(np.int16)
    for j in range(1, bits):  # reassemble the code from its m bit planes
        u |= planes[:, j].astype(np.int16) << j
    return (2 * u - 1 if bits == 1 else u - _offset(bits)).astype(np.int8)


@dataclass(frozen=True)
class Message:
    """One layer on the wire: ``shape``, ``bits`` per coordinate (32: float32), ``scale`` (float32), ``payload``."""

    shape: tuple[int, ...]
    bits: int
    scale: float
    payload: bytes

    @property
    def size(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64))

    @property
    def nbits(self) -> int:
        """Bits on the wire: the payload bytes * 8, plus the 32-bit scale for coded messages."""
        return 8 * len(self.payload) + (0 if self.bits == FLOAT_BITS else SCALE_BITS)

    def decode(self) -> np.ndarray:
        """The values the sender meant, float64 of ``shape``."""
        if self.bits == FLOAT_BITS:
            return np.frombuffer(self.payload, np.float32).astype(np.float64).reshape(self.shape)
        codes = unpack_codes(self.payload, self.bits, self.size).reshape(self.shape)
        return self.scale * codes / np.float64(max(_offset(self.bits), 1))


def encode_float(x: np.ndarray) -> Message:
    """A full-precision layer: float32 values (32 bits per coordinate, no scale). A ValueError for values beyond
    float32's range (they would arrive as inf)."""
    x = np.asarray(x)
    big = float(np.max(np.abs(x), initial=0.0)) if x.dtype.kind == "f" and x.dtype.itemsize > 4 else 0.0
    limit = float(np.finfo(np.float32).max)
    if big > limit:
        raise ValueError(f"a value of magnitude {big:g} is beyond float32's range ({limit:.4g}); it cannot be sent "
                         "as float32")
    return Message(tuple(x.shape), FLOAT_BITS, 1.0, np.ascontiguousarray(x, dtype=np.float32).tobytes())


def encode_codes(codes: np.ndarray, bits: int, scale: float) -> Message:
    """Coded layer: ``scale`` must be float32-representable (see ``gradient.float32_scale``)."""
    if float(np.float32(scale)) != float(scale):
        raise ValueError(f"scale {scale!r} is not a float32 value; round it with float32_scale first")
    codes = np.asarray(codes)
    return Message(tuple(codes.shape), bits, float(scale), pack_codes(codes, bits))
