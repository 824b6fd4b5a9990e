"""Beyond the tutorial: from about 0.90 to about 0.935 on Fashion-MNIST, with the ingredients
people use to get there, each one a flag you can turn off to see what it buys.

    python examples/fashion_mnist_recipe.py                 # the whole recipe, seed 0
    python examples/fashion_mnist_recipe.py --seed 1
    python examples/fashion_mnist_recipe.py --no-augment    # the recipe without augmentation
    python examples/fashion_mnist_recipe.py --fast          # a short run on 12,000 images (CI)
    python examples/fashion_mnist_recipe.py --figures fig   # also draw its training curves and mistakes

The model: three Conv -> BatchNorm -> ReLU -> MaxPool blocks (32, 64, 128 filters) with Dropout,
a Dense(128) head; AdamW with a warm-up and a cosine decay of the learning rate; random left-right
flips and whole-pixel shifts of up to 10% while training; 36 epochs (about 18 minutes on 2
cores). It trains on all 60,000 training images and is evaluated once, at the end, on the 10,000
test images, each predicted as the mean of the model's probabilities for it and for its mirror
image (--no-tta: once). The last line printed is `Test accuracy 0.XXXX` (0.9346 over seeds 0-2).
See docs/recipe.md for what each ingredient adds.
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
                units=128, shift=0.1, interpolation="nearest"):
    """The recipe's network; each flag removes one ingredient. x: (N, 28, 28, 1) in [0, 1] -> (N, 10).
    lib is minicnn, or keras: the same lines build the same model in Keras (benchmarks/compare.py)."""
    L = lib.layers

    def drop(rate):
        return [L.Dropout(rate)] if dropout else []

    return lib.models.Sequential([
        L.Input((28, 28, 1)),
        *([L.RandomFlip("horizontal"), L.RandomTranslation(shift, shift, fill_mode="constant",
                                                                   interpolation=interpolation)] if augment else []),
        *conv_block(L, widths[0], batchnorm), L.MaxPooling2D(2),
        *conv_block(L, widths[1], batchnorm), L.MaxPooling2D(2), *drop(rates[0]),
        *conv_block(L, widths[2], batchnorm), L.MaxPooling2D(2), *drop(rates[1]),
        L.Flatten(),
        L.Dense(units, activation="relu"), *drop(rates[2]),
        L.Dense(10, activation="softmax"),
    ])


def compile_model(model, lib, steps_per_epoch, epochs, schedule=True, peak=2e-3, label_smoothing=0.0):
    """AdamW (weight decay 5e-4) with a warm-up over the first epoch to the peak rate, then a cosine
    decay to 0 (or the peak throughout); cross-entropy (with label smoothing if asked)."""
    rate = peak
    if schedule:
        warmup = steps_per_epoch
        rate = lib.optimizers.schedules.CosineDecay(peak / 10, decay_steps=max(1, steps_per_epoch * epochs - warmup),
                                                    warmup_target=peak, warmup_steps=warmup)
    model.compile(loss=lib.losses.CategoricalCrossentropy(label_smoothing=label_smoothing),
                  optimizer=lib.optimizers.AdamW(rate, weight_decay=5e-4), metrics=["accuracy"])
    return model


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
    parser.add_argument("--epochs", type=int, default=36)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--fast", action="store_true", help="12,000 training images, 2 epochs (CI)")
    parser.add_argument("--no-batchnorm", dest="batchnorm", action="store_false")
    parser.add_argument("--no-dropout", dest="dropout", action="store_false")
    parser.add_argument("--no-augment", dest="augment", action="store_false")
    parser.add_argument("--no-schedule", dest="schedule", action="store_false", help="a constant learning rate")
    parser.add_argument("--label-smoothing", type=float, default=0.0)
    parser.add_argument("--no-tta", dest="tta", action="store_false",
                        help="predict each test image once, not as the mean of it and its mirror image")
    parser.add_argument("--history", help="write the per-epoch loss and accuracy to this CSV file")
    parser.add_argument("--save", help="save the trained model to this .keras file")
    parser.add_argument("--figures", help="draw the training curves and the misclassified test images into this folder")
    args = parser.parse_args(argv)

    minicnn.utils.set_random_seed(args.seed)
    (x_train, y_train), (x_test, y_test) = fashion_mnist.load_data()
    if args.fast:
        x_train, y_train, args.epochs = x_train[:12000], y_train[:12000], 2
    x_train = x_train.reshape(-1, 28, 28, 1).astype("float32") / 255
    x_test = x_test.reshape(-1, 28, 28, 1).astype("float32") / 255

    model = build_model(minicnn, args.batchnorm, args.dropout, args.augment)
    compile_model(model, minicnn, -(-len(x_train) // args.batch_size), args.epochs, args.schedule,
                  label_smoothing=args.label_smoothing)
    model.summary()
    callbacks = [minicnn.callbacks.CSVLogger(args.history)] if args.history else []
    start = time.perf_counter()
    history = model.fit(x_train, to_categorical(y_train, 10), batch_size=args.batch_size, epochs=args.epochs,
                        verbose=2, callbacks=callbacks)
    seconds = time.perf_counter() - start
    print(f"Training: {seconds:.0f} s, {seconds / args.epochs:.1f} s per epoch")
    if args.save:
        model.save(args.save)
    probs = model.predict(x_test, batch_size=1000, verbose=0)
    if args.tta:  # test-time augmentation: the mean of the predictions for the image and its mirror image
        print(f"Test accuracy, one view: {np.mean(probs.argmax(axis=1) == y_test):.4f}")
        probs = (probs + model.predict(x_test[:, :, ::-1], batch_size=1000, verbose=0)) / 2
    accuracy = float(np.mean(probs.argmax(axis=1) == y_test))
    if args.figures:
        save_figures(history.history, x_test, y_test, probs, args.figures)
    print(f"Test accuracy {accuracy:.4f}")
    return model, accuracy


if __name__ == "__main__":
    main()
