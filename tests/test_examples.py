"""Every example's --quick run (which asserts what it shows), and the command line."""
import subprocess
import sys

import pytest

from minicnn.cli import EXAMPLES, main

QUICK = sorted(EXAMPLES)


@pytest.mark.parametrize("name", QUICK)
def test_example_quick_run(name, tmp_path):
    import importlib
    module = importlib.import_module(f"minicnn._examples.{name}")
    module.main(quick=True, out=str(tmp_path))
    pngs = list(tmp_path.glob("*.png"))
    assert pngs, "no figures written"


def test_examples_run_as_scripts(tmp_path):
    done = subprocess.run([sys.executable, "examples/faces_fcnn_vs_cnn.py", "--quick", "--out", str(tmp_path)],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "face_cnn: final training accuracy" in done.stdout


def test_cli_lists_examples(capsys):
    main(["examples"])
    out = capsys.readouterr().out
    assert all(name in out for name in EXAMPLES)


@pytest.mark.parametrize("argv", [["--help"], ["examples", "run", "--help"], ["demo", "--help"], ["bench", "--help"]])
def test_help_everywhere(argv, capsys):
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == 0 and "usage: minicnn" in capsys.readouterr().out


@pytest.mark.parametrize("argv", [["frobnicate"], ["examples", "run", "nope"], ["demo", "--epochs", "x"]])
def test_bad_arguments_give_usage_not_traceback(argv, capsys):
    with pytest.raises(SystemExit) as info:
        main(argv)
    err = capsys.readouterr().err
    assert info.value.code == 2 and "usage: minicnn" in err and "Traceback" not in err


def test_missing_files_give_an_error_not_a_traceback(capsys, tmp_path):
    for argv in (["report", str(tmp_path / "missing.mnc")], ["examples", "run", "faces_fcnn_vs_cnn", "--data", "x"]):
        with pytest.raises(SystemExit) as info:
            main(argv)
        err = capsys.readouterr().err
        assert info.value.code == 2 and "error:" in err and "Traceback" not in err


def test_demo_console_command(tmp_path):
    done = subprocess.run(["minicnn", "demo", "--quick", "--out", str(tmp_path)], capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0, done.stderr
    assert "MNIST CNN test accuracy" in done.stdout and (tmp_path / "report.html").exists()
    assert len(list((tmp_path / "figures").glob("*.png"))) >= 10


def test_the_resnet_comparison_reads_back_the_trainings_it_kept(tmp_path, monkeypatch):
    """examples/resnet.py --runs_dir: a finished training is kept and read back, not run again;
    other settings (another seed) are not taken from it."""
    from examples import resnet
    from minicnn.datasets import embedded
    x, y = embedded.load_mnist_digits()
    x = (x[..., None] / 255.0).astype("float32")
    data = (x[:64], y[:64], x[64:96], y[64:96])

    first = resnet.side_by_side(None, *data, 1, True, 0, str(tmp_path))
    assert [p.name for p in tmp_path.iterdir()] == ["minicnn-bn-seed0-float32-64x1-test32-28x28x1.json"]

    class TrainedAgain(Exception):
        pass

    def refuse(*args):
        raise TrainedAgain
    monkeypatch.setattr(resnet, "train", refuse)
    again = resnet.side_by_side(None, *data, 1, True, 0, str(tmp_path))
    assert again["minicnn"] == first["minicnn"]
    with pytest.raises(TrainedAgain):
        resnet.side_by_side(None, *data, 1, True, 1, str(tmp_path))
