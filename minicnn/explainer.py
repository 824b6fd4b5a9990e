"""minicnn.explain(model, x): one HTML page that shows a trained model at work on one image.

    page = minicnn.explain(model, x_test[0], class_names=CLASS_NAMES)
    page.save("explain.html")       # open it from disk: no server, no network
    page                            # in a notebook: the page itself, in a frame

The page draws the network as a column of layers with their shapes, and each layer's feature
maps. Click a unit: for a Conv2D, its receptive field on the input, the kernel slice and the
multiply-adds that gave its value; for a pooling layer, which cell of the window won; for a
Dense, the inputs that contributed most. The backward pass of the predicted class (or one
chosen in the page) shows each layer's gradient maps, the clicked filter's weight gradient and
the saliency map dL/dx on the input. Each layer comes with its formulas and links to the code.

Every number is minicnn's own: model.trace(x) for the forward pass (inference mode), and
model.trace(x, y, keep=True) once per class for the backward pass, y that class as the target.
The arrays travel inside the page as JSON (float32 little-endian bytes, gzipped, in base64),
beside the page's own CSS and JavaScript (minicnn/explain_page/), which read them and draw.
"""
import base64
import gzip
import html
import inspect
import json
from pathlib import Path

import numpy as np

from minicnn import activations, checks, gpu
from minicnn.kernels import naive, reference

PAGE = Path(__file__).with_name("explain_page")
PACKAGE = Path(__file__).resolve().parent

# Each layer type's math, forward and backward, in the names of its docstrings.
FORMULAS = {
    "Conv2D": ("y[i, j, f] = b[f] + Σ_{kh, kw, c} xpad[i·SH + kh, j·SW + kw, c] · W[kh, kw, c, f]  (xpad: x, padded)",
               ("dW[kh, kw, c, f] = Σ_{i, j} xpad[i·SH + kh, j·SW + kw, c] · dy[i, j, f];  db[f] = Σ_{i, j} dy[i, j, f];  "
                "dxpad[p, q, c] = Σ over the outputs whose window holds (p, q) of W[p − i·SH, q − j·SW, c, f] · dy[i, j, f]")),
    "MaxPooling2D": ("y[i, j, c] = max over the window of x[i·SH + kh, j·SW + kw, c]",
                     "dx = dy at the cell that won each window (the first maximum on ties), 0 elsewhere"),
    "AveragePooling2D": ("y[i, j, c] = mean over the window's cells inside x",
                         "each cell of a window gets dy / (number of cells) back"),
    "Dense": ("y[u] = b[u] + Σ_k x[k] · W[k, u]", "dW = xᵀ dy;  db = dy;  dx = dy Wᵀ"),
    "Flatten": ("y = x laid out in (H, W, C) order, as Keras flattens", "dx = dy reshaped back to (H, W, C)"),
    "relu": ("y = max(0, x)", "dx = dy · [x > 0]"),
    "softmax": ("p[k] = exp(z[k] − max z) / Σ_j exp(z[j] − max z)",
                "with cross-entropy, dL/dz = p − y: the loss's gradient is taken at the logits z"),
}
GENERIC = ("y = the layer's call(x)", "dx = the layer's backward(dy)")

# The kernel functions (in reference.py, and the textbook loops in naive.py) each layer type calls.
KERNELS = {"Conv2D": ("conv2d_forward", "conv2d_backward", "conv"),
           "MaxPooling2D": ("maxpool_forward", "maxpool_backward", "maxpool"),
           "AveragePooling2D": ("avgpool_forward", "avgpool_backward", "avgpool")}


class Explanation:
    """What explain returns: the page as text (html), save(path) to write it; a notebook shows it."""

    def __init__(self, html_text):
        self.html = html_text

    def save(self, path):
        Path(path).write_text(self.html, encoding="utf-8")
        return Path(path)

    def _repr_html_(self):
        return (f'<iframe srcdoc="{html.escape(self.html, quote=True)}" style="width: 100%; height: 720px; '
                'border: 1px solid #ccc"></iframe>')


def explain(model, x, class_names=None, classes=None, source_root=None, title=None):
    """The explainer page of model on one image x: (H, W, C) or (1, H, W, C). Returns an Explanation.

    Args:
        model (Model): a built, compiled model whose layers run one after the other (a chain,
            as a Sequential): its loss gives the backward pass.
        x (np.ndarray): one image, in the model's input shape.
        class_names (list | None): the names of the output classes. Defaults to "0", "1", ...
        classes (list | int | None): the classes the page offers a backward pass for (each adds
            one trace's gradients to the page), or an int k: the k most probable ones. Defaults
            to every class.
        source_root (str | None): where the links to the code point: a URL or relative path that
            the repository's paths are appended to ("../source/" gives the docs site's pages).
            Defaults to file:// links to the installed package.
        title (str | None): the page's heading. Defaults to the model's name.
    """
    if model.loss is None:
        raise RuntimeError("explain needs a compiled model: its loss gives the backward pass; call "
                           "model.compile(loss=..., optimizer=...) first")
    x = np.asarray(x)
    if model.built and x.shape == tuple(model.input_shape[1:]):
        x = x[None]
    x = checks.check_x(model, x)
    if len(x) != 1:
        raise ValueError(f"explain draws one image: x must have shape {tuple(model.input_shape[1:])} or "
                         f"(1, ...), got {x.shape}")
    nodes = model.nodes
    _check_chain(model, nodes)
    forward = model.trace(x, keep=True, warmup=False)
    p = np.asarray(forward.activations[-1][0], dtype=np.float64)
    K = p.shape[-1]
    class_names = [str(k) for k in range(K)] if class_names is None else [str(c) for c in class_names]
    if len(class_names) != K:
        raise ValueError(f"class_names has {len(class_names)} names but the model has {K} outputs")
    if classes is None:
        classes = list(range(K))
    elif isinstance(classes, int) and not isinstance(classes, bool):
        if not 1 <= classes <= K:
            raise ValueError(f"classes={classes}: the number of most probable classes must be in [1, {K}]")
        classes = [int(k) for k in np.argsort(-p, kind="stable")[:classes]]
    else:
        classes = [int(c) for c in classes]
    if not classes or any(not 0 <= c < K for c in classes):
        raise ValueError(f"classes must be class indices in [0, {K}), got {classes}")
    backward = {c: model.trace(x, _target(model, c, K), keep=True, warmup=False) for c in classes}
    # The gradient at the last layer's output, which the trace does not keep: the loss's own, or
    # none where softmax and cross-entropy meet at the logits (the last layer's backward is skipped).
    loss_grad = {}
    for c in classes:
        dy, n = model.loss_gradient(_target(model, c, K), forward.activations[-1])
        if n == len(nodes):
            loss_grad[str(c)] = _array(gpu.to_host(dy)[0])

    layers = []
    for i, node in enumerate(nodes):
        layer = node.layer
        kind = type(layer).__name__
        entry = {"name": layer.name, "type": kind, "input_shape": list(_shape(node.inputs[0].shape)),
                 "output_shape": list(forward.activations[i].shape[1:]), "output": _array(forward.activations[i][0]),
                 "activation": _activation_name(layer),
                 "formula": _formula(layer), "source": _sources(layer, source_root),
                 "grad_in": {str(c): _array(_first(t.input_grads[i])) for c, t in backward.items()}}
        if kind in ("Conv2D", "MaxPooling2D", "AveragePooling2D"):
            window = layer.kernel_size if kind == "Conv2D" else layer.pool_size
            dilation = layer.dilation_rate if kind == "Conv2D" else (1, 1)
            entry["geometry"] = {"kernel": list(window), "strides": list(layer.strides), "dilation": list(dilation),
                                 "pads": [layer.pads[0], layer.pads[2]]}  # top, left
        if kind == "Conv2D":
            entry["W"] = _array(gpu.to_host(layer.params["W"]))
            entry["b"] = _array(gpu.to_host(layer.params["b"])) if "b" in layer.params else None
        if kind == "Dense":
            entry["top"] = _dense_top(forward.activations[i - 1][0] if i else x[0], gpu.to_host(layer.params["W"]))
            entry["b"] = _array(gpu.to_host(layer.params["b"])) if "b" in layer.params else None
        layers.append(entry)

    data = {"title": title or model.name, "input": _array(x[0]), "class_names": class_names,
            "probabilities": [float(v) for v in p], "predicted": int(np.argmax(p)), "classes": classes,
            "are_probabilities": bool(np.all(p >= 0) and abs(p.sum() - 1) < 1e-3),  # else scores, as logits
            "loss": {str(c): t.loss for c, t in backward.items()}, "loss_grad": loss_grad, "layers": layers,
            "note": _mode_note(model)}
    return Explanation(_page(data))


def _activation_name(layer):
    """"relu" for Activation("relu") and for Conv2D(..., activation="relu"); None without one."""
    act = getattr(layer, "activation", None)
    return act if isinstance(act, str) or act is None else act.activation


def _check_chain(model, nodes):
    """explain draws a column: each call must read only the output of the call just before it."""
    previous = model.inputs[0]
    for node in nodes:
        if node.many or node.inputs[0] is not previous:
            raise ValueError(f"explain draws a chain of layers, one after the other; layer {node.layer.name!r} "
                             "reads more than the layer just before it")
        previous = node.output
    if len(model.outputs) != 1:
        raise ValueError("explain draws a model of one output")


def _target(model, c, K):
    """The target that makes class c the one whose loss is differentiated."""
    if model.loss.sparse:
        return np.array([c])
    return np.eye(K, dtype=np.float32)[c][None]


def _mode_note(model):
    kinds = {type(layer).__name__ for layer in model.layers}
    odd = sorted(kinds & {"Dropout", "BatchNormalization", "RandomFlip", "RandomTranslation", "RandomRotation",
                          "RandomZoom", "RandomCrop", "RandomContrast", "RandomErasing"})
    if not odd:
        return ""
    return (f"This model has {', '.join(odd)}: the feature maps are the inference pass, the gradients come from "
            "a training-mode pass of the same image (as fit computes them), which these layers change.")


def _shape(shape):
    return tuple(shape[1:])


def _first(a):
    """A gradient of a batch of one, as one sample (None where the trace has none)."""
    return None if a is None else np.asarray(a)[0]


def _array(a):
    """An array for the page: its shape and its float32 bytes (little-endian), gzipped (the
    gradients are mostly zeros: a third of the size), in base64. The page's decode() reverses it."""
    if a is None:
        return None
    a = np.ascontiguousarray(a, dtype="<f4")
    return {"shape": list(a.shape), "gz": base64.b64encode(gzip.compress(a.tobytes(), mtime=0)).decode("ascii")}


def _dense_top(x, W, top=8):
    """For each unit u of a Dense, the inputs k with the largest |x[k] W[k, u]|: [[k, x, w], ...]."""
    x = np.asarray(x, dtype=np.float32).reshape(-1)
    contributions = x[:, None] * W  # (in, units)
    best = np.argsort(-np.abs(contributions), axis=0, kind="stable")[:top]  # (top, units)
    return [[[int(k), float(x[k]), float(W[k, u])] for k in best[:, u]] for u in range(W.shape[1])]


def _formula(layer):
    kind = type(layer).__name__
    name = getattr(layer, "activation", None)
    name = name if isinstance(name, str) else None
    forward, backward = FORMULAS.get(kind) or FORMULAS.get(name) or GENERIC
    if kind != "Activation" and name is None and getattr(layer, "activation", None) is not None:
        fused = layer.activation.activation
        forward += f", then {fused}"
        backward = f"dy first goes back through {fused}; then " + backward
    if kind == "Activation" and name not in FORMULAS:
        forward, backward = f"y = {name}(x), value by value", f"dx = dy · {name}'(x)"
    return {"forward": forward, "backward": backward}


def _sources(layer, root):
    """Links to the code that computes the layer: its call and backward, and its kernels."""
    links = []
    for method in ("call", "backward"):
        fn = getattr(type(layer), method, None)
        if fn is not None:
            links.append(_link(f"{type(layer).__name__}.{method}", fn, root))
    kernels = KERNELS.get(type(layer).__name__)
    if kernels:
        links += [_link(kernels[0], getattr(reference, kernels[0]), root),
                  _link(kernels[1], getattr(reference, kernels[1]), root),
                  _link(f"{kernels[2]} (the textbook loops)", getattr(naive, kernels[2]), root)]
    if type(layer).__name__ == "Activation":
        for name in (layer.activation, f"{layer.activation}_backward"):
            if hasattr(activations, name):
                links.append(_link(name, getattr(activations, name), root))
    return links


def _link(label, fn, root):
    fn = inspect.unwrap(fn)
    path = Path(inspect.getsourcefile(fn)).resolve()
    line = inspect.getsourcelines(fn)[1]
    relative = "minicnn/" + path.relative_to(PACKAGE).as_posix()
    if root is None:
        href = path.as_uri()
    else:  # the docs site's page of a source file, with its line's anchor
        href = f"{root}{relative}/#__codelineno-0-{line}"
    return {"label": label, "where": f"{relative}:{line}", "href": href}


def _page(data):
    """The template with its CSS, its script and the data put in: one file that needs nothing else."""
    text = (PAGE / "explain.html").read_text(encoding="utf-8")
    payload = json.dumps(data, separators=(",", ":")).replace("</", "<\\/")  # a string may not end the script
    return (text.replace("<!--TITLE-->", html.escape(data["title"]))
                .replace("/*STYLE*/", (PAGE / "explain.css").read_text(encoding="utf-8"))
                .replace("/*SCRIPT*/", (PAGE / "explain.js").read_text(encoding="utf-8"))
                .replace("/*DATA*/", payload))  # last: nothing after it looks inside the data
