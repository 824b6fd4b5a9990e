"""ModelLayer: a model used as one layer of another."""
from minicnn import registry
from minicnn.layers.base import Layer
from minicnn.summary import layer_calls


@registry.register_serializable()
class ModelLayer(Layer):
    """A model used as one layer of another: Sequential([model, Softmax()]), or model(tensor) in a
    functional graph. Its params, grads and state are the inner layers' own arrays (keys
    "<layer name>/<key>"), so the outer optimizer trains the inner model in place; forward and
    backward are the inner model's."""

    def __init__(self, model, name=None, **kwargs):
        if isinstance(model, dict):  # from_config
            config = dict(model)
            model = registry.get_class(config.pop("class_name")).from_config(config)
        if getattr(model, "multi_io", False):
            raise ValueError(f"model {model.name!r} has inputs {model.input_names} and outputs {model.output_names}: "
                             "minicnn uses a model as a layer of another only with one input and one output")
        if not model.built:
            raise ValueError(f"model {model.name!r} must be built (its input shape known) to be used as a layer")
        trainable = kwargs.pop("trainable", None)
        super().__init__(name=name or model.name, dtype=model.layers[0].dtype, input_shape=model.input_shape[1:],
                         **kwargs)
        self.model = model
        if trainable is not None:
            self.trainable = trainable
        self._gather()

    @property
    def trainable(self):
        """The inner model's own flag: in Keras the model is the layer, so freezing one freezes both."""
        model = self.__dict__.get("model")
        return True if model is None else model.trainable

    @trainable.setter
    def trainable(self, value):
        model = self.__dict__.get("model")
        if model is not None:  # Layer.__init__ sets the flag before the model is known: the model's stands
            model.trainable = value

    def _gather(self):
        """The inner layers' arrays, by reference: updating them here updates the inner model."""
        self.params, self.grads, self.state, self.param_shapes = {}, {}, {}, {}
        for layer in self.model.layers:
            for k, w in layer.params.items():
                (self.params if layer.trainable else self.state)[f"{layer.name}/{k}"] = w
                if layer.trainable:
                    self.grads[f"{layer.name}/{k}"] = layer.grads[k]
            for k, w in layer.state.items():
                self.state[f"{layer.name}/{k}"] = w
        self.param_shapes = {k: tuple(w.shape) for k, w in {**self.params, **self.state}.items()}
        self.regularizers = {f"{layer.name}/{k}": r for layer in self.model.layers for k, r in layer.regularizers.items()
                             if layer.trainable}

    def build(self, input_shape):
        self.model.build(input_shape)

    def compute_output_shape(self, input_shape):
        return self.model.output_shape

    def count_macs(self, input_shape):
        return sum(layer.count_macs(shape) for layer, shape, _, _ in layer_calls(self.model))

    def call(self, x, training=False):
        self._gather()  # which inner weights train is read at every call, as Keras reads trainable
        if training:
            self._cache = True
        return self.model.forward(x, training)

    def backward(self, dy):
        self._saved()
        for layer in self.model.layers:  # the outer model decides whether dL/dx is needed
            if self.model._reads_input(layer):
                layer.input_grad = self.input_grad
        dx = self.model.backpropagate(dy)
        self._gather()  # the inner layers' new grads arrays
        return dx

    def to(self, device):
        self.model.to(device)
        self.device = device
        self._gather()
        return self

    def forget(self):
        self._cache = None
        for layer in self.model.layers:
            layer.forget()

    def get_weights(self):
        return self.model.get_weights()  # Keras's nested order: layer by layer

    def set_weights(self, weights):
        self.model.set_weights(weights)

    def weight_dict(self):
        """Layer by layer, as get_weights: each inner layer's params then state."""
        return {f"{layer.name}/{k}": w for layer in self.model.layers for k, w in layer.weight_dict().items()}

    def get_config(self):
        return {"name": self.name, "model": {"class_name": type(self.model).__name__, **self.model.get_config()}}
