"""The Keras code cells of the seed tutorials (``../shared/seeds/``), read at test time.

The tutorials are plain text: prose, program output and code, undelimited.  A *cell* is
a maximal run of lines that parses as Python (IPython ``%`` / ``!`` lines dropped); a
*Keras cell* is one that builds, trains, saves, loads or inspects a model.  ``to_minicnn``
changes only the import lines, as a user would: ``keras`` / ``tensorflow.keras`` ->
``minicnn``.
"""
from __future__ import annotations

import ast
import os
import re
from pathlib import Path



def _find_seeds() -> Path:
    """``$MINICNN_SEEDS``, else the first ``shared/seeds`` beside the repository or above it."""
    if os.environ.get("MINICNN_SEEDS"):
        return Path(os.environ["MINICNN_SEEDS"])
    for folder in Path(__file__).resolve().parents[1:]:
        if (folder / "shared" / "seeds").is_dir():
            return folder / "shared" / "seeds"
    return Path(__file__).resolve().parents[2] / "shared" / "seeds"


SEEDS = _find_seeds()
KERAS_WORDS = re.compile(r"\b(Sequential|Model\(|\.compile\(|\.fit\(|\.summary\(|\.save\(|load_model|\.predict\(|"
                         r"\.evaluate\(|layers\.|VGG16|InceptionV3|\.get_layer\(|\.layers\b|Conv2D|Dense\()")


def _parses(lines) -> bool:
    try:
        ast.parse("\n".join(lines))
        return True
    except SyntaxError:
        return False


def _code_line(line) -> str:
    return "" if line.lstrip().startswith(("%", "!")) else line


def _prose(statement) -> bool:
    """Prose or program output that happens to parse: a bare name (a heading, a rule of
    underscores) or ``Word: "text"`` (an annotated name, e.g. ``Model: "sequential"``)."""
    return (isinstance(statement, ast.Expr) and isinstance(statement.value, ast.Name)) or \
        (isinstance(statement, ast.AnnAssign) and isinstance(statement.annotation, ast.Constant))


def cells(text) -> list[str]:
    """Maximal runs of lines that parse as Python, without prose-like statements at either end."""
    lines = [_code_line(line.rstrip()) for line in text.splitlines()]
    out, i = [], 0
    while i < len(lines):
        if not lines[i].strip() or lines[i][0] in " \t":
            i += 1
            continue
        best = None
        for j in range(i + 1, min(len(lines), i + 200) + 1):
            if _parses(lines[i:j]):
                best = j
        if best is None:
            i += 1
            continue
        body = ast.parse("\n".join(lines[i:best])).body
        real = [k for k, statement in enumerate(body) if not _prose(statement)]
        if not real:
            i = best
            continue
        first, last = body[real[0]], body[real[-1]]
        out.append("\n".join(lines[i + first.lineno - 1:i + last.end_lineno]).strip())
        i += last.end_lineno
    return out


def keras_cells(path) -> list[str]:
    return [c for c in cells(Path(path).read_text()) if KERAS_WORDS.search(c)]


_IMPORTS = [(r"^(\s*)from tensorflow import keras\b", r"\1import minicnn as keras"),
            (r"^(\s*)import tensorflow\.keras as (\w+)", r"\1import minicnn as \2"),
            (r"^(\s*)from tensorflow\.keras(\.|\s)", r"\1from minicnn\2"),
            (r"^(\s*)from keras(\.|\s)", r"\1from minicnn\2"),
            (r"^(\s*)import keras\b", r"\1import minicnn as keras")]


def to_minicnn(code) -> str:
    """Only the import lines change."""
    for pattern, replacement in _IMPORTS:
        code = re.sub(pattern, replacement, code, flags=re.MULTILINE)
    return code


def seed_files() -> list[Path]:
    return sorted(SEEDS.glob("[0-9][0-9][0-9]_*.txt"))
