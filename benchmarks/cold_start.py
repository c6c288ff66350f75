"""Cold start: how long a new user waits.  Each figure comes from a fresh process:

* import time and the first training step (``fit`` on one batch of 64, the MNIST convnet,
  RMSprop) of minicnn with an empty kernel cache, with a warm one, and on the NumPy
  kernels, beside PyTorch's and Keras's import and first step of the same network;
* ``minicnn demo`` with an empty cache (it trains on the NumPy kernels while a background
  process compiles the Numba ones), how long that background warm-up takes, and the demo
  again once it is done.

Wall seconds and CPU seconds (user + system, the process and its children) are both
recorded: on a shared machine the wall time also counts other people's work, and the load
average at the start and end says how much there was.  Writes
benchmarks/results/cold_start.{json,md}.

    python benchmarks/cold_start.py [--out DIR] [--skip-demo]
"""
import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BATCH = 64

FIRST_STEP = {
    "minicnn": """
import time; t0 = time.perf_counter()
import numpy as np, minicnn as mc
from minicnn import architectures
t1 = time.perf_counter()
model = architectures.mnist_convnet(); model.compile("rmsprop", "sparse_categorical_crossentropy")
x, y = np.random.default_rng(0).uniform(0, 1, (BATCH, 28, 28, 1)).astype("float32"), np.zeros(BATCH, "int64")
t2 = time.perf_counter(); model.fit(x, y, batch_size=BATCH, epochs=1, verbose=0)
""",
    "torch": """
import time; t0 = time.perf_counter()
import numpy as np, torch
from torch import nn
t1 = time.perf_counter()
torch.manual_seed(0)
model = nn.Sequential(nn.Conv2d(1, 32, 3), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(32, 64, 3), nn.ReLU(),
                      nn.MaxPool2d(2), nn.Conv2d(64, 64, 3), nn.ReLU(), nn.Flatten(), nn.Linear(576, 64), nn.ReLU(),
                      nn.Linear(64, 10))
optimizer, loss_fn = torch.optim.RMSprop(model.parameters(), lr=1e-3), nn.CrossEntropyLoss()
x, y = torch.rand(BATCH, 1, 28, 28), torch.zeros(BATCH, dtype=torch.int64)
t2 = time.perf_counter(); optimizer.zero_grad(); loss_fn(model(x), y).backward(); optimizer.step()
""",
    "keras": """
import os, time; os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"; t0 = time.perf_counter()
import numpy as np, keras
from keras import layers
t1 = time.perf_counter()
model = keras.Sequential([keras.Input((28, 28, 1)), layers.Conv2D(32, 3, activation="relu"), layers.MaxPooling2D(2),
                          layers.Conv2D(64, 3, activation="relu"), layers.MaxPooling2D(2),
                          layers.Conv2D(64, 3, activation="relu"), layers.Flatten(),
                          layers.Dense(64, activation="relu"), layers.Dense(10, activation="softmax")])
model.compile("rmsprop", "sparse_categorical_crossentropy")
x, y = np.random.default_rng(0).uniform(0, 1, (BATCH, 28, 28, 1)).astype("float32"), np.zeros(BATCH, "int64")
t2 = time.perf_counter(); model.fit(x, y, batch_size=BATCH, epochs=1, verbose=0)
""",
}
REPORT = '\nimport json; print(json.dumps({"import_s": t1 - t0, "first_step_s": time.perf_counter() - t2}))\n'


def machine():
    flags, cpu = set(), "unknown"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
            elif line.startswith("flags"):
                flags = set(line.split(":", 1)[1].split())
    isa = "AVX-512" if "avx512f" in flags else "AVX2" if "avx2" in flags else "SSE"
    return {"cpu": cpu, "isa": isa, "cores": os.cpu_count(), "python": platform.python_version()}


def timed(args, env, cwd=REPO):
    """(wall seconds, CPU seconds, stdout) of a fresh process."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    done = subprocess.run(args, env=env, cwd=cwd, capture_output=True, text=True, timeout=3600)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise RuntimeError(f"{args} failed:\n{done.stderr[-3000:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu, done.stdout


def first_step(framework, env):
    code = f"BATCH = {BATCH}\n" + FIRST_STEP[framework] + REPORT
    wall, cpu, out = timed([sys.executable, "-c", code], env)
    return {**json.loads(out.strip().splitlines()[-1]), "process_wall_s": wall, "process_cpu_s": cpu}


def wait_for_background_warmup(cache):
    """Seconds until the warm-up the cold demo started has finished (its pid file's process)."""
    start = time.perf_counter()
    with open(os.path.join(cache, "numba", "warmup.pid")) as f:
        pid = int(f.read())
    while True:
        try:
            os.kill(pid, 0)
        except OSError:
            return time.perf_counter() - start
        time.sleep(1)


def run(skip_demo):
    clean = {k: v for k, v in os.environ.items() if k not in ("NUMBA_CACHE_DIR", "MINICNN_KERNELS", "XDG_CACHE_HOME")}
    results = {"machine": machine(), "load_average_start": os.getloadavg(), "first_step": {}, "demo": {}}
    with tempfile.TemporaryDirectory() as cache, tempfile.TemporaryDirectory() as out:
        env = {**clean, "MINICNN_CACHE_DIR": cache}
        for label, extra in (("minicnn, Numba kernels, empty cache", {}), ("minicnn, Numba kernels, warm cache", {}),
                             ("minicnn, NumPy kernels", {"MINICNN_KERNELS": "numpy"})):
            results["first_step"][label] = first_step("minicnn", {**env, **extra})
            print(label, results["first_step"][label], flush=True)
        for framework in ("torch", "keras"):
            results["first_step"][framework] = first_step(framework, clean)
            print(framework, results["first_step"][framework], flush=True)
        if not skip_demo:
            demo_cache = os.path.join(cache, "demo")
            demo = [sys.executable, "-c", "from minicnn.cli import main; main()", "demo", "--out", out]
            env = {**clean, "MINICNN_CACHE_DIR": demo_cache}
            for label in ("empty cache", "after the warm-up"):
                wall, cpu, stdout = timed(demo, env)
                accuracy = next(line for line in stdout.splitlines() if line.startswith("MNIST CNN test accuracy"))
                results["demo"][label] = {"wall_s": wall, "cpu_s": cpu, "console": accuracy}
                print("demo,", label, results["demo"][label], flush=True)
                if label == "empty cache":
                    results["demo"]["background warm-up, after the demo"] = {
                        "wall_s": wait_for_background_warmup(demo_cache)}
    results["load_average_end"] = os.getloadavg()
    return results


def markdown(results):
    m = results["machine"]
    lines = [f"# Cold start ({m['cpu']}, {m['isa']}, {m['cores']} cores, Python {m['python']})", "",
             f"Load average at start {results['load_average_start'][0]:.1f}, at end "
             f"{results['load_average_end'][0]:.1f} (a shared machine: wall times include others' work).", "",
             f"First training step (`fit` on one batch of {BATCH}, MNIST convnet, RMSprop), fresh process:", "",
             "| | import (s) | first step (s) | process wall (s) | process CPU (s) |", "|---|---|---|---|---|"]
    lines += [f"| {k} | {v['import_s']:.2f} | {v['first_step_s']:.2f} | {v['process_wall_s']:.1f} | "
              f"{v['process_cpu_s']:.1f} |" for k, v in results["first_step"].items()]
    if results["demo"]:
        lines += ["", "`minicnn demo`:", "", "| | wall (s) | CPU (s) | console |", "|---|---|---|---|"]
        lines += [f"| {k} | {v['wall_s']:.1f} | {v.get('cpu_s', float('nan')):.1f} | {v.get('console', '')} |"
                  for k, v in results["demo"].items()]
    return "\n".join(lines) + "\n"


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default=os.path.join(REPO, "benchmarks", "results"), help="results folder")
    parser.add_argument("--skip-demo", action="store_true", help="only the first-step figures")
    args = parser.parse_args()
    sys.path.insert(0, REPO)
    from minicnn.saving import atomic_write_bytes
    results = run(args.skip_demo)
    os.makedirs(args.out, exist_ok=True)
    atomic_write_bytes(os.path.join(args.out, "cold_start.json"), json.dumps(results, indent=1).encode())
    atomic_write_bytes(os.path.join(args.out, "cold_start.md"), markdown(results).encode())
    print(markdown(results))


if __name__ == "__main__":
    main()
