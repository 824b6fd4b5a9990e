"""Winograd F(2x2, 3x3) against im2col + sgemm, on the 3 x 3 convolutions of the tutorial and the recipe.

    python benchmarks/winograd.py [--batch 64] [--repeat 30]

For each layer: the forward pass of the engine's im2col path (numba_kernels.conv2d_forward) and
of minicnn/kernels/winograd.py's compiled twin, median milliseconds of --repeat runs after a
warm-up, and the Winograd pass in its three parts: the input transform, the 16 matrix products
(with their GFLOP/s: 2 FLOPs per multiply-add actually done) and the output transform. The
multiply-adds column counts what each method multiplies: im2col 9 C F per output, Winograd
16 C F per 2 x 2 output tile (4 C F per output, more where tiles hang over the edge).
docs/winograd.md shows the table and what it says.
"""
import argparse
import time

import minicnn  # noqa: F401  (before NumPy: OpenBLAS's thread settings)

# isort: split
import numpy as np

from minicnn.kernels import numba_kernels, winograd

LAYERS = [  # name, input (H, W, C), filters F, pads
    ("tutorial conv 2 (valid)", (13, 13, 64), 64, (0, 0, 0, 0)),
    ("recipe conv 2 (same)", (14, 14, 32), 64, (1, 1, 1, 1)),
    ("recipe conv 3 (same)", (7, 7, 64), 128, (1, 1, 1, 1)),
]


def median_ms(fn, repeat):
    fn()
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return 1000 * float(np.median(times))


def measure(name, shape, F, pads, batch, repeat):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((batch, *shape)).astype(np.float32)
    W = (rng.standard_normal((3, 3, shape[2], F)) / 10).astype(np.float32)
    b = np.zeros(F, dtype=np.float32)
    direct = numba_kernels.conv2d_forward(x, W, b, (1, 1), pads)[0]
    np.testing.assert_allclose(winograd.conv3x3_forward_compiled(x, W, b, pads), direct, rtol=0,
                               atol=1e-5 * np.abs(direct).max())  # the same layer, or the timings mean nothing
    xpad = np.ascontiguousarray(winograd.pad_nhwc(x, pads))
    OH, OW, TH, TW = winograd.tiling(xpad.shape)
    C, T = shape[2], batch * TH * TW
    U = winograd.filter_transform(W).reshape(16, C, F)
    V = np.empty((16, T, C), dtype=np.float32)
    M = np.empty((16, T, F), dtype=np.float32)
    y = np.empty((batch, OH, OW, F), dtype=np.float32)
    products = median_ms(lambda: np.matmul(V, U, out=M), repeat)
    return {
        "layer": name, "im2col_ms": median_ms(lambda: numba_kernels.conv2d_forward(x, W, b, (1, 1), pads), repeat),
        "winograd_ms": median_ms(lambda: winograd.conv3x3_forward_compiled(x, W, b, pads), repeat),
        "input_ms": median_ms(lambda: winograd._input_transform(xpad, TH, TW, V), repeat),
        "products_ms": products, "products_gflops": 2 * 16 * T * C * F / products / 1e6,
        "output_ms": median_ms(lambda: winograd._output_transform(M, b, TH, TW, y), repeat),
        "im2col_macs": batch * OH * OW * 9 * C * F, "winograd_macs": 16 * T * C * F,
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--repeat", type=int, default=30)
    args = parser.parse_args()
    print(f"forward pass, batch {args.batch}, median of {args.repeat} runs, ms")
    print("| layer | im2col + sgemm | Winograd | input transform | 16 products | GFLOP/s | output transform "
          "| multiply-adds im2col / Winograd |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for name, shape, F, pads in LAYERS:
        r = measure(name, shape, F, pads, args.batch, args.repeat)
        print(f"| {r['layer']} | {r['im2col_ms']:.2f} | {r['winograd_ms']:.2f} | {r['input_ms']:.2f} | "
              f"{r['products_ms']:.2f} | {r['products_gflops']:.0f} | {r['output_ms']:.2f} | "
              f"{r['im2col_macs'] / 1e6:.0f} M / {r['winograd_macs'] / 1e6:.0f} M |")


if __name__ == "__main__":
    main()
