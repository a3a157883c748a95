"""The benchmark command: its bookkeeping (never its speed: timings are not tested)."""
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import tinyqnn as tq
from tinyqnn.bench import throughput as benchmark
from tinyqnn.models import LeNet5, resnet20


def test_measure_counts_images_and_cpu_time():
    calls = []
    sample = benchmark.measure(lambda: calls.append(time.sleep(0.01)), steps=3, batch=8)
    assert len(calls) == 3
    assert sample.wall_s >= 0.03
    assert sample.images_per_s == pytest.approx(24 / sample.wall_s)
    assert sample.cpu_s < sample.wall_s  # sleeping uses no CPU: CPU and wall time are told apart
    if sys.platform == "linux":
        assert sample.others_cores is not None and sample.others_cores >= 0


def _result(others_median, load_before=0.1):
    return {"machine": {"cores": 2, "load_before": [load_before] * 3, "load_after": [1.5] * 3},
            "others_cores": None if others_median is None else {"median": others_median, "max": 1.7}}


def test_busy_warning_names_the_figures():
    text = benchmark.busy_warning(_result(0.9))
    assert text.startswith("WARNING") and "0.90 cores" in text and "max 1.70" in text and "of 2" in text
    assert "0.10 before, 1.50 after" in text
    assert benchmark.busy_warning(_result(benchmark.BUSY_CORES / 2)) is None
    # without /proc/stat the load average before the run decides
    assert "load average was 3.00" in benchmark.busy_warning(_result(None, load_before=3.0))
    assert benchmark.busy_warning(_result(None, load_before=0.0)) is None


def _blas_result(kernels, avx512, coretype=None, library="openblas"):
    return {"machine": {"blas": {"library": library, "version": "0.3.31", "kernels": kernels,
                                 "cpu_avx512": avx512, "openblas_coretype": coretype}}}


def test_blas_note_when_openblas_runs_avx2_kernels_on_an_avx512_cpu():
    text = benchmark.blas_note(_blas_result("Haswell", True, "Haswell"))
    assert "Haswell kernels (OPENBLAS_CORETYPE=Haswell is set)" in text and "env -u OPENBLAS_CORETYPE" in text
    assert "is set" not in benchmark.blas_note(_blas_result("Zen", True))  # OpenBLAS's own choice: no env named
    assert benchmark.blas_note(_blas_result("SkylakeX", True)) is None  # already AVX-512
    assert benchmark.blas_note(_blas_result("Haswell", False)) is None  # the CPU has nothing wider
    assert benchmark.blas_note(_blas_result("Haswell", None)) is None  # unknown CPU: no claim
    assert benchmark.blas_note(_blas_result(None, True)) is None  # threadpoolctl missing
    assert benchmark.blas_note(_blas_result("Haswell", True, library="mkl")) is None


def test_blas_facts_read_this_process(monkeypatch):
    monkeypatch.setenv("OPENBLAS_CORETYPE", "Sandybridge")  # read when measuring, not when NumPy loaded
    facts = benchmark._blas_facts()
    assert facts["openblas_coretype"] == "Sandybridge"
    assert facts["cpu_avx512"] in (True, False, None)
    pytest.importorskip("threadpoolctl")
    assert facts["library"] and facts["kernels"]


def test_run_without_torch_reports_tinyqnn_rows_only(monkeypatch):
    monkeypatch.setitem(sys.modules, "torch", None)
    result = benchmark.run("lenet5", threads=(1, 2), repeats=2, steps=1, warmup=0, batch=4)
    assert set(result["samples"]) == {"tinyqnn/1t", "tinyqnn/2t"}
    assert all(len(v) == 2 for modes in result["samples"].values() for v in modes.values())
    assert result["ratio"] == {} and "not installed" in result["machine"]["torch"]
    med = result["median"]["tinyqnn/1t"]["train"]
    assert med == np.median([s["images_per_s"] for s in result["samples"]["tinyqnn/1t"]["train"]])
    text = benchmark.report(result)
    assert "LeNet-5, batch 4" in text and "tinyqnn/2t" in text and "ratio/" not in text


@pytest.mark.parametrize("name, ours", [("lenet5", LeNet5), ("resnet20", resnet20)])
def test_torch_reference_is_the_same_network(name, ours):
    """The PyTorch reference must have exactly tinyqnn's parameters, tensor by tensor, and the same output shape."""
    torch = pytest.importorskip("torch")
    reference = getattr(benchmark, f"torch_{name}_model")()
    model = ours()
    assert [tuple(p.shape) for p in reference.parameters()] == [p.shape for p in model.parameters()]
    shape = (2, 1, 28, 28) if name == "lenet5" else (2, 3, 32, 32)
    with torch.no_grad():
        assert tuple(reference(torch.zeros(shape)).shape) == model(tq.zeros(*shape)).shape == (2, 10)


def test_cli_rejects_bad_thread_lists(capsys):
    with pytest.raises(SystemExit):
        benchmark.main(["--threads", "0"])
    assert "--threads" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        benchmark.main(["--repeats", "0"])


def test_cli_resnet20_json(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "torch", None)
    out = tmp_path / "bench.json"
    assert benchmark.main(["--model", "resnet20", "--threads", "1", "--repeats", "1", "--steps", "1",
                           "--warmup", "0", "--batch-size", "2", "--no-torch", "--json", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "ResNet-20" in printed and "tinyqnn/1t" in printed
    import json

    data = json.loads(out.read_text())
    assert data["model"] == "resnet20" and data["settings"]["batch"] == 2


def test_benchmark_versus_runs_its_workers_and_reports_ratios(tmp_path):
    """Two workers (this tree as the command line and as a library) on a tiny LeNet-5 batch, alternating;
    each imports tinyqnn from the tree it was given, and the report states the ratio."""
    from tinyqnn.bench import versus

    result = versus.run("lenet5", against=None, torch=False, repeats=2, steps=1, batch=2)
    names = [w["name"] for w in result["workers"]]
    assert names == ["this tree, CLI", "this tree, library"]
    here = str(Path(versus.__file__).resolve().parents[1] / "__init__.py")
    assert all(w["imported"] == here and len(w["wall_s"]) == 2 and min(w["cpu_s"]) > 0 for w in result["workers"])
    text = versus.report(result)
    assert "library step / CLI step, this tree (wall):" in text


def test_benchmark_versus_refuses_a_folder_that_is_not_a_checkout(tmp_path, capsys):
    from tinyqnn.bench import versus

    assert versus.main(["--against", str(tmp_path)]) == 2
    assert "not a tinyqnn checkout" in capsys.readouterr().err
