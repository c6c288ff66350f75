"""The benchmark suite (``minicnn bench``; ``benchmarks/run_benchmarks.py``).

In ONE run on one machine, each seed architecture is trained (and the MNIST CNN run
for inference, and one conv layer's forward + backward timed: the "layer" case, reported
in GFLOP/s as well) by every configuration, each in its own worker process so that
environment settings take effect and peak memory is its own:

* minicnn with the NumPy kernels and with the Numba kernels;
* PyTorch CPU, default and tuned (channels_last + glibc allocator settings);
* TF-Keras, default and with oneDNN (``TF_ENABLE_ONEDNN_OPTS=1``).

Before any case is timed, every case's minicnn worker runs once to its first steps
(``compile_minicnn_kernels``), so that a kernel missing from the cache is compiled then, not
in a timed worker whose peak memory would count LLVM's.  Each worker warms up, checks its
result is finite (minicnn also checks its kernels against the NumPy path on the same batch),
then waits.  The workers of a case are set up
one at a time and then timed in interleaved rounds — round r of every configuration
before round r + 1 of any, each round starting one configuration later — so that a change
in the machine's speed during the run lands on all of them alike; a configuration's
ms/step is its best round, and the ratio to the best peer is also given round by round.
A missing peer is reported as missing, never as a number.
"""
from __future__ import annotations

import json
import os
import platform
import queue
import subprocess
import sys
import tempfile
import threading

from bench_blocks import separable_gflops
from bench_figures import gemm_ceiling, jit_compile_times, layer_table
from bench_workers import CONV_LAYER_FILTERS, REPLY, MIN_ROUND_S

CASES = [  # (model, input shape, batch, mode)
    ("face_cnn", (64, 64, 1), 5, "train"),
    ("mnist_deconstructed", (28, 28, 1), 256, "train"),
    ("mnist_convnet", (28, 28, 1), 64, "train"),
    ("cifar_six_conv", (32, 32, 3), 32, "train"),
    ("cats_dogs_cnn", (150, 150, 3), 20, "train"),
    ("mnist_deconstructed", (28, 28, 1), 1024, "infer"),
    ("conv_layer", (14, 14, 24), 256, "layer"),
    ("residual_net", (32, 32, 3), 64, "train"),     # the graph cases and blocks: bench_blocks.py
    ("residual_net", (32, 32, 3), 64, "infer"),
    ("small_resnet", (32, 32, 3), 64, "train"),
    ("separable_layer", (28, 28, 64), 32, "layer"),
]
SEED_CASES = CASES[:7]           # what a baseline checkout (``--baseline``) also runs: it may predate the graph API
QUICK_CASES = [CASES[i] for i in (0, 1, 5, 6, 7)]


def conv_layer_gflops(shape, batch, ms):
    """The "layer" case's arithmetic rate: three passes (forward, ∂L/∂x, ∂L/∂W), each
    2·n·h·w·9·c·f floating-point operations of the direct sum, over the measured time."""
    h, w, c = shape
    return 3 * 2 * batch * h * w * 9 * c * CONV_LAYER_FILTERS / (ms / 1000) / 1e9


LAYER_GFLOPS = {"conv_layer": conv_layer_gflops, "separable_layer": separable_gflops}


CONFIGS = {
    "minicnn-numpy": ("minicnn", {"MINICNN_KERNELS": "numpy"}),
    "minicnn-numba": ("minicnn", {"MINICNN_KERNELS": "numba"}),
    "torch-default": ("torch", {}),
    "torch-tuned": ("torch", {"BENCH_CHANNELS_LAST": "1", "MALLOC_MMAP_THRESHOLD_": "4294967296",
                              "MALLOC_TRIM_THRESHOLD_": "4294967296"}),
    "keras-default": ("keras", {"TF_ENABLE_ONEDNN_OPTS": "0"}),
    "keras-onednn": ("keras", {"TF_ENABLE_ONEDNN_OPTS": "1"}),
}


WORKER_SCRIPT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "bench_workers.py")


def _package_path():
    """PYTHONPATH for a worker: the folder of the minicnn package this process runs, first,
    so that the workers measure the same code."""
    import minicnn
    root = os.path.dirname(os.path.dirname(os.path.abspath(minicnn.__file__)))
    return os.pathsep.join([root, *filter(None, [os.environ.get("PYTHONPATH")])])


def _environment(this_minicnn):
    """A worker's environment.  A worker of this checkout's minicnn (``this_minicnn``) gets
    this process's; any other gets it without the thread-pool variables ``import minicnn``
    set here (``minicnn.threads``): PyTorch's OpenMP threads read ``OMP_WAIT_POLICY`` too,
    a peer runs on its own defaults, and a baseline checkout sets its own."""
    from minicnn import threads
    dropped = () if this_minicnn else threads.set_by_minicnn
    return {name: value for name, value in os.environ.items() if name not in dropped}


class WorkerFailed(RuntimeError):
    pass


class Worker:
    """One configuration's worker process for one case, driven over its stdin and stdout."""

    def __init__(self, setup, case, steps):
        framework, env = setup                      # a value of CONFIGS
        name, shape, batch, mode = case
        cmd = [sys.executable, WORKER_SCRIPT, framework, name, json.dumps(list(shape)), str(batch), mode, str(steps)]
        self.stderr = tempfile.TemporaryFile(mode="w+")
        this_minicnn = framework == "minicnn" and "PYTHONPATH" not in env   # a baseline brings its own path
        self.process = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.stderr,
                                        text=True, env={**_environment(this_minicnn), "PYTHONPATH": _package_path(), **env})
        self.replies = queue.Queue()
        self.reader = threading.Thread(target=self._read_replies, daemon=True)
        self.reader.start()

    def _read_replies(self):
        for line in self.process.stdout:
            if line.startswith(REPLY):
                self.replies.put(json.loads(line[len(REPLY):]))
        self.replies.put(None)                      # the process has ended

    def ask(self, command, timeout):
        """Send ``command`` (None: nothing, wait for the set-up's reply) and return the reply;
        a worker that ends or times out instead is closed and raises ``WorkerFailed``."""
        if command is not None:
            self.process.stdin.write(command + "\n")
            self.process.stdin.flush()
        try:
            reply = self.replies.get(timeout=timeout)
        except queue.Empty:
            reply, failure = None, f"timed out after {timeout} s"
        else:
            failure = None if reply is not None else self._last_error()
        if reply is None:
            self.close()
            raise WorkerFailed(failure)
        return reply

    def _last_error(self):
        self.process.wait()
        self.stderr.seek(0)
        last = (self.stderr.read().strip().splitlines() or [f"exit status {self.process.returncode}"])[-1]
        return ("not installed: " if "No module named" in last else "") + last[-200:]

    def cpu_seconds(self):
        """User + system CPU time the process has used so far (Linux; 0 elsewhere)."""
        try:
            with open(f"/proc/{self.process.pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        except (OSError, ValueError, IndexError):
            return 0.0

    def close(self):
        self.process.stdin.close()                  # a waiting worker ends at the end of its stdin
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.reader.join()                          # (it reads to the end of the ended process's stdout)
        self.process.stdout.close()
        self.stderr.close()


def compile_minicnn_kernels(cases, timeout=900):
    """Each case's minicnn worker started, warmed up (its first steps compile what is not in the
    kernel cache yet) and stopped: the timed workers then load every kernel from the cache.  A
    worker that fails here fails again in ``run_case``, which reports it."""
    for case in cases:
        worker = Worker(CONFIGS["minicnn-numba"], case, 1)
        try:
            worker.ask(None, timeout)
            worker.ask("stop", timeout)
        except WorkerFailed:
            pass
        finally:
            worker.close()


def run_case(case, configs, steps, rounds, timeout=900):
    """Every configuration on one case: the workers are set up one at a time, then timed in
    ``rounds`` interleaved rounds of at least ``steps`` steps (see the module docstring).  Returns
    ``{config: result}`` (a "layer" case's with its GFLOP/s) and the CPU seconds the waiting
    workers used meanwhile (their thread pools should sleep: a large figure means the timings
    interfered)."""
    batch = case[2]
    results, workers = {}, {}
    for config in configs:
        worker = Worker(configs[config], case, steps)
        try:
            results[config] = worker.ask(None, timeout)
            workers[config] = worker
        except WorkerFailed as exc:
            results[config] = {"error": str(exc)}
    timings, waiting_cpu, names = {config: [] for config in workers}, 0.0, list(workers)
    for r in range(rounds if names else 0):
        for config in names[r % len(names):] + names[:r % len(names)]:
            if config not in workers:               # (failed in an earlier round)
                continue
            others = [w for c, w in workers.items() if c != config]
            before = sum(w.cpu_seconds() for w in others)
            try:
                timings[config].append(workers[config].ask("time", timeout))
            except WorkerFailed as exc:
                results[config] = {"error": str(exc)}
                del workers[config]
            waiting_cpu += sum(w.cpu_seconds() for w in others) - before
    for config, worker in workers.items():
        results[config].update(worker.ask("stop", timeout))
        worker.close()
        best = min(timed["seconds"] for timed in timings[config])
        results[config].update(ms_per_step=best * 1000, images_per_s=batch / best,
                               rounds_ms=[timed["seconds"] * 1000 for timed in timings[config]],
                               rounds_steps=[timed["steps"] for timed in timings[config]])
        if case[3] == "layer":
            results[config]["gflops"] = LAYER_GFLOPS[case[0]](case[1], batch, best * 1000)
    return results, waiting_cpu


def machine():
    """The CPU (model, cores, the vector ISA minicnn's kernels are shaped for, LLVM's name for
    it) and the software versions: every result is recorded with it."""
    import llvmlite.binding as llvm
    import numpy as np
    from minicnn.kernels import register_tiles
    cpu = "unknown"
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return {"cpu": cpu, "cores": os.cpu_count(), "vector_isa": register_tiles.VECTOR_ISA,
            "register_tiles": register_tiles.TILES, "llvm_cpu": llvm.get_host_cpu_name(),
            "python": platform.python_version(), "numpy": np.__version__, "platform": platform.platform()}


def machine_class(m):
    """The results' folder: the vector ISA and the CPU's vendor ('avx512-intel'), one per machine
    class (Intel's and AMD's AVX-512 cores differ in the FMA units and caches the kernels meet)."""
    vendor = next((v for v in ("intel", "amd") if v in m["cpu"].lower()), "other")
    return f"{m['vector_isa']}-{vendor}"


def machine_line(results):
    """One line naming the machine a table comes from: CPU, cores, vector ISA, sgemm ceiling."""
    m = results["machine"]
    return (f"Machine: {m['cpu']} ({m['llvm_cpu']}), {m['cores']} cores, {m['vector_isa'].upper()}; "
            f"NumPy sgemm ceiling {results['gemm_ceiling_gflops']:.0f} GFLOP/s (float32, 2048³).")


def layer_against_ceiling(results):
    """A line per framework and layer case: its effective GFLOP/s over the sgemm ceiling."""
    lines = []
    for case in results["cases"]:
        for config, m in case["configs"].items() if case["mode"] == "layer" else ():
            if "gflops" in m:
                lines.append(f"{case['model']}, {config}: {m['gflops']:.0f} effective GFLOP/s = "
                             f"{m['gflops'] / results['gemm_ceiling_gflops']:.2f}× the sgemm ceiling.")
    return "\n".join(lines) + ("\n" if lines else "")


def ratio_to_best_peer(case, config="minicnn-numba"):
    """``config``'s best round against the best peer's (None when either is missing), and
    the range of that ratio round by round (the rounds were interleaved)."""
    ours = case["configs"].get(config, {})
    peers = [m for c, m in case["configs"].items() if not c.startswith("minicnn") and "images_per_s" in m]
    if "images_per_s" not in ours or not peers:
        return None
    per_round = [min(rounds) / t for t, *rounds in zip(ours["rounds_ms"], *(p["rounds_ms"] for p in peers))]
    return ours["images_per_s"] / max(p["images_per_s"] for p in peers), min(per_round), max(per_round)


def baseline_lines(results):
    """Per case: minicnn-numba's ratio to the best peer beside the baseline checkout's."""
    lines = []
    for case in results["cases"]:
        now, then = ratio_to_best_peer(case), ratio_to_best_peer(case, "minicnn-baseline")
        if now and then:
            lines.append(f"{case['model']} b{case['batch']} {case['mode']}: {now[0]:.2f}× the best peer "
                         f"(baseline {then[0]:.2f}×; this tree / baseline {now[0] / then[0]:.3f}).")
    return lines


def markdown(results):
    """The results table; the last column is minicnn-numba's best round against the best
    peer's, then the range of that ratio round by round (the rounds were interleaved)."""
    configs = [c for c in {**CONFIGS, "minicnn-baseline": None} if any(c in r["configs"] for r in results["cases"])]
    lines = ["| model | batch | mode | " + " | ".join(configs) + " | minicnn-numba / best peer (per round) |",
             "|---|---|---|" + "---|" * (len(configs) + 1)]
    for r in results["cases"]:
        cells, peers = [], []
        for c in configs:
            m = r["configs"].get(c, {})
            if "images_per_s" in m:
                cells.append(f"{m['ms_per_step']:.1f} ms, {m['gflops']:.0f} GFLOP/s ({m['peak_rss_mb']:.0f} MB)"
                             if "gflops" in m else
                             f"{m['images_per_s']:,.0f} img/s ({m['ms_per_step']:.1f} ms, {m['peak_rss_mb']:.0f} MB)")
                if not c.startswith("minicnn"):
                    peers.append(m)
            else:
                cells.append(m.get("error", "—")[:60])
        ratio = ratio_to_best_peer(r)
        ratio = "—" if ratio is None else f"{ratio[0]:.2f}× ({ratio[1]:.2f}–{ratio[2]:.2f}×)"
        lines.append(f"| {r['model']} | {r['batch']} | {r['mode']} | " + " | ".join(cells) + f" | {ratio} |")
    return "\n".join(lines)


def chart(results, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np
    from minicnn.viz.plots import save_figure
    configs = list(CONFIGS)
    labels = [f"{r['model']}\nb{r['batch']} {r['mode']}" for r in results["cases"]]
    fig, ax = plt.subplots(figsize=(13, 4))
    width = 0.8 / len(configs)
    for i, c in enumerate(configs):
        values = [r["configs"].get(c, {}).get("images_per_s", 0) for r in results["cases"]]
        ax.bar(np.arange(len(labels)) + i * width, values, width, label=c)
    ax.set_xticks(np.arange(len(labels)) + 0.4 - width / 2)
    ax.set_xticklabels(labels, fontsize=7)
    ax.set_ylabel("images / s")
    ax.set_yscale("log")
    ax.legend(fontsize=7)
    save_figure(fig, path)


def main(quick=False, out="benchmarks/results", baseline=None):
    """The whole run.  ``baseline``: the root of another minicnn checkout, run beside this one
    on the seed cases (its Numba kernels) as the configuration "minicnn-baseline"."""
    from minicnn.saving import atomic_write_bytes
    with_baseline = {**CONFIGS, "minicnn-baseline": ("minicnn", {"MINICNN_KERNELS": "numba",
                                                                 "PYTHONPATH": os.path.abspath(baseline or "")})}
    steps, rounds = (3, 2) if quick else (10, 5)
    from minicnn import threads
    results = {"machine": machine(), "gemm_ceiling_gflops": gemm_ceiling(), "cases": [],
               "peers_run_without": sorted(threads.set_by_minicnn)}   # the README's summary says whether
                                                                      # a run's peers inherited them
    out = os.path.join(out, machine_class(results["machine"]))
    if quick:
        out = os.path.join(out, "quick")         # never overwrite a full run's results
    print(f"GEMM ceiling (numpy float32 2048³): {results['gemm_ceiling_gflops']:.0f} GFLOP/s")
    results["layers"] = layer_table()
    results["jit"] = jit_compile_times()
    print(f"first Numba step: {results['jit']['cold_cache_s']:.1f} s with an empty kernel cache, "
          f"{results['jit']['warm_cache_s']:.1f} s with the cache", flush=True)
    cases = QUICK_CASES if quick else CASES
    compile_minicnn_kernels(cases)
    for case in cases:
        configs = with_baseline if baseline and case in SEED_CASES else CONFIGS
        configs_run, waiting_cpu = run_case(case, configs, steps, rounds)
        entry = {"model": case[0], "shape": case[1], "batch": case[2], "mode": case[3], "configs": configs_run,
                 "waiting_workers_cpu_s": waiting_cpu}
        for config, m in configs_run.items():
            print(f"{case[0]:20s} b{case[2]:<5d} {case[3]:5s} {config:16s} " +
                  (f"{m['images_per_s']:9.0f} img/s {m['ms_per_step']:8.1f} ms/step {m['peak_rss_mb']:6.0f} MB"
                   f"  rounds {' '.join(f'{t:.1f}' for t in m['rounds_ms'])} ms"
                   if "images_per_s" in m else m["error"]), flush=True)
        print(f"  (waiting workers used {waiting_cpu:.2f} CPU s during the timed rounds)", flush=True)
        results["cases"].append(entry)
    results["gemm_ceiling_end_gflops"] = gemm_ceiling()    # the machine's speed did not drift?
    os.makedirs(out, exist_ok=True)
    atomic_write_bytes(os.path.join(out, "benchmark.json"), json.dumps(results, indent=1).encode())
    table = markdown(results)
    start, end = results["gemm_ceiling_gflops"], results["gemm_ceiling_end_gflops"]
    drift = abs(end - start) / max(start, end)
    waiting = max(c["waiting_workers_cpu_s"] for c in results["cases"])
    notes = (f"\nEach configuration timed in {rounds} interleaved rounds of ≥ {steps} steps and ≥ {MIN_ROUND_S} s "
             f"(ms/step: its best round); the workers waiting meanwhile used at most {waiting:.2f} CPU s per case."
             f"\nGEMM ceiling {start:.0f} GFLOP/s at the start of the run, {end:.0f} at the end" +
             (f" — **{drift:.0%} apart: the machine was not quiet, compare with care**" if drift > 0.15 else "") +
             f".\nFirst Numba training step + prediction in a fresh process (MNIST convnet): "
             f"{results['jit']['cold_cache_s']:.1f} s with an empty kernel cache, "
             f"{results['jit']['warm_cache_s']:.1f} s with the on-disk cache.\n" + layer_against_ceiling(results) +
             "".join(line + "\n" for line in baseline_lines(results)))
    atomic_write_bytes(os.path.join(out, "benchmark.md"), (machine_line(results) + "\n\n" + table + "\n" + notes).encode())
    chart(results, os.path.join(out, "benchmark.png"))
    print(table)
    return results
