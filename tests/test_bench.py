"""The benchmark driver: interleaved rounds of real worker processes, a failing worker
reported as an error (never a number), and the table's per-round ratio."""
import pytest

from minicnn.cli import benchmark_harness, main

bench = benchmark_harness()

FACE = ("face_cnn", (64, 64, 1), 5, "train")


def configs(*names):
    return {name: bench.CONFIGS[name] for name in names}


def test_interleaved_rounds_time_every_configuration_and_report_a_failure(monkeypatch):
    monkeypatch.setitem(bench.CONFIGS, "broken", ("minicnn", {"MINICNN_KERNELS": "nonsense"}))
    results, waiting_cpu = bench.run_case(FACE, configs("minicnn-numba", "broken", "minicnn-numpy"), steps=1, rounds=2)
    assert results["broken"] == {"error": "ValueError: MINICNN_KERNELS: expected one of ('auto', 'reference', 'numpy', 'numba'), "
                                          "received 'nonsense'"}
    for config in ("minicnn-numba", "minicnn-numpy"):
        m = results[config]
        assert len(m["rounds_ms"]) == 2 and all(t > 0 for t in m["rounds_ms"])
        assert all(steps >= 1 for steps in m["rounds_steps"])
        assert m["ms_per_step"] == min(m["rounds_ms"])
        assert m["images_per_s"] == pytest.approx(5 / (m["ms_per_step"] / 1000))
        assert m["peak_rss_mb"] > 50 and m["kernels"] == config.split("-")[1]
    assert 0 <= waiting_cpu < 0.5      # a waiting worker sleeps on its stdin (spinning threads would add ~1 s)


def test_a_peer_runs_without_the_thread_variables_import_minicnn_set(monkeypatch):
    """PyTorch's OpenMP threads read OMP_WAIT_POLICY and GOMP_SPINCOUNT too: a peer keeps its
    defaults, and a baseline checkout sets its own."""
    from minicnn import threads
    monkeypatch.setattr(threads, "set_by_minicnn", {"OMP_WAIT_POLICY": "PASSIVE", "GOMP_SPINCOUNT": "30000"})
    monkeypatch.setenv("OMP_WAIT_POLICY", "PASSIVE")
    monkeypatch.setenv("GOMP_SPINCOUNT", "30000")
    monkeypatch.setenv("OMP_NUM_THREADS", "2")                     # the user's own: kept for everyone
    other = bench._environment(this_minicnn=False)              # a peer, or a baseline checkout
    assert "OMP_WAIT_POLICY" not in other and "GOMP_SPINCOUNT" not in other
    assert other["OMP_NUM_THREADS"] == "2"
    assert bench._environment(this_minicnn=True)["GOMP_SPINCOUNT"] == "30000"


def test_table_gives_best_round_ratio_and_per_round_range():
    def run(ms_rounds):
        best = min(ms_rounds)
        return {"images_per_s": 5000 / best, "ms_per_step": best, "peak_rss_mb": 100, "rounds_ms": ms_rounds}
    case = {"model": "face_cnn", "batch": 5, "mode": "train",
            "configs": {"minicnn-numba": run([10.0, 20.0]), "torch-tuned": run([12.0, 18.0]),
                        "keras-onednn": run([15.0, 30.0]), "torch-default": {"error": "not installed: torch"}}}
    row = bench.markdown({"cases": [case]}).splitlines()[-1]
    # best rounds 10 vs 12 ms; round by round 12 / 10 and 18 / 20 (the best peer of each round)
    assert row.endswith("| 1.20× (0.90–1.20×) |")
    assert "not installed: torch" in row


def test_results_go_to_a_folder_per_vector_isa_and_vendor():
    """Intel's and AMD's AVX-512 machines are separate classes, each with its own table."""
    assert bench.machine_class({"cpu": "Intel(R) Xeon(R) Processor", "vector_isa": "avx512"}) == "avx512-intel"
    assert bench.machine_class({"cpu": "AMD EPYC 9B45", "vector_isa": "avx512"}) == "avx512-amd"
    assert bench.machine_class({"cpu": "AMD EPYC", "vector_isa": "avx2"}) == "avx2-amd"
    assert bench.machine_class({"cpu": "unknown", "vector_isa": "avx2"}) == "avx2-other"


def test_the_conv_layer_case_times_every_framework_and_reports_gflops():
    """The "layer" case (one Conv2D's forward + backward) on minicnn and TF-Keras (PyTorch
    is a benchmark-only install), in the table as ms and GFLOP/s."""
    case = next(c for c in bench.CASES if c[0] == "conv_layer")
    assert case[3] == "layer"
    results, _ = bench.run_case(case, configs("minicnn-numba", "keras-default"), steps=1, rounds=1)
    for m in results.values():
        assert m["ms_per_step"] > 0, m
    flops = 3 * 2 * 256 * 14 * 14 * 9 * 24 * 48
    assert results["minicnn-numba"]["gflops"] == pytest.approx(flops / results["minicnn-numba"]["ms_per_step"] / 1e6)
    row = bench.markdown({"cases": [{"model": case[0], "batch": case[2], "mode": case[3], "configs": results}]})
    ours, peer = results["minicnn-numba"], results["keras-default"]
    assert f"{peer['gflops']:.0f} GFLOP/s" in row.splitlines()[-1]
    assert row.endswith(f"| {peer['ms_per_step'] / ours['ms_per_step']:.2f}× "
                        f"({peer['ms_per_step'] / ours['ms_per_step']:.2f}–{peer['ms_per_step'] / ours['ms_per_step']:.2f}×) |")


def test_the_functional_case_runs_in_both_libraries_and_a_baseline_checkout_beside_this_one():
    """The residual network (a functional model) trains in minicnn and Keras; a baseline
    checkout (here: this one) runs as one more configuration, and the notes compare the two
    ratios to the best peer."""
    import os
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    setups = {**configs("minicnn-numba", "keras-default"),
              "minicnn-baseline": ("minicnn", {"MINICNN_KERNELS": "numba", "PYTHONPATH": root})}
    case = ("residual_net", (32, 32, 3), 4, "train")
    assert case[0] in {c[0] for c in bench.CASES}
    results, _ = bench.run_case(case, setups, steps=1, rounds=2)
    for m in results.values():
        assert m["ms_per_step"] > 0 and len(m["rounds_ms"]) == 2, m
    (line,) = bench.baseline_lines({"cases": [{"model": case[0], "batch": 4, "mode": "train", "configs": results}]})
    peer = results["keras-default"]["ms_per_step"]
    now, then = peer / results["minicnn-numba"]["ms_per_step"], peer / results["minicnn-baseline"]["ms_per_step"]
    assert line == (f"residual_net b4 train: {now:.2f}× the best peer (baseline {then:.2f}×; "
                    f"this tree / baseline {now / then:.3f}).")


def test_minicnn_bench_outside_a_checkout_says_where_to_run_it(monkeypatch, tmp_path, capsys):
    """An installed package has no benchmarks/: the command says so instead of failing on an import."""
    import minicnn.cli
    monkeypatch.setattr(minicnn.cli, "__file__", str(tmp_path / "site-packages" / "minicnn" / "cli.py"))
    with pytest.raises(SystemExit) as exit_:
        main(["bench", "--quick"])
    assert exit_.value.code == 2
    assert "from a checkout of the minicnn repository" in capsys.readouterr().err


def test_step_accounting_splits_a_step_into_its_kernels_and_the_serial_rest():
    """``benchmarks/step_accounting.py``: every Numba kernel a step calls, timed, and each plan
    step's time around its kernels; with the NumPy kernels there are no kernel calls; the
    wrappers are gone afterwards."""
    import os
    import sys
    from numba.core.registry import CPUDispatcher
    import minicnn as mc
    sys.path.insert(0, os.path.dirname(bench.__file__))
    from step_accounting import account, training_case
    dispatcher_call = CPUDispatcher.__call__
    model, x, y = training_case("face_cnn", (64, 64, 1), 5)
    with mc.use_kernels("numba"):
        split = account(model, x, y, steps=2, rounds=2)
    assert CPUDispatcher.__call__ is dispatcher_call
    assert {"implicit_gemm", "kernel_grad"} <= set(split["kernel_ms"])
    assert sum(split["kernel_ms"].values()) == pytest.approx(split["kernels"])
    assert all(split["kernel_calls"][k] >= 1 for k in split["kernel_ms"])
    assert 0 < split["kernels"] < split["step"] and split["steps_outside_kernels"] > 0
    layers = {step.split(" ", 1)[1] for step in split["plan_step_outside_kernels_ms"]}
    assert {layer.name for layer in model.layers if layer.trainable_weights} <= {name.split(" ")[0] for name in layers}
    with mc.use_kernels("numpy"):
        assert account(model, x, y, steps=1, rounds=1)["kernel_ms"] == {}
