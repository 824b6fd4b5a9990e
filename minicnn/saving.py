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
reads with allow_pickle=False, so a file can hold data but never code.
"""
import json
import zipfile

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
        for key, p in layer.weights().items():
            shape = layer.param_shapes.get(key, getattr(p, "shape", ()))
            arrays[f"layer{i}/{key}"] = _checked(f"layer {layer.name!r} weight {key!r}", p, shape, layer.dtype)
    return arrays


def _write_npz(path, header, arrays):
    arrays = {HEADER: np.array(json.dumps(header)), **arrays}
    return atomic_write(path, lambda f: np.savez(f, **arrays))


def save_model(model, path, include_optimizer=True):
    """Write the architecture, the weights and (when compiled) the loss, metrics and optimizer
    with its state, so that load_model(path) resumes training exactly where it stopped."""
    header = {"format": "minicnn.model", "format_version": FORMAT_VERSION, "minicnn_version": __version__,
              "model": model_config(model), "compile": None}
    arrays = _weight_arrays(model)
    if model.loss is not None and model.optimizer is not None:
        opt = model.optimizer
        header["compile"] = {"loss": losses.serialize(model.loss), "metrics": [metrics.serialize(m) for m in model.compiled_metrics],
                             "optimizer": opt.get_config()}
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
              "layers": [{"name": layer.name, "shapes": {k: list(p.shape) for k, p in layer.weights().items()}}
                         for layer in model.layers]}
    return _write_npz(path, header, arrays)


# -- reading -------------------------------------------------------------------------------
def _read_npz(path, expected_format):
    """(header dict, {name: array}) from a minicnn file, or a ModelFileError that says why not."""
    try:
        with np.load(path, allow_pickle=False) as npz:
            if not isinstance(npz, np.lib.npyio.NpzFile):
                raise ModelFileError(f"{path}: a single .npy array, not a minicnn {expected_format} file")
            arrays = {name: npz[name] for name in npz.files}
    except FileNotFoundError:
        raise FileNotFoundError(f"no such file: {path}") from None
    except (zipfile.BadZipFile, EOFError, OSError, ValueError, KeyError) as e:
        if isinstance(e, ModelFileError):
            raise
        raise ModelFileError(f"{path}: cannot be read as a minicnn {expected_format} file ({type(e).__name__}: {e}); "
                             "it is truncated, corrupt, or not an .npz file") from None
    if HEADER not in arrays:
        raise ModelFileError(f"{path}: an .npz file without the {HEADER!r} entry: not written by minicnn's "
                             f"save (entries: {', '.join(sorted(arrays)[:5])})")
    try:
        header = json.loads(str(arrays.pop(HEADER)))
        fmt, version = header["format"], header["format_version"]
    except (ValueError, KeyError, TypeError) as e:
        raise ModelFileError(f"{path}: its {HEADER!r} header is not valid ({e})") from None
    if fmt != f"minicnn.{expected_format}":
        other = "load_model" if fmt == "minicnn.model" else "load_weights"
        raise ModelFileError(f"{path}: holds {fmt!r}, not minicnn.{expected_format}; open it with {other}")
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise ModelFileError(f"{path}: format version {version!r} is newer than this minicnn reads "
                             f"({FORMAT_VERSION}); upgrade minicnn")
    return header, arrays


def _set_weights(model, arrays, path):
    for i, layer in enumerate(model.layers):
        for key, p in layer.weights().items():
            name = f"layer{i}/{key}"
            if name not in arrays:
                raise ModelFileError(f"{path}: no weights for layer {layer.name!r} ({name}); the file is incomplete")
            w = arrays[name]
            if w.shape != p.shape:
                raise ModelFileError(f"{path}: layer {layer.name!r} weight {key!r} has shape {w.shape} in the "
                                     f"file, the model's is {p.shape}")
            if not np.isfinite(w).all():
                raise ModelFileError(f"{path}: layer {layer.name!r} weight {key!r} holds NaN or Inf")
            p[...] = gpu.as_like(w, p)  # into a model on the GPU: the file's arrays go to the device first


def load_model(path, custom_objects=None, compile=True):
    """The model saved at path: architecture, weights, and (with compile=True) its loss,
    metrics and optimizer with its state. custom_objects: {class name: your Layer class}."""
    header, arrays = _read_npz(path, "model")
    try:
        config = dict(header["model"])
        model_class = registry.get_class(config.pop("class_name"), custom_objects)
        model = model_class.from_config(config, custom_objects=custom_objects)
    except registry.UnknownClassError as e:
        raise ModelFileError(f"{path}: {e}") from None
    except (KeyError, TypeError) as e:
        raise ModelFileError(f"{path}: its model config is not valid ({type(e).__name__}: {e})") from None
    _set_weights(model, arrays, path)
    if compile and header.get("compile"):
        spec = header["compile"]
        model.compile(loss=losses.deserialize(spec["loss"]), optimizer=optimizers.Optimizer.from_config(spec["optimizer"]),
                      metrics=[metrics.deserialize(m) for m in spec["metrics"]])
        state = header.get("optimizer_state")
        if state and state["has_slots"]:
            opt, params = model.optimizer, [p for _, p in model.grads_and_params()]
            slots = []
            for j, p in enumerate(params):
                names = opt.slot_names
                missing = [n for n in names if f"optimizer{j}/{n}" not in arrays]
                if missing:
                    raise ModelFileError(f"{path}: optimizer state of param {j} lacks {missing}")
                slots.append({n: gpu.as_like(arrays[f"optimizer{j}/{n}"].astype(p.dtype, copy=False), p)
                              for n in names})  # beside its param: on the device under the cupy backend
                if any(v.shape != p.shape for v in slots[-1].values()):
                    raise ModelFileError(f"{path}: optimizer state of param {j} does not match its shape {p.shape}")
            opt.slots, opt.iterations = slots, int(state["iterations"])
        elif state:
            model.optimizer.iterations = int(state["iterations"])
    return model


def load_weights(model, path):
    """Load weights written by save_weights (or save) into a model of the same architecture."""
    try:
        _, arrays = _read_npz(path, "weights")
    except ModelFileError as e:
        if "holds 'minicnn.model'" not in str(e):
            raise
        _, arrays = _read_npz(path, "model")  # a whole saved model holds the weights too
    if not model.built:
        raise RuntimeError("build the model before load_weights (input_shape= on the first layer, or model.build)")
    n_file = len({k.split("/")[0] for k in arrays if k.startswith("layer")})
    n_model = sum(1 for layer in model.layers if layer.weights())
    if n_file != n_model:
        raise ModelFileError(f"{path}: holds weights for {n_file} layers, the model has {n_model} layers with weights")
    _set_weights(model, arrays, path)
