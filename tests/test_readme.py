"""The README stays short and its benchmark summary is what the committed results say."""
import importlib.util
import pathlib

REPO = pathlib.Path(__file__).resolve().parents[1]


def load_summary_script():
    spec = importlib.util.spec_from_file_location("readme_summary", REPO / "benchmarks" / "readme_summary.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_benchmark_summary_is_generated_from_the_results():
    summary = load_summary_script()
    assert summary.readme_block((REPO / "README.md").read_text()) == summary.render()


def test_the_readme_is_at_most_150_lines_and_starts_with_the_two_commands():
    text = (REPO / "README.md").read_text()
    assert len(text.splitlines()) <= 150
    blocks = [b.split("```", 1)[0].strip() for b in text.split("```bash\n")[1:3]]
    assert blocks == ["pip install . && minicnn demo",
                      'pip install -e ".[test]" && MINICNN_DATA=../shared/datasets python -m pytest -q -p no:cacheprovider']
    assert blocks[1] in (REPO / ".ci" / "run").read_text()


def python_blocks(text):
    return [b.split("```", 1)[0] for b in text.split("```python\n")[1:]]


def test_the_readmes_keras_example_runs_as_written(tmp_path, monkeypatch):
    """The README's functional-model block, with small random data under the names it uses."""
    import numpy as np
    monkeypatch.chdir(tmp_path)
    rng = np.random.default_rng(0)
    names = {"x_train": rng.uniform(0, 1, (40, 28, 28, 1)).astype("float32"), "y_train": rng.integers(0, 10, 40),
             "x_test": rng.uniform(0, 1, (4, 28, 28, 1)).astype("float32")}
    exec(python_blocks((REPO / "README.md").read_text())[0], names)
    assert (tmp_path / "model.keras").is_file()
    assert len(names["activations"]) == len(names["model"].layers) - 1
    assert names["activations"][-1].shape == (1, 10)
