"""One number for a training step and one for an inference batch: the tool for before/after.

    python benchmarks/step_time.py --model recipe [--batch 64] [--steps 150] [--repeat 100] [--numpy-first]

Prints the median milliseconds of `train_on_batch` (over --steps calls, after 5 warm-up steps)
and of `predict` on one batch (over --repeat calls), on the Numba backend, for the tutorial
model, the recipe's or Keras's CIFAR-10 CNN, ResNet-20 or the autoencoder (benchmarks/networks.py
builds them, as compare.py trains them). The host's speed drifts by 5-10% within minutes, so compare two versions
alternately, each in its own process, e.g. a
worktree of the older commit against the working tree, four rounds:

    git worktree add /tmp/old HEAD~1
    for r in 1 2 3 4; do
      PYTHONPATH=/tmp/old NUMBA_CACHE_DIR=/tmp/numba-old python /tmp/old/benchmarks/step_time.py --model recipe
      python benchmarks/step_time.py --model recipe
    done

(or the same code under two environments, as docs/benchmarks.md's "Threads" compares thread
settings). --numpy-first imports NumPy before minicnn, as most programs do (minicnn sets the
same thread settings either way: docs/benchmarks.md, "Import order"). For where the time goes
inside a step, benchmarks/kernels.py.
"""
import argparse
import sys

if "--numpy-first" in sys.argv:
    import numpy  # noqa: F401  (the order of a ported Keras program: NumPy, then minicnn)

import minicnn

# isort: split
import numpy as np
from compare import MODELS, build  # benchmarks/compare.py, beside this script (Python puts the script's folder first)
from kernels import median_ms  # benchmarks/kernels.py: a warm-up call, then the median of the repeats

from minicnn.utils import set_random_seed, to_categorical


def measure(model_name, batch, steps, repeat):
    """(training step ms, inference batch ms), medians; the model and data seeded."""
    set_random_seed(0)
    model = build(minicnn, model_name, 938, 36)
    rng = np.random.default_rng(0)
    x = rng.random((batch, *model.input_shape[1:]), dtype=np.float32)  # 28 x 28 x 1, or CIFAR-10's 32 x 32 x 3
    y = x if MODELS[model_name].task == "reconstruct" else to_categorical(np.arange(batch) % 10, 10)  # autoencoder
    for _ in range(5):  # compilation (or the cache's load) and the first allocations are not timed
        model.train_on_batch(x, y)
    train = median_ms(lambda: model.train_on_batch(x, y), steps)
    infer = median_ms(lambda: model.predict(x, verbose=0, batch_size=batch), repeat)
    return train, infer


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", choices=("tutorial", "recipe", "cifar-cnn", "resnet20", "autoencoder"),
                        default="tutorial")
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--steps", type=int, default=150)
    parser.add_argument("--repeat", type=int, default=100)
    parser.add_argument("--numpy-first", action="store_true", help="import NumPy before minicnn")
    args = parser.parse_args(argv)
    train, infer = measure(args.model, args.batch, args.steps, args.repeat)
    order = "numpy first" if args.numpy_first else "minicnn first"
    print(f"{args.model} batch {args.batch} ({order}): train_on_batch {train:.2f} ms, predict {infer:.3f} ms")
    return train, infer


if __name__ == "__main__":
    main()
