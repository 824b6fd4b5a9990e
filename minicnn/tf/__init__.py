"""minicnn.tf: the part of TensorFlow that Keras tutorials touch, so that a TensorFlow program
runs on minicnn with its import lines changed only:

    import tensorflow as tf              ->  import minicnn.tf as tf
    from tensorflow import keras         ->  from minicnn.tf import keras
    from tensorflow.keras import layers  ->  from minicnn.tf.keras import layers

A tensor here is a NumPy array (minicnn.utils.Tensor: an ndarray that also answers .numpy()).
This module never imports TensorFlow. Every name it offers, and where it comes from:

    keras                    minicnn itself (keras.layers, keras.Model, keras.utils, ...)
    GradientTape, Variable   minicnn's tape and its variables (minicnn/tape.py)
    function                 a decorator that returns the function as it is: no graph compiler
    newaxis                  None, as numpy.newaxis
    float16 float32 float64 int8 int16 int32 int64 uint8 bool, dtypes.*    NumPy's types
    constant convert_to_tensor shape argmax zeros ones range    NumPy, with TensorFlow's dtypes
    cast reshape expand_dims transpose squeeze reduce_mean reduce_sum reduce_max reduce_min
    square sqrt exp abs tanh maximum minimum clip_by_value where matmul concat stack ones_like
    zeros_like               minicnn.ops with TensorFlow's arguments (minicnn/tf/_diff.py):
                             differentiable under the tape
    equal                    NumPy: a comparison has no gradient
    math.*                   math.reduce_mean ... math.tanh as above, math.log, math.sigmoid
                             (minicnn.ops), math.argmax, math.equal
    nn.relu nn.softmax nn.sigmoid nn.tanh nn.leaky_relu nn.log_softmax
    nn.sparse_softmax_cross_entropy_with_logits    minicnn.ops; relu, sigmoid, softmax and
                             tanh also as a layer's activation=
    random.normal random.uniform random.set_seed    minicnn's generators (minicnn.utils)
    config.list_physical_devices    the CPU, and each GPU the CuPy backend sees
    config.experimental.set_memory_growth, config.run_functions_eagerly    accepted, do nothing
    version.VERSION, __version__    minicnn's own version
    data.Dataset, data.AUTOTUNE, data.INFINITE_CARDINALITY ...    minicnn/tf/data.py

Anything else is an AttributeError that names the TensorFlow function and says what minicnn
offers in its place. docs/keras.md ("From TensorFlow to minicnn.tf") says what differs.
"""
import builtins
import importlib.abc
import importlib.util
import sys
from collections import namedtuple

import numpy as np

from minicnn import gpu, utils
from minicnn.tape import GradientTape, Variable  # noqa: F401  (tf.GradientTape, tf.Variable)
from minicnn.tf import _diff, data  # noqa: F401  (tf.data)
from minicnn.tf._diff import _tensor, convert_to_tensor
from minicnn.version import __version__

keras = sys.modules["minicnn"]  # the package, imported before any of its submodules


class _KerasModules(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """`from minicnn.tf.keras.layers import Dense` (TensorFlow's `tensorflow.keras.layers`) gets
    minicnn.layers itself, never a second copy of it: minicnn.tf.keras.X is minicnn.X."""

    prefix = __name__ + ".keras."

    def find_spec(self, name, path=None, target=None):
        return importlib.util.spec_from_loader(name, self) if name.startswith(self.prefix) else None

    def create_module(self, spec):
        module = importlib.import_module("minicnn." + spec.name[len(self.prefix):])
        spec.loader_state = module.__spec__  # the import system is about to set the alias's spec
        return module

    def exec_module(self, module):
        module.__spec__ = module.__spec__.loader_state  # the module keeps its own spec


sys.modules[__name__ + ".keras"] = keras
if not any(isinstance(f, _KerasModules) for f in sys.meta_path):
    sys.meta_path.insert(0, _KerasModules())  # before the path finder, which would load a copy from minicnn's folder

# -- dtypes: NumPy's types, so dtype=tf.float32 and x.dtype == tf.float32 work with arrays ----------
float16, float32, float64 = np.float16, np.float32, np.float64
int8, int16, int32, int64, uint8 = np.int8, np.int16, np.int32, np.int64, np.uint8
bool = np.bool_  # tf.bool
newaxis = None


class _Namespace:
    """A group of names such as tf.math or tf.random; a name it lacks raises _missing's error."""

    def __init__(self, prefix, **names):
        self._prefix = prefix
        self.__dict__.update(names)

    def __getattr__(self, name):
        raise _missing(f"{self._prefix}.{name}")

    def __repr__(self):
        return f"<minicnn.tf.{self._prefix}: {', '.join(sorted(k for k in self.__dict__ if k[0] != '_'))}>"


dtypes = _Namespace("dtypes", float16=float16, float32=float32, float64=float64, int8=int8, int16=int16,
                    int32=int32, int64=int64, uint8=uint8, bool=bool)


# -- tensors: NumPy arrays with .numpy() -------------------------------------------------------------
def constant(value, dtype=None, shape=None, name=None):
    """A Tensor holding value (a copy), of dtype and, when given, broadcast to shape."""
    a = np.array(convert_to_tensor(value, dtype))
    if shape is not None:
        a = np.broadcast_to(a, tuple(shape)).copy() if a.size == 1 else a.reshape(shape)
    return _tensor(a)


def shape(input, out_type=np.int32, name=None):
    """input's shape as a 1-d int32 Tensor."""
    return _tensor(np.array(np.shape(input), dtype=out_type))


def argmax(input, axis=None, output_type=np.int64, name=None):
    """The index of the largest value along axis: axis 0 when None, as TensorFlow; int64."""
    return _tensor(np.argmax(convert_to_tensor(input), axis=0 if axis is None else int(axis)).astype(output_type))


def zeros(shape, dtype=np.float32, name=None):
    """A float32 Tensor of zeros."""
    return _tensor(np.zeros(tuple(np.asarray(shape).reshape(-1).tolist()), dtype=dtype))


def ones(shape, dtype=np.float32, name=None):
    """A float32 Tensor of ones."""
    return _tensor(np.ones(tuple(np.asarray(shape).reshape(-1).tolist()), dtype=dtype))


def range(start, limit=None, delta=1, dtype=None, name=None):  # tf.range; builtins.range below
    """start, start + delta, ... below limit; int32 for integer arguments, float32 for floats."""
    if limit is None:
        start, limit = 0, start
    return convert_to_tensor(np.arange(start, limit, delta), dtype=dtype) if dtype else \
        convert_to_tensor(np.arange(start, limit, delta).tolist() or np.zeros(0, np.int32))


def function(func=None, input_signature=None, autograph=True, jit_compile=None, reduce_retracing=False, **kwargs):
    """tf.function, as a decorator (@tf.function or @tf.function(jit_compile=True)): the
    function is returned as it is. minicnn has no graph compiler; the function runs eagerly,
    every call, as TensorFlow runs it under tf.config.run_functions_eagerly(True)."""
    if func is None:
        return lambda f: f
    return func


# -- differentiable functions: TensorFlow's names and arguments ------------------------------------
cast, reshape, expand_dims = _diff.cast, _diff.reshape, _diff.expand_dims
reduce_mean, reduce_sum, reduce_max = _diff.reduce_mean, _diff.reduce_sum, _diff.reduce_max
square, sqrt, exp, abs = _diff.square, _diff.sqrt, _diff.exp, _diff.abs
maximum, minimum, concat, stack, matmul = _diff.maximum, _diff.minimum, _diff.concat, _diff.stack, _diff.matmul
ones_like, zeros_like, reduce_min, tanh = _diff.ones_like, _diff.zeros_like, _diff.reduce_min, _diff.tanh
transpose, squeeze, clip_by_value, where, equal = _diff.transpose, _diff.squeeze, _diff.clip_by_value, _diff.where, \
    _diff.equal
math = _Namespace("math", reduce_mean=reduce_mean, reduce_sum=reduce_sum, reduce_max=reduce_max, reduce_min=reduce_min,
                  square=square, sqrt=sqrt, exp=exp, log=_diff.log, abs=abs, maximum=maximum, minimum=minimum,
                  tanh=tanh, argmax=argmax, equal=equal, sigmoid=_diff.sigmoid)
nn = _Namespace("nn", relu=_diff.relu, softmax=_diff.softmax, sigmoid=_diff.sigmoid, tanh=tanh,
                leaky_relu=_diff.leaky_relu, log_softmax=_diff.log_softmax,
                sparse_softmax_cross_entropy_with_logits=_diff.sparse_softmax_cross_entropy_with_logits)


# -- random numbers: minicnn's generators ---------------------------------------------------------------
_seeded = {}  # op seed -> its generator: the same sequence in every run, new numbers at each call


def _generator(seed):
    if seed is None:
        return utils.rng()
    if seed not in _seeded:
        _seeded[seed] = np.random.default_rng(int(seed))
    return _seeded[seed]


def set_seed(seed):
    """Seed minicnn's generator, NumPy's and Python's, as keras.utils.set_random_seed does."""
    utils.set_random_seed(seed)
    _seeded.clear()


def normal(shape, mean=0.0, stddev=1.0, dtype=np.float32, seed=None, name=None):
    """Samples of N(mean, stddev**2) of the given shape, float32, from minicnn's generator."""
    size = tuple(np.asarray(shape).reshape(-1).tolist())
    return _tensor(_generator(seed).normal(mean, stddev, size=size).astype(dtype))


def uniform(shape, minval=0, maxval=None, dtype=np.float32, seed=None, name=None):
    """Samples of U[minval, maxval) (maxval 1 for floats; required for integers), from minicnn's generator."""
    size = tuple(np.asarray(shape).reshape(-1).tolist())
    if np.issubdtype(dtype, np.integer):
        if maxval is None:
            raise ValueError("tf.random.uniform with an integer dtype needs maxval")
        return _tensor(_generator(seed).integers(minval, maxval, size=size).astype(dtype))
    return _tensor(_generator(seed).uniform(minval, 1.0 if maxval is None else maxval, size=size).astype(dtype))


random = _Namespace("random", normal=normal, uniform=uniform, set_seed=set_seed)

# -- devices and versions ---------------------------------------------------------------------------------------
PhysicalDevice = namedtuple("PhysicalDevice", "name device_type")


def list_physical_devices(device_type=None):
    """The CPU, and each GPU that the CuPy backend sees, as TensorFlow's PhysicalDevice(name, device_type)."""
    devices = [PhysicalDevice("/physical_device:CPU:0", "CPU")]
    if gpu.available():
        count = gpu.cupy().cuda.runtime.getDeviceCount()
        devices += [PhysicalDevice(f"/physical_device:GPU:{i}", "GPU") for i in builtins.range(count)]
    return [d for d in devices if device_type is None or d.device_type == str(device_type).upper()]


def _accepted(*args, **kwargs):
    """Accepted for TensorFlow's sake; minicnn has nothing to set."""
    return


config = _Namespace("config", list_physical_devices=list_physical_devices, run_functions_eagerly=_accepted,
                    experimental=_Namespace("config.experimental", set_memory_growth=_accepted,
                                            list_physical_devices=list_physical_devices))
version = _Namespace("version", VERSION=__version__)


# -- the rest of TensorFlow: a clear error ------------------------------------------------------------------------
_INSTEAD = {
    "Tensor": "minicnn's tensors are NumPy arrays (minicnn.utils.Tensor adds .numpy())",
    "one_hot": "use keras.utils.to_categorical(labels, num_classes)",
    "image": "resize and augment with NumPy, or with keras.layers.Rescaling and the Random* layers",
    "saved_model": "use model.save(path) and keras.models.load_model(path)",
    "distribute": "minicnn trains on one CPU or one GPU (model.to('gpu'))",
    "lite": "minicnn has no converter; model.save writes an .npz of arrays plus JSON",
    "summary": "use keras.callbacks.CSVLogger, or History's .history",
    "device": "minicnn's arrays live where the backend puts them: model.to('gpu') moves a model",
    "conv2d": "use keras.layers.Conv2D", "max_pool2d": "use keras.layers.MaxPooling2D",
    "dropout": "use keras.layers.Dropout", "reduce_min": "use NumPy's min (or minicnn.ops.min)",
}


def _missing(name):
    instead = _INSTEAD.get(name.split(".")[-1], "use NumPy (minicnn's tensors are NumPy arrays), minicnn.ops, "
                           "or keras (minicnn) itself; help(minicnn.tf) lists every name minicnn.tf offers")
    return AttributeError(f"TensorFlow's {name} is not part of minicnn.tf; {instead}")


def __getattr__(name):
    if name.startswith("__"):
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    raise _missing(name)
