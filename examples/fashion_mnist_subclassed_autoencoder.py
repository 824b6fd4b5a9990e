"""A convolutional autoencoder on Fashion-MNIST, written as a model of your own (a subclass of
minicnn.Model with its layers as attributes and a call) and trained with fit, which runs it
through the GradientTape.

    python examples/fashion_mnist_subclassed_autoencoder.py     # about two minutes on 2 cores

Test images and their reconstructions are saved to docs/images/subclassed_autoencoder.png (or --out).
"""
import argparse

import minicnn
from minicnn import layers, ops


class UpSampling(layers.Layer):
    """Nearest-neighbour upsampling by 2, written with minicnn.ops and no backward: the tape
    differentiates its call. x: (N, H, W, C) -> (N, 2H, 2W, C)."""

    def call(self, x):
        n, h, w, c = x.shape
        x = ops.reshape(ops.stack([x, x], axis=3), (n, h, 2 * w, c))  # each column twice
        return ops.reshape(ops.stack([x, x], axis=2), (n, 2 * h, 2 * w, c))  # each row twice

    def compute_output_shape(self, input_shape):
        return (None, 2 * input_shape[1], 2 * input_shape[2], input_shape[3])


class Autoencoder(minicnn.Model):
    """28 x 28 x 1 -> a code of 7 x 7 x 8 -> 28 x 28 x 1."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.encoder = [layers.Conv2D(16, 3, padding="same", activation="relu"), layers.MaxPooling2D(2),
                        layers.Conv2D(8, 3, padding="same", activation="relu"), layers.MaxPooling2D(2)]
        self.decoder = [UpSampling(), layers.Conv2D(16, 3, padding="same", activation="relu"),
                        UpSampling(), layers.Conv2D(1, 3, padding="same", activation="sigmoid")]

    def call(self, x, training=None):
        for layer in self.encoder + self.decoder:
            x = layer(x)
        return x


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train", type=int, default=20000, help="training images")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--out", default="docs/images/subclassed_autoencoder.png")
    args = parser.parse_args()
    minicnn.utils.set_random_seed(0)
    (x_train, _), (x_test, _) = minicnn.datasets.fashion_mnist.load_data()
    x_train = (x_train[:args.train].reshape(-1, 28, 28, 1) / 255).astype("float32")
    x_test = (x_test.reshape(-1, 28, 28, 1) / 255).astype("float32")
    model = Autoencoder()
    model.compile(optimizer="adam", loss="binary_crossentropy", metrics=["mae"])
    model.fit(x_train, x_train, batch_size=64, epochs=args.epochs, verbose=2)
    model.summary()
    print("test loss, mae:", model.evaluate(x_test[:1000], x_test[:1000], verbose=0))
    shown = x_test[:8]
    again = model.predict(shown, verbose=0)

    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(2, 8, figsize=(8, 2.4))
    for k in range(8):
        axes[0, k].imshow(shown[k, ..., 0], cmap="gray_r", vmin=0, vmax=1)
        axes[1, k].imshow(again[k, ..., 0], cmap="gray_r", vmin=0, vmax=1)
        axes[0, k].axis("off")
        axes[1, k].axis("off")
    fig.suptitle("Test images (top) and the autoencoder's reconstructions (bottom)", fontsize=9)
    fig.tight_layout()
    fig.savefig(args.out, dpi=80)
    print(f"saved {args.out}")
