"""GradientTape against tf.GradientTape: the same weights and data give the same gradients
(relative error < 1e-5 in float32) and, after three optimizer steps, the same weights; for a
subclassed CNN, a model called twice in one step, a loss written with minicnn.ops and Python
operators, and the gradient with respect to the input. Then the tape's own rules: None for an
unreached source, fan-out adding up, persistent tapes, clear errors."""
import os

import numpy as np
import pytest

import minicnn
from minicnn import layers, ops
from minicnn.tape import GradientTape

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
keras = pytest.importorskip("keras")
tf = pytest.importorskip("tensorflow")


def rel(a, b):
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    return float(np.abs(a - b).max() / max(np.abs(b).max(), 1e-30))


class Ours(minicnn.Model):
    """A subclassed CNN: conv -> BN -> relu -> pool -> flatten -> dropout -> dense, layers as
    attributes and in a list."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.conv = layers.Conv2D(4, 3, padding="same", use_bias=False)  # a bias before BN gets no gradient
        self.bn = layers.BatchNormalization()
        self.pool = layers.MaxPooling2D(2)
        self.head = [layers.Flatten(), layers.Dense(6, activation="tanh"), layers.Dense(3)]

    def call(self, x, training=None):
        x = ops.relu(self.bn(self.conv(x), training=training))
        x = self.pool(x)
        for layer in self.head:
            x = layer(x)
        return x


class Theirs(keras.Model):
    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.conv = keras.layers.Conv2D(4, 3, padding="same", use_bias=False)  # a bias before BN gets no gradient
        self.bn = keras.layers.BatchNormalization()
        self.pool = keras.layers.MaxPooling2D(2)
        self.head = [keras.layers.Flatten(), keras.layers.Dense(6, activation="tanh"), keras.layers.Dense(3)]

    def call(self, x, training=None):
        x = keras.ops.relu(self.bn(self.conv(x), training=training))
        x = self.pool(x)
        for layer in self.head:
            x = layer(x)
        return x


def data(n=5, seed=0):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, 8, 8, 2)).astype(np.float32), rng.integers(0, 3, n)


def twins():
    """Ours and Theirs with the same weights (BatchNormalization's moving statistics too)."""
    x, _ = data()
    ours, theirs = Ours(), Theirs()
    ours(x), theirs(x)
    rng = np.random.default_rng(1)
    weights = [rng.standard_normal(w.shape).astype(np.float32) * 0.5 for w in theirs.get_weights()]
    weights = [np.abs(w) + 0.5 if "variance" in v.path else w for w, v in zip(weights, theirs.weights)]
    theirs.set_weights(weights)
    ours.set_weights(weights)
    return ours, theirs


def test_subclassed_cnn_weights_match_keras_order():
    ours, theirs = twins()
    assert [w.shape for w in ours.get_weights()] == [tuple(w.shape) for w in theirs.get_weights()]
    assert len(ours.trainable_variables) == len(theirs.trainable_variables) == 7
    x, _ = data()
    assert rel(ours(x), theirs(x)) < 1e-5


@pytest.mark.parametrize("training", [True, False])
def test_subclassed_cnn_gradients_match_tf(training):
    ours, theirs = twins()
    x, y = data()
    loss_ours = minicnn.losses.SparseCategoricalCrossentropy(from_logits=True)
    loss_theirs = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    with GradientTape() as tape:
        loss = loss_ours(y, ours(x, training=training))
    grads = tape.gradient(loss, ours.trainable_variables)
    with tf.GradientTape() as t:
        expected_loss = loss_theirs(y, theirs(x, training=training))
    expected = t.gradient(expected_loss, theirs.trainable_variables)
    assert rel(loss, expected_loss) < 1e-5
    for g, e in zip(grads, expected):
        assert rel(g, e) < 1e-5


def test_gradient_with_respect_to_the_input_matches_tf():
    ours, theirs = twins()
    x, _ = data()
    with GradientTape() as tape:
        tape.watch(x)
        score = ops.max(ours(x), axis=-1)  # a saliency map: d(top logit)/d(pixels)
    with tf.GradientTape() as t:
        xt = tf.constant(x)
        t.watch(xt)
        expected_score = tf.reduce_max(theirs(xt), axis=-1)
    assert rel(tape.gradient(score, x), t.gradient(expected_score, xt)) < 1e-5


def test_loss_from_ops_and_python_operators_matches_tf():
    ours, theirs = twins()
    x, y = data()
    onehot = np.eye(3, dtype=np.float32)[y]
    with GradientTape() as tape:
        logits = ours(x, training=True)
        p = ops.softmax(logits)
        ce = -ops.mean(ops.sum(onehot * ops.log(ops.clip(p, 1e-7, 1.0)), axis=-1))
        penalty = ops.sum(ops.square(ours.trainable_variables[0])) / 2 + (logits ** 2).mean()
        loss = ce + 0.01 * penalty - ops.mean(ops.abs(logits - 1.0)) * 0.1 + ops.sqrt(ops.exp(ops.tanh(ce)))
    grads = tape.gradient(loss, ours.trainable_variables)
    with tf.GradientTape() as t:
        logits = theirs(x, training=True)
        p = tf.nn.softmax(logits)
        ce = -tf.reduce_mean(tf.reduce_sum(onehot * tf.math.log(tf.clip_by_value(p, 1e-7, 1.0)), axis=-1))
        penalty = tf.reduce_sum(tf.square(theirs.trainable_variables[0])) / 2 + tf.reduce_mean(logits ** 2)
        expected_loss = ce + 0.01 * penalty - tf.reduce_mean(tf.abs(logits - 1.0)) * 0.1 + tf.sqrt(tf.exp(tf.tanh(ce)))
    expected = t.gradient(expected_loss, theirs.trainable_variables)
    assert rel(loss, expected_loss) < 1e-5
    for g, e in zip(grads, expected):
        assert rel(g, e) < 1e-5


def gan_twins():
    """A generator and a discriminator, Sequential and functional, in both engines."""
    rng = np.random.default_rng(2)
    g = minicnn.Sequential([layers.Input((4,)), layers.Dense(12, activation="relu"), layers.Reshape((2, 2, 3)),
                            layers.Conv2D(2, 2, padding="same", activation="tanh")])
    inp = minicnn.Input((2, 2, 2))
    d = minicnn.Model(inp, layers.Dense(1)(layers.Flatten()(layers.Conv2D(3, 2)(inp))))
    kg = keras.Sequential([keras.Input((4,)), keras.layers.Dense(12, activation="relu"), keras.layers.Reshape((2, 2, 3)),
                           keras.layers.Conv2D(2, 2, padding="same", activation="tanh")])
    kin = keras.Input((2, 2, 2))
    kd = keras.Model(kin, keras.layers.Dense(1)(keras.layers.Flatten()(keras.layers.Conv2D(3, 2)(kin))))
    for ours, theirs in ((g, kg), (d, kd)):
        weights = [rng.standard_normal(w.shape).astype(np.float32) * 0.5 for w in theirs.get_weights()]
        ours.set_weights(weights)
        theirs.set_weights(weights)
    return g, d, kg, kd


def test_discriminator_called_twice_and_three_adam_steps_match_tf():
    """A GAN's step by hand: the discriminator on real and generated images in one tape (both
    calls' gradients add up), two Adam optimizers; after three steps the weights match."""
    g, d, kg, kd = gan_twins()
    bce, kbce = minicnn.losses.BinaryCrossentropy(from_logits=True), keras.losses.BinaryCrossentropy(from_logits=True)
    opts = minicnn.optimizers.Adam(1e-2), minicnn.optimizers.Adam(1e-2)
    kopts = keras.optimizers.Adam(1e-2), keras.optimizers.Adam(1e-2)
    rng = np.random.default_rng(3)
    for step in range(3):
        real = rng.standard_normal((6, 2, 2, 2)).astype(np.float32)
        z = rng.standard_normal((6, 4)).astype(np.float32)
        ones, zeros = np.ones((6, 1), np.float32), np.zeros((6, 1), np.float32)
        with GradientTape(persistent=True) as tape:
            fake = g(z, training=True)
            real_out, fake_out = d(real, training=True), d(fake, training=True)
            d_loss = bce(ones, real_out) + bce(zeros, fake_out)
            g_loss = bce(ones, fake_out)
        d_grads = tape.gradient(d_loss, d.trainable_variables)
        g_grads = tape.gradient(g_loss, g.trainable_variables)
        with tf.GradientTape(persistent=True) as t:
            fake = kg(z, training=True)
            real_out, fake_out = kd(real, training=True), kd(fake, training=True)
            kd_loss = kbce(ones, real_out) + kbce(zeros, fake_out)
            kg_loss = kbce(ones, fake_out)
        kd_grads = t.gradient(kd_loss, kd.trainable_variables)
        kg_grads = t.gradient(kg_loss, kg.trainable_variables)
        for a, b in zip(d_grads + g_grads, kd_grads + kg_grads):
            assert rel(a, b) < 1e-5
        opts[0].apply_gradients(zip(d_grads, d.trainable_variables))
        opts[1].apply(g_grads, g.trainable_variables)
        kopts[0].apply_gradients(zip(kd_grads, kd.trainable_variables))
        kopts[1].apply(kg_grads, kg.trainable_variables)
    for a, b in zip(d.get_weights() + g.get_weights(), kd.get_weights() + kg.get_weights()):
        assert rel(a, b) < 1e-5


def test_hand_written_loop_matches_tf_after_three_steps():
    ours, theirs = twins()
    opt, kopt = minicnn.optimizers.Adam(1e-2), keras.optimizers.Adam(1e-2)
    loss_fn = minicnn.losses.SparseCategoricalCrossentropy(from_logits=True)
    kloss_fn = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    for step in range(3):
        x, y = data(seed=step)
        with GradientTape() as tape:
            loss = loss_fn(y, ours(x, training=True))
        opt.apply_gradients(zip(tape.gradient(loss, ours.trainable_weights), ours.trainable_weights))
        with tf.GradientTape() as t:
            kloss = kloss_fn(y, theirs(x, training=True))
        kopt.apply_gradients(zip(t.gradient(kloss, theirs.trainable_weights), theirs.trainable_weights))
    for a, b in zip(ours.get_weights(), theirs.get_weights()):  # the moving statistics too
        assert rel(a, b) < 1e-5


def test_tape_gradients_equal_the_fast_backward():
    """A Sequential's fit step (fused kernels, its own backward) and the tape through the same
    layers give the same gradients."""
    minicnn.utils.set_random_seed(0)
    model = minicnn.Sequential([layers.Input((8, 8, 1)), layers.Conv2D(4, 3, activation="relu"), layers.MaxPooling2D(2),
                                layers.Flatten(), layers.Dense(3), layers.Activation("softmax")])
    model.compile(loss="sparse_categorical_crossentropy", optimizer="sgd")
    x = np.random.default_rng(0).random((5, 8, 8, 1)).astype(np.float32)
    y = np.array([0, 1, 2, 0, 1])
    model.backward(y, model.forward(x, training=True))
    fast = [layer.grads[k].copy() for layer in model.layers for k in layer.params]
    with GradientTape() as tape:
        loss = model.loss(y, model(x, training=True))
    for g, e in zip(tape.gradient(loss, model.trainable_variables), fast):
        assert rel(g, e) < 1e-5


# -- the tape's own rules ---------------------------------------------------------------------
def test_unreached_source_gives_none_and_lists_keep_their_order():
    a, b = np.array([1.0, 2.0]), np.array([3.0])
    with GradientTape() as tape:
        tape.watch([a, b])
        y = ops.sum(ops.square(a))
    assert tape.gradient(y, [b, a])[0] is None
    with GradientTape() as tape:
        tape.watch(a)
        y = ops.sum(ops.square(a))
    assert tape.gradient(y, {"a": a})["a"].tolist() == [2.0, 4.0]


def test_fan_out_adds_up_and_targets_are_summed():
    x = np.array([1.0, -2.0, 3.0])
    with GradientTape() as tape:
        tape.watch(x)
        y = ops.relu(x)
        z = y * y + y  # y read by three records
    np.testing.assert_allclose(tape.gradient(z, x), [3.0, 0.0, 7.0])


def test_a_layer_called_twice_keeps_two_records():
    dense = layers.Dense(2, dtype="float64")
    a, b = np.ones((1, 3)), np.full((1, 3), 2.0)
    with GradientTape() as tape:
        y = ops.sum(dense(a)) + ops.sum(dense(b))
    gW, gb = tape.gradient(y, dense.trainable_variables)
    np.testing.assert_allclose(gW, np.full((3, 2), 3.0))  # a + b, once per unit
    np.testing.assert_allclose(gb, [2.0, 2.0])


def test_persistent_and_non_persistent():
    x = minicnn.Variable(2.0, dtype="float64")  # an array whose arithmetic the tape records
    with GradientTape() as tape:
        y = x * x
    assert float(tape.gradient(y, x)) == 4.0
    with pytest.raises(RuntimeError, match="non-persistent"):
        tape.gradient(y, x)
    with GradientTape(persistent=True) as tape:
        y = x * x
        z = y * x
    assert float(tape.gradient(y, x)) == 4.0 and float(tape.gradient(z, x)) == 12.0


def test_an_operation_the_tape_cannot_differentiate_is_named():
    x = np.array([1.0, 2.0])
    with GradientTape() as tape:
        tape.watch(x)
        y = ops.exp(x)
        with pytest.raises(NotImplementedError, match="arctan"):
            np.arctan(y)
        with pytest.raises(NotImplementedError, match="cumsum"):
            np.cumsum(y)
        with pytest.raises(RuntimeError, match="in-place"):
            np.add(y, 1, out=y)
        z = y
        z += 1  # a new value, as with a TensorFlow tensor: y keeps the value the tape saved
        total = ops.sum(z)
    assert z is not y and tape.gradient(total, x)[0] == pytest.approx(np.e)


def test_second_order_is_a_clear_error():
    x = np.array([1.0, 2.0])
    with GradientTape() as outer:
        outer.watch(x)
        with GradientTape() as inner:
            inner.watch(x)
            y = ops.sum(ops.power(x, 3))
        g = inner.gradient(y, x)
        with pytest.raises(NotImplementedError, match="gradient of a gradient"):
            ops.sum(g * g)


def test_outside_a_tape_nothing_is_recorded():
    dense = layers.Dense(2)
    y = dense(np.ones((1, 3), np.float32))
    assert type(y) is np.ndarray or not isinstance(y, minicnn.tape.Tracked)
    assert not isinstance(ops.exp(np.ones(2)), minicnn.tape.Tracked)


def test_backward_after_an_inference_forward_is_an_error():
    dense = layers.Dense(2)
    x = np.ones((1, 3), np.float32)
    dense.forward(x, training=True)
    dense.forward(x, training=False)  # saves nothing: the training call's input is gone
    with pytest.raises(RuntimeError, match="before backward"):
        dense.backward(np.ones((1, 2), np.float32))


# -- the examples ---------------------------------------------------------------------------
def test_gan_example_runs_a_few_steps(real_data, tmp_path):
    """examples/fashion_mnist_gan.py: a tiny run steps both models and saves its samples."""
    from toy import load_script
    gan = load_script("examples/fashion_mnist_gan.py")
    generator, _, history = gan.train(steps=3, batch_size=8, log_every=0, x_train=real_data[0][0][:500])
    before = [w.copy() for w in generator.get_weights()]
    assert len(history) == 3 and all(np.isfinite(history).ravel())
    gan.save_samples(generator, tmp_path / "samples.png")
    assert (tmp_path / "samples.png").stat().st_size > 0
    assert all((a == b).all() for a, b in zip(before, generator.get_weights()))  # sampling trains nothing


def test_saliency_example_gives_one_map_per_image():
    from toy import load_script
    saliency = load_script("examples/fashion_mnist_saliency.py").saliency
    model = minicnn.Sequential([layers.Input((28, 28, 1)), layers.Conv2D(2, 3, activation="relu"), layers.Flatten(),
                                layers.Dense(10)])
    x = np.random.default_rng(0).random((3, 28, 28, 1)).astype(np.float32)
    maps = saliency(model, x, np.array([1, 2, 3]))
    assert maps.shape == (3, 28, 28) and (maps >= 0).all() and maps.any()


def test_inference_calls_are_differentiated_as_they_compute():
    """training=False under a tape: Dropout is the identity (not a stale mask), and the model's
    call gives the same gradient as the tape through the same layers run in inference mode."""
    drop = layers.Dropout(0.5)
    x = np.ones((2, 3))
    drop(x, training=True)  # leaves a mask behind, which an inference call must not use
    with GradientTape() as tape:
        tape.watch(x)
        y = ops.sum(drop(x, training=False) * 3.0)
    np.testing.assert_array_equal(tape.gradient(y, x), np.full((2, 3), 3.0))


@pytest.mark.parametrize("ours, theirs", [
    (lambda: minicnn.losses.MeanSquaredError(), lambda: keras.losses.MeanSquaredError()),
    (lambda: minicnn.losses.MeanAbsoluteError(), lambda: keras.losses.MeanAbsoluteError()),
    (lambda: minicnn.losses.Huber(0.3), lambda: keras.losses.Huber(0.3)),
    (lambda: minicnn.losses.CategoricalCrossentropy(), lambda: keras.losses.CategoricalCrossentropy()),
    (lambda: minicnn.losses.CategoricalCrossentropy(from_logits=True, label_smoothing=0.1),
     lambda: keras.losses.CategoricalCrossentropy(from_logits=True, label_smoothing=0.1)),
    (lambda: minicnn.losses.BinaryCrossentropy(), lambda: keras.losses.BinaryCrossentropy()),
    (lambda: minicnn.losses.BinaryCrossentropy(from_logits=True), lambda: keras.losses.BinaryCrossentropy(from_logits=True)),
    (lambda: minicnn.losses.mean_squared_error, lambda: keras.losses.mean_squared_error),
    (lambda: minicnn.losses.categorical_crossentropy, lambda: keras.losses.categorical_crossentropy),
], ids=["mse", "mae", "huber", "cce", "cce_logits_smooth", "bce", "bce_logits", "mse_fn", "cce_fn"])
def test_targets_computed_by_the_model_get_their_gradient(ours, theirs):
    """One output as another's target (a consistency loss): the loss's gradient reaches both."""
    rng = np.random.default_rng(4)
    a, b = rng.random((4, 3)).astype(np.float32), rng.random((4, 3)).astype(np.float32)
    w = rng.standard_normal((3, 3)).astype(np.float32)
    with GradientTape() as tape:
        tape.watch([a, b])
        loss = ops.sum(ours()(ops.softmax(ops.multiply(a, 2.0)), ops.softmax(ops.matmul(b, w))))
    with tf.GradientTape() as t:
        at, bt = tf.constant(a), tf.constant(b)
        t.watch([at, bt])
        expected = tf.reduce_sum(theirs()(tf.nn.softmax(at * 2.0), tf.nn.softmax(tf.matmul(bt, w))))
    for g, e in zip(tape.gradient(loss, [a, b]), t.gradient(expected, [at, bt])):
        assert rel(g, e) < 1e-5


def test_every_kind_of_layer_under_the_tape_matches_tensorflow():
    """Conv2DTranspose, UpSampling2D, ZeroPadding2D, the merging layers, pooling and
    normalization inside a subclassed model: the tape's gradients are Keras's on TensorFlow."""

    def build(lib):
        L = lib.layers

        class Net(lib.Model):
            def __init__(self):
                super().__init__()
                self.up = [L.Conv2DTranspose(3, 3, strides=2, padding="same"), L.UpSampling2D(2)]
                self.branches = [L.Conv2D(3, 3, padding="same", activation="relu"), L.ZeroPadding2D(1),
                                 L.AveragePooling2D(3, strides=1)]
                self.merges = [L.Add(), L.Multiply(), L.Subtract(), L.Maximum(), L.Average(), L.Concatenate()]
                self.head = [L.GlobalAveragePooling2D(), L.Dense(2)]

            def call(self, x, training=None):
                a = self.up[1](self.up[0](x))
                b = self.branches[0](a)
                c = self.branches[2](self.branches[1](b))
                m = self.merges[0]([a, b])
                m = self.merges[1]([m, c])
                m = self.merges[2]([m, a])
                m = self.merges[3]([m, b])
                m = self.merges[4]([m, c])
                m = self.merges[5]([m, a])
                return self.head[1](self.head[0](m))
        return Net()

    rng = np.random.default_rng(5)
    x = rng.standard_normal((2, 3, 3, 2)).astype(np.float32)
    ours, theirs = build(minicnn), build(keras)
    ours(x), theirs(x)
    weights = [rng.standard_normal(w.shape).astype(np.float32) * 0.5 for w in theirs.get_weights()]
    ours.set_weights(weights)
    theirs.set_weights(weights)
    with GradientTape() as tape:
        tape.watch(x)
        loss = ops.sum(ops.square(ours(x, training=True)))
    with tf.GradientTape() as t:
        xt = tf.constant(x)
        t.watch(xt)
        expected = tf.reduce_sum(tf.square(theirs(xt, training=True)))
    grads = tape.gradient(loss, [x, *ours.trainable_variables])
    for g, e in zip(grads, t.gradient(expected, [xt, *theirs.trainable_variables])):
        assert rel(g, e) < 1e-5
