"""The training loop, as Keras 3's Trainer: compile, fit, evaluate, predict and their one-batch
forms, and nothing else. It drives a model through its public core (`forward`, `train_step`,
`layers`, `build`), so the same loop trains Sequential and any other Model. What it checks is in
minicnn/checks.py, where its batches come from in minicnn/batches.py, the steps a model of your
own writes (and those of several outputs) in minicnn/steps.py.

    model.compile(loss="categorical_crossentropy", optimizer="adam", metrics=["accuracy"])
    model.fit(x, y, batch_size=64, epochs=5)      # x: (N, ...), y: (N, K) one-hot or (N,) labels
    model.evaluate(x_test, y_test)                # [loss, accuracy]
    model.predict(x_test)                         # (N, K)
"""
import numpy as np

from minicnn import checks, gpu, multi_io, tape
from minicnn import losses as losses_module
from minicnn import metrics as metrics_module
from minicnn import optimizers as optimizers_module
from minicnn.batches import ArrayBatches, BatchSource, is_batch_source, predict_batches, validation_arrays
from minicnn.callbacks import CallbackList, History
from minicnn.checks import _numeric_array as numeric_array
from minicnn.optimizers import NonFiniteError
from minicnn.steps import CustomSteps, MultiOutputSteps, fit_batches, tqdm

# predict and evaluate on the CPU run their forward passes on at most this many samples at a time,
# whatever batch_size says: the same outputs, with arrays that stay cache-sized instead of im2col
# columns that grow with the batch (docs/benchmarks.md, "What each choice in the kernels buys").
INFERENCE_CHUNK = 128
# the batch size that makes all of x one batch (test_on_batch, predict_on_batch)
ONE_BATCH = 2 ** 62


class Trainer(CustomSteps, MultiOutputSteps):
    """compile / fit / evaluate / predict for a model with forward(x, training) and train_step(x, y)."""

    def compile(self, optimizer="adam", loss=None, metrics=None, loss_weights=None, **kwargs):
        """loss: a minicnn.losses function, name or object; optimizer: an instance or a name;
        metrics: names ("accuracy", "acc", "sparse_categorical_accuracy", "mae", ...) or
        minicnn.metrics objects; the logs and History use their names. A model whose own
        train_step computes its loss may be compiled without one (as a GAN is). A model of
        several inputs or outputs takes loss, loss_weights and metrics as one value, a list (one
        per output) or a dict keyed by output name (minicnn/multi_io.py)."""
        self.compile_args = {"loss": loss, "loss_weights": loss_weights, "metrics": metrics}
        if getattr(self, "multi_io", False):
            return self._compile_outputs(optimizers_module.get(optimizer), loss, loss_weights, metrics)
        if loss_weights is not None and multi_io.per_output(loss_weights, ["output"], "loss_weights") != [1]:
            raise ValueError(f"loss_weights={loss_weights!r} on a model of one output: scale the loss itself "
                             "(loss_weights weighs the outputs of a model of several)")
        self.loss = None if loss is None else losses_module.get(loss)
        self.optimizer = optimizers_module.get(optimizer)
        self.compiled_metrics = list(metrics or [])
        self.metric_objects = [metrics_module.get(m, self.loss) for m in self.compiled_metrics]
        names = [m.name for m in self.metric_objects]
        if len(set(names)) != len(names):
            raise ValueError(f"metrics must have distinct names, got {names}")
        self.compiled = True

    # -- one batch, as Keras 3's train_on_batch / test_on_batch / predict_on_batch ------------------
    def train_on_batch(self, x, y=None, sample_weight=None, class_weight=None, return_dict=False):
        """One optimizer step on one batch x: (N, ...), y: (N, K) (or (N,) labels for a sparse loss).
        sample_weight: (N,) per-sample weights of the loss; class_weight: {class: weight}.

        Returns what Keras 3 returns: the loss (a float) when the model has no metric, else
        [loss, metric, ...] in Keras's order (metrics_names), or a dict {name: value} with
        return_dict. The metrics start again at every call (reset_metrics), so each value is this
        batch's; loss and metrics are those of the forward pass, before the update. A model that
        writes its own train_step gets the batch as fit gives it, and its logs come back.

        The step is all or nothing: when the loss, a gradient or the update is NaN or Inf,
        NonFiniteError is raised and no weight (and no optimizer state) changes.
        """
        if self._overrides("train_step"):
            return self._batch_result(self.train_step(self._one_batch(x, y, sample_weight, class_weight,
                                                                      "train_on_batch")), return_dict)
        checks.check_compiled(self, "train_on_batch")
        self.reset_metrics()
        if getattr(self, "multi_io", False):
            xs, ys, ws = self._multi_data(x, y, sample_weight, class_weight)
            (loss, each), ps = self.train_step(xs, ys, ws)
            self.compiled_outputs.update_metrics(ys, ps)
            logs = {"loss": loss, **dict(zip(self.compiled_outputs.loss_names, each))}
        else:
            x, y = checks.check_data(self, x, y)
            loss, p = self.train_step(x, y, checks.sample_weights(y, len(x), sample_weight, class_weight))
            for m in self.metric_objects:
                m.update_state(y, p)
            logs = {"loss": loss}
        self._loss_tracker.update_state(loss)
        logs.update({m.name: m.result() for m in self.metric_objects})
        return self._batch_result(logs, return_dict)

    def test_on_batch(self, x, y=None, sample_weight=None, return_dict=False):
        """evaluate on one batch x: (N, ...), y: (N, K) (or (N,) labels), no update: the same
        return values as train_on_batch."""
        if self._overrides("test_step"):
            return self._batch_result(self.test_step(self._one_batch(x, y, sample_weight, None, "test_on_batch")),
                                      return_dict)
        self.reset_metrics()
        logs = self.evaluate(x, y, batch_size=ONE_BATCH, verbose=0, return_dict=True, sample_weight=sample_weight)
        self._loss_tracker.update_state(logs["loss"])
        return self._batch_result(logs, return_dict)

    def predict_on_batch(self, x):
        """The model's outputs for one batch x: (N, ...), as NumPy arrays (predict without batching)."""
        return self.predict(x, batch_size=ONE_BATCH, verbose=0)

    def make_train_function(self, force=False):
        """Keras traces its step into a graph, which reads `trainable` when traced (force=True traces
        it again); minicnn's step is Python that reads it at every step: nothing to make."""

    def reset_metrics(self):
        """Start every metric of model.metrics again (fit and evaluate do at each start)."""
        for m in self.metrics:
            m.reset_state()

    @property
    def metrics_names(self):
        """Keras 3's names of model.metrics: [] before compile, then "loss", one "compile_metrics"
        entry standing for every compiled metric (Keras keeps them in one container, there even
        for metrics=[]), and each output's loss once a model of several outputs has run a step. A
        model that lists its own metrics (a metrics property) gets their names."""
        if not getattr(type(self).metrics.fget, "builtin", False):  # a metrics property of your own
            return [m.name for m in self.metrics]
        if not getattr(self, "compiled", False):
            return []
        names = ["loss"] + (["compile_metrics"] if self.compile_args.get("metrics") is not None else [])
        if getattr(self, "multi_io", False) and getattr(self, "_ran_step", False):
            names += self.compiled_outputs.loss_names
        return names

    def _one_batch(self, x, y, sample_weight, class_weight, what):
        """One batch for a step of your own, as Keras 3's train_on_batch gives it: (x, y, sample_weight)
        always, None for what was not given (utils.unpack_x_y_sample_weight reads it)."""
        if not getattr(self, "compiled", False):  # its step computes its own loss: compiled without one is fine
            raise RuntimeError(f"call model.compile(optimizer=...) before model.{what}()")
        x = numeric_array(x, "x")
        y = None if y is None else numeric_array(y, "y")
        if y is not None and len(y) != len(x):
            raise ValueError(f"x has {len(x)} samples but y has {len(y)}; they must match")
        w = checks.sample_weights(y, len(x), sample_weight, class_weight)
        self.reset_metrics()
        return x, y, w

    def _batch_result(self, logs, return_dict):
        """A step's logs as Keras 3 returns them: Python floats, a dict sorted by name (return_dict),
        else a list in Keras's order (_flatten_metrics_in_order: the names of model.metrics, each
        output's loss, the rest sorted by name), one value alone when there is one."""
        logs = {k: float(v) for k, v in sorted(self._logs(logs).items())}
        if return_dict:
            return logs
        one_output = len(getattr(self, "output_names", None) or [None]) == 1
        compiled = {id(m) for m in self.metric_objects}
        # several outputs: Keras's container names its metrics without the output's prefix, so no
        # log matches them and they come last, sorted, with whatever else the logs hold
        order = [m.name for m in self.metrics if one_output or id(m) not in compiled]
        order = list(dict.fromkeys(order + getattr(getattr(self, "compiled_outputs", None), "loss_names", [])))
        values = [logs[k] for k in order if k in logs] + [v for k, v in logs.items() if k not in order]
        return values[0] if len(values) == 1 else values

    def forward_in_chunks(self, x):
        """forward(x, training=False) for x: (N, ...), INFERENCE_CHUNK samples at a time on the
        CPU; the outputs stay on the model's device. Unchecked: predict and evaluate check x."""
        n = multi_io.count(x)
        if self.device != "cpu" or n <= INFERENCE_CHUNK:
            return self.forward(x, training=False)
        parts = [self.forward(multi_io.rows(x, slice(s, s + INFERENCE_CHUNK)), training=False)
                 for s in range(0, n, INFERENCE_CHUNK)]
        if isinstance(parts[0], list):  # a model of several outputs
            return [np.concatenate([part[i] for part in parts]) for i in range(len(parts[0]))]
        return np.concatenate(parts)

    # -- the Keras loop -----------------------------------------------------------------------------
    def fit(self, x, y=None, batch_size=32, epochs=1, verbose=1, validation_data=None,
            validation_split=0.0, shuffle=True, callbacks=None, initial_epoch=0, class_weight=None,
            sample_weight=None, validation_freq=1, steps_per_epoch=None, validation_steps=None):
        """Train for `epochs` passes over x: (N, ...) with targets y: (N, K) (or (N,) labels
        for the sparse loss). Returns a History whose .history holds per-epoch lists.
        x may instead be a minicnn.utils.PyDataset, a tf.data.Dataset (minicnn.tf's or TensorFlow's)
        or a generator of (x, y) or (x, y, sample_weight) batches (y=None), with steps_per_epoch
        batches an epoch (a PyDataset: len(x) by default; a Dataset: a pass).
        sample_weight (N,) / class_weight {class: weight} weight each sample's loss, as Keras;
        validation_freq: validate every that many epochs, or at the (1-based) epochs listed."""
        custom = self._overrides("train_step")
        if not custom:
            checks.check_compiled(self, "fit")
        verbose = 1 if verbose == "auto" else verbose
        batch_size, epochs = checks.check_positive("batch_size", batch_size), checks.check_count("epochs", epochs)
        if not isinstance(validation_freq, (list, tuple, set)):
            validation_freq = checks.check_positive("validation_freq", validation_freq)
        source, first_x, validation_data = fit_batches(self, x, y, sample_weight, class_weight, batch_size, shuffle,
                                                       steps_per_epoch, validation_split, validation_data, custom)
        steps = source.steps
        self.history = History()
        cbs = CallbackList([*(callbacks or []), self.history], model=self,  # History last, as Keras: it sees every log
                           params={"epochs": epochs, "steps": steps, "verbose": verbose})
        self.stop_training, self.resume_epoch = False, None
        cbs.on_train_begin()
        if self.resume_epoch is not None:  # BackupAndRestore found a backup: go on after its epoch
            initial_epoch = max(initial_epoch, self.resume_epoch)
        for epoch in range(initial_epoch, epochs):
            cbs.on_epoch_begin(epoch)
            loss_sum, seen, logs, sums = 0.0, 0, {}, []
            for m in self.metrics if custom else self.metric_objects:  # as Keras: model.metrics start again
                m.reset_state()
            bar = tqdm(total=steps, desc=f"Epoch {epoch + 1}/{epochs}", unit="batch",
                       disable=verbose != 1, dynamic_ncols=True)
            try:
                for step, (xb, yb, wb) in enumerate(source.epoch()):
                    cbs.on_train_batch_begin(step)
                    if custom:  # the model's own step: its dict is the logs
                        logs = self._logs(self.train_step(self._data(xb, yb, wb)))
                        seen += len(xb)
                        cbs.on_train_batch_end(step, logs)
                        bar.set_postfix(logs, refresh=False)
                        bar.update()
                        continue
                    if first_x is None and getattr(self, "multi_io", False):  # checked as it comes
                        xb, yb, wb = self._multi_data(xb, yb, wb, class_weight)
                    elif first_x is None:  # a batch from a PyDataset or a generator: checked as it comes
                        xb, yb = checks.check_data(self, xb, yb)
                        wb = checks.sample_weights(yb, len(xb), wb, class_weight)
                    try:
                        loss, p = self.train_step(xb, yb, wb)
                    except NonFiniteError as e:
                        raw = xb if first_x is None else first_x
                        raise NonFiniteError(checks.non_finite_advice(e, epoch, epochs, step, steps,
                                                                raw[0] if isinstance(raw, list) else raw, self)) from None
                    n = multi_io.count(xb)
                    loss, each = loss if isinstance(loss, tuple) else (loss, ())
                    loss_sum += loss * n
                    seen += n
                    logs = {"loss": loss_sum / seen}
                    if each:  # several outputs: each one's loss, unweighted, its mean over the batches
                        sums = [s + v for s, v in zip(sums, each)] if sums else list(each)  # (multi_io.py)
                        logs.update({k: v / (step + 1) for k, v in zip(self.compiled_outputs.loss_names, sums)})
                    if isinstance(p, list) and getattr(self, "multi_io", False):
                        self.compiled_outputs.update_metrics(yb, p)
                    else:
                        for m in self.metric_objects:
                            m.update_state(yb, p)
                    logs.update({m.name: m.result() for m in self.metric_objects})
                    cbs.on_train_batch_end(step, logs)
                    bar.set_postfix(logs, refresh=False)
                    bar.update()
            finally:
                # Ctrl-C or an error: the weights hold the last whole step (steps are atomic),
                # self.history the epochs completed, and fit can be called again.
                bar.close()
            if not seen:
                raise ValueError(f"x gave no batch in epoch {epoch + 1}: a generator that ran out (give "
                                 "steps_per_epoch, and a generator that loops forever, or a PyDataset)")
            due = (epoch + 1) in validation_freq if isinstance(validation_freq, (list, tuple, set)) \
                else (epoch + 1) % validation_freq == 0
            self.unvalidated_epoch = validation_data is not None and not due  # callbacks skip its val_ figures
            if validation_data is not None and due:
                val_x, val_y, val_w = validation_arrays(validation_data)
                val = self.evaluate(val_x, val_y, batch_size=batch_size, verbose=0, return_dict=True, sample_weight=val_w,
                                    callbacks=cbs.callbacks, steps=validation_steps)  # their on_test_* hooks too
                logs.update({f"val_{k}": v for k, v in val.items()})
            if verbose == 2 or (verbose == 1 and validation_data is not None):
                print(f"Epoch {epoch + 1}/{epochs} - " + " - ".join(f"{k}: {v:.4f}" for k, v in logs.items()))
            cbs.on_epoch_end(epoch, logs)
            source.end_epoch()
            if self.stop_training:
                break
        # use_ema: the weights take their moving average, as Keras does, before on_train_end (where
        # EarlyStopping's restore_best_weights comes after it)
        if epochs > 0 and isinstance(self.optimizer, optimizers_module.Optimizer):
            self.optimizer.finalize_variable_values(self.trainable_weights)
        cbs.on_train_end()
        return self.history

    def evaluate(self, x, y=None, batch_size=32, verbose=1, return_dict=False, sample_weight=None, callbacks=None,
                 steps=None):
        """Mean loss (and accuracy) over x: (N, ...), y: (N, K) (or the batches of a PyDataset
        or generator x, `steps` of them). Returns [loss, accuracy] when compiled with
        metrics=["accuracy"], else the loss (a dict with return_dict). A model that writes its own
        test_step gives the logs of its last batch, as Keras."""
        batch_size = checks.check_positive("batch_size", batch_size)
        if self._overrides("test_step"):
            return self._evaluate_custom(x, y, batch_size, verbose, return_dict, sample_weight, callbacks, steps)
        checks.check_compiled(self, "evaluate")
        if getattr(self, "multi_io", False):
            return self._evaluate_multi(x, y, batch_size, verbose, return_dict, sample_weight, callbacks, steps)
        if is_batch_source(x):
            if y is not None:
                raise ValueError("x is a PyDataset or a generator: its batches hold the targets; give no y")
            source, checked = BatchSource(x, steps), False
        else:
            x, y = checks.check_data(self, x, y)
            w = checks.sample_weights(y, len(x), sample_weight, None)
            source, checked = ArrayBatches(x, y, w, batch_size, steps=steps), True
        loss_sum, seen, cbs = 0.0, 0, CallbackList(callbacks or [], model=self)
        for m in self.metric_objects:
            m.reset_state()
        cbs.on_test_begin()
        for step, (xb, yb, wb) in enumerate(tqdm(source.epoch(), total=source.steps, desc="evaluate", unit="batch",
                                                 disable=verbose != 1)):
            cbs.on_test_batch_begin(step)
            if not checked:
                xb, yb = checks.check_data(self, xb, yb)
                wb = checks.sample_weights(yb, len(xb), wb, None)
            p = self.forward_in_chunks(xb)
            per_sample = self.loss.fn(gpu.as_like(yb, p), p)
            per_sample = per_sample.reshape(len(xb), -1).mean(axis=1)  # (N, H, W) for maps: one value per sample
            loss_sum += float((per_sample if wb is None else per_sample * gpu.as_like(wb, p)).sum())
            seen += len(xb)
            for m in self.metric_objects:
                m.update_state(yb, p)
            cbs.on_test_batch_end(step, {"loss": loss_sum / seen, **{m.name: m.result() for m in self.metric_objects}})
        if not seen:
            raise ValueError("evaluate got no batch: x is empty, or a generator that ran out")
        result = {"loss": loss_sum / seen + self.regularization_loss()}
        result.update({m.name: m.result() for m in self.metric_objects})
        cbs.on_test_end(dict(result))
        if verbose:
            print(" - ".join(f"{k}: {v:.4f}" for k, v in result.items()))
        if return_dict:
            return result
        return self._batch_result(result, False)  # [loss, metrics...] in Keras's order, or the loss alone

    def predict(self, x, batch_size=32, verbose=1, callbacks=None, steps=None):
        """The model's outputs for x: (N, ...) -> (N, *output_shape), one batch at a time; x may
        be a PyDataset or a generator of batches (x or (x, ...)), `steps` of them."""
        if is_batch_source(x):
            parts = [self.predict(b[0] if isinstance(b, tuple) else b, batch_size, 0, callbacks)
                     for b in predict_batches(x, steps)]
            if not parts:
                raise ValueError("predict got no batch: a generator that ran out")
            if isinstance(parts[0], list):
                return [np.concatenate([part[i] for part in parts]) for i in range(len(parts[0]))]
            return np.concatenate(parts)
        several = getattr(self, "multi_io", False) and len(self.inputs) > 1
        x = multi_io.check_inputs(self, x) if several else checks.check_x(self, x)
        batch_size = checks.check_positive("batch_size", batch_size)
        outs = many = None
        cbs = CallbackList(callbacks or [], model=self)
        cbs.on_predict_begin()
        n = multi_io.count(x)
        for step, start in enumerate(tqdm(range(0, n, batch_size), desc="predict", unit="batch",
                                          disable=verbose != 1)):
            cbs.on_predict_batch_begin(step)
            xb = multi_io.rows(x, slice(start, start + batch_size))
            y = tape.plain(self.predict_step(xb)) if self._overrides("predict_step") else self.forward_in_chunks(xb)
            cbs.on_predict_batch_end(step, {"outputs": y})
            many = isinstance(y, list)  # a model of several outputs: a list of arrays
            ys = [gpu.to_host(a) for a in (y if many else [y])]
            if outs is None:
                outs = [np.empty((n, *a.shape[1:]), dtype=a.dtype) for a in ys]
            for out, a in zip(outs, ys):
                out[start:start + len(a)] = a
        cbs.on_predict_end()
        if many and getattr(self, "_output_dict", False):  # Model(outputs={name: tensor}): a dict, as Keras
            return dict(zip(self.output_names, outs))
        return outs if many else outs[0]
