"""Damaged and hostile files: every flipped byte, wrong dtype, hostile header or huge declared
shape ends in a ModelFileError that names the file (and the entry), or loads the same weights.
No code runs, nothing huge is allocated."""
import io
import json
import zipfile

import numpy as np
import pytest
from toy import small_data, small_model

from minicnn.models import load_model
from minicnn.saving import HEADER, ModelFileError
from minicnn.utils import set_random_seed


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """A trained, compiled model saved with its Adam state, and its weights alone."""
    set_random_seed(3)
    x, y = small_data(32)
    model = small_model()
    model.compile(loss="categorical_crossentropy", optimizer="adam", metrics=["accuracy"])
    model.train_on_batch(x, y)
    folder = tmp_path_factory.mktemp("saved")
    return model, model.save(folder / "model.npz"), model.save_weights(folder / "weights.npz")


def state_of(model):
    return model.get_weights() + [s[k] for s in (model.optimizer.slots or []) for k in sorted(s)]


def members(path):
    """{name: raw bytes of the .npy member} of an npz file."""
    with zipfile.ZipFile(path) as z:
        return {n[:-4]: z.read(n) for n in z.namelist()}


def npy(a=None, descr=None, shape=None, data=None):
    """The bytes of an .npy member: an array's, or a header declaring descr and shape over data."""
    buf = io.BytesIO()
    if a is not None:
        np.lib.format.write_array(buf, np.asarray(a), allow_pickle=False)
    else:
        np.lib.format.write_array_header_1_0(buf, {"descr": descr, "fortran_order": False, "shape": shape})
        buf.write(data)
    return buf.getvalue()


def write_npz(path, entries):
    with zipfile.ZipFile(path, "w") as z:
        for name, data in entries.items():
            z.writestr(name + ".npy", data)
    return path


def header_of(path):
    with np.load(path, allow_pickle=False) as npz:
        return json.loads(str(npz[HEADER]))


def with_header(entries, header):
    return {**entries, HEADER: npy(np.array(json.dumps(header)))}


def flip_bytes(data, seed, n):
    """n copies of data, each with one byte changed (position and new value drawn from seed)."""
    rng = np.random.default_rng(seed)
    for pos, xor in zip(rng.integers(0, len(data), n), rng.integers(1, 256, n)):
        damaged = bytearray(data)
        damaged[pos] ^= xor
        yield pos, bytes(damaged)


def check_flips(saved, tmp_path, seed, n):
    model, path, weights_path = saved
    expected = state_of(model)
    outcomes = {"same": 0, "refused": 0}
    for source, load in [(path, lambda p: state_of(load_model(p))), (weights_path, weights_loader(model))]:
        data = source.read_bytes()
        for pos, damaged in flip_bytes(data, seed, n):
            target = tmp_path / "damaged.npz"
            target.write_bytes(damaged)
            try:
                got = load(target)
            except ModelFileError as e:
                assert str(target) in str(e)
                outcomes["refused"] += 1
                continue
            assert len(got) == len(expected), pos
            for a, b in zip(got, expected):
                np.testing.assert_array_equal(a, b, err_msg=f"byte {pos} flipped")
            outcomes["same"] += 1
    assert outcomes["refused"] > n  # most flips are caught (the CRCs cover every array's bytes)
    return outcomes


def weights_loader(model):
    other = small_model()
    other.build((None, 8, 8, 1))

    def load(path):
        other.set_weights([np.zeros_like(w) for w in model.get_weights()])
        other.load_weights(path)
        return other.get_weights() + [s[k] for s in (model.optimizer.slots or []) for k in sorted(s)]
    return load


def test_flipped_bytes_load_the_same_weights_or_are_refused(saved, tmp_path):
    check_flips(saved, tmp_path, seed=0, n=300)


@pytest.mark.slow
def test_thousands_of_flipped_bytes(saved, tmp_path):
    check_flips(saved, tmp_path, seed=1, n=4000)


@pytest.mark.parametrize("stored, message", [
    (lambda w: np.full(w.shape, 1e300),
     r"layer 'conv2d(_\d+)?' weight 'W' holds values up to 1e\+300, beyond float32's range"),
    (lambda w: w.astype(str), r"layer 'conv2d(_\d+)?' weight 'W' holds <U\d+ values, not numbers"),
    (lambda w: w.astype("S8"), r"layer 'conv2d(_\d+)?' weight 'W' holds \|S8 values, not numbers"),
    (lambda w: w.astype(complex), r"layer 'conv2d(_\d+)?' weight 'W' holds complex128 values, not numbers"),
    (lambda w: np.full(w.shape, np.inf, np.float64), r"layer 'conv2d(_\d+)?' weight 'W' holds NaN or Inf"),
], ids=["float64-1e300", "str", "bytes", "complex", "float64-inf"])
def test_wrong_inner_dtypes_are_refused_naming_file_and_weight(saved, tmp_path, stored, message):
    model, path, weights_path = saved
    for source in (path, weights_path):
        entries = members(source)
        w = model.layers[0].params["W"]
        entries["layer0/W"] = npy(stored(w))
        target = write_npz(tmp_path / f"dtype-{source.name}", entries)
        with pytest.raises(ModelFileError, match=message) as e:
            if source == path:
                load_model(target)
            else:
                weights_loader(model)(target)
        assert str(target) in str(e.value)


def test_other_number_types_are_cast_when_they_fit(saved, tmp_path):
    """float64 or int weights within float32's range load, cast to the model's dtype."""
    model, path, _ = saved
    entries = members(path)
    entries["layer0/W"] = npy(model.layers[0].params["W"].astype(">f8"))
    entries["layer0/b"] = npy(np.arange(4, dtype=np.int16))
    again = load_model(write_npz(tmp_path / "cast.npz", entries))
    np.testing.assert_array_equal(again.layers[0].params["W"], model.layers[0].params["W"])
    assert again.layers[0].params["W"].dtype == np.float32 and again.layers[0].params["b"].tolist() == [0, 1, 2, 3]


HOSTILE = {
    "loss os.system": (lambda h: h["compile"].update(loss={"class_name": "os.system", "config": {}}), "'compile.loss'"),
    "loss eval": (lambda h: h["compile"].update(loss="eval"), "'compile.loss'.*unknown loss 'eval'"),
    "loss object": (lambda h: h["compile"].update(loss={"name": "categorical_crossentropy"}), "'compile.loss'"),
    "loss list": (lambda h: h["compile"].update(loss=["categorical_crossentropy"]), "'compile.loss'"),
    "metric os.system": (lambda h: h["compile"].update(metrics=[{"class_name": "os.system", "config": {}}]),
                         "'compile.metrics'"),
    "metric eval": (lambda h: h["compile"].update(metrics=["eval"]), "'compile.metrics'.*unknown metric 'eval'"),
    "metric object": (lambda h: h["compile"].update(metrics=[{"class_name": {"x": 1}, "config": {}}]),
                      "'compile.metrics'"),
    "metrics not a list": (lambda h: h["compile"].update(metrics="accuracy"), "'compile' entry"),
    "optimizer os.system": (lambda h: h["compile"]["optimizer"].update(name="os.system"),
                            "'compile.optimizer'.*unknown optimizer 'os.system'"),
    "optimizer name object": (lambda h: h["compile"]["optimizer"].update(name={"eval": 1}), "'compile.optimizer'"),
    "optimizer a string": (lambda h: h["compile"].update(optimizer="__import__('os')"), "'compile.optimizer'"),
    "optimizer argument": (lambda h: h["compile"]["optimizer"].update(exec="print(1)"), "'compile.optimizer'"),
    "schedule os.system": (lambda h: h["compile"]["optimizer"].update(
        learning_rate={"class_name": "os.system", "config": {}}), "'compile.optimizer'"),
    "compile a list": (lambda h: h.update(compile=["adam"]), "'compile' entry"),
    "optimizer_state": (lambda h: h.update(optimizer_state={"iterations": "3", "has_slots": True}),
                        "'optimizer_state' entry"),
    "layer os.system": (lambda h: h["model"]["layers"][1].update(class_name="os.system"),
                        "'model' entry: unknown class 'os.system'"),
    "layer eval": (lambda h: h["model"]["layers"][1].update(class_name="eval"), "unknown class 'eval'"),
    "layer name object": (lambda h: h["model"]["layers"][1].update(class_name={"a": 1}),
                          "class name must be a string, got dict"),
    "layer config list": (lambda h: h["model"]["layers"][1].update(config=[1, 2]), "model config is not valid"),
    "layer a string": (lambda h: h["model"]["layers"].__setitem__(1, "Dense"), "model config is not valid"),
    "layer argument": (lambda h: h["model"]["layers"][4]["config"].update(units="2; rm -rf /"),
                       "model config is not valid"),
    "layers missing": (lambda h: h["model"].pop("layers"), "model config is not valid"),
    "model class": (lambda h: h["model"].update(class_name="subprocess.Popen"), "unknown class 'subprocess.Popen'"),
    "model a list": (lambda h: h.update(model=[]), "'model' entry is list"),
    "header empty": (lambda h: h.clear(), "names no minicnn format"),
    "format object": (lambda h: h.update(format={"x": 1}), "names no minicnn format"),
    "version string": (lambda h: h.update(format_version="1"), "format version '1'"),
}


@pytest.mark.parametrize("change", HOSTILE, ids=list(HOSTILE))
def test_hostile_headers_are_refused_naming_file_and_entry(saved, tmp_path, change, monkeypatch):
    """Unknown or malformed class names, objects where names belong: refused, no code run."""
    _, path, _ = saved
    edit, message = HOSTILE[change]
    header = header_of(path)
    edit(header)
    target = write_npz(tmp_path / "hostile.npz", with_header(members(path), header))
    monkeypatch.setattr("os.system", lambda *a: pytest.fail("a file ran code"))
    with pytest.raises(ModelFileError, match=message) as e:
        load_model(target)
    assert str(target) in str(e.value)


@pytest.mark.parametrize("member", ["layer0/W", HEADER, "optimizer0/m", "extra"])
def test_huge_declared_shapes_are_refused_before_allocating(saved, tmp_path, member):
    """A header declaring (2**40,) (4 TiB), or a 400 MB string, over a few bytes is refused before
    anything is allocated."""
    _, path, _ = saved
    entries = members(path)
    descr, shape = ("<U100000000", ()) if member == HEADER else ("<f4", (2 ** 40,))
    entries[member] = npy(descr=descr, shape=shape, data=b"\0" * 64)
    if member == "layer0/W":  # the right shape, a huge dtype: the size check still refuses it
        entries["extra"] = npy(descr="<f4", shape=(2 ** 40,), data=b"\0" * 64)
        entries[member] = npy(descr="<f4", shape=(3, 3, 1, 2 ** 40), data=b"\0" * 64)
    target = write_npz(tmp_path / "huge.npz", entries)
    if member == "extra":  # an entry the model does not name is never read
        load_model(target)
        return
    with pytest.raises(ModelFileError, match="has shape|declares|not a string") as e:
        load_model(target)
    assert str(target) in str(e.value)


def test_declared_size_must_match_the_bytes(saved, tmp_path):
    _, path, _ = saved
    entries = members(path)
    entries["layer0/b"] = npy(descr="<f4", shape=(4,), data=b"\0" * 12)
    with pytest.raises(ModelFileError, match=r"weight 'b' declares \(4,\) float32 \(16 bytes\), the file holds 12"):
        load_model(write_npz(tmp_path / "short.npz", entries))


@pytest.mark.parametrize("descr", ["<U0", "|V0", "|S0"])
def test_a_header_of_zero_width_strings_is_refused(saved, tmp_path, descr):
    _, path, _ = saved
    entries = {**members(path), HEADER: npy(descr=descr, shape=(), data=b"")}
    with pytest.raises(ModelFileError, match="__minicnn__"):
        load_model(write_npz(tmp_path / "empty-header.npz", entries))


def test_a_refused_file_leaves_the_model_as_it_was(saved, tmp_path):
    """Every weight is read and checked before any is copied in: no half-loaded model."""
    _model, _, weights_path = saved
    entries = members(weights_path)
    entries["layer4/b"] = npy(np.full(2, np.nan, np.float32))  # the last weight read is damaged
    other = small_model()
    other.build((None, 8, 8, 1))
    before = other.get_weights()
    with pytest.raises(ModelFileError, match="layer 'dense(_\\d+)?' weight 'b' holds NaN or Inf"):
        other.load_weights(write_npz(tmp_path / "last-damaged.npz", entries))
    for a, b in zip(other.get_weights(), before):
        np.testing.assert_array_equal(a, b)


def header_paths(node, prefix=()):
    """The path (keys and indices) of every entry of a JSON header, nested ones included."""
    if prefix:
        yield prefix
    items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
    for key, value in items:
        yield from header_paths(value, (*prefix, key))


HOSTILE_VALUES = [None, -1, 0, 2.5, True, "os.system", [], {}, [1, 2], {"class_name": "eval", "config": {}}]


def test_every_header_entry_replaced_by_a_hostile_value(saved, tmp_path):
    """Each entry of the header, nested ones included, in turn becomes each hostile value: the
    model loads or a ModelFileError says why not; no other exception escapes."""
    _, path, _ = saved
    header, entries = header_of(path), members(path)
    for entry in header_paths(header):
        for value in HOSTILE_VALUES:
            changed = json.loads(json.dumps(header))
            node = changed
            for key in entry[:-1]:
                node = node[key]
            node[entry[-1]] = value
            target = write_npz(tmp_path / "hostile.npz", with_header(entries, changed))
            try:
                load_model(target)
            except ModelFileError:
                pass
            except Exception as e:  # noqa: BLE001  (the point of the test: name whatever escapes)
                pytest.fail(f"header entry {entry} = {value!r} gave {type(e).__name__}: {e}")
