"""The register tiles are shaped for the CPU (``kernels/register_tiles.py``): the vector ISA
is read from the features Numba compiles for, and each ISA's products (and the depthwise
kernels' channel blocks) compile to an inner loop of full-width FMAs whose accumulators stay
in registers (no vector register spilled to the stack) — checked in the generated assembly,
compiled afresh in a process of its own for a given CPU: this one, Haswell (AVX2) and an Intel
Xeon with AVX-512.  The kernels are compiled there by signature and never run, so any x86-64
CPU checks every ISA's code.  (Their results: the loop-reference tests, run on both tile sets
through the ``tile_set`` fixture.)"""
import importlib
import json
import os
import pickle
import re
import subprocess
import sys

import numba
import numpy as np
import pytest

from minicnn.kernels import jit, register_tiles

HASWELL = "+avx,+avx2,+fma,+f16c,+popcnt,+sse4.2,+sse4.1,+ssse3,+sse3,+sse2,+sse,+bmi,+bmi2,+lzcnt,+movbe"
AVX512 = HASWELL + ",+avx512f,+avx512dq,+avx512cd,+avx512bw,+avx512vl"
VECTOR_REGISTER = {"avx2": "ymm", "avx512": "zmm"}


def test_the_vector_isa_is_read_from_the_compile_features():
    assert register_tiles.vector_isa("+sse2,+avx,+avx2,+fma,-avx512f") == "avx2"
    assert register_tiles.vector_isa("+avx2,+fma,+avx512f,+avx512bw") == "avx512"
    assert register_tiles.vector_isa("+avx2,+fma,+avx512f,+avx512bw,+prefer-256-bit") == "avx2"
    assert register_tiles.TILES == register_tiles.TILE_SETS[register_tiles.VECTOR_ISA]


def test_avx512_features_ask_for_512_bit_vectors_unless_told_otherwise():
    assert jit.with_wide_vectors(AVX512) == AVX512 + ",-prefer-256-bit"
    for features in (HASWELL, AVX512 + ",+prefer-256-bit", AVX512 + ",-prefer-256-bit"):
        assert jit.with_wide_vectors(features) == features


def inner_fma_loops(asm):
    """The bodies of the loops (a label, a backward jump to it) that contain FMAs and no
    other loop that does: the micro-kernels' depth loops, the depthwise blocks' tap loops
    (whose skip of a tap in the padding is a loop of its own inside them, without FMAs)."""
    lines = asm.splitlines()
    labels = {line.strip()[:-1]: i for i, line in enumerate(lines) if re.match(r"^\.LBB\w+:$", line.strip())}
    loops = []
    for end, line in enumerate(lines):
        jump = re.match(r"\s*j\w+\s+(\.LBB\w+)$", line)
        if jump and labels.get(jump.group(1), end) < end and any("vfmadd" in body_line for body_line in
                                                                 lines[labels[jump.group(1)]:end]):
            loops.append((labels[jump.group(1)], end))
    innermost = [(a, b) for a, b in loops if not any(a <= c and d <= b and (c, d) != (a, b) for c, d in loops)]
    return [lines[a:b + 1] for a, b in innermost]


def packed_fmas(lines):
    return sum(bool(re.search(r"vfmadd\d+ps", line)) for line in lines)


def kernels_to_check():
    """name -> (module, factory, its arguments, the kernel's index in what it returns or
    None, the kernel's family): each Numba kernel built on register tiles, on each tile (or
    channel block) of the set in use, but AVX2's 3 × 24 on AVX-512 (a zmm and a ymm a row, by
    design)."""
    from minicnn.kernels import numba_depthwise
    width = {"avx2": 8, "avx512": 16}[register_tiles.VECTOR_ISA]
    kernels = {}
    tiles = [tile for tile in register_tiles.TILES if tile[1] % width == 0]
    for rows, panel in [*tiles, *register_tiles.NARROW_TILES]:
        kernels[f"kernel_grad {rows}x{panel}"] = ("implicit_gemm", "_kernel_grad_kernel", (rows, panel), None,
                                                  "kernel_grad")
    for rows, panel in tiles:
        kernels[f"implicit_gemm {rows}x{panel}"] = ("implicit_gemm", "_implicit_gemm_kernel", (rows, panel), None,
                                                    "implicit_gemm")
        kernels[f"winograd forward {rows}x{panel}"] = ("winograd", "_forward_kernel", (rows, panel), None,
                                                       "winograd forward")
        kernels[f"winograd kernel_grad {rows}x{panel}"] = ("winograd", "_kernel_grad_kernel", (rows, panel), None,
                                                           "winograd kernel_grad")
    panel = register_tiles.four_row_tile()[1]
    for switches in (True, False):          # the training forward's, and one no backward follows
        kernels[f"conv_relu_maxpool 4x{panel}" + ("" if switches else " (no switches)")] = (
            "numba_conv_relu_pool", "_implicit_gemm_relu_maxpool_kernel", (panel, switches), None, "conv_relu_maxpool")
    four_rows = register_tiles.four_row_tile()
    kernels[f"pointwise {four_rows[0]}x{four_rows[1]}"] = ("pointwise", "_one_pass_kernel", (four_rows, four_rows),
                                                           None, "pointwise")
    block = numba_depthwise.CHANNEL_BLOCK
    for index, family in enumerate(("depthwise forward", "depthwise input_grad", "depthwise kernel_grad")):
        kernels[f"{family} {block}"] = ("numba_depthwise", "_kernels", (block,), index, family)
    return kernels


def kernel_signatures():
    """family -> the float32 signature its kernels are compiled for, found by running each
    family once, here, on this CPU's own tiles."""
    from minicnn.inference import forward_only
    from minicnn.kernels import implicit_gemm, numba_conv_relu_pool, numba_depthwise, pointwise, winograd
    from minicnn.kernels.conv_relu_pool import conv2d_relu_maxpool_forward
    from minicnn.kernels.workspace import Workspace
    import minicnn as mc
    rng = np.random.default_rng(0)
    rows, panel = register_tiles.four_row_tile()
    x = rng.standard_normal((2, 10, 10, 8)).astype(np.float32)
    W = rng.standard_normal((3, 3, 8, panel)).astype(np.float32)
    dy = rng.standard_normal((2, 8, 8, panel)).astype(np.float32)
    y = np.empty((2, 10, 10, panel), np.float32)
    x_dw, W_dw = x[..., :5], rng.standard_normal((3, 3, 5, 1)).astype(np.float32)
    with mc.use_kernels("numba"):
        implicit_gemm.conv2d(x, W, (1, 1), np.empty((2, 8, 8, panel), np.float32))
        implicit_gemm.conv2d_kernel_grad(x, dy, (3, 3), (1, 1))
        pointwise.conv2d_backward(x, rng.standard_normal(y.shape).astype(np.float32), W[:1, :1], np.empty_like(x))
        winograd.conv2d(x, (1, 1, 1, 1), W, y)
        winograd.conv2d_kernel_grad(x, (1, 1, 1, 1), y)
        with forward_only():
            conv2d_relu_maxpool_forward(x, W, np.zeros(panel, np.float32), (1, 1), "valid", Workspace(), Workspace())
        d = numba_depthwise.depthwise_forward(x_dw, W_dw, (1, 1), (1, 1, 1, 1), (1, 1), (10, 10))
        numba_depthwise.depthwise_backward(d, x_dw, W_dw, (1, 1), (1, 1, 1, 1), (1, 1), True)
        d = numba_depthwise.depthwise_forward(x_dw, W_dw, (2, 2), (1, 1, 1, 1), (1, 1), (5, 5))
        numba_depthwise.depthwise_backward(d, x_dw, W_dw, (2, 2), (1, 1, 1, 1), (1, 1), True)  # (∂L/∂x's own kernel)
    compiled = {"implicit_gemm": implicit_gemm._implicit_gemm_kernel(rows, panel),
                "kernel_grad": implicit_gemm._kernel_grad_kernel(*register_tiles.tile_for(panel, narrow=True)),
                "winograd forward": winograd._forward_kernel(rows, panel),
                "winograd kernel_grad": winograd._kernel_grad_kernel(rows, panel),
                "conv_relu_maxpool": numba_conv_relu_pool._implicit_gemm_relu_maxpool_kernel(panel, False),
                "pointwise": pointwise._one_pass_kernel(register_tiles.tile_for(panel, narrow=True),
                                                        register_tiles.tile_for(x.shape[-1]))}
    compiled.update(zip(("depthwise forward", "depthwise input_grad", "depthwise kernel_grad"),
                        numba_depthwise._kernels(numba_depthwise.CHANNEL_BLOCK)))
    return {family: next(signature for signature in kernel.signatures if signature[0].dtype == numba.float32)
            for family, kernel in compiled.items()}     # (earlier tests may have compiled float64 too)


def check_assembly(signatures):
    """{kernel: problems} for ``kernels_to_check``, each compiled (not run) for ``signatures``,
    in its register-tile loop, the innermost loop with the most packed FMAs (the products'
    depth loop, the depthwise block's taps): gathers (the loop reads its operands
    consecutively), FMAs not on the ISA's full-width registers, or a vector register moved to
    or from the stack (a spill); and, in the products' kernels, a scatter or gather anywhere: a
    tile's stores through a signed index, which Numba wraps when negative, became scatters on
    AVX-512 (docs/performance.md, "scattered tile stores").  The depthwise kernels are left out
    of that last check: their plain loops, for the channels past the last block and for depth
    multipliers > 1, index per channel (o // m)."""
    register = VECTOR_REGISTER[register_tiles.VECTOR_ISA]
    problems = {}
    for name, (module, factory, arguments, index, family) in kernels_to_check().items():
        made = getattr(importlib.import_module(f"minicnn.kernels.{module}"), factory)(*arguments)
        kernel = made if index is None else made[index]
        kernel.compile(signatures[family])
        loop = max(inner_fma_loops(kernel.inspect_asm(signatures[family])), key=packed_fmas, default=[])
        found = {"gathers": [line.strip() for line in loop if "vgather" in line][:3],
                 "narrow FMAs": [line.strip() for line in loop if "vfmadd" in line and f"%{register}" not in line][:3],
                 "stack accesses": [line.strip() for line in loop
                                    if "(%rsp)" in line and re.search(r"%[xyz]mm", line)][:3],
                 "scatters or gathers": [] if name.startswith("depthwise") else
                 [line.strip() for line in kernel.inspect_asm(signatures[family]).splitlines()
                  if re.search(r"\bv(scatter|gather)", line)][:3]}
        if not packed_fmas(loop):
            problems[name] = "no packed FMA loop"
        elif any(found.values()):
            problems[name] = found
    return problems


_CHECK = """
import json, pickle, sys
sys.path.insert(0, sys.argv[1])
import test_register_tiles as t
from minicnn.kernels import jit, register_tiles
with open(sys.argv[2], "rb") as signatures:
    problems = t.check_assembly(pickle.load(signatures))
print(json.dumps([register_tiles.VECTOR_ISA, register_tiles.TILES, jit.cpu_features(), problems]))
"""

TARGETS = {         # the CPUs compiled for: Numba's settings
    "this CPU": {},
    "haswell": {"NUMBA_CPU_NAME": "haswell", "NUMBA_CPU_FEATURES": HASWELL},
    "sapphirerapids": {"NUMBA_CPU_NAME": "sapphirerapids", "NUMBA_CPU_FEATURES": AVX512},
}


@pytest.fixture(scope="module")
def compiled_afresh(tmp_path_factory):
    """target -> (ISA, tiles, the features Numba compiled with, problems of ``check_assembly``),
    each from a process of its own with an empty kernel cache, compiling for its CPU of
    ``TARGETS``; the processes run at once (each compiles on one core, for minutes)."""
    folder = tmp_path_factory.mktemp("assembly")
    (folder / "signatures.pickle").write_bytes(pickle.dumps(kernel_signatures()))
    runs = {target: subprocess.Popen([sys.executable, "-c", _CHECK, os.path.dirname(__file__),
                                      str(folder / "signatures.pickle")],
                                     env={**os.environ, "NUMBA_CACHE_DIR": str(folder / target), **cpu},
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            for target, cpu in TARGETS.items()}
    results = {}
    try:
        for target, run in runs.items():
            out, err = run.communicate(timeout=1800)
            assert run.returncode == 0, f"{target}: {err[-3000:]}"
            isa, tiles, features, problems = json.loads(out.splitlines()[-1])
            results[target] = isa, tuple(tuple(t) for t in tiles), features, problems
    finally:
        for run in runs.values():       # (one failed: the others stop too)
            run.kill()
            run.wait()
    return results


def test_this_cpus_kernels_are_full_width_fmas_without_spills(compiled_afresh):
    isa, tiles, _, problems = compiled_afresh["this CPU"]
    assert (isa, tiles, problems) == (register_tiles.VECTOR_ISA, register_tiles.TILES, {})


def test_the_avx2_kernels_compiled_for_haswell_are_full_width_fmas_without_spills(compiled_afresh):
    """Compiled for Haswell (16 ymm registers): the AVX2 tiles are chosen, and their loops
    keep to ymm FMAs and registers."""
    assert compiled_afresh["haswell"] == ("avx2", register_tiles.TILE_SETS["avx2"], HASWELL, {})


def test_the_avx512_kernels_compiled_for_an_intel_xeon_are_zmm_fmas_without_spills(compiled_afresh):
    """Compiled for Sapphire Rapids, whose LLVM tuning prefers 256-bit vectors: minicnn asks
    for 512-bit ones (``jit.with_wide_vectors``), the AVX-512 tiles are chosen, and their
    loops, and the depthwise kernels' 64-channel blocks, keep to zmm FMAs and registers.
    (Without ``-prefer-256-bit`` every one of them compiles to ymm: docs/performance.md.)"""
    assert compiled_afresh["sapphirerapids"] == ("avx512", register_tiles.TILE_SETS["avx512"],
                                                 AVX512 + ",-prefer-256-bit", {})


def test_the_tile_sets_are_sized_for_their_registers_and_this_cpu_runs_its_own():
    """AVX-512 features give the 4 × 64, 3 × 48 and 4 × 32 tiles, AVX2's the 4 × 16 and 3 × 24;
    this process runs its CPU's set."""
    assert register_tiles.TILE_SETS["avx512"][:3] == ((4, 64), (3, 48), (4, 32))
    assert register_tiles.TILE_SETS["avx2"][:2] == ((4, 16), (3, 24))
    assert register_tiles.TILES == register_tiles.TILE_SETS[register_tiles.vector_isa(jit.cpu_features())]


def test_a_tile_of_whole_registers_is_chosen_where_asked():
    """24 columns: AVX-512's 3 × 24 pads least, but its rows are 1½ registers; asked for whole
    registers, the products take 4 × 32 there (8 empty columns), and AVX2's 3 × 24 still."""
    with register_tiles.use_tile_set("avx512"):
        assert register_tiles.tile_for(24, (3, 48)) == (3, 24)
        assert register_tiles.tile_for(24, (3, 48), whole_registers=True) == (4, 32)
        assert register_tiles.tile_for(48, (3, 48), whole_registers=True) == (3, 48)
        assert register_tiles.tile_for(16, (3, 48), whole_registers=True) == (8, 16)
    with register_tiles.use_tile_set("avx2"):
        assert register_tiles.tile_for(24, (3, 24), whole_registers=True) == (3, 24)


def test_numba_code_compiled_before_the_import_keeps_its_features_with_a_warning():
    """Numba reads its CPU features once, when it first compiles: minicnn imported after that
    cannot widen the vectors, and says so (compiled for an AVX-512 CPU, never run)."""
    script = ("import warnings, numba\n"
              "numba.njit(lambda a: a + 1).compile('float64(float64)')\n"
              "with warnings.catch_warnings(record=True) as caught:\n"
              "    warnings.simplefilter('always')\n"
              "    import minicnn.kernels.jit\n"
              "print(numba.config.CPU_FEATURES.endswith('-prefer-256-bit'), [str(w.message) for w in caught])\n")
    env = {**os.environ, "NUMBA_CPU_NAME": "sapphirerapids", "NUMBA_CPU_FEATURES": AVX512}
    out = subprocess.run([sys.executable, "-c", script], env=env, check=True, capture_output=True, text=True).stdout
    assert out.startswith("False [") and "half their width" in out
