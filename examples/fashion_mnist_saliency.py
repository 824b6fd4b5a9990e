"""A saliency map: which pixels of a Fashion-MNIST image move the model's score for its class
most, from tape.gradient(score, x), the gradient with respect to the input.

    python examples/fashion_mnist_saliency.py      # trains a small CNN for one epoch, about a minute

The picture is saved to docs/images/saliency.png (or --out).
"""
import argparse

import numpy as np

import minicnn
from minicnn import layers

CLASSES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]


def saliency(model, images, labels):
    """|d score[label] / d pixel| for each image: (N, 28, 28, 1) -> (N, 28, 28)."""
    x = np.asarray(images, dtype="float32")
    with minicnn.GradientTape() as tape:
        tape.watch(x)  # an input: followed through the layers it is given to
        logits = model(x)
        score = logits[np.arange(len(x)), labels]  # each image's score for its own class
    return np.abs(tape.gradient(score, x))[..., 0]


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train", type=int, default=30000, help="training images (one epoch)")
    parser.add_argument("--out", default="docs/images/saliency.png")
    args = parser.parse_args()
    minicnn.utils.set_random_seed(0)
    (x_train, y_train), (x_test, y_test) = minicnn.datasets.fashion_mnist.load_data()
    x_train = (x_train[:args.train].reshape(-1, 28, 28, 1) / 255).astype("float32")
    x_test = (x_test.reshape(-1, 28, 28, 1) / 255).astype("float32")
    model = minicnn.Sequential([
        layers.Input((28, 28, 1)),
        layers.Conv2D(32, 3, activation="relu"), layers.MaxPooling2D(2),
        layers.Conv2D(32, 3, activation="relu"), layers.MaxPooling2D(2),
        layers.Flatten(), layers.Dense(10),
    ])
    model.compile(optimizer="adam", loss=minicnn.losses.SparseCategoricalCrossentropy(from_logits=True),
                  metrics=["accuracy"])
    model.fit(x_train, y_train[:args.train], batch_size=64, epochs=1, verbose=2)
    picks = [0, 1, 2, 3, 8, 9]  # six test images
    maps = saliency(model, x_test[picks], y_test[picks])

    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(2, len(picks), figsize=(1.6 * len(picks), 3.6))
    for k, i in enumerate(picks):
        axes[0, k].imshow(x_test[i, ..., 0], cmap="gray_r")
        axes[0, k].set_title(CLASSES[y_test[i]], fontsize=8)
        axes[1, k].imshow(maps[k], cmap="hot")
        for ax in axes[:, k]:
            ax.axis("off")
    fig.suptitle("|d score / d pixel|: tape.gradient(score, x)", fontsize=9)
    fig.tight_layout()
    fig.savefig(args.out, dpi=80)
    print(f"saved {args.out}")
