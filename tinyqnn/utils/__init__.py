"""Small shared utilities, one concept a module:

- ``atomic``: all-or-nothing file writes (bytes, matplotlib figures);
- ``runs``: run folders whose manifest says which files tinyqnn wrote there;
- ``threads``: tinyqnn's and BLAS's thread counts, for this process and its children;
- ``child``: the environment of the child processes tinyqnn starts;
- ``npz``: ``.npz`` archives read without pickle, with messages that say what a file is instead.

Everything is importable from ``tinyqnn.utils`` directly.
"""
from .atomic import atomic_path, atomic_write_bytes, clean_stale_parts, save_figure
from .child import child_env
from .npz import read_npz
from .runs import (RUN_MANIFEST, RunFolderError, claim_folder, describe_folder, folder_state, output_file,
                   output_folder, recording_run, refuse_foreign, remove_run_files, run_manifest, tag, written_by)
from .threads import default_blas_threads, default_num_threads, get_num_threads, set_num_threads

__all__ = [
    "RUN_MANIFEST", "RunFolderError", "atomic_path", "atomic_write_bytes", "child_env", "claim_folder",
    "clean_stale_parts", "default_blas_threads", "default_num_threads", "describe_folder", "folder_state",
    "get_num_threads", "output_file", "output_folder", "read_npz", "recording_run", "refuse_foreign", "remove_run_files",
    "run_manifest", "save_figure", "set_num_threads", "tag", "written_by",
]
