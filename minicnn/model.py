"""Model: the core every model shares, and Keras's functional model (minicnn.Model).

As in Keras 3, the training loop is its own piece (minicnn/training.py, the Trainer that Model
inherits), and Sequential (minicnn/sequential.py) is a special case of Model: what it adds is
`add` and how its layers are chained. A model's public core is what the loop, the trace and the
gradient checks use:

    p = model.forward(x, training=True)    # x: (N, ...) -> p: (N, K), layer by layer
    model.backward(y, p)                   # fills every layer's grads for the batch's mean loss
    loss, p = model.train_step(x, y)       # forward, backward and one optimizer step
"""
import warnings
from collections import Counter

import numpy as np

from minicnn import backend, fusion, gpu, registry, saving, summary, tape
from minicnn import metrics as metrics_module
from minicnn.layers import base
from minicnn.layers.base import Layer
from minicnn.layers.core import Activation
from minicnn.layers.input_layer import InputLayer
from minicnn.layers.symbolic import KerasTensor, Node, is_symbolic
from minicnn.legacy import Keras2Methods
from minicnn.model_layer import ModelLayer
from minicnn.optimizers import NonFiniteError, all_finite
from minicnn.training import Trainer
from minicnn.utils import Tensor


@registry.register_serializable()
class Model(Keras2Methods, Trainer):
    """A model: layers, their weights, the forward and backward passes and one training step;
    compile / fit / evaluate / predict come from minicnn.training.Trainer.

    Model(inputs, outputs) is Keras's functional model: any graph without cycles from one or more
    Inputs to one or more outputs (lists or dicts of them: minicnn/multi_io.py), described by
    calling layers on KerasTensors:

        inputs = Input(shape=(28, 28, 1))
        x = Conv2D(32, 3, padding="same", activation="relu")(inputs)
        y = Conv2D(32, 3, padding="same")(x)
        x = ReLU()(Add()([x, y]))                  # a residual connection: x is used twice
        outputs = Dense(10, activation="softmax")(Flatten()(x))
        model = Model(inputs, outputs)

    forward runs the calls (Nodes) in topological order; backward walks them in reverse, and
    where a tensor fed several calls, adds up (+=) the gradients that come back from each:
    micrograd's backward, with layers for scalars (docs/functional.md). Sequential is the
    special case of a chain.

    Args:
        inputs (KerasTensor | list | dict | None): the graph's Input(s). Defaults to None (a subclass or
            Sequential).
        outputs (KerasTensor | list | dict | None): the tensor(s) it computes, each named by the layer
            that makes it (a dict's keys). Defaults to None.
        name (str): the model's name. Defaults to "functional", "functional_1", ... (Keras's).
    """

    chain = False  # a graph; Sequential's layers form a chain

    def __init__(self, inputs=None, outputs=None, name=None, **kwargs):
        # a model of your own: a subclass described by its attributes and call, not by Input tensors
        self._subclassed = inputs is None and outputs is None and not type(self).chain and type(self) is not Model
        # unique names, as Keras gives them ("functional", "functional_1"): one model may hold several
        self.name = name or base._unique_name(type(self).__name__ if self._subclassed else "Functional")
        self._trainable = bool(kwargs.pop("trainable", True))
        if kwargs:
            raise TypeError(f"unexpected arguments {sorted(kwargs)} for {type(self).__name__}")
        if self._subclassed:
            self.chain = True  # its summary lists the layers in the order they were assigned
            self._input_shape = None
        self._layers = []
        self.optimizer = None
        self.loss = None
        self.compiled, self.compiled_metrics, self.metric_objects = False, [], []
        self._loss_tracker = metrics_module.Mean(name="loss")
        self.stop_training = False
        self.history = None
        self._output_shape = None
        self.inputs, self.outputs, self._nodes, self._many_outputs = None, None, None, False
        self._input_dict = self._output_dict = False
        if inputs is not None or outputs is not None:
            self._connect(inputs, outputs)

    def _connect(self, inputs, outputs):
        """Find the Nodes between inputs and outputs, in topological order."""
        self._many_outputs = isinstance(outputs, (list, tuple, dict))
        self._output_dict = isinstance(outputs, dict)
        self._input_dict = isinstance(inputs, dict)
        self.inputs = list(inputs.values()) if self._input_dict else \
            list(inputs) if isinstance(inputs, (list, tuple)) else [inputs]
        self.outputs = list(outputs.values()) if isinstance(outputs, dict) else \
            list(outputs) if self._many_outputs else [outputs]
        if not self.inputs or not all(isinstance(t, KerasTensor) for t in self.inputs + self.outputs):
            raise ValueError("Model(inputs, outputs) takes Input(...) tensors (one, a list or a dict) and one or more "
                             "tensors made from them by calling layers")
        not_inputs = [t for t in self.inputs if t.node.inputs]
        if not_inputs:
            raise ValueError(f"the model's inputs must be Input(...) tensors; {not_inputs[0]} is made by a layer")
        # Keras's names: an input by its Input's name (a dict's key), an output by the layer that makes it
        self.input_names = list(inputs) if self._input_dict else [t.node.layer.name for t in self.inputs]
        self.output_names = list(outputs) if isinstance(outputs, dict) else [t.node.layer.name for t in self.outputs]
        order, seen = [], set()

        def visit(node):  # depth first: a node comes after every node it reads from
            if id(node) in seen:
                return
            seen.add(id(node))
            for t in node.inputs:
                visit(t.node)
            order.append(node)

        for t in self.outputs:
            visit(t.node)
        given = [t.node for t in self.inputs]
        stray = [n for n in order if not n.inputs and all(n is not g for g in given)]
        if stray:
            raise ValueError(f"the outputs depend on the input {stray[0].output}, which is not one of the model's "
                             f"inputs {self.inputs}: list every Input the outputs need in inputs=")
        self._nodes = [n for n in order if n.inputs]
        self.layers = list({id(n.layer): n.layer for n in self._nodes}.values())
        names = [layer.name for layer in self.layers]
        if len(set(names)) != len(names):
            raise ValueError(f"the layer names of a model must be unique, got {sorted(names)}")
        shapes = [t.shape for t in self.outputs]
        self._output_shape = shapes if self._many_outputs else shapes[0]
        # dL/d(data) is never needed, nor through layers that only prepare the data (augmentation)
        data = {id(t) for t in self.inputs}
        for node in self._nodes:
            if node.layer.data_only and all(id(t) in data for t in node.inputs):
                data.add(id(node.output))
        for layer in self.layers:
            layer.input_grad = not all(id(t) in data for n in layer.nodes for t in n.inputs)

    # -- a model of your own: class MyModel(minicnn.Model) with layers as attributes and a call ----
    def call(self, inputs, training=None):
        """The outputs for inputs; a model of your own overrides this, its layers set as attributes
        (alone, or in lists and dicts) in __init__."""
        if self._subclassed:
            raise NotImplementedError(f"model {self.name!r} has no call(self, inputs, training=None): write one "
                                      "to call the model (a model whose train_step does everything needs none)")
        return self.forward(inputs, bool(training))

    @property
    def metrics(self):
        """Keras's model.metrics: the loss tracker ("loss", a metrics.Mean), then the compiled
        metrics. fit and evaluate reset them at each start; a model of your own may override this
        property to list the trackers its train_step updates."""
        return [self._loss_tracker, *self.metric_objects] if self.compiled else []

    metrics.fget.builtin = True  # metrics_names tells this one from a metrics property of your own

    def compute_metrics(self, x, y, y_pred, sample_weight=None):
        """Update the compiled metrics with a batch; returns every metric's result, as Keras."""
        for m in self.metric_objects:
            m.update_state(y, y_pred, sample_weight)
        return {m.name: m.result() for m in self.metrics}

    def get_metrics_result(self):
        return {m.name: m.result() for m in self.metrics}

    @property
    def layers(self):
        """The layers whose weights this model holds, in the order they were assigned (for a model
        of your own: its attributes, with the layers of models and of layers of your own it holds)."""
        if not getattr(self, "_subclassed", False):
            return self._layers
        found = {}
        for name, v in vars(self).items():
            if name.startswith("_") or name in ("optimizer", "loss", "history", "inputs", "outputs"):
                continue
            for item in v.values() if isinstance(v, dict) else v if isinstance(v, (list, tuple)) else [v]:
                inner = item.layers if isinstance(item, Model) else item._all_layers() if isinstance(item, Layer) else []
                found.update((id(layer), layer) for layer in inner)
        return list(found.values())

    @layers.setter
    def layers(self, value):
        self._layers = value

    @property
    def trainable(self):
        """Whether an optimizer step changes this model's weights: read at every step, as Keras 3
        reads it. Setting it sets every layer's flag (Keras's setter), so the classic GAN's
        `discriminator.trainable = False` freezes the discriminator in every model that holds it,
        its own train_on_batch included, until it is set back to True."""
        return self._trainable

    @trainable.setter
    def trainable(self, value):
        self._trainable = bool(value)
        for layer in self.layers:
            layer.trainable = self._trainable

    @property
    def trainable_weights(self):
        """The trainable param arrays themselves, layer by layer (what tape.gradient and the
        optimizer take: updated in place, so the model sees each step)."""
        return [p for layer in self.layers if layer.trainable for p in layer.params.values()]

    trainable_variables = trainable_weights

    @property
    def non_trainable_weights(self):
        return [w for layer in self.layers for w in (layer.state.values() if layer.trainable
                                                     else layer.weight_dict().values())]

    @property
    def losses(self):
        """The losses the layers added (add_loss) during the model's last call."""
        return [v for layer in self.layers for v in getattr(layer, "_added_losses", [])]

    @property
    def weights(self):
        """Keras's model.weights: every weight array itself (not a copy), in get_weights' order."""
        return [w for layer in self.layers for w in layer.weight_dict().values()]

    def _call_subclassed(self, x, training):
        """call(x) with training as the layers' default flag; the model built by the first call."""
        outer, base._training[0] = base._training[0], bool(training)
        try:
            y = self.call(x, training=bool(training)) if "training" in _parameters(type(self).call) else self.call(x)
        finally:
            base._training[0] = outer
        if self._output_shape is None:
            first = x[0] if isinstance(x, (list, tuple)) else x
            self._input_shape = (None, *np.shape(first)[1:])
            shapes = [(None, *np.shape(a)[1:]) for a in (y if isinstance(y, (list, tuple)) else [y])]
            self._output_shape = shapes if isinstance(y, (list, tuple)) else shapes[0]
        return y

    # -- shape and place ----------------------------------------------------------------------
    @property
    def built(self):
        return self._output_shape is not None

    @property
    def input_shape(self):
        if self._subclassed:
            return self._input_shape
        if self.inputs is not None:
            shapes = [t.shape for t in self.inputs]
            return shapes if len(shapes) > 1 or self._input_dict else shapes[0]
        return self.layers[0].input_shape if self.layers and self.layers[0].built else None

    def build(self, input_shape):
        """A functional model is built when it is described; check the shape it is given. A model
        of your own is built by calling it once on zeros of that shape (batch of one)."""
        if self._subclassed:
            if not self.built:
                dtype = self.layers[0].dtype if self.layers else np.float32
                self._call_subclassed(np.zeros((1, *tuple(input_shape)[1:]), dtype=dtype), False)
            return
        if self.multi_io:
            return
        if self.input_shape is None or (None, *input_shape[1:]) != self.input_shape:
            raise ValueError(f"the model takes inputs of shape {self.input_shape}, got {tuple(input_shape)}")

    @property
    def output_shape(self):
        return self._output_shape

    @property
    def device(self):
        """Where the params live: "cpu", or "gpu" after model.to("gpu") or under MINICNN_BACKEND=cupy."""
        return self.layers[0].device if self.layers else "cpu"

    def to(self, device):
        """Move every param, state array, grad and the optimizer's state to device ("gpu" or
        "cpu"); returns the model. Batches then move to the device one at a time; predict and
        evaluate still return NumPy values, and save, load and the pictures work from either."""
        device = gpu.check_device(device)
        for layer in self.layers:
            layer.to(device)
        opt = self.optimizer
        if opt is not None and opt.slots is not None:
            opt.slots = [{k: gpu.move(v, device) for k, v in slots.items()} for slots in opt.slots]
        return self

    # -- the passes ----------------------------------------------------------------------------
    def execution_plan(self):
        """The Nodes forward runs: the graph's own, in topological order, except that a chain
        Conv2D -> ReLU -> MaxPooling2D (or Conv2D -> BatchNormalization -> ReLU) that nothing else
        reads into becomes one fused step where the kernels have one (minicnn/fusion.py), as in a
        Sequential, and so does BatchNormalization -> Add -> ReLU, a residual block's end."""
        kernels = backend.kernels() if self.device == "cpu" else None
        key = (backend.get_backend(), self.device)
        if getattr(self, "_plan_key", None) != key:
            self._plan, self._plan_key = self._fused(kernels), key
        return self._plan

    def _fused(self, kernels):
        nodes = self._nodes
        if kernels is None:
            return list(nodes)
        readers = Counter(id(t) for n in nodes for t in n.inputs) + Counter(id(t) for t in self.outputs)
        calls = Counter(id(n.layer) for n in nodes)
        ends = fusion.residual_ends(nodes, readers, calls, kernels)  # BatchNormalization -> Add -> ReLU
        taken = {id(n) for _, bn, relu in ends.values() for n in (bn, relu)}  # they run inside the Add's step
        plan, i = [], 0
        while i < len(nodes):
            if id(nodes[i]) in taken or id(nodes[i]) in ends:
                if id(nodes[i]) in ends:
                    plan.append(ends[id(nodes[i])][0])
                i += 1
                continue
            chain = nodes[i:i + 4]
            fused, n = fusion.step_at([c.layer for c in chain], 0, kernels)
            private = all(calls[id(c.layer)] == 1 and id(c) not in taken for c in chain[:n]) and all(
                chain[k].inputs == [chain[k - 1].output] and readers[id(chain[k - 1].output)] == 1 for k in range(1, n))
            if n and private:  # the intermediate maps are read by the chain alone: fuse it
                step = Node(fused, chain[0].inputs)
                step.output = chain[n - 1].output
                plan.append(step)
                i += n
            else:
                plan.append(nodes[i])
                i += 1
        return plan

    @property
    def nodes(self):
        """The graph's calls (Nodes) in topological order, one per layer call, unfused."""
        return list(self._nodes)

    def forward(self, x, training=False, steps=None, watch=None):
        """x: (N, ...) -> the outputs (N, ...) (a list for several), every call of the graph in
        topological order. training=True keeps what backward needs (and makes Dropout train).
        steps: the Nodes to run (default: execution_plan()); watch(node, run) -> run() lets a
        caller time or inspect each step (model.trace does). Under a GradientTape the layers run
        one by one (unfused), each call recorded with what it saved for its backward."""
        if self._subclassed:
            return self._call_subclassed(x, training)
        if steps is None and tape.recording():
            steps = self._nodes
        xs = self._input_list(x)
        if self.device == "gpu":  # a layer without params leaves arrays where they are: a
            xs = [gpu.to_device(a) for a in xs]  # branch of those could meet a device branch on the host
        values = dict(zip(map(id, self.inputs), xs))
        for node in steps or self.execution_plan():
            args = [values[id(t)] for t in node.inputs]

            def run(node=node, args=args):
                return node.layer.forward(args if node.many else args[0], training)
            values[id(node.output)] = watch(node, run) if watch else run()
            node.cache = node.layer._cache  # a layer called twice keeps one cache per call
        outputs = [values[id(t)] for t in self.outputs]
        return outputs if self._many_outputs else outputs[0]

    def _input_list(self, x):
        """x as one array per input, in the order of self.inputs (a list, or a dict keyed by input name)."""
        if len(self.inputs) == 1 and not isinstance(x, (list, tuple, dict)):
            return [x]
        if isinstance(x, dict):
            missing = [n for n in self.input_names if n not in x]
            if missing:
                raise ValueError(f"x gives no array for the inputs {missing}; the model's inputs are {self.input_names}")
            return [x[n] for n in self.input_names]
        if not isinstance(x, (list, tuple)) or len(x) != len(self.inputs):
            raise ValueError(f"the model has {len(self.inputs)} inputs {self.input_names}: give x as a list of "
                             f"{len(self.inputs)} arrays or a dict keyed by input name")
        return list(x)

    def loss_gradient(self, y, p, sample_weight=None):
        """(dy, n): the gradient of the batch's mean loss to send into layers[n - 1].backward.
        A final softmax with a cross-entropy gives dL/dlogits = (p - y) / N, exact and stable:
        then the softmax layer's own (general) backward is skipped, n = len(layers) - 1."""
        y = gpu.as_like(y, p)  # the targets go where the outputs are
        if sample_weight is not None:
            sample_weight = gpu.as_like(sample_weight, p)
        last = self.layers[-1]
        if self.loss.softmax_gradient is not None and isinstance(last, Activation) and last.activation == "softmax" \
                and not last.options:  # over the last axis
            dy, n = self.loss.softmax_gradient(y, p), len(self.layers) - 1
        else:
            dy, n = self.loss.gradient(y, p), len(self.layers)
        if sample_weight is not None:  # each row of the gradient belongs to one sample's loss
            dy = dy * sample_weight.reshape(-1, *[1] * (dy.ndim - 1)).astype(dy.dtype)
        return dy, n

    def backward(self, y, p, sample_weight=None):
        """Backpropagate the batch's mean loss from p = forward(x, training=True): each call in
        reverse topological order gets the gradient of its output, and sends one to each tensor
        it read, where gradients from several readers add up. Fills every layer's grads (summed
        over its calls); returns dL/dx (None when the first layers skip it). sample_weight (N,):
        each sample's loss weighted (its gradient row scaled), as Keras weights them."""
        dy, n = self.loss_gradient(y, p, sample_weight)
        return self.backpropagate(dy, skip_last=n < len(self.layers))

    def backpropagate(self, dy, skip_last=False, steps=None, watch=None):
        """From dy = dL/d(output) (or, with skip_last, dL/d(the last layer's input): the softmax
        shortcut) back to the input; fills every layer's grads and returns dL/dx. steps and watch
        as for forward (the same steps as the forward pass that came before). The walk is the
        tape's (minicnn.tape.walk): each call a record, in reverse, gradients added up where a
        tensor fed several calls and where a layer was called several times."""
        if self._many_outputs:
            raise ValueError("a model of several outputs backpropagates with backpropagate_outputs(dys)")
        out = self.outputs[0].node
        steps = [node for node in steps or self.execution_plan() if not (skip_last and node is out)]
        records = [self._record(node, node.inputs, node.output, node, watch) for node in steps]
        grads = tape.walk(records, {id(out.inputs[0] if skip_last else out.output): dy})
        self._store_grads(grads)
        return grads.get(id(self.inputs[0]))

    def backpropagate_outputs(self, dys):
        """From dys (dL/d(each output), None for an output without a loss) back to the inputs; fills
        every layer's grads, returns dL/d(each input) (None where skipped). Several outputs are
        several starting points of the same walk: where two outputs share a layer, its gradients add."""
        seeds = {}
        for t, dy in zip(self.outputs, dys):
            if dy is not None:
                seeds[id(t)] = seeds[id(t)] + dy if id(t) in seeds else dy
        records = [self._record(node, node.inputs, node.output, node) for node in self.execution_plan()]
        grads = tape.walk(records, seeds)
        self._store_grads(grads)
        return [grads.get(id(t)) for t in self.inputs]

    def _record(self, step, inputs, output, node=None, watch=None):
        """One call of the forward pass just run, as a tape record: its inputs are the tensors it
        read and the params of its layers (several for a fused step), so that the walk adds up
        each param's gradient over the calls of its layer. node: the graph's call, whose saved
        values go back on the layer before its backward (a layer called twice saved twice)."""
        layer = step.layer if node is not None else step
        owners = layer.layers if isinstance(layer, fusion.FusedStep) else [layer]
        params = [(owner, k) for owner in owners for k in owner.params]
        many = node is not None and node.many

        def backward(dy):
            if node is not None:
                layer._cache = node.cache
            dx = watch(node, lambda: layer.backward(dy)) if watch else layer.backward(dy)
            return [*(dx if many else [dx]), *(owner.grads[k] for owner, k in params)]
        return tape.Record(getattr(layer, "name", type(layer).__name__), [*inputs, *(o.params[k] for o, k in params)],
                           output, backward, f"{type(layer).__name__}.backward")

    def _store_grads(self, grads):
        """Each layer's grads from the walk's (summed over its calls); zeros for a param no
        gradient reached (a branch to no output)."""
        for layer in self.layers:
            for k, p in layer.params.items():
                g = grads.get(id(p))
                layer.grads[k] = g if g is not None else layer.grads[k] * 0

    def regularization_loss(self):
        """The sum of every weight penalty (kernel_regularizer=...): part of the loss fit and
        evaluate report, as in Keras."""
        return sum(r(layer.params[k]) for layer in self.layers for k, r in layer.regularizers.items())

    def _add_penalties(self):
        """Add each penalty's gradient to its weight's; returns the penalties' sum."""
        for layer in self.layers:
            for k, r in layer.regularizers.items():
                layer.grads[k] = layer.grads[k] + r.gradient(layer.params[k])
        return self.regularization_loss()

    def grads_and_params(self):
        """(grad, param) pairs of every trainable param, in a fixed order (never the state)."""
        return [(layer.grads[k], layer.params[k]) for layer in self.layers if layer.trainable
                for k in layer.params]

    def train_step(self, x, y, sample_weight=None):
        """One optimizer step on a checked batch: forward, loss, backward, update. Returns
        (mean loss, outputs p). All or nothing: NonFiniteError and no change on NaN or Inf;
        the layers' state (moving statistics, moved by the forward pass) included."""
        kept = [(layer.state, {k: v.copy() for k, v in layer.state.items()}) for layer in self.layers if layer.state]
        applied = self.optimizer.iterations
        try:
            return self._step(x, y, sample_weight)
        except BaseException:  # a refused step, or Ctrl-C before the update: the state goes back too
            if self.optimizer.iterations == applied:
                for state, old in kept:
                    for k, v in old.items():
                        state[k][...] = v
            raise

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        """The compiled loss of y_pred against y (its batch mean, sample_weight (N,) weighting each
        sample), plus every weight penalty: recorded on an active tape, as Keras's compute_loss."""
        loss = self.loss(y, y_pred, sample_weight=sample_weight)
        for added in self.losses:  # add_loss's, from the call that made y_pred
            loss = loss + added
        pairs = [(layer.params[k], r) for layer in self.layers for k, r in layer.regularizers.items()]
        if pairs:
            params = [p for p, _ in pairs]
            penalty = tape.record("regularization", params, np.asarray(sum(r(p) for p, r in pairs), dtype=loss.dtype),
                                  lambda dy: [dy * r.gradient(p) for p, r in pairs], "regularizers' gradient")
            loss = loss + penalty
        return loss

    def _tape_step(self, x, y, sample_weight=None):
        """A training step through the tape (a model of your own): forward and loss recorded,
        tape.gradient for every trainable weight, one optimizer step."""
        with tape.GradientTape() as t:
            p = self(x, training=True)
            loss = self.compute_loss(x, y, p, sample_weight)
        variables = self.trainable_variables
        grads = t.gradient(loss, variables)
        value = float(loss)
        if not np.isfinite(value):
            raise NonFiniteError(f"the loss is {value} (the model's outputs hold NaN or Inf); the step was not applied")
        # a weight the loss does not reach gets a zero gradient: the optimizer's state keeps its order
        grads = [np.zeros_like(np.asarray(v)) if g is None else g for g, v in zip(grads, variables)]
        if not all_finite(*grads):
            i = next(i for i, g in enumerate(grads) if not all_finite(g))
            raise NonFiniteError(f"the gradient of weight {i} (shape {grads[i].shape}) holds NaN or Inf; "
                                 "the step was not applied")
        if variables:
            self.optimizer.apply_gradients(zip(grads, variables))
        else:
            _warn_frozen()
        return value, tape.plain(p)

    train_step.builtin_step = True  # fit's own step; a subclass's train_step(data) replaces it

    def _step(self, x, y, sample_weight=None):
        if self._subclassed:
            return self._tape_step(x, y, sample_weight)
        if self.multi_io:
            return self._multi_step(x, y, sample_weight)
        p = self.forward(x, training=True)
        if not getattr(self, "_outputs_checked", False):
            self._outputs_checked = True
            _warn_if_not_probabilities(self.loss, p)
        y = gpu.as_like(y, p)  # the targets go where the outputs are
        w = None if sample_weight is None else gpu.as_like(sample_weight, p)
        per_sample = self.loss.fn(y, p).reshape(len(p), -1).mean(axis=1)  # (N, H, W) for maps: one per sample
        loss = float((per_sample if w is None else per_sample * w).mean())
        if not np.isfinite(loss):
            raise NonFiniteError(f"the loss is {loss} (the model's outputs hold NaN or Inf); the step was not applied")
        self.backward(y, p, w)
        loss += self._add_penalties()
        self._update()
        return loss, p

    def _update(self):
        """One optimizer step from the layers' grads, checked first; none for a model with no
        trainable weight (frozen: trainable=False), with Keras's warning."""
        pairs = self.grads_and_params()
        if not pairs:
            _warn_frozen()
            return
        if not all_finite(*(g for g, _ in pairs)):  # one check (one device sync on a GPU) for all
            layer, key = next((layer, k) for layer in self.layers if layer.trainable
                              for k in layer.params if not all_finite(layer.grads[k]))
            raise NonFiniteError(f"the gradient of layer {layer.name!r} weight {key!r} holds NaN or Inf; "
                                 "the step was not applied")
        self.optimizer.apply_gradients(pairs)

    @property
    def multi_io(self):
        """True for a functional model of several inputs or several outputs (minicnn/multi_io.py)."""
        return self.inputs is not None and not self.chain and (len(self.inputs) > 1 or self._many_outputs)

    def _multi_step(self, xs, ys, ws):
        """_step for several inputs or outputs: ys and ws one per output (lists); the loss is the
        sum of loss_weight * each output's loss. Returns ((total, [each output's loss]), outputs)."""
        ps = self.forward(xs, training=True)
        ps = ps if self._many_outputs else [ps]
        self._ran_step = True  # each output's loss is now one of Keras's metrics_names
        ys = [None if y is None else gpu.as_like(y, p) for y, p in zip(ys, ps)]
        ws = [None if w is None else gpu.as_like(w, p) for w, p in zip(ws, ps)]
        compiled = self.compiled_outputs
        loss, each = compiled.losses_of(ys, ps, ws)
        if not np.isfinite(loss):
            raise NonFiniteError(f"the loss is {loss} (the model's outputs hold NaN or Inf); the step was not applied")
        self.backpropagate_outputs(compiled.gradients(ys, ps, ws))
        loss += self._add_penalties()
        self._update()
        return (loss, each), ps

    # -- weights -------------------------------------------------------------------------------
    def count_params(self):
        """Every weight, trainable or not (Keras's count)."""
        return sum(layer.count_params() for layer in self.layers)

    def get_weights(self):
        """Copies of every weight as NumPy arrays: layer by layer, each layer's params then
        its state (Keras's order: BatchNormalization's gamma, beta, moving_mean, moving_variance)."""
        return [w for layer in self.layers for w in layer.get_weights()]

    def set_weights(self, weights):
        weights = list(weights)
        expected = sum(len(layer.get_weights()) for layer in self.layers)
        if len(weights) != expected:
            raise ValueError(f"the model has {expected} weight arrays, got {len(weights)}")
        for layer in self.layers:
            k = len(layer.params) + len(layer.state)
            layer.set_weights(weights[:k])
            weights = weights[k:]

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

    def to_json(self, **kwargs):
        """The architecture as a JSON string (no weights), as Keras: minicnn.models.model_from_json
        makes the model again; kwargs go to json.dumps (indent=2, ...)."""
        return saving.to_json(self, **kwargs)

    def get_config(self):
        """The graph as plain JSON values: the layers, each call (Node) as the layer's name and the
        tensors it reads, each tensor named [layer name, k] (the k-th call of that layer), the
        input as ["__input__", 0]. from_config calls the layers again in the same order."""
        if self._subclassed:
            raise NotImplementedError(f"model {self.name!r} is a model of your own (its call is Python code, not a "
                                      "graph): save its weights with save_weights, and make it again with its class "
                                      "before load_weights")
        names = {id(t): ["__input__", k] for k, t in enumerate(self.inputs)}
        calls, nodes = {}, []
        for node in self._nodes:
            k = calls[node.layer.name] = calls.get(node.layer.name, -1) + 1
            nodes.append({"layer": node.layer.name, "inputs": [names[id(t)] for t in node.inputs], "many": node.many})
            names[id(node.output)] = [node.layer.name, k]
        config = {"name": self.name, "input_shape": list(self.inputs[0].shape[1:]),
                  "layers": [registry.serialize(layer) for layer in self.layers], "nodes": nodes,
                  "outputs": [names[id(t)] for t in self.outputs], "many_outputs": self._many_outputs}
        if len(self.inputs) > 1 or self._input_dict:
            config["inputs"] = [{"name": name, "shape": list(t.shape[1:]), "dtype": t.node.layer.dtype.name}
                                for name, t in zip(self.input_names, self.inputs)]
            config["input_dict"] = self._input_dict
        if self._output_dict:
            config["output_names"] = self.output_names
        return config

    @classmethod
    def from_config(cls, config, custom_objects=None):
        """The model get_config described: its layers made anew and called as they were."""
        layers = {spec["config"]["name"]: registry.deserialize(spec, custom_objects) for spec in config["layers"]}
        specs = config.get("inputs") or [{"shape": config["input_shape"]}]
        inputs = [InputLayer(shape=spec["shape"], dtype=spec.get("dtype"), name=spec.get("name")).output
                  for spec in specs]
        tensors, calls = {("__input__", k): t for k, t in enumerate(inputs)}, {}
        for node in config["nodes"]:
            args = [tensors[tuple(ref)] for ref in node["inputs"]]
            k = calls[node["layer"]] = calls.get(node["layer"], -1) + 1
            tensors[(node["layer"], k)] = layers[node["layer"]](args if node["many"] else args[0])
        outputs = [tensors[tuple(ref)] for ref in config["outputs"]]
        if config.get("output_names"):
            outputs = dict(zip(config["output_names"], outputs))
        inputs = dict(zip([spec["name"] for spec in specs], inputs)) if config.get("input_dict") else \
            inputs if len(inputs) > 1 else inputs[0]
        return cls(inputs, outputs if config["many_outputs"] else outputs[0], name=config["name"])

    # -- Keras conveniences -----------------------------------------------------------------------
    def __call__(self, x, training=None, **kwargs):
        """model(x) on an array: the outputs for x: (N, ...), as forward (no batching, no checks
        beyond the first layer's); on the CPU a NumPy array that also has TensorFlow's .numpy().
        training=None takes the flag of the model call it runs in (False outside one), as Keras."""
        if is_symbolic(x):  # a model used as a layer of a functional model
            return self.as_layer()(x)
        if training is None:
            training = bool(base._training[0])
        if kwargs and self._subclassed:
            return self.call(x, training=training, **kwargs)
        outer, base._training[0] = base._training[0], training
        if outer is None:  # the outermost call: the losses of add_loss start again, as Keras
            for layer in self.layers:
                layer._added_losses = []
        try:
            y = self.forward(x, training)
        finally:
            base._training[0] = outer
        if self._output_dict:  # Model(outputs={name: tensor}) gives a dict, as Keras
            return dict(zip(self.output_names, y))
        return y.view(Tensor) if type(y) is np.ndarray else y

    def as_layer(self):
        """This model as one layer of another (made once: its weights are the model's own)."""
        if getattr(self, "_layer", None) is None:
            self._layer = ModelLayer(self)
        return self._layer

    def _reads_input(self, layer):
        return (self.layers and layer is self.layers[0]) if self.chain else \
            any(t is i for n in layer.nodes for t in n.inputs for i in self.inputs)

    def get_layer(self, name=None, index=None):
        """The layer called name, or at position index (as Keras: give one of the two)."""
        if (name is None) == (index is None):
            raise ValueError("get_layer needs a name or an index (one of the two)")
        if index is not None:
            if not -len(self.layers) <= index < len(self.layers):
                raise ValueError(f"index {index} is out of range: the model has {len(self.layers)} layers")
            return self.layers[index]
        for layer in self.layers:
            if layer.name == name:
                return layer
        raise ValueError(f"no layer named {name!r}; the layers are: {', '.join(l.name for l in self.layers)}")

    # -- inspection -----------------------------------------------------------------------------
    def trace(self, x, y=None, keep=False, warmup=True):
        """Run one batch forward (and backward when y is given) and report per layer: shapes,
        activation statistics, milliseconds, gradient norms, multiply-adds. See minicnn.tracing."""
        from minicnn.tracing import trace
        return trace(self, x, y, keep, warmup)

    def summary(self, line_length=None, positions=None, print_fn=print, **kwargs):
        """Keras's table (layer, output shape, params, and for a graph the layers each one reads:
        "Connected to") plus multiply-adds per image. line_length sets the width of the rules
        (as Keras); positions and Keras's other options are accepted. See minicnn.summary."""
        summary.summary(self, line_length, positions, print_fn, **kwargs)


def _parameters(fn):
    import inspect
    return inspect.signature(fn).parameters


def _warn_frozen():
    warnings.warn("The model does not have any trainable weights (its trainable is False, or every layer's): "
                  "the step changed no weight", stacklevel=5)


def _warn_if_not_probabilities(loss, p):
    """Warn (once per model) when a loss that expects probabilities gets outputs that cannot be:
    a Dense(10) without softmax trained with "sparse_categorical_crossentropy" learns badly."""
    if loss.from_logits or loss.softmax_gradient is None:  # logits expected, or not a cross-entropy
        return
    p = gpu.to_host(p)
    if p.min() < 0 or p.max() > 1 or not np.allclose(p.sum(axis=-1), 1, atol=1e-3):
        fix = "SparseCategoricalCrossentropy" if loss.sparse else "CategoricalCrossentropy"
        warnings.warn(f"the loss {loss.name!r} expects probabilities, but the model's outputs range over "
                      f"[{p.min():.3g}, {p.max():.3g}] and do not sum to 1: end the model with "
                      f"Activation('softmax'), or compile with loss=minicnn.losses.{fix}(from_logits=True)",
                      stacklevel=4)
