"""minicnn.tf against TensorFlow itself: each name on the same inputs gives the same values,
dtypes and shapes; what minicnn.tf lacks is a clear error; it never imports TensorFlow."""
import os
import subprocess
import sys
import types

import numpy as np
import pytest

import minicnn
import minicnn.tf as mtf
from minicnn.utils import Tensor

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
tf = pytest.importorskip("tensorflow")


def same(ours, theirs, rtol=1e-6):
    """Same values, dtype and shape as TensorFlow's result."""
    theirs = theirs.numpy() if hasattr(theirs, "numpy") else np.asarray(theirs)
    ours = np.asarray(ours)
    assert ours.shape == np.shape(theirs), (ours.shape, np.shape(theirs))
    assert ours.dtype == np.asarray(theirs).dtype, (ours.dtype, np.asarray(theirs).dtype)
    np.testing.assert_allclose(ours, theirs, rtol=rtol, atol=1e-7)


X = np.array([[1.5, -2.0, 3.25], [0.5, 4.0, -1.0]], dtype=np.float32)
ARGUMENTS = [  # (name, args, kwargs): each called on minicnn.tf and on TensorFlow
    ("constant", ([1, 2, 3],), {}), ("constant", ([1.5, 2.0],), {}), ("constant", (3,), {}),
    ("constant", (X,), {}), ("constant", (np.arange(3.0),), {}), ("constant", (7.0,), {"shape": (2, 3)}),
    ("constant", ([1, 2],), {"dtype": "float32"}), ("constant", ([True, False],), {}),
    ("convert_to_tensor", ([[1.0, 2.0]],), {}), ("convert_to_tensor", (np.arange(4),), {}),
    ("convert_to_tensor", ([1, 2],), {"dtype": "int64"}),
    ("cast", (np.array([1.7, -1.7, 0.2]), "int32"), {}), ("cast", ([0.0, 2.5],), {"dtype": "bool"}),
    ("cast", (X, "float64"), {}), ("cast", (np.array([3, 0], np.int64), "float32"), {}),
    ("shape", (X,), {}), ("shape", (np.zeros((2, 0, 5)),), {}),
    ("reshape", (X, [3, -1]), {}), ("reshape", (X, (-1,)), {}),
    ("expand_dims", (X, 0), {}), ("expand_dims", (X, -1), {}), ("expand_dims", ([1, 2], 1), {}),
    ("argmax", (X,), {}), ("argmax", (X, 1), {}), ("argmax", (X,), {"axis": -1, "output_type": "int32"}),
    ("zeros", ((2, 3),), {}), ("ones", ([4],), {}), ("zeros", ((2,),), {"dtype": "int32"}),
    ("range", (5,), {}), ("range", (1, 7, 2), {}), ("range", (0.0, 1.0, 0.25), {}),
    ("reduce_mean", (X,), {}), ("reduce_mean", (X, 0), {}), ("reduce_mean", (X, [0, 1]), {"keepdims": True}),
    ("reduce_sum", (X, 1), {}), ("reduce_sum", ([[1, 2], [3, 4]],), {}),
    ("reduce_mean", ([[-1, -2], [3, 4]], 1), {}), ("reduce_mean", (np.array([250, 250], np.uint8),), {}), ("reduce_max", (X, -1), {}),
    ("reduce_max", (X,), {"keepdims": True}),
    ("square", (X,), {}), ("sqrt", (np.abs(X),), {}), ("exp", (X,), {}), 
    ("abs", (X,), {}), ("abs", ([-1, 2],), {}), ("maximum", (X, 0.5), {}), ("minimum", (X, X[::-1]), {}),
    ("matmul", (X, X.T), {}), ("concat", ([X, X], 0), {}), ("concat", ([X, X[:, :1]],), {"axis": 1}),
    ("stack", ([X, X],), {}), ("stack", ([X, X],), {"axis": -1}),
    ("ones_like", (X,), {}), ("zeros_like", (X,), {}), ("ones_like", ([1, 2],), {"dtype": "float32"}),
    ("math.reduce_mean", (X, 1), {}), ("math.square", (X,), {}), ("math.argmax", (X, 1), {}),
    ("math.sigmoid", (X,), {}), ("math.exp", (X,), {}), ("math.log", (np.abs(X),), {}),
    ("math.maximum", (X, 0.0), {}),
    ("nn.relu", (X,), {}), ("nn.sigmoid", (X,), {}), ("nn.softmax", (X,), {}), ("nn.softmax", (X,), {"axis": 0}),
    ("nn.sparse_softmax_cross_entropy_with_logits", (), {"labels": np.array([2, 0]), "logits": X}),
    ("reduce_min", (X, 0), {}), ("math.reduce_min", (X,), {}), ("tanh", (X,), {}), ("math.tanh", (X,), {}),
    ("nn.tanh", (X,), {}), ("transpose", (X,), {}), ("transpose", (X[None], [1, 0, 2]), {}),
    ("squeeze", (X[None, :, None],), {}), ("squeeze", (X[None, :, None], [2]), {}),
    ("clip_by_value", (X, -1.0, 2.0), {}), ("where", (X > 0, X, -X), {}), ("where", (X > 0,), {}),
    ("equal", (X, X[::-1]), {}), ("equal", ([1, 2], 2), {}), ("math.equal", (X, 1.5), {}),
    ("nn.leaky_relu", (X,), {}), ("nn.leaky_relu", (X,), {"alpha": 0.1}), ("nn.log_softmax", (X,), {}),
    ("nn.log_softmax", (X,), {"axis": 0}),
]


def look_up(module, dotted):
    for part in dotted.split("."):
        module = getattr(module, part)
    return module


def with_tf_dtypes(value):
    """The same argument for TensorFlow: dtype names as tf.DTypes."""
    return getattr(tf, value) if isinstance(value, str) and value in ("int32", "int64", "float32", "float64", "bool") \
        else value


@pytest.mark.parametrize("name, args, kwargs", ARGUMENTS, ids=[f"{a[0]}-{i}" for i, a in enumerate(ARGUMENTS)])
def test_each_function_matches_tensorflow(name, args, kwargs):
    ours = look_up(mtf, name)(*args, **kwargs)
    theirs = look_up(tf, name)(*[with_tf_dtypes(a) for a in args], **{k: with_tf_dtypes(v) for k, v in kwargs.items()})
    same(ours, theirs, rtol=1e-5)
    assert isinstance(ours, Tensor) and np.asarray(ours.numpy()).dtype == np.asarray(ours).dtype  # .numpy() works


def test_dtypes_and_newaxis_are_tensorflows():
    for name in ("float16", "float32", "float64", "int8", "int16", "int32", "int64", "uint8", "bool"):
        assert np.dtype(getattr(mtf, name)) == getattr(tf, name).as_numpy_dtype, name
        assert getattr(mtf.dtypes, name) is getattr(mtf, name)
    x = np.arange(6.0).reshape(2, 3)
    same(x[:, mtf.newaxis], tf.constant(x)[:, tf.newaxis])
    assert np.zeros(2, dtype=mtf.float32).dtype == np.float32 and mtf.cast([1], mtf.int64).dtype == np.int64


def test_keras_is_minicnn_under_every_import_spelling():
    assert mtf.keras is minicnn
    from minicnn.tf.keras import layers
    from minicnn.tf.keras.layers import Dense
    from minicnn.tf.keras.models import Sequential

    from minicnn.tf import keras
    assert keras is minicnn and layers is minicnn.layers and Dense is minicnn.layers.Dense
    assert Sequential is minicnn.models.Sequential
    from minicnn.tf.keras import plot  # a module minicnn imports only when asked
    from minicnn.tf.keras.preprocessing.image import ImageDataGenerator
    from minicnn.tf.keras.utils.np_utils import to_categorical
    assert ImageDataGenerator is minicnn.preprocessing.image.ImageDataGenerator
    assert to_categorical is sys.modules["minicnn.utils.np_utils"].to_categorical
    assert plot is sys.modules["minicnn.plot"]
    assert plot.__spec__.name == plot.__name__ == "minicnn.plot"
    assert mtf.keras.utils.to_categorical is minicnn.utils.to_categorical


def test_version_is_minicnns_own():
    assert mtf.__version__ == mtf.version.VERSION == minicnn.__version__
    assert mtf.__version__ != tf.__version__


def test_function_runs_the_function_as_it_is():
    def step(x):
        return x * 2

    assert mtf.function(step) is step
    assert mtf.function(jit_compile=True)(step) is step
    assert mtf.function(reduce_retracing=True, input_signature=None)(step)(np.ones(2)).tolist() == [2, 2]

    class Model:
        @mtf.function
        def call(self, x):
            return x + 1

    assert Model().call(1) == 2


def test_random_draws_have_tensorflows_shapes_dtypes_and_moments():
    n = mtf.random.normal([200, 50], mean=2.0, stddev=3.0)
    t = tf.random.normal([200, 50], mean=2.0, stddev=3.0)
    assert n.shape == tuple(t.shape) and n.dtype == t.dtype.as_numpy_dtype
    assert abs(n.mean() - 2.0) < 0.1 and abs(n.std() - 3.0) < 0.1  # 10,000 draws: 0.1 is > 3 standard errors
    u = mtf.random.uniform((100, 100), minval=-1, maxval=3)
    assert u.dtype == np.float32 and u.min() >= -1 and u.max() < 3 and abs(u.mean() - 1) < 0.1
    assert mtf.random.uniform((3,)).max() < 1
    i = mtf.random.uniform((1000,), maxval=5, dtype=mtf.int32)
    assert i.dtype == np.int32 and set(i.tolist()) == {0, 1, 2, 3, 4}
    with pytest.raises(ValueError, match="maxval"):
        mtf.random.uniform((2,), dtype=mtf.int64)


def test_set_seed_makes_runs_repeatable_and_seeds_minicnn():
    def draws():
        mtf.random.set_seed(42)
        return (mtf.random.normal([3]), mtf.random.uniform([2]), mtf.random.normal([2], seed=7),
                mtf.random.normal([2], seed=7), minicnn.layers.Dense(2).build((None, 3)) or None,
                minicnn.utils.rng().random(), np.random.random())

    first, second = draws(), draws()
    for a, b in zip(first, second):
        if a is not None:
            np.testing.assert_array_equal(a, b)
    assert not np.array_equal(first[2], first[3])  # an op seed gives a sequence, not one draw repeated
    mtf.random.set_seed(43)
    assert not np.array_equal(mtf.random.normal([3]), first[0])
    with pytest.raises(TypeError, match="seed"):
        mtf.random.set_seed("x")


def test_list_physical_devices(fake_gpu):
    fake_gpu.cuda.runtime.getDeviceCount = lambda: 2
    assert [d.name for d in mtf.config.list_physical_devices()] == \
        ["/physical_device:CPU:0", "/physical_device:GPU:0", "/physical_device:GPU:1"]
    gpus = mtf.config.list_physical_devices("GPU")
    assert [d.device_type for d in gpus] == ["GPU", "GPU"]
    for device in gpus:  # the lines tutorials open with
        mtf.config.experimental.set_memory_growth(device, True)
    mtf.config.run_functions_eagerly(True)


def test_list_physical_devices_without_a_gpu(monkeypatch):
    monkeypatch.setattr(minicnn.gpu, "available", lambda: False)
    assert mtf.config.list_physical_devices("GPU") == []
    theirs = tf.config.list_physical_devices("CPU")
    assert mtf.config.list_physical_devices("CPU") == [(d.name, d.device_type) for d in theirs]


@pytest.mark.parametrize("name, where", [("Module", "tf"), ("one_hot", "tf"), ("nn.conv2d", "nn"),
                                         ("math.reduce_std", "math"), ("random.shuffle", "random"),
                                         ("config.set_visible_devices", "config"), ("data.TFRecordDataset", "data")])
def test_anything_else_names_the_tensorflow_function(name, where):
    with pytest.raises(AttributeError, match=f"TensorFlow's {name} is not part of minicnn.tf; "):
        look_up(mtf, name)
    assert not hasattr(mtf, name.split(".")[-1]) or "." in name


def test_missing_names_say_what_to_use_instead():
    with pytest.raises(AttributeError, match="to_categorical"):
        mtf.one_hot  # noqa: B018
    with pytest.raises(AttributeError, match="Conv2D"):
        mtf.nn.conv2d  # noqa: B018


def test_the_docstring_lists_every_name():
    helpers = ("namedtuple", "PhysicalDevice", "list_physical_devices", "set_seed", "normal", "uniform")
    public = [n for n, obj in vars(mtf).items() if not n.startswith("_") and n not in helpers
              and (not isinstance(obj, types.ModuleType) or n in ("keras", "data"))]
    for name in public:
        assert name in mtf.__doc__, name
    for namespace in ("math", "nn", "random", "config", "version", "dtypes"):
        for name in vars(getattr(mtf, namespace)):
            if not name.startswith("_"):
                assert f"{namespace}.{name}" in mtf.__doc__ or f"{namespace}.*" in mtf.__doc__ or \
                    (namespace == "math" and name in mtf.__doc__), f"{namespace}.{name}"


def test_never_imports_tensorflow():
    code = ("import sys, minicnn.tf as tf; ds = tf.data.Dataset.from_tensor_slices([1, 2]).shuffle(2).batch(2); "
            "list(ds); tf.reduce_mean([1.0]); tf.config.list_physical_devices(); "
            "assert not [m for m in sys.modules if m.split('.')[0] in ('tensorflow', 'keras')], 'imported'")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    subprocess.run([sys.executable, "-c", code], check=True, env=env, timeout=120)


@pytest.mark.parametrize("name", ["relu", "sigmoid", "softmax", "tanh"])
def test_tf_nn_functions_are_accepted_as_activations(name):
    from minicnn.layers import Activation, Dense
    x = np.random.default_rng(0).normal(size=(4, 3)).astype(np.float32)
    ours = Dense(5, activation=getattr(mtf.nn, name))
    by_name = Dense(5, activation=name)
    ours.forward(x), by_name.forward(x)
    by_name.set_weights(ours.get_weights())
    np.testing.assert_array_equal(ours.forward(x), by_name.forward(x))
    np.testing.assert_allclose(ours.forward(x), getattr(tf.nn, name)(x @ ours.get_weights()[0]).numpy(), rtol=1e-5,
                               atol=1e-6)
    assert Activation(getattr(mtf.nn, name)).get_config()["activation"] == name


# -- gradients under the tape, against tf.GradientTape ------------------------------------------------
RNG = np.random.default_rng(7)
A = RNG.normal(size=(3, 4)).astype(np.float32)
POSITIVE = np.abs(A) + 0.5
B = RNG.normal(size=(4, 3)).astype(np.float32)
LABELS = np.array([3, 0, 2])
# (name, function of the watched x as a lambda of (t, x)). Every use of x goes through a function:
# on minicnn's tape, operators on a watched input array itself are plain NumPy, unrecorded.
DIFFERENTIABLE = [
    ("reduce_mean", lambda t, x: t.reduce_mean(x)), ("reduce_mean axis", lambda t, x: t.reduce_mean(x, axis=1)),
    ("reduce_sum keepdims", lambda t, x: t.reduce_sum(x, axis=0, keepdims=True)),
    ("reduce_max", lambda t, x: t.reduce_max(x, axis=-1)), ("square", lambda t, x: t.square(x)),
    ("sqrt", lambda t, x: t.sqrt(x)), ("exp", lambda t, x: t.exp(x)), ("abs", lambda t, x: t.abs(x)),
    ("math.log", lambda t, x: t.math.log(x)), ("maximum", lambda t, x: t.maximum(x, 0.1)),
    ("minimum", lambda t, x: t.minimum(x, t.square(x))), ("matmul", lambda t, x: t.matmul(t.abs(x), t.reshape(x, [4, 3]))),
    ("concat", lambda t, x: t.concat([x, t.square(x)], axis=1)), ("stack", lambda t, x: t.stack([x, t.exp(x)])),
    ("cast", lambda t, x: t.cast(x, t.float64) * 3.0), ("reshape", lambda t, x: t.reshape(x, [2, -1]) * [[1.0], [2.0]]),
    ("expand_dims", lambda t, x: t.expand_dims(x, 1) * 2.0), ("nn.relu", lambda t, x: t.nn.relu(x)),
    ("nn.sigmoid", lambda t, x: t.nn.sigmoid(x)), ("nn.softmax", lambda t, x: t.nn.softmax(x)),
    ("nn.softmax axis", lambda t, x: t.nn.softmax(x, axis=0)),
    ("sparse_softmax_cross_entropy_with_logits",
     lambda t, x: t.nn.sparse_softmax_cross_entropy_with_logits(labels=LABELS, logits=x)),
    ("reduce_min", lambda t, x: t.reduce_min(x, axis=0)), ("tanh", lambda t, x: t.tanh(x)),
    ("transpose", lambda t, x: t.transpose(x) * B),
    ("squeeze", lambda t, x: t.squeeze(t.expand_dims(x, 0))), ("clip_by_value", lambda t, x: t.clip_by_value(x, -0.5, 1.0)),
    ("where", lambda t, x: t.where(A > 0, t.square(x), t.exp(x))), ("nn.tanh", lambda t, x: t.nn.tanh(x)),
    ("nn.leaky_relu", lambda t, x: t.nn.leaky_relu(x, alpha=0.3)), ("nn.log_softmax", lambda t, x: t.nn.log_softmax(x)),
        ("a loss of several", lambda t, x: t.reduce_mean(t.square(t.nn.relu(x) - 0.5)) + 0.1 * t.reduce_sum(t.abs(x))),
]


@pytest.mark.parametrize("name, fn", DIFFERENTIABLE, ids=[d[0] for d in DIFFERENTIABLE])
def test_gradients_under_the_tape_match_tensorflows(name, fn):
    x0 = POSITIVE if name in ("sqrt", "math.log") else A
    x = x0.copy()
    with mtf.GradientTape() as tape:
        tape.watch(x)
        y = fn(mtf, x)
        upstream = np.random.default_rng(1).normal(size=np.shape(y)).astype(np.asarray(y).dtype)
        loss = mtf.reduce_sum(y * upstream)
    ours = tape.gradient(loss, x)
    xt = tf.constant(x0)
    with tf.GradientTape() as tt:
        tt.watch(xt)
        yt = fn(tf, xt)
        lt = tf.reduce_sum(yt * upstream)
    theirs = tt.gradient(lt, xt).numpy()
    np.testing.assert_allclose(np.asarray(y), yt.numpy(), rtol=1e-5, atol=1e-6)
    assert ours is not None and np.asarray(ours).dtype == theirs.dtype
    np.testing.assert_allclose(ours, theirs, rtol=1e-5, atol=1e-6)


def test_gradient_tape_and_variable_are_minicnns():
    assert mtf.GradientTape is minicnn.GradientTape and mtf.Variable is minicnn.Variable


def test_tensorflows_custom_training_basics_gives_tensorflows_weights():
    """TensorFlow's "custom training basics" loop: y = w x + b fitted by hand with tf.Variable,
    a tape and assign_sub. On the same data, minicnn.tf's weights follow TensorFlow's step for step."""
    rng = np.random.default_rng(3)
    x = rng.normal(size=1000).astype(np.float32)
    y = x * 3.0 + 2.0 + rng.normal(size=1000).astype(np.float32)

    def train(t):
        w, b = t.Variable(5.0), t.Variable(0.0)
        path = []
        for _ in range(10):
            with t.GradientTape() as tape:
                current_loss = t.reduce_mean(t.square(y - (w * x + b)))
            dw, db = tape.gradient(current_loss, [w, b])
            w.assign_sub(0.1 * dw)
            b.assign_sub(0.1 * db)
            path.append((float(np.asarray(w)), float(np.asarray(b)), float(current_loss)))
        return np.array(path)

    ours, theirs = train(mtf), train(tf)
    np.testing.assert_allclose(ours, theirs, rtol=1e-5)
    assert abs(ours[-1, 0] - 3.0) < 0.5 and ours[-1, 2] < ours[0, 2] / 4


def test_tensorflows_quickstart_for_experts_runs_and_learns(real_data, monkeypatch, capsys):
    """examples/tf_quickstart.py: TensorFlow's tutorial (subclassed model, tf.data, a tape and
    @tf.function steps) with its imports changed, on 600 Fashion-MNIST images for 5 epochs."""
    import runpy
    from pathlib import Path

    (x, y), (x_test, y_test) = real_data
    monkeypatch.setattr(minicnn.datasets.fashion_mnist, "load_data",
                        lambda *args, **kwargs: ((x[:600], y[:600]), (x_test[:300], y_test[:300])))
    mtf.random.set_seed(0)
    runpy.run_path(str(Path(__file__).resolve().parents[1] / "examples" / "tf_quickstart.py"), run_name="__main__")
    epochs = [dict(part.split(": ") for part in line.split(", ")[1:]) for line in capsys.readouterr().out.splitlines()
              if line.startswith("Epoch")]
    assert len(epochs) == 5
    assert float(epochs[-1]["Loss"]) < 0.6 * float(epochs[0]["Loss"])  # the training loss falls
    assert float(epochs[-1]["Test Accuracy"]) > 65  # chance is 10
