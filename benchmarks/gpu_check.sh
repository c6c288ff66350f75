#!/usr/bin/env bash
# The GPU check (issue 35) in one go, under 8 minutes on a machine with an NVIDIA GPU:
#
#   1. install  the GPU extra: wheels carried in .whl/ (a machine that reaches no package
#               registry), else `pip install cupy-cuda12x` when CuPy is missing; PyTorch CUDA,
#               the peer, as the machine has it; minicnn itself, editable (its CUDA sources
#               are the package minicnn._kernels)
#   2. tests    every GPU test (-m gpu) of tests/test_gpu*.py and of the suites listed in `files`
#               below, which run on the `kernels` fixture; on a GPU they must pass, not skip
#   3. bench    benchmarks/gpu_bench.py: minicnn on CuPy against PyTorch CUDA eager, kernels
#               per step; with 2, writes benchmarks/results/gpu.{json,md} (GPU model, driver,
#               CUDA, CuPy, PyTorch; the tests' outcome; the timings)
#
# usage: benchmarks/gpu_check.sh [--dry-run] [--out DIR]
#   --dry-run  every piece on the CPU: nothing is installed (what would be is printed), the
#              tests run and skip their GPU cases, the benchmark's workers run on the fake
#              device; results go to a temporary folder unless --out is given.
#   $OUT       when set (the device tool's folder), the results and logs are copied there.
#   $PYTHON    the interpreter (default python3).
#   $GPU_BENCH_BUDGET_S  seconds for the benchmark's cases (default 120; the tests get at most 200,
#              so that the whole check ends within about 6 minutes and a second run still fits).
#   $GPU_CHECK_TESTS, $GPU_BENCH_MODELS  narrow the tests (paths) and the benchmark (model names,
#              comma-separated): for the dry run's own test.
set -uo pipefail

cd "$(dirname "$0")/.."
dry_run=0
out=""
while [ $# -gt 0 ]; do
    case "$1" in
        --dry-run) dry_run=1 ;;
        --out) out="$2"; shift ;;
        *) echo "gpu_check: unknown argument $1 (usage: benchmarks/gpu_check.sh [--dry-run] [--out DIR])" >&2; exit 2 ;;
    esac
    shift
done
if [ -z "$out" ]; then
    if [ "$dry_run" = 1 ]; then out="$(mktemp -d)/gpu_check"; else out="benchmarks/results"; fi
fi
mkdir -p "$out"
PYTHON="${PYTHON:-python3}"
start=$SECONDS
say() { echo "[gpu_check +$((SECONDS - start))s] $*"; }
run() {   # a command of the install step: printed, and run unless this is the dry run
    if [ "$dry_run" = 1 ]; then say "would run: $*"; else say "run: $*"; "$@"; fi
}

# -- 1. install -------------------------------------------------------------------------------
say "1/3 install ($([ "$dry_run" = 1 ] && echo 'dry run: nothing is installed' || echo "$($PYTHON --version 2>&1)"))"
if compgen -G ".whl/*.whl" > /dev/null; then
    run "$PYTHON" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
        --target /tmp/site .whl/*.whl && export PYTHONPATH="/tmp/site${PYTHONPATH:+:$PYTHONPATH}"
fi
if ! "$PYTHON" -c "import cupy" 2> /dev/null; then
    run timeout 120 "$PYTHON" -m pip install -q --retries 1 --timeout 15 cupy-cuda12x \
        || say "CuPy could not be installed: no registry? carry the wheel in .whl/ (see the issue's report)"
fi
run "$PYTHON" -m pip install -q --no-deps --no-build-isolation --no-index -e . \
    || say "minicnn was not installed: the CUDA sources are read from kernels/ in place"
"$PYTHON" - <<'EOF'
import importlib
import importlib.util
for name in ("numpy", "numba", "cupy", "torch"):
    try:
        print(f"    {name} {importlib.import_module(name).__version__}")
    except Exception as exc:
        print(f"    {name}: not importable ({type(exc).__name__}: {str(exc)[:120]})")
for name in ("tensorflow", "hypothesis", "pytest"):      # (found, not imported: TensorFlow is slow to)
    print(f"    {name}: {'there' if importlib.util.find_spec(name) else 'not there'}")
from minicnn import backend
print(f"    GPU: {backend.gpu_status()}")
EOF
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2> /dev/null | sed 's/^/    nvidia-smi: /'

# -- 2. tests ---------------------------------------------------------------------------------
say "2/3 GPU tests"
files=(tests/test_gpu*.py tests/test_ops_reference.py tests/test_buffers.py tests/test_losses.py tests/test_model.py
       tests/test_layers_devices.py)
if "$PYTHON" -c "import importlib.util, sys; sys.exit(importlib.util.find_spec('tensorflow') is None)"; then
    files+=(tests/test_tf_layers.py)
else
    say "TensorFlow is not importable: the GPU's TensorFlow parity runs on the stored reference only"
fi
junit="$out/gpu-tests.xml"
# -m gpu: the GPU cases only (tests/test_gpu.py and test_gpu_device_copy.py are marked
# whole); NumPy host kernels, so that no Numba kernel is compiled on a fresh machine
MINICNN_KERNELS=numpy timeout 200 "$PYTHON" -m pytest -q -p no:cacheprovider -rs -m gpu \
    --junitxml="$junit" ${GPU_CHECK_TESTS:-"${files[@]}"} 2>&1 | tee "$out/gpu-tests.log" | tail -n 40

# -- 3. benchmark and report ------------------------------------------------------------------
say "3/3 benchmark"
"$PYTHON" benchmarks/gpu_bench.py $([ "$dry_run" = 1 ] && echo --fake) --junit "$junit" \
    --budget-s "${GPU_BENCH_BUDGET_S:-120}" ${GPU_BENCH_MODELS:+--models "$GPU_BENCH_MODELS"} --out "$out"
status=$?
if [ "$dry_run" = 0 ] && [ $status = 0 ]; then    # on a GPU every GPU test must pass, and none skip
    "$PYTHON" -c "import json, sys; t = json.load(open(sys.argv[1]))['tests']; \
sys.exit('error' in t or t['failed'] + t['errors'] + t['skipped'] > 0)" "$out/gpu.json" \
        || { say "FAILED: a GPU test failed or skipped (see gpu.md)"; status=1; }
fi
if [ -n "${OUT:-}" ] && [ "$out" != "$OUT" ]; then
    cp "$out"/gpu.json "$out"/gpu.md "$out"/gpu-tests.log "$junit" "$OUT"/ 2> /dev/null
fi
say "done: $out/gpu.md (exit status $status)"
cat "$out/gpu.md" 2> /dev/null | head -n 40
exit $status
