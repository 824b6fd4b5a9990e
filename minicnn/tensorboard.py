"""What the TensorBoard callback (minicnn.callbacks.TensorBoard) needs from outside: the event
file writer of tensorboardX, imported here and nowhere else, and its pictures of filters.

    model.fit(x, y, validation_data=(xv, yv), callbacks=[minicnn.callbacks.TensorBoard("logs")])
    # then: tensorboard --logdir logs

Keras's tags and folders: logs/train gets "epoch_loss", "epoch_accuracy", "epoch_learning_rate"
(and "batch_loss", ... with update_freq), logs/validation "epoch_loss", ... and
"evaluation_loss_vs_iterations", ...; with histogram_freq=N, every N epochs, each weight's
histogram ("sequential/conv2d/kernel/histogram": model, layer, weight) and its gradient's on the
epoch's last batch (".../kernel/gradient/histogram", which Keras does not write); with
write_images, the first Conv2D's filters side by side in one picture (".../kernel/image",
eight a row; Keras writes a picture of every weight).
TensorFlow is not needed: `pip install "minicnn[tensorboard]"` installs tensorboardX.
"""
import numpy as np

from minicnn.gpu import to_host

KERAS_WEIGHT_NAMES = {"W": "kernel", "b": "bias"}  # minicnn's param keys -> the names in Keras's tags


def summary_writer():
    """tensorboardX's SummaryWriter class, or an ImportError that names the extra to install."""
    try:
        from tensorboardX import SummaryWriter
    except ImportError:
        raise ImportError('TensorBoard needs the package tensorboardX: pip install "minicnn[tensorboard]"') from None
    return SummaryWriter


def filter_tiles(W):
    """A Conv2D kernel W: (KH, KW, C, F) -> (F, 1, KH, KW) grey tiles in [0, 1]: each filter's
    channels averaged, scaled by the kernel's own range (so tiles compare with each other)."""
    mean = to_host(W).astype(np.float32).mean(axis=2)  # (KH, KW, F)
    low, high = float(mean.min()), float(mean.max())
    return np.transpose((mean - low) / (high - low or 1.0), (2, 0, 1))[:, None]
