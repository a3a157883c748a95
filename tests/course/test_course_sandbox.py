"""The grading sandbox (tinyqnn.course.sandbox) against real dishonest and runaway notebooks.

Each probe is a cell a dishonest or careless submission could contain; its outputs say what it achieved.
A fence this machine does not have (``protections()``) is skipped with the reason, never assumed.
"""
from __future__ import annotations

import json
import os
import sys
import time

import nbformat
import pytest

from tinyqnn.course import grading, sandbox
from tinyqnn.course.sandbox import Limits, Sandbox, run_notebook

PROT = sandbox.protections()
needs_namespaces = pytest.mark.skipif(not PROT.namespaces, reason=f"no user namespaces here: {PROT.notes}")


def notebook(*sources: str):
    return nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(s) for s in sources])


def text(cell) -> str:
    return "".join(o.get("text", "") for o in cell.outputs if o.get("output_type") == "stream")


def errors(cell) -> list[str]:
    return [f"{o['ename']}: {o['evalue']}" for o in cell.outputs if o.get("output_type") == "error"]


@pytest.fixture(scope="module")
def course(tmp_path_factory):
    """A course folder with an instructor's source notebook, a gradebook and another student's work."""
    root = tmp_path_factory.mktemp("course")
    (root / "source" / "a1").mkdir(parents=True)
    (root / "source" / "a1" / "a1.ipynb").write_text("REFERENCE SOLUTION")
    (root / "gradebook.db").write_text("GRADEBOOK")
    (root / "submitted" / "bob" / "a1").mkdir(parents=True)
    (root / "submitted" / "bob" / "a1" / "a1.ipynb").write_text("BOB'S WORK")
    return root


@pytest.fixture(scope="module")
def probes(course):
    """One sandboxed run of a notebook full of probes (one kernel start for all of them)."""
    os.environ["TINYQNN_TEST_SECRET"] = "grader-only"
    try:
        nb = notebook(
            "import os, json\nprint(json.dumps(sorted(os.listdir('.'))))",                              # 0
            "print(json.dumps(sorted(os.environ)))",                                                     # 1
            f"print(json.dumps(os.listdir({str(course)!r})))",                                           # 2
            f"print(open({str(course / 'source' / 'a1' / 'a1.ipynb')!r}).read())",                       # 3
            f"open({str(course / 'gradebook.db')!r}, 'w').write('forged')",                              # 4
            f"print(json.dumps(os.listdir({str(grading.repo_root() / grading.SOLUTIONS_DIR)!r})))",       # 5
            "import tinyqnn, pathlib\nroot = pathlib.Path(tinyqnn.__file__).parents[1]\n"
            "print(json.dumps(sorted(p.name for p in (root / 'solutions').glob('*'))))",                 # 6
            "import ctypes\nlibc = ctypes.CDLL(None, use_errno=True)\n"
            f"print(libc.umount2({str(course).encode()!r}, 2), json.dumps(os.listdir({str(course)!r})))",  # 7
            "print(json.dumps(os.listdir(os.path.dirname(os.path.dirname(os.getcwd())))))",             # 8
            "import socket\ns = socket.socket()\ns.settimeout(3)\ns.connect(('192.0.2.1', 80))",           # 9
            "open('big.bin', 'wb').write(b'x' * (64 << 20))",                                            # 10
            "import numpy as np\na = np.ones((1 << 31,), dtype=np.float64)",                             # 11
            "print('still running')",                                                                    # 12
            # files outside the scratch folder: the package and interpreter every later submission (and the
            # grader itself) imports, the shared temporary folders, the grader's home folder
            "import tinyqnn, numpy, sys, tempfile\nfor folder in (os.path.dirname(tinyqnn.__file__), "
            "os.path.dirname(numpy.__file__), sys.prefix, '/tmp', '/dev/shm', os.environ['GRADER_HOME']):\n"
            "    try:\n        open(os.path.join(folder, 'planted_by_a_submission.py'), 'w').write('x = 1')\n"
            "        print('wrote', folder)\n    except OSError as err:\n        print('refused', err.errno)",  # 13
            "import ctypes\nlibc = ctypes.CDLL(None, use_errno=True)\n"
            "print(libc.mount(None, os.path.dirname(tinyqnn.__file__).encode(), None, 32 | 4096, None))",   # 14
            "open('mine.txt', 'w').write('own folder')\nprint(open('mine.txt').read())",                 # 15
        )
        limits = Limits(cell_seconds=20, notebook_seconds=120, file_bytes=16 << 20, memory_bytes=3 << 30)
        with Sandbox({"answer.ipynb": b"{}", "data/shipped.txt": b"shipped"}, limits, course_root=course) as box:
            # another student's sandbox, running at the same time
            with Sandbox({"bob.txt": b"BOB"}, limits) as other:
                # the grader's home folder, told to the probe (the sandbox's own HOME is its scratch folder)
                nb.cells[13].source = f"os.environ['GRADER_HOME'] = {os.path.expanduser('~')!r}\n" + nb.cells[13].source
                run = [box.execute(c) for c in nb.cells]
                return run, other.scratch
    finally:
        os.environ.pop("TINYQNN_TEST_SECRET", None)


def test_scratch_folder_holds_only_the_submission_and_shipped_files(probes):
    cells, _ = probes
    assert set(json.loads(text(cells[0]))) == {"answer.ipynb", "data", ".tmp"}, text(cells[0])


def test_environment_is_scrubbed(probes):
    names = set(json.loads(text(probes[0][1])))
    assert "TINYQNN_TEST_SECRET" not in names and "PYTHONPATH" not in names, names
    assert {"HOME", "PATH", "NBGRADER_EXECUTION"} <= names


@needs_namespaces
def test_course_folder_and_reference_solutions_cannot_be_read(probes, course):
    cells, _ = probes
    assert json.loads(text(cells[2])) == [], f"course folder visible: {text(cells[2])}"
    assert "REFERENCE" not in text(cells[3]) and errors(cells[3]), f"source notebook read: {text(cells[3])}"
    assert errors(cells[4]), "writing the gradebook did not fail"
    assert (course / "gradebook.db").read_text() == "GRADEBOOK"
    assert json.loads(text(cells[5])) == [] and json.loads(text(cells[6])) == [], (text(cells[5]), text(cells[6]))
    assert json.loads(text(cells[7]).split(" ", 1)[1]) == [], f"a cover was undone: {text(cells[7])}"


@needs_namespaces
def test_no_file_outside_the_scratch_folder_can_be_written(probes):
    """A file planted in tinyqnn's or NumPy's folder would run in the next submission's kernel and in the grader
    itself; one in /tmp or /dev/shm would reach the next submission. Everything but the scratch folder is
    read-only, and the kernel cannot remount it writable."""
    import numpy
    import tinyqnn

    cells, _ = probes
    assert text(cells[13]).split() == ["refused", "30"] * 6, text(cells[13])  # 30: EROFS, read-only file system
    for folder in (os.path.dirname(tinyqnn.__file__), os.path.dirname(numpy.__file__), sys.prefix, "/tmp",
                   "/dev/shm", os.path.expanduser("~")):
        assert not os.path.exists(os.path.join(folder, "planted_by_a_submission.py")), folder
    assert text(cells[14]).strip() == "-1", f"the kernel remounted tinyqnn's folder writable: {text(cells[14])}"
    assert text(cells[15]).strip() == "own folder", cells[15].outputs


@needs_namespaces
def test_other_sandboxes_are_out_of_reach(probes):
    cells, other_scratch = probes
    visible = json.loads(text(cells[8]))
    assert other_scratch.parent.name not in visible and len(visible) == 1, visible


@needs_namespaces
def test_network_is_cut(probes):
    assert any("unreachable" in e.lower() or "OSError" in e for e in errors(probes[0][9])), probes[0][9].outputs


def test_file_size_and_memory_are_limited_and_the_kernel_survives(probes):
    cells, _ = probes
    assert any("File too large" in e for e in errors(cells[10])), cells[10].outputs
    assert any("MemoryError" in e for e in errors(cells[11])), cells[11].outputs
    assert "still running" in text(cells[12])


@pytest.mark.skipif(not PROT.processes_limited, reason="the process limit is not enforced here (root)")
def test_fork_bomb_is_limited():
    run = run_notebook(notebook(
        "import os, time\nkids = []\n"
        "for i in range(400):\n"
        "    pid = os.fork()\n"
        "    if pid == 0:\n"
        "        time.sleep(30)\n"
        "        os._exit(0)\n"
        "    kids.append(pid)\n"), limits=Limits(cell_seconds=20, notebook_seconds=60, processes=64))
    assert any("BlockingIOError" in e or "Resource temporarily unavailable" in e
               for e in errors(run.nb.cells[0])), run.nb.cells[0].outputs


def test_runaway_notebook_is_killed_at_the_notebook_limit():
    """A loop that swallows the per-cell interrupt: only the grader's kill stops it; later cells stay unrun."""
    nb = notebook("x = 1",
                  "while True:\n    try:\n        while True:\n            pass\n    except KeyboardInterrupt:\n        pass",
                  "print('never')")
    limits = Limits(cell_seconds=4, notebook_seconds=8)
    start = time.monotonic()
    run = run_notebook(nb, limits=limits)
    took = time.monotonic() - start
    assert run.status == "timeout", (run.status, run.reason)
    # the loop's cell loses its points; the notebook limit is recorded where the grader gave up; "never" never ran
    assert errors(run.nb.cells[1]), run.nb.cells[1]
    assert any(e.startswith("NotebookTimeout") for c in run.nb.cells[1:] for e in errors(c)), run.nb.cells
    assert "never" not in text(run.nb.cells[2])
    # killed by the grader: no minute-long wait (limit + grace + kernel start, not a timing benchmark)
    assert took < limits.notebook_seconds + sandbox.GRACE_SECONDS + sandbox.START_SECONDS, took


def test_a_cell_past_its_own_limit_is_interrupted_and_the_rest_runs():
    run = run_notebook(notebook("while True:\n    pass", "print('after')"),
                       limits=Limits(cell_seconds=3, notebook_seconds=60))
    assert run.status == "ok", run.reason
    assert any(e.startswith(("KeyboardInterrupt", "CellTimeoutError")) for e in errors(run.nb.cells[0]))
    assert "after" in text(run.nb.cells[1])


def test_a_dying_kernel_is_reported():
    run = run_notebook(notebook("import os\nos._exit(3)", "print('never')"), limits=Limits(cell_seconds=10))
    assert run.status == "died" and "died" in run.reason, (run.status, run.reason)


def test_limits_refuse_zero_and_negative_values():
    for bad in (dict(cell_seconds=0), dict(notebook_seconds=-5), dict(memory_bytes=0)):
        with pytest.raises(ValueError, match="must be > 0"):
            Limits(**bad)


def test_protections_summary_says_what_is_not_enforced():
    summary = PROT.summary()
    assert ("no network" in summary) == PROT.namespaces
    assert ("processes NOT limited" in summary) == (PROT.rlimits and not PROT.processes_limited)
