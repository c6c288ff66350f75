"""The register tiles are shaped for the CPU (``kernels/register_tiles.py``): the vector ISA
is read from the features Numba compiles for, and each ISA's products compile to an inner
loop of full-width FMAs whose accumulators stay in registers (no vector register spilled
to the stack) — checked in the generated assembly, compiled afresh in a process of its own
(Numba keeps no assembly for a kernel loaded from its cache): for this CPU's ISA, and for
AVX2 compiled for Haswell.  (Their results: the loop-reference tests, run on both
tile sets through the ``tile_set`` fixture.)"""
import contextlib
import json
import os
import re
import subprocess
import sys

import numpy as np

from minicnn.kernels import register_tiles

HASWELL = "+avx,+avx2,+fma,+f16c,+popcnt,+sse4.2,+sse4.1,+ssse3,+sse3,+sse2,+sse,+bmi,+bmi2,+lzcnt,+movbe"
VECTOR_REGISTER = {"avx2": "ymm", "avx512": "zmm"}


def test_the_vector_isa_is_read_from_the_compile_features():
    assert register_tiles.vector_isa("+sse2,+avx,+avx2,+fma,-avx512f") == "avx2"
    assert register_tiles.vector_isa("+avx2,+fma,+avx512f,+avx512bw") == "avx512"
    assert register_tiles.TILES == register_tiles.TILE_SETS[register_tiles.VECTOR_ISA]


def inner_fma_loops(asm):
    """The bodies of the loops (a label, a backward jump to it) that contain FMAs and no
    other loop: the micro-kernels' depth loops."""
    lines = asm.splitlines()
    labels = {line.strip()[:-1]: i for i, line in enumerate(lines) if re.match(r"^\.LBB\w+:$", line.strip())}
    loops = []
    for end, line in enumerate(lines):
        jump = re.match(r"\s*j\w+\s+(\.LBB\w+)$", line)
        if jump and labels.get(jump.group(1), end) < end:
            loops.append((labels[jump.group(1)], end))
    innermost = [(a, b) for a, b in loops if not any(a <= c and d <= b and (c, d) != (a, b) for c, d in loops)]
    return [lines[a:b + 1] for a, b in innermost if any("vfmadd" in line for line in lines[a:b + 1])]


def product_kernels():
    """Each Numba kernel built on the register tiles, compiled for float32 on each tile of
    the set in use: name -> its dispatcher's assembly."""
    from minicnn.inference import forward_only
    from minicnn.kernels import implicit_gemm, numba_conv_relu_pool, winograd
    from minicnn.kernels.conv_relu_pool import conv2d_relu_maxpool_forward
    from minicnn.kernels.workspace import Workspace
    import minicnn as mc
    rng = np.random.default_rng(0)
    kernels = {}
    with mc.use_kernels("numba"):
        for rows, panel in register_tiles.TILES:
            if panel % {"ymm": 8, "zmm": 16}[VECTOR_REGISTER[register_tiles.VECTOR_ISA]]:
                continue        # (AVX2's 3 × 24 on AVX-512: a zmm and a ymm per row, by design)
            x = rng.standard_normal((2, 10, 10, 8)).astype(np.float32)
            W = rng.standard_normal((3, 3, 8, panel)).astype(np.float32)
            dy = rng.standard_normal((2, 8, 8, panel)).astype(np.float32)
            implicit_gemm.conv2d(x, W, (1, 1), np.empty((2, 8, 8, panel), np.float32))
            implicit_gemm.conv2d_kernel_grad(x, dy, (3, 3), (1, 1))
            y = np.empty((2, 10, 10, panel), np.float32)
            winograd.conv2d(x, (1, 1, 1, 1), W, y)
            winograd.conv2d_kernel_grad(x, (1, 1, 1, 1), y)
            kernels[f"implicit_gemm {rows}x{panel}"] = implicit_gemm._implicit_gemm_kernel(rows, panel)
            kernels[f"kernel_grad {rows}x{panel}"] = implicit_gemm._kernel_grad_kernel(rows, panel)
            kernels[f"winograd forward {rows}x{panel}"] = winograd._forward_kernel(rows, panel)
            kernels[f"winograd kernel_grad {rows}x{panel}"] = winograd._kernel_grad_kernel(rows, panel)
        for rows, panel in register_tiles.NARROW_TILES:       # ∂L/∂W's products of few columns
            dy = rng.standard_normal((2, 8, 8, panel)).astype(np.float32)
            implicit_gemm.conv2d_kernel_grad(x, dy, (3, 3), (1, 1))
            kernels[f"kernel_grad {rows}x{panel}"] = implicit_gemm._kernel_grad_kernel(rows, panel)
        panel = register_tiles.four_row_tile()[1]
        W = rng.standard_normal((3, 3, 8, panel)).astype(np.float32)
        for switches in (True, False):          # the training forward's, and one no backward follows
            with contextlib.nullcontext() if switches else forward_only():
                conv2d_relu_maxpool_forward(x, W, np.zeros(panel, np.float32), (1, 1), "valid", Workspace(), Workspace())
            kernels[f"conv_relu_maxpool 4x{panel}" + ("" if switches else " (no switches)")] = \
                numba_conv_relu_pool._implicit_gemm_relu_maxpool_kernel(panel, switches)
    return {name: "\n".join(k.inspect_asm().values()) for name, k in kernels.items()}


def check_assembly(isa):
    """{kernel: problems}: a product loop (the FMA loop with the most FMAs) with FMAs not on
    ISA's full-width registers, or moving a vector register to or from the stack (a spill)."""
    problems = {}
    for name, asm in product_kernels().items():
        loops = inner_fma_loops(asm)
        if not loops:
            problems[name] = "no FMA loop"
            continue
        loop = max(loops, key=lambda body: sum("vfmadd" in line for line in body))
        fmas = [line for line in loop if "vfmadd" in line]
        narrow = [line.strip() for line in fmas if f"%{VECTOR_REGISTER[isa]}" not in line]
        spills = [line.strip() for line in loop if "(%rsp)" in line and re.search(r"%[xyz]mm", line)]
        if narrow or spills:
            problems[name] = {"narrow FMAs": narrow[:3], "stack accesses": spills[:3]}
    return problems


_CHECK = """
import json, sys
sys.path.insert(0, sys.argv[1])
import test_register_tiles as t
from minicnn.kernels import register_tiles
print(json.dumps([register_tiles.VECTOR_ISA, register_tiles.TILES, t.check_assembly(register_tiles.VECTOR_ISA)]))
"""


def compiled_afresh(tmp_path, **cpu):
    """(ISA, tiles, problems of ``check_assembly``) from a process with an empty kernel cache."""
    env = {**os.environ, "NUMBA_CACHE_DIR": str(tmp_path), **cpu}
    out = subprocess.run([sys.executable, "-c", _CHECK, os.path.dirname(__file__)], env=env, check=True,
                         capture_output=True, text=True).stdout
    isa, tiles, problems = json.loads(out.splitlines()[-1])
    return isa, tuple(tuple(t) for t in tiles), problems


def test_this_cpus_products_are_full_width_fmas_without_spills(tmp_path):
    isa, tiles, problems = compiled_afresh(tmp_path)
    assert (isa, tiles, problems) == (register_tiles.VECTOR_ISA, register_tiles.TILES, {})


def test_the_avx2_products_compiled_for_haswell_are_full_width_fmas_without_spills(tmp_path):
    """Compiled for Haswell (16 ymm registers) on any x86-64 CPU: the AVX2 tiles are chosen,
    and their loops keep to ymm FMAs and registers."""
    isa, tiles, problems = compiled_afresh(tmp_path, NUMBA_CPU_NAME="haswell", NUMBA_CPU_FEATURES=HASWELL)
    assert (isa, tiles, problems) == ("avx2", register_tiles.TILE_SETS["avx2"], {})


def test_an_avx512_cpu_gets_the_avx512_tiles_and_this_cpu_its_own():
    """Decided from the feature string, so it is checked on any CPU: AVX-512 features give the
    4 × 32 and 3 × 48 tiles, AVX2's the 4 × 16 and 3 × 24; this process runs its CPU's set."""
    avx512 = HASWELL + ",+avx512f,+avx512dq,+avx512bw,+avx512vl"
    assert register_tiles.vector_isa(avx512) == "avx512" and register_tiles.vector_isa(HASWELL) == "avx2"
    assert register_tiles.TILE_SETS["avx512"][:2] == ((4, 32), (3, 48))
    assert register_tiles.TILE_SETS["avx2"][:2] == ((4, 16), (3, 24))
    assert register_tiles.TILES == register_tiles.TILE_SETS[register_tiles.vector_isa(register_tiles.target_features())]
