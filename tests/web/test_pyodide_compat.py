"""What the browser course found in tinyqnn itself: behaviour that differs under Pyodide (Emscripten, wasm32)."""
from __future__ import annotations

from pathlib import Path

from tinyqnn.utils import atomic


def test_an_atomic_write_stays_readable_under_emscriptens_umask(tmp_path: Path, monkeypatch) -> None:
    # Emscripten reports a umask of 0o777; giving the finished file 0o666 & ~umask made it mode 0 there, and
    # lesson 7 then failed to read back its own run file (PermissionError) in the browser
    monkeypatch.setattr(atomic, "_umask", lambda: 0o777)
    target = tmp_path / "final.json"
    atomic.atomic_write_bytes(target, b"{}")
    assert target.stat().st_mode & 0o600 == 0o600
    assert target.read_bytes() == b"{}"


def test_an_atomic_write_keeps_the_usual_permissions_under_a_normal_umask(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(atomic, "_umask", lambda: 0o022)
    target = tmp_path / "a.bin"
    atomic.atomic_write_bytes(target, b"x")
    assert target.stat().st_mode & 0o777 == 0o644
