"""Callbacks with Keras's hook names. fit calls them with `logs` dicts:
on_train_batch_end(batch, logs={"loss": ..., "accuracy": ...}) holds running means of the
epoch so far; on_epoch_end(epoch, logs) the epoch's figures and the validation ones."""
from pathlib import Path

import numpy as np

from minicnn import gpu, saving, tensorboard, utils
from minicnn.io import atomic_write


class Callback:
    def __init__(self):
        self.model = None
        self.params = {}

    def set_model(self, model):
        self.model = model

    def set_params(self, params):
        self.params = params

    def on_train_begin(self, logs=None): ...
    def on_train_end(self, logs=None): ...
    def on_epoch_begin(self, epoch, logs=None): ...
    def on_epoch_end(self, epoch, logs=None): ...
    def on_train_batch_begin(self, batch, logs=None): ...
    def on_train_batch_end(self, batch, logs=None): ...
    def on_test_begin(self, logs=None): ...
    def on_test_end(self, logs=None): ...
    def on_test_batch_begin(self, batch, logs=None): ...
    def on_test_batch_end(self, batch, logs=None): ...
    def on_predict_begin(self, logs=None): ...
    def on_predict_end(self, logs=None): ...
    def on_predict_batch_begin(self, batch, logs=None): ...
    def on_predict_batch_end(self, batch, logs=None): ...


# Keras 2.2 named metrics=["accuracy"] "acc" and "val_acc"; Keras 2.3 and 3 write "accuracy"
# (and "acc" when compiled with "acc"). Either name reads the figures, under the name fit wrote.
KERAS_2_NAMES = {"acc": "accuracy", "val_acc": "val_accuracy", "accuracy": "acc", "val_accuracy": "val_acc"}


def _other_name(logs, key):
    """The name `key` is written under in logs: itself, or its Keras 2 / Keras 3 twin (or None)."""
    if dict.__contains__(logs, key):
        return key
    twin = KERAS_2_NAMES.get(key) if isinstance(key, str) else None
    if twin is not None and dict.__contains__(logs, twin):
        if key in ("acc", "val_acc"):
            from minicnn.legacy import deprecated
            deprecated(f"the History key {key!r} for metrics=['accuracy']", f"history[{twin!r}]")
        return twin
    return None


class HistoryDict(dict):
    """history.history: a dict of per-epoch lists under the names fit wrote (Keras 3's), which
    also answers Keras 2.2's names: h["acc"], "val_acc" in h, h.get("acc") read "accuracy"'s
    list. Iterating, keys() and len() show each figure once, under its own name."""

    def __missing__(self, key):
        twin = _other_name(self, key)
        if twin is None:
            raise KeyError(key)
        return dict.__getitem__(self, twin)

    def __contains__(self, key):
        return _other_name(self, key) is not None

    def get(self, key, default=None):
        try:
            return self[key]
        except KeyError:
            return default


class History(Callback):
    """Per-epoch figures: history.history == {"loss": [...], "accuracy": [...], ...}
    (history.history["acc"], Keras 2.2's name, reads "accuracy" too)."""

    def __init__(self):
        super().__init__()
        self.history = HistoryDict()
        self.epoch = []

    def on_epoch_end(self, epoch, logs=None):
        self.epoch.append(epoch)
        for key, value in (logs or {}).items():
            self.history.setdefault(key, []).append(value)


class CallbackList:
    """Calls each hook on every callback in order."""

    def __init__(self, callbacks, model, params=None):
        self.callbacks = list(callbacks)
        for cb in self.callbacks:
            cb.set_model(model)
            if params is not None:  # evaluate inside fit keeps fit's params
                cb.set_params(params)

    def __getattr__(self, hook):
        if not hook.startswith("on_"):
            raise AttributeError(hook)

        def call_all(*args, **kwargs):
            for cb in self.callbacks:
                getattr(cb, hook)(*args, **kwargs)
        return call_all


def _monitor_mode(monitor, mode):
    """"min" or "max" for a monitored figure: Keras's "auto" maximises accuracies only."""
    if mode not in ("auto", "min", "max"):
        raise ValueError(f"mode must be 'auto', 'min' or 'max', got {mode!r}")
    if mode == "auto":
        return "max" if "acc" in monitor else "min"
    return mode


def _monitored(logs, monitor, who):
    name = _other_name(logs or {}, monitor)  # monitor="val_acc", Keras 2.2's name, finds "val_accuracy"
    if name is None:
        raise ValueError(f"{who} monitors {monitor!r}, which fit does not report; it reports "
                         f"{', '.join(logs or {}) or 'nothing'} (val_ figures need validation_data= "
                         "or validation_split=)")
    return logs[name]


class EarlyStopping(Callback):
    """Stop fit when `monitor` has not improved by more than min_delta for `patience` epochs.
    restore_best_weights puts back the weights of the best epoch when it stops (or ends).

    Args:
        monitor (str): the figure of the logs to watch ("loss", "val_accuracy", ...). Defaults to
            "val_loss".
        min_delta (float): the least change that counts as an improvement. Defaults to 0.0.
        patience (int): epochs without improvement before stopping. Defaults to 0.
        mode (str): "min", "max", or "auto" (max for accuracies, min for the rest). Defaults to "auto".
        baseline (float | None): a value to beat from the start. Defaults to None.
        restore_best_weights (bool): put back the best epoch's weights at the end. Defaults to False.
        start_from_epoch (int): epochs to wait before watching. Defaults to 0.
    """

    def __init__(self, monitor="val_loss", min_delta=0.0, patience=0, mode="auto", baseline=None,
                 restore_best_weights=False, start_from_epoch=0):
        super().__init__()
        self.monitor, self.patience, self.baseline = monitor, int(patience), baseline
        self.min_delta, self.mode = abs(float(min_delta)), _monitor_mode(monitor, mode)
        self.restore_best_weights, self.start_from_epoch = restore_best_weights, int(start_from_epoch)
        self.stopped_epoch, self.best_epoch = None, None

    def _better(self, value, reference):
        if reference is None:
            return True
        return value < reference - self.min_delta if self.mode == "min" else value > reference + self.min_delta

    def on_train_begin(self, logs=None):
        self.wait, self.best, self.best_weights = 0, self.baseline, None
        self.stopped_epoch, self.best_epoch = None, None

    def on_epoch_end(self, epoch, logs=None):
        value = _monitored(logs, self.monitor, "EarlyStopping")
        if epoch < self.start_from_epoch:
            return
        if self._better(value, self.best):
            self.best, self.best_epoch, self.wait = value, epoch, 0
            if self.restore_best_weights:
                self.best_weights = self.model.get_weights()
            return
        self.wait += 1
        if self.wait >= self.patience and epoch > 0:  # as Keras counts patience
            self.stopped_epoch = epoch
            self.model.stop_training = True

    def on_train_end(self, logs=None):
        if self.restore_best_weights and self.best_weights is not None:
            self.model.set_weights(self.best_weights)


class ModelCheckpoint(Callback):
    """Save the model (or its weights) atomically, at the end of each epoch or every save_freq
    batches, as Keras's ModelCheckpoint.

    filepath may hold Keras-style fields: "ckpt-{epoch:02d}-{val_loss:.3f}.npz" (epoch and batch
    count from 1). save_best_only keeps only files of a better `monitor` than the best so far
    (initial_value_threshold: the value to beat at first); verbose=1 says when it saves.

    Args:
        filepath (str | Path): where to save; may hold {epoch} and the logs' fields.
        monitor (str): the figure of the logs to watch ("loss", "val_accuracy", ...). Defaults to
            "val_loss".
        verbose (int): 1 prints a line at each save. Defaults to 0.
        save_best_only (bool): save only when monitor improves. Defaults to False.
        save_weights_only (bool): save the weights alone (model.save_weights). Defaults to False.
        mode (str): "min", "max", or "auto" (max for accuracies, min for the rest). Defaults to "auto".
        save_freq (str | int): "epoch", or a number of batches. Defaults to "epoch".
        initial_value_threshold (float | None): the value to beat at first. Defaults to None.
    """

    def __init__(self, filepath, monitor="val_loss", verbose=0, save_best_only=False, save_weights_only=False,
                 mode="auto", save_freq="epoch", initial_value_threshold=None):
        super().__init__()
        self.filepath, self.monitor, self.verbose = str(filepath), monitor, verbose
        self.save_best_only, self.save_weights_only = save_best_only, save_weights_only
        if save_freq != "epoch" and (isinstance(save_freq, bool) or not isinstance(save_freq, int) or save_freq < 1):
            raise ValueError(f"save_freq must be 'epoch' or a positive number of batches, got {save_freq!r}")
        self.save_freq, self.mode, self.best = save_freq, _monitor_mode(monitor, mode), initial_value_threshold
        self._epoch, self._batches = 0, 0

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        if self.save_freq != "epoch":
            self._batches += 1
            if self._batches % self.save_freq == 0:
                self._save(self._epoch, logs or {}, batch)

    def on_epoch_end(self, epoch, logs=None):
        if self.save_freq == "epoch":
            self._save(epoch, logs or {})

    def _save(self, epoch, logs, batch=None):
        fields = {"epoch": epoch + 1, **({} if batch is None else {"batch": batch + 1}), **logs}
        try:
            path = self.filepath.format(**fields)
        except KeyError as e:
            raise ValueError(f"ModelCheckpoint filepath {self.filepath!r} names {e}, which fit does not report; "
                             f"it reports {', '.join(fields)}") from None
        if self.save_best_only:
            value = _monitored(logs, self.monitor, "ModelCheckpoint")
            if self.best is not None and not (value < self.best if self.mode == "min" else value > self.best):
                if self.verbose:
                    print(f"Epoch {epoch + 1}: {self.monitor} did not improve from {self.best:.5f}")
                return
            if self.verbose:
                previous = "inf" if self.best is None else f"{self.best:.5f}"
                print(f"Epoch {epoch + 1}: {self.monitor} improved from {previous} to {value:.5f}, saving model to {path}")
            self.best = value
        elif self.verbose:
            print(f"Epoch {epoch + 1}: saving model to {path}")
        if self.save_weights_only:
            self.model.save_weights(path)
        else:
            self.model.save(path)


class CSVLogger(Callback):
    """Write the History to a CSV file, one row per epoch: epoch, loss, accuracy, val_...

    The whole file is rewritten atomically after each epoch, so it is always complete up to
    the last finished epoch. append=True keeps the rows of an earlier run, as Keras; when
    BackupAndRestore resumes a killed fit at epoch e, the rows of epochs >= e that the killed run
    logged after its last backup are replaced by the rerun's, so each epoch has one row.

    Args:
        filename (str | Path): the CSV file.
        separator (str): between the fields. Defaults to ",".
        append (bool): keep an existing file's rows. Defaults to False.
    """

    def __init__(self, filename, separator=",", append=False):
        super().__init__()
        self.filename, self.separator, self.append = filename, separator, append

    def on_train_begin(self, logs=None):
        self.rows, self.keys, self._first_epoch = [], None, True
        if self.append and Path(self.filename).is_file():
            self.keys, self.rows = self._read(Path(self.filename))

    def _read(self, path):
        """(keys, rows) of the log at path. A last line without its newline was cut off by a
        writer that is not atomic (another tool's, or a copy broken off): it is dropped."""
        text = path.read_text()
        lines = text.split("\n")
        lines = lines[:-1]  # after the last newline: "" for a whole file, a cut-off row otherwise
        if not lines:
            return None, []
        keys = lines[0].split(self.separator)[1:]
        rows = [line.split(self.separator) for line in lines[1:]]
        for n, row in enumerate(rows, start=2):
            if len(row) != len(keys) + 1:
                raise ValueError(f"{path}: line {n} has {len(row)} fields, its header {len(keys) + 1}; not a "
                                 "CSVLogger log with this separator (append=False starts a new one)")
        return keys, rows

    def on_epoch_begin(self, epoch, logs=None):
        if self._first_epoch and getattr(self.model, "resume_epoch", None) is not None:
            # BackupAndRestore restored a backup: the killed run's rows after it are rerun now
            last_run = len(self.rows) - 1  # the rows since the epoch number last went down
            while last_run > 0 and _row_epoch(self.rows[last_run - 1]) < _row_epoch(self.rows[last_run]):
                last_run -= 1
            self.rows = self.rows[:max(last_run, 0)] + [r for r in self.rows[max(last_run, 0):]
                                                        if _row_epoch(r) < epoch]
        self._first_epoch = False

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        if self.keys is None:
            self.keys = list(logs)
        self.rows.append([str(epoch), *(repr(float(logs[k])) if k in logs else "" for k in self.keys)])
        text = "\n".join(self.separator.join(row) for row in [["epoch", *self.keys], *self.rows]) + "\n"
        atomic_write(self.filename, lambda f: f.write(text), mode="w")


def _row_epoch(row):
    return int(row[0]) if row[0].isdigit() else -1


class ReduceLROnPlateau(Callback):
    """Multiply the learning rate by `factor` when `monitor` has not improved (by more than
    min_delta) for `patience` epochs, as Keras: then wait `cooldown` epochs, never below min_lr.
    The logs (and History) get the epoch's "learning_rate".

    Args:
        monitor (str): the figure of the logs to watch ("loss", "val_accuracy", ...). Defaults to
            "val_loss".
        factor (float): the rate is multiplied by it, < 1. Defaults to 0.1.
        patience (int): epochs without improvement before a cut. Defaults to 10.
        verbose (int): 1 prints a line at each cut. Defaults to 0.
        mode (str): "min", "max", or "auto" (max for accuracies, min for the rest). Defaults to "auto".
        min_delta (float): the least change that counts as an improvement. Defaults to 1e-4.
        cooldown (int): epochs to wait after a cut. Defaults to 0.
        min_lr (float): the rate never goes below it. Defaults to 0.0.
    """

    def __init__(self, monitor="val_loss", factor=0.1, patience=10, verbose=0, mode="auto", min_delta=1e-4,
                 cooldown=0, min_lr=0.0):
        super().__init__()
        if factor >= 1.0:
            raise ValueError(f"ReduceLROnPlateau does not support a factor >= 1.0, got factor={factor}")
        self.monitor, self.factor, self.patience, self.verbose = monitor, float(factor), int(patience), verbose
        self.mode, self.min_delta, self.cooldown, self.min_lr = _monitor_mode(monitor, mode), float(min_delta), \
            int(cooldown), float(min_lr)

    def _better(self, value, reference):
        return value < reference - self.min_delta if self.mode == "min" else value > reference + self.min_delta

    def on_train_begin(self, logs=None):
        self.wait, self.cooldown_counter = 0, 0
        self.best = float("inf") if self.mode == "min" else -float("inf")

    def on_epoch_end(self, epoch, logs=None):
        logs = logs if logs is not None else {}
        optimizer = self.model.optimizer
        logs["learning_rate"] = optimizer.learning_rate
        current = _monitored(logs, self.monitor, "ReduceLROnPlateau")
        if self.cooldown_counter > 0:
            self.cooldown_counter -= 1
            self.wait = 0
        if self._better(current, self.best):
            self.best, self.wait = current, 0
        elif self.cooldown_counter == 0:
            self.wait += 1
            if self.wait >= self.patience and optimizer.learning_rate > self.min_lr:
                optimizer.learning_rate = max(optimizer.learning_rate * self.factor, self.min_lr)
                if self.verbose:
                    print(f"Epoch {epoch + 1}: ReduceLROnPlateau reducing learning rate to {optimizer.learning_rate}.")
                self.cooldown_counter, self.wait = self.cooldown, 0


class LearningRateScheduler(Callback):
    """Set the learning rate at the start of each epoch to schedule(epoch, lr) (or schedule(epoch)),
    as Keras; the logs get the epoch's "learning_rate".

    Args:
        schedule (callable): schedule(epoch, lr) or schedule(epoch) -> the epoch's learning rate.
        verbose (int): 1 prints the rate at each epoch. Defaults to 0.
    """

    def __init__(self, schedule, verbose=0):
        super().__init__()
        self.schedule, self.verbose = schedule, verbose

    def on_epoch_begin(self, epoch, logs=None):
        optimizer = self.model.optimizer
        try:
            lr = self.schedule(epoch, optimizer.learning_rate)
        except TypeError:  # a schedule of the epoch alone
            lr = self.schedule(epoch)
        if isinstance(lr, bool) or not isinstance(lr, (int, float, np.floating)) or not lr > 0:
            raise ValueError(f"the schedule must return a positive float learning rate, got {lr!r} at epoch {epoch}")
        optimizer.learning_rate = float(lr)
        if self.verbose:
            print(f"Epoch {epoch + 1}: LearningRateScheduler setting learning rate to {lr}.")

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:
            logs["learning_rate"] = self.model.optimizer.learning_rate


class TerminateOnNaN(Callback):
    """Stop fit when a batch's loss is NaN or Inf. (minicnn already refuses such a step, and
    keeps the last good weights: this only ends the run quietly, as in Keras.)"""

    def on_train_batch_end(self, batch, logs=None):
        loss = (logs or {}).get("loss")
        if loss is not None and not np.isfinite(loss):
            print(f"Batch {batch}: Invalid loss, terminating training")
            self.model.stop_training = True


class LambdaCallback(Callback):
    """A callback from functions, as Keras: LambdaCallback(on_epoch_end=lambda epoch, logs: ...).

    Args:
        **hooks (callable): on_epoch_end=..., on_train_batch_begin=..., any hook of Callback.
    """

    HOOKS = ("on_train_begin", "on_train_end", "on_epoch_begin", "on_epoch_end", "on_train_batch_begin",
             "on_train_batch_end")

    def __init__(self, **hooks):
        super().__init__()
        unknown = sorted(set(hooks) - set(self.HOOKS))
        if unknown:
            raise ValueError(f"LambdaCallback takes {', '.join(self.HOOKS)}; got {unknown}")
        for name, fn in hooks.items():
            if fn is not None:
                setattr(self, name, self._keras_call(name, fn))

    @staticmethod
    def _keras_call(name, fn):
        """Call fn with Keras's arguments: (logs) for on_train_*, (epoch or batch, logs) otherwise."""
        if name in ("on_train_begin", "on_train_end"):
            return lambda logs=None: fn(logs if logs is not None else {})
        return lambda index, logs=None: fn(index, logs if logs is not None else {})


class BackupAndRestore(Callback):
    """Back up the model, its optimizer, the finished epoch and minicnn's random generator at the
    end of every epoch into backup_dir; when fit starts and a backup is there, restore it and go on
    from the next epoch. A fit that was interrupted or killed, run again, ends with the same weights
    as one that never stopped (bit for bit: the shuffling's random state is restored too). The
    backup is deleted when fit ends normally (delete_checkpoint=True).

    The backup is one file, backup_dir/backup.npz (a saved model whose header also holds the epoch
    and the random state), written atomically: a kill at any moment leaves the previous epoch's
    backup or the new one, never the weights of one epoch with the position of another.

    Args:
        backup_dir (str | Path): the folder of the backup.
        save_freq (str): only "epoch". Defaults to "epoch".
        delete_checkpoint (bool): delete the backup when fit ends normally. Defaults to True.
    """

    def __init__(self, backup_dir, save_freq="epoch", delete_checkpoint=True):
        super().__init__()
        if save_freq != "epoch":
            raise ValueError("minicnn's BackupAndRestore backs up at the end of each epoch (save_freq='epoch')")
        self.backup_dir, self.delete_checkpoint = Path(backup_dir), delete_checkpoint
        self.model_path = self.backup_dir / "backup.npz"

    def on_train_begin(self, logs=None):
        if not self.model_path.is_file():
            return
        saved, header = saving.load_model_and_header(self.model_path)
        epoch, rng_state = self._training_state(header)
        self.model.set_weights(saved.get_weights())
        opt, saved_opt = self.model.optimizer, saved.optimizer
        if saved_opt is not None and type(saved_opt) is type(opt):
            opt.slots, opt.iterations = saved_opt.slots, saved_opt.iterations
        utils.rng().bit_generator.state = rng_state
        self.model.resume_epoch = epoch + 1

    def _training_state(self, header):
        """(epoch, random state) from the backup's header, checked before anything is restored."""
        state = header.get("training_state")
        if not isinstance(state, dict):
            raise saving.ModelFileError(f"{self.model_path}: a saved model without BackupAndRestore's "
                                        "'training_state' entry; delete it to start training afresh")
        epoch = state.get("epoch")
        if isinstance(epoch, bool) or not isinstance(epoch, int) or epoch < 0:
            raise saving.ModelFileError(f"{self.model_path}: its 'training_state' entry holds epoch {epoch!r}, "
                                        "not an epoch number")
        scratch = type(utils.rng().bit_generator)()  # the state is tried on a scratch generator first
        try:
            scratch.state = state.get("rng")
        except (TypeError, ValueError, KeyError) as e:
            raise saving.ModelFileError(f"{self.model_path}: its 'training_state' entry holds no valid random "
                                        f"state ({type(e).__name__}: {e})") from None
        return epoch, scratch.state

    def on_epoch_end(self, epoch, logs=None):
        self.backup_dir.mkdir(parents=True, exist_ok=True)
        saving.save_model(self.model, self.model_path,
                          training_state={"epoch": epoch, "rng": utils.rng().bit_generator.state})

    def on_train_end(self, logs=None):
        if self.delete_checkpoint:  # fit ended normally (an error or Ctrl-C never gets here)
            self.model_path.unlink(missing_ok=True)



class TensorBoard(Callback):
    """Keras's TensorBoard: writes a run's figures for `tensorboard --logdir logs`.

    The epoch's figures go to log_dir/train ("epoch_loss", "epoch_accuracy", "epoch_learning_rate")
    and the validation ones to log_dir/validation ("epoch_loss", ...), one point per epoch; with
    update_freq=N the running figures of every N-th batch go to log_dir/train ("batch_loss", ...),
    one point per batch counted from the start of the fit; each validation's figures also go to
    log_dir/validation as "evaluation_loss_vs_iterations", ... at the optimizer's step count.
    The event files are written by tensorboardX (`pip install "minicnn[tensorboard]"`) in
    minicnn/tensorboard.py.

    Args:
        log_dir (str | Path): the folder of the run; its subfolders train/ and validation/ get the
            event files. Defaults to "logs".
        histogram_freq (int): every how many epochs to write a histogram of each weight and of
            its gradient on the epoch's last batch; 0 writes none. Defaults to 0.
        write_images (bool): with histograms, also the first Conv2D's filters, side by side in
            one picture. Defaults to False.
        update_freq (str | int): "epoch" (figures once an epoch), "batch" or an int N (also the
            running figures of every N-th batch). Defaults to "epoch".
    """

    def __init__(self, log_dir="logs", histogram_freq=0, write_images=False, update_freq="epoch"):
        super().__init__()
        self._writer_class = tensorboard.summary_writer()  # fails here, not mid-fit, without the extra
        if not isinstance(histogram_freq, int) or isinstance(histogram_freq, bool) or histogram_freq < 0:
            raise ValueError(f"histogram_freq must be an int >= 0, got {histogram_freq!r}")
        update_freq = 1 if update_freq == "batch" else update_freq
        if update_freq != "epoch" and (not isinstance(update_freq, int) or isinstance(update_freq, bool)
                                       or update_freq < 1):
            raise ValueError(f"update_freq must be 'epoch', 'batch' or an int >= 1, got {update_freq!r}")
        self.log_dir, self.histogram_freq = Path(log_dir), histogram_freq
        self.write_images, self.update_freq = write_images, update_freq
        self._writers, self._global_batch = {}, 0

    def _writer(self, run):
        """The writer of log_dir/train or log_dir/validation, opened when first needed."""
        if run not in self._writers:
            self._writers[run] = self._writer_class(str(self.log_dir / run))
        return self._writers[run]

    def on_train_begin(self, logs=None):
        self._global_batch = 0

    def on_train_batch_end(self, batch, logs=None):
        self._global_batch += 1  # Keras counts batches from 1, across epochs
        if self.update_freq != "epoch" and self._global_batch % self.update_freq == 0:
            for name, value in (logs or {}).items():
                self._writer("train").add_scalar(f"batch_{name}", float(value), self._global_batch)

    def on_epoch_end(self, epoch, logs=None):
        logs = dict(logs or {})
        if self.model.optimizer is not None:
            logs.setdefault("learning_rate", self.model.optimizer.learning_rate)
        for name, value in logs.items():
            run = "validation" if name.startswith("val_") else "train"
            self._writer(run).add_scalar(f"epoch_{name.removeprefix('val_')}", float(value), epoch)
        if self.histogram_freq and epoch % self.histogram_freq == 0:
            self._log_weights(epoch)
        for writer in self._writers.values():
            writer.flush()

    def on_test_end(self, logs=None):
        """Keras's "evaluation_loss_vs_iterations" (and each metric's), at the optimizer's step count."""
        if self.model.optimizer is not None:
            for name, value in (logs or {}).items():
                self._writer("validation").add_scalar(f"evaluation_{name}_vs_iterations", float(value),
                                                      self.model.optimizer.iterations)

    def _log_weights(self, epoch):
        writer, first_conv = self._writer("train"), True
        for layer in self.model.layers:
            for key, w in layer.params.items():  # Keras's weight.path: "sequential/conv2d/kernel"
                tag = f"{self.model.name}/{layer.name}/{tensorboard.KERAS_WEIGHT_NAMES.get(key, key)}"
                writer.add_histogram(f"{tag}/histogram", gpu.to_host(w), epoch)
                if layer.grads.get(key) is not None:  # the gradient of the epoch's last batch
                    writer.add_histogram(f"{tag}/gradient/histogram", gpu.to_host(layer.grads[key]), epoch)
            if self.write_images and first_conv and type(layer).__name__ == "Conv2D":
                first_conv = False
                writer.add_images(f"{self.model.name}/{layer.name}/kernel/image",
                                  tensorboard.filter_tiles(layer.params["W"]), epoch, dataformats="NCHW")

    def on_train_end(self, logs=None):
        for writer in self._writers.values():
            writer.close()
        self._writers = {}
