"""The seed tutorials' Keras cells, run as a Keras user would run them on minicnn: only the
import lines changed (``seed_cells.py``), data that is not available offline swapped for
what is, epochs cut to one.  Each tutorial runs twice, in fresh processes: with Keras 3 and
with minicnn.  A Keras cell that runs on Keras must run on minicnn too; the counts are
printed (``pytest -s``).  Files the cells download are served by generated stand-ins
(``seed_stand_ins.py``, made once per test session), and every stand-in a tutorial names
must reach a cell that then runs on Keras.  Cells that fail on both are out of reach of an
import change (TensorFlow's own API, keras-vis, Keras 2 APIs gone from Keras 3, names the
tutorial never defines, VGG16's ImageNet weights)."""
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

import seed_cells
import seed_stand_ins

ROOT = Path(__file__).resolve().parents[1]
SEEDS = seed_cells.seed_files()


def test_every_tutorial_has_keras_cells_and_only_imports_change():
    assert len(SEEDS) == 5, f"expected the five seed tutorials at {seed_cells.SEEDS}, found {len(SEEDS)}"
    for path in SEEDS:
        cells = seed_cells.keras_cells(path)
        assert cells, f"{path.name}: no Keras cell found"
        for cell in cells:
            converted = seed_cells.to_minicnn(cell)
            assert not re.search(r"^\s*(from|import) (tensorflow\.)?keras\b", converted, re.MULTILINE)
            unchanged = [a for a, b in zip(cell.splitlines(), converted.splitlines())
                         if a != b and not re.search(r"\b(import|tf\.keras\.)", a)]
            assert not unchanged, f"{path.name}: lines other than imports changed: {unchanged}"


@pytest.fixture(scope="session")
def stand_ins(tmp_path_factory):
    """The generated stand-in files, made once (with Keras) in a fresh process."""
    folder = tmp_path_factory.mktemp("seed-stand-ins")
    subprocess.run([sys.executable, "-c", "import sys, seed_stand_ins; seed_stand_ins.make(sys.argv[1])",
                    str(folder)], cwd=ROOT / "tests", env=_environment(), check=True, capture_output=True,
                   timeout=600)
    return folder


def _environment(**extra):
    env = {**os.environ, "PYTHONPATH": str(ROOT), "MPLBACKEND": "Agg", **extra}
    # absolute: the README's command gives a relative path, and the subprocesses run elsewhere
    env["MINICNN_DATA"] = os.path.abspath(env.get("MINICNN_DATA", ROOT.parent / "shared" / "datasets"))
    return env


def _run(index, framework, tmp_path, stand_ins):
    out = tmp_path / f"{framework}.json"
    env = _environment(SEED_STAND_INS=str(stand_ins))
    subprocess.run([sys.executable, str(ROOT / "tests" / "seed_cells.py"), str(index), framework, str(out)],
                   cwd=tmp_path, env=env, check=True, capture_output=True, timeout=1200)
    return json.loads(out.read_text())


@pytest.mark.tf
@pytest.mark.parametrize("index", range(len(SEEDS)), ids=[p.name[:3] for p in SEEDS])
def test_keras_cells_that_run_on_keras_run_on_minicnn(index, tmp_path, stand_ins):
    ours = _run(index, "minicnn", tmp_path, stand_ins)
    theirs = _run(index, "keras", tmp_path, stand_ins)
    keras_cells = [i for i, cell in enumerate(ours) if cell["keras_cell"]]
    ran_ours = {i for i in keras_cells if ours[i]["error"] is None}
    ran_theirs = {i for i in keras_cells if theirs[i]["error"] is None}
    print(f"\n{SEEDS[index].name}: {len(keras_cells)} Keras cells; run on minicnn {len(ran_ours)}, "
          f"on Keras {len(ran_theirs)}")
    missing = {i: (ours[i]["first_line"], ours[i]["error"]) for i in sorted(ran_theirs - ran_ours)}
    assert not missing, f"{SEEDS[index].name}: cells that run on Keras but not on minicnn: {missing}"

    named = seed_stand_ins.stand_in_names(SEEDS[index].read_text())
    used = {name for cell in theirs if cell["error"] is None for name in cell["stand_ins"]}
    assert named <= used, f"{SEEDS[index].name}: stand-ins that no cell ran with on Keras: {named - used}"

