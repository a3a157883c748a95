"""The grading sandbox: one submission's notebook in its own worker process and kernel, fenced in.

Each ``Sandbox`` is a scratch folder holding only the submission's files (and what the assignment ships), a
worker process (``tinyqnn.course.sandbox_worker``) that runs one Jupyter kernel there, and the fences:

- a scrubbed environment (no variable of the grader's reaches the kernel: HOME, TMPDIR and Jupyter's folders
  point into the scratch folder);
- rlimits set in the child before it starts: address space, CPU seconds, largest file, open files, processes;
- a wall-clock limit for the whole notebook besides the per-cell one: the worker interrupts a cell at
  ``min(cell limit, time left)``; if it does not answer soon after, the grader kills its whole process group
  (and, with a pid namespace, every process the submission started);
- where the OS lets an ordinary user create namespaces (``unshare -rnmpf``, Linux): no network (a fresh network
  namespace with only a downed loopback), and the course folder's entries, the repository's ``solutions/`` and
  the other sandboxes' scratch folders covered by empty read-only mounts that the kernel cannot undo.

``protections()`` says which fences this machine really has (detected once, by trying); nothing is assumed.
macOS and Linux without user namespaces keep the scratch folder, the environment, the rlimits and the time
limits, but no network cut and no hidden folders: a submission there can read any file the grader can.
"""
from __future__ import annotations

import functools
import json
import os
import selectors
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import grading

UNSHARE = ("unshare", "--user", "--map-root-user", "--net", "--mount", "--pid", "--fork", "--kill-child")
#: seconds the grader waits beyond a cell's limit for the worker to interrupt it, and for a kernel to start
GRACE_SECONDS = 10.0
START_SECONDS = 60.0
NOTEBOOK_TIMEOUT_ENAME = "NotebookTimeout"
#: set (to anything but 0) to grade without namespaces, as on macOS: for tests, or where unshare misbehaves
NO_NAMESPACES_ENV = "TINYQNN_SANDBOX_NO_NAMESPACES"


@dataclass(frozen=True)
class Limits:
    """What one submission may use. ``cpu_seconds`` bounds each process of the sandbox separately."""

    cell_seconds: int = grading.EXECUTE_TIMEOUT
    notebook_seconds: int = 600
    memory_bytes: int = 4 << 30
    file_bytes: int = 256 << 20
    processes: int = 512
    open_files: int = 1024

    @property
    def cpu_seconds(self) -> int:
        return self.notebook_seconds + 30

    def __post_init__(self) -> None:
        for name in ("cell_seconds", "notebook_seconds", "memory_bytes", "file_bytes", "processes", "open_files"):
            if getattr(self, name) <= 0:
                raise ValueError(f"sandbox limit {name} must be > 0, got {getattr(self, name)}")


@dataclass(frozen=True)
class Protections:
    """Which fences are active on this machine, each with a one-line reason when it is not."""

    rlimits: bool
    namespaces: bool          # network cut + hidden folders + pid namespace
    processes_limited: bool   # RLIMIT_NPROC is not enforced for root
    notes: tuple[str, ...] = ()

    def summary(self) -> str:
        parts = ["scratch folder", "scrubbed environment", "cell and notebook time limits"]
        parts.append("rlimits (memory, CPU, file size, open files"
                     + (", processes)" if self.processes_limited else "; processes NOT limited)")
                     if self.rlimits else "NO rlimits")
        parts.append("no network, course folder hidden, read-only outside the scratch folder, pid namespace"
                     if self.namespaces
                     else "network NOT cut, course folder NOT hidden, files NOT read-only")
        return "; ".join(parts) + ("" if not self.notes else " (" + "; ".join(self.notes) + ")")


@functools.lru_cache(maxsize=1)
def protections() -> Protections:
    """Detect once, by trying, what this OS enforces for an unprivileged sandbox."""
    notes = []
    try:
        import resource  # noqa: F401  (POSIX only)
        rlimits = True
    except ImportError:
        rlimits = False
        notes.append("no resource module on this OS")
    namespaces = False
    if os.environ.get(NO_NAMESPACES_ENV, "") not in ("", "0"):
        notes.append(f"namespaces turned off by {NO_NAMESPACES_ENV} (as on a platform without them)")
    elif sys.platform.startswith("linux") and shutil.which("unshare"):
        probe = tempfile.mkdtemp(prefix="tinyqnn-probe-")
        try:
            code = ("import sys; from tinyqnn.course.sandbox_worker import hide_paths; "
                    "f = hide_paths([sys.argv[1]]); import os, socket; "
                    "s = socket.socket(); s.settimeout(1)\n"
                    "try: s.connect(('192.0.2.1', 9)); print('network')\n"
                    "except OSError: pass\n"
                    "print('ok' if not f and not os.listdir(sys.argv[1]) else f)")
            Path(probe, "secret").write_text("x")
            run = subprocess.run([*UNSHARE, sys.executable, "-I", "-c", code, probe], capture_output=True,
                                 text=True, timeout=30, env=_base_env(Path(probe)))
            namespaces = run.returncode == 0 and run.stdout.strip() == "ok"
            if not namespaces:
                notes.append("user namespaces unavailable: " + (run.stderr.strip().splitlines() or
                                                                [run.stdout.strip()])[-1][:200])
        except (OSError, subprocess.SubprocessError) as err:
            notes.append(f"user namespaces unavailable: {err}")
        finally:
            shutil.rmtree(probe, ignore_errors=True)
    else:
        notes.append("no user namespaces on this OS (Linux with unshare only)")
    processes_limited = rlimits and os.geteuid() != 0
    if rlimits and not processes_limited:
        notes.append("the grader runs as root, which the kernel exempts from the process limit")
    return Protections(rlimits, namespaces, processes_limited, tuple(notes))


def _base_env(scratch: Path) -> dict[str, str]:
    """The whole environment of a sandbox: nothing of the grader's except the interpreter's bin/ on PATH."""
    bin_dir = os.path.dirname(sys.executable)
    return {
        "PATH": os.pathsep.join([bin_dir, "/usr/local/bin", "/usr/bin", "/bin"]),
        "HOME": str(scratch), "TMPDIR": str(scratch / ".tmp"), "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8",
        "PYTHONHASHSEED": "0", "PYTHONDONTWRITEBYTECODE": "1",
        "MPLBACKEND": "Agg", "MPLCONFIGDIR": str(scratch / ".tmp" / "matplotlib"),
        "IPYTHONDIR": str(scratch / ".tmp" / "ipython"),
        "JUPYTER_CONFIG_DIR": str(scratch / ".tmp" / "jupyter"),
        "JUPYTER_DATA_DIR": str(scratch / ".tmp" / "jupyter-data"),
        "JUPYTER_RUNTIME_DIR": str(scratch / ".tmp" / "jupyter-runtime"),
        "JUPYTER_PLATFORM_DIRS": "1",
        # one BLAS thread: several sandboxes share the cores (tinyqnn.utils.set_num_threads says why)
        "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
        # quick mode, as nbgrader signals while autograding
        "NBGRADER_EXECUTION": "autograde", "TINYQNN_QUICK": "1",
    }


def default_hidden(course_root: Path | None) -> list[Path]:
    """What a submission must not see: the course folder and the repository tinyqnn runs from, whole, or, when
    the interpreter or tinyqnn is loaded from inside one, each of its other entries (their names stay visible,
    their contents are empty)."""
    import tinyqnn

    keep = [Path(sys.prefix).resolve(), Path(sys.base_prefix).resolve(), Path(tinyqnn.__file__).resolve().parent]
    hide = []
    roots = [r for r in (course_root, grading.repo_root()) if r is not None]
    for root in dict.fromkeys(Path(r).resolve() for r in roots):
        if not root.is_dir():
            continue
        if not any(root == k or root in k.parents for k in keep):
            hide.append(root)  # names and all
            continue
        for entry in sorted(root.iterdir()):
            if any(entry == k or entry in k.parents for k in keep):
                continue
            hide.append(entry)
    return hide


def sandbox_base() -> Path:
    """The folder that holds every sandbox's scratch folder (private to this user)."""
    base = Path(tempfile.gettempdir()) / f"tinyqnn-sandboxes-{os.getuid()}"
    base.mkdir(mode=0o700, exist_ok=True)
    return base


def remove_orphaned_boxes(pid: int) -> None:
    """Remove the scratch folders a dead process ``pid`` left behind (it was killed before closing them)."""
    for folder in sandbox_base().glob(f"box-{pid}-*"):
        shutil.rmtree(folder, ignore_errors=True)


class SandboxError(RuntimeError):
    """The sandbox could not start, or its worker broke the protocol."""


class NotebookTimeout(RuntimeError):
    """The notebook used up its wall-clock limit; the sandbox was killed."""


class KernelDied(RuntimeError):
    """The kernel (or the worker) died: out of memory, ``os._exit``, a signal ..."""


def _set_limits(limits: Limits) -> None:
    """Runs in the child between fork and exec (preexec_fn): the limits every sandbox process inherits."""
    import resource

    for name, value in (("RLIMIT_AS", limits.memory_bytes), ("RLIMIT_CPU", limits.cpu_seconds),
                        ("RLIMIT_FSIZE", limits.file_bytes), ("RLIMIT_NOFILE", limits.open_files),
                        ("RLIMIT_NPROC", limits.processes), ("RLIMIT_CORE", 0)):
        which = getattr(resource, name, None)
        if which is None:
            continue
        soft, hard = resource.getrlimit(which)
        value = value if hard == resource.RLIM_INFINITY else min(value, hard)
        try:
            resource.setrlimit(which, (value, value))
        except (ValueError, OSError):
            resource.setrlimit(which, (min(value, soft) if soft != resource.RLIM_INFINITY else value, hard))


class Sandbox:
    """A running sandbox: ``with Sandbox(files, limits) as box: box.execute(cell)``.

    files: relative path -> bytes, written into the scratch folder (the submission's files and the
        assignment's shipped files; nothing else is there).
    course_root: the nbgrader course folder, whose entries are hidden from the kernel (with namespaces).
    The clock of ``limits.notebook_seconds`` starts when the kernel is ready.
    """

    def __init__(self, files: Mapping[str, bytes], limits: Limits | None = None,
                 course_root: str | Path | None = None, hide: Sequence[str | Path] = (),
                 redact: Mapping[Path, str] | None = None):
        self.files = dict(files)
        self.limits = limits or Limits()
        self.protections = protections()
        self.course_root = Path(course_root).resolve() if course_root else None
        self.extra_hide = [Path(p) for p in hide]
        self.redact = dict(redact or {})  # module file -> text the kernel sees instead (namespaces only)
        self.proc: subprocess.Popen | None = None
        self.kernel_pid: int | None = None
        self.deadline = float("inf")
        self.started = 0.0
        self._buffer = b""
        self._parent: Path | None = None
        self.scratch: Path | None = None
        self.log: Path | None = None

    # ------------------------------------------------------------------ lifetime

    def __enter__(self) -> "Sandbox":
        self.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def start(self) -> None:
        # Every sandbox's scratch folder sits in one base folder, which the worker covers except for its own
        # scratch folder: other sandboxes' files (other students' work) are out of reach.
        # named after the process that owns it, so that whoever sees that process die can remove what it left
        self._parent = Path(tempfile.mkdtemp(prefix=f"box-{os.getpid()}-", dir=sandbox_base()))
        self.scratch = self._parent / "work"
        (self.scratch / ".tmp").mkdir(parents=True)
        for rel, data in self.files.items():
            target = (self.scratch / rel).resolve()
            if self.scratch.resolve() not in target.parents:
                raise SandboxError(f"refusing to write {rel!r} outside the scratch folder")
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)
        self.log = self._parent / "worker.log"
        hide, binds = [], []
        if self.protections.namespaces:
            for n, (module, text) in enumerate(sorted(self.redact.items())):
                copy = self._parent / f"redacted-{n}.py"
                copy.write_text(text, encoding="utf-8")
                binds.append([str(copy), str(module)])
                hide.append(Path(module).parent / "__pycache__")  # the original bytecode would still load
            hide = [str(p) for p in [*hide, *default_hidden(self.course_root), *self.extra_hide] if p.exists()]
        isolated = self.protections.namespaces
        config = {"hide": hide, "binds": binds, "loopback_up": isolated,
                  "cover_parent": str(sandbox_base()) if isolated else None, "read_only": isolated,
                  "cell_timeout": self.limits.cell_seconds, "kernel_arguments": list(grading.KERNEL_ARGUMENTS),
                  "error_on_timeout": grading.ERROR_ON_TIMEOUT}
        prefix = list(UNSHARE) if self.protections.namespaces else []
        # the worker by its path, not -m: importing the tinyqnn package (NumPy and all) would be wasted there
        cmd = [*prefix, sys.executable, "-I", str(Path(__file__).with_name("sandbox_worker.py")), json.dumps(config)]
        limits = self.limits
        with open(self.log, "wb") as log:
            self.proc = subprocess.Popen(
                cmd, cwd=self.scratch, env=_base_env(self.scratch), stdin=subprocess.PIPE,
                stdout=subprocess.PIPE, stderr=log, start_new_session=True,
                preexec_fn=(lambda: _set_limits(limits)) if self.protections.rlimits else None)
        reply = self._receive(time.monotonic() + START_SECONDS, "starting the kernel")
        if not reply.get("ready"):
            raise SandboxError(f"the sandbox worker did not start: {reply}")
        if reply.get("hide_failed"):
            self.kill()
            raise SandboxError("could not hide " + ", ".join(reply["hide_failed"]))
        self.kernel_pid = reply.get("kernel_pid")
        self.started = time.monotonic()
        self.deadline = self.started + self.limits.notebook_seconds

    def kill(self) -> None:
        """Kill the worker's process group and the kernel's (a pid namespace takes every other process along)."""
        for pgid in (self.proc.pid if self.proc else None, self.kernel_pid):
            if pgid:
                try:
                    os.killpg(pgid, signal.SIGKILL)
                except (ProcessLookupError, PermissionError):
                    pass
        if self.proc is not None:
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pass

    def close(self) -> None:
        # No graceful shutdown: nothing in a sandbox outlives it, so the kernel's shutdown handshake (about a
        # second per submission) would buy nothing; the kill also takes whatever the submission left running.
        self.kill()
        if self.proc is not None:
            for stream in (self.proc.stdin, self.proc.stdout):
                try:
                    stream.close()
                except OSError:
                    pass
        if self._parent is not None:
            shutil.rmtree(self._parent, ignore_errors=True)

    def log_tail(self, chars: int = 2000) -> str:
        try:
            return self.log.read_bytes()[-chars:].decode("utf-8", "replace") if self.log else ""
        except OSError:
            return ""

    # ------------------------------------------------------------------ protocol

    def _send(self, message: dict) -> None:
        try:
            self.proc.stdin.write((json.dumps(message) + "\n").encode())
            self.proc.stdin.flush()
        except (BrokenPipeError, ValueError, OSError) as err:
            raise KernelDied(f"the sandbox worker is gone ({err}); log: {self.log_tail(500)}") from None

    def _receive(self, deadline: float, doing: str) -> dict:
        """One reply line, or NotebookTimeout/KernelDied: the grader never waits past ``deadline``."""
        fd = self.proc.stdout.fileno()
        with selectors.DefaultSelector() as sel:
            sel.register(fd, selectors.EVENT_READ)
            while b"\n" not in self._buffer:
                left = deadline - time.monotonic()
                if left <= 0:
                    self.kill()
                    raise NotebookTimeout(f"no answer from the sandbox while {doing}; killed it")
                if not sel.select(timeout=min(left, 1.0)):
                    continue
                chunk = os.read(fd, 1 << 20)
                if not chunk:
                    self.kill()
                    raise KernelDied(f"the sandbox worker exited while {doing} (exit {self.proc.returncode}); "
                                     f"log: {self.log_tail(500).strip()}")
                self._buffer += chunk
        line, self._buffer = self._buffer.split(b"\n", 1)
        try:
            return json.loads(line)
        except json.JSONDecodeError as err:
            self.kill()
            raise SandboxError(f"the sandbox worker broke the protocol ({err})") from None

    def remaining(self) -> float:
        return self.deadline - time.monotonic()

    def request(self, message: dict, doing: str, seconds: float | None = None) -> dict:
        """Send a request whose work is bounded by the notebook's time left (and ``seconds``, what is left of a
        grader-side test cell's limit); returns the worker's reply."""
        left = self.remaining()
        if left <= 0:
            self.kill()
            raise NotebookTimeout(f"the notebook used up its {self.limits.notebook_seconds} s limit")
        budget = max(1, int(min(self.limits.cell_seconds, left, float("inf") if seconds is None else seconds)))
        self._send({**message, "timeout": budget})
        # a cell gets GRACE_SECONDS to answer its interrupt, but nothing runs past the notebook limit (+2 s)
        reply = self._receive(min(time.monotonic() + budget + GRACE_SECONDS, self.deadline + 2.0), doing)
        if "dead" in reply:
            self.kill()
            raise KernelDied(reply["dead"])
        if "error" in reply:
            raise SandboxError(reply["error"])
        return reply

    def execute(self, cell: Any) -> Any:
        """Run one code cell in the kernel; returns the executed cell (outputs, execution count)."""
        import nbformat

        reply = self.request({"op": "execute", "cell": cell}, f"running cell {grading.grade_id(cell) or ''}".strip())
        return nbformat.from_dict(reply["cell"])


# ---------------------------------------------------------------------------------------------- notebooks

@dataclass
class SandboxRun:
    """An executed notebook and how the run ended: "ok", "timeout" (notebook limit) or "died"."""

    nb: Any
    status: str
    reason: str = ""
    seconds: float = 0.0
    protections: str = ""
    extra: dict = field(default_factory=dict)


def timeout_output(limits: Limits) -> dict:
    return {"output_type": "error", "ename": NOTEBOOK_TIMEOUT_ENAME,
            "evalue": f"the notebook ran past its {limits.notebook_seconds} s limit; this and later cells "
                      "were not run (endless loop?)",
            "traceback": [f"{NOTEBOOK_TIMEOUT_ENAME}: notebook limit of {limits.notebook_seconds} s reached"]}


def run_notebook(nb: Any, files: Mapping[str, bytes] | None = None, limits: Limits | None = None,
                 course_root: str | Path | None = None) -> SandboxRun:
    """Execute ``nb`` top to bottom in a fresh sandbox, continuing past errors as nbgrader does.

    At the notebook limit the running cell gets a ``NotebookTimeout`` error and later cells stay unrun;
    when the kernel dies the run is "died" (nbgrader then gives the whole notebook 0).
    """
    import copy

    nb = copy.deepcopy(nb)
    limits = limits or Limits()
    start = time.monotonic()
    status, reason = "ok", ""
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    try:
        with Sandbox(files or {}, limits, course_root) as box:
            for i, cell in enumerate(nb.cells):
                if cell.cell_type != "code":
                    continue
                try:
                    nb.cells[i] = box.execute(cell)
                except NotebookTimeout:
                    import nbformat

                    cell.outputs = [nbformat.from_dict(timeout_output(limits))]
                    status, reason = "timeout", timeout_output(limits)["evalue"]
                    break
    except KernelDied as err:
        status, reason = "died", str(err)
    return SandboxRun(nb, status, reason, time.monotonic() - start, protections().summary())
