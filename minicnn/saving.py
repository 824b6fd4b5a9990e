"""Saving and loading models: one .npz file of plain arrays plus a JSON header. Never pickle.

    model.save("model.npz")                  # architecture, weights, optimizer state
    model = minicnn.models.load_model("model.npz")   # compiled, ready to fit on or predict
    model.save_weights("w.npz"); model.load_weights("w.npz")   # the weights alone

Inside the file (an ordinary npz: np.load(path) opens it):
    "__minicnn__"           a 0-d string array: JSON {"format", "format_version", "model", ...}
    "layer{i}/{key}"        layer i's weight `key`: a param ("W", "b") or a state array
                            ("moving_mean"), e.g. "layer0/W": (3, 3, 1, 64)
    "optimizer{j}/{slot}"   the optimizer's state of param j, e.g. Adam's "optimizer0/m"

Writes are atomic (minicnn.io.atomic_write): a crash leaves the previous file whole. Loading
goes through one reader (_opened, _Reader): the header first, every class name looked up in
minicnn's tables, then each array's .npy header checked against the shape and dtype the model
expects, and against the bytes the file holds, before its data is read. Nothing is unpickled,
nothing the header declares is allocated unchecked, and any damage ends in ModelFileError.
"""
import contextlib
import json
import lzma
import math
import struct
import tokenize
import zipfile
import zlib

import numpy as np

from minicnn import gpu, losses, metrics, optimizers, registry
from minicnn.io import atomic_write
from minicnn.version import __version__

FORMAT_VERSION = 1
HEADER = "__minicnn__"


class ModelFileError(ValueError):
    """A model or weights file is corrupt, truncated, foreign, or from a newer minicnn."""


# -- writing -------------------------------------------------------------------------------
def model_config(model):
    """What the header stores of the model: its class name and its own get_config()."""
    if not model.built:
        raise RuntimeError("the model is not built yet: give the first layer input_shape=, or call fit/predict once")
    return {"class_name": type(model).__name__, **model.get_config()}


def multi_io_compile_config(model):
    """compile's arguments of a model of several inputs or outputs, one entry per output."""
    from minicnn.multi_io import per_output
    compiled, names = model.compiled_outputs, model.output_names
    raw = per_output(model.compile_args["metrics"], names, "metrics") if len(names) > 1 else \
        [model.compile_args["metrics"]]
    return {"per_output": True, "optimizer": model.optimizer.get_config(),
            "loss": [None if v is None else losses.serialize(v) for v in compiled.losses],
            "loss_weights": compiled.weights,
            "metrics": [[metrics.serialize(m) for m in (ms if isinstance(ms, (list, tuple)) else [] if ms is None else [ms])]
                        for ms in raw]}


def _checked(what, a, shape, dtype):
    """a as a NumPy array, if it is a finite array of this shape and dtype; else a ValueError
    that names it. Every array is checked before anything is written: a save never replaces a
    good file with one that load_model would refuse."""
    if not (isinstance(a, np.ndarray) or gpu.is_device_array(a)):
        raise ValueError(f"{what} is {type(a).__name__}, not an array of shape {shape} and dtype {dtype}; "
                         "nothing was written")
    a = gpu.to_host(a)  # a GPU model saves NumPy arrays
    if a.dtype != dtype or a.shape != tuple(shape):
        raise ValueError(f"{what} has shape {a.shape} and dtype {a.dtype}, the layer's is {tuple(shape)} {dtype}; "
                         "nothing was written")
    if not np.isfinite(a).all():
        raise ValueError(f"{what} holds NaN or Inf; nothing was written")
    return a


def _weight_arrays(model):
    arrays = {}
    for i, layer in enumerate(model.layers):
        for key, p in layer.weight_dict().items():
            shape = layer.param_shapes.get(key, getattr(p, "shape", ()))
            arrays[f"layer{i}/{key}"] = _checked(f"layer {layer.name!r} weight {key!r}", p, shape, layer.dtype)
    return arrays


def _write_npz(path, header, arrays):
    arrays = {HEADER: np.array(json.dumps(header)), **arrays}
    return atomic_write(path, lambda f: np.savez(f, **arrays))


def save_model(model, path, include_optimizer=True, training_state=None):
    """Write the architecture, the weights and (when compiled) the loss, metrics and optimizer
    with its state, so that load_model(path) resumes training exactly where it stopped.
    training_state: a JSON-able dict kept in the same file (BackupAndRestore's epoch and random
    state), so that the model and the state are replaced together or not at all."""
    header = {"format": "minicnn.model", "format_version": FORMAT_VERSION, "minicnn_version": __version__,
              "model": model_config(model), "compile": None,
              **({} if training_state is None else {"training_state": training_state})}
    arrays = _weight_arrays(model)
    if model.loss is not None and model.optimizer is not None:
        opt = model.optimizer
        if getattr(model, "multi_io", False):  # one loss, weight and list of metrics per output
            header["compile"] = multi_io_compile_config(model)
        else:
            header["compile"] = {"loss": losses.serialize(model.loss), "optimizer": opt.get_config(),
                                 "metrics": [metrics.serialize(m) for m in model.compiled_metrics]}
        if include_optimizer:
            header["optimizer_state"] = {"iterations": opt.iterations, "has_slots": opt.slots is not None}
            params = [p for _, p in model.grads_and_params()]
            if opt.slots is not None and len(opt.slots) != len(params):
                raise ValueError(f"the optimizer holds state for {len(opt.slots)} params, the model has "
                                 f"{len(params)}; nothing was written")
            for j, (p, slots) in enumerate(zip(params, opt.slots or [])):
                for name, v in slots.items():
                    arrays[f"optimizer{j}/{name}"] = _checked(f"the optimizer's {name!r} of param {j}", v,
                                                              p.shape, p.dtype)
    return _write_npz(path, header, arrays)


def save_weights(model, path):
    """Write the weights alone, with each layer's name and shapes for the checks on loading."""
    arrays = _weight_arrays(model)  # checked first: nothing is written for a damaged model
    header = {"format": "minicnn.weights", "format_version": FORMAT_VERSION, "minicnn_version": __version__,
              "layers": [{"name": layer.name, "shapes": {k: list(p.shape) for k, p in layer.weight_dict().items()}}
                         for layer in model.layers]}
    return _write_npz(path, header, arrays)


# -- reading: the one place where a file's bytes become arrays and a model ------------------
# What parsing damaged bytes can raise, from zipfile (a flipped byte in the zip directory gives
# NotImplementedError for an unknown compression method, RuntimeError for an "encrypted"
# flag, zlib/lzma/bz2 errors for a method that now means compressed), and from the .npy header
# parser (tokenize.TokenError, SyntaxError, ValueError). Each ends in ModelFileError.
_DAMAGE = (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, OSError, ValueError, KeyError, TypeError,
           IndexError, NotImplementedError, RuntimeError, SyntaxError, tokenize.TokenError, zlib.error,
           lzma.LZMAError, struct.error, ArithmeticError, UnicodeError)
# What a layer, loss, metric or optimizer made from a hostile config can raise: a wrong type where
# a number belongs, an unknown name, a missing key, a 0 where a size belongs, a model of no layers.
_BAD_CONFIG = (KeyError, TypeError, ValueError, AttributeError, IndexError, LookupError, ArithmeticError,
               RuntimeError)
_NPY_MAGIC = b"\x93NUMPY"


class _Reader:
    """A minicnn file opened for reading. Its header comes first; then each array is read by
    name with the shape and dtype the model expects, checked before its data is read."""

    def __init__(self, path, zf):
        self.path, self.zf = path, zf
        self.names = {n[:-4] for n in zf.namelist() if n.endswith(".npy")}

    def _fail(self, what, e):
        return ModelFileError(f"{self.path}: {what} cannot be read ({type(e).__name__}: {e}); the file is "
                              "truncated or corrupt")

    def array(self, name, what, shape, dtype):
        """The array stored as `name` (described in errors as `what`), as `dtype`: refused unless
        the file declares `shape`, numbers of a kind that fits `dtype` (in range, finite), and
        exactly the bytes that shape needs. shape None: any 0-d array of strings (the header)."""
        if name not in self.names:
            raise ModelFileError(f"{self.path}: no {what} ({name}); the file is incomplete")
        try:
            with self.zf.open(name + ".npy") as f:
                file_shape, fortran, file_dtype = _npy_header(f)
                self._check_declared(what, file_shape, file_dtype, shape, dtype)
                size = self.zf.getinfo(name + ".npy").file_size - f.tell()
                nbytes = math.prod(file_shape) * file_dtype.itemsize
                if size != nbytes:  # before reading: a header may declare terabytes over a few bytes
                    raise ModelFileError(f"{self.path}: {what} declares {file_shape} {file_dtype} ({nbytes} bytes), "
                                         f"the file holds {size} bytes for it; the file is truncated or corrupt")
                data = f.read(nbytes)
                if len(data) != nbytes or f.read(1):  # reading to the end checks the CRC
                    raise ModelFileError(f"{self.path}: {what} is truncated")
            a = np.frombuffer(data, file_dtype).reshape(file_shape, order="F" if fortran else "C")
        except ModelFileError:
            raise
        except _DAMAGE as e:
            raise self._fail(what, e) from None
        return a if shape is None else self._cast(what, a, dtype)

    def _check_declared(self, what, file_shape, file_dtype, shape, dtype):
        if file_dtype.hasobject:
            raise ModelFileError(f"{self.path}: {what} holds Python objects; minicnn never unpickles, so this "
                                 "is not a file minicnn wrote")
        if shape is None:
            if file_shape != () or file_dtype.kind != "U":
                raise ModelFileError(f"{self.path}: its {HEADER!r} entry is {file_shape} {file_dtype}, not a string")
            return
        if file_shape != tuple(shape):
            raise ModelFileError(f"{self.path}: {what} has shape {file_shape} in the file, the model's is "
                                 f"{tuple(shape)}")
        if file_dtype.kind not in "fiu":
            raise ModelFileError(f"{self.path}: {what} holds {file_dtype} values, not numbers; the model's "
                                 f"are {np.dtype(dtype)}")

    def _cast(self, what, a, dtype):
        """a as dtype, checked finite before and after the cast: a float64 1e300 read into float32
        would be Inf."""
        if a.dtype.kind == "f" and not np.isfinite(a).all():
            raise ModelFileError(f"{self.path}: {what} holds NaN or Inf")
        with np.errstate(over="ignore"):
            w = a.astype(dtype)  # a copy: the file's buffer is read-only
        if not np.isfinite(w).all():
            raise ModelFileError(f"{self.path}: {what} holds values up to {np.abs(a).max():.3g}, beyond "
                                 f"{np.dtype(dtype)}'s range")
        return w


def _npy_header(f):
    """(shape, fortran_order, dtype) of the .npy stream f, read from its header alone."""
    version = np.lib.format.read_magic(f)
    if version == (1, 0):
        return np.lib.format.read_array_header_1_0(f)
    if version == (2, 0):
        return np.lib.format.read_array_header_2_0(f)
    raise ValueError(f".npy format version {version} is not one numpy's savez writes")


@contextlib.contextmanager
def _opened(path, expected_format):
    """(reader, header) of the minicnn file at path, or a ModelFileError that says why not.
    OSErrors of opening the file (missing, not permitted) stay what they are."""
    try:
        f = open(path, "rb")  # noqa: SIM115  (closed by the with below; opened apart to keep its OSErrors)
    except FileNotFoundError:
        raise FileNotFoundError(f"no such file: {path}") from None
    with f:
        if f.read(len(_NPY_MAGIC)) == _NPY_MAGIC:
            raise ModelFileError(f"{path}: a single .npy array, not a minicnn {expected_format} file")
        try:
            f.seek(0)
            zf = zipfile.ZipFile(f)
        except _DAMAGE as e:
            raise ModelFileError(f"{path}: cannot be read as a minicnn {expected_format} file ({type(e).__name__}: "
                                 f"{e}); it is truncated, corrupt, or not an .npz file") from None
        with zf:
            reader = _Reader(path, zf)
            yield reader, _header(reader, expected_format)


def _header(reader, expected_format):
    path = reader.path
    if HEADER not in reader.names:
        raise ModelFileError(f"{path}: an .npz file without the {HEADER!r} entry: not written by minicnn's "
                             f"save (entries: {', '.join(sorted(reader.names)[:5])})")
    text = str(reader.array(HEADER, f"its {HEADER!r} header", None, None))
    try:
        header = json.loads(text)
    except (ValueError, RecursionError) as e:
        raise ModelFileError(f"{path}: its {HEADER!r} header is not valid JSON ({e})") from None
    fmt, version = (header.get("format"), header.get("format_version")) if isinstance(header, dict) else (None, None)
    if not isinstance(fmt, str) or not fmt.startswith("minicnn."):
        raise ModelFileError(f"{path}: its {HEADER!r} header names no minicnn format: not a minicnn file")
    if fmt != f"minicnn.{expected_format}":
        other = "load_model" if fmt == "minicnn.model" else "load_weights"
        raise ModelFileError(f"{path}: holds {fmt!r}, not minicnn.{expected_format}; open it with {other}")
    if isinstance(version, bool) or not isinstance(version, int) or version > FORMAT_VERSION:
        raise ModelFileError(f"{path}: format version {version!r} is newer than this minicnn reads "
                             f"({FORMAT_VERSION}); upgrade minicnn")
    return header


def _set_weights(model, reader):
    """Read every weight the model has from the file, checked, then copy them all in: a file
    refused halfway leaves the model as it was."""
    new = {}
    for i, layer in enumerate(model.layers):
        for key, p in layer.weight_dict().items():
            new[i, key] = reader.array(f"layer{i}/{key}", f"layer {layer.name!r} weight {key!r}", p.shape, p.dtype)
    for (i, key), w in new.items():
        p = model.layers[i].weight_dict()[key]
        p[...] = gpu.as_like(w, p)  # into a model on the GPU: the file's arrays go to the device first


def _model_from_header(path, header, custom_objects):
    config = header.get("model")
    if not isinstance(config, dict):
        raise ModelFileError(f"{path}: its 'model' entry is {type(config).__name__}, not a model config")
    config = dict(config)
    try:
        model_class = registry.get_class(config.pop("class_name", None), custom_objects)
        return model_class.from_config(config, custom_objects=custom_objects)
    except registry.UnknownClassError as e:
        raise ModelFileError(f"{path}: its 'model' entry: {e}") from None
    except _BAD_CONFIG as e:
        raise ModelFileError(f"{path}: its model config is not valid ({type(e).__name__}: {e})") from None


def to_json(model, **kwargs):
    """The architecture as a JSON string, {"class_name", "config", "minicnn_version"} (as Keras's
    to_json: no weights; save_weights keeps those). kwargs go to json.dumps (indent=2, ...)."""
    return json.dumps({"class_name": type(model).__name__, "config": model.get_config(),
                       "minicnn_version": __version__}, **kwargs)


def model_from_json(json_string, custom_objects=None):
    """The model to_json described, with new weights; its classes come from minicnn.registry
    (and custom_objects {name: class}), never imported by name."""
    try:
        spec = json.loads(json_string)
    except (TypeError, ValueError) as e:
        raise ValueError(f"model_from_json: json_string is not JSON ({e})") from None
    if not isinstance(spec, dict) or not isinstance(spec.get("config"), dict) or "class_name" not in spec:
        got = sorted(spec) if isinstance(spec, dict) else type(spec).__name__
        raise ValueError("model_from_json: expected {\"class_name\": ..., \"config\": {...}} as model.to_json() "
                         f"writes it, got {got}")
    try:
        model_class = registry.get_class(spec["class_name"], custom_objects)
        if not (isinstance(model_class, type) and hasattr(model_class, "compile")):
            raise ValueError(f"{spec['class_name']!r} is a layer, not a model")
        return model_class.from_config(spec["config"], custom_objects=custom_objects)
    except registry.UnknownClassError as e:
        raise ValueError(f"model_from_json: {e}") from None
    except _BAD_CONFIG as e:
        raise ValueError(f"model_from_json: the {spec['class_name']} config is not valid "
                         f"({type(e).__name__}: {e})") from None


def _named(spec, entry):
    """spec, if it is a name or {"class_name": name, "config": {...}}; else a ValueError."""
    if isinstance(spec, str) or (isinstance(spec, dict) and isinstance(spec.get("class_name"), str)
                                 and isinstance(spec.get("config"), dict)):
        return spec
    raise ValueError(f"{entry} must be a name or {{'class_name': ..., 'config': {{...}}}}, got {spec!r:.80}")


def _compile_from_header(path, model, spec):
    """Compile model as the header's "compile" entry says; each name is looked up in minicnn's
    tables (losses, metrics, optimizers), never imported or evaluated."""
    entry = "compile"
    try:
        if not isinstance(spec, dict) or not isinstance(spec.get("metrics", []), list):
            raise ValueError("it must hold 'loss', 'optimizer' and a list of 'metrics'")  # noqa: TRY004  (made a ModelFileError below)
        entry = "compile.loss"
        if spec.get("per_output"):  # a model of several inputs or outputs: lists, one entry per output
            loss = [None if v is None else losses.deserialize(_named(v, "the loss")) for v in spec["loss"]]
        else:
            loss = losses.deserialize(_named(spec["loss"], "the loss"))
        entry = "compile.optimizer"
        if not isinstance(spec["optimizer"], dict):
            raise ValueError(f"it must be an optimizer's config, got {spec['optimizer']!r:.80}")  # noqa: TRY004
        optimizer = optimizers.Optimizer.from_config(spec["optimizer"])
        entry = "compile.metrics"
        if spec.get("per_output"):
            metric_list = [[metrics.deserialize(_named(m, "a metric")) for m in ms] for ms in spec["metrics"]]
            model.compile(loss=loss, optimizer=optimizer, metrics=metric_list if len(loss) > 1 else metric_list[0],
                          loss_weights=spec["loss_weights"])
            return
        metric_list = [metrics.deserialize(_named(m, "a metric")) for m in spec.get("metrics", [])]
        model.compile(loss=loss, optimizer=optimizer, metrics=metric_list)
    except _BAD_CONFIG as e:
        raise ModelFileError(f"{path}: its {entry!r} entry is not valid ({type(e).__name__}: {e}); not a model "
                             "minicnn can compile") from None


def _optimizer_state_from(reader, model, state):
    path, opt = reader.path, model.optimizer
    if not isinstance(state, dict) or not isinstance(state.get("has_slots"), bool) \
            or isinstance(state.get("iterations"), bool) or not isinstance(state.get("iterations"), int) \
            or state["iterations"] < 0:
        raise ModelFileError(f"{path}: its 'optimizer_state' entry is not valid ({state!r:.80})")
    if state["has_slots"]:
        params = [p for _, p in model.grads_and_params()]
        slots = [{n: gpu.as_like(reader.array(f"optimizer{j}/{n}", f"the optimizer's {n!r} of param {j}",
                                              p.shape, p.dtype), p)  # beside its param: on the device under cupy
                  for n in opt.state_names()} for j, p in enumerate(params)]
        opt.slots = slots
    opt.iterations = state["iterations"]


def load_model_and_header(path, custom_objects=None, compile=True):
    """(model, header): the model saved at path, and the file's JSON header (where
    BackupAndRestore keeps its "training_state"). Any damaged or hostile file ends in a
    ModelFileError that names the file and the entry."""
    with _opened(path, "model") as (reader, header):
        model = _model_from_header(path, header, custom_objects)
        _set_weights(model, reader)
        if compile and header.get("compile"):
            _compile_from_header(path, model, header["compile"])
            if header.get("optimizer_state") is not None:
                _optimizer_state_from(reader, model, header["optimizer_state"])
    return model, header


def load_model(path, custom_objects=None, compile=True):
    """The model saved at path: architecture, weights, and (with compile=True) its loss,
    metrics and optimizer with its state. custom_objects: {class name: your Layer class}."""
    return load_model_and_header(path, custom_objects, compile)[0]


def load_weights(model, path):
    """Load weights written by save_weights (or save) into a model of the same architecture."""
    if not model.built:
        raise RuntimeError("build the model before load_weights (input_shape= on the first layer, or model.build)")
    try:
        with _opened(path, "weights") as (reader, _):
            _load_weights_from(model, reader)
    except ModelFileError as e:
        if "holds 'minicnn.model'" not in str(e):
            raise
        with _opened(path, "model") as (reader, _):  # a whole saved model holds the weights too
            _load_weights_from(model, reader)


def _load_weights_from(model, reader):
    n_file = len({k.split("/")[0] for k in reader.names if k.startswith("layer")})
    n_model = sum(1 for layer in model.layers if layer.weight_dict())
    if n_file != n_model:
        raise ModelFileError(f"{reader.path}: holds weights for {n_file} layers, the model has {n_model} layers "
                             "with weights")
    _set_weights(model, reader)
