"""Measuring the memory a piece of code allocates (``tracemalloc``: arrays NumPy allocates)."""
import gc
import tracemalloc


def peak_of_new_arrays(run):
    """(the peak bytes of new allocations while ``run()`` runs, what it returned)."""
    gc.collect()
    tracemalloc.start()
    try:
        result = run()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return peak, result
