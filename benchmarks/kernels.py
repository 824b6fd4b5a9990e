"""Per-kernel micro-benchmark: where one training step of the tutorial model spends its time.

    python benchmarks/kernels.py [--backend numba numpy] [--batch 64] [--repeat 20] [--json out.json]
    python benchmarks/kernels.py --model recipe --backend numba    # examples/fashion_mnist_recipe.py's network

For each step of the tutorial model (or the recipe's) at the given batch size (a layer, or on
the Numba backend a fused block that Sequential runs as one: Conv2D -> ReLU -> MaxPooling2D,
Conv2D -> BatchNormalization -> ReLU -> MaxPooling2D), times forward and
backward (median of --repeat runs, after a warm-up run that pays any JIT compilation) and
reports milliseconds per batch and, where there are multiply-adds, GFLOP/s (2 FLOPs per
multiply-add). The last line times whole train_on_batch calls: the loss, Adam and the
passes between the kernels included.
"""
import argparse
import json
import time

import minicnn

# isort: split
import numpy as np

from minicnn import backend
from minicnn.fusion import FusedStep
from minicnn.layers import Activation, Conv2D, Dense, Flatten, MaxPooling2D
from minicnn.models import Sequential
from minicnn.utils import set_random_seed, to_categorical


def tutorial_layers():
    return [Conv2D(64, (3, 3), input_shape=(28, 28, 1)), Activation("relu"), MaxPooling2D((2, 2)),
            Conv2D(64, (3, 3)), Activation("relu"), MaxPooling2D((2, 2)), Flatten(), Dense(64), Dense(10),
            Activation("softmax")]


def median_ms(fn, repeat):
    fn()  # warm-up: JIT compilation or cache load is not timed
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return 1000 * float(np.median(times))


def profile(name, batch, repeat, model_name="tutorial"):
    backend.set_backend(name)
    set_random_seed(0)
    if model_name == "recipe":
        from compare import build  # benchmarks/compare.py, beside this script: the recipe as it trains
        model = build(minicnn, "recipe", 938, 36)
    else:
        model = Sequential(tutorial_layers())
        model.compile(loss="categorical_crossentropy", optimizer="adam")
    x = np.random.default_rng(0).random((batch, 28, 28, 1), dtype=np.float32)
    x0 = x
    rows = []
    shape = model.input_shape
    for step in model.execution_plan():
        layers = step.layers if isinstance(step, FusedStep) else [step]
        y = step.forward(x, training=True)
        dy = np.random.default_rng(1).standard_normal(y.shape).astype(np.float32)
        macs = bwd_macs = 0
        for layer in layers:
            m = layer.count_macs(shape) * batch
            macs += m
            # backward multiply-adds: dW always; dx unless the layer skips it (the first conv)
            bwd_macs += m * (2 if layer.input_grad else 1)
            shape = layer.compute_output_shape(shape)
        fwd = median_ms(lambda step=step, x=x: step.forward(x, training=True), repeat)
        step.forward(x, training=True)
        bwd = median_ms(lambda step=step, dy=dy: step.backward(dy), repeat)
        label = "+".join(layer.name for layer in layers) if len(layers) > 1 else layers[0].name
        rows.append({"backend": name, "layer": label, "output": list(y.shape[1:]),
                     "forward_ms": fwd, "backward_ms": bwd,
                     "forward_gflops": 2 * macs / fwd / 1e6 if macs else None,
                     "backward_gflops": 2 * bwd_macs / bwd / 1e6 if bwd_macs else None})
        x = y
    labels = to_categorical(np.arange(batch) % 10, 10)
    step_ms = median_ms(lambda: model.train_on_batch(x0, labels), repeat)
    rows.append({"backend": name, "layer": "train_on_batch", "step_ms": step_ms})
    return rows


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", nargs="+", default=["numba", "numpy"], choices=backend.BACKENDS)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--json", help="write the rows to this JSON file")
    parser.add_argument("--model", choices=("tutorial", "recipe"), default="tutorial")
    args = parser.parse_args()
    rows = [row for name in args.backend for row in profile(name, args.batch, args.repeat, args.model)]
    print(f"{args.model} model, batch {args.batch}, median of {args.repeat} runs, ms per batch")
    print(f"{'backend':8} {'step':52} {'forward':>9} {'GFLOP/s':>8} {'backward':>9} {'GFLOP/s':>8}")
    for name in args.backend:
        total = 0.0
        for r in (r for r in rows if r["backend"] == name and "step_ms" not in r):
            total += r["forward_ms"] + r["backward_ms"]
            gf = lambda v: f"{v:8.1f}" if v else " " * 8
            print(f"{name:8} {r['layer']:52} {r['forward_ms']:9.3f} {gf(r['forward_gflops'])} "
                  f"{r['backward_ms']:9.3f} {gf(r['backward_gflops'])}")
        steps = -(-60000 // args.batch)
        real = next(r["step_ms"] for r in rows if r["backend"] == name and "step_ms" in r)
        print(f"{name:8} {'kernels alone':52} {total:9.3f} ms per training step (x {steps} = {total * steps / 1000:.1f} s)")
        print(f"{name:8} {'train_on_batch':52} {real:9.3f} ms per training step (x {steps} = {real * steps / 1000:.1f} s)")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=1)


if __name__ == "__main__":
    main()
