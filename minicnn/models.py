"""Sequential: a stack of layers trained with Keras's compile / fit / evaluate / predict."""
import numpy as np
from tqdm import tqdm

from minicnn import backend, fusion, gpu, registry, saving
from minicnn import losses as losses_module
from minicnn import optimizers as optimizers_module
from minicnn.callbacks import CallbackList, History
from minicnn.layers.base import Layer
from minicnn.layers.core import Activation
from minicnn.optimizers import NonFiniteError, all_finite
from minicnn.saving import load_model  # noqa: F401  (minicnn.models.load_model, as in Keras)
from minicnn.utils import rng

METRICS = ("accuracy",)
# predict and evaluate on the CPU run their forward passes on at most this many samples at a
# time, whatever batch_size says: the same outputs, with arrays that stay cache-sized (measured
# on 2 cores: 14,100 images/s in chunks of 128, 9,500 in one pass over 1,000, whose im2col
# columns alone take 230 MB).
INFERENCE_CHUNK = 128


@registry.register_serializable()
class Sequential:
    """A linear stack of layers. x: (N, *input_shape) -> y: (N, *output_shape).

    Sequential([Conv2D(...), ...]) or Sequential() then add(layer). The model is built, and
    every layer's params created, as soon as the input shape is known: from the first
    layer's input_shape=, or from the first batch given to fit / evaluate / predict.
    """

    def __init__(self, layers=None, name="sequential"):
        self.name = name
        self.layers = []
        self.optimizer = None
        self.loss = None
        self.metrics = []
        self.stop_training = False
        self.history = None
        self._output_shape = None
        for layer in layers or ():
            self.add(layer)

    # -- building ------------------------------------------------------------------------
    def add(self, layer):
        if not isinstance(layer, Layer):
            raise TypeError(f"Sequential.add expects a minicnn layer, got {layer!r}")
        self.layers.append(layer)
        if len(self.layers) == 1:
            if hasattr(layer, "input_grad"):
                layer.input_grad = False  # dL/d(data) is never needed: skip its computation
            if layer.input_shape is not None:
                self._output_shape = layer.ensure_built(layer.input_shape)
        elif self._output_shape is not None:
            self._output_shape = layer.ensure_built(self._output_shape)

    @property
    def built(self):
        return self._output_shape is not None

    @property
    def input_shape(self):
        return self.layers[0].input_shape if self.layers and self.layers[0].built else None

    @property
    def output_shape(self):
        return self._output_shape

    @property
    def device(self):
        """Where the params live: "cpu", or "gpu" after model.to("gpu") or under MINICNN_BACKEND=cupy."""
        return self.layers[0].device if self.layers else "cpu"

    def to(self, device):
        """Move every param, grad and the optimizer's state to device ("gpu" or "cpu"); returns
        the model. Batches then move to the device one at a time; predict and evaluate still
        return NumPy values, and save, load and the pictures work from either device."""
        device = gpu.check_device(device)
        for layer in self.layers:
            layer.to(device)
        opt = self.optimizer
        if opt is not None and opt.slots is not None:
            opt.slots = [{k: gpu.move(v, device) for k, v in slots.items()} for slots in opt.slots]
        return self

    def build(self, input_shape):
        """Build every layer for inputs of input_shape (None, ...)."""
        if not self.layers:
            raise RuntimeError("the model has no layers: add some with model.add(...)")
        shape = (None, *input_shape[1:])
        for layer in self.layers:
            shape = layer.ensure_built(shape)
        self._output_shape = shape

    def compile(self, optimizer="adam", loss=None, metrics=None):
        """loss: a minicnn.losses function or name; optimizer: an instance or a name;
        metrics: None or ["accuracy"]."""
        if loss is None:
            raise ValueError("compile needs a loss, e.g. loss='categorical_crossentropy'")
        self.loss = losses_module.get(loss)
        self.optimizer = optimizers_module.get(optimizer)
        self.metrics = list(metrics or [])
        for m in self.metrics:
            if m not in METRICS:
                raise ValueError(f"unknown metric {m!r}; valid metrics: {', '.join(METRICS)}")

    # -- one batch ------------------------------------------------------------------------
    def _steps(self):
        """The layers as they run: Conv2D -> ReLU -> MaxPooling2D in a row become one fused
        step where the kernels have one (see minicnn/fusion.py)."""
        kernels = backend.kernels() if self.device == "cpu" and self.built else None
        key = (backend.get_backend(), self.device, tuple(map(id, self.layers)))
        if getattr(self, "_plan_key", None) != key:
            self._plan = fusion.plan(self.layers, kernels) if kernels is not None else list(self.layers)
            self._plan_key = key
        return self._plan

    def _forward(self, x, training):
        for step in self._steps():
            x = step.forward(x, training)
        return x

    def _infer(self, x):
        """The outputs for x, forward in inference mode, INFERENCE_CHUNK samples at a time on the CPU."""
        if self.device != "cpu" or len(x) <= INFERENCE_CHUNK:
            return self._forward(x, training=False)
        return np.concatenate([self._forward(x[s:s + INFERENCE_CHUNK], training=False)
                               for s in range(0, len(x), INFERENCE_CHUNK)])

    def _ends_in_softmax(self):
        last = self.layers[-1]
        return isinstance(last, Activation) and last.activation == "softmax"

    def _backward(self, y, p):
        """Backpropagate the mean loss of the batch; fills every layer's grads."""
        steps = self._steps()
        if self.loss.softmax_gradient is not None and self._ends_in_softmax():
            # softmax + cross-entropy: d loss / d logits = (p - y) / N, exact and stable,
            # so the softmax layer's own (general) backward is skipped.
            dy = self.loss.softmax_gradient(y, p)
            steps = steps[:-1]
        else:
            dy = self.loss.gradient(y, p)
        for step in reversed(steps):
            dy = step.backward(dy)

    def grads_and_params(self):
        """(grad, param) pairs of every trainable param, in a fixed order."""
        return [(layer.grads[k], layer.params[k]) for layer in self.layers if layer.trainable
                for k in layer.params]

    def train_on_batch(self, x, y):
        """One optimizer step on one batch. Returns (mean loss, probabilities p: (N, K)).

        The step is all or nothing: when the loss, a gradient or the update is NaN or Inf,
        NonFiniteError is raised and no weight (and no optimizer state) changes.
        """
        self._check_compiled("train_on_batch")
        x, y = self._check_data(x, y)
        return self._train_step(x, y)

    def _train_step(self, x, y):
        """train_on_batch without the checks: fit has checked the whole data set once."""
        p = self._forward(x, training=True)
        y = gpu.as_like(y, p)  # the targets go where the outputs are
        loss = float(self.loss.fn(y, p).mean())
        if not np.isfinite(loss):
            raise NonFiniteError(f"the loss is {loss} (the model's outputs hold NaN or Inf); the step was not applied")
        self._backward(y, p)
        pairs = self.grads_and_params()
        if not all_finite(*(g for g, _ in pairs)):  # one check (one device sync on a GPU) for all
            layer, key = next((layer, k) for layer in self.layers if layer.trainable
                              for k in layer.params if not all_finite(layer.grads[k]))
            raise NonFiniteError(f"the gradient of layer {layer.name!r} weight {key!r} holds NaN or Inf; "
                                 "the step was not applied")
        self.optimizer.apply_gradients(pairs)
        return loss, p

    def _correct(self, y, p):
        """How many predictions in the batch match the labels."""
        truth = y.reshape(-1) if self.loss.sparse else y.argmax(axis=-1)
        return int((p.argmax(axis=-1) == gpu.as_like(truth, p)).sum())

    # -- the Keras loop -------------------------------------------------------------------
    def fit(self, x, y, batch_size=32, epochs=1, verbose=1, validation_data=None,
            validation_split=0.0, shuffle=True, callbacks=None, initial_epoch=0):
        """Train for `epochs` passes over x: (N, ...) with targets y: (N, K) (or (N,) labels
        for the sparse loss). Returns a History whose .history holds per-epoch lists."""
        self._check_compiled("fit")
        x, y = self._check_data(x, y)
        if not 0 <= validation_split < 1:
            raise ValueError(f"validation_split must be in [0, 1), got {validation_split!r}")
        if validation_split and validation_data is None:
            cut = int(len(x) * (1 - validation_split))  # Keras takes the last samples, unshuffled
            if cut == 0 or cut == len(x):
                raise ValueError(f"x has {len(x)} samples, too few to split into training and validation sets "
                                 f"with validation_split={validation_split}: give more data or another "
                                 "validation_split")
            x, y, validation_data = x[:cut], y[:cut], (x[cut:], y[cut:])
        batch_size, epochs = _positive("batch_size", batch_size), _count("epochs", epochs)
        n = len(x)
        steps = -(-n // batch_size)
        self.history = History()
        cbs = CallbackList([self.history, *(callbacks or [])], model=self,
                           params={"epochs": epochs, "steps": steps, "verbose": verbose})
        self.stop_training = False
        cbs.on_train_begin()
        for epoch in range(initial_epoch, epochs):
            cbs.on_epoch_begin(epoch)
            order = rng().permutation(n) if shuffle else None
            loss_sum, correct, seen, logs = 0.0, 0, 0, {}
            bar = tqdm(total=steps, desc=f"Epoch {epoch + 1}/{epochs}", unit="batch",
                       disable=verbose != 1, dynamic_ncols=True)
            try:
                for step in range(steps):
                    cbs.on_train_batch_begin(step)
                    rows = slice(step * batch_size, (step + 1) * batch_size)
                    idx = rows if order is None else order[rows]
                    xb, yb = x[idx], y[idx]
                    try:
                        loss, p = self._train_step(xb, yb)
                    except NonFiniteError as e:
                        raise NonFiniteError(_non_finite_advice(e, epoch, epochs, step, steps, x, self)) from None
                    loss_sum += loss * len(xb)
                    seen += len(xb)
                    logs = {"loss": loss_sum / seen}
                    if self.metrics:
                        correct += self._correct(yb, p)
                        logs["accuracy"] = correct / seen
                    cbs.on_train_batch_end(step, logs)
                    bar.set_postfix(logs, refresh=False)
                    bar.update()
            finally:
                # Ctrl-C or an error: the weights hold the last whole step (steps are atomic),
                # self.history the epochs completed, and fit can be called again.
                bar.close()
            if validation_data is not None:
                val = self.evaluate(*validation_data, batch_size=batch_size, verbose=0, return_dict=True)
                logs.update({f"val_{k}": v for k, v in val.items()})
            if verbose == 2 or (verbose == 1 and validation_data is not None):
                print(f"Epoch {epoch + 1}/{epochs} - " + " - ".join(f"{k}: {v:.4f}" for k, v in logs.items()))
            cbs.on_epoch_end(epoch, logs)
            if self.stop_training:
                break
        cbs.on_train_end()
        return self.history

    def evaluate(self, x, y, batch_size=32, verbose=1, return_dict=False):
        """Mean loss (and accuracy) over x: (N, ...), y: (N, K). Returns [loss, accuracy]
        when compiled with metrics=["accuracy"], else the loss (a dict with return_dict)."""
        self._check_compiled("evaluate")
        x, y = self._check_data(x, y)
        batch_size = _positive("batch_size", batch_size)
        loss_sum, correct = 0.0, 0
        for start in tqdm(range(0, len(x), batch_size), desc="evaluate", unit="batch", disable=verbose != 1):
            xb, yb = x[start:start + batch_size], y[start:start + batch_size]
            p = self._infer(xb)
            loss_sum += float(self.loss.fn(gpu.as_like(yb, p), p).sum())
            correct += self._correct(yb, p)
        result = {"loss": loss_sum / len(x)}
        if self.metrics:
            result["accuracy"] = correct / len(x)
        if verbose:
            print(" - ".join(f"{k}: {v:.4f}" for k, v in result.items()))
        if return_dict:
            return result
        return list(result.values()) if self.metrics else result["loss"]

    def predict(self, x, batch_size=32, verbose=1):
        """The model's outputs for x: (N, ...) -> (N, *output_shape), one batch at a time."""
        x = self._check_x(x)
        batch_size = _positive("batch_size", batch_size)
        out = None
        for start in tqdm(range(0, len(x), batch_size), desc="predict", unit="batch", disable=verbose != 1):
            y = gpu.to_host(self._infer(x[start:start + batch_size]))
            if out is None:
                out = np.empty((len(x), *y.shape[1:]), dtype=y.dtype)
            out[start:start + len(y)] = y
        return out

    # -- saving ------------------------------------------------------------------------------------
    def get_config(self):
        """{"name", "input_shape", "layers": [{"class_name", "config"}, ...]}: plain JSON values
        from which from_config builds the same (unweighted) model."""
        if not self.built:
            raise RuntimeError("the model is not built yet: give the first layer input_shape=, or call fit/predict once")
        return {"name": self.name, "input_shape": list(self.input_shape[1:]),
                "layers": [registry.serialize(layer) for layer in self.layers]}

    @classmethod
    def from_config(cls, config, custom_objects=None):
        """The model get_config described, built; layer classes come from minicnn.registry
        (and custom_objects: {class name: class})."""
        model = cls([registry.deserialize(spec, custom_objects) for spec in config["layers"]], name=config["name"])
        model.build((None, *config["input_shape"]))
        return model

    def save(self, path, include_optimizer=True):
        """Write the architecture, weights and optimizer state to path (.npz), atomically.
        minicnn.models.load_model(path) gives the model back, ready to resume training."""
        return saving.save_model(self, path, include_optimizer)

    def save_weights(self, path):
        """Write the weights alone to path (.npz), atomically."""
        return saving.save_weights(self, path)

    def load_weights(self, path):
        """Load weights from save_weights (or save) into this model; every shape must match."""
        saving.load_weights(self, path)

    # -- inspection ---------------------------------------------------------------------------
    def trace(self, x, y=None, keep=False):
        """Run one batch forward (and backward when y is given) and report per layer: shapes,
        activation statistics, milliseconds, gradient norms, multiply-adds. See minicnn.tracing."""
        from minicnn.tracing import trace
        return trace(self, x, y, keep)

    def count_params(self):
        return sum(layer.count_params() for layer in self.layers)

    def get_weights(self):
        return [w for layer in self.layers for w in layer.get_weights()]

    def set_weights(self, weights):
        weights = list(weights)
        expected = sum(len(layer.params) for layer in self.layers)
        if len(weights) != expected:
            raise ValueError(f"the model has {expected} weight arrays, got {len(weights)}")
        for layer in self.layers:
            k = len(layer.params)
            layer.set_weights(weights[:k])
            weights = weights[k:]

    def summary(self, print_fn=print):
        """Keras's table (layer, output shape, params) plus multiply-adds per image."""
        if not self.built:
            raise RuntimeError("the model is not built yet: give the first layer input_shape=, "
                               "or call fit/predict once")
        rows, shape = [], self.input_shape
        for layer in self.layers:
            out = layer.compute_output_shape(shape)
            rows.append((f"{layer.name} ({type(layer).__name__})", str(out),
                         f"{layer.count_params():,}", f"{layer.count_macs(shape):,}"))
            shape = out
        head = ("Layer (type)", "Output Shape", "Param #", "Mult-adds")
        widths = [max(len(r[i]) for r in [head, *rows]) + 2 for i in range(4)]
        line = "-" * sum(widths)

        def fmt(r):
            return r[0].ljust(widths[0]) + r[1].ljust(widths[1]) + r[2].rjust(widths[2]) + r[3].rjust(widths[3])
        total_macs = sum(int(r[3].replace(",", "")) for r in rows)
        text = [f'Model: "{self.name}"', line, fmt(head), "=" * len(line), *map(fmt, rows), "=" * len(line),
                f"Total params: {self.count_params():,}",
                f"Trainable params: {sum(l.count_params() for l in self.layers if l.trainable):,}",
                f"Forward multiply-adds per image: {total_macs:,}", line]
        print_fn("\n".join(text))

    # -- checks at the public boundary ------------------------------------------------------------
    def _check_compiled(self, what):
        if self.loss is None or self.optimizer is None:
            raise RuntimeError(f"call model.compile(loss=..., optimizer=...) before model.{what}()")

    def _check_x(self, x):
        x = _numeric_array(x, "x")  # data sets stay on the host; batches move to the model's device
        if x.ndim < 2 or len(x) == 0:
            raise ValueError(f"x must be a batch of samples of shape (N, ...), got shape {x.shape}")
        _check_finite(x, self.layers[0].dtype if self.layers else np.dtype("float32"), "x")
        if not self.built:
            self.build(x.shape)
        expected = self.input_shape
        if x.shape[1:] != expected[1:]:
            hint = ""
            if x.ndim == len(expected) - 1 and expected[-1] == 1 and x.shape[1:] == expected[1:-1]:
                hint = f"; add the channel axis: x.reshape(-1, {', '.join(map(str, expected[1:]))})"
            raise ValueError(f"x must have shape (N, {', '.join(map(str, expected[1:]))}) to match the model's "
                             f"input, got {x.shape}{hint}")
        return x

    def _check_data(self, x, y):
        x = self._check_x(x)
        y = _numeric_array(y, "y")
        if y.ndim == 0 or len(y) != len(x):
            raise ValueError(f"x has {len(x)} samples but y has {len(y) if y.ndim else 'shape ()'}; they must match")
        _check_finite(y, self.layers[-1].dtype, "y")
        K = self.output_shape[-1]
        if self.loss.sparse:
            if y.ndim > 2 or (y.ndim == 2 and y.shape[1] != 1):
                raise ValueError(f"sparse_categorical_crossentropy expects integer labels of shape (N,), got {y.shape}")
            if y.dtype.kind == "f" and np.any(y != np.round(y)):
                raise ValueError("sparse_categorical_crossentropy expects integer class labels; y holds "
                                 f"non-integer values such as {y[y != np.round(y)].flat[0]}")
            if y.size and (y.min() < 0 or y.max() >= K):
                raise ValueError(f"labels must be in 0..{K - 1} for a model with {K} outputs; "
                                 f"got values from {y.min()} to {y.max()}")
        elif y.shape[1:] != self.output_shape[1:]:
            hint = ""
            if y.ndim == 1 and self.loss.name == "categorical_crossentropy":
                hint = ("; these look like integer labels: one-hot them with minicnn.utils.to_categorical(y) "
                        "or use loss='sparse_categorical_crossentropy'")
            raise ValueError(f"y must have shape (N, {', '.join(map(str, self.output_shape[1:]))}) to match "
                             f"the model's output, got {y.shape}{hint}")
        else:  # targets in the outputs' dtype, as Keras casts them: float64 or int targets take float32 steps
            y = y.astype(self.layers[-1].dtype, copy=False)
        return x, y


def _numeric_array(a, what):
    """a (an array, a nested list, a GPU array) as a NumPy array of numbers (bool, int, uint or
    float), or a TypeError / ValueError that names the argument."""
    a = gpu.to_host(a) if gpu.is_device_array(a) else a
    try:
        a = np.asarray(a)
    except (TypeError, ValueError) as e:  # a ragged nested list
        raise ValueError(f"{what} cannot be read as an array ({e}); nested lists must be rectangular") from None
    if a.dtype.kind not in "fiub":
        got = repr(a.item()) if a.dtype == object and a.ndim == 0 else f"dtype {a.dtype}"
        raise TypeError(f"{what} must be a numeric array (bool, int or float), got {got}")
    return a


def _check_finite(a, dtype, what):
    """NaN or Inf in the array `what` (x or y), or values beyond dtype's range (they become Inf
    when cast): a ValueError that names it."""
    if a.dtype.kind != "f" or a.size == 0:
        return
    bad = ~np.isfinite(a)
    if bad.any():
        where = tuple(int(i) for i in np.unravel_index(int(bad.argmax()), a.shape))
        raise ValueError(f"{what} holds {int(bad.sum())} NaN or Inf values (the first at index {where}); "
                         "clean or drop those samples before training")
    limit = np.finfo(dtype).max
    if np.finfo(a.dtype).max > limit and np.abs(a).max() > limit:
        hint = " Scale the inputs, e.g. x / 255 for pixels" if what == "x" else ""
        raise ValueError(f"{what} holds values up to {np.abs(a).max():.3g}, beyond {dtype.name}'s range "
                         f"({limit:.3g}); they would become Inf.{hint}")


def _non_finite_advice(error, epoch, epochs, step, steps, x, model):
    lr = getattr(model.optimizer, "learning_rate", None)
    return (f"training stopped at epoch {epoch + 1}/{epochs}, batch {step + 1}/{steps}: {error}. "
            "The weights are those of the last good step. Likely causes: inputs that are not "
            f"scaled (x ranges over [{float(x.min()):.3g}, {float(x.max()):.3g}]; pixels belong in [0, 1]: x / 255), "
            f"a learning rate too high (it is {lr}), or a loss that does not suit the outputs.")


def _positive(name, value):
    if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < 1:
        raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
    return int(value)


def _count(name, value):
    if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < 0:
        raise ValueError(f"{name} must be an integer >= 0, got {value!r}")
    return int(value)
