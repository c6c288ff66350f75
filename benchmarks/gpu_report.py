"""The report of the GPU check (``benchmarks/gpu_check.sh``), for ``gpu_bench.py``: the
device's facts (GPU model, driver, CUDA, CuPy, PyTorch), the tests' outcome from their JUnit
XML, the kernels of a profiled step (from PyTorch's trace, or the fake device's Python
profile), and ``gpu.md``'s tables."""
from __future__ import annotations

import os
import subprocess
import xml.etree.ElementTree as ElementTree

import bench_harness

TOP_KERNELS = 8


def kernel_rows_from_trace(trace, steps):
    """Per kernel name: launches and microseconds per step, from a PyTorch (Kineto) trace
    ``{"traceEvents": [...]}``, whose GPU kernels are the events of category 'kernel'."""
    rows = {}
    for event in trace.get("traceEvents", []):
        if event.get("cat") == "kernel":
            row = rows.setdefault(event["name"], [0, 0.0])
            row[0] += 1
            row[1] += float(event.get("dur", 0.0))
    return {name: (calls / steps, us / steps) for name, (calls, us) in rows.items()}


def kernel_rows_from_python_profile(stats, steps):
    """The fake device's stand-in for the trace: calls and own time (µs) per step of the
    functions of minicnn's kernel modules, from ``pstats.Stats``."""
    rows = {}
    for (path, _, function), (_, calls, own_s, _, _) in stats.stats.items():
        if os.sep + "kernels" + os.sep in path and "minicnn" in path:
            key = f"{os.path.basename(path)[:-3]}.{function}"
            previous = rows.get(key, (0, 0.0))
            rows[key] = (previous[0] + calls / steps, previous[1] + own_s * 1e6 / steps)
    return rows


def kernel_summary(rows):
    """Launches per step, the microseconds they take, and the ``TOP_KERNELS`` longest."""
    total_us = sum(us for _, us in rows.values())
    top = sorted(rows.items(), key=lambda item: -item[1][1])[:TOP_KERNELS]
    return {"launches_per_step": sum(calls for calls, _ in rows.values()), "kernel_us_per_step": total_us,
            "top": [{"kernel": name[:80], "calls_per_step": calls, "us_per_step": us,
                     "share": us / total_us if total_us else 0.0} for name, (calls, us) in top]}


def summary_of(result):
    if "error" in result:
        return result["error"]
    return f"{result['ms_per_step']:.2f} ms/step, {result['images_per_s']:,.0f} img/s"


def device_facts(fake):
    """GPU model, driver, CUDA, CuPy and PyTorch versions (or the host, for the fake)."""
    facts = {"machine": bench_harness.machine(), "device": "fake (the CPU stands in; no GPU figure)" if fake else "gpu"}
    if fake:
        return facts
    try:
        query = subprocess.run(["nvidia-smi", "--query-gpu=name,driver_version,memory.total,clocks.max.sm",
                                "--format=csv,noheader"], capture_output=True, text=True, timeout=30).stdout
        facts["nvidia_smi"] = [line.strip() for line in query.splitlines() if line.strip()]
    except (OSError, subprocess.TimeoutExpired) as exc:
        facts["nvidia_smi"] = f"failed: {exc}"
    try:
        import cupy
        props = cupy.cuda.runtime.getDeviceProperties(0)
    except Exception as exc:                          # the report still says what is missing
        facts["cupy"] = f"unusable: {type(exc).__name__}: {exc}"[:300]
        return facts
    facts.update(gpu=props["name"].decode() if isinstance(props["name"], bytes) else props["name"],
                 compute_capability=f"{props['major']}.{props['minor']}",
                 gpu_memory_gib=props["totalGlobalMem"] / 2**30, cupy=cupy.__version__,
                 cuda_runtime=cupy.cuda.runtime.runtimeGetVersion(), cuda_driver=cupy.cuda.runtime.driverGetVersion())
    return facts


def test_outcome(junit_path):
    """Counts, and the failing and skipped tests with their messages, from JUnit XML."""
    if not junit_path or not os.path.exists(junit_path):
        return {"error": f"no test report at {junit_path!r}"}
    outcome = {"passed": 0, "failed": 0, "errors": 0, "skipped": 0, "failures": [], "skips": []}
    for case in ElementTree.parse(junit_path).getroot().iter("testcase"):
        name = f"{case.get('classname')}::{case.get('name')}"
        kinds = {child.tag: child for child in case}
        if "failure" in kinds or "error" in kinds:
            child = kinds.get("failure", kinds.get("error"))
            outcome["failed" if child.tag == "failure" else "errors"] += 1
            outcome["failures"].append({"test": name, "message": (child.get("message") or "")[:300]})
        elif "skipped" in kinds:
            outcome["skipped"] += 1
            outcome["skips"].append({"test": name, "message": (kinds["skipped"].get("message") or "")[:200]})
        else:
            outcome["passed"] += 1
    return outcome


def markdown(report, rounds, min_steps, min_round_s, profiled_batch):
    """``gpu.md``: the device, the tests, the timings (the best of ``rounds`` rounds of at
    least ``min_steps`` steps and ``min_round_s`` seconds) and the kernels of a training step
    at ``profiled_batch``."""
    facts, tests = report["facts"], report["tests"]
    lines = [f"# GPU check ({'DRY RUN on the CPU: no figure here measures a GPU' if report['fake'] else 'measured'})",
             "", f"Device: {facts.get('gpu', facts['device'])}"
             + (f", compute capability {facts['compute_capability']}, {facts['gpu_memory_gib']:.0f} GiB"
                if "gpu" in facts else "") + f"; host CPU {facts['machine']['cpu']}.",
             f"nvidia-smi: {facts.get('nvidia_smi', '—')}; CUDA runtime {facts.get('cuda_runtime', '—')}, "
             f"driver API {facts.get('cuda_driver', '—')}; CuPy {facts.get('cupy', '—')}; PyTorch {facts.get('torch')} "
             f"(CUDA {facts.get('torch_cuda')}, cuDNN {facts.get('cudnn')}).", ""]
    if "error" in tests:
        lines.append(f"Tests: {tests['error']}")
    else:
        lines.append(f"Tests: {tests['passed']} passed, {tests['failed']} failed, {tests['errors']} errors, "
                     f"{tests['skipped']} skipped.")
        lines += [f"- FAILED {f['test']}: {f['message']}" for f in tests["failures"]]
        lines += [f"- skipped {s['test']}: {s['message']}" for s in tests["skips"][:20]]
    lines += ["", "| model | input | batch | mode | minicnn (CuPy) | PyTorch eager | minicnn speed / PyTorch |",
              "|---|---|---|---|---|---|---|"]
    for row in report["cases"]:
        ours, theirs = row["minicnn"], row["torch"]
        ratio = f"{theirs['ms_per_step'] / ours['ms_per_step']:.2f}×" \
            if "ms_per_step" in ours and "ms_per_step" in theirs else "—"
        lines.append(f"| {row['model']} | {'×'.join(map(str, row['shape']))} | {row['batch']} | {row['mode']} | "
                     f"{summary_of(ours)[:70]} | {summary_of(theirs)[:70]} | {ratio} |")
    lines += ["", f"ms/step: the best of {rounds} rounds (≥ {min_steps} steps, ≥ {min_round_s} s each), timed with "
              + ("the host clock (fake device)." if report["fake"] else "CUDA events."),
              "", f"Kernels of minicnn's training step (batch {profiled_batch}, "
              f"{'Python profiler over the kernel modules' if report['fake'] else 'CUPTI through torch.profiler'}):", "",
              "| model | launches / step | kernel time / step | longest kernels (µs / step, calls / step) |",
              "|---|---|---|---|"]
    for model, k in report["kernels"].items():
        if "error" in k:
            lines.append(f"| {model} | — | — | {k['error'][:100]} |")
            continue
        top = "; ".join(f"{t['kernel'][:40]} {t['us_per_step']:.0f} ({t['calls_per_step']:.0f})" for t in k["top"][:4])
        lines.append(f"| {model} | {k['launches_per_step']:.0f} | {k['kernel_us_per_step'] / 1000:.2f} ms | {top} |")
    return "\n".join(lines) + "\n"
