"""The GPU benchmark: minicnn on CuPy against PyTorch CUDA eager (fp32, cuDNN), and the
report of a GPU check (``benchmarks/gpu_check.sh``).

    python benchmarks/gpu_bench.py [--fake] [--junit FILE] [--budget-s S] [--out DIR]

Cases: every seed architecture (``minicnn.architectures``) at its tutorial's input size, at
batch 512 and 2048, training (one optimizer step: RMSprop, as ``minicnn bench``) and
inference.  Each framework runs all cases in a worker process of its own (its memory pool
its own; a crash or an overrun is reported as an error, never as a number).  A case is
checked before it is timed (minicnn's output against the NumPy path on the host, PyTorch's
finite), warmed up, then timed with CUDA events in ``ROUNDS`` rounds of at least
``MIN_STEPS`` steps and ``MIN_ROUND_S`` seconds; its ms/step is the best round's mean.

Kernels: minicnn's training steps at batch 512 run once more under PyTorch's profiler,
whose CUPTI trace holds every kernel the process launches, CuPy's included (CuPy itself
can bracket a region for an outside profiler, but times no kernel): launches per step and
time per kernel.

``--fake`` runs every piece on the CPU with a stand-in device: NumPy for CuPy (the model
stays on the host), ``time.perf_counter`` for CUDA events, PyTorch on the CPU, and Python's
profiler over minicnn's kernel modules for CUPTI; small inputs and batches keep it short.
That is the dry run of ``gpu_check.sh``: its figures measure nothing about a GPU.

Writes ``OUT/gpu.json`` and ``OUT/gpu.md``: the device (GPU model, driver, CUDA, CuPy,
PyTorch), the tests' outcome (from the JUnit XML of ``--junit``), the timings and kernels.
"""
from __future__ import annotations

import argparse
import json
import os
import queue
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
for folder in (REPO, HERE):          # minicnn, and the benchmark modules beside this script
    if folder not in sys.path:
        sys.path.insert(0, folder)

import minicnn  # noqa: E402, F401  (first: sets the thread-pool policy before NumPy loads)
import bench_workers  # noqa: E402
from minicnn.saving import atomic_write_bytes  # noqa: E402
from gpu_report import (device_facts, kernel_rows_from_python_profile, kernel_rows_from_trace,  # noqa: E402
                        kernel_summary, markdown, summary_of, test_outcome)

TUTORIAL_INPUTS = {"face_fcnn": (64, 64, 1), "face_cnn": (64, 64, 1), "mnist_deconstructed": (28, 28, 1),
                   "mnist_cnn": (28, 28, 1), "mnist_convnet": (28, 28, 1), "cifar_six_conv": (32, 32, 3),
                   "cats_dogs_cnn": (150, 150, 3), "cats_dogs_small": (150, 150, 3)}
FAKE_INPUTS = {"face_cnn": (16, 16, 1), "mnist_deconstructed": (12, 12, 1)}
BATCHES, FAKE_BATCHES = (512, 2048), (2, 4)
PROFILED_BATCH = {False: 512, True: 2}
ROUNDS, MIN_STEPS, MIN_ROUND_S = 3, 3, 0.1
PROFILED_STEPS = 3
GRACE_S = 20      # past its deadline, a worker's case in progress may finish for this long
REPLY = "@gpu "


def cases(fake, models=None):
    """(model, input shape, batch, mode) of every case, of the ``models`` named (default: all);
    every model at the smaller batch first, so that a spent budget leaves the larger ones."""
    inputs, batches = (FAKE_INPUTS, FAKE_BATCHES) if fake else (TUTORIAL_INPUTS, BATCHES)
    return [(name, shape, batch, mode) for batch in batches for name, shape in inputs.items()
            if models is None or name in models for mode in ("train", "infer")]


# -- the device and its clock ---------------------------------------------------------------
class CudaDevice:
    """The GPU: CuPy arrays, CUDA events on the current stream, PyTorch on 'cuda'."""

    name, model_device, torch_device = "gpu", "gpu", "cuda"

    def __init__(self):
        import cupy
        self.cupy = cupy

    def to(self, array):
        return self.cupy.asarray(array)

    def seconds_per_step(self, step, steps):
        start, end = self.cupy.cuda.Event(), self.cupy.cuda.Event()
        start.record()
        for _ in range(steps):
            step()
        end.record()
        end.synchronize()
        return self.cupy.cuda.get_elapsed_time(start, end) / 1000 / steps

    def torch_seconds_per_step(self, torch, step, steps):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        for _ in range(steps):
            step()
        end.record()
        end.synchronize()
        return start.elapsed_time(end) / 1000 / steps

    def synchronize(self):
        self.cupy.cuda.Device().synchronize()

    def release_memory(self):
        self.cupy.get_default_memory_pool().free_all_blocks()


class FakeDevice:
    """The stand-in: NumPy for CuPy, the host clock for CUDA events, PyTorch on the CPU."""

    name, model_device, torch_device = "fake", "cpu", "cpu"

    def to(self, array):
        return array

    def seconds_per_step(self, step, steps):
        start = time.perf_counter()
        for _ in range(steps):
            step()
        return (time.perf_counter() - start) / steps

    def torch_seconds_per_step(self, torch, step, steps):
        return self.seconds_per_step(step, steps)

    def synchronize(self):
        pass

    def release_memory(self):
        pass


def timed_rounds(seconds_per_step, step):
    """Mean seconds per step of each of ``ROUNDS`` rounds, each of at least ``MIN_STEPS`` steps
    and about ``MIN_ROUND_S`` seconds (sized from the first round's step time)."""
    steps, rounds = MIN_STEPS, []
    for _ in range(ROUNDS):
        rounds.append(seconds_per_step(step, steps))
        steps = max(MIN_STEPS, min(int(MIN_ROUND_S / max(rounds[-1], 1e-6)), 200))
    return rounds


# -- the workers ------------------------------------------------------------------------------
def minicnn_case(device, name, shape, batch, mode):
    """(step, facts) for minicnn on ``device``: the model checked against the NumPy path on
    the host before anything is timed."""
    import numpy as np
    import minicnn as mc
    from minicnn import architectures
    mc.set_seed(0)
    model = architectures.SEED_MODELS[name](shape)
    loss = "binary_crossentropy" if bench_workers.classes_of(name) == 1 else "categorical_crossentropy"
    model.compile(mc.optimizers.RMSprop(1e-4), loss)
    x_host, y_host = bench_workers.data(shape, batch, bench_workers.classes_of(name))
    with mc.use_kernels("numpy"):
        expected = model.predict(x_host[:2])
        model.to(device.model_device)
        np.testing.assert_allclose(model.predict(x_host[:2]), expected, rtol=1e-4, atol=1e-5)
    x, y = device.to(x_host), device.to(y_host)
    if mode == "train":
        return (lambda: model.train_step(x, y)), {"kernels": mc.get_kernels()}
    return (lambda: model.forward(x)), {"kernels": mc.get_kernels()}


def torch_case(device, name, shape, batch, mode):
    """(step, facts) for PyTorch eager on ``device``, fp32 (no TF32 in cuDNN or cuBLAS)."""
    import numpy as np
    import torch
    from torch import nn
    from minicnn import architectures
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    torch.manual_seed(0)
    model = bench_workers.torch_sequential(architectures.SEED_MODELS[name](shape), shape).to(device.torch_device)
    x_np, y_np = bench_workers.data(shape, batch, bench_workers.classes_of(name))
    x = torch.from_numpy(x_np).permute(0, 3, 1, 2).contiguous().to(device.torch_device)
    binary = bench_workers.classes_of(name) == 1
    y = torch.from_numpy(y_np if binary else y_np.argmax(1)).to(device.torch_device)
    loss_fn = nn.BCEWithLogitsLoss() if binary else nn.CrossEntropyLoss()
    train, infer = bench_workers.torch_steps(model, x, y, loss_fn)
    step = train if mode == "train" else infer
    if not bool(torch.isfinite(step()).all()):
        raise RuntimeError("non-finite result")
    cudnn = torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None
    return step, {"torch": torch.__version__, "cudnn": cudnn, "tf32": False, "np": np.__version__}


def time_case(device, framework, case):
    """(the case's result: its facts, the first step's seconds, the rounds and the best;
    its step)."""
    name, shape, batch, mode = case
    start = time.perf_counter()
    step, facts = (minicnn_case if framework == "minicnn" else torch_case)(device, name, shape, batch, mode)
    setup_s = time.perf_counter() - start
    if framework == "torch":
        import torch
        seconds_per_step = lambda f, n: device.torch_seconds_per_step(torch, f, n)  # noqa: E731
    else:
        seconds_per_step = device.seconds_per_step
    first = seconds_per_step(step, 1)                  # compilation (NVRTC, cuDNN plans) and allocation
    rounds = timed_rounds(seconds_per_step, step)
    best = min(rounds)
    return {**facts, "setup_s": setup_s, "first_step_s": first, "rounds_ms": [r * 1000 for r in rounds],
            "ms_per_step": best * 1000, "images_per_s": batch / best}, step


def profile_steps(device, step):
    """Kernel rows of ``PROFILED_STEPS`` steps (after the timing's warm-up)."""
    if device.name == "fake":
        import cProfile
        import pstats
        profiler = cProfile.Profile()
        profiler.enable()
        for _ in range(PROFILED_STEPS):
            step()
        profiler.disable()
        return kernel_rows_from_python_profile(pstats.Stats(profiler), PROFILED_STEPS)
    import tempfile
    from torch.profiler import ProfilerActivity, profile
    with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
        for _ in range(PROFILED_STEPS):
            step()
        device.synchronize()
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "trace.json")
        prof.export_chrome_trace(path)
        with open(path) as f:
            return kernel_rows_from_trace(json.load(f), PROFILED_STEPS)


def serve(framework, fake, deadline, models):
    """The worker: one reply line per case (so that what was measured survives an overrun),
    each case's and profile's failure reported in its reply.  The host kernels are NumPy's:
    on the GPU they only check, and the fake device needs no Numba compilation."""
    import minicnn as mc
    mc.set_kernels("numpy")
    device = FakeDevice() if fake else CudaDevice()
    if framework == "torch":
        _reply({"facts": torch_facts()})
    for case in cases(fake, models):
        if time.time() > deadline:
            _reply({"case": case, "result": {"error": "skipped: the benchmark's time budget was spent"}})
            continue
        step = None
        try:
            result, step = time_case(device, framework, case)
        except Exception as exc:                      # reported, never a number
            result = {"error": f"{type(exc).__name__}: {exc}"[:300]}
        _reply({"case": case, "result": result})
        if framework == "minicnn" and step is not None and case[2] == PROFILED_BATCH[fake] and case[3] == "train":
            try:
                kernels = kernel_summary(profile_steps(device, step))
            except Exception as exc:
                kernels = {"error": f"{type(exc).__name__}: {exc}"[:300]}
            _reply({"profile": case[0], "kernels": kernels})
        del step
        device.release_memory()


def torch_facts():
    try:
        import torch
    except Exception as exc:
        return {"torch": f"not importable: {exc}"}
    return {"torch": torch.__version__, "torch_cuda": torch.version.cuda,
            "cudnn": torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None}


def _reply(message):
    print(REPLY + json.dumps(message), flush=True)


def run_worker(framework, fake, budget_s, facts, models=None):
    """Run one framework's worker and gather its replies (the facts it reports go into
    ``facts``); a worker that dies or overruns its budget leaves its remaining cases as errors."""
    deadline = time.time() + budget_s
    cmd = [sys.executable, os.path.abspath(__file__), "worker", framework, "--deadline", str(deadline)]
    cmd += (["--fake"] if fake else []) + (["--models", ",".join(models)] if models else [])
    # the fake's BLAS on one thread: its figures mean nothing, and a shared CPU stays responsive
    env = {**os.environ, **({"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"} if fake else {})}
    process = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO, env=env)
    replies = queue.Queue()

    def read():
        for line in process.stdout:
            if line.startswith(REPLY):
                replies.put(json.loads(line[len(REPLY):]))
        replies.put(None)
    threading.Thread(target=read, daemon=True).start()
    results, profiles = {}, {}
    while True:
        try:
            reply = replies.get(timeout=max(deadline + GRACE_S - time.time(), 1))
        except queue.Empty:
            process.kill()
            break
        if reply is None:
            break
        if "facts" in reply:
            facts.update(reply["facts"])
            continue
        if "profile" in reply:
            profiles[reply["profile"]] = reply["kernels"]
            continue
        key = json.dumps(reply["case"])
        results[key] = reply["result"]
        print(f"  {framework:8s} {describe(reply['case'])}: {summary_of(results[key])}", flush=True)
    process.wait()
    error = process.stderr.read().strip().splitlines()
    last = error[-1][-300:] if error and process.returncode else f"exit status {process.returncode}"
    return {json.dumps(c): results.get(json.dumps(c), {"error": f"worker ended: {last}"})
            for c in map(list, cases(fake, models))}, profiles


def describe(case):
    name, shape, batch, mode = case
    return f"{name} {tuple(shape)} b{batch} {mode}"


def main(fake, junit, budget_s, out, models=None):
    print(f"gpu_bench: {'fake device (dry run)' if fake else 'GPU'}; budget {budget_s:.0f} s", flush=True)
    facts = device_facts(fake)
    print(f"  device: {json.dumps({k: v for k, v in facts.items() if k != 'machine'})}", flush=True)
    measured, kernels = {}, {}
    for framework, share in (("minicnn", 0.55), ("torch", 0.45)):
        measured[framework], profiles = run_worker(framework, fake, budget_s * share, facts, models)
        kernels.update(profiles)
    report = {"fake": fake, "facts": facts, "tests": test_outcome(junit), "kernels": kernels,
              "cases": [{"model": c[0], "shape": c[1], "batch": c[2], "mode": c[3],
                         **{f: measured[f][json.dumps(list(c))] for f in measured}}
                        for c in map(list, cases(fake, models))]}
    os.makedirs(out, exist_ok=True)
    atomic_write_bytes(os.path.join(out, "gpu.json"), json.dumps(report, indent=1).encode())
    text = markdown(report, ROUNDS, MIN_STEPS, MIN_ROUND_S, PROFILED_BATCH[fake])
    atomic_write_bytes(os.path.join(out, "gpu.md"), text.encode())
    print(f"gpu_bench: wrote {out}/gpu.json and gpu.md", flush=True)
    return report


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "worker":
        worker = argparse.ArgumentParser()
        worker.add_argument("framework", choices=["minicnn", "torch"])
        worker.add_argument("--deadline", type=float, required=True)
        worker.add_argument("--fake", action="store_true")
        worker.add_argument("--models", type=lambda text: text.split(","))
        w = worker.parse_args(sys.argv[2:])
        serve(w.framework, w.fake, w.deadline, w.models)
        sys.exit(0)
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--fake", action="store_true", help="the CPU stands in for the GPU (the dry run)")
    parser.add_argument("--junit", help="JUnit XML of the GPU tests, summarized in the report")
    parser.add_argument("--budget-s", type=float, default=120.0, help="seconds for all cases of both frameworks")
    parser.add_argument("--models", type=lambda text: text.split(","), help="only these models (comma-separated)")
    parser.add_argument("--out", default=os.path.join(REPO, "benchmarks", "results"))
    args = parser.parse_args()
    main(args.fake, args.junit, args.budget_s, args.out, args.models)
