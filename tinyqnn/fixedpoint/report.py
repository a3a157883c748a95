"""Side-by-side accuracy (float / fake-quantized / integer-only), per-layer costs and an energy estimate.

Energy per operation (45 nm, 0.9 V) from M. Horowitz, "Computing's energy problem (and what we can do
about it)", ISSCC 2014, pp. 10-14, Figure 1.1.9; each figure below carries that source. The estimate is
a first-order one: MACs x (multiply + add) plus every weight and activation bit read once per image, each
from the smallest memory of Horowitz's table that holds it (``memory_level``: 8 KB, 32 KB or 1 MB SRAM, else
DRAM): all weights and biases of the model in one memory, all output activations in another. The integer
LeNet-5's weights (about 80 KiB, conv1's per-position bias included) and the float32 ones (about 240 KiB)
both need the 1 MB SRAM. DRAM is quoted for fetching the weights once per image (an upper bound for a tiny
model that would stay on chip).
"""
from __future__ import annotations

import time
from typing import Any

import numpy as np

from .convert import IntegerLeNet, convert_lenet
from .infer import integer_forward
from .intrep import magnitude

_HOROWITZ = "Horowitz, ISSCC 2014, Fig. 1.1.9 (45 nm)"
#: picojoules per operation / per 64-bit memory read, with the source of each figure
ENERGY_PJ: dict[str, tuple[float, str]] = {
    "int8_add": (0.03, _HOROWITZ), "int32_add": (0.1, _HOROWITZ),
    "int8_mult": (0.2, _HOROWITZ), "int32_mult": (3.1, _HOROWITZ),
    "fp32_add": (0.9, _HOROWITZ), "fp32_mult": (3.7, _HOROWITZ),
    "sram_read_64bit_8kb": (10.0, _HOROWITZ), "sram_read_64bit_32kb": (20.0, _HOROWITZ),
    "sram_read_64bit_1mb": (100.0, _HOROWITZ), "dram_read_64bit": (1300.0, _HOROWITZ + ", 1.3-2.6 nJ; low end"),
}
#: the memories of Horowitz's table, smallest first: (name, capacity in bytes or None, key of its read energy)
MEMORY_LEVELS: tuple[tuple[str, int | None, str], ...] = (
    ("8 KB SRAM", 8 * 1024, "sram_read_64bit_8kb"), ("32 KB SRAM", 32 * 1024, "sram_read_64bit_32kb"),
    ("1 MB SRAM", 1024 * 1024, "sram_read_64bit_1mb"), ("DRAM", None, "dram_read_64bit"))


def memory_level(bits: int) -> tuple[str, str]:
    """(name, ENERGY_PJ key) of the smallest memory in ``MEMORY_LEVELS`` that holds ``bits`` bits: a read from a
    larger memory costs more (longer wires), so the figure must fit the data's size."""
    for name, capacity, key in MEMORY_LEVELS:
        if capacity is None or bits <= 8 * capacity:
            return name, key
    raise AssertionError("unreachable: the last level has no capacity limit")


def _accuracy_of_module(model: Any, test_set: Any, batch_size: int) -> np.ndarray:
    """Predictions (N,) of a tinyqnn module in eval mode on a dataset's normalised images."""
    from .. import Tensor, no_grad

    was_training = model.training
    model.eval()
    preds = []
    with no_grad():
        for start in range(0, len(test_set), batch_size):
            x, _ = test_set[np.arange(start, min(start + batch_size, len(test_set)))]
            preds.append(model(Tensor(x)).data.argmax(axis=1))
    model.train(was_training)
    return np.concatenate(preds)


def run_integer_report(model: Any, test_set: Any, weight_bits: int | None = 8, per_channel: bool | None = True,
                       method: str = "requant", float_model: Any = None, integer_model: IntegerLeNet | None = None,
                       acc_bits: int = 32, overflow: str = "wrap", batch_size: int = 1000) -> dict[str, Any]:
    """Float, fake-quantized and integer-only accuracy of a trained activation-quantized LeNet-5, and agreement.

    Args:
        model: the trained LeNet5 with QuantAct activations (float weights, or QuantConv2d/QuantLinear).
        test_set: a tinyqnn ImageDataset (raw ``images`` for the integer model, normalised batches otherwise).
        weight_bits, per_channel: weight quantization of the fake-quantized and the integer model (None: a
            QuantConv2d/QuantLinear layer's own setting, 8 bits per channel for float layers).
        method: the integer model's activation method ("requant" or "thresholds"); the other one is run too.
        float_model: optional float baseline (e.g. the demo's float LeNet-5) for the first column.
        integer_model: an already converted model (else converted here from ``model``).
    Returns:
        a dict with accuracies in % (``float``, ``trained``: the model as given, ``fake_quant``, ``integer``,
        ``integer_other_method``), ``agreement`` (fraction of images where integer and fake-quantized
        predictions agree), the two methods' agreement, timings and the settings.
    """
    from ..quant.convert import quantize_weights

    labels = np.asarray(test_set.labels)
    imodel = integer_model or convert_lenet(model, weight_bits, per_channel, method,
                                            mean=test_set.mean, std=test_set.std)
    # the same weights the integer model gets (quantize_weights leaves QuantConv2d/QuantLinear layers as they are)
    fq = quantize_weights(model, "symmetric", weight_bits or 8, True if per_channel is None else per_channel)
    result: dict[str, Any] = {"n_images": int(len(labels)), "weight_bits": weight_bits, "per_channel": per_channel,
                              "method": method, "acc_bits": acc_bits, "overflow": overflow}
    pct = lambda p: round(100.0 * float(np.mean(p == labels)), 4)  # noqa: E731
    if float_model is not None:
        result["float"] = pct(_accuracy_of_module(float_model, test_set, batch_size))
    result["trained"] = pct(_accuracy_of_module(model, test_set, batch_size))
    start = time.perf_counter()
    fq_pred = _accuracy_of_module(fq, test_set, batch_size)
    result["fake_quant_seconds"] = time.perf_counter() - start
    result["fake_quant"] = pct(fq_pred)
    other = "thresholds" if method == "requant" else "requant"
    start = time.perf_counter()
    logits, stats = integer_forward(imodel, test_set.images, method=method, acc_bits=acc_bits, overflow=overflow,
                                    batch_size=batch_size, collect=True)
    result["integer_seconds"] = time.perf_counter() - start
    other_logits, _ = integer_forward(imodel, test_set.images, method=other, acc_bits=acc_bits, overflow=overflow,
                                      batch_size=batch_size)
    pred, other_pred = logits.argmax(axis=1), other_logits.argmax(axis=1)
    result["integer"] = pct(pred)
    result["integer_other_method"] = {"method": other, "accuracy": pct(other_pred),
                                      "agreement_with_fake_quant": float(np.mean(other_pred == fq_pred))}
    result["agreement"] = float(np.mean(pred == fq_pred))
    result["methods_agree"] = float(np.mean(pred == other_pred))
    result["disagreeing_images"] = np.flatnonzero(pred != fq_pred).tolist()[:50]
    result["overflows"] = {name: s["overflows"] for name, s in stats.items()}
    return result


def summary_line(report: dict[str, Any]) -> str:
    """One printable line: float / fake-quantized / integer-only accuracy and their agreement."""
    parts = []
    if "float" in report:
        parts.append(f"float {report['float']:.2f}%")
    parts.append(f"fake-quantized {report['fake_quant']:.2f}%")
    parts.append(f"integer-only {report['integer']:.2f}%")
    return (f"integer MAC unit ({report['weight_bits']}-bit weights, {report['method']}): " + "   ".join(parts)
            + f"   (predictions agree on {100 * report['agreement']:.2f}% of {report['n_images']} images)")


def layer_report(imodel: IntegerLeNet, pixels: np.ndarray, acc_bits: int = 32, overflow: str = "wrap",
                 batch_size: int = 1000) -> list[dict[str, Any]]:
    """Per layer: MACs per image, weight / activation memory in bits, accumulator range reached on
    ``pixels`` vs the analytic bound (and the bits each needs), overflow counts, energy per image in pJ."""
    from .intrep import bits_needed

    _, stats = integer_forward(imodel, pixels, acc_bits=acc_bits, overflow=overflow, batch_size=batch_size,
                               collect=True)
    e = {k: v for k, (v, _) in ENERGY_PJ.items()}
    rows = []
    spatial = {"conv1": 28 * 28, "conv2": 10 * 10}
    out_counts = {layer.name: layer.weight.shape[0] * spatial.get(layer.name, 1) //
                  (layer.pool ** 2 if layer.pool else 1) for layer in imodel.layers}
    # one memory for all weights and biases, one for all output activations: each at the level its size needs
    # (the bias as stored: conv1's is per output position, F x 28 x 28 int32)
    int_weight_level = memory_level(sum(l.weight.size * l.weight_bits + l.bias.size * 32 for l in imodel.layers))
    float_weight_level = memory_level(sum((l.weight.size + l.weight.shape[0]) * 32 for l in imodel.layers))
    int_act_level = memory_level(sum(out_counts[l.name] * (l.act_bits or 32) for l in imodel.layers))
    float_act_level = memory_level(sum(out_counts[l.name] * 32 for l in imodel.layers))
    for layer in imodel.layers:
        f = layer.weight.shape[0]
        k = int(np.prod(layer.weight.shape[1:]))
        positions = spatial.get(layer.name, 1)
        macs = f * k * positions
        in_max = 2 ** layer.in_bits - 1
        w_abs = magnitude(layer.weight).reshape(f, -1).sum(axis=1)
        acc_bias = layer.accumulator_bias
        bias = 0 if acc_bias is None else magnitude(acc_bias).reshape(f, -1).max(axis=1)
        bound = int((in_max * w_abs + bias).max())
        out_bits = layer.act_bits or 32
        out_count = out_counts[layer.name]
        # as stored: conv1's int32 bias is per output position (F x 28 x 28), the others per channel
        stored_mem = layer.weight.size * layer.weight_bits + layer.bias.size * 32
        act_mem = out_count * out_bits
        s = stats[layer.name]
        reached = max(abs(s["acc_min"]), abs(s["acc_max"]))
        small = layer.weight_bits <= 8 and layer.in_bits <= 8  # an 8-bit multiplier suffices
        int_pj = macs * (e["int8_mult" if small else "int32_mult"] + e["int32_add"])
        float_pj = macs * (e["fp32_mult"] + e["fp32_add"])
        rows.append(dict(
            layer=layer.name, macs=macs, weight_bits=layer.weight_bits, in_bits=layer.in_bits,
            # the parameters (weights, one int32 bias per channel), and the memory they take as stored
            weight_memory_bits=layer.weight.size * layer.weight_bits + f * 32, memory_bits=stored_mem,
            activation_memory_bits=act_mem,
            float32_weight_memory_bits=(layer.weight.size + f) * 32, float32_activation_memory_bits=out_count * 32,
            acc_min=s["acc_min"], acc_max=s["acc_max"], acc_bits_reached=bits_needed(-reached, reached),
            acc_bound=bound, acc_bits_bound=bits_needed(-bound, bound), overflows=s["overflows"],
            outputs_overflowed=s["outputs_overflowed"],
            energy_int_mac_pj=int_pj, energy_float_mac_pj=float_pj,
            weight_memory=int_weight_level[0], activation_memory=int_act_level[0],
            float32_weight_memory=float_weight_level[0], float32_activation_memory=float_act_level[0],
            energy_int_sram_pj=stored_mem / 64 * e[int_weight_level[1]] + act_mem / 64 * e[int_act_level[1]],
            energy_float_sram_pj=((layer.weight.size + f) * 32 / 64 * e[float_weight_level[1]]
                                  + out_count * 32 / 64 * e[float_act_level[1]]),
            energy_int_dram_weights_pj=stored_mem / 64 * e["dram_read_64bit"],
        ))
    return rows


def _kib(rows: list[dict[str, Any]], key: str) -> str:
    return f"{sum(r[key] for r in rows) / 8 / 1024:,.1f} KiB"


def format_layer_report(rows: list[dict[str, Any]]) -> str:
    """The per-layer report as a Markdown table, followed by the energy sources."""
    head = ("| layer | MACs/image | weights + biases as stored (bits) | activations out (bits) | acc range reached | "
            "bits | analytic bound | bits | overflows | MAC energy int / fp32 (nJ) | memory int / fp32 (nJ) |")
    lines = [head, "|" + "---|" * 11]
    for r in rows:
        lines.append(
            f"| {r['layer']} | {r['macs']:,} | {r['memory_bits']:,} | {r['activation_memory_bits']:,} | "
            f"[{r['acc_min']:,}, {r['acc_max']:,}] | {r['acc_bits_reached']} | ±{r['acc_bound']:,} | "
            f"{r['acc_bits_bound']} | {r['overflows']:,} | {r['energy_int_mac_pj'] / 1e3:.2f} / "
            f"{r['energy_float_mac_pj'] / 1e3:.2f} | {r['energy_int_sram_pj'] / 1e3:.2f} / "
            f"{r['energy_float_sram_pj'] / 1e3:.2f} |")
    tot = lambda k: sum(r[k] for r in rows) / 1e3  # noqa: E731
    lines.append(f"| total | {sum(r['macs'] for r in rows):,} | {sum(r['memory_bits'] for r in rows):,} | "
                 f"{sum(r['activation_memory_bits'] for r in rows):,} | | | | | "
                 f"{sum(r['overflows'] for r in rows):,} | {tot('energy_int_mac_pj'):.2f} / "
                 f"{tot('energy_float_mac_pj'):.2f} | {tot('energy_int_sram_pj'):.2f} / "
                 f"{tot('energy_float_sram_pj'):.2f} |")
    lines.append("")
    lines.append("Energy per operation: " + "; ".join(f"{k} {v} pJ ({src})" for k, (v, src) in ENERGY_PJ.items())
                 + ". Integer MAC = 8-bit multiply (32-bit for wider operands) + 32-bit add; float MAC = fp32 "
                 "multiply + fp32 add; memory: each weight and output activation bit read once per image (64-bit "
                 "reads) from the smallest memory that holds them all: weights and biases "
                 f"{_kib(rows, 'memory_bits')} in {rows[0]['weight_memory']} (float32: "
                 f"{_kib(rows, 'float32_weight_memory_bits')} in {rows[0]['float32_weight_memory']}), activations "
                 f"{_kib(rows, 'activation_memory_bits')} in {rows[0]['activation_memory']} (float32: "
                 f"{_kib(rows, 'float32_activation_memory_bits')} in {rows[0]['float32_activation_memory']}).")
    return "\n".join(lines)
