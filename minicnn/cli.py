"""The `minicnn` command (also `python -m minicnn`): train, evaluate, predict, explain, bench.

    minicnn train --epochs 5 --save model.npz --plots plots/
    minicnn evaluate model.npz
    minicnn predict model.npz shoe.png shirt.png
    minicnn explain model.npz --index 0 -o explain.html
    minicnn bench --steps 50
"""
import argparse
import sys
import time
from pathlib import Path

import numpy as np


def main(argv=None):
    parser = argparse.ArgumentParser(prog="minicnn", description="minicnn: the Keras Fashion-MNIST tutorial "
                                     "model on a hand-written engine.")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--backend", choices=("numpy", "numba", "cupy"),
                        help="kernels to run: numpy, numba (the default when installed) or cupy (an NVIDIA GPU)")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    train = commands.add_parser("train", parents=[common], help="train the tutorial model on Fashion-MNIST")
    train.add_argument("--epochs", type=int, default=5)
    train.add_argument("--batch-size", type=int, default=64)
    train.add_argument("--data-dir", help="folder with the four Fashion-MNIST files (default: find or download)")
    train.add_argument("--limit", type=int, help="train and test on the first N images only (a quick run)")
    train.add_argument("--seed", type=int, help="random seed, for a reproducible run")
    train.add_argument("--save", metavar="PATH", help="save the trained model (.npz) after every epoch")
    train.add_argument("--resume", metavar="PATH", help="continue training the model saved at PATH")
    train.add_argument("--plots", metavar="DIR", help="draw the training curves and the confusion matrix into DIR")

    evaluate = commands.add_parser("evaluate", parents=[common], help="test loss and accuracy of a saved model")
    evaluate.add_argument("model", help="a model saved by `minicnn train --save` or model.save()")
    evaluate.add_argument("--data-dir")
    evaluate.add_argument("--limit", type=int)
    evaluate.add_argument("--batch-size", type=int, default=256)

    predict = commands.add_parser("predict", parents=[common], help="classify images (PNG, JPEG...) with a saved model")
    predict.add_argument("model")
    predict.add_argument("images", nargs="+", help="image files; turned grayscale and resized to 28x28")
    predict.add_argument("--invert", action="store_true",
                         help="invert the images: Fashion-MNIST shows light clothes on a black background")
    predict.add_argument("--top", type=int, default=1, help="how many classes to print per image")

    explain = commands.add_parser("explain", parents=[common],
                                  help="write one HTML page that shows a saved model at work on one image")
    explain.add_argument("model")
    which = explain.add_mutually_exclusive_group()
    which.add_argument("--image", help="a picture file; turned grayscale and resized to 28x28")
    which.add_argument("--index", type=int, default=0, help="the N-th Fashion-MNIST test image (default: 0)")
    explain.add_argument("--invert", action="store_true", help="invert the --image (light clothes on black)")
    explain.add_argument("--data-dir", help="folder with the Fashion-MNIST files, for --index")
    explain.add_argument("-o", "--output", default="explain.html", help="the page to write (default: explain.html)")

    bench = commands.add_parser("bench", parents=[common], help="time training and inference steps of the tutorial model")
    bench.add_argument("--steps", type=int, default=30, help="training steps to time per backend")
    bench.add_argument("--batch-size", type=int, default=64)

    args = parser.parse_args(argv)
    from minicnn import backend

    previous = backend.get_backend()  # main() may be called from Python: leave the choice as it was
    try:
        if args.backend:
            backend.set_backend(args.backend)
        return {"train": cmd_train, "evaluate": cmd_evaluate, "predict": cmd_predict, "explain": cmd_explain,
                "bench": cmd_bench}[
            args.command](args)
    except (ValueError, TypeError, RuntimeError, OSError) as e:
        print(f"minicnn {args.command}: error: {e}", file=sys.stderr)
        return 2
    finally:
        backend.set_backend(previous)


def cmd_train(args):
    from minicnn import callbacks, tutorial, utils
    from minicnn.models import load_model

    if args.seed is not None:
        utils.set_random_seed(args.seed)
    (x, y), (xt, yt) = tutorial.load_data(args.data_dir, args.limit)
    model = load_model(args.resume) if args.resume else tutorial.build_model()
    done = model.optimizer.iterations // -(-len(x) // args.batch_size)  # epochs already trained
    cbs = [callbacks.ModelCheckpoint(args.save, monitor="loss")] if args.save else []
    history = model.fit(x, y, batch_size=args.batch_size, epochs=done + args.epochs, initial_epoch=done,
                        validation_data=(xt, yt), callbacks=cbs)
    if args.save:
        print(f"saved the model to {args.save}")
    if args.plots:
        from minicnn import plot
        from minicnn.datasets.fashion_mnist import CLASS_NAMES
        folder = Path(args.plots)
        folder.mkdir(parents=True, exist_ok=True)
        probs = model.predict(xt, batch_size=256, verbose=0)
        figures = {"training_curves.png": plot.training_curves(history),
                   "confusion_matrix.png": plot.confusion_matrix(yt, probs, CLASS_NAMES),
                   "predictions.png": plot.prediction_grid(xt[:20], yt[:20], probs[:20], CLASS_NAMES),
                   "conv_filters.png": plot.conv_filters(model.layers[0])}
        for name, fig in figures.items():
            fig.savefig(folder / name, dpi=80)
        print(f"saved {len(figures)} pictures to {folder}/")
    return 0


def cmd_evaluate(args):
    from minicnn import tutorial
    from minicnn.models import load_model

    model = load_model(args.model)
    if model.loss is None:
        raise ValueError(f"{args.model} was saved before compile: it has no loss to evaluate with")
    _, (xt, yt) = tutorial.load_data(args.data_dir, args.limit)
    result = model.evaluate(xt, yt, batch_size=args.batch_size, verbose=0, return_dict=True)
    print(f"test images: {len(xt)}  " + "  ".join(f"{k}: {v:.4f}" for k, v in result.items()))
    return 0


def read_image(path, invert=False):
    """A picture file -> float32 (28, 28, 1) in [0, 1]: grayscale, resized to 28x28."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as img:
            img = img.convert("L")
            if img.size != (28, 28):
                img = img.resize((28, 28), Image.Resampling.LANCZOS)
            x = np.asarray(img, dtype=np.float32) / 255
    except UnidentifiedImageError:
        raise ValueError(f"{path}: not an image file that Pillow can read") from None
    return (1 - x if invert else x)[..., None]


def cmd_predict(args):
    from minicnn.datasets.fashion_mnist import CLASS_NAMES
    from minicnn.models import load_model

    model = load_model(args.model, compile=False)
    x = np.stack([read_image(p, args.invert) for p in args.images])
    probs = model.predict(x, verbose=0)
    for path, p in zip(args.images, probs):
        best = np.argsort(p)[::-1][:max(1, args.top)]
        print(f"{path}: " + ", ".join(f"{CLASS_NAMES[k]} ({p[k]:.1%})" for k in best))
    return 0


def cmd_explain(args):
    from minicnn import tutorial
    from minicnn.datasets.fashion_mnist import CLASS_NAMES
    from minicnn.explainer import explain
    from minicnn.models import load_model

    model = load_model(args.model)
    if args.image:
        x = read_image(args.image, args.invert)
    else:
        _, (xt, _) = tutorial.load_data(args.data_dir)
        if not 0 <= args.index < len(xt):
            raise ValueError(f"--index must be in [0, {len(xt)}), got {args.index}")
        x = xt[args.index]
    names = CLASS_NAMES if model.output_shape[-1] == len(CLASS_NAMES) else None
    explain(model, x, class_names=names).save(args.output)
    print(f"wrote {args.output}: open it in a browser")
    return 0


def cmd_bench(args):
    from minicnn import backend, tutorial, utils

    rng = np.random.default_rng(0)
    n = args.batch_size
    x = rng.random((n, 28, 28, 1), dtype=np.float32)
    y = utils.to_categorical(rng.integers(0, 10, n), 10)
    print(f"tutorial model, batch {n}, random data; the first steps (compilation) are not timed")
    print(f"{'backend':<8} {'ms/step':>8} {'train img/s':>12} {'infer img/s':>12} {'epoch (60k) s':>14}")
    from minicnn import gpu
    names = [args.backend] if args.backend else [b for b in backend.BACKENDS if b != "numba" or backend._numba_available()]
    if not args.backend and gpu.available():
        names.append("cupy")
    for name in names:
        backend.set_backend(name)
        model = tutorial.build_model()
        for _ in range(2):
            model.train_on_batch(x, y)  # warm-up: JIT compile or cache load
        start = time.perf_counter()
        for _ in range(args.steps):
            model.train_on_batch(x, y)
        step = (time.perf_counter() - start) / args.steps
        start = time.perf_counter()
        for _ in range(args.steps):
            model.predict(x, batch_size=n, verbose=0)
        infer = (time.perf_counter() - start) / args.steps
        print(f"{name:<8} {step * 1e3:8.1f} {n / step:12,.0f} {n / infer:12,.0f} {60000 / n * step:14.1f}")
    print("side by side with Keras: python benchmarks/compare.py (in a source checkout)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
