"""The GPU check's dry run (``benchmarks/gpu_check.sh --dry-run``): every piece runs on the
CPU with the fake device, and the report's parsing holds (a kernel trace in PyTorch's
format, the tests' JUnit XML)."""
import importlib.util
import json
import os
import pathlib
import subprocess
import sys

import pytest

REPO = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benchmarks"))
import gpu_bench  # noqa: E402
import gpu_report  # noqa: E402



def test_the_dry_run_writes_the_report_from_every_piece(tmp_path):
    env = {**os.environ, "GPU_CHECK_TESTS": "tests/test_gpu_device_copy.py", "GPU_BENCH_MODELS": "face_cnn",
           "GPU_BENCH_BUDGET_S": "120", "PYTHON": sys.executable}
    env.pop("OUT", None)
    done = subprocess.run(["bash", str(REPO / "benchmarks" / "gpu_check.sh"), "--dry-run", "--out", str(tmp_path)],
                          capture_output=True, text=True, env=env, cwd=REPO, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    for step in ("1/3 install", "would run:", "2/3 GPU tests", "3/3 benchmark", "done:"):
        assert step in done.stdout
    report = json.loads((tmp_path / "gpu.json").read_text())
    assert report["fake"] is True and report["facts"]["device"].startswith("fake")
    tests = report["tests"]
    assert tests["failed"] == tests["errors"] == 0 and tests["passed"] >= 3
    assert all("CuPy" in skip["message"] or "CUDA" in skip["message"] for skip in tests["skips"])
    assert [(c["model"], c["batch"], c["mode"]) for c in report["cases"]] == \
        [("face_cnn", b, m) for b in gpu_bench.FAKE_BATCHES for m in ("train", "infer")]
    assert gpu_bench.cases(False)[:2] == [("face_fcnn", (64, 64, 1), 512, "train"), ("face_fcnn", (64, 64, 1), 512, "infer")]
    assert {c[2] for c in gpu_bench.cases(False)[:16]} == {512}      # every model at 512 before any at 2048
    for case in report["cases"]:
        for framework in ("minicnn", "torch"):
            result = case[framework]
            if framework == "torch" and importlib.util.find_spec("torch") is None:
                assert "torch" in str(result.get("error")), result
                continue                            # PyTorch is a benchmark-only install
            assert "ms_per_step" in result, result
            assert result["ms_per_step"] == min(result["rounds_ms"]) > 0, result
            assert len(result["rounds_ms"]) == gpu_bench.ROUNDS
    kernels = report["kernels"]["face_cnn"]
    assert kernels["launches_per_step"] > 0 and kernels["top"][0]["us_per_step"] > 0
    text = (tmp_path / "gpu.md").read_text()
    assert text.startswith("# GPU check (DRY RUN") and "| face_cnn | 16×16×1 | 2 | train |" in text


def test_kernel_rows_count_the_traces_gpu_kernels_per_step():
    trace = {"traceEvents": [
        {"cat": "kernel", "name": "im2col<float>", "dur": 10.0},
        {"cat": "kernel", "name": "im2col<float>", "dur": 14.0},
        {"cat": "kernel", "name": "sgemm_128x64", "dur": 40.0},
        {"cat": "cuda_runtime", "name": "cudaLaunchKernel", "dur": 3.0},      # the host side: not a kernel
        {"cat": "gpu_memcpy", "name": "Memcpy HtoD", "dur": 5.0},
        {"ph": "M", "name": "process_name"},
    ]}
    rows = gpu_report.kernel_rows_from_trace(trace, steps=2)
    assert rows == {"im2col<float>": (1.0, 12.0), "sgemm_128x64": (0.5, 20.0)}
    summary = gpu_report.kernel_summary(rows)
    assert summary["launches_per_step"] == 1.5 and summary["kernel_us_per_step"] == 32.0
    assert [t["kernel"] for t in summary["top"]] == ["sgemm_128x64", "im2col<float>"]
    assert summary["top"][0]["share"] == pytest.approx(20 / 32)


def test_the_test_outcome_counts_passes_failures_and_skips(tmp_path):
    path = tmp_path / "junit.xml"
    path.write_text('<testsuites><testsuite name="pytest">'
                    '<testcase classname="tests.test_gpu" name="a"/>'
                    '<testcase classname="tests.test_gpu" name="b"><failure message="off by 1e-3"/></testcase>'
                    '<testcase classname="tests.test_gpu" name="c"><skipped message="no GPU"/></testcase>'
                    '<testcase classname="tests.test_gpu" name="d"><error message="setup broke"/></testcase>'
                    '</testsuite></testsuites>')
    outcome = gpu_report.test_outcome(str(path))
    assert (outcome["passed"], outcome["failed"], outcome["skipped"], outcome["errors"]) == (1, 1, 1, 1)
    assert outcome["failures"][0] == {"test": "tests.test_gpu::b", "message": "off by 1e-3"}
    assert gpu_report.test_outcome(str(tmp_path / "missing.xml"))["error"].startswith("no test report")
