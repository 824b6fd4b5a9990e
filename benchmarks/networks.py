"""The networks benchmarks/compare.py and benchmarks/scaling.py time, built the same way in each engine.

minicnn and Keras share one builder per network (the same code runs on `minicnn` or `keras`,
as Keras users write it); PyTorch gets the same layers by hand (TorchModel), channels-last on
the CPU. describe() gives what must be equal across the three: parameter counts and the
output shape.

    tutorial     Fashion-MNIST, the tutorial's Conv64-Conv64-Dense64 classifier, Adam, batch 64
    recipe       Fashion-MNIST, examples/fashion_mnist_recipe.py's network and AdamW schedule, batch 64
    cifar-cnn    CIFAR-10, Keras's classic example (examples/cifar10_cnn.py of Keras 2): 2x Conv32,
                 pool, 2x Conv64, pool, Dense 512, dropouts 0.25/0.25/0.5, RMSprop(1e-4), batch 32
    resnet20     CIFAR-10, ResNet-20 v1 (He et al. 2016; Keras's examples/cifar10_resnet.py): 3 stages
                 of 3 blocks of 16/32/64 filters, BatchNormalization, Add, stride-2 3x3 convolutions
                 and 1x1 projections where a stage starts, L2 1e-4 on the kernels, Adam, batch 128
    autoencoder  Fashion-MNIST images in and out, examples/fashion_mnist_autoencoder.py's network:
                 Conv2D encoder (stride 2, twice), Conv2DTranspose decoder, binary cross-entropy,
                 Adam, batch 128
"""
import math
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Spec:
    """What a benchmark needs to know of a network besides its layers."""
    data: str  # "fashion-mnist" or "cifar10"
    batch: int  # the batch size its example trains with
    task: str = "classify"  # or "reconstruct": the images are the targets

    @property
    def input_shape(self):
        return (28, 28, 1) if self.data == "fashion-mnist" else (32, 32, 3)

    @property
    def epoch_images(self):  # the training set's size: times are given per epoch of it
        return 60000 if self.data == "fashion-mnist" else 50000


MODELS = {"tutorial": Spec("fashion-mnist", 64), "recipe": Spec("fashion-mnist", 64),
          "cifar-cnn": Spec("cifar10", 32), "resnet20": Spec("cifar10", 128),
          "autoencoder": Spec("fashion-mnist", 128, "reconstruct")}


def recipe_module():
    """examples/fashion_mnist_recipe.py, imported by path (examples/ is not a package)."""
    import importlib.util
    path = Path(__file__).resolve().parents[1] / "examples" / "fashion_mnist_recipe.py"
    spec = importlib.util.spec_from_file_location("fashion_mnist_recipe", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def build(lib, model_name="tutorial", steps_per_epoch=938, epochs=5, width=1, size=None):
    """The network model_name, compiled, in lib (minicnn or keras). width multiplies the
    CIFAR-10 CNN's filters and size sets its input's side (benchmarks/scaling.py)."""
    if model_name == "recipe":
        recipe = recipe_module()
        return recipe.compile_model(recipe.build_model(lib), lib, steps_per_epoch, epochs)
    if model_name == "cifar-cnn":
        return cifar_cnn(lib, width, size or 32)
    if model_name == "resnet20":
        return resnet20(lib)
    if model_name == "autoencoder":
        return autoencoder(lib)
    L = lib.layers
    model = lib.models.Sequential([
        L.Input((28, 28, 1)), L.Conv2D(64, (3, 3)), L.Activation("relu"), L.MaxPooling2D((2, 2)), L.Conv2D(64, (3, 3)),
        L.Activation("relu"), L.MaxPooling2D((2, 2)), L.Flatten(), L.Dense(64), L.Dense(10), L.Activation("softmax")])
    model.compile(loss="categorical_crossentropy", optimizer=lib.optimizers.Adam(), metrics=["accuracy"])
    return model


def cifar_cnn(lib, width=1, size=32):
    """Keras's classic CIFAR-10 CNN; its RMSprop (Keras 3 has no `decay`, so none here either)."""
    L, f = lib.layers, 32 * width
    model = lib.models.Sequential([
        L.Input((size, size, 3)),
        L.Conv2D(f, (3, 3), padding="same"), L.Activation("relu"), L.Conv2D(f, (3, 3)), L.Activation("relu"),
        L.MaxPooling2D((2, 2)), L.Dropout(0.25),
        L.Conv2D(2 * f, (3, 3), padding="same"), L.Activation("relu"), L.Conv2D(2 * f, (3, 3)), L.Activation("relu"),
        L.MaxPooling2D((2, 2)), L.Dropout(0.25),
        L.Flatten(), L.Dense(512), L.Activation("relu"), L.Dropout(0.5), L.Dense(10), L.Activation("softmax")])
    model.compile(loss="categorical_crossentropy", optimizer=lib.optimizers.RMSprop(learning_rate=1e-4),
                  metrics=["accuracy"])
    return model


def resnet20(lib):
    """ResNet-20 v1, as Keras's cifar10_resnet.py writes resnet_v1(depth=20)."""
    L = lib.layers

    def conv(x, filters, kernel=3, strides=1, activation="relu", normalize=True):
        x = L.Conv2D(filters, kernel, strides=strides, padding="same", kernel_initializer="he_normal",
                     kernel_regularizer=lib.regularizers.L2(1e-4))(x)
        if normalize:
            x = L.BatchNormalization()(x)
        return L.Activation(activation)(x) if activation else x

    inputs = L.Input((32, 32, 3))
    x, filters = conv(inputs, 16), 16
    for stage in range(3):
        for block in range(3):
            strides = 2 if stage and not block else 1  # each stage after the first halves the maps
            y = conv(conv(x, filters, strides=strides), filters, activation=None)
            if strides == 2:  # the shortcut must match: a 1x1 projection, strided
                x = conv(x, filters, kernel=1, strides=2, activation=None, normalize=False)
            x = L.Activation("relu")(L.Add()([x, y]))
        filters *= 2
    x = L.Flatten()(L.AveragePooling2D(8)(x))
    outputs = L.Dense(10, activation="softmax", kernel_initializer="he_normal")(x)
    model = lib.models.Model(inputs, outputs)
    model.compile(loss="categorical_crossentropy", optimizer=lib.optimizers.Adam(learning_rate=1e-3),
                  metrics=["accuracy"])
    return model


def autoencoder(lib):
    """28x28x1 -> 7x7x16 -> 28x28x1: examples/fashion_mnist_autoencoder.py's build_model, in lib."""
    L = lib.layers
    inputs = L.Input((28, 28, 1))
    x = L.Conv2D(16, 3, strides=2, padding="same", activation="relu")(inputs)  # 14x14x16
    x = L.Conv2D(16, 3, strides=2, padding="same", activation="relu")(x)  # 7x7x16
    x = L.Conv2DTranspose(32, 3, strides=2, padding="same", activation="relu")(x)  # 14x14x32
    x = L.Conv2DTranspose(16, 3, strides=2, padding="same", activation="relu")(x)  # 28x28x16
    outputs = L.Conv2D(1, 3, padding="same", activation="sigmoid")(x)
    model = lib.models.Model(inputs, outputs)
    model.compile(optimizer=lib.optimizers.Adam(), loss="binary_crossentropy")
    return model


def keras_lr(step, steps_per_epoch, epochs, peak=2e-3):
    """The recipe's learning rate at step (0-based), as Keras's CosineDecay computes it with the
    recipe's arguments: linear warm-up from peak / 10 to peak over the first epoch, then a cosine
    decay to 0 over the remaining steps (examples/fashion_mnist_recipe.py: compile_model)."""
    warmup, decay = steps_per_epoch, max(1, steps_per_epoch * epochs - steps_per_epoch)
    if step < warmup:
        return peak / 10 + (peak - peak / 10) * step / warmup
    return peak * 0.5 * (1 + math.cos(math.pi * min(step - warmup, decay) / decay))


def cifar_cnn_flat(size):
    """The side of the CIFAR-10 CNN's last maps: same conv, valid conv (-2), pool, twice."""
    return ((size - 2) // 2 - 2) // 2


def torch_network(model_name, width=1, size=32):
    """model_name's layers as a torch.nn.Module (NCHW shapes; channels-last memory is set by TorchModel).

    Keras's "same" padding with stride 2 pads 0 rows above and 1 below a 32-pixel map; torch's
    padding=1 pads one on each side: the same output shape and work, shifted by a pixel."""
    from torch import nn
    if model_name == "recipe":
        def block(c_in, c_out):
            return [nn.Conv2d(c_in, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out, eps=1e-3, momentum=0.01),
                    nn.ReLU(), nn.MaxPool2d(2)]
        return nn.Sequential(*block(1, 32), *block(32, 64), nn.Dropout(0.1), *block(64, 128), nn.Dropout(0.2),
                             nn.Flatten(), nn.Linear(1152, 128), nn.ReLU(), nn.Dropout(0.3), nn.Linear(128, 10))
    if model_name == "cifar-cnn":
        f, side = 32 * width, cifar_cnn_flat(size)
        return nn.Sequential(
            nn.Conv2d(3, f, 3, padding=1), nn.ReLU(), nn.Conv2d(f, f, 3), nn.ReLU(), nn.MaxPool2d(2), nn.Dropout(0.25),
            nn.Conv2d(f, 2 * f, 3, padding=1), nn.ReLU(), nn.Conv2d(2 * f, 2 * f, 3), nn.ReLU(), nn.MaxPool2d(2),
            nn.Dropout(0.25), nn.Flatten(), nn.Linear(2 * f * side * side, 512), nn.ReLU(), nn.Dropout(0.5),
            nn.Linear(512, 10))
    if model_name == "resnet20":
        return torch_resnet20()
    if model_name == "autoencoder":
        return nn.Sequential(
            nn.Conv2d(1, 16, 3, stride=2, padding=1), nn.ReLU(), nn.Conv2d(16, 16, 3, stride=2, padding=1), nn.ReLU(),
            nn.ConvTranspose2d(16, 32, 3, stride=2, padding=1, output_padding=1), nn.ReLU(),
            nn.ConvTranspose2d(32, 16, 3, stride=2, padding=1, output_padding=1), nn.ReLU(),
            nn.Conv2d(16, 1, 3, padding=1), nn.Sigmoid())
    return nn.Sequential(nn.Conv2d(1, 64, 3), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(64, 64, 3), nn.ReLU(),
                         nn.MaxPool2d(2), nn.Flatten(), nn.Linear(1600, 64), nn.Linear(64, 10))


def torch_resnet20():
    """ResNet-20 v1 in torch: resnet20() above, layer for layer (convolutions with biases, as Keras's)."""
    from torch import nn

    def conv_bn(c_in, c_out, stride=1):
        return [nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1), nn.BatchNorm2d(c_out, eps=1e-3, momentum=0.01)]

    class Block(nn.Module):
        def __init__(self, c_in, c_out, stride):
            super().__init__()
            self.body = nn.Sequential(*conv_bn(c_in, c_out, stride), nn.ReLU(), *conv_bn(c_out, c_out))
            self.shortcut = nn.Conv2d(c_in, c_out, 1, stride=stride) if stride != 1 else nn.Identity()

        def forward(self, x):
            return (self.shortcut(x) + self.body(x)).relu()

    layers, c = [*conv_bn(3, 16), nn.ReLU()], 16
    for stage, filters in enumerate((16, 32, 64)):
        for block in range(3):
            stride = 2 if stage and not block else 1
            layers.append(Block(c, filters, stride))
            c = filters
    return nn.Sequential(*layers, nn.AvgPool2d(8), nn.Flatten(), nn.Linear(64, 10))


class TorchModel:
    """A network of torch_network() with fit / predict / evaluate as Keras names them. On the
    CPU: channels-last tensors (oneDNN's fast layout) and torch's own thread pool with --threads
    threads; on CUDA: batches copied to the GPU one at a time, as minicnn-cupy's.

    The optimizer is the Keras model's: Adam (epsilon 1e-7), RMSprop(1e-4, rho 0.9, epsilon 1e-7)
    for the CIFAR-10 CNN (torch adds epsilon after the square root, Keras under it: the same
    work), ResNet-20's L2 penalty on the kernels as Adam's weight decay 2e-4 on those alone
    (Keras's 1e-4 sum w^2 has the gradient 2e-4 w). The recipe, layer for layer: Conv(3x3,
    same, no bias) -> BatchNorm (Keras's momentum 0.99 is torch's 0.01, epsilon 1e-3) -> ReLU ->
    MaxPool, three times (32, 64, 128), Dropout 0.1/0.2/0.3, Dense 128; random left-right flips
    and shifts of up to 10% (2-3 whole pixels, zeros filled in, as RandomTranslation's "nearest"
    and "constant" do); AdamW (weight decay 5e-4, epsilon 1e-7) with the same warm-up and
    cosine schedule, set each step. Weights start from torch's initializers, not Keras's: the
    accuracies are comparable, not equal."""

    def __init__(self, seed, device="cuda", model_name="tutorial", steps_per_epoch=938, epochs=5, width=1, size=32):
        import numpy as np
        import torch
        from torch import nn
        torch.manual_seed(seed)
        self.torch, self.dev, self.np, self.rng = torch, torch.device(device), np, np.random.default_rng(seed)
        self.recipe, self.images_out = model_name == "recipe", MODELS[model_name].task == "reconstruct"
        self.net = torch_network(model_name, width, size)
        self.schedule = None
        if self.recipe:
            self.opt = torch.optim.AdamW(self.net.parameters(), lr=keras_lr(0, steps_per_epoch, epochs), eps=1e-7,
                                         weight_decay=5e-4)
            self.schedule = lambda step: keras_lr(step, steps_per_epoch, epochs)
        elif model_name == "cifar-cnn":
            self.opt = torch.optim.RMSprop(self.net.parameters(), lr=1e-4, alpha=0.9, eps=1e-7)
        elif model_name == "resnet20":
            kernels = [m.weight for m in self.net.modules() if isinstance(m, nn.Conv2d)]
            others = [p for p in self.net.parameters() if all(p is not k for k in kernels)]
            self.opt = torch.optim.Adam([{"params": kernels, "weight_decay": 2e-4}, {"params": others}],
                                        lr=1e-3, eps=1e-7)
        else:
            self.opt = torch.optim.Adam(self.net.parameters(), lr=1e-3, eps=1e-7)
        self.net = self.net.to(self.dev)
        if self.dev.type == "cpu":
            self.net = self.net.to(memory_format=torch.channels_last)
        self.loss = nn.BCELoss() if self.images_out else nn.CrossEntropyLoss()
        self.step = 0

    def _batch(self, x):  # NHWC float32 on the host -> a (N, C, H, W) tensor on the device
        t = self.torch.from_numpy(x).permute(0, 3, 1, 2)  # a view: NHWC memory is channels-last already
        return t.contiguous(memory_format=self.torch.channels_last) if self.dev.type == "cpu" else \
            t.contiguous().to(self.dev)

    def _augment(self, x):
        """Random flips and whole-pixel shifts of a (N, 28, 28, 1) batch, on the host (as Keras's layers)."""
        np, n = self.np, len(x)
        flip = self.rng.random(n) < 0.5
        x = np.where(flip[:, None, None, None], x[:, :, ::-1], x)
        shifts = np.rint(self.rng.uniform(-0.1, 0.1, (n, 2)) * 28).astype(int)
        pad = np.zeros((n, 34, 34, 1), x.dtype)
        pad[:, 3:31, 3:31] = x
        rows = 3 - shifts[:, 0, None] + np.arange(28)
        cols = 3 - shifts[:, 1, None] + np.arange(28)
        return np.ascontiguousarray(pad[np.arange(n)[:, None, None], rows[:, :, None], cols[:, None, :]])

    def fit(self, x, y, batch_size, epochs=1, verbose=0):
        """y: one-hot labels, or for an autoencoder the target images (N, H, W, C)."""
        labels = y if self.images_out else y.argmax(1)
        self.net.train()
        for _ in range(epochs):
            order = self.rng.permutation(len(x))
            for start in range(0, len(x), batch_size):
                idx = order[start:start + batch_size]
                self._step(self._augment(x[idx]) if self.recipe else x[idx], labels[idx])
        if self.dev.type == "cuda":
            self.torch.cuda.synchronize()

    def train_on_batch(self, x, y):
        """One step on this batch, as Keras's train_on_batch (y as in fit)."""
        self.net.train()
        self._step(x, y if self.images_out else y.argmax(1))
        if self.dev.type == "cuda":
            self.torch.cuda.synchronize()

    def _step(self, xb, labels):
        if self.schedule:
            for group in self.opt.param_groups:
                group["lr"] = self.schedule(self.step)
        target = self._batch(labels) if self.images_out else self.torch.from_numpy(labels).to(self.dev)
        self.opt.zero_grad(set_to_none=True)
        self.loss(self.net(self._batch(xb)), target).backward()
        self.opt.step()
        self.step += 1

    def predict(self, x, batch_size, verbose=0):
        """Class probabilities (N, 10), or images (N, H, W, C) for an autoencoder, as Keras's."""
        self.net.eval()
        with self.torch.inference_mode():
            def out(xb):
                y = self.net(self._batch(xb))
                return (y.permute(0, 2, 3, 1) if self.images_out else y.softmax(1)).cpu().numpy()
            return self.np.concatenate([out(x[s:s + batch_size]) for s in range(0, len(x), batch_size)])

    def evaluate(self, x, y, batch_size, verbose=0):
        np, p = self.np, self.predict(x, batch_size)
        return [float(-np.log(np.clip((p * y).sum(1), 1e-7, 1)).mean()), float((p.argmax(1) == y.argmax(1)).mean())]


def describe(engine, model_name, width=1, size=None):
    """What must be equal in every engine's build of model_name: trainable and non-trainable
    parameter counts (BatchNormalization's moving statistics are the non-trainable ones; torch
    keeps them as buffers) and the output shape of a batch of 2, channels-last. Built on the CPU."""
    import numpy as np
    spec = MODELS[model_name]
    side = size or spec.input_shape[0]
    x = np.zeros((2, side, side, spec.input_shape[2]), np.float32)
    if engine.startswith("torch"):
        model = TorchModel(0, "cpu", model_name, width=width, size=side)
        trainable = sum(p.numel() for p in model.net.parameters())
        frozen = sum(b.numel() for name, b in model.net.named_buffers() if not name.endswith("num_batches_tracked"))
    elif engine == "keras":
        import keras
        model = build(keras, model_name, width=width, size=size)
        trainable = sum(int(np.prod(w.shape)) for w in model.trainable_weights)
        frozen = sum(int(np.prod(w.shape)) for w in model.non_trainable_weights)
    else:
        import minicnn
        model = build(minicnn, model_name, width=width, size=size)
        trainable = sum(int(np.prod(w.shape)) for layer in model.layers for w in layer.params.values())
        frozen = model.count_params() - trainable
    shape = tuple(int(n) for n in model.predict(x, batch_size=2, verbose=0).shape)
    return {"trainable_params": int(trainable), "non_trainable_params": int(frozen), "output_shape": list(shape)}


def check_same(descriptions):
    """descriptions: {engine: describe(...)}. Raises AssertionError naming the engines that differ."""
    first, *rest = descriptions.items()
    for engine, d in rest:
        assert d == first[1], (f"{engine} builds another network than {first[0]}: {d} against {first[1]} "
                               "(parameter counts and output shape must be equal)")
