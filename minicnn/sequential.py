"""Sequential: a linear stack of layers, the special case of Model whose layers form a chain,
run as a plan of steps (Conv2D -> ReLU -> MaxPooling2D fused where the kernels allow)."""
import numpy as np

from minicnn import backend, fusion, gpu, registry, tape
from minicnn.layers import base
from minicnn.layers.base import Layer
from minicnn.layers.input_layer import InputLayer
from minicnn.layers.symbolic import KerasTensor
from minicnn.model import Model


@registry.register_serializable()
class Sequential(Model):
    """A linear stack of layers. x: (N, *input_shape) -> y: (N, *output_shape).

    Sequential([Conv2D(...), ...]) or Sequential() then add(layer). The model is built, and
    every layer's params created, as soon as the input shape is known: from the first
    layer's input_shape=, or from the first batch given to fit / evaluate / predict.

    Args:
        layers (list | None): the layers, first to last (an Input may come first). Defaults to None (add
            them later).
        name (str): the model's name. Defaults to "sequential", then "sequential_1", ... (unique, as
            Keras names them, so that two Sequentials can sit in one model: a GAN's generator and
            discriminator).
    """

    chain = True  # each layer reads the one before

    def __init__(self, layers=None, name=None):
        super().__init__(name=name or base._unique_name("Sequential"))
        self._nodes = []  # its layers' calls on KerasTensors, once the input shape is known
        self._input = None  # the InputLayer given first, if any: it sets the input shape
        for layer in layers or ():
            self.add(layer)

    def _trace(self, layers):
        """Call layers on the model's KerasTensors, so that layer.output exists (as in Keras 2) and
        Model(inputs=model.inputs, outputs=[l.output for l in model.layers]) can be built."""
        if self.inputs is None:
            self._input = self._input or InputLayer(batch_shape=self.layers[0].input_shape)
            self.inputs = [self._input.output]
            self.outputs = [self.inputs[0]]
            layers = self.layers
        for layer in layers:
            self.outputs = [layer(self.outputs[0])]
            self._nodes.append(self.outputs[0].node)


    def add(self, layer):
        """Append a layer (or, first of all, an Input(shape) that fixes the input shape)."""
        if isinstance(layer, KerasTensor):
            layer = layer.layer
        if isinstance(layer, Model):  # a model used as a layer: Sequential([model, Softmax()])
            layer = layer.as_layer()
        if not isinstance(layer, Layer):
            raise TypeError(f"Sequential.add expects a minicnn layer, got {layer!r}")
        if isinstance(layer, InputLayer):
            if self.layers or self._input is not None:
                raise ValueError("an Input can only come first in a Sequential model")
            self._input = layer  # not one of model.layers, as in Keras
            return
        self.layers.append(layer)
        # dL/d(data) is never needed, nor through layers that only prepare the data: the first
        # layer after them may skip computing its dL/dx
        layer.input_grad = not all(earlier.data_only for earlier in self.layers[:-1])
        if len(self.layers) == 1:
            shape = layer.input_shape if layer.input_shape is not None else getattr(self._input, "input_shape", None)
            if shape is not None:
                self._output_shape = layer.ensure_built(shape)
                self._trace([layer])
        elif self._output_shape is not None:
            self._output_shape = layer.ensure_built(self._output_shape)
            self._trace([layer])

    def build(self, input_shape):
        """Build every layer for inputs of input_shape (None, ...)."""
        if not self.layers:
            raise RuntimeError("the model has no layers: add some with model.add(...)")
        shape = (None, *input_shape[1:])
        for layer in self.layers:
            shape = layer.ensure_built(shape)
        self._output_shape = shape
        if self.inputs is None:
            self._trace(self.layers)


    # -- the passes: a chain, run as a plan of steps ------------------------------------------------
    def execution_plan(self):
        """The steps forward runs: the layers, except that Conv2D -> ReLU -> MaxPooling2D in a
        row become one fused step where the kernels have one (see minicnn/fusion.py)."""
        kernels = backend.kernels() if self.device == "cpu" and self.built else None
        key = (backend.get_backend(), self.device, tuple(map(id, self.layers)))
        if getattr(self, "_plan_key", None) != key:
            self._plan = fusion.plan(self.layers, kernels) if kernels is not None else list(self.layers)
            self._plan_key = key
        return self._plan

    def forward(self, x, training=False, steps=None, watch=None):
        """x: (N, ...) -> the model's outputs (N, ...), one step of the plan after the other.
        training=True keeps what backward needs (and makes Dropout-like layers train). Given
        steps (Nodes) or watch, it runs as a graph (see Model.forward). Under a GradientTape the
        layers run one by one (unfused), each call recorded with what it saved for its backward."""
        if steps is not None or watch is not None:  # watched: the layers' own calls (Nodes), unfused
            return super().forward(x, training, self._graph_steps(x, steps), watch)
        if self.device == "gpu":  # as Model.forward: layers without params first (augmentation)
            x = gpu.to_device(x)  # run on the device too
        for step in self.layers if tape.recording() else self.execution_plan():
            x = step.forward(x, training)
        return x

    def _graph_steps(self, x, steps):
        """steps, or the layers' calls on the model's KerasTensors (built from x's shape if need be):
        what Model.forward and backpropagate run, where the plan's fused steps are no graph Nodes."""
        if steps is not None:
            return steps
        if not self._nodes and x is not None:
            self.build(np.shape(x))
        return list(self._nodes)

    def backward(self, y, p, sample_weight=None):
        """Backpropagate the batch's mean loss from the outputs p = forward(x, training=True)
        to the first layer; fills every layer's grads. Returns dL/dx (None when the first
        layer skips it: see Layer.input_grad)."""
        dy, n = self.loss_gradient(y, p, sample_weight)
        return self.backpropagate(dy, skip_last=n < len(self.layers))

    def backpropagate(self, dy, skip_last=False, steps=None, watch=None):
        """From dy = dL/d(output) (with skip_last: dL/d(the last layer's input)) to dL/dx."""
        if steps is not None or watch is not None:
            return super().backpropagate(dy, skip_last, self._graph_steps(None, steps), watch)
        plan = self.execution_plan()
        if getattr(self, "_chain_records", (None,))[0] is not plan or self._chain_records[1] != skip_last:
            steps = plan[:-1] if skip_last else plan  # skip_last: the softmax, never part of a fused step
            links = [object() for _ in range(len(steps) + 1)]  # the values between the steps, by identity
            records = [self._record(step, [links[i]], links[i + 1]) for i, step in enumerate(steps)]
            self._chain_records = (plan, skip_last, links, records)  # a chain's records serve every batch
        _, _, links, records = self._chain_records
        grads = tape.walk(records, {id(links[-1]): dy})  # the tape's walk, down the chain
        self._store_grads(grads)
        return grads.get(id(links[0]))

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
