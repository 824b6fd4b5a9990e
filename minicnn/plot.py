"""Pictures of a model and its training, with matplotlib.

Every function returns a matplotlib Figure and never calls plt.show(): show it with
plt.show(), save it with fig.savefig("name.png"), close it with plt.close(fig).

    from minicnn import plot
    plot.training_curves(history)                      # loss and accuracy per epoch
    plot.confusion_matrix(y_test, model.predict(x_test).argmax(1), CLASS_NAMES)
    plot.prediction_grid(x_test[:25], y_test[:25], probs[:25], CLASS_NAMES)
    plot.conv_filters(model.layers[0])                 # the learned 3x3 kernels
    plot.feature_maps(model, x_test[0])                # one image after each conv and pool
    plot.activation_histograms(model, x_test[:64], y_test_one_hot[:64])
"""
import math

import matplotlib.pyplot as plt
import numpy as np

from minicnn import checks
from minicnn.gpu import to_host
from minicnn.layers import Conv2D
from minicnn.models import Model


def training_curves(history):
    """Loss and (when recorded) accuracy per epoch, training and validation.
    history: the History fit returns, or its .history dict."""
    logs = getattr(history, "history", history)
    if not logs or "loss" not in logs:
        raise ValueError("training_curves needs a History with a 'loss' entry: the value fit() returns")
    written = set(logs)  # the names fit wrote: `"acc" in history` also answers for "accuracy"
    panels = [m for m in ("loss", "accuracy", "acc") if m in written]
    fig, axes = plt.subplots(1, len(panels), figsize=(5 * len(panels), 3.6), squeeze=False)
    for ax, metric in zip(axes[0], panels):
        epochs = np.arange(1, len(logs[metric]) + 1)
        ax.plot(epochs, logs[metric], "o-", label="training")
        if f"val_{metric}" in written:
            ax.plot(epochs, logs[f"val_{metric}"], "s--", label="validation")
        ax.set(title=metric, xlabel="epoch", ylabel=metric)
        ax.xaxis.get_major_locator().set_params(integer=True)
        ax.legend()
    fig.tight_layout()
    return fig


def confusion_counts(y_true, y_pred, num_classes=None):
    """counts[i, j] = how many samples of true class i were predicted as class j. Labels: (N,)."""
    y_true, y_pred = _labels(y_true, "y_true"), _labels(y_pred, "y_pred")
    if y_true.shape != y_pred.shape:
        raise ValueError(f"y_true has {y_true.shape[0]} labels, y_pred {y_pred.shape[0]}; they must match")
    k = num_classes or int(max(y_true.max(), y_pred.max())) + 1
    counts = np.zeros((k, k), dtype=np.int64)
    np.add.at(counts, (y_true, y_pred), 1)
    return counts


def confusion_matrix(y_true, y_pred, class_names=None):
    """The confusion matrix as a heat map with counts; rows: true class, columns: predicted.
    y_true, y_pred: integer labels (N,), or one-hot / probabilities (N, K)."""
    k = len(class_names) if class_names is not None else None
    counts = confusion_counts(y_true, y_pred, k)
    k = len(counts)
    names = list(class_names) if class_names is not None else [str(i) for i in range(k)]
    fig, ax = plt.subplots(figsize=(1.0 + 0.7 * k, 0.6 + 0.7 * k))
    ax.imshow(counts, cmap="Blues")
    for i in range(k):
        for j in range(k):
            ax.text(j, i, str(counts[i, j]), ha="center", va="center", fontsize=8,
                    color="white" if counts[i, j] > counts.max() / 2 else "black")
    ax.set_xticks(range(k), names, rotation=45, ha="right")
    ax.set_yticks(range(k), names)
    accuracy = np.trace(counts) / counts.sum()
    ax.set(xlabel="predicted", ylabel="true", title=f"confusion matrix (accuracy {accuracy:.4f})")
    fig.tight_layout()
    return fig


def prediction_grid(images, y_true, y_pred, class_names=None, columns=5):
    """Images with their predicted and true labels; mistakes titled in red.
    images: (N, H, W) or (N, H, W, 1); y_true: labels (N,) or one-hot; y_pred: labels or (N, K) probabilities."""
    images = np.asarray(images)
    images = images[..., 0] if images.ndim == 4 else images
    if images.ndim != 3:
        raise ValueError(f"images must have shape (N, H, W) or (N, H, W, 1), got {np.shape(images)}")
    probs = np.asarray(y_pred)
    truth, pred = _labels(y_true, "y_true"), _labels(y_pred, "y_pred")
    if not len(images) == len(truth) == len(pred):
        raise ValueError(f"{len(images)} images, {len(truth)} true labels, {len(pred)} predictions: they must match")
    name = (lambda i: class_names[i]) if class_names is not None else str
    rows = math.ceil(len(images) / columns)
    fig, axes = plt.subplots(rows, columns, figsize=(2.0 * columns, 2.3 * rows), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, img, t, p, n in zip(axes.flat, images, truth, pred, range(len(images))):
        ax.imshow(img, cmap="binary")
        conf = f" {probs[n, p]:.0%}" if probs.ndim == 2 else ""
        ax.set_title(f"{name(p)}{conf}" + ("" if p == t else f"\n(true: {name(t)})"),
                     color="black" if p == t else "red", fontsize=9)
    fig.tight_layout()
    return fig


def conv_filters(layer, channel=0, shared_scale=False):
    """Each filter of a Conv2D layer as a small image: W[:, :, channel, f] for f = 0..F-1.
    Red is positive, blue negative, white 0; each filter on its own symmetric colour scale
    (shared_scale=True: one scale for all, to compare magnitudes)."""
    if not isinstance(layer, Conv2D) or not layer.built:
        raise TypeError(f"conv_filters needs a built Conv2D layer, got {layer!r}")
    W = to_host(layer.params["W"])
    if not 0 <= channel < W.shape[2]:
        raise ValueError(f"layer {layer.name!r} has {W.shape[2]} input channels; channel {channel} does not exist")
    kernels = W[:, :, channel, :]
    F = kernels.shape[-1]
    columns = min(F, 8)
    rows = math.ceil(F / columns)
    fig, axes = plt.subplots(rows, columns, figsize=(1.2 * columns, 1.3 * rows + 0.5), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for f, ax in zip(range(F), axes.flat):
        limit = float(np.abs(kernels if shared_scale else kernels[:, :, f]).max()) or 1.0
        ax.imshow(kernels[:, :, f], cmap="RdBu_r", vmin=-limit, vmax=limit)
        ax.set_title(str(f), fontsize=7)
    fig.suptitle(f"{layer.name}: {F} filters of {kernels.shape[0]}x{kernels.shape[1]}, input channel {channel} "
                 f"(red > 0 > blue{', one scale' if shared_scale else ''})", fontsize=9)
    fig.tight_layout()
    return fig


def feature_maps(model, image, max_maps=8):
    """One image (H, W, C) after each layer whose output is still a stack of maps (N, H, W, C):
    Conv2D, ReLU, MaxPooling2D and any such layer you add; a row per layer,
    its first max_maps channels."""
    checks.check_single_io(model, "feature_maps")
    x = np.asarray(image, dtype=np.float32)
    if x.ndim == 2:
        x = x[..., None]
    x = checks.check_x(model, x[None])
    # every layer's output at once, through a model whose outputs are all of them (a chain or a graph)
    probe = Model(model.inputs, [layer.output for layer in model.layers])
    outputs = probe.predict(x, verbose=0)
    picked = [(layer, y[0]) for layer, y in zip(model.layers, outputs) if y.ndim == 4]
    if not picked:
        raise ValueError("the model has no layer whose output is a stack of maps (N, H, W, C) to draw")
    columns = min(max_maps, max(m.shape[-1] for _, m in picked)) + 1
    fig, axes = plt.subplots(len(picked), columns, figsize=(1.4 * columns, 1.5 * len(picked)), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for row, (layer, maps) in zip(axes, picked):
        row[0].text(0.0, 0.5, f"{layer.name}\n{maps.shape[0]}x{maps.shape[1]}x{maps.shape[2]}", fontsize=8,
                    va="center", transform=row[0].transAxes)
        for c, ax in zip(range(min(max_maps, maps.shape[-1])), row[1:]):
            ax.imshow(maps[:, :, c], cmap="viridis")
    fig.suptitle("feature maps of one image (first channels of each layer)", fontsize=9)
    fig.tight_layout()
    return fig


def activation_histograms(model, x, y, bins=50):
    """For one batch: histograms of each layer's outputs (left) and of each param gradient (right)."""
    t = model.trace(x, y, keep=True)
    grads = [(f"{r.name} d{k}", g) for r, pg in zip(t.rows, t.param_grads) for k, g in (pg or {}).items()]
    n = max(len(t.rows), len(grads))
    fig, axes = plt.subplots(n, 2, figsize=(9, 1.5 * n + 0.6), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, row, a in zip(axes[:, 0], t.rows, t.activations):
        ax.axis("on")
        ax.hist(np.asarray(a, dtype=np.float64).ravel(), bins=bins, color="tab:blue")
        ax.set_title(f"{row.name} output: mean {row.mean:.3f}, zeros {row.zeros:.0%}", fontsize=8)
        ax.tick_params(labelsize=7)
    for ax, (name, g) in zip(axes[:, 1], grads):
        ax.axis("on")
        ax.hist(np.asarray(g, dtype=np.float64).ravel(), bins=bins, color="tab:orange")
        ax.set_title(f"{name}: norm {np.linalg.norm(g):.3e}", fontsize=8)
        ax.tick_params(labelsize=7)
    fig.suptitle(f"activations and gradients for one batch of {len(x)} (loss {t.loss:.4f})", fontsize=9)
    fig.tight_layout()
    return fig


def _labels(y, what):
    y = np.asarray(y)
    if y.ndim == 2 and y.shape[1] > 1:
        return y.argmax(axis=1)
    y = y.reshape(-1)
    if y.size and (y.dtype.kind not in "iu" and not np.all(y == np.round(y))):
        raise ValueError(f"{what} must be integer labels (N,) or one-hot / probabilities (N, K)")
    if y.size and y.min() < 0:
        raise ValueError(f"{what} holds a negative label ({y.min()})")
    return y.astype(np.intp)
