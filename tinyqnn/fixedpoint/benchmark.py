"""Throughput of integer-only LeNet-5 inference against the float NumPy inference of the same model.

    python -m tinyqnn fixedpoint bench [--checkpoint CKPT] [--data-dir DIR] [--repeats 5]

Both run in this process on the same 10,000 images (the MNIST test set, or the bundled subset tiled to
10,000), batch 1000, alternating float / integer ``repeats`` times; the medians and their ratio are
reported, never one run. The naive loop (``tinyqnn.fixedpoint.mac``) is timed on a few images.
Without a checkpoint a seeded, untrained 2-bit LeNet-5 is used (the throughput does not depend on the
weights while nothing overflows). Pin BLAS to one thread (``OPENBLAS_NUM_THREADS=1``) on a shared machine.
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from ..args import add_data_dir_arg


def _images(data_dir: str | None, n: int) -> Any:
    """``n`` test images: the MNIST test set in ``data_dir`` (errors name the folder), else the bundled subset
    tiled to ``n`` (said in the output)."""
    from .. import data

    if data_dir is None:
        sub = data.mnist_subset(train=False)
        idx = np.arange(n) % len(sub)
        return data.MNIST.from_arrays(sub.images[idx], sub.labels[idx], False), "bundled subset tiled"
    test = data.MNIST(root=data_dir, train=False, download=False)
    if n < len(test):
        return data.MNIST.from_arrays(test.images[:n], test.labels[:n], False), "MNIST test set (first images)"
    return test, "MNIST test set"


def run_benchmark(model: Any, test_set: Any, repeats: int = 5, batch_size: int = 1000, naive_images: int = 2,
                  weight_bits: int = 8) -> dict[str, Any]:
    """Median images/s of float inference (the tinyqnn model) and integer inference (requant and thresholds)."""
    from .. import Tensor, no_grad
    from .convert import convert_lenet
    from .infer import integer_forward
    from .mac import naive_conv2d, naive_linear

    model.eval()
    imodel = convert_lenet(model, weight_bits, True, mean=test_set.mean, std=test_set.std)
    n = len(test_set)
    x_all, _ = test_set[np.arange(n)]
    pixels = test_set.images

    def float_run() -> None:
        with no_grad():
            for s in range(0, n, batch_size):
                model(Tensor(x_all[s:s + batch_size]))

    times: dict[str, list[float]] = {"float": [], "integer_requant": [], "integer_thresholds": []}
    for _ in range(repeats):  # alternate, so drifts of the machine hit all alike
        t = time.perf_counter(); float_run(); times["float"].append(time.perf_counter() - t)
        for method in ("requant", "thresholds"):
            t = time.perf_counter()
            integer_forward(imodel, pixels, method=method, batch_size=batch_size)
            times[f"integer_{method}"].append(time.perf_counter() - t)
    # the naive loops: every MAC a Python call (conv via naive_conv2d, then the same requant and pooling)
    t = time.perf_counter()
    _naive_forward(imodel, pixels[:naive_images], naive_conv2d, naive_linear)
    naive_s = time.perf_counter() - t
    med = {k: statistics.median(v) for k, v in times.items()}
    ips = {k: n / v for k, v in med.items()}
    return {"images": n, "repeats": repeats, "batch_size": batch_size, "median_seconds": med,
            "images_per_second": ips, "all_seconds": times,
            "ratio_requant_vs_float": ips["integer_requant"] / ips["float"],
            "ratio_thresholds_vs_float": ips["integer_thresholds"] / ips["float"],
            "naive_images": naive_images, "naive_images_per_second": naive_images / naive_s}


def _naive_forward(imodel: Any, pixels: np.ndarray, naive_conv2d: Any, naive_linear: Any) -> np.ndarray:
    from .infer import activation_levels, max_pool_int

    x = pixels[:, None].astype(np.int64)
    for layer in imodel.layers:
        if layer.kind == "conv":
            bias = layer.bias if layer.bias.ndim == 1 else None
            acc, _ = naive_conv2d(x, layer.weight, bias, layer.padding)
            if bias is None:
                acc = acc + layer.bias[None]
        else:
            acc, _ = naive_linear(x.reshape(len(x), -1), layer.weight, layer.accumulator_bias)
        if layer.act_bits is None:
            return acc  # the output layer's accumulators (its bias is added to the requantized logits)
        x = activation_levels(layer, acc, "requant")
        if layer.pool:
            x = max_pool_int(x, layer.pool)
    return x


COMMAND = "fixedpoint bench"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m tinyqnn fixedpoint bench", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--checkpoint", default=None, help="a trained checkpoint (tinyqnn.train.load_model)")
    add_data_dir_arg(p)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--images", type=int, default=10_000, help="how many test images (default: all 10,000)")
    p.add_argument("--naive-images", type=int, default=2)
    p.add_argument("--json", default=None, help="also write the numbers to this file")
    p.add_argument("--force", action="store_true", help="replace a --json file that this benchmark did not write")
    args = p.parse_args(argv)
    if args.json:  # refused now, not after the measurements
        from ..utils import RunFolderError, output_file, written_by

        try:
            output_file(args.json, COMMAND, lambda path: written_by(path, COMMAND), args.force)
        except RunFolderError as error:
            p.error(str(error))
    if args.checkpoint:
        from ..train import load_model  # the checkpoint's own record of its quantization setup

        try:
            model, _ = load_model(args.checkpoint)
        except (OSError, ValueError) as error:  # CheckpointError is a ValueError naming the file
            print(f"error: {error}", file=sys.stderr)
            return 2
    else:
        from .. import manual_seed
        from ..models import LeNet5
        from ..quant import QuantAct

        manual_seed(0)  # the paper's setup: scale-free batch norm, 2-bit ceil quantizer, paper's alpha
        model = LeNet5(batch_norm=True, bn_affine=False, activation=lambda name, n: QuantAct(2, None, "clipped_relu"))
    if args.images < 1 or args.repeats < 1 or args.naive_images < 1:
        p.error("--images, --repeats and --naive-images must be >= 1")
    try:
        test_set, where = _images(args.data_dir, args.images)
    except (OSError, ValueError) as error:  # a missing or broken data folder: say so, no traceback
        print(f"error: {error}", file=sys.stderr)
        return 2
    r = run_benchmark(model, test_set, repeats=args.repeats, naive_images=args.naive_images)
    ips = r["images_per_second"]
    print(f"LeNet-5 inference on {r['images']:,} images ({where}), batch {r['batch_size']}, "
          f"medians of {r['repeats']} alternating runs:")
    print(f"  float (tinyqnn, float32 BLAS)      {ips['float']:10,.0f} images/s")
    print(f"  integer, requant (M0/shift, ceil)  {ips['integer_requant']:10,.0f} images/s   "
          f"ratio {r['ratio_requant_vs_float']:.2f}x")
    print(f"  integer, thresholds                {ips['integer_thresholds']:10,.0f} images/s   "
          f"ratio {r['ratio_thresholds_vs_float']:.2f}x")
    print(f"  naive Python MAC loop              {r['naive_images_per_second']:10,.2f} images/s "
          f"({r['naive_images']} images)")
    if args.json:
        from ..utils import atomic_write_bytes, tag

        atomic_write_bytes(Path(args.json), json.dumps(tag(r, COMMAND), indent=2).encode())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
