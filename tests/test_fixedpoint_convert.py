"""LeNet-5 -> IntegerLeNet: agreement with the fake-quantized model, the ceil rule exactly, files and errors."""
from __future__ import annotations

import json
import zipfile

import numpy as np
import pytest

import tinyqnn as tq
from tinyqnn import nn, optim
from tinyqnn.data import mnist_subset
from tinyqnn.fixedpoint.accumulate import int_conv2d, int_linear
from tinyqnn.fixedpoint.benchmark import _naive_forward
from tinyqnn.fixedpoint.convert import (
    IntegerModelError, convert_lenet, load_integer_model, quantize_weight_int, save_integer_model,
)
from tinyqnn.fixedpoint.infer import activation_levels, integer_forward, max_pool_int
from tinyqnn.fixedpoint.mac import naive_conv2d, naive_linear
from tinyqnn.fixedpoint.requant import multiply_by_quantized_multiplier
from tinyqnn.fixedpoint.report import layer_report, run_integer_report, summary_line
from tinyqnn.fixedpoint.sweep import accumulator_sweep
from tinyqnn.models import LeNet5
from tinyqnn.quant import QuantAct, quantize_symmetric, quantize_weights


def _train(model: nn.Module, steps: int = 60, seed: int = 0) -> nn.Module:
    """A few SGD steps on the bundled subset: enough for real batch-norm statistics and a working net."""
    train = mnist_subset(train=True)
    rng = np.random.default_rng(seed)
    opt = optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    model.train()
    for _ in range(steps):
        x, y = train[rng.integers(0, len(train), 64)]
        loss = nn.functional.cross_entropy(model(tq.Tensor(x)), tq.Tensor(y))
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.eval()
    return model


def _quant_lenet(bits: int = 2, affine: bool = False) -> nn.Module:
    tq.manual_seed(0)
    return LeNet5(batch_norm=True, bn_affine=affine, activation=lambda name, n: QuantAct(bits, None, "clipped_relu"))


@pytest.fixture(scope="module")
def trained() -> nn.Module:
    return _train(_quant_lenet(2))


@pytest.fixture(scope="module")
def test_set():
    return mnist_subset(train=False)


def _assert_agrees_but_for_near_ties(imodel, fq: nn.Module, test_set) -> None:
    """Integer and fake-quantized (float64) predictions agree on every image whose integer logits' top two are
    more than one unit apart: the logits are requantized and their bias rounded to a unit of 1/256 of the finest
    accumulator unit, so closer logits may tie or swap. Which images those are depends on the trained weights,
    hence on the BLAS kernels that trained them, so the rule is checked, not a count of lucky images."""
    fq = fq.double()  # float64: no float32 near-ties on the reference side
    fq.eval()
    with tq.no_grad():
        want = fq(tq.Tensor(test_set[np.arange(len(test_set))][0].astype(np.float64))).data.argmax(axis=1)
    logits = integer_forward(imodel, test_set.images)[0]
    got = logits.argmax(axis=1)
    top2 = np.sort(logits, axis=1)[:, -2:]
    near_tie = top2[:, 1] - top2[:, 0] <= 1
    assert np.all((got == want) | near_tie), f"disagreements that are not near-ties: {np.nonzero((got != want) & ~near_tie)[0]}"
    assert np.mean(got == want) >= 0.99
    acc_int, acc_fq = (100 * np.mean(p == test_set.labels) for p in (got, want))
    assert abs(acc_int - acc_fq) <= 0.5


@pytest.mark.parametrize("weight_bits, per_channel", [(8, True), (4, False)])
@pytest.mark.parametrize("method", ["requant", "thresholds"])
def test_integer_model_agrees_with_the_fake_quantized_model(trained, test_set, weight_bits, per_channel, method):
    _assert_agrees_but_for_near_ties(convert_lenet(trained, weight_bits, per_channel, method),
                                     quantize_weights(trained, "symmetric", weight_bits, per_channel), test_set)


def _reference_levels(layer, acc_without_bias: np.ndarray) -> np.ndarray:
    """clip(ceil(M (acc + B)), 0, 2^b - 1) with the real M and B, in float64: the ceil rule, unrounded."""
    shape = (1, -1) + (1,) * (acc_without_bias.ndim - 2)
    b = layer.bias_real[None] if layer.bias_real.ndim > 1 else layer.bias_real.reshape(shape)
    return np.clip(np.ceil(layer.multiplier.reshape(shape) * (acc_without_bias + b)), 0, 2 ** layer.act_bits - 1)


def test_both_methods_produce_exactly_the_ceil_rule_in_every_layer(trained, test_set):
    imodel = convert_lenet(trained, 8, True)
    x = test_set.images[:300, None].astype(np.int64)
    for layer in imodel.layers[:-1]:
        if layer.kind == "linear":
            x = x.reshape(len(x), -1)
            acc, _ = int_linear(x, layer.weight)
        else:
            acc, _ = int_conv2d(x, layer.weight, padding=layer.padding)
        per_channel = (1, -1) + (1,) * (acc.ndim - 2)
        biased = acc + (layer.bias[None] if layer.bias.ndim > 1 else layer.bias.reshape(per_channel))
        want = _reference_levels(layer, acc)
        for method in ("requant", "thresholds"):
            got = activation_levels(layer, biased, method)
            np.testing.assert_array_equal(got, want, err_msg=f"{layer.name} {method}")
        x = want.astype(np.int64)
        if layer.pool:
            x = max_pool_int(x, layer.pool)


def test_first_layer_levels_match_the_float_model(trained, test_set):
    """The integer conv1 levels equal the fake-quantized model's act1 output / alpha (float32 noise aside)."""
    imodel = convert_lenet(trained, 8, True)
    fq = quantize_weights(trained, "symmetric", 8, True)
    fq.eval()
    x, _ = test_set[np.arange(200)]
    with tq.no_grad():
        float_levels = fq.act1(fq.bn1(fq.conv1(tq.Tensor(x)))).data / fq.act1.alpha
    layer = imodel.layers[0]
    acc, _ = int_conv2d(test_set.images[:200, None].astype(np.int64), layer.weight, padding=2)
    levels = activation_levels(layer, acc + layer.bias[None], "requant")
    assert np.mean(levels == np.rint(float_levels)) > 0.9999


def test_negative_batch_norm_scale_is_folded_by_flipping_the_channel(test_set):
    model = _train(_quant_lenet(2, affine=True), steps=30)
    model.bn1.weight.data[:3] *= -1  # some channels with gamma < 0
    model.bn3.weight.data[::2] *= -1
    _assert_agrees_but_for_near_ties(convert_lenet(model, 8, True), quantize_weights(model, "symmetric", 8, True),
                                     test_set)


def test_integer_weights_are_the_fake_quantized_weights(trained):
    w = trained.conv2.weight.data
    for per_channel in (True, False):
        q, s = quantize_weight_int(w, 4, per_channel)
        assert np.abs(q).max() <= 7
        np.testing.assert_allclose(q * s.reshape(-1, 1, 1, 1), quantize_symmetric(w, 4, per_channel), rtol=1e-6)


def test_vectorized_inference_is_bit_exact_against_the_naive_loops(trained, test_set):
    imodel = convert_lenet(trained, 8, True)
    pixels = test_set.images[:2]
    naive = _naive_forward(imodel, pixels, naive_conv2d, naive_linear)  # stops at fc3's accumulators
    logits, _ = integer_forward(imodel, pixels)
    last = imodel.layers[-1]
    np.testing.assert_array_equal(logits, multiply_by_quantized_multiplier(naive, last.quantized_multiplier[None],
                                                                           last.shift[None]) + last.bias[None])


def test_save_load_round_trip_states_every_width(trained, test_set, tmp_path):
    imodel = convert_lenet(trained, 6, False, "thresholds", provenance={"note": "test"})
    path = save_integer_model(imodel, tmp_path / "m.npz")
    with np.load(path, allow_pickle=False) as archive:  # no pickle anywhere
        meta = json.loads(str(archive["meta"]))
        keys = set(archive.files)
    assert meta["note"] == "test" and meta["default_method"] == "thresholds"
    for layer in meta["layers"]:
        for key, facts in layer["tensors"].items():
            assert f"{layer['name']}/{key}" in keys
            assert "bits" in facts and facts["provenance"]
        assert layer["tensors"]["weight"]["bits"] == 6
    loaded = load_integer_model(path)
    assert loaded.method == "thresholds"
    a = integer_forward(imodel, test_set.images[:100])[0]
    b = integer_forward(loaded, test_set.images[:100])[0]
    np.testing.assert_array_equal(a, b)


def _rewrite(path, out, edit):
    with np.load(path, allow_pickle=False) as archive:
        arrays = {k: archive[k] for k in archive.files}
    meta = json.loads(str(arrays["meta"]))
    edit(arrays, meta)
    arrays["meta"] = np.array(json.dumps(meta))
    np.savez(out, **arrays)
    return out


def test_truncated_and_inconsistent_files_raise(trained, tmp_path):
    path = save_integer_model(convert_lenet(trained, 8, True), tmp_path / "m.npz")
    data = path.read_bytes()
    (tmp_path / "cut.npz").write_bytes(data[: len(data) // 2])
    with pytest.raises(IntegerModelError, match="truncated"):
        load_integer_model(tmp_path / "cut.npz")
    with pytest.raises(IntegerModelError, match="does not exist"):
        load_integer_model(tmp_path / "missing.npz")

    def too_wide(arrays, meta):
        arrays["conv2/weight"] = arrays["conv2/weight"].astype(np.int16)
        arrays["conv2/weight"].flat[0] = 300  # does not fit the stated 8 bits
    with pytest.raises(IntegerModelError, match="conv2/weight does not fit 8-bit signed"):
        load_integer_model(_rewrite(path, tmp_path / "a.npz", too_wide))

    def other_scale(arrays, meta):
        meta["layers"][2]["in_scale"] *= 1.5  # fc1 reads another scale than conv2 writes
    with pytest.raises(IntegerModelError, match="mismatched scales"):
        load_integer_model(_rewrite(path, tmp_path / "b.npz", other_scale))

    def missing(arrays, meta):
        del arrays["fc2/thresholds"]
    with pytest.raises(IntegerModelError, match="fc2/thresholds is listed in meta but missing"):
        load_integer_model(_rewrite(path, tmp_path / "c.npz", missing))

    def wrong_shape(arrays, meta):
        arrays["fc1/shift"] = arrays["fc1/shift"][:5]
        meta["layers"][2]["tensors"]["shift"]["shape"] = [5]
    with pytest.raises(IntegerModelError, match="fc1/shift has shape"):
        load_integer_model(_rewrite(path, tmp_path / "d.npz", wrong_shape))

    with zipfile.ZipFile(tmp_path / "e.npz", "w") as z:
        z.writestr("x.npy", b"not an array")
    with pytest.raises(IntegerModelError):
        load_integer_model(tmp_path / "e.npz")


def test_conversion_and_input_errors(trained, test_set):
    tq.manual_seed(0)
    with pytest.raises(ValueError, match="act1 is ReLU, not a QuantAct"):
        convert_lenet(LeNet5(batch_norm=True).eval())
    with pytest.raises(ValueError, match="weight_bits must be in 2..16"):
        convert_lenet(trained, weight_bits=1)
    with pytest.raises(ValueError, match="method"):
        convert_lenet(trained, method="lut")
    imodel = convert_lenet(trained)
    with pytest.raises(ValueError, match=r"\(N, 28, 28\)"):
        integer_forward(imodel, np.zeros((2, 1, 32, 32), dtype=np.uint8))
    with pytest.raises(ValueError, match="input pixels does not fit 8-bit unsigned"):
        integer_forward(imodel, np.full((1, 28, 28), 256))


def test_report_and_layer_costs(trained, test_set):
    report = run_integer_report(trained, test_set, weight_bits=8, per_channel=True, float_model=trained)
    # near-ties of the logits may swap (see _assert_agrees_but_for_near_ties, which checks the exact rule)
    assert report["agreement"] >= 0.99 and report["integer_other_method"]["agreement_with_fake_quant"] >= 0.99
    assert abs(report["integer"] - report["fake_quant"]) <= 0.1
    line = summary_line(report)
    assert f"{report['integer']:.2f}%" in line and "fake-quantized" in line
    rows = layer_report(convert_lenet(trained), test_set.images[:200])
    macs = {r["layer"]: r["macs"] for r in rows}
    assert macs == {"conv1": 6 * 25 * 28 * 28, "conv2": 16 * 150 * 10 * 10, "fc1": 120 * 400, "fc2": 84 * 120,
                    "fc3": 10 * 84}
    for r in rows:
        assert max(-r["acc_min"], r["acc_max"]) <= r["acc_bound"]  # reached range within the analytic bound
        assert r["overflows"] == 0
        assert r["energy_int_mac_pj"] < r["energy_float_mac_pj"]


def test_sweep_wide_accumulators_never_overflow_narrow_ones_do(trained, test_set):
    imodel = convert_lenet(trained)
    rows = accumulator_sweep(imodel, test_set.images[:40], test_set.labels[:40], widths=(12, 32))
    by = {(r["mode"], r["acc_bits"]): r for r in rows}
    for mode in ("wrap", "saturate"):
        assert by[(mode, 32)]["overflows"] == 0 and by[(mode, 32)]["agreement_with_exact"] == 1.0
        assert by[(mode, 12)]["overflows"] > 0


def test_cli_evaluate_and_sweep_on_a_saved_model(trained, tmp_path, capsys):
    from tinyqnn.cli import main

    path = save_integer_model(convert_lenet(trained), tmp_path / "m.npz")
    assert main(["fixedpoint", "evaluate", str(path), "--dataset", "mnist-subset", "--limit", "60",
                 "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "integer-only accuracy" in out and "conv1" in out
    assert main(["fixedpoint", "sweep", str(path), "--dataset", "mnist-subset", "--limit", "20", "--min-bits", "15",
                 "--max-bits", "16", "--out", str(tmp_path / "sw"), "--no-progress"]) == 0
    rows = json.loads((tmp_path / "sw" / "sweep.json").read_text())["rows"]
    assert [(r["mode"], r["acc_bits"]) for r in rows] == [("wrap", 15), ("wrap", 16), ("saturate", 15),
                                                          ("saturate", 16)]
    assert (tmp_path / "sw" / "sweep.png").stat().st_size > 0
    assert main(["fixedpoint", "evaluate", str(tmp_path / "nope.npz"), "--dataset", "mnist-subset"]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_thresholds_by_hand_including_exact_ties():
    from tinyqnn.fixedpoint.thresholds import apply_thresholds, compute_thresholds

    # M = 0.5, B = 0, 2 bits: level = clip(ceil(acc / 2), 0, 3); acc > 2 (k - 1) reaches level k
    t = compute_thresholds(np.array([0.5]), np.array([0.0]), 2)
    np.testing.assert_array_equal(t, [[1, 3, 5]])
    acc = np.array([[-3], [0], [1], [2], [3], [4], [5], [6], [99]])
    np.testing.assert_array_equal(apply_thresholds(acc, t)[:, 0], [0, 0, 1, 1, 2, 2, 3, 3, 3])
    with pytest.raises(ValueError, match="> 0"):
        compute_thresholds(np.array([0.0]), np.array([0.0]), 2)


def test_fine_tuned_quant_layers_convert_with_their_own_weight_setting(trained, test_set):
    fq = quantize_weights(trained, "symmetric", 4, True)  # QuantConv2d / QuantLinear, as after a fine-tune
    fq.eval()
    imodel = convert_lenet(fq)  # weight_bits / per_channel read from the layers
    assert {l.weight_bits for l in imodel.layers} == {4} and np.abs(imodel.layer("fc1").weight).max() <= 7
    _assert_agrees_but_for_near_ties(imodel, fq, test_set)


def test_cli_convert_and_report_from_a_checkpoint(trained, tmp_path, capsys):
    from tinyqnn.cli import main
    from tinyqnn.train import save_checkpoint

    ckpt = save_checkpoint(tmp_path / "ckpt.npz", trained, meta={"config": {"note": "test"}})
    out = tmp_path / "int.npz"
    assert main(["fixedpoint", "convert", str(ckpt), "--out", str(out), "--weight-bits", "6", "--per-tensor",
                 "--method", "thresholds"]) == 0
    imodel = load_integer_model(out)
    assert imodel.method == "thresholds" and imodel.meta["checkpoint_config"] == {"note": "test"}
    assert imodel.meta["checkpoint_model"]  # the checkpoint's quantization record travels along
    assert {l.weight_bits for l in imodel.layers} == {6}
    capsys.readouterr()
    assert main(["fixedpoint", "report", str(ckpt), "--dataset", "mnist-subset", "--limit", "100",
                 "--out", str(tmp_path / "rep")]) == 0
    printed = capsys.readouterr().out
    report = json.loads((tmp_path / "rep" / "report.json").read_text())
    assert f"integer-only {report['accuracy']['integer']:.2f}%" in printed
    assert report["accuracy"]["agreement"] >= 0.99 and len(report["layers"]) == 5
    assert main(["fixedpoint", "convert", str(tmp_path / "missing.npz"), "--out", str(out)]) == 2


def test_benchmark_command_runs_and_reports_ratios(tmp_path, capsys):
    from tinyqnn.fixedpoint.benchmark import main

    assert main(["--images", "200", "--repeats", "1", "--naive-images", "1", "--json", str(tmp_path / "b.json")]) == 0
    printed = capsys.readouterr().out
    result = json.loads((tmp_path / "b.json").read_text())
    assert result["images"] == 200 and "ratio" in printed and "naive" in printed
    assert result["ratio_requant_vs_float"] > 0 and result["naive_images_per_second"] > 0


def test_every_fixedpoint_subcommand_option_has_help_text():
    import argparse

    from tinyqnn.fixedpoint.cli import build_parser

    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    undocumented = {name: [a.option_strings or a.dest for a in p._actions if not a.help]
                    for name, p in sub.choices.items() if p.add_help}
    assert all(v == [] for v in undocumented.values()), undocumented


def test_cli_writes_never_replace_what_tinyqnn_did_not_write(trained, tmp_path, capsys):
    """The run-manifest rule for convert, report and sweep: the checkpoint itself, a user's file under --out, and
    a user's report.json / sweep.json in the --out folder are refused with one line, untouched, before any work."""
    from tinyqnn.cli import main
    from tinyqnn.train import save_checkpoint

    ckpt = save_checkpoint(tmp_path / "ckpt.npz", trained)
    original = ckpt.read_bytes()
    assert main(["fixedpoint", "convert", str(ckpt), "--out", str(ckpt)]) == 2
    assert main(["fixedpoint", "convert", str(ckpt), "--out", str(ckpt), "--force"]) == 2  # never, even forced
    assert "would replace what it reads" in capsys.readouterr().err and ckpt.read_bytes() == original

    notes = tmp_path / "notes.txt"
    notes.write_text("my notes")
    assert main(["fixedpoint", "convert", str(ckpt), "--out", str(notes)]) == 2 and notes.read_text() == "my notes"
    mine = tmp_path / "mine.npz"
    np.savez(mine, weights=np.arange(3))  # an .npz that is not an integer model
    assert main(["fixedpoint", "convert", str(ckpt), "--out", str(mine)]) == 2
    assert "not a file tinyqnn fixedpoint convert wrote" in capsys.readouterr().err
    assert np.load(mine)["weights"].tolist() == [0, 1, 2]
    assert main(["fixedpoint", "convert", str(ckpt), "--out", str(mine), "--force"]) == 0  # the user said so
    assert load_integer_model(mine).meta["checkpoint"] == str(ckpt)
    assert main(["fixedpoint", "convert", str(ckpt), "--out", str(mine), "--weight-bits", "6"]) == 0  # its own: replaced
    assert {l.weight_bits for l in load_integer_model(mine).layers} == {6}

    for command, name in (("report", "report.json"), ("sweep", "sweep.json")):
        folder = tmp_path / command
        folder.mkdir()
        (folder / name).write_text("{\"mine\": true}")
        source = str(ckpt) if command == "report" else str(mine)
        args = ["fixedpoint", command, source, "--dataset", "mnist-subset", "--limit", "20", "--out", str(folder)]
        capsys.readouterr()
        assert main(args + (["--min-bits", "16", "--max-bits", "16", "--no-progress"] if command == "sweep" else [])) == 2
        assert "not a fixedpoint run" in capsys.readouterr().err
        assert [p.name for p in folder.iterdir()] == [name] and json.loads((folder / name).read_text()) == {"mine": True}

    own = tmp_path / "own"  # a folder of report's: rerunning replaces its files, keeps the user's
    args = ["fixedpoint", "report", str(ckpt), "--dataset", "mnist-subset", "--limit", "20", "--out", str(own)]
    assert main(args) == 0
    (own / "my_notes.md").write_text("keep")
    (own / "layers.md").unlink()
    (own / "layers.md").write_text("my own layers table")  # a user's file under report's name, not recorded...
    assert main(args) == 0  # ...but report recorded layers.md when it wrote it: its own name, replaced
    assert (own / "my_notes.md").read_text() == "keep" and "conv1" in (own / "layers.md").read_text()


def test_report_into_an_own_folder_refuses_a_user_file_it_never_wrote(trained, tmp_path, capsys):
    from tinyqnn.cli import main
    from tinyqnn.train import save_checkpoint

    ckpt = save_checkpoint(tmp_path / "ckpt.npz", trained)
    folder = tmp_path / "fp"
    path = save_integer_model(convert_lenet(trained), tmp_path / "m.npz")
    assert main(["fixedpoint", "sweep", str(path), "--dataset", "mnist-subset", "--limit", "20", "--min-bits", "16",
                 "--max-bits", "16", "--out", str(folder), "--no-progress"]) == 0  # a fixedpoint folder now
    (folder / "report.json").write_text("{\"mine\": true}")  # a user's file, never written by tinyqnn
    capsys.readouterr()
    assert main(["fixedpoint", "report", str(ckpt), "--dataset", "mnist-subset", "--limit", "20",
                 "--out", str(folder)]) == 2
    assert "report.json, which tinyqnn fixedpoint did not write" in capsys.readouterr().err
    assert json.loads((folder / "report.json").read_text()) == {"mine": True} and not (folder / "layers.md").exists()


def test_integer_logits_are_the_fake_quantized_logits_to_within_a_unit_of_their_fine_scale(trained, test_set):
    """The logits' unit is min S_f / 256: requantization and the bias each lose at most half of it, so the integer
    logits times that unit are the float64 fake-quantized logits to within one unit. At the accumulator's own
    unit (the earlier format) the error reached half an accumulator unit, and two classes could tie exactly."""
    from tinyqnn.fixedpoint.convert import LOGIT_SUBUNITS

    imodel = convert_lenet(trained)  # 8-bit weights per channel
    fq = quantize_weights(trained, "symmetric", 8, True).double()  # the same weights, fake-quantized, float64
    fq.eval()
    with tq.no_grad():
        want = fq(tq.Tensor(test_set[np.arange(len(test_set))][0].astype(np.float64))).data
    unit = float(imodel.layer("fc3").acc_scale.min()) / LOGIT_SUBUNITS
    logits = integer_forward(imodel, test_set.images)[0]
    assert np.abs(logits * unit - want).max() <= 1.01 * unit
    top2 = np.sort(logits, axis=1)[:, -2:]
    assert np.all(top2[:, 1] > top2[:, 0] + 2)  # no ties or near-ties left on the subset
    np.testing.assert_array_equal(logits.argmax(axis=1), want.argmax(axis=1))


def test_memory_counts_conv1s_per_position_bias_and_prices_reads_by_the_memory_that_holds_them(trained, test_set):
    from tinyqnn.fixedpoint.report import ENERGY_PJ, format_layer_report, memory_level

    assert memory_level(8 * 8 * 1024) == ("8 KB SRAM", "sram_read_64bit_8kb")
    assert memory_level(8 * 8 * 1024 + 1) == ("32 KB SRAM", "sram_read_64bit_32kb")
    assert memory_level(8 * 1024 * 1024) == ("1 MB SRAM", "sram_read_64bit_1mb")
    assert memory_level(8 * 1024 * 1024 + 1) == ("DRAM", "dram_read_64bit")
    rows = {r["layer"]: r for r in layer_report(convert_lenet(trained), test_set.images[:50])}
    conv1 = rows["conv1"]
    assert conv1["memory_bits"] == 6 * 25 * 8 + 6 * 28 * 28 * 32  # the int32 bias is stored as (6, 28, 28)
    assert conv1["weight_memory_bits"] == 6 * 25 * 8 + 6 * 32  # the parameters: one bias per channel
    total_int = sum(r["memory_bits"] for r in rows.values())
    total_float = sum(r["float32_weight_memory_bits"] for r in rows.values())
    assert 60 * 1024 * 8 < total_int < 80 * 1024 * 8 and 200 * 1024 * 8 < total_float < 260 * 1024 * 8
    assert conv1["weight_memory"] == conv1["float32_weight_memory"] == "1 MB SRAM"
    e = {k: v for k, (v, _) in ENERGY_PJ.items()}
    act_key = memory_level(sum(r["activation_memory_bits"] for r in rows.values()))[1]
    assert conv1["energy_int_sram_pj"] == pytest.approx(conv1["memory_bits"] / 64 * e["sram_read_64bit_1mb"]
                                                        + conv1["activation_memory_bits"] / 64 * e[act_key])
    assert "weights and biases" in format_layer_report(list(rows.values())) and "in 1 MB SRAM" in \
        format_layer_report(list(rows.values()))
