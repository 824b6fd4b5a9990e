"""Beyond the tutorial: from about 0.90 to about 0.938 on Fashion-MNIST, with the ingredients
people use to get there, each one a flag you can turn off to see what it buys.

    python examples/fashion_mnist_recipe.py                 # the whole recipe, seed 0
    python examples/fashion_mnist_recipe.py --seed 1
    python examples/fashion_mnist_recipe.py --no-augment --no-tta   # the recipe without augmentation
    python examples/fashion_mnist_recipe.py --fast          # a short run on 12,000 images (CI)
    python examples/fashion_mnist_recipe.py --figures fig   # also draw its training curves and mistakes

Options for trying more (each off unless given; docs/recipe.md, "Options for trying more"):

    --validation 5000   hold out the last 5,000 training images, and report the accuracy on them
    --erasing 0.5       erase a random patch of each training image with probability 0.5
    --ema 0.999         end on the moving average of the weights (momentum 0.999)
    --minutes 18        as many epochs as fit into 18 minutes of training here (timed first)

The model: three Conv -> BatchNorm -> ReLU -> MaxPool blocks (32, 64, 128 filters) with Dropout,
a Dense(128) head; AdamW with a warm-up and a cosine decay of the learning rate; random left-right
flips and whole-pixel shifts of up to 10% while training; 48 epochs (about 19 minutes on 2
cores). It trains on all 60,000 training images and is evaluated once, at the end, on the 10,000
test images, each predicted as the mean of the model's probabilities for ten views of it: the
image and its mirror image, each as it is and moved by one pixel up, down, left and right
(--tta flip: the image and its mirror image; --no-tta: once). The last line printed is
`Test accuracy 0.XXXX`.
See docs/recipe.md for what each ingredient adds.

To try a change, judge it by --validation: the test set is for the last word, not for choosing.
"""
import argparse
import time

import numpy as np

import minicnn
from minicnn.datasets import fashion_mnist
from minicnn.utils import to_categorical


def conv_block(L, filters, batchnorm):
    """Conv2D -> BatchNormalization -> ReLU (the bias is BatchNorm's beta), or Conv2D with ReLU."""
    if not batchnorm:
        return [L.Conv2D(filters, 3, padding="same", activation="relu")]
    return [L.Conv2D(filters, 3, padding="same", use_bias=False), L.BatchNormalization(), L.Activation("relu")]


def build_model(lib=minicnn, batchnorm=True, dropout=True, augment=True, widths=(32, 64, 128), rates=(0.1, 0.2, 0.3),
                units=128, shift=0.1, interpolation="nearest", erasing=0.0):
    """The recipe's network; each flag removes one ingredient. x: (N, 28, 28, 1) in [0, 1] -> (N, 10).
    erasing > 0 adds RandomErasing with that probability per image (factor=(p, p): a number f
    would draw the probability in [0, f]) to the augmentation.
    lib is minicnn, or keras: the same lines build the same model in Keras (benchmarks/compare.py)."""
    L = lib.layers

    def drop(rate):
        return [L.Dropout(rate)] if dropout else []

    augmentation = [L.RandomFlip("horizontal"),
                    L.RandomTranslation(shift, shift, fill_mode="constant", interpolation=interpolation)]
    if erasing:
        augmentation.append(L.RandomErasing(factor=(erasing, erasing), value_range=(0, 1)))
    return lib.models.Sequential([
        L.Input((28, 28, 1)),
        *(augmentation if augment else []),
        *conv_block(L, widths[0], batchnorm), L.MaxPooling2D(2),
        *conv_block(L, widths[1], batchnorm), L.MaxPooling2D(2), *drop(rates[0]),
        *conv_block(L, widths[2], batchnorm), L.MaxPooling2D(2), *drop(rates[1]),
        L.Flatten(),
        L.Dense(units, activation="relu"), *drop(rates[2]),
        L.Dense(10, activation="softmax"),
    ])


def compile_model(model, lib, steps_per_epoch, epochs, schedule=True, peak=2e-3, label_smoothing=0.0, ema=None):
    """AdamW (weight decay 5e-4) with a warm-up over the first epoch to the peak rate, then a cosine
    decay to 0 (or the peak throughout); cross-entropy (with label smoothing if asked). ema: keep
    the moving average of the weights with this momentum, which they take at the end of fit."""
    rate = peak
    if schedule:
        warmup = steps_per_epoch
        rate = lib.optimizers.schedules.CosineDecay(peak / 10, decay_steps=max(1, steps_per_epoch * epochs - warmup),
                                                    warmup_target=peak, warmup_steps=warmup)
    average = {"use_ema": True, "ema_momentum": ema} if ema else {}
    model.compile(loss=lib.losses.CategoricalCrossentropy(label_smoothing=label_smoothing),
                  optimizer=lib.optimizers.AdamW(rate, weight_decay=5e-4, **average), metrics=["accuracy"])
    return model


def epochs_in(minutes, make_model, x, y, batch_size, validation=None, steps=50):
    """How many epochs of (x, y) fit into `minutes` of training on this machine, timed on a
    throwaway copy of the model (make_model() builds it, compiled): a short fit first, so that
    the kernels are compiled, then `steps` timed steps, and one evaluation of the validation data
    (x_val, y_val) if given, as fit runs it every epoch. Returns (epochs, s per step, s per epoch)."""
    probe = make_model()
    n = min(len(x), steps * batch_size)
    probe.fit(x[:3 * batch_size], y[:3 * batch_size], batch_size=batch_size, verbose=0)  # compiles, not timed
    start = time.perf_counter()
    probe.fit(x[:n], y[:n], batch_size=batch_size, verbose=0)
    per_step = (time.perf_counter() - start) / -(-n // batch_size)
    per_epoch = per_step * -(-len(x) // batch_size)
    if validation is not None:
        probe.evaluate(validation[0][:batch_size], validation[1][:batch_size], verbose=0)  # compiles, not timed
        start = time.perf_counter()
        probe.evaluate(*validation, batch_size=batch_size, verbose=0)
        per_epoch += time.perf_counter() - start
    return max(1, int(minutes * 60 // per_epoch)), per_step, per_epoch


# Test-time augmentation: the views of each image whose predicted probabilities are averaged,
# as (mirrored left-right, rows down, columns right). "shifts" moves the image and its mirror
# image by one pixel each way, as RandomTranslation moved it in training.
VIEWS = {"none": [(False, 0, 0)],
         "flip": [(False, 0, 0), (True, 0, 0)],
         "shifts": [(mirror, dy, dx) for mirror in (False, True) for dy, dx in ((0, 0), (0, 1), (0, -1), (1, 0), (-1, 0))]}


def view(x, mirror, dy, dx):
    """x: (N, H, W, C) mirrored left-right if asked, then moved dy rows down and dx columns right,
    zeros filling the rows and columns it leaves (RandomTranslation's fill_mode="constant")."""
    x = x[:, :, ::-1] if mirror else x
    if not dy and not dx:
        return x
    out = np.zeros_like(x)
    H, W = x.shape[1:3]
    out[:, max(dy, 0):H + min(dy, 0), max(dx, 0):W + min(dx, 0)] = x[:, max(-dy, 0):H + min(-dy, 0),
                                                                     max(-dx, 0):W + min(-dx, 0)]
    return out


def accuracy(model, x, y, tta, name):
    """The share of x: (N, 28, 28, 1) classed as y: (N,), printed, and the probabilities (N, 10).
    tta names the views averaged (VIEWS); the one-view figure, and with "shifts" the figure with
    the mirror image alone, are printed first."""
    views = VIEWS[tta]
    probs = [model.predict(view(x, *v), batch_size=1000, verbose=0) for v in views]
    if len(views) > 1:
        print(f"{name} accuracy, one view: {np.mean(probs[0].argmax(axis=1) == y):.4f}")
    if len(views) > 2:
        mirrored = probs[0] + probs[views.index((True, 0, 0))]
        print(f"{name} accuracy, with the mirror image: {np.mean(mirrored.argmax(axis=1) == y):.4f}")
    probs = sum(probs) / len(probs)
    return float(np.mean(probs.argmax(axis=1) == y)), probs


def save_figures(logs, x_test, y_test, probs, folder):
    """training_curves.png (loss and accuracy per epoch, on the augmented training batches) and
    mistakes.png (the first 30 misclassified test images, with the prediction and its confidence).
    logs: History.history; x_test: (N, 28, 28, 1); y_test: labels (N,); probs: (N, 10)."""
    from pathlib import Path

    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from minicnn import plot
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    fig = plot.training_curves(logs)
    fig.savefig(folder / "training_curves.png", dpi=80)
    plt.close(fig)
    wrong = np.flatnonzero(probs.argmax(axis=1) != y_test)[:30]
    if len(wrong):  # (no mistakes: no picture)
        fig = plot.prediction_grid(x_test[wrong], y_test[wrong], probs[wrong], fashion_mnist.CLASS_NAMES, columns=10)
        fig.savefig(folder / "mistakes.png", dpi=70)
        plt.close(fig)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--epochs", type=int, default=48)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--fast", action="store_true", help="12,000 training images, 2 epochs (CI)")
    parser.add_argument("--no-batchnorm", dest="batchnorm", action="store_false")
    parser.add_argument("--no-dropout", dest="dropout", action="store_false")
    parser.add_argument("--no-augment", dest="augment", action="store_false")
    parser.add_argument("--no-schedule", dest="schedule", action="store_false", help="a constant learning rate")
    parser.add_argument("--label-smoothing", type=float, default=0.0)
    parser.add_argument("--erasing", type=float, default=0.0, metavar="P",
                        help="erase a random patch of each training image with probability P (RandomErasing)")
    parser.add_argument("--ema", type=float, metavar="M",
                        help="end on the moving average of the weights, momentum M (the optimizer's use_ema)")
    parser.add_argument("--minutes", type=float, metavar="M",
                        help="train as many epochs as fit into M minutes here (timed on a few steps); "
                             "replaces --epochs, the schedule follows")
    parser.add_argument("--validation", type=int, default=0, metavar="N",
                        help="hold out the last N training images, and report the accuracy on them")
    parser.add_argument("--tta", choices=VIEWS, default="shifts",
                        help="test-time augmentation: average the predictions for each image and its mirror "
                             "image, each also moved by one pixel each way (shifts), for the image and its mirror "
                             "image (flip), or predict it once (none)")
    parser.add_argument("--no-tta", dest="tta", action="store_const", const="none", help="the same as --tta none")
    parser.add_argument("--history", help="write the per-epoch loss and accuracy to this CSV file")
    parser.add_argument("--save", help="save the trained model to this .keras file")
    parser.add_argument("--figures", help="draw the training curves and the misclassified test images into this folder")
    args = parser.parse_args(argv)

    (x_train, y_train), (x_test, y_test) = fashion_mnist.load_data()
    if args.fast:
        x_train, y_train, args.epochs = x_train[:12000], y_train[:12000], 2
    if not 0 <= args.validation < len(x_train):
        parser.error(f"--validation must be in [0, {len(x_train)}), got {args.validation}")
    x_train = x_train.reshape(-1, 28, 28, 1).astype("float32") / 255
    x_test = x_test.reshape(-1, 28, 28, 1).astype("float32") / 255
    keep = len(x_train) - args.validation  # the same held-out images for every seed
    x_train, y_train, x_val, y_val = x_train[:keep], y_train[:keep], x_train[keep:], y_train[keep:]
    validation = (x_val, to_categorical(y_val, 10)) if args.validation else None
    steps_per_epoch = -(-len(x_train) // args.batch_size)

    def make_model(epochs):
        model = build_model(minicnn, args.batchnorm, args.dropout, args.augment, erasing=args.erasing)
        return compile_model(model, minicnn, steps_per_epoch, epochs, args.schedule,
                             label_smoothing=args.label_smoothing, ema=args.ema)

    if args.minutes:
        args.epochs, per_step, per_epoch = epochs_in(args.minutes, lambda: make_model(1), x_train,
                                                     to_categorical(y_train, 10), args.batch_size, validation)
        print(f"--minutes {args.minutes:g}: {per_step * 1000:.1f} ms per step, {per_epoch:.1f} s per epoch of "
              f"{steps_per_epoch} steps: {args.epochs} epochs"
              + (f" (a warm-up of 1, a cosine decay over {args.epochs - 1})" if args.schedule else ""))
    minicnn.utils.set_random_seed(args.seed)  # after the timing: the same run as with --epochs
    model = make_model(args.epochs)
    model.summary()
    callbacks = [minicnn.callbacks.CSVLogger(args.history)] if args.history else []
    start = time.perf_counter()
    history = model.fit(x_train, to_categorical(y_train, 10), batch_size=args.batch_size, epochs=args.epochs,
                        verbose=2, callbacks=callbacks, validation_data=validation)
    seconds = time.perf_counter() - start
    print(f"Training: {seconds:.0f} s, {seconds / args.epochs:.1f} s per epoch")
    if args.save:
        model.save(args.save)
    if args.validation:
        print(f"Validation accuracy {accuracy(model, x_val, y_val, args.tta, 'Validation')[0]:.4f}")
    test_accuracy, probs = accuracy(model, x_test, y_test, args.tta, "Test")
    if args.figures:
        save_figures(history.history, x_test, y_test, probs, args.figures)
    print(f"Test accuracy {test_accuracy:.4f}")
    return model, test_accuracy


if __name__ == "__main__":
    main()
