"""A convolutional autoencoder on Fashion-MNIST: Conv2D encoder, Conv2DTranspose decoder.

    python examples/fashion_mnist_autoencoder.py               # 28x28 -> 7x7x16 -> 28x28, 3 epochs
    python examples/fashion_mnist_autoencoder.py --denoise     # noisy images in, clean images out
    python examples/fashion_mnist_autoencoder.py --epochs 1 --limit 512 --out /tmp/ae   # a quick look

The encoder halves the image twice with strided convolutions (28 -> 14 -> 7); the decoder
doubles it back with transposed convolutions (7 -> 14 -> 28), and a last sigmoid Conv2D gives
pixel values in [0, 1], trained against the input itself with binary cross-entropy and Adam,
batch 128. With --denoise, Gaussian noise (--noise, the standard deviation) is added to the inputs
and clipped to [0, 1]; the targets stay clean, so the network learns to remove the noise.
Draws <out>/autoencoder_reconstructions.png (autoencoder_denoising.png with --denoise) and the
encoder's first filters beside it (..._filters.png). docs/autoencoder.md shows them.
"""
import argparse
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files, never windows
import matplotlib.pyplot as plt
import numpy as np

from minicnn import layers, plot, utils
from minicnn.datasets import fashion_mnist
from minicnn.models import Model


def build_model():
    """28x28x1 -> 7x7x16 (the code) -> 28x28x1, as Keras would write it."""
    inputs = layers.Input(shape=(28, 28, 1))
    x = layers.Conv2D(16, 3, strides=2, padding="same", activation="relu")(inputs)  # 14x14x16
    code = layers.Conv2D(16, 3, strides=2, padding="same", activation="relu")(x)  # 7x7x16: 784 numbers
    x = layers.Conv2DTranspose(32, 3, strides=2, padding="same", activation="relu")(code)  # 14x14x32
    x = layers.Conv2DTranspose(16, 3, strides=2, padding="same", activation="relu")(x)  # 28x28x16
    outputs = layers.Conv2D(1, 3, padding="same", activation="sigmoid")(x)
    model = Model(inputs, outputs, name="autoencoder")
    model.compile(optimizer="adam", loss="binary_crossentropy")
    return model


def add_noise(images, std, seed):
    """images + N(0, std^2) noise, clipped to [0, 1]: the inputs of the denoising variant."""
    noise = np.random.default_rng(seed).normal(0, std, images.shape).astype(np.float32)
    return np.clip(images + noise, 0, 1)


def reconstructions(rows, titles, columns=10):
    """A figure with one row of images per array in rows ((columns, 28, 28, 1) each)."""
    fig, axes = plt.subplots(len(rows), columns, figsize=(columns, 1.15 * len(rows)), squeeze=False)
    for r, (images, title) in enumerate(zip(rows, titles)):
        for c in range(columns):
            axes[r, c].imshow(images[c, :, :, 0], cmap="gray", vmin=0, vmax=1)
            axes[r, c].axis("off")
        axes[r, 0].set_title(title, fontsize=8, loc="left")
    fig.tight_layout()
    return fig


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--denoise", action="store_true", help="noisy inputs, clean targets")
    parser.add_argument("--noise", type=float, default=0.3, help="the noise's standard deviation (--denoise)")
    parser.add_argument("--limit", type=int, help="train on the first LIMIT images only (a quick run)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default=".", help="folder for the pictures")
    args = parser.parse_args(argv)
    utils.set_random_seed(args.seed)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    (x, _), (xt, _) = fashion_mnist.load_data()
    x = (x[:args.limit] / 255).astype(np.float32).reshape(-1, 28, 28, 1)
    xt = (xt[:max(args.limit or 0, 1000) if args.limit else None] / 255).astype(np.float32).reshape(-1, 28, 28, 1)
    inputs, test_inputs = x, xt
    if args.denoise:
        inputs, test_inputs = add_noise(x, args.noise, args.seed), add_noise(xt, args.noise, args.seed + 1)

    model = build_model()
    model.summary()
    model.fit(inputs, x, batch_size=128, epochs=args.epochs, validation_data=(test_inputs, xt))
    test_loss = model.evaluate(test_inputs, xt, batch_size=500, verbose=0)
    outputs = model.predict(test_inputs, batch_size=500, verbose=0)
    print(f"Test loss (binary cross-entropy) {test_loss:.4f}, mean squared error {np.mean((outputs - xt) ** 2):.4f}")

    if args.denoise:
        fig = reconstructions([xt, test_inputs, outputs], ["clean", f"input: noise std {args.noise}", "output"])
        name = "autoencoder_denoising"
    else:
        fig = reconstructions([xt, outputs], ["input", "reconstruction"])
        name = "autoencoder_reconstructions"
    fig.savefig(out / f"{name}.png", dpi=80)
    plot.conv_filters(model.layers[0]).savefig(out / f"{name}_filters.png", dpi=80)
    print(f"saved {out / name}.png and {out / name}_filters.png")
    return model, test_loss


if __name__ == "__main__":
    main()
