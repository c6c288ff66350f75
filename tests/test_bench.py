"""The benchmark driver: interleaved rounds of real worker processes, a failing worker
reported as an error (never a number), and the table's per-round ratio."""
import pytest

from minicnn import bench

FACE = ("face_cnn", (64, 64, 1), 5, "train")


def test_interleaved_rounds_time_every_configuration_and_report_a_failure(monkeypatch):
    monkeypatch.setitem(bench.CONFIGS, "broken", ("minicnn", {"MINICNN_KERNELS": "nonsense"}))
    results, waiting_cpu = bench.run_case(FACE, ["minicnn-numba", "broken", "minicnn-numpy"], steps=1, rounds=2)
    assert results["broken"] == {"error": "ValueError: MINICNN_KERNELS: expected one of ('numpy', 'numba'), "
                                          "received 'nonsense'"}
    for config in ("minicnn-numba", "minicnn-numpy"):
        m = results[config]
        assert len(m["rounds_ms"]) == 2 and all(t > 0 for t in m["rounds_ms"])
        assert all(steps >= 1 for steps in m["rounds_steps"])
        assert m["ms_per_step"] == min(m["rounds_ms"])
        assert m["images_per_s"] == pytest.approx(5 / (m["ms_per_step"] / 1000))
        assert m["peak_rss_mb"] > 50 and m["kernels"] == config.split("-")[1]
    assert 0 <= waiting_cpu < 0.5      # a waiting worker sleeps on its stdin (spinning threads would add ~1 s)


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
