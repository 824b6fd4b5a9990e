"""The Numba backend's convolution with and without the register-blocked loops, shape by shape.

    python benchmarks/conv_paths.py [--rounds 8] [SHAPE ...]

A SHAPE is N,H,C,F,stride for a 3 x 3 'same' convolution of (N, H, H, C) images to F filters;
the default list is the convolutions of ResNet-20 and of Keras's CIFAR-10 CNN. For each shape,
conv2d_forward and conv2d_backward (dx, dW, db) are timed with blocked.pays as it is ("blocked
where it pays") and forced off (the path the backend takes otherwise: Winograd or im2col), the
two alternating in one process, `--rounds` times after a warm-up; the medians in ms and their
ratio. Run it alone on the machine (docs/benchmarks.md, "What each choice in the kernels buys").
"""
import argparse
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import numpy as np

from minicnn.kernels import blocked, numba_kernels

SHAPES = ["128,32,16,16,1", "128,16,32,16,1", "128,16,32,32,1", "128,8,64,64,1", "128,32,16,32,2", "128,16,32,64,2",
          "32,32,32,32,1", "32,16,32,64,1", "32,16,64,64,1"]


def time_pass(data, stride, pays):
    x, W, dy = data
    blocked.pays = pays
    t0 = time.perf_counter()
    _, ctx = numba_kernels.conv2d_forward(x, W, None, (stride, stride), (1, 1, 1, 1))
    t1 = time.perf_counter()
    numba_kernels.conv2d_backward(dy, ctx, W)
    t2 = time.perf_counter()
    return (t1 - t0) * 1e3, (t2 - t1) * 1e3


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("shapes", nargs="*", default=SHAPES)
    parser.add_argument("--rounds", type=int, default=8)
    args = parser.parse_args(argv)
    rng = np.random.default_rng(0)
    as_is, off = blocked.pays, (lambda *shape: False)
    print("shape N,H,C,F,stride   blocked where it pays: fwd, bwd ms   without: fwd, bwd ms   ratio of the sums")
    for text in args.shapes:
        N, H, C, F, stride = map(int, text.split(","))
        OH = (H - 1) // stride + 1
        data = (rng.standard_normal((N, H, H, C)).astype(np.float32),
                (rng.standard_normal((3, 3, C, F)) * 0.1).astype(np.float32),
                rng.standard_normal((N, OH, OH, F)).astype(np.float32))
        runs = {"on": [], "off": []}
        for pays in (as_is, off):  # warm-up: compilation, first allocations
            time_pass(data, stride, pays)
        for _ in range(args.rounds):
            runs["on"].append(time_pass(data, stride, as_is))
            runs["off"].append(time_pass(data, stride, off))
        blocked.pays = as_is
        on = [statistics.median(t[k] for t in runs["on"]) for k in (0, 1)]
        without = [statistics.median(t[k] for t in runs["off"]) for k in (0, 1)]
        taken = "blocked" if as_is(C, F, stride, stride) else "not taken"
        print(f"{text:22} {on[0]:7.2f} {on[1]:7.2f}   {without[0]:7.2f} {without[1]:7.2f}   "
              f"{sum(on) / sum(without):.2f} ({taken})", flush=True)


if __name__ == "__main__":
    main()
