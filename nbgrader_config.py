"""nbgrader configuration for the tinyqnn course (read by every ``nbgrader`` command run in this folder).

The repository root is the course directory: instructors edit ``solutions/NN_name/NN_name.ipynb``
(nbgrader's "source" step) and ``python -m tinyqnn release`` regenerates ``exercises/`` (the
"release" step). Grading state (gradebook.db, submitted/, autograded/, feedback/) is git-ignored.
The CI checks and ``python -m tinyqnn check`` copy this file into a temporary course directory,
so the root below follows the file, not the current working directory.
"""
import os

c = get_config()  # noqa: F821  (injected by traitlets when nbgrader loads this file)

c.CourseDirectory.root = os.path.dirname(os.path.abspath(__file__))
c.CourseDirectory.source_directory = "solutions"
c.CourseDirectory.release_directory = "exercises"

# Never ship editor/interpreter litter into a release (nbgrader copies every other file of a source folder).
c.CourseDirectory.ignore = [
    ".ipynb_checkpoints",
    "__pycache__",
    "*.pyc",
    "*.pyo",
    ".pytest_cache",
    ".hypothesis",
    ".DS_Store",
    "feedback",
]

# Per-cell limit while autograding (nbgrader has no per-cell override). Notebooks shorten long cells
# under quick mode (NBGRADER_EXECUTION is set), so a cell that needs this long is a runaway loop.
c.Execute.timeout = 120

# Same kernel arguments as the self-check (tinyqnn.course.grading.KERNEL_ARGUMENTS): history in memory, and
# no ipykernel warning about its loopback TCP transport in every learner's and instructor's log.
c.Execute.extra_arguments = ["--HistoryManager.hist_file=:memory:", "--IPKernelApp.log_level=ERROR"]
