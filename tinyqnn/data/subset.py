"""Build the class-balanced subsets bundled with tinyqnn, deterministically, from the full datasets.

    python -m tinyqnn.data.subset --root DIR            # DIR holds mnist/ and fashion-mnist/ (e.g. /work/shared/data)
    python -m tinyqnn.data.subset --root DIR --out OUT  # write elsewhere (default: the package folder)

Selection: for every class c, the training (test) images of class c in file order, of which we take
``per_class`` evenly spaced ones (positions ``floor(k * n_c / per_class)``). No random numbers are
involved, so the choice depends only on the source files (which are checksum-verified).

The .npz holds x_train/y_train/x_test/y_test (uint8 / int64) plus train_indices/test_indices (int32
positions in the full files) and a "source" string array. Zip entries carry a fixed timestamp, so the
same input gives byte-identical output (with the same zlib).
"""
from __future__ import annotations

import argparse
import hashlib
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .datasets import BUNDLED_DIR
from .idx import PathLike
from .sources import FASHION_MNIST_SPEC, MNIST_SPEC, DatasetSpec, atomic_path, find_in_dir, load_verified


@dataclass(frozen=True)
class SubsetPlan:
    spec: DatasetSpec
    filename: str
    train_per_class: int
    test_per_class: int


# MNIST compresses well (~1.1 MB for 7000 images); Fashion-MNIST's textures do not, hence fewer images
PLANS = {
    "mnist": SubsetPlan(MNIST_SPEC, "mnist_subset.npz", train_per_class=600, test_per_class=100),
    "fashion-mnist": SubsetPlan(FASHION_MNIST_SPEC, "fashion_mnist_subset.npz", train_per_class=300, test_per_class=100),
}


def balanced_indices(labels: np.ndarray, per_class: int, num_classes: int = 10) -> np.ndarray:
    """Sorted positions of ``per_class`` evenly spaced samples of each class. labels: (N,) ints."""
    chosen = []
    for c in range(num_classes):  # 10 iterations, not a loop over samples
        members = np.flatnonzero(labels == c)
        if len(members) < per_class:
            raise ValueError(f"class {c} has only {len(members)} samples, {per_class} requested")
        chosen.append(members[(np.arange(per_class) * len(members)) // per_class])
    return np.sort(np.concatenate(chosen))


def build_arrays(plan: SubsetPlan, root: PathLike) -> dict[str, np.ndarray]:
    """Read the four full files from ``root`` (``root/<name>/`` or ``root/``, verified) and select the subset."""
    spec = plan.spec
    paths = find_in_dir(spec, root, list(spec.files))
    arrays: dict[str, np.ndarray] = {}
    for split, per_class in (("train", plan.train_per_class), ("test", plan.test_per_class)):
        images = load_verified(paths[f"{split}-images"], spec.files[f"{split}-images"])
        labels = load_verified(paths[f"{split}-labels"], spec.files[f"{split}-labels"])
        index = balanced_indices(labels, per_class)
        arrays[f"x_{split}"] = images[index]
        arrays[f"y_{split}"] = labels[index].astype(np.int64)
        arrays[f"{split}_indices"] = index.astype(np.int32)
    arrays["source"] = np.array([f"{spec.name} {fs.filename} md5={fs.md5}" for fs in spec.files.values()])
    return arrays


def save_npz(path: PathLike, arrays: dict[str, np.ndarray]) -> Path:
    """Like ``np.savez_compressed`` but reproducible: fixed entry order and timestamps. Written atomically."""
    path = Path(path)
    with atomic_path(path) as tmp:
        with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as archive:
            for name, array in arrays.items():
                info = zipfile.ZipInfo(f"{name}.npy", date_time=(1980, 1, 1, 0, 0, 0))
                info.compress_type = zipfile.ZIP_DEFLATED
                info.external_attr = 0o644 << 16
                with archive.open(info, "w") as entry:
                    np.lib.format.write_array(entry, np.ascontiguousarray(array), allow_pickle=False)
    return path


def build(name: str, root: PathLike, out_dir: PathLike = BUNDLED_DIR) -> Path:
    """Build the subset ``name`` ("mnist" or "fashion-mnist") from ``root`` into ``out_dir``; returns its path."""
    plan = PLANS[name]
    return save_npz(Path(out_dir) / plan.filename, build_arrays(plan, root))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tinyqnn.data.subset", description=__doc__.splitlines()[0])
    parser.add_argument("--root", required=True, help="folder with the full IDX files (mnist/, fashion-mnist/ or flat)")
    parser.add_argument("--out", default=str(BUNDLED_DIR), help="output folder (default: the tinyqnn/data package)")
    parser.add_argument("--only", choices=sorted(PLANS), help="build just one subset")
    args = parser.parse_args(argv)
    for name in [args.only] if args.only else list(PLANS):
        try:
            path = build(name, args.root, args.out)
        except (OSError, ValueError) as exc:  # missing folder/files, bad checksum, corrupt IDX
            parser.exit(1, f"error: cannot build the {name} subset from {args.root}: {exc}\n")
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        print(f"{path}: {path.stat().st_size / 1e6:.2f} MB, sha256 {digest}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
