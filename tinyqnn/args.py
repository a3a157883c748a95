"""What every command-line entry point shares: argument types that refuse bad values with a clear message,
the ``--threads`` and ``--data-dir`` options, and one-line error messages. It imports nothing from tinyqnn,
so the experiments' own ``main`` functions (below the CLI in the package's layering) can use it as well as
``tinyqnn.cli``.
"""
from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any


def _number(kind: type, text: str, minimum: float, inclusive: bool = True) -> Any:
    """``text`` parsed as ``kind`` (int or float) and checked against ``minimum``, or an argparse error."""
    try:
        value = kind(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected {'a whole number' if kind is int else 'a number'}, "
                                         f"got {text}") from None
    if not (value >= minimum if inclusive else value > minimum):  # also refuses NaN
        raise argparse.ArgumentTypeError(f"must be {'>=' if inclusive else '>'} {minimum:g}, got {text}")
    return value


def positive_int(text: str) -> int:
    return _number(int, text, 1)


def non_negative_int(text: str) -> int:
    return _number(int, text, 0)


def positive_float(text: str) -> float:
    return _number(float, text, 0.0, inclusive=False)


def non_negative_float(text: str) -> float:
    return _number(float, text, 0.0)


def int_in(lo: int, hi: int):
    """An argparse type: a whole number in ``lo..hi`` (e.g. a bit width the integer unit implements)."""
    def parse(text: str) -> int:
        value = _number(int, text, lo)
        if value > hi:
            raise argparse.ArgumentTypeError(f"must be in {lo}..{hi}, got {text}")
        return value
    parse.__name__ = f"int_in_{lo}_{hi}"  # argparse names the type in some messages
    return parse


def physical_memory_bytes() -> int | None:
    """This machine's RAM in bytes, or None where the OS does not say."""
    import os

    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return None


def check_fits_memory(p: argparse.ArgumentParser, option: str, value: int, bytes_needed: float, what: str) -> None:
    """``p.error`` when a size option asks for more memory than the machine has, before anything is allocated:
    otherwise NumPy raises MemoryError deep inside a run, or the OS kills the process."""
    ram = physical_memory_bytes()
    if ram is not None and bytes_needed > ram:
        p.error(f"{option} {value} needs about {bytes_needed / 2**30:,.1f} GiB ({what}), more than this machine's "
                f"{ram / 2**30:.1f} GiB of memory")


def existing_dir(text: str) -> str:
    """An explicit ``--data-dir`` must exist: a typo would otherwise fall back to the cache unnoticed."""
    if not Path(text).is_dir():
        raise argparse.ArgumentTypeError(f"{text} is not an existing folder" +
                                         (" (it is a file)" if Path(text).exists() else ""))
    return text


def add_data_dir_arg(p: argparse.ArgumentParser, default: str = "$TINYQNN_DATA, cache, download") -> None:
    """``--data-dir DIR``, which must exist when given (``existing_dir``); ``default`` says where the data
    comes from without it."""
    p.add_argument("--data-dir", type=existing_dir, default=None,
                   help=f"folder with the IDX files (default: {default})")


def add_threads_arg(p: argparse.ArgumentParser) -> None:
    """``--threads N``; the command applies it (or ``tinyqnn.utils.default_num_threads()``) with
    ``tinyqnn.utils.set_num_threads``, BLAS threads from ``default_blas_threads()``."""
    p.add_argument("--threads", type=positive_int, default=None, metavar="N",
                   help="threads that share each large operation (default 1, or $TINYQNN_THREADS); NumPy's BLAS "
                        "keeps one thread (or $OPENBLAS_NUM_THREADS): its idle threads spin-wait on a busy machine")


def one_line(error: BaseException) -> str:
    """An exception as one readable line: no quoted repr (``KeyError``), no ``[Errno 20]``, no line breaks."""
    if isinstance(error, KeyError) and error.args:
        text = str(error.args[0])
    elif isinstance(error, OSError) and error.strerror and error.filename is not None:
        text = f"{error.strerror}: {error.filename}" + (f" -> {error.filename2}" if error.filename2 else "")
    else:
        text = str(error) or type(error).__name__
    return "; ".join(line.strip() for line in text.splitlines() if line.strip())


#: what a command may fail with because of its input, files or numbers (anything else is a bug: a traceback)
USER_ERRORS = (ValueError, KeyError, OSError, RuntimeError, ArithmeticError)
