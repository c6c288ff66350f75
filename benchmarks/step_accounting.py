"""Where a minicnn training step's time goes: in the Numba kernels (each kernel's share), in
the plan's steps around the kernels (each layer's Python and NumPy glue), and outside the
plan's steps (the loss, the optimizer, the executor).  More threads shorten only the first
part; the other two run on one core.

    python benchmarks/step_accounting.py small_resnet [--batch 64] [--steps 30] [--rounds 5] [--json PATH]

The model is the benchmark's (``bench_harness.CASES``' training cases, built as its workers
build them).  Every Numba dispatcher call is timed from Python (a wrapper on
``CPUDispatcher.__call__``), and every plan step's ``forward`` and ``backward`` around those;
the round with the fastest step is reported.  The wrappers cost about a microsecond a call,
which the timed step includes.
"""
from __future__ import annotations

import argparse
import collections
import contextlib
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))


def training_case(name, shape, batch):
    """(model, x, y) of the benchmark's training case ``name``, compiled as its worker compiles it."""
    import minicnn as mc
    from bench_blocks import BLOCK_TRAINING_CASES
    from bench_workers import minicnn_seed_case
    if name not in BLOCK_TRAINING_CASES:
        return minicnn_seed_case(name, shape, batch)
    mc.set_seed(0)
    model, optimizer, loss, x, y = BLOCK_TRAINING_CASES[name](mc, shape, batch)
    model.compile(optimizer, loss)
    return model, x, y


class _Clock:
    """Seconds per Numba kernel, and per plan step with the kernel seconds inside it."""

    def __init__(self):
        self.kernel_s, self.kernel_calls = collections.Counter(), collections.Counter()
        self.step_s, self.step_kernel_s = collections.Counter(), collections.Counter()
        self.in_kernels = 0.0

    def kernel(self, dispatcher, seconds, _):
        self.kernel_s[dispatcher.py_func.__name__] += seconds
        self.kernel_calls[dispatcher.py_func.__name__] += 1
        self.in_kernels += seconds

    def plan_step(self, method):
        def record(step, seconds, kernel_seconds):
            key = f"{method} {step.describe()}"
            self.step_s[key] += seconds
            self.step_kernel_s[key] += kernel_seconds
        return record


@contextlib.contextmanager
def _timed(owner, name, clock, record):
    """``owner.name`` replaced, while inside, by a wrapper that calls ``record(self, seconds,
    the kernel seconds within them)``."""
    original = getattr(owner, name)

    def wrapper(self, *args, **kwargs):
        start, kernels_before = time.perf_counter(), clock.in_kernels
        try:
            return original(self, *args, **kwargs)
        finally:
            record(self, time.perf_counter() - start, clock.in_kernels - kernels_before)
    setattr(owner, name, wrapper)
    try:
        yield
    finally:
        setattr(owner, name, original)


def account(model, x, y, steps=30, rounds=5):
    """The split of ``model.train_on_batch(x, y)``'s time, per step, in its fastest of
    ``rounds`` rounds of ``steps`` steps (after two untimed steps), in ms: ``step``,
    ``kernels`` (of which ``kernels_outside_steps``), ``steps_outside_kernels``,
    ``outside_steps``; per kernel ``kernel_ms`` and ``kernel_calls`` (a step's), per plan
    step ``plan_step_outside_kernels_ms``."""
    from numba.core.registry import CPUDispatcher
    from minicnn import plan
    for _ in range(2):
        model.train_on_batch(x, y)
    best = None
    for _ in range(rounds):
        clock = _Clock()
        with contextlib.ExitStack() as patches:
            patches.enter_context(_timed(CPUDispatcher, "__call__", clock, clock.kernel))
            for cls in (plan.LayerStep, plan.GroupStep):
                for method in ("forward", "backward"):
                    patches.enter_context(_timed(cls, method, clock, clock.plan_step(method)))
            start = time.perf_counter()
            for _ in range(steps):
                model.train_on_batch(x, y)
            elapsed = time.perf_counter() - start
        if best is None or elapsed < best[0]:
            best = (elapsed, clock)
    elapsed, clock = best
    ms = 1000 / steps
    in_steps, in_steps_kernels = sum(clock.step_s.values()), sum(clock.step_kernel_s.values())
    outside = {k: clock.step_s[k] - clock.step_kernel_s[k] for k in clock.step_s}
    return {"step": elapsed * ms, "kernels": clock.in_kernels * ms,
            "kernels_outside_steps": (clock.in_kernels - in_steps_kernels) * ms,
            "steps_outside_kernels": (in_steps - in_steps_kernels) * ms,
            "outside_steps": (elapsed - in_steps - (clock.in_kernels - in_steps_kernels)) * ms,
            "kernel_ms": {k: v * ms for k, v in clock.kernel_s.most_common()},
            "kernel_calls": {k: v // steps for k, v in clock.kernel_calls.items()},
            "plan_step_outside_kernels_ms": {k: v * ms for k, v in sorted(outside.items(), key=lambda kv: -kv[1])}}


def report(case, split, top=12) -> str:
    name, shape, batch = case
    lines = [f"{name} b{batch} {shape}: {split['step']:.2f} ms a step",
             f"  in the Numba kernels                {split['kernels']:6.2f} ms"
             f" ({split['kernels_outside_steps']:.2f} of them outside the plan's steps)",
             f"  in the plan's steps, around them    {split['steps_outside_kernels']:6.2f} ms",
             f"  outside the plan's steps            {split['outside_steps']:6.2f} ms", "  kernels:"]
    lines += [f"    {k:34s} {v:6.2f} ms  {split['kernel_calls'][k]} calls" for k, v in list(split["kernel_ms"].items())[:top]]
    lines.append("  plan steps, outside their kernels:")
    lines += [f"    {k:60s} {v:6.2f} ms" for k, v in list(split["plan_step_outside_kernels_ms"].items())[:top]]
    return "\n".join(lines)


def main(argv=None):
    from bench_harness import CASES, machine
    from minicnn.saving import atomic_write_bytes
    cases = {name: (shape, batch) for name, shape, batch, mode in CASES if mode == "train"}
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("case", choices=sorted(cases))
    parser.add_argument("--batch", type=int)
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--json", help="also write the split, with the machine, to this file")
    args = parser.parse_args(argv)
    import minicnn as mc
    mc.set_kernels("numba")
    shape, batch = cases[args.case]
    batch = args.batch or batch
    split = account(*training_case(args.case, shape, batch), steps=args.steps, rounds=args.rounds)
    print(report((args.case, shape, batch), split))
    if args.json:
        record = {"case": args.case, "shape": shape, "batch": batch, "machine": machine(), **split}
        atomic_write_bytes(args.json, json.dumps(record, indent=1).encode())


if __name__ == "__main__":
    main()
