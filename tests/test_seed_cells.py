"""The seed tutorials' Keras cells, run as a Keras user would run them on minicnn: only the
import lines changed (``seed_cells.py``), data that is not available offline swapped for
what is, epochs cut to one.  Each tutorial runs twice, in fresh processes: with Keras 3 and
with minicnn.  A Keras cell that runs on Keras must run on minicnn too; the counts are
printed (``pytest -s``).  Cells that fail on both are out of reach of an import change
(TensorFlow's own API, keras-vis, files on the web, Keras 2 APIs gone from Keras 3)."""
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

import seed_cells

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


def _run(index, framework, tmp_path):
    out = tmp_path / f"{framework}.json"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "MPLBACKEND": "Agg"}
    env.setdefault("MINICNN_DATA", str(ROOT.parent / "shared" / "datasets"))
    subprocess.run([sys.executable, str(ROOT / "tests" / "seed_cells.py"), str(index), framework, str(out)],
                   cwd=tmp_path, env=env, check=True, capture_output=True, timeout=1200)
    return json.loads(out.read_text())


@pytest.mark.tf
@pytest.mark.parametrize("index", range(len(SEEDS)), ids=[p.name[:3] for p in SEEDS])
def test_keras_cells_that_run_on_keras_run_on_minicnn(index, tmp_path):
    ours = _run(index, "minicnn", tmp_path)
    theirs = _run(index, "keras", tmp_path)
    keras_cells = [i for i, cell in enumerate(ours) if cell["keras_cell"]]
    ran_ours = {i for i in keras_cells if ours[i]["error"] is None}
    ran_theirs = {i for i in keras_cells if theirs[i]["error"] is None}
    print(f"\n{SEEDS[index].name}: {len(keras_cells)} Keras cells; run on minicnn {len(ran_ours)}, "
          f"on Keras {len(ran_theirs)}")
    missing = {i: (ours[i]["first_line"], ours[i]["error"]) for i in sorted(ran_theirs - ran_ours)}
    assert not missing, f"{SEEDS[index].name}: cells that run on Keras but not on minicnn: {missing}"
