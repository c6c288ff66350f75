"""Damaged .mnc files: every malformed entry gives a ValueError naming the file and the
entry; and a save killed mid-write leaves nothing behind on the next save of that path."""
import copy
import io
import json
import os
import re
import subprocess
import sys
import zipfile

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import minicnn as mc
from minicnn import layers
from minicnn.saving import _npz_bytes

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def trained_model():
    mc.set_seed(0)
    model = mc.Sequential([layers.Input((8, 8, 1)), layers.Conv2D(3, 3, activation="relu", name="conv2d"),
                           layers.Flatten(name="flatten"), layers.Dense(2, activation="softmax", name="dense")])
    model.compile(mc.optimizers.Adam(0.01), "categorical_crossentropy", metrics=["acc"])
    rng = np.random.default_rng(0)
    x = rng.uniform(0, 1, (8, 8, 8, 1)).astype("float32")
    model.train_on_batch(x, np.eye(2, dtype="float32")[rng.integers(0, 2, 8)])
    return model


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """The entries of a saved, compiled and trained model: {name: bytes}."""
    path = tmp_path_factory.mktemp("saved") / "m.mnc"
    trained_model().save(path)
    with zipfile.ZipFile(path) as z:
        return {name: z.read(name) for name in z.namelist()}


def write(path, entries):
    with zipfile.ZipFile(path, "w") as z:
        for name, data in entries.items():
            z.writestr(name, data)
    return path


def with_config(saved, change):
    config = json.loads(saved["config.json"])
    change(config)
    return {**saved, "config.json": json.dumps(config)}


def with_arrays(saved, entry, change):
    arrays = dict(np.load(io.BytesIO(saved[entry])))
    change(arrays)
    return {**saved, entry: _npz_bytes(arrays)}


def test_the_saved_model_loads(saved, tmp_path):
    model = mc.load_model(write(tmp_path / "good.mnc", saved))
    assert model.optimizer.iterations == 1 and set(model.optimizer.slots) == {
        ("conv2d", "kernel"), ("conv2d", "bias"), ("dense", "kernel"), ("dense", "bias")}


def _pop(key):
    return lambda c: c.pop(key)


def _set(*where, value):
    def change(config):
        target = config
        for key in where[:-1]:
            target = target[key]
        target[where[-1]] = value
    return change


CONFIG_DAMAGE = [
    (_pop("layers"), "entry layers is missing"),
    (_pop("name"), "entry name is missing"),
    (_set("layers", value="conv"), "entry layers must be a list of layers, found 'conv'"),
    (_set("name", value=5), "entry name must be a string, found 5"),
    (_set("input_shape", value=[None, "8", 8, 1]), r"entry input_shape must be \[null, positive ints...\]"),
    (_set("input_shape", value=[None, 0, 8, 1]), r"entry input_shape must be \[null, positive ints...\]"),
    (_set("input_shape", value=[None, 8, 8, 2]), r"entry weights.npz does not match the architecture"),
    (_set("layers", 0, value="Conv2D"), "entry layers\\[0\\].class is missing"),
    (lambda c: c["layers"][0].pop("class"), r"entry layers\[0\].class is missing"),
    (lambda c: c["layers"][0].pop("config"), r"entry layers\[0\].config is missing"),
    (_set("layers", 1, "class", value="Nope"), r"entry layers\[1\].class: unknown layer class 'Nope'"),
    (_set("layers", 1, "class", value="Layer"), r"entry layers\[1\].config \(Layer\) is malformed"),
    (_set("layers", 0, "config", "filters", value="three"), r"entry layers\[0\].config \(Conv2D\) is malformed"),
    (_set("layers", 0, "config", "bogus", value=1), r"entry layers\[0\].config \(Conv2D\) is malformed"),
    (_set("layers", 2, "config", "name", value="conv2d"), "entry layers is malformed: .*duplicate layer name"),
    (_set("compile", value=[]), "entry compile must be a dict"),
    (_set("compile", "optimizer", value={"name": "adamw"}), "entry compile.optimizer is malformed"),
    (_set("compile", "optimizer", "beta_1", value=2), "entry compile.optimizer is malformed: Adam: beta_1 must be"),
    (_set("compile", "optimizer", "learning_rate", value=None), "entry compile.optimizer is malformed: .*learning_rate"),
    (_set("compile", "iterations", value=-1), "entry compile.iterations must be >= 0, found -1"),
    (_set("compile", "iterations", value="1"), "entry compile.iterations must be a step count, found '1'"),
    (_set("compile", "iterations", value=True), "entry compile.iterations must be a step count, found True"),
    (_set("compile", "loss", "name", value="poisson"), "entry compile.loss.name is malformed: unknown loss 'poisson'"),
    (lambda c: c["compile"]["loss"].pop("from_logits"), "entry compile.loss.from_logits is missing"),
    (_set("compile", "loss", "from_logits", value="no"), "entry compile.loss.from_logits must be true or false"),
    (_set("compile", "metrics", value="acc"), "entry compile.metrics must be a list of metric names"),
    (_set("compile", "metrics", value=["f1"]), "entry compile.metrics is malformed: unknown metric 'f1'"),
]


@pytest.mark.parametrize("change,message", CONFIG_DAMAGE)
def test_a_damaged_config_names_the_file_and_the_entry(saved, tmp_path, change, message):
    path = write(tmp_path / "damaged.mnc", with_config(saved, change))
    with pytest.raises(ValueError, match=re.escape(str(path)) + ": " + message):
        mc.load_model(path)


@pytest.mark.parametrize("entries,message", [
    (lambda s: {**s, "config.json": b"{\"format\": "}, "entry config.json is not valid JSON"),
    (lambda s: {**s, "config.json": b"[1, 2]"}, "entry config.json must hold a JSON object, found list"),
    (lambda s: {**s, "config.json": b"\xff\xfe"}, "entry config.json is not valid JSON"),
    (lambda s: {k: v for k, v in s.items() if k != "weights.npz"}, "entry weights.npz is missing"),
    (lambda s: {k: v for k, v in s.items() if k != "optimizer.npz"}, "entry optimizer.npz is missing"),
    (lambda s: {k: v for k, v in s.items() if k != "config.json"}, "entry config.json is missing"),
    (lambda s: {**s, "weights.npz": b"garbage"}, "entry weights.npz is not a readable .npz archive"),
    (lambda s: with_arrays(s, "weights.npz", lambda a: a.pop("dense/bias")), "entry weights.npz does not match"),
    (lambda s: with_arrays(s, "weights.npz", lambda a: a.update({"dense/bias": np.zeros(3, "float32")})),
     r"entry weights.npz does not match the architecture: expected .*'dense/bias': \(2,\).*found .*\(3,\)"),
    (lambda s: with_arrays(s, "weights.npz", lambda a: a.update({"dense/bias": np.zeros(2, "int64")})),
     "entry weights.npz/dense/bias must hold floats, found dtype int64"),
    (lambda s: with_arrays(s, "weights.npz", lambda a: a.update({"dense/bias": np.array(["a", "b"])})),
     "entry weights.npz/dense/bias must hold floats"),
    (lambda s: with_arrays(s, "optimizer.npz", lambda a: a.update({"dense/kernel/m": np.zeros((5, 5), "float32")})),
     r"entry optimizer.npz/dense/kernel/m must have shape \(108, 2\) \(the weight's\), found \(5, 5\)"),
    (lambda s: with_arrays(s, "optimizer.npz", lambda a: a.update({"dense/kernel/velocity": np.zeros((108, 2))})),
     r"entry optimizer.npz/dense/kernel/velocity: not a slot of Adam \(slots \['m', 'v'\]\)"),
    (lambda s: with_arrays(s, "optimizer.npz", lambda a: a.update({"flatten/kernel/m": np.zeros(2)})),
     "entry optimizer.npz/flatten/kernel/m: not a slot of Adam"),
    (lambda s: with_arrays(s, "optimizer.npz", lambda a: a.update({"dense/kernel/m/x": np.zeros(2)})),
     "entry optimizer.npz/dense/kernel/m/x: not a slot of Adam"),
    (lambda s: with_arrays(s, "optimizer.npz", lambda a: a.pop("dense/kernel/v")),
     r"entry optimizer.npz holds slots \['m'\] for dense/kernel; Adam needs \['m', 'v'\]"),
    (lambda s: with_arrays(s, "optimizer.npz", lambda a: a.update({"dense/bias/v": np.ones(2, "int32")})),
     "entry optimizer.npz/dense/bias/v must hold floats"),
])
def test_damaged_entries_name_the_file_and_the_entry(saved, tmp_path, entries, message):
    path = write(tmp_path / "damaged.mnc", entries(saved))
    with pytest.raises(ValueError, match=re.escape(str(path)) + ": .*" + message):
        mc.load_model(path)


def test_without_compile_the_optimizer_entry_is_not_needed(saved, tmp_path):
    path = write(tmp_path / "weights-only.mnc", {k: v for k, v in saved.items() if k != "optimizer.npz"})
    assert mc.load_model(path, compile=False).optimizer is None


def _leaves(node, where=()):
    """The paths of every value in a JSON tree."""
    yield where
    items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
    for key, value in items:
        yield from _leaves(value, (*where, key))


JSON_VALUES = st.one_of(st.none(), st.booleans(), st.integers(-3, 10**6), st.floats(allow_nan=False),
                        st.text(max_size=5), st.lists(st.integers(-1, 3), max_size=4),
                        st.dictionaries(st.text(max_size=3), st.integers(), max_size=2))


@given(data=st.data())
def test_any_value_anywhere_in_the_config_loads_or_names_the_file(saved, tmp_path_factory, data):
    """Replace one value of config.json (any depth) by an arbitrary JSON value, or delete
    it: load_model either succeeds or raises a ValueError that names the file."""
    config = json.loads(saved["config.json"])
    where = data.draw(st.sampled_from(list(_leaves(config))[1:]))
    damaged = copy.deepcopy(config)
    parent = damaged
    for key in where[:-1]:
        parent = parent[key]
    if data.draw(st.booleans()):
        parent[where[-1]] = data.draw(JSON_VALUES)
    elif isinstance(parent, dict):
        del parent[where[-1]]
    else:
        parent.pop(where[-1])
    path = write(tmp_path_factory.mktemp("fuzz") / "fuzzed.mnc", {**saved, "config.json": json.dumps(damaged)})
    try:
        mc.load_model(path)
    except ValueError as exc:
        assert str(exc).startswith(f"{path}: "), str(exc)


@given(offset=st.integers(0, 10**6), value=st.integers(0, 255))
def test_a_flipped_byte_loads_or_names_the_file(saved, tmp_path_factory, offset, value):
    folder = tmp_path_factory.mktemp("flip")
    data = bytearray(write(folder / "good.mnc", saved).read_bytes())
    data[offset % len(data)] = value
    path = folder / "flipped.mnc"
    path.write_bytes(bytes(data))
    try:
        mc.load_model(path)
    except ValueError as exc:
        assert str(exc).startswith(f"{path}: "), str(exc)


# -- a save killed mid-write --------------------------------------------------------------

KILLED_SAVE = """
import os, signal, sys
sys.path.insert(0, {repo!r}); sys.path.insert(0, {tests!r})
import minicnn.saving as saving
from test_model_files import trained_model
def killed(fd):                       # the temporary file is written, not yet renamed
    os.kill(os.getpid(), signal.SIGKILL)
saving.os.fsync = killed
trained_model().save({path!r})
"""


def test_a_save_killed_mid_write_leaves_nothing_after_the_next_save(tmp_path):
    path = tmp_path / "m.mnc"
    code = KILLED_SAVE.format(repo=REPO, tests=os.path.join(REPO, "tests"), path=str(path))
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, timeout=300)
    assert result.returncode == -9, result.stderr.decode()
    left = [p.name for p in tmp_path.iterdir()]
    assert len(left) == 1 and left[0].startswith(".m.mnc.tmp-"), left      # what a killed save leaves
    assert (tmp_path / left[0]).stat().st_size > 0
    live = tmp_path / f".m.mnc.tmp-{os.getpid()}-inflight"                  # a live writer's: kept
    live.write_bytes(b"partial")
    other = tmp_path / ".other.mnc.tmp-999999999-x"                         # another path's: kept
    other.write_bytes(b"partial")
    trained_model().save(path)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["m.mnc", live.name, other.name])
    assert mc.load_model(path).optimizer.iterations == 1


def test_the_slots_of_a_layer_frozen_after_training_load(tmp_path):
    model = trained_model()
    model.layers[0].trainable = False
    model.save(tmp_path / "frozen.mnc")
    loaded = mc.load_model(tmp_path / "frozen.mnc")
    assert not loaded.layers[0].trainable
    np.testing.assert_array_equal(loaded.optimizer.slots[("conv2d", "kernel")]["m"],
                                  model.optimizer.slots[("conv2d", "kernel")]["m"])
