"""The process inside the grading sandbox: one Jupyter kernel, driven cell by cell by the grader.

Started by ``tinyqnn.course.sandbox.Sandbox`` (never by hand) as ``python -I -m tinyqnn.course.sandbox_worker
CONFIG_JSON``, with rlimits already set, a scrubbed environment, the scratch folder as working directory and,
where the OS allows, inside fresh user/network/mount/pid namespaces. Protocol: one JSON request per line on
stdin, one JSON reply per line on a private copy of stdout (the kernel inherits fd 1 and 2 pointing at
/dev/null and the log, so a submission cannot write into the reply stream).

Requests: ``{"op": "execute", "cell": CELL, "timeout": S}`` -> ``{"cell": EXECUTED}`` or ``{"dead": WHY}``;
``{"op": "rpc_setup", "code": C}`` and ``{"op": "rpc", "payload": B64}`` (``Relay``; see
``tinyqnn.course.remote``); ``{"op": "close"}``.
This module imports only the standard library and nbclient: it runs before the kernel exists.
"""
from __future__ import annotations

import ctypes
import errno
import json
import os
import re
import sys
from pathlib import Path
from typing import Any

CLONE_NEWNS = 0x00020000
CLONE_NEWUSER = 0x10000000
MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC, MS_REMOUNT, MS_BIND = 1, 2, 4, 8, 32, 4096
MS_NOATIME, MS_NODIRATIME, MS_RELATIME, MS_STRICTATIME = 1024, 2048, 1 << 21, 1 << 24
#: per-mount options a remount in a user namespace must keep (the kernel locks them; dropping one is EPERM)
_KEPT_OPTIONS = {"nosuid": MS_NOSUID, "nodev": MS_NODEV, "noexec": MS_NOEXEC, "noatime": MS_NOATIME,
                 "nodiratime": MS_NODIRATIME, "relatime": MS_RELATIME, "strictatime": MS_STRICTATIME}
#: mounts left writable: kernel interfaces, not files (a pid namespace's /proc, sysfs, terminals)
_KEEP_WRITABLE = ("/proc", "/sys", "/dev/pts")


def _cover_dir(libc: Any, path: bytes) -> bool:
    return libc.mount(b"tmpfs", path, b"tmpfs", MS_NOSUID | MS_NODEV, b"size=16k,mode=755") == 0


def _read_only(libc: Any, path: bytes) -> bool:
    return libc.mount(b"tmpfs", path, b"tmpfs", MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV, None) == 0


def _mounts() -> list[tuple[str, set[str]]]:
    """(mount point, its per-mount options) of every mount this namespace sees, from /proc/self/mountinfo."""
    found = []
    with open("/proc/self/mountinfo", encoding="utf-8") as info:
        for line in info:
            fields = line.split()
            # a space, tab, newline or backslash in a path is written as an octal escape (\040)
            point = re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), fields[4])
            found.append((point, set(fields[5].split(","))))
    return found


def read_only_except(writable: str) -> list[str]:
    """Remount every mount of this namespace read-only except ``writable`` (the scratch folder, a mount of its
    own) and the kernel interfaces in ``_KEEP_WRITABLE``: a submission can then change no file outside its own
    folder, neither tinyqnn's nor NumPy's nor the grader's (a root grader's user namespace would let it write
    anywhere; an ordinary user's, wherever that user can). Returns the mount points it could not remount."""
    libc = ctypes.CDLL(None, use_errno=True)
    failed = []
    for point, options in _mounts():
        if point == writable or "ro" in options or any(point == k or point.startswith(k + "/")
                                                        for k in _KEEP_WRITABLE):
            continue
        flags = MS_REMOUNT | MS_BIND | MS_RDONLY
        for option in options:
            flags |= _KEPT_OPTIONS.get(option, 0)
        if libc.mount(None, os.fsencode(point), None, flags, None) != 0:
            error = ctypes.get_errno()
            if error != errno.ENOENT:  # a mount point hidden under another mount (a covered folder's)
                failed.append(f"{point} (read-only: {os.strerror(error)})")
    return failed


def hide_paths(paths: list[str], cover_parent: str | None = None, binds: list[list[str]] = (),
               read_only: bool = False) -> list[str]:
    """Cover each path (a folder: an empty read-only tmpfs; a file: /dev/null) in this mount namespace, then
    enter a nested user+mount namespace so that the covers are locked: the kernel, which inherits no
    capability over the covering namespace, cannot unmount them. Returns the paths it could not cover.

    ``binds``: (file, target) pairs, each file mounted over its target first.
    ``cover_parent``: a folder covered the same way except for the working directory somewhere inside it,
    which is mounted back at the same path (other sandboxes' scratch folders sit beside it).
    ``read_only``: then every other mount is made read-only (``read_only_except``), the working directory
    excepted (it needs ``cover_parent``, which makes it a mount of its own).
    """
    libc = ctypes.CDLL(None, use_errno=True)
    failed = []
    own_mount = None  # the working directory, once it is a mount of its own
    for source, target in binds:  # a file the kernel sees instead of another (a redacted module)
        if libc.mount(os.fsencode(source), os.fsencode(target), None, MS_BIND, None) != 0:
            failed.append(f"{target} ({os.strerror(ctypes.get_errno())})")
    if cover_parent:
        here = os.getcwd()
        fd = os.open(here, os.O_PATH)
        parent = os.fsencode(cover_parent)
        inner = os.path.join(cover_parent, os.path.relpath(here, cover_parent))
        ok = _cover_dir(libc, parent)
        if ok:
            os.makedirs(inner)
            ok = libc.mount(os.fsencode(f"/proc/self/fd/{fd}"), os.fsencode(inner), None, MS_BIND, None) == 0
            ok = ok and _read_only(libc, parent)
        if not ok:
            failed.append(f"{cover_parent} ({os.strerror(ctypes.get_errno())})")
        else:
            os.chdir(inner)
            own_mount = inner
        os.close(fd)
    for path in paths:
        p = os.fsencode(path)
        if os.path.isdir(path):
            # read-only after mounting, so nothing can be planted there either
            ok = _cover_dir(libc, p) and _read_only(libc, p)
        else:
            ok = libc.mount(b"/dev/null", p, None, MS_BIND, None) == 0
        if not ok:
            failed.append(f"{path} ({os.strerror(ctypes.get_errno())})")
    if read_only:
        if own_mount is not None:
            failed += read_only_except(own_mount)
        else:
            failed.append("(read-only file system: the working directory is not a mount of its own)")
    if libc.unshare(CLONE_NEWUSER | CLONE_NEWNS) != 0:
        failed.append(f"(nested namespace: {os.strerror(ctypes.get_errno())}; covers could be undone)")
    return failed


def loopback_up() -> None:
    """Bring up ``lo`` in a fresh network namespace (it starts down): loopback only, no route outside."""
    import fcntl
    import socket
    import struct

    siocgifflags, siocsifflags, iff_up = 0x8913, 0x8914, 0x1
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        flags = struct.unpack("16sh", fcntl.ioctl(sock, siocgifflags, struct.pack("16sh", b"lo", 0)))[1]
        fcntl.ioctl(sock, siocsifflags, struct.pack("16sh", b"lo", flags | iff_up))


def _reply(stream: Any, message: dict) -> None:
    stream.write(json.dumps(message) + "\n")
    stream.flush()


def main(argv: list[str]) -> int:
    config = json.loads(argv[0])
    # Private reply channel: fd 1 is re-pointed at /dev/null before the kernel (which inherits it) exists.
    replies = os.fdopen(os.dup(1), "w", encoding="utf-8")
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)
    if config.get("loopback_up"):
        # before hide_paths, which gives up the namespace capabilities: the kernel talks to us over TCP on
        # 127.0.0.1 (ZMQ's ipc transport loses interrupts)
        loopback_up()
    failed = (hide_paths(config["hide"], config.get("cover_parent"), config.get("binds", []),
                         config.get("read_only", False))
              if config.get("hide") else [])

    # nbformat imports jsonschema, which builds parsers for every optional format checker it finds installed;
    # rfc3987_syntax's (an Earley grammar for IRIs, a format no notebook schema uses) costs ~2 s of CPU per
    # sandbox, more than everything else the worker does. Hidden from the import, jsonschema skips that checker.
    sys.modules.setdefault("rfc3987_syntax", None)  # type: ignore[assignment]
    import nbformat
    from nbclient import NotebookClient
    from nbclient.exceptions import DeadKernelError

    cwd = Path.cwd()
    nb = nbformat.v4.new_notebook(metadata={"kernelspec": {"name": "python3", "display_name": "Python 3",
                                                           "language": "python"}})
    client = NotebookClient(nb, kernel_name="python3", timeout=config["cell_timeout"], allow_errors=True,
                            interrupt_on_timeout=True, error_on_timeout=config["error_on_timeout"],
                            extra_arguments=list(config["kernel_arguments"]),
                            resources={"metadata": {"path": str(cwd)}})
    timeout = {"value": config["cell_timeout"]}
    client.timeout_func = lambda cell: timeout["value"]
    on_executed = record_missing_error
    client.on_cell_executed = on_executed
    def run_cell(cell: Any, seconds: float, keep: bool) -> bool:
        """Execute ``cell`` (kept in the notebook, or a grader's probe that is not); False once the kernel died,
        which has been replied."""
        timeout["value"] = seconds
        nb.cells.append(cell)  # nbclient stores the executed cell back by index
        try:
            client.execute_cell(cell, len(nb.cells) - 1, store_history=keep)
        except DeadKernelError as err:
            _reply(replies, {"dead": f"the kernel died ({err})"})
            return False
        finally:
            if not keep:
                nb.cells.pop()
        return True

    with client.setup_kernel():
        rpc = Relay(client, run_cell, replies)
        _reply(replies, {"ready": True, "kernel_pid": _kernel_pid(client),
                         "hide_failed": failed})
        for line in sys.stdin:
            request = json.loads(line)
            op = request.get("op")
            if op != "rpc" and not rpc.stop():
                return 0
            if op == "close":
                break
            seconds = request.get("timeout", config["cell_timeout"])
            if op == "execute":
                cell = nbformat.from_dict(request["cell"])
                if not run_cell(cell, seconds, keep=True):
                    return 0
                _reply(replies, {"cell": cell})
            elif op == "rpc_setup":  # tinyqnn.course.remote: the kernel connects back to us over loopback
                if not rpc.setup(request, seconds):
                    return 0
            elif op == "rpc":
                if not rpc.relay(request["payload"], seconds):
                    return 0
            elif op == "run":  # code whose single text/plain result the grader reads (tinyqnn.course.verdict)
                cell = nbformat.v4.new_code_cell(request["code"])
                if not run_cell(cell, seconds, keep=False):
                    return 0
                _reply(replies, {"outputs": cell.outputs})
            else:
                _reply(replies, {"error": f"unknown request {op!r}"})
    return 0


class Relay:
    """The grader's calls into the kernel (``tinyqnn.course.remote``): while a grader-side test cell runs, the
    kernel runs ``remote.SERVE`` and answers messages on a loopback socket; this relays them, one message in,
    one message out (the grader's request, the kernel's answer or its call back to the grader)."""

    def __init__(self, client: Any, run_cell: Any, replies: Any):
        self.client, self.run_cell, self.replies = client, run_cell, replies
        self.sock: Any = None
        self.serving: str | None = None   # msg_id of the running serve cell
        self.broken = ""
        self.serve_code, self.end = "", b""

    def setup(self, request: dict, seconds: float) -> bool:
        """Run the grader's helper code (``request["code"]``), which connects back; ``request["serve"]`` is the
        code of the serve cell and ``request["end"]`` (base64) the message that ends it."""
        import base64
        import secrets
        import socket

        import nbformat

        token = secrets.token_hex(16)
        with socket.create_server(("127.0.0.1", 0)) as listener:
            listener.settimeout(seconds)
            port = listener.getsockname()[1]
            self.serve_code, self.end = request["serve"], base64.b64decode(request["end"])
            cell = nbformat.v4.new_code_cell(f"{request['code']}\n__tinyqnn_connect__({port}, {token!r})\n")
            if not self.run_cell(cell, seconds, keep=False):
                return False
            try:
                listener.settimeout(1.0)
                sock, _ = listener.accept()
                sock.settimeout(seconds)
                if _recv_exactly(sock, len(token)) != token.encode():
                    raise OSError("wrong token")
                sock.settimeout(None)
                self.sock = sock
            except OSError:
                pass
        _reply(self.replies, {"outputs": cell.outputs, "connected": self.sock is not None})
        return True

    def relay(self, payload: str, seconds: float) -> bool:
        import base64
        import select

        if self.sock is None or self.broken:
            _reply(self.replies, {"payload": "", "why": self.broken or "no grading helper in the kernel"})
            return True
        if self.serving is None:
            self.serving = self.client.kc.execute(self.serve_code, store_history=False, allow_stdin=False)
        data = base64.b64decode(payload)
        try:
            self.sock.sendall(len(data).to_bytes(8, "big") + data)
            timed_out = not select.select([self.sock], [], [], seconds)[0]
            if timed_out:  # a runaway call: interrupt it as nbclient would interrupt a cell
                from nbclient.util import run_sync

                run_sync(self.client.km.interrupt_kernel)()
                if not select.select([self.sock], [], [], 5.0)[0]:
                    self.broken = "the kernel did not answer after an interrupt"
                    _reply(self.replies, {"timed_out": True, "payload": ""})
                    return True
            head = _recv_exactly(self.sock, 8)
            answer = _recv_exactly(self.sock, int.from_bytes(head, "big")) if head else None
        except OSError as err:
            answer, self.broken = None, f"the connection to the kernel failed ({err})"
        if answer is None:
            self.broken = self.broken or "the kernel closed the connection"
            _reply(self.replies, {"payload": "", "why": self.broken})
            return True
        _reply(self.replies, {"payload": base64.b64encode(answer).decode(), "timed_out": timed_out})
        return True

    def stop(self) -> bool:
        """End the serve cell (before a cell or other request runs in the kernel); False if the kernel died."""
        from nbclient.exceptions import DeadKernelError

        if self.serving is None:
            return True
        msg_id, self.serving = self.serving, None
        if not self.broken:
            try:
                self.sock.sendall(len(self.end).to_bytes(8, "big") + self.end)
            except OSError as err:
                self.broken = f"the connection to the kernel failed ({err})"
        try:
            self.client.wait_for_reply(msg_id)
        except DeadKernelError as err:
            _reply(self.replies, {"dead": f"the kernel died ({err})"})
            return False
        except Exception as err:  # noqa: BLE001  (a wedged serve cell: its time-out handling interrupted it)
            self.broken = self.broken or f"the grading helper stopped answering ({err})"
        return True


def _recv_exactly(sock: Any, n: int) -> bytes | None:
    chunks = []
    while n:
        chunk = sock.recv(min(n, 1 << 20))
        if not chunk:
            return None
        chunks.append(chunk)
        n -= len(chunk)
    return b"".join(chunks)


def _kernel_pid(client: Any) -> int | None:
    provisioner = getattr(client.km, "provisioner", None)
    return getattr(provisioner, "pid", None)


def record_missing_error(cell: Any = None, execute_reply: Any = None, **_: Any) -> None:
    """As nbgrader's Execute.on_cell_executed: an error reply with no error output still counts as an error
    (shared with ``check.execute_notebook``)."""
    from nbformat import NotebookNode

    if execute_reply is None or execute_reply["content"]["status"] != "error":
        return
    content = execute_reply["content"]
    if any(o.get("output_type") == "error" and o.get("ename") == content["ename"] for o in cell.outputs):
        return
    cell.outputs.append(NotebookNode(output_type="error", ename=content["ename"], evalue=content["evalue"],
                                     traceback=content["traceback"] or ["ERROR: (no traceback)"]))


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
