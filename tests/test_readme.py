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
