"""BackupAndRestore and CSVLogger under kills: a fit killed at any chosen point (before or after
any file is replaced, or mid-epoch), run again, ends with the weights, optimizer state and CSV log
of a fit that never stopped, bit for bit; a damaged backup is a clear error naming the file."""
import os
import subprocess
import sys

import numpy as np
import pytest
from toy import small_data, small_model

from minicnn.callbacks import BackupAndRestore, Callback, CSVLogger
from minicnn.saving import ModelFileError
from minicnn.utils import set_random_seed

TESTS = os.path.dirname(__file__)

# Killed by os._exit (no cleanup, no exception handler) before or after the n-th os.replace of
# the run (every atomic write ends in one), or at a chosen batch: argv[2] is "straight",
# "before:n", "after:n", "batch:epoch:batch" or "resume".
KILLED_FIT = """
import hashlib, os, sys
import numpy as np
sys.path.insert(0, sys.argv[3])
from toy import small_data, small_model
from minicnn.callbacks import BackupAndRestore, Callback, CSVLogger
from minicnn.utils import set_random_seed

folder, how = sys.argv[1], sys.argv[2].split(":")
if how[0] in ("before", "after"):
    replaces, real_replace = [0], os.replace
    def replace(src, dst):
        replaces[0] += 1
        if how[0] == "before" and replaces[0] == int(how[1]):
            os._exit(17)
        real_replace(src, dst)
        if how[0] == "after" and replaces[0] == int(how[1]):
            os._exit(17)
    os.replace = replace

class Kill(Callback):
    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch
    def on_train_batch_end(self, batch, logs=None):
        if how[0] == "batch" and (self.epoch, batch) == (int(how[1]), int(how[2])):
            os._exit(17)

set_random_seed(11)
x, y = small_data(64)
model = small_model()
model.compile(loss="categorical_crossentropy", optimizer="adam", metrics=["accuracy"])
callbacks = [CSVLogger(os.path.join(folder, "log.csv"), append=True), Kill(),
             BackupAndRestore(os.path.join(folder, "backup"))]
model.fit(x, y, batch_size=16, epochs=4, verbose=0, callbacks=callbacks)
h = hashlib.sha256()
for w in model.get_weights() + [s[k] for s in model.optimizer.slots for k in sorted(s)]:
    h.update(np.ascontiguousarray(w).tobytes())
print(h.hexdigest(), model.optimizer.iterations)
"""


def run_fit(folder, how):
    folder.mkdir(exist_ok=True)
    return subprocess.run([sys.executable, "-c", KILLED_FIT, str(folder), how, TESTS], capture_output=True,
                          text=True, check=False, env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})


@pytest.fixture(scope="module")
def straight(tmp_path_factory):
    folder = tmp_path_factory.mktemp("straight")
    done = run_fit(folder, "straight")
    assert done.returncode == 0, done.stderr
    assert done.stdout.split()[1] == "16" and not (folder / "backup" / "backup.npz").exists()
    return done.stdout.split(), (folder / "log.csv").read_text()


def killed_then_resumed(tmp_path, how, straight):
    killed = run_fit(tmp_path, how)
    assert killed.returncode == 17, killed.stderr
    resumed = run_fit(tmp_path, "resume")
    assert resumed.returncode == 0, resumed.stderr
    assert resumed.stdout.split() == straight[0], how  # the same weights, Adam state and step count
    log = (tmp_path / "log.csv").read_text()
    if how in ("after:1", "before:2"):  # killed before the first backup: the rerun is a new fit, appended as Keras does
        lines = straight[1].splitlines(keepends=True)
        assert log == "".join(lines[:2] + lines[1:]), how
    else:
        assert log == straight[1], how  # one row per epoch, the same figures


# Each epoch replaces two files: log.csv, then backup/backup.npz (epoch 1's are writes 3 and 4).
# after:5 is after epoch 2's row and before its backup.
FAST = ["before:4", "after:4", "after:5", "batch:2:1"]


@pytest.mark.parametrize("how", FAST)
def test_a_fit_killed_at_chosen_points_resumes_bit_for_bit(tmp_path, how, straight):
    killed_then_resumed(tmp_path, how, straight)


@pytest.mark.slow
@pytest.mark.parametrize("how", [f"{when}:{n}" for n in range(1, 9) for when in ("before", "after")
                                 if f"{when}:{n}" not in FAST]
                         + ["batch:0:0", "batch:3:3"])
def test_a_fit_killed_at_every_write_resumes_bit_for_bit(tmp_path, how, straight):
    killed_then_resumed(tmp_path, how, straight)


def compiled():
    set_random_seed(11)
    x, y = small_data(32)
    model = small_model()
    model.compile(loss="categorical_crossentropy", optimizer="adam", metrics=["accuracy"])
    return model, x, y


def test_the_backup_is_one_file_with_the_epoch_and_random_state(tmp_path):
    model, x, y = compiled()

    class Stop(Callback):
        def on_epoch_end(self, epoch, logs=None):
            if epoch == 1:
                raise KeyboardInterrupt
    with pytest.raises(KeyboardInterrupt):
        model.fit(x, y, epochs=3, verbose=0, callbacks=[BackupAndRestore(tmp_path), Stop()])
    assert [p.name for p in tmp_path.iterdir()] == ["backup.npz"]  # one atomic unit, no temporary files
    from minicnn.saving import load_model_and_header
    _, header = load_model_and_header(tmp_path / "backup.npz")
    assert header["training_state"]["epoch"] == 1 and "bit_generator" in header["training_state"]["rng"]


def damaged_backups(good):
    """(name, bytes) of backups damaged as a kill, a broken copy or a hand edit could leave them."""
    for n in (0, 1, 30, len(good) // 2, len(good) - 1):
        yield f"truncated to {n} bytes", good[:n]


def test_a_damaged_backup_is_a_clear_error_naming_the_file(tmp_path):
    model, x, y = compiled()
    model.fit(x, y, epochs=1, verbose=0, callbacks=[BackupAndRestore(tmp_path, delete_checkpoint=False)])
    path = tmp_path / "backup.npz"
    good = path.read_bytes()
    for what, data in damaged_backups(good):
        path.write_bytes(data)
        with pytest.raises(ModelFileError, match="backup.npz") as e:
            model.fit(x, y, epochs=2, verbose=0, callbacks=[BackupAndRestore(tmp_path)])
        assert str(path) in str(e.value), what


@pytest.mark.parametrize("state, message", [
    (None, "without BackupAndRestore's 'training_state' entry; delete it"),
    ({"epoch": "1", "rng": {}}, "holds epoch '1', not an epoch number"),
    ({"epoch": -1, "rng": {}}, "holds epoch -1"),
    ({"epoch": 0, "rng": {"bit_generator": "os.system"}}, "holds no valid random state"),
    ({"epoch": 0, "rng": [1, 2]}, "holds no valid random state"),
], ids=["missing", "epoch string", "epoch negative", "rng name", "rng list"])
def test_a_backup_with_a_damaged_training_state_is_refused(tmp_path, state, message):
    from minicnn import saving
    model, x, y = compiled()
    model.build((None, 8, 8, 1))
    before = model.get_weights()
    saving.save_model(model, tmp_path / "backup.npz", training_state=state)
    with pytest.raises(ModelFileError, match=message) as e:
        model.fit(x, y, epochs=2, verbose=0, callbacks=[BackupAndRestore(tmp_path)])
    assert str(tmp_path / "backup.npz") in str(e.value)
    for a, b in zip(model.get_weights(), before):  # nothing restored from a refused backup
        np.testing.assert_array_equal(a, b)


def test_csv_logger_drops_a_row_cut_off_by_a_kill(tmp_path):
    """A last line without its newline (left by a writer that is not atomic) is dropped, so the
    appended rows start on a line of their own; a malformed row elsewhere is an error naming it."""
    model, x, y = compiled()
    log = tmp_path / "log.csv"
    model.fit(x, y, epochs=2, verbose=0, callbacks=[CSVLogger(log)])
    whole = log.read_text()
    log.write_text(whole + "2,0.61")
    model.fit(x, y, epochs=1, verbose=0, callbacks=[CSVLogger(log, append=True)])
    lines = log.read_text().splitlines()
    assert lines[:3] == whole.splitlines() and len(lines) == 4 and lines[3].startswith("0,")
    assert all(len(line.split(",")) == 3 for line in lines)
    log.write_text(whole.replace("\n1,", "\n1;"))
    with pytest.raises(ValueError, match="log.csv: line 3 has 2 fields, its header 3"):
        model.fit(x, y, epochs=1, verbose=0, callbacks=[CSVLogger(log, append=True)])
