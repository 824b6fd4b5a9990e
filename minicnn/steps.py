"""The steps fit, evaluate and predict run besides their default ones: those a model of your own
writes (Keras's train_step, test_step and predict_step, each given one batch `data`), and the
evaluation of a model of several outputs. The Trainer (minicnn/training.py) mixes both in, and
takes fit's batches from fit_batches: a model's own step gets its data unchecked, the default
step checked against the loss, with validation_split's samples set apart.

    class GAN(minicnn.Model):
        def train_step(self, data):             # fit calls it once a batch; its dict is the logs
            ...
"""
import warnings

import numpy as np
from tqdm import TqdmWarning

with warnings.catch_warnings():  # a Jupyter kernel without ipywidgets gets tqdm's text bar, which is fine: no warning
    warnings.simplefilter("ignore", TqdmWarning)
    from tqdm.auto import tqdm  # a text bar in a terminal, a widget in Jupyter where ipywidgets is installed

from minicnn import gpu, multi_io
from minicnn.batches import ArrayBatches, BatchSource, is_batch_source, validation_arrays
from minicnn.callbacks import CallbackList
from minicnn.checks import _numeric_array as numeric_array
from minicnn.checks import check_data, sample_weights


class CustomSteps:
    """The steps a model of your own may override, and the loops that run them."""

    def _overrides(self, step):
        """True when the model's class writes its own train_step / test_step / predict_step(data)."""
        return not getattr(getattr(type(self), step), "builtin_step", False)

    def test_step(self, data):
        """Keras's test_step(data): the logs of one batch (x, y) or (x, y, sample_weight)."""
        raise NotImplementedError  # evaluate runs its own loop unless a subclass writes this

    def predict_step(self, data):
        """Keras's predict_step(data): the outputs for one batch."""
        return self(data[0] if isinstance(data, tuple) else data, training=False)

    test_step.builtin_step = predict_step.builtin_step = True  # minicnn's own: evaluate and predict run their loops

    def _custom_batches(self, x, y, sample_weight, batch_size, shuffle, what, steps=None):
        """(source, first x) for a step of your own: x and y (y may be None) as arrays, no check
        against a loss (the step computes its own); `steps` batches an epoch, as for fit's own."""
        if not getattr(self, "compiled", False):
            raise RuntimeError(f"call model.compile(optimizer=...) before model.{what}()")
        if is_batch_source(x):
            return BatchSource(x, steps), None
        x = numeric_array(x, "x")
        y = None if y is None else numeric_array(y, "y")
        if y is not None and len(y) != len(x):
            raise ValueError(f"x has {len(x)} samples but y has {len(y)}; they must match")
        w = None if sample_weight is None else numeric_array(sample_weight, "sample_weight")
        return ArrayBatches(x, y, w, batch_size, shuffle, steps), x

    @staticmethod
    def _data(xb, yb, wb):
        """The batch as Keras gives it to train_step: x, (x, y) or (x, y, sample_weight)."""
        return xb if yb is None else (xb, yb) if wb is None else (xb, yb, wb)

    @staticmethod
    def _logs(out):
        """A step's returned dict as logs of Python floats (its values may be 0-d arrays)."""
        if not isinstance(out, dict):
            raise TypeError(f"train_step and test_step must return a dict of logs {{name: value}}, got "
                            f"{type(out).__name__}")
        return {k: float(np.asarray(v)) for k, v in out.items()}

    def _evaluate_custom(self, x, y, batch_size, verbose, return_dict, sample_weight, callbacks, steps=None):
        source, _ = self._custom_batches(x, y, sample_weight, batch_size, False, "evaluate", steps)
        for m in self.metrics:
            m.reset_state()
        cbs = CallbackList(callbacks or [], model=self)
        cbs.on_test_begin()
        logs = None
        for step, (xb, yb, wb) in enumerate(tqdm(source.epoch(), total=source.steps, desc="evaluate", unit="batch",
                                                 disable=verbose != 1)):
            cbs.on_test_batch_begin(step)
            logs = self._logs(self.test_step(self._data(xb, yb, wb)))
            cbs.on_test_batch_end(step, logs)
        if logs is None:
            raise ValueError("evaluate got no batch: x is empty, or a generator that ran out")
        cbs.on_test_end(dict(logs))
        if verbose:
            print(" - ".join(f"{k}: {v:.4f}" for k, v in logs.items()))
        if return_dict:
            return logs
        return self._batch_result(logs, False)


class MultiOutputSteps:
    """The compile, checks and evaluation of a model of several inputs or outputs (minicnn/multi_io.py)."""

    def _compile_outputs(self, optimizer, loss, loss_weights, metrics):
        """compile for several outputs: loss, loss_weights and metrics per output (Keras's rules)."""
        self.optimizer = optimizer
        self.compiled_outputs = multi_io.CompiledOutputs(self.output_names, loss, loss_weights, metrics)
        self.loss = self.compiled_outputs  # compiled: fit's checks and the loop read it per output
        self.compiled_metrics = metrics
        self.metric_objects = self.compiled_outputs.metric_objects
        self.compiled = True

    def _multi_data(self, x, y, sample_weight, class_weight):
        """x, y and the sample weights of a model of several inputs or outputs, checked: lists in
        the order of model.inputs and model.outputs (minicnn/multi_io.py)."""
        if class_weight is not None:
            raise ValueError("class_weight is for a model of one output; weigh the samples of each output with "
                             "sample_weight={output name: (N,) weights}")
        xs = multi_io.check_inputs(self, x)
        n = len(xs[0])
        ys = multi_io.check_targets(self, multi_io.arrays_by_name(y, self.output_names, "y"), n)
        return xs, ys, multi_io.check_weights(self, sample_weight, n)

    def _evaluate_multi(self, x, y, batch_size, verbose, return_dict, sample_weight, callbacks, steps):
        """evaluate for several inputs or outputs: the total loss, each output's loss, the metrics."""
        if is_batch_source(x):
            if y is not None:
                raise ValueError("x is a PyDataset or a generator: its batches hold the targets; give no y")
            source, checked = BatchSource(x, steps), False
        else:
            source, checked = ArrayBatches(*self._multi_data(x, y, sample_weight, None), batch_size), True
        compiled = self.compiled_outputs
        self._ran_step = True  # each output's loss is now one of Keras's metrics_names
        for m in self.metric_objects:
            m.reset_state()
        cbs = CallbackList(callbacks or [], model=self)
        cbs.on_test_begin()
        total, sums, seen = 0.0, [0.0] * len(compiled.loss_names), 0
        for step, (xb, yb, wb) in enumerate(tqdm(source.epoch(), total=source.steps, desc="evaluate", unit="batch",
                                                 disable=verbose != 1)):
            cbs.on_test_batch_begin(step)
            if not checked:
                xb, yb, wb = self._multi_data(xb, yb, wb, None)
            p = self.forward_in_chunks(xb)
            p = p if isinstance(p, list) else [p]
            loss, each = compiled.losses_of([None if a is None else gpu.as_like(a, q) for a, q in zip(yb, p)], p,
                                            [None if a is None else gpu.as_like(a, q) for a, q in zip(wb, p)])
            n = multi_io.count(xb)
            total, seen = total + loss * n, seen + n
            sums = [s + v for s, v in zip(sums, each)] if compiled.loss_names else sums
            compiled.update_metrics(yb, p)
            cbs.on_test_batch_end(step, {"loss": total / seen})
        if not seen:
            raise ValueError("evaluate got no batch: a generator that ran out")
        result = {"loss": total / seen + self.regularization_loss()}
        result.update({k: v / (step + 1) for k, v in zip(compiled.loss_names, sums)})
        result.update({m.name: m.result() for m in self.metric_objects})
        cbs.on_test_end(dict(result))
        if verbose:
            print(" - ".join(f"{k}: {v:.4f}" for k, v in result.items()))
        if return_dict:
            return result
        return self._batch_result(result, False)


def fit_batches(model, x, y, sample_weight, class_weight, batch_size, shuffle, steps_per_epoch, validation_split,
                validation_data, custom):
    """(source, first x, validation_data) of fit: where its batches come from, the arrays when x
    is arrays (None for a PyDataset, a Dataset or a generator, whose batches are checked as they
    come), and validation_data with validation_split's samples when it asks for them."""
    if is_batch_source(x):
        if y is not None or sample_weight is not None or validation_split:
            raise ValueError("x is a PyDataset or a generator: its batches hold the targets (and weights); "
                             "give no y, sample_weight or validation_split")
        source, first_x = BatchSource(x, steps_per_epoch, shuffle), None  # a PyDataset's batch order
    elif custom:
        source, first_x = model._custom_batches(x, y, sample_weight, batch_size, shuffle, "fit", steps_per_epoch)
    else:
        if getattr(model, "multi_io", False):
            x, y, w = model._multi_data(x, y, sample_weight, class_weight)
        else:
            x, y = check_data(model, x, y)
            w = sample_weights(y, len(x), sample_weight, class_weight)
        if not 0 <= validation_split < 1:
            raise ValueError(f"validation_split must be in [0, 1), got {validation_split!r}")
        if validation_split and validation_data is None:
            n = multi_io.count(x)
            cut = int(n * (1 - validation_split))  # Keras takes the last samples, unshuffled
            if cut == 0 or cut == n:
                raise ValueError(f"x has {n} samples, too few to split into training and validation sets "
                                 f"with validation_split={validation_split}: give more data or another "
                                 "validation_split")
            take, rest = slice(None, cut), slice(cut, None)
            # the validation samples keep their sample_weight (not class_weight), as in Keras
            validation_data = (multi_io.rows(x, rest), multi_io.rows(y, rest),
                               None if sample_weight is None else multi_io.rows(w, rest))
            x, y, w = multi_io.rows(x, take), multi_io.rows(y, take), multi_io.rows(w, take)
        if validation_data is not None:
            validation_arrays(validation_data)  # a wrong validation_data fails now, not after an epoch
        source, first_x = ArrayBatches(x, y, w, batch_size, shuffle, steps_per_epoch), x
    return source, first_x, validation_data

