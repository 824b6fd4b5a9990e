"""The Layer protocol that every minicnn layer follows, and that a learner can drive by hand.

    y = layer.forward(x, training=False)   # builds the params on the first call, from x.shape
    dx = layer.backward(dy)                # after forward(x, training=True): returns dL/dx,
                                           # fills layer.grads, never changes layer.params
    layer.params, layer.grads              # two dicts, same keys ("W", "b"), same shapes
    layer.state                            # non-trainable arrays (a moving mean): weights that
                                           # are saved and moved, but no optimizer sees
    layer.input_grad = False               # nobody needs dL/dx (the model's first layer):
                                           # backward may skip it and return None

A subclass writes build(input_shape), call(x, training), backward(dy) and, when its output
shape differs from its input's, compute_output_shape(input_shape). What call saves for backward
goes in self._cache, and belongs to that call: forward clears it first (so a backward after an
inference-mode call is an error, never the previous batch's values), and a GradientTape keeps
each recorded call's own and puts it back before that call's backward (a layer called twice in
one step has two). A layer of your own may instead write build (with add_weight) and call only,
with minicnn.ops and other layers: a GradientTape then differentiates its call (minicnn/tape.py).
`training` is True in fit and train_on_batch, False in evaluate and predict: a layer that behaves
differently while training (Dropout, BatchNormalization) reads it there. Shapes include the
batch axis as None, as in Keras: (None, H, W, C).
"""
import functools
import inspect
import re
from collections import defaultdict

import numpy as np

from minicnn import backend, gpu, initializers, regularizers, tape
from minicnn.layers.symbolic import call_symbolic, is_symbolic

_training = [None]  # the training flag of the model call running now: what layer(x) inherits (Keras's call context)

_name_counts = defaultdict(int)


def _unique_name(cls_name):
    base = re.sub(r"(.)([A-Z][a-z]+)", r"\1_\2", cls_name)  # Keras's to_snake_case: Conv2DTranspose ->
    base = re.sub(r"([a-z])([A-Z])", r"\1_\2", base).lower()  # conv2d_transpose, MaxPooling2D -> max_pooling2d
    n = _name_counts[base]
    _name_counts[base] += 1
    return base if n == 0 else f"{base}_{n}"


def pair(value, what):
    """Normalise an int or a 2-sequence to a pair of positive ints (kernel_size, strides...)."""
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        value = (value, value)
    try:
        a, b = (int(v) for v in value)
    except (TypeError, ValueError):
        raise TypeError(f"{what} must be an int or a pair of ints, got {value!r}") from None
    if a < 1 or b < 1:
        raise ValueError(f"{what} must be positive, got {value!r}")
    return a, b


def _marks_built(build):
    """Wrap a subclass's build so that calling it, by hand too, leaves the layer built for that
    shape, as Keras does: a forward pass then keeps the params instead of building new ones."""
    @functools.wraps(build)
    def build_and_mark(self, input_shape):
        if isinstance(input_shape, list) and input_shape and isinstance(input_shape[0], (tuple, list)):
            input_shape = [(None, *tuple(s)[1:]) for s in input_shape]  # a layer of several inputs (Add)
        else:
            input_shape = (None, *tuple(input_shape)[1:])
        build(self, input_shape)
        self.input_shape, self.built = input_shape, True
        if self.device != "cpu":
            self.to(self.device)
    build_and_mark.marks_built = True
    return build_and_mark


def _recorded(forward):
    """Wrap a forward so that, while a GradientTape records, the call is recorded on it (see
    minicnn/tape.py); otherwise the forward runs as written, after one check of a list."""
    @functools.wraps(forward)
    def forward_on_tape(self, x, training=False):
        if tape._tapes and not tape._paused[0]:
            return tape.record_layer(self, forward, x, training)
        return forward(self, x, training)
    forward_on_tape.records = True
    return forward_on_tape


class Layer:
    """Base class of minicnn layers. See the module docstring for the protocol."""

    # A layer that only prepares the data (the random augmentation layers): no weights. A model
    # whose first layers are all such needs no gradient of their outputs either, so the first
    # layer after them skips dL/dx, as the first layer of a model does.
    data_only = False

    # How the tape differentiates a call made with training=False (model(x) in a saliency map):
    # "same" (forward computes the same in both modes, so it runs with training=True to save what
    # backward needs), "identity" (Dropout, augmentation: y = x at inference) or "frozen"
    # (BatchNormalization: normalised with the moving statistics, as a non-trainable layer trains).
    inference_gradient = "same"

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        build = cls.__dict__.get("build")
        if build is not None and not getattr(build, "marks_built", False):
            cls.build = _marks_built(build)
        forward = cls.__dict__.get("forward")
        if forward is not None and not getattr(forward, "records", False):
            cls.forward = _recorded(forward)
        call = cls.__dict__.get("call")
        if call is not None:
            cls._call_takes_training = "training" in inspect.signature(call).parameters
        cls._by_tape = cls.backward is Layer.backward  # no backward of its own: the tape differentiates call

    def __init__(self, name=None, dtype="float32", input_shape=None, trainable=True, input_dim=None):
        if input_dim is not None:  # Keras 2's Dense(256, input_dim=100), which Keras 3 still takes
            input_shape = (input_dim,)
        self.dtype = np.dtype(dtype)
        if self.dtype.kind != "f":
            raise TypeError(f"dtype must be a floating type such as 'float32', got {dtype!r}")
        self.name = name or _unique_name(type(self).__name__)
        self.input_shape = None if input_shape is None else (None, *input_shape)
        self.trainable = trainable
        self.params = {}
        self.grads = {}
        self.state = {}  # non-trainable arrays: saved, moved with to(), in get_weights; never optimized
        self.param_shapes = {}  # the shape each param (and state array) was built with: save checks against it
        self.input_grad = True  # False: dL/dx is not needed, backward may return None
        self.nodes = []  # the calls of this layer on KerasTensors (functional models)
        self.regularizers = {}  # param key -> a minicnn.regularizers penalty on it (kernel_regularizer=...)
        self.built = False
        self._cache = None  # what forward(training=True) saved for backward
        self.device = backend.default_device()  # "cpu" or "gpu": where params live (see to())

    # -- to override ---------------------------------------------------------------
    def build(self, input_shape):
        """Create self.params (and zeroed self.grads) for inputs of input_shape (None, ...)."""

    def compute_output_shape(self, input_shape):
        return input_shape

    def call(self, x, training=False):
        raise NotImplementedError

    def backward(self, dy):
        """dL/dx from dy = dL/dy, filling self.grads. A layer that does not write it is
        differentiated by the tape, through the minicnn.ops and layers its call uses."""
        raise NotImplementedError(f"layer {self.name!r} has no backward of its own: a GradientTape differentiates "
                                  "its call (model.fit and your own loops use one)")

    _call_takes_training = True
    _by_tape = False

    def count_macs(self, input_shape):
        """Multiply-adds of the forward pass for one sample (0 for cheap elementwise layers)."""
        return 0

    def get_config(self):
        """The constructor's arguments, as plain JSON values: cls.from_config(config) makes the
        same layer (unbuilt: the weights travel separately)."""
        return {"name": self.name, "dtype": self.dtype.name}

    @classmethod
    def from_config(cls, config):
        return cls(**config)

    # -- the protocol ----------------------------------------------------------------
    def forward(self, x, training=False):
        """Run the layer. x: (N, ...) -> y: (N, ...); builds the layer on its first call. What
        call saves for backward (self._cache) belongs to this call: an inference-mode call saves
        nothing, and a backward after it is an error."""
        self._cache = None
        if self._by_tape:  # its call is made of recorded ops: keep them recorded
            x = self._tape_input(x)
            return self.call(x, training) if self._call_takes_training else self.call(x)
        x = self.as_input(x)
        return self.call(x, training)

    def __call__(self, x, training=None, **kwargs):
        """layer(x): forward on an array; on a KerasTensor (from Input), one step of describing
        a functional model: returns the output's KerasTensor (see minicnn/layers/symbolic.py).
        training=None takes the flag of the model call it runs in (False outside one), as Keras."""
        if is_symbolic(x):
            return call_symbolic(self, x)
        if training is None:
            training = bool(_training[0])
        if _training[0] is not None:  # inside a model's or another layer's call
            return self._run(x, training, kwargs)
        for layer in self._all_layers():  # the outermost call: the losses of add_loss start again, as Keras
            layer._added_losses = []
        _training[0] = training  # the layers it calls inherit its flag
        try:
            return self._run(x, training, kwargs)
        finally:
            _training[0] = None

    def _run(self, x, training, kwargs):
        if kwargs:  # a layer of your own whose call takes more (mask=...): called as written
            return self.call(self._tape_input(x), training=training, **kwargs) if self._call_takes_training \
                else self.call(self._tape_input(x), **kwargs)
        return self.forward(x, training)

    @classmethod
    def differentiated_by_tape(cls):
        """True for a layer without a backward of its own (a subclass with build and call only)."""
        return cls._by_tape

    def _tape_input(self, x):
        """x for a call the tape differentiates: kept as given (its records must see the very
        arrays), cast to the layer's dtype where needed; the layer built for its shape."""
        from minicnn import ops
        xs = list(x) if isinstance(x, (list, tuple)) else [x]
        xs = [a if isinstance(a, np.ndarray) and a.dtype == self.dtype else
              ops.cast(a, self.dtype) if isinstance(a, np.ndarray) else np.asarray(a, dtype=self.dtype) for a in xs]
        if not self.built:
            self.build([a.shape for a in xs] if isinstance(x, (list, tuple)) else xs[0].shape)
        return xs if isinstance(x, (list, tuple)) else xs[0]

    def add_weight(self, shape=None, initializer="glorot_uniform", dtype=None, trainable=True, name=None,
                   regularizer=None, **kwargs):
        """A weight of your own layer, as Keras's add_weight: a minicnn.tape.Variable (an array whose
        arithmetic the tape records), in params (trainable) or state. Returns it: self.w = ..."""
        shape = tuple(() if shape is None else shape)
        dtype = np.dtype(dtype or self.dtype)
        init = initializers.get(initializer if initializer is not None else "glorot_uniform")
        value = np.asarray(init(shape, dtype), dtype=dtype).view(tape.Variable)  # fans from the shape, as Keras
        key = name or f"w{len(self.params) + len(self.state)}"
        if key in self.params or key in self.state:
            raise ValueError(f"layer {self.name!r} already has a weight named {key!r}")
        (self.add_param if trainable else self.add_state)(key, value)
        if trainable and regularizer is not None:
            self.regularizers[key] = regularizers.get(regularizer)
        return value

    def add_loss(self, value):
        """A loss this call adds (an activity penalty written with minicnn.ops, as Keras's
        add_loss): model.losses lists it until the model's next outermost call, and fit's step
        (compute_loss) adds it to the loss."""
        self._added_losses = [*getattr(self, "_added_losses", []), value]

    @property
    def losses(self):
        """The losses add_loss added during the last call, this layer's and those it holds."""
        return [v for layer in self._all_layers() for v in getattr(layer, "_added_losses", [])]

    def _sublayers(self):
        """The layers this layer holds as attributes (a layer of your own made of others)."""
        found = []
        for name, v in vars(self).items():
            if name.startswith("_") or name in ("nodes", "activation"):
                continue
            for item in v.values() if isinstance(v, dict) else v if isinstance(v, (list, tuple)) else [v]:
                if isinstance(item, Layer) and item is not self:
                    found.append(item)
        return found

    def _all_layers(self):
        """This layer, then (for one differentiated by the tape) those it holds, depth first."""
        out = [self]
        if self.differentiated_by_tape():
            for sub in self._sublayers():
                out.extend(sub._all_layers())
        return out

    @property
    def trainable_weights(self):
        """The trainable param arrays themselves (what tape.gradient and the optimizer take)."""
        return [p for layer in self._all_layers() if layer.trainable for p in layer.params.values()]

    trainable_variables = trainable_weights

    @property
    def non_trainable_weights(self):
        return [w for layer in self._all_layers() for w in (layer.state.values() if layer.trainable
                                                            else layer.weight_dict().values())]

    @property
    def output(self):
        """The KerasTensor this layer made (its only call in a graph), as Keras's layer.output."""
        if len(self.nodes) != 1:
            raise AttributeError(f"layer {self.name!r} has {'no' if not self.nodes else 'several'} outputs in a "
                                 "graph: call it on Input(...) tensors once (or build the Sequential with "
                                 "an Input or input_shape=)")
        return self.nodes[0].output

    @property
    def input(self):
        """The KerasTensor(s) this layer read in its only call in a graph (a list for a merge layer),
        as Keras's layer.input; an InputLayer's input is its own output, as in Keras."""
        if not self.nodes:
            raise AttributeError(f"layer {self.name!r} has no input in a graph: call it on Input(...) tensors "
                                 "(or build the Sequential with an Input or input_shape=)")
        if len(self.nodes) != 1:
            raise AttributeError(f"layer {self.name!r} is called {len(self.nodes)} times: it has several inputs; "
                                 "read each call's from layer.nodes[k].inputs")
        node = self.nodes[0]
        if not node.inputs:
            return node.output
        return list(node.inputs) if node.many else node.inputs[0]

    def ensure_built(self, input_shape):
        """Build for input_shape (None, ...) unless built; check the shape if already built."""
        input_shape = (None, *input_shape[1:])
        if not self.built:
            self.build(input_shape)  # marks the layer built (see _marks_built)
        elif input_shape != self.input_shape:
            raise ValueError(f"layer {self.name!r} was built for inputs of shape {self.input_shape}, "
                             f"got {input_shape}")
        return self.compute_output_shape(input_shape)

    def to(self, device):
        """Move params, state and grads to device: "gpu" (CuPy) or "cpu". Returns the layer."""
        self.device = gpu.check_device(device)
        for store in (self.params, self.state, self.grads):
            for key, a in store.items():
                store[key] = gpu.move(a, self.device)
        self._cache = None
        return self

    def as_input(self, x):
        """x as this layer takes it: an array of its dtype, on its device, the layer built for
        x.shape (forward calls this first; so does a fused step that runs the layer's math)."""
        if not gpu.is_device_array(x):
            x = np.asarray(x)
        if x.dtype.kind not in "fiub":
            raise TypeError(f"layer {self.name!r} expects a numeric array, got dtype {x.dtype}")
        if x.dtype != self.dtype:
            x = x.astype(self.dtype)
        self.ensure_built(x.shape)
        if self.params and gpu.is_device_array(x) != (self.device == "gpu"):
            x = gpu.move(x, self.device)  # a layer with params takes its input to them
        return x

    def forget(self):
        """Drop what forward(training=True) saved for backward: a backward now is an error."""
        self._cache = None

    def _saved(self):
        if self._cache is None:
            raise RuntimeError(f"layer {self.name!r}: call forward(x, training=True) before backward(dy)")
        return self._cache

    def add_param(self, key, value):
        """A trainable weight: in params, with a zeroed grad of the same shape."""
        self.params[key] = value
        self.param_shapes[key] = tuple(value.shape)
        self.grads[key] = gpu.array_module(value).zeros_like(value)

    def add_state(self, key, value):
        """A non-trainable weight (e.g. a moving mean): in state, with no grad."""
        self.state[key] = value
        self.param_shapes[key] = tuple(value.shape)

    def regularize(self, kernel_regularizer=None, bias_regularizer=None):
        """Penalties on the kernel ("W") and bias ("b"), as Keras's kernel_regularizer= and
        bias_regularizer= (names such as "l2", or minicnn.regularizers objects)."""
        pairs = (("W", regularizers.get(kernel_regularizer)), ("b", regularizers.get(bias_regularizer)))
        self.regularizers = {k: r for k, r in pairs if r is not None}

    def regularizer_config(self):
        return {f"{'kernel' if k == 'W' else 'bias'}_regularizer": regularizers.serialize(r)
                for k, r in self.regularizers.items()}

    def weight_dict(self):
        """{key: array} of every weight: the params, then the state (Keras's order)."""
        return {**self.params, **self.state}

    @property
    def weights(self):
        """Keras's layer.weights: the weight arrays themselves (not copies), in get_weights' order."""
        return list(self.weight_dict().values())

    def get_weights(self):
        """Copies of the weights as NumPy arrays, in Keras order: the params (kernel, then bias),
        then the state."""
        return [np.array(gpu.to_host(w)) for w in self.weight_dict().values()]

    def set_weights(self, weights):
        """Load the weights from a list in get_weights' order; shapes must match exactly."""
        mine = self.weight_dict()
        if len(weights) != len(mine):
            raise ValueError(f"layer {self.name!r} has {len(mine)} weight arrays, got {len(weights)}")
        for (key, p), w in zip(mine.items(), weights):
            w = gpu.to_host(w)
            if w.shape != p.shape:
                raise ValueError(f"layer {self.name!r}: weight {key!r} has shape {p.shape}, got {w.shape}")
            p[...] = gpu.as_like(w, p)

    def count_params(self):
        """Every weight's size, trainable or not, as Keras counts."""
        return int(sum(w.size for w in self.weight_dict().values()))

    def __repr__(self):
        return f"<{type(self).__name__} {self.name!r}>"


Layer.build = _marks_built(Layer.build)  # a layer without params of its own is built the same way
Layer.forward = _recorded(Layer.forward)
