"""An overridden train_step / test_step / predict_step, as the Keras guide "Customizing what
happens in fit()" writes them, run by fit, evaluate and predict; against Keras itself with the
same weights (same weights after three steps, same logs)."""
import os

import numpy as np
import pytest

import minicnn
from minicnn import metrics, ops

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
keras = pytest.importorskip("keras")
tf = pytest.importorskip("tensorflow")


def guide_model(lib, tape_cls):
    """The guide's first example: compute_loss, optimizer.apply, self.metrics, in either library."""

    class CustomModel(lib.Model):
        def train_step(self, data):
            x, y = data
            with tape_cls() as tape:
                y_pred = self(x, training=True)
                loss = self.compute_loss(y=y, y_pred=y_pred)
            trainable_vars = self.trainable_variables
            gradients = tape.gradient(loss, trainable_vars)
            self.optimizer.apply(gradients, trainable_vars)
            for metric in self.metrics:
                if metric.name == "loss":
                    metric.update_state(loss)
                else:
                    metric.update_state(y, y_pred)
            return {m.name: m.result() for m in self.metrics}

        def test_step(self, data):
            x, y = data
            y_pred = self(x, training=False)
            loss = self.compute_loss(y=y, y_pred=y_pred)
            for metric in self.metrics:
                if metric.name != "loss":
                    metric.update_state(y, y_pred)
                else:
                    metric.update_state(loss)
            return {m.name: m.result() for m in self.metrics}

    inputs = lib.Input(shape=(8,))
    outputs = lib.layers.Dense(1)(lib.layers.Dense(5, activation="tanh")(inputs))
    return CustomModel(inputs, outputs)


def test_guide_train_step_matches_keras_after_three_steps():
    rng = np.random.default_rng(0)
    x, y = rng.random((30, 8)).astype(np.float32), rng.random((30, 1)).astype(np.float32)
    ours, theirs = guide_model(minicnn, minicnn.GradientTape), guide_model(keras, tf.GradientTape)
    weights = [rng.standard_normal(w.shape).astype(np.float32) for w in theirs.get_weights()]
    ours.set_weights(weights)
    theirs.set_weights(weights)
    for model in (ours, theirs):
        model.compile(optimizer=type(model.optimizer) if False else "adam", loss="mse", metrics=["mae"])
    h = ours.fit(x, y, batch_size=10, epochs=1, shuffle=False, verbose=0)
    k = theirs.fit(x, y, batch_size=10, epochs=1, shuffle=False, verbose=0)
    for a, b in zip(ours.get_weights(), theirs.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    assert set(h.history) == {"loss", "mae"}
    for key in ("loss", "mae"):
        assert h.history[key][0] == pytest.approx(k.history[key][0], rel=1e-5)
    assert ours.evaluate(x, y, verbose=0) == pytest.approx(theirs.evaluate(x, y, verbose=0), rel=1e-5)


class OwnTrackers(minicnn.Model):
    """The guide's lower-level example: its own loss function and trackers, a metrics property,
    compiled without a loss."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.dense = minicnn.layers.Dense(1)
        self.loss_tracker = metrics.Mean(name="loss")
        self.mae_metric = metrics.MeanAbsoluteError(name="mae")
        self.loss_fn = minicnn.losses.MeanSquaredError()

    def call(self, x):
        return self.dense(x)

    def train_step(self, data):
        x, y = data
        with minicnn.GradientTape() as tape:
            y_pred = self(x, training=True)
            loss = self.loss_fn(y, y_pred)
        self.optimizer.apply_gradients(zip(tape.gradient(loss, self.trainable_variables), self.trainable_variables))
        self.loss_tracker.update_state(loss)
        self.mae_metric.update_state(y, y_pred)
        return {"loss": self.loss_tracker.result(), "mae": self.mae_metric.result()}

    @property
    def metrics(self):  # reset by fit at each epoch
        return [self.loss_tracker, self.mae_metric]


def test_own_trackers_and_metrics_property():
    rng = np.random.default_rng(1)
    x = rng.random((64, 4)).astype(np.float32)
    y = x @ np.array([[1.0], [-2.0], [0.5], [3.0]], np.float32)
    model = OwnTrackers()
    model.compile(optimizer=minicnn.optimizers.Adam(0.05))
    history = model.fit(x, y, batch_size=16, epochs=12, verbose=0)
    assert history.history["loss"][-1] < history.history["loss"][0] / 4
    assert model.loss_tracker.count == 4  # reset at each epoch: this one's four batches
    assert model.predict(x, verbose=0).shape == (64, 1)


class Autoencoder(minicnn.Model):
    """A convolutional autoencoder as a model of your own, trained by fit's default step."""

    def __init__(self):
        super().__init__()
        self.encoder = [minicnn.layers.Conv2D(4, 3, padding="same", activation="relu"), minicnn.layers.MaxPooling2D(2)]
        self.decoder = {"up": minicnn.layers.Conv2D(4, 3, padding="same", activation="relu"),
                        "out": minicnn.layers.Conv2D(1, 3, padding="same", activation="sigmoid")}

    def call(self, x, training=None):
        for layer in self.encoder:
            x = layer(x)
        x = ops.reshape(ops.stack([x, x], axis=3), (-1, x.shape[1], 2 * x.shape[2], x.shape[3]))  # upsample width
        x = ops.reshape(ops.stack([x, x], axis=2), (-1, 2 * x.shape[1], x.shape[2], x.shape[3]))  # and height
        return self.decoder["out"](self.decoder["up"](x))


def test_subclassed_autoencoder_fits_saves_and_summarises(tmp_path, capsys):
    minicnn.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    x = (rng.random((32, 8, 8, 1)) > 0.5).astype(np.float32)
    model = Autoencoder()
    model.compile(optimizer=minicnn.optimizers.Adam(0.01), loss="mse", metrics=["mae"])
    history = model.fit(x, x, batch_size=8, epochs=4, verbose=0)
    assert history.history["loss"][-1] < history.history["loss"][0]
    assert len(model.layers) == 4 and len(model.trainable_weights) == 6
    model.summary()
    assert "conv2d" in capsys.readouterr().out
    model.save_weights(tmp_path / "ae.weights.npz")
    again = Autoencoder()
    again.build((None, 8, 8, 1))
    again.load_weights(tmp_path / "ae.weights.npz")
    np.testing.assert_array_equal(again.predict(x, verbose=0), model.predict(x, verbose=0))
    loss, _ = model.evaluate(x, x, verbose=0)
    assert loss == pytest.approx(history.history["loss"][-1], rel=0.5)


def test_predict_step_and_no_loss_errors():
    class Doubler(minicnn.Model):
        def __init__(self):
            super().__init__()
            self.dense = minicnn.layers.Dense(2)

        def call(self, x):
            return self.dense(x)

        def predict_step(self, data):
            return self(data) * 2

    model = Doubler()
    x = np.ones((3, 4), np.float32)
    np.testing.assert_allclose(model.predict(x, verbose=0), 2 * np.asarray(model(x)), rtol=1e-6)
    model.compile(optimizer="adam")
    with pytest.raises(RuntimeError, match="compile"):
        model.fit(x, np.ones((3, 2)), verbose=0)  # the default step needs a loss


def test_layer_of_your_own_needs_no_backward():
    """A layer written with build, add_weight and call only (the Keras guide's Linear), inside a
    model of your own: fit trains it through the tape; the gradient matches finite differences."""

    class Linear(minicnn.layers.Layer):
        def __init__(self, units=32, **kwargs):
            super().__init__(**kwargs)
            self.units = units

        def build(self, input_shape):
            self.w = self.add_weight(shape=(input_shape[-1], self.units), initializer="random_normal", trainable=True)
            self.b = self.add_weight(shape=(self.units,), initializer="zeros", trainable=True)

        def call(self, inputs):
            return ops.matmul(inputs, self.w) + self.b

    class MLP(minicnn.Model):
        def __init__(self):
            super().__init__()
            self.blocks = [Linear(8), Linear(1)]

        def call(self, x):
            return self.blocks[1](ops.relu(self.blocks[0](x)))

    rng = np.random.default_rng(0)
    x = rng.standard_normal((40, 3)).astype(np.float32)
    y = np.abs(x).sum(axis=1, keepdims=True)
    model = MLP()
    model.compile(optimizer=minicnn.optimizers.Adam(0.03), loss="mse")
    history = model.fit(x, y, batch_size=10, epochs=15, verbose=0)
    assert history.history["loss"][-1] < history.history["loss"][0] / 3
    layer = Linear(2, dtype="float64")
    x64 = rng.standard_normal((3, 4))
    dy = rng.standard_normal((3, 2))
    with minicnn.GradientTape() as tape:
        loss = ops.sum(layer(x64) * dy)
    gw = tape.gradient(loss, layer.w)
    numeric = minicnn.gradcheck.numerical_gradient(lambda: float(np.sum(np.asarray(layer(x64)) * dy)),
                                                   layer.w.view(np.ndarray))
    assert minicnn.gradcheck.relative_error(gw, numeric) < 1e-7


def test_training_flag_reaches_inner_layers():
    """layer(x) inside call takes the model call's training flag, as Keras: Dropout drops in fit."""

    class WithDropout(minicnn.Model):
        def __init__(self):
            super().__init__()
            self.drop = minicnn.layers.Dropout(0.5)

        def call(self, x):
            return self.drop(x)

    model = WithDropout()
    x = np.ones((4, 100), np.float32)
    assert (np.asarray(model(x)) == 1).all()
    assert (np.asarray(model(x, training=True)) == 0).any()


def test_add_loss_reaches_model_losses_and_the_gradient():
    """The Keras guide's ActivityRegularizationLayer: add_loss in call, model.losses in the loop,
    cleared by the next call; its gradient flows through the tape."""

    class ActivityRegularization(minicnn.layers.Layer):
        def call(self, inputs):
            self.add_loss(1e-2 * ops.sum(inputs))
            return inputs

    inputs = minicnn.Input((3,))
    outputs = minicnn.layers.Dense(1)(ActivityRegularization()(minicnn.layers.Dense(2)(inputs)))
    model = minicnn.Model(inputs, outputs)
    x = np.ones((4, 3), np.float32)
    with minicnn.GradientTape() as tape:
        model(x, training=True)
        assert len(model.losses) == 1
        loss = sum(model.losses)
    W = model.layers[0].params["W"]
    np.testing.assert_allclose(tape.gradient(loss, W), np.full((3, 2), 0.04), rtol=1e-6)  # 4 rows of ones, 1e-2
    model(x)
    assert len(model.losses) == 1  # the next call's own, not two


class GAN(minicnn.Model):
    """The Keras guide's GAN structure: a model holding two models, its own compile and
    train_step(real_images), metrics as a property; fit on images alone."""

    def __init__(self, discriminator, generator, latent_dim):
        super().__init__()
        self.discriminator = discriminator
        self.generator = generator
        self.latent_dim = latent_dim
        self.seed_generator = minicnn.random.SeedGenerator(1337)
        self.d_loss_tracker = metrics.Mean(name="d_loss")
        self.g_loss_tracker = metrics.Mean(name="g_loss")

    def compile(self, d_optimizer, g_optimizer, loss_fn):
        super().compile()
        self.d_optimizer, self.g_optimizer, self.loss_fn = d_optimizer, g_optimizer, loss_fn

    @property
    def metrics(self):
        return [self.d_loss_tracker, self.g_loss_tracker]

    def train_step(self, real_images):
        if isinstance(real_images, tuple):
            real_images = real_images[0]
        batch_size = ops.shape(real_images)[0]
        z = minicnn.random.normal(shape=(batch_size, self.latent_dim), seed=self.seed_generator)
        generated = self.generator(z)
        combined = ops.concatenate([generated, real_images], axis=0)
        labels = ops.concatenate([ops.ones((batch_size, 1)), ops.zeros((batch_size, 1))], axis=0)
        labels += 0.05 * minicnn.random.uniform(ops.shape(labels), seed=self.seed_generator)
        with minicnn.GradientTape() as tape:
            d_loss = self.loss_fn(labels, self.discriminator(combined))
        grads = tape.gradient(d_loss, self.discriminator.trainable_weights)
        self.d_optimizer.apply_gradients(zip(grads, self.discriminator.trainable_weights))
        z = minicnn.random.normal(shape=(batch_size, self.latent_dim), seed=self.seed_generator)
        misleading = ops.zeros((batch_size, 1))
        with minicnn.GradientTape() as tape:
            g_loss = self.loss_fn(misleading, self.discriminator(self.generator(z)))
        grads = tape.gradient(g_loss, self.generator.trainable_weights)
        self.g_optimizer.apply_gradients(zip(grads, self.generator.trainable_weights))
        self.d_loss_tracker.update_state(d_loss)
        self.g_loss_tracker.update_state(g_loss)
        return {"d_loss": self.d_loss_tracker.result(), "g_loss": self.g_loss_tracker.result()}


def test_gan_as_the_keras_guide_writes_it_fits_on_images_alone():
    minicnn.utils.set_random_seed(0)
    latent_dim = 4
    discriminator = minicnn.Sequential([minicnn.Input((6, 6, 1)), minicnn.layers.Conv2D(4, 3, strides=2, padding="same"),
                                        minicnn.layers.LeakyReLU(0.2), minicnn.layers.GlobalMaxPooling2D(),
                                        minicnn.layers.Dense(1)])
    generator = minicnn.Sequential([minicnn.Input((latent_dim,)), minicnn.layers.Dense(36), minicnn.layers.Reshape((6, 6, 1)),
                                    minicnn.layers.Conv2D(1, 3, padding="same", activation="sigmoid")])
    gan = GAN(discriminator, generator, latent_dim)
    gan.compile(d_optimizer=minicnn.optimizers.Adam(3e-4), g_optimizer=minicnn.optimizers.Adam(3e-4),
                loss_fn=minicnn.losses.BinaryCrossentropy(from_logits=True))
    g_before, d_before = generator.get_weights(), discriminator.get_weights()
    images = np.random.default_rng(0).random((24, 6, 6, 1)).astype(np.float32)
    history = gan.fit(images, batch_size=8, epochs=2, verbose=0)
    assert set(history.history) == {"d_loss", "g_loss"} and len(history.history["d_loss"]) == 2
    assert gan.d_loss_tracker.count == 3  # reset at the second epoch: its three batches
    assert all((a != b).any() for a, b in zip(generator.get_weights(), g_before))
    assert all((a != b).any() for a, b in zip(discriminator.get_weights(), d_before))
    assert len(gan.trainable_weights) == len(generator.trainable_weights) + len(discriminator.trainable_weights)


def test_a_layer_of_your_own_holds_its_last_calls_losses_and_weights():
    """The Keras subclassing guide: weights made in __init__, a non-trainable Variable updated
    with assign_add, nested layers' weights, losses of the outermost call only."""

    class ComputeSum(minicnn.layers.Layer):
        def __init__(self, input_dim):
            super().__init__()
            self.total = self.add_weight(initializer="zeros", shape=(input_dim,), trainable=False)

        def call(self, inputs):
            self.total.assign_add(ops.sum(inputs, axis=0))
            return self.total

    my_sum = ComputeSum(2)
    my_sum(ops.ones((2, 2)))
    np.testing.assert_array_equal(my_sum(ops.ones((2, 2))), [4.0, 4.0])
    assert my_sum.trainable_weights == [] and len(my_sum.non_trainable_weights) == 1

    class Penalty(minicnn.layers.Layer):
        def call(self, inputs):
            self.add_loss(1e-2 * ops.mean(inputs))
            return inputs

    class Outer(minicnn.layers.Layer):
        def __init__(self):
            super().__init__()
            self.inner = [Penalty(), minicnn.layers.Dense(2)]

        def call(self, inputs):
            return self.inner[1](self.inner[0](inputs))

    outer = Outer()
    assert outer.losses == []
    outer(np.ones((1, 3), np.float32))
    outer(np.ones((1, 3), np.float32))
    assert len(outer.losses) == 1 and len(outer.trainable_weights) == 2


def test_a_hand_written_backward_is_one_record_and_checks_out():
    """A layer of your own with its own backward (the protocol of notebook 05) is one record of
    the tape; its gradient through a model of your own matches finite differences."""

    class Scale(minicnn.layers.Layer):
        def build(self, input_shape):
            self.add_param("s", np.full((input_shape[-1],), 1.5, dtype=self.dtype))

        def call(self, x, training=False):
            if training:
                self._cache = x
            return x * self.params["s"]

        def backward(self, dy):
            x = self._saved()
            self.grads["s"] = (dy * x).sum(axis=0)
            return dy * self.params["s"]

    class Net(minicnn.Model):
        def __init__(self):
            super().__init__()
            self.scale = Scale(dtype="float64")
            self.dense = minicnn.layers.Dense(2, dtype="float64")

        def call(self, x):
            return self.dense(ops.tanh(self.scale(x)))

    net = Net()
    x = np.random.default_rng(0).standard_normal((4, 3))
    with minicnn.GradientTape() as tape:
        loss = ops.sum(ops.square(net(x)))
    assert tape.records[0].via == "Scale.backward (same at inference)"
    s = net.scale.params["s"]
    numeric = minicnn.gradcheck.numerical_gradient(lambda: float(np.sum(np.asarray(net(x)) ** 2)), s)
    assert minicnn.gradcheck.relative_error(tape.gradient(loss, s), numeric) < 1e-7


class Counting(minicnn.Model):
    """A step of your own that records which samples each batch held."""

    def __init__(self):
        super().__init__()
        self.dense = minicnn.layers.Dense(1)
        self.seen = []

    def call(self, x, training=None):
        return self.dense(x)

    def train_step(self, data):
        x, _ = data
        self.seen.append(x[:, 0].astype(int).tolist())
        return {"n": float(len(x))}

    def test_step(self, data):
        x, _ = data
        self.seen.append(x[:, 0].astype(int).tolist())
        return {"n": float(len(x))}


def test_steps_per_epoch_reaches_a_step_of_your_own():
    """As fit's own step: `steps_per_epoch` batches an epoch, the next epoch going on where the
    last stopped (Keras's rule), and evaluate's `steps`; the step sees the samples in order."""
    x = np.arange(10, dtype="float32").reshape(10, 1)
    model = Counting()
    model.compile(optimizer="sgd")
    model.fit(x, x, batch_size=2, epochs=4, steps_per_epoch=2, shuffle=False, verbose=0)
    # the third epoch meets the end of the data after one batch and ends there, as Keras's does
    assert model.seen == [[0, 1], [2, 3], [4, 5], [6, 7], [8, 9], [0, 1], [2, 3]]
    model.seen = []
    model.evaluate(x, x, batch_size=4, steps=2, verbose=0)
    assert model.seen == [[0, 1, 2, 3], [4, 5, 6, 7]]
