"""Two's-complement integers of an explicit width: ranges, wrap-around, saturation, fit checks.

A ``bits``-bit signed integer holds ``-2**(bits-1) .. 2**(bits-1) - 1``; unsigned ``0 .. 2**bits - 1``.
Hardware that adds past the range either *wraps* (keeps the low ``bits`` bits: arithmetic modulo
``2**bits``, what a plain adder does) or *saturates* (clamps to the nearest end, what DSP "saturating"
instructions do). Every function takes scalars or arrays; values are held in int64, so widths up to
63 bits (signed) are exact.
"""
from __future__ import annotations

import numpy as np

#: widths the MAC unit accepts: operands 1..16 bits, accumulators 2..62 bits (8..32 in hardware; wider for study)
OPERAND_BITS = (1, 16)
ACCUMULATOR_BITS = (2, 62)
OVERFLOW_MODES = ("wrap", "saturate")


def check_width(bits: int, lo: int = 1, hi: int = 62, what: str = "width") -> int:
    """``bits`` as an int in ``[lo, hi]``, or a ValueError naming ``what``."""
    if isinstance(bits, bool) or not isinstance(bits, (int, np.integer)) or not lo <= bits <= hi:
        raise ValueError(f"{what} must be an integer number of bits in [{lo}, {hi}], got {bits!r}")
    return int(bits)


def check_overflow_mode(mode: str) -> str:
    if mode not in OVERFLOW_MODES:
        raise ValueError(f"overflow mode must be one of {', '.join(OVERFLOW_MODES)}, got {mode!r}")
    return mode


def int_range(bits: int, signed: bool = True) -> tuple[int, int]:
    """(smallest, largest) value of a ``bits``-bit two's-complement (or unsigned) integer."""
    bits = check_width(bits, 1, 63)
    if signed:
        return -(1 << (bits - 1)), (1 << (bits - 1)) - 1
    return 0, (1 << bits) - 1


def wrap(x, bits: int, signed: bool = True) -> np.ndarray:
    """Keep the low ``bits`` bits of each integer in ``x`` (reduction modulo ``2**bits`` into the range).

    ``wrap(x)`` is what a ``bits``-bit adder holds after computing ``x`` exactly: because modular
    arithmetic is a ring homomorphism, wrapping after every addition equals wrapping once at the end.
    """
    x = as_int64(x, "wrap")
    lo, _ = int_range(bits, signed)
    return (x - lo) % (1 << bits) + lo


def saturate(x, bits: int, signed: bool = True) -> np.ndarray:
    """Clamp each integer in ``x`` to the ``bits``-bit range (values already inside are unchanged)."""
    lo, hi = int_range(bits, signed)
    return np.clip(as_int64(x, "saturate"), lo, hi)


def overflows(x, bits: int, signed: bool = True) -> np.ndarray:
    """Boolean mask: which entries of ``x`` lie outside the ``bits``-bit range."""
    lo, hi = int_range(bits, signed)
    x = as_int64(x, "overflows")
    return (x < lo) | (x > hi)


def magnitude(x) -> np.ndarray:
    """``|x|`` without two's-complement overflow: ``np.abs(np.int8(-128))`` is -128 (the magnitude 128 does not
    fit int8), which would make an overflow bound too small. Integers are widened to int64 first (floats and
    unsigned values pass through), so every width the unit handles has its true magnitude."""
    a = np.asarray(x)
    if a.dtype.kind == "u":
        return a
    if a.dtype.kind in "ib":
        a = a.astype(np.int64, copy=False)
        if a.size and a.dtype.itemsize == 8 and a.min() == np.iinfo(np.int64).min:
            raise ValueError("-2**63 has no int64 magnitude; the MAC unit's operands are at most 16 bits")
    return np.abs(a)


def check_fits(x, bits: int, signed: bool = True, name: str = "value") -> np.ndarray:
    """``x`` as int64 if every entry is an integer in the ``bits``-bit range, else a ValueError saying
    which value (and where) does not fit."""
    arr = np.asarray(x)
    if arr.dtype.kind == "f":
        if not np.all(np.isfinite(arr)):
            raise ValueError(f"{name} must be integers, but contains NaN or inf")
        if np.any(arr != np.round(arr)):
            bad = arr[arr != np.round(arr)].flat[0]
            raise ValueError(f"{name} must be integers, got the non-integer {bad!r}")
    elif arr.dtype.kind not in "iub":
        raise ValueError(f"{name} must be an integer array, got dtype {arr.dtype}")
    lo, hi = int_range(bits, signed)
    if arr.size and (arr.min() < lo or arr.max() > hi):
        flat = np.flatnonzero((arr < lo) | (arr > hi))[0]
        index = np.unravel_index(flat, arr.shape) if arr.ndim else ()
        kind = "signed" if signed else "unsigned"
        raise ValueError(f"{name} does not fit {bits}-bit {kind} [{lo}, {hi}]: {arr.flat[flat].item()!r} at index "
                         f"{tuple(int(i) for i in index)} (shape {arr.shape}); range of the values is "
                         f"[{arr.min()}, {arr.max()}]")
    return arr.astype(np.int64)


def bits_needed(lo: int, hi: int) -> int:
    """Fewest bits of a signed two's-complement integer holding every value in ``[lo, hi]``."""
    bits = 1
    while not (-(1 << (bits - 1)) <= lo and hi <= (1 << (bits - 1)) - 1):
        bits += 1
    return bits


def as_int64(x, where: str) -> np.ndarray:
    """``x`` as an int64 array; floats must hold whole finite values (a ValueError names ``where``)."""
    arr = np.asarray(x)
    if arr.dtype.kind == "f":
        if not np.all(np.isfinite(arr)) or np.any(arr != np.round(arr)):
            raise ValueError(f"{where}: expected integers, got non-integer or non-finite floats")
    elif arr.dtype.kind not in "iub":
        raise ValueError(f"{where}: expected integers, got dtype {arr.dtype}")
    return arr.astype(np.int64)
