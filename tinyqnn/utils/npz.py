"""Reading ``.npz`` archives without pickle, with messages that say what the file is instead.

NumPy's own message for a file that is not an archive (a text file, say) is "Cannot load file containing pickled
data when allow_pickle=False": it points the user at the one option that would run code from the file.
"""
from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np

#: how a zip archive (and so a .npz file) begins: a local file header, or the end record of an empty archive
ZIP_SIGNATURES = (b"PK\x03\x04", b"PK\x05\x06")


def read_npz(path: str | Path) -> dict[str, np.ndarray]:
    """Every array of the ``.npz`` file at ``path``, loaded with ``allow_pickle=False``.

    Raises ValueError with a message to follow the file's name ("... is not a .npz archive ..."): not a zip
    archive (its first bytes are shown), truncated, or holding pickled Python objects (refused, never loaded).
    """
    path = Path(path)
    with open(path, "rb") as f:
        head = f.read(4)
    if head not in ZIP_SIGNATURES:
        raise ValueError(f"is not a .npz archive (a .npz file is a zip archive; this one starts with {head!r})")
    try:
        with np.load(path, allow_pickle=False) as archive:
            return {key: archive[key] for key in archive.files}
    except ValueError as error:
        if "allow_pickle" in str(error):
            raise ValueError("holds pickled Python objects, which tinyqnn never writes and does not load "
                             "(loading them could run code from the file)") from None
        raise ValueError(f"is not a readable .npz archive ({error})") from None
    except (zipfile.BadZipFile, OSError, EOFError) as error:
        raise ValueError(f"is not a readable .npz archive (truncated?): {error}") from None
