"""Winograd F(2x2, 3x3) against im2col + sgemm, on the 3 x 3 convolutions of the tutorial and the recipe.

    python benchmarks/winograd.py [--batch 64] [--repeat 30]

For each layer: the forward pass by im2col + sgemm (numba_kernels' path) and by
minicnn/kernels/winograd.py's compiled twin, median milliseconds of --repeat runs after a
warm-up, and the Winograd pass in its three parts: the input transform, the 16 matrix products
(with their GFLOP/s: 2 FLOPs per multiply-add actually done) and the output transform. The
multiply-adds column counts what each method multiplies: im2col 9 C F per output, Winograd
16 C F per 2 x 2 output tile (4 C F per output, more where tiles hang over the edge). A second
table times the fused Conv2D -> ReLU -> MaxPooling2D(2) step (numba_kernels.conv_relu_pool_forward)
with the im2col path and with Winograd's tiles as the pooling windows.
docs/winograd.md shows the tables and what they say.
"""
import argparse

import numpy as np
from kernels import median_ms  # benchmarks/kernels.py, beside this script

from minicnn.kernels import numba_kernels, winograd

LAYERS = [  # name, input (H, W, C), filters F, pads
    ("tutorial conv 2: 13x13x64 -> 11x11x64", (13, 13, 64), 64, (0, 0, 0, 0)),
    ("recipe conv 2: 14x14x32 -> 14x14x64", (14, 14, 32), 64, (1, 1, 1, 1)),
    ("recipe conv 3: 7x7x64 -> 7x7x128", (7, 7, 64), 128, (1, 1, 1, 1)),
]


def im2col_only(fn, *args):
    """fn(*args) with the Numba backend's choice of Winograd turned off: its im2col path."""
    chosen = numba_kernels._winograd_pays
    numba_kernels._winograd_pays = lambda *a: False
    try:
        return fn(*args)
    finally:
        numba_kernels._winograd_pays = chosen


def measure_fused(name, shape, F, pads, batch, repeat):
    """The fused conv -> ReLU -> pool 2 step, by im2col and by Winograd (each tile one window)."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((batch, *shape)).astype(np.float32)
    W = (rng.standard_normal((3, 3, shape[2], F)) / 10).astype(np.float32)
    b = np.zeros(F, dtype=np.float32)
    fused = numba_kernels.conv_relu_pool_forward
    by_im2col = im2col_only(fused, x, W, b, 2, pads)[0]
    np.testing.assert_allclose(fused(x, W, b, 2, pads)[0], by_im2col, rtol=0, atol=1e-5 * np.abs(by_im2col).max())
    return {"layer": name, "im2col_ms": median_ms(lambda: im2col_only(fused, x, W, b, 2, pads), repeat),
            "winograd_ms": median_ms(lambda: fused(x, W, b, 2, pads), repeat)}


def measure(name, shape, F, pads, batch, repeat):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((batch, *shape)).astype(np.float32)
    W = (rng.standard_normal((3, 3, shape[2], F)) / 10).astype(np.float32)
    b = np.zeros(F, dtype=np.float32)
    direct = numba_kernels.conv2d_forward(x, W, b, (1, 1), pads)[0]
    np.testing.assert_allclose(winograd.conv3x3_forward_compiled(x, W, b, pads), direct, rtol=0,
                               atol=1e-5 * np.abs(direct).max())  # the same layer, or the timings mean nothing
    OH, OW, TH, TW = winograd.tiling(winograd.padded_shape(x.shape, pads))
    C, T = shape[2], batch * TH * TW
    U = winograd.filter_transform(W).reshape(16, C, F)
    V = np.empty((16, T, C), dtype=np.float32)
    M = np.empty((16, T, F), dtype=np.float32)
    y = np.empty((batch, OH, OW, F), dtype=np.float32)
    winograd._input_transform(x, pads[0], pads[2], TH, TW, V)  # real values: np.empty's leftovers can be denormals, 20x slower
    products = median_ms(lambda: np.matmul(V, U, out=M), repeat)
    return {
        "layer": name, "im2col_ms": median_ms(lambda: im2col_only(numba_kernels.conv2d_forward, x, W, b, (1, 1), pads),
                                              repeat),
        "winograd_ms": median_ms(lambda: winograd.conv3x3_forward_compiled(x, W, b, pads), repeat),
        "input_ms": median_ms(lambda: winograd._input_transform(x, pads[0], pads[2], TH, TW, V), repeat),
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
    print(f"\nConv2D -> ReLU -> MaxPooling2D(2), fused, forward pass, batch {args.batch}, median of {args.repeat} runs, ms")
    print("| layer | im2col + sgemm, then ReLU and pool | Winograd, each tile one pooling window | ratio |")
    print("| --- | ---: | ---: | ---: |")
    for name, shape, F, pads in LAYERS:
        r = measure_fused(name, shape, F, pads, args.batch, args.repeat)
        print(f"| {r['layer']} | {r['im2col_ms']:.2f} | {r['winograd_ms']:.2f} | {r['im2col_ms'] / r['winograd_ms']:.2f}x |")


if __name__ == "__main__":
    main()
