"""Save and load: the same outputs after a round trip, training that resumes exactly, files
that are written atomically and read without pickle, and clear errors for bad files."""
import json
import os
import stat
import zipfile

import numpy as np
import pytest
from toy import small_data, small_model

from minicnn import io
from minicnn.layers import Dense
from minicnn.models import Sequential, load_model
from minicnn.optimizers import SGD, Adagrad, Adam, AdamW, Nadam, RMSprop
from minicnn.saving import FORMAT_VERSION, ModelFileError
from minicnn.utils import set_random_seed


def trained(optimizer="adam", steps=3):
    set_random_seed(3)
    x, y = small_data(64)
    model = small_model()
    model.compile(loss="categorical_crossentropy", optimizer=optimizer, metrics=["accuracy"])
    for k in range(steps):
        model.train_on_batch(x[16 * k:16 * k + 16], y[16 * k:16 * k + 16])
    return model, x, y


def test_save_load_predicts_identically(tmp_path):
    model, x, _ = trained()
    path = model.save(tmp_path / "model.npz")
    again = load_model(path)
    np.testing.assert_array_equal(model.predict(x, verbose=0), again.predict(x, verbose=0))
    assert [type(a) for a in again.layers] == [type(a) for a in model.layers]
    assert [a.name for a in again.layers] == [a.name for a in model.layers]
    assert again.loss.name == "categorical_crossentropy" and again.compiled_metrics == ["accuracy"]
    assert isinstance(again.optimizer, Adam) and again.optimizer.iterations == 3
    for mine, theirs in zip(model.optimizer.slots, again.optimizer.slots):
        for k in ("m", "v"):
            np.testing.assert_array_equal(mine[k], theirs[k])


@pytest.mark.parametrize("optimizer", [Adam(learning_rate=0.01), SGD(0.1, momentum=0.9, nesterov=True),
                                       Nadam(0.01), AdamW(0.01, amsgrad=True), Adagrad(0.1), RMSprop(0.01, centered=True)])
def test_resumed_training_equals_uninterrupted(tmp_path, optimizer):
    """Train 2 steps, save, load, train 2 more == 4 steps without stopping, bit for bit."""
    set_random_seed(5)
    x, y = small_data(64)
    start = small_model()
    start.build((None, 8, 8, 1))
    weights = start.get_weights()
    config = optimizer.get_config()

    def fresh():
        model = small_model()
        model.build((None, 8, 8, 1))
        model.set_weights(weights)
        model.compile(loss="categorical_crossentropy", optimizer=type(optimizer).from_config(config))
        return model

    batches = [(x[i:i + 16], y[i:i + 16]) for i in range(0, 64, 16)]
    straight = fresh()
    for xb, yb in batches:
        straight.train_on_batch(xb, yb)
    first = fresh()
    for xb, yb in batches[:2]:
        first.train_on_batch(xb, yb)
    first.save(tmp_path / "half.npz")
    resumed = load_model(tmp_path / "half.npz")
    for xb, yb in batches[2:]:
        resumed.train_on_batch(xb, yb)
    for a, b in zip(straight.get_weights(), resumed.get_weights()):
        np.testing.assert_array_equal(a, b)
    assert resumed.optimizer.iterations == 4


def test_fit_resumes_with_initial_epoch(tmp_path):
    set_random_seed(9)
    x, y = small_data(64)
    a = small_model()
    a.compile(loss="categorical_crossentropy", optimizer="adam")
    a.build((None, 8, 8, 1))
    a.save(tmp_path / "start.npz")
    b = load_model(tmp_path / "start.npz")
    a.fit(x, y, batch_size=16, epochs=2, shuffle=False, verbose=0)
    b.fit(x, y, batch_size=16, epochs=1, shuffle=False, verbose=0)
    b.save(tmp_path / "one.npz")
    c = load_model(tmp_path / "one.npz")
    history = c.fit(x, y, batch_size=16, epochs=2, initial_epoch=1, shuffle=False, verbose=0)
    assert history.epoch == [1]
    for wa, wc in zip(a.get_weights(), c.get_weights()):
        np.testing.assert_array_equal(wa, wc)


def test_save_weights_load_weights(tmp_path):
    model, x, _ = trained()
    model.save_weights(tmp_path / "w.npz")
    other = small_model()
    other.build((None, 8, 8, 1))
    assert not np.allclose(other.predict(x, verbose=0), model.predict(x, verbose=0))
    other.load_weights(tmp_path / "w.npz")
    np.testing.assert_array_equal(other.predict(x, verbose=0), model.predict(x, verbose=0))
    other.load_weights(model.save(tmp_path / "whole.npz"))  # a whole model's file holds weights too
    wrong = Sequential([Dense(3, input_shape=(5,))])
    with pytest.raises(ModelFileError, match="weights for 2 layers, the model has 1"):
        wrong.load_weights(tmp_path / "w.npz")
    with pytest.raises(ModelFileError, match="load_weights"):
        load_model(tmp_path / "w.npz")


def test_file_is_plain_npz_and_json(tmp_path):
    model, _, _ = trained()
    path = model.save(tmp_path / "model.npz")
    with np.load(path, allow_pickle=False) as npz:  # readable by anyone, no pickle anywhere
        header = json.loads(str(npz["__minicnn__"]))
        assert npz["layer0/W"].shape == (3, 3, 1, 4) and "optimizer0/m" in npz.files
    assert header["format"] == "minicnn.model" and header["format_version"] == FORMAT_VERSION
    assert header["model"]["layers"][0]["config"]["filters"] == 4


def test_unbuilt_or_uncompiled_models(tmp_path):
    with pytest.raises(RuntimeError, match="not built"):
        Sequential([Dense(2)]).save(tmp_path / "x.npz")
    model = small_model()
    model.build((None, 8, 8, 1))
    path = model.save(tmp_path / "plain.npz")  # not compiled: architecture and weights only
    again = load_model(path)
    assert again.loss is None
    np.testing.assert_array_equal(again.get_weights()[0], model.get_weights()[0])


def test_bad_files_give_clear_errors(tmp_path):
    model, _, _ = trained()
    good = model.save(tmp_path / "model.npz").read_bytes()
    cases = {
        "truncated.npz": good[: len(good) // 2],
        "garbage.npz": b"this is not a zip file at all",
        "empty.npz": b"",
    }
    for name, data in cases.items():
        (tmp_path / name).write_bytes(data)
        with pytest.raises(ModelFileError, match="truncated, corrupt, or not an .npz"):
            load_model(tmp_path / name)
    np.savez(tmp_path / "foreign.npz", a=np.zeros(3))
    with pytest.raises(ModelFileError, match="without the '__minicnn__' entry"):
        load_model(tmp_path / "foreign.npz")
    np.savez(tmp_path / "pickled.npz", __minicnn__=np.array([{"code": 1}], dtype=object))
    with pytest.raises(ModelFileError, match="Object arrays cannot be loaded|pickle"):
        load_model(tmp_path / "pickled.npz")
    with pytest.raises(FileNotFoundError, match="no such file"):
        load_model(tmp_path / "missing.npz")


def edit_header(src, dst, change):
    with zipfile.ZipFile(src) as z:
        entries = {n: z.read(n) for n in z.namelist()}
    with np.load(src, allow_pickle=False) as npz:
        header = json.loads(str(npz["__minicnn__"]))
        arrays = {k: npz[k] for k in npz.files if k != "__minicnn__"}
    change(header, arrays)
    np.savez(dst, __minicnn__=np.array(json.dumps(header)), **arrays)
    return entries


def test_version_shape_and_class_checks(tmp_path):
    model, _, _ = trained()
    src = model.save(tmp_path / "model.npz")

    def newer(h, a):
        h["format_version"] = FORMAT_VERSION + 1
    edit_header(src, tmp_path / "newer.npz", newer)
    with pytest.raises(ModelFileError, match="newer than this minicnn reads"):
        load_model(tmp_path / "newer.npz")

    def reshaped(h, a):
        a["layer0/W"] = np.zeros((3, 3, 1, 5), dtype=np.float32)
    edit_header(src, tmp_path / "shape.npz", reshaped)
    with pytest.raises(ModelFileError, match=r"weight 'W' has shape \(3, 3, 1, 5\)"):
        load_model(tmp_path / "shape.npz")

    def nan(h, a):
        a["layer4/W"] = np.full_like(a["layer4/W"], np.nan)
    edit_header(src, tmp_path / "nan.npz", nan)
    with pytest.raises(ModelFileError, match="NaN or Inf"):
        load_model(tmp_path / "nan.npz")

    def custom(h, a):
        h["model"]["layers"][1]["class_name"] = "MyLayer"
    edit_header(src, tmp_path / "custom.npz", custom)
    with pytest.raises(ModelFileError, match="custom_objects"):
        load_model(tmp_path / "custom.npz")


def test_atomic_write_keeps_the_old_file_on_failure(tmp_path):
    target = tmp_path / "model.npz"
    target.write_bytes(b"old contents")

    def half_then_interrupt(f):
        f.write(b"new but not fin")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        io.atomic_write(target, half_then_interrupt)
    assert target.read_bytes() == b"old contents"
    assert [p.name for p in tmp_path.iterdir()] == ["model.npz"]  # no temporary file left behind
    io.atomic_write(target, lambda f: f.write(b"new"))
    assert target.read_bytes() == b"new"
    with pytest.raises(FileNotFoundError, match="does not exist"):
        io.atomic_write(tmp_path / "no" / "such" / "dir.npz", lambda f: None)


def test_save_is_atomic_when_savez_fails(tmp_path, monkeypatch):
    model, _, _ = trained()
    path = model.save(tmp_path / "model.npz")
    before = path.read_bytes()

    def broken(f, **arrays):
        f.write(b"PK partial")
        raise OSError("disk full")

    monkeypatch.setattr(np, "savez", broken)
    with pytest.raises(OSError, match="disk full"):
        model.save(path)
    assert path.read_bytes() == before
    assert len(list(tmp_path.iterdir())) == 1


@pytest.mark.parametrize("bad", [None, [[1.0]], np.zeros((3, 3, 1, 4), dtype=object),
                                 np.zeros((3, 3, 1, 5), np.float32), np.zeros((3, 3, 1, 4), np.float64),
                                 np.full((3, 3, 1, 4), np.nan, np.float32)],
                         ids=["None", "list", "object", "shape", "float64", "nan"])
def test_save_refuses_a_damaged_model_and_keeps_the_good_file(tmp_path, bad):
    """Every array is checked before writing: a save never replaces a loadable file."""
    model, x, _ = trained()
    path = model.save(tmp_path / "model.npz")
    weights_path = model.save_weights(tmp_path / "weights.npz")
    good, good_weights = path.read_bytes(), weights_path.read_bytes()
    damaged = load_model(path)
    damaged.layers[0].params["W"] = bad
    for save, target in [(damaged.save, path), (damaged.save_weights, weights_path),
                         (damaged.save, tmp_path / "new.npz")]:
        with pytest.raises(ValueError, match="layer 'conv2d(_[0-9]+)?' weight 'W' .*nothing was written"):
            save(target)
    assert path.read_bytes() == good and weights_path.read_bytes() == good_weights
    assert not (tmp_path / "new.npz").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.npz", "weights.npz"]  # no temp files left
    np.testing.assert_array_equal(load_model(path).predict(x, verbose=0), model.predict(x, verbose=0))


def test_save_refuses_damaged_optimizer_state(tmp_path):
    model, _, _ = trained()
    path = model.save(tmp_path / "model.npz")
    good = path.read_bytes()
    model.optimizer.slots[1]["v"] = model.optimizer.slots[1]["v"][:-1]
    with pytest.raises(ValueError, match="the optimizer's 'v' of param 1 has shape"):
        model.save(path)
    model.optimizer.slots = model.optimizer.slots[:-1]
    with pytest.raises(ValueError, match="state for 3 params, the model has 4"):
        model.save(path)
    assert path.read_bytes() == good


@pytest.mark.parametrize("umask", [0o022, 0o077, 0o002], ids=["umask022", "umask077", "umask002"])
def test_atomic_write_keeps_the_mode_of_the_file_it_replaces(tmp_path, umask):
    """An overwrite keeps the file's mode; a new file gets the umask's, as np.savez's open() gives."""
    old = os.umask(umask)
    try:
        model, _, _ = trained()
        fresh = model.save(tmp_path / "new.npz")
        np.save(tmp_path / "plain.npy", np.zeros(1))  # what a plain open() gives under this umask
        assert stat.S_IMODE(fresh.stat().st_mode) == stat.S_IMODE((tmp_path / "plain.npy").stat().st_mode) \
            == 0o666 & ~umask
        for mode in (0o644, 0o640, 0o600, 0o664, 0o444):
            target = tmp_path / f"mine-{mode:o}.npz"
            target.write_bytes(b"old")
            target.chmod(mode)
            model.save(target)
            model.save_weights(target)
            io.atomic_write(target, lambda f: f.write("text"), mode="w")
            assert stat.S_IMODE(target.stat().st_mode) == mode, f"{mode:o}"
    finally:
        os.umask(old)
