"""Look inside a trained tutorial model: every picture minicnn.plot draws, the summary and a trace.

    python examples/inspect_model.py                      # train 5 epochs, then draw into inspect/
    python examples/inspect_model.py --model model.npz    # a model saved by `minicnn train --save`
    python examples/inspect_model.py --epochs 1 --out inspect/

The pictures of docs/tour.md were made with `--epochs 5 --seed 0 --save model.npz --out docs/images`.
"""
import argparse
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files, never windows
import matplotlib.pyplot as plt
import numpy as np

from minicnn import plot, tutorial, utils
from minicnn.datasets.fashion_mnist import CLASS_NAMES
from minicnn.models import load_model


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="a saved model; without it, the tutorial model is trained first")
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--seed", type=int)
    parser.add_argument("--save", help="where to save the model trained here")
    parser.add_argument("--out", default="inspect", help="folder for the pictures")
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    if args.seed is not None:
        utils.set_random_seed(args.seed)

    (x, y), (xt, yt) = tutorial.load_data()
    figures = {}
    if args.model:
        model = load_model(args.model)
    else:
        model = tutorial.build_model()
        history = model.fit(x, y, batch_size=64, epochs=args.epochs, validation_data=(xt, yt))
        figures["training_curves"] = plot.training_curves(history)
        if args.save:
            model.save(args.save)
    model.summary()

    probs = model.predict(xt, batch_size=500, verbose=0)
    print(f"test accuracy: {np.mean(probs.argmax(1) == yt.argmax(1)):.4f}")
    image = 0  # the tour follows the first test image, an ankle boot
    print(f"test image {image}: true {CLASS_NAMES[yt[image].argmax()]}, predicted "
          f"{CLASS_NAMES[probs[image].argmax()]} ({probs[image].max():.1%})")
    print(model.trace(xt[:64], yt[:64]))

    figures["confusion_matrix"] = plot.confusion_matrix(yt, probs, CLASS_NAMES)
    figures["predictions"] = plot.prediction_grid(xt[:15], yt[:15], probs[:15], CLASS_NAMES)
    figures["conv1_filters"] = plot.conv_filters(model.layers[0])
    figures["conv2_filters"] = plot.conv_filters(model.layers[3], channel=0)
    figures["feature_maps"] = plot.feature_maps(model, xt[image])
    figures["histograms"] = plot.activation_histograms(model, xt[:64], yt[:64])
    for name, fig in figures.items():
        fig.savefig(out / f"{name}.png", dpi=72)
        plt.close(fig)
    print(f"saved {len(figures)} pictures to {out}/: {', '.join(figures)}")


if __name__ == "__main__":
    main()
