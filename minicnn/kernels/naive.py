"""The textbook loops: convolution and max pooling written straight from their definitions
(and TensorFlow's padding rule), one output value at a time. Read these first.

They are far too slow to train with, and that is not their job: they are the independent
version that the kernels of every backend are tested against (tests/test_kernels.py,
tests/test_properties.py), the reference's whole-array NumPy included. Shapes as elsewhere:
x (N, H, W, C), W (KH, KW, C, F), y (N, OH, OW, F); float64 results.
"""
import math

import numpy as np


def tf_pads(size, k, s, padding):
    """(output length, padding before) along one axis: "same" puts the odd extra after."""
    if padding == "valid":
        return (size - k) // s + 1, 0
    out = math.ceil(size / s)
    return out, max((out - 1) * s + k - size, 0) // 2


def conv(x, W, b, stride, padding):
    """y[n, i, j] = b + sum over the window at (i, j) of x[n, r, c] @ W[kh, kw] (cross-correlation,
    as Keras computes it: no kernel flip). Cells of the window outside x are the zero padding."""
    N, H, Wd, _ = x.shape
    KH, KW, _, F = W.shape
    OH, top = tf_pads(H, KH, stride[0], padding)
    OW, left = tf_pads(Wd, KW, stride[1], padding)
    y = np.zeros((N, OH, OW, F))
    for n in range(N):
        for i in range(OH):
            for j in range(OW):
                for kh in range(KH):
                    for kw in range(KW):
                        r, c = i * stride[0] + kh - top, j * stride[1] + kw - left
                        if 0 <= r < H and 0 <= c < Wd:
                            y[n, i, j] += x[n, r, c] @ W[kh, kw]
    return y + (0 if b is None else b)


def conv_backward(x, W, dy, stride, padding):
    """The gradients of sum(conv(x, W, b) * dy), from the same loops as conv: each output pixel
    (n, i, j) read x[n, r, c] through W[kh, kw], so it sends dy[n, i, j] back along both."""
    N, H, Wd, _ = x.shape
    KH, KW, _, _ = W.shape
    _, top = tf_pads(H, KH, stride[0], padding)
    _, left = tf_pads(Wd, KW, stride[1], padding)
    dx, dW = np.zeros(x.shape), np.zeros(W.shape)
    for n in range(N):
        for i in range(dy.shape[1]):
            for j in range(dy.shape[2]):
                for kh in range(KH):
                    for kw in range(KW):
                        r, c = i * stride[0] + kh - top, j * stride[1] + kw - left
                        if 0 <= r < H and 0 <= c < Wd:
                            dx[n, r, c] += W[kh, kw] @ dy[n, i, j]
                            dW[kh, kw] += np.outer(x[n, r, c], dy[n, i, j])
    return dx, dW, dy.sum(axis=(0, 1, 2))


def maxpool(x, pool, stride, padding):
    """y[n, i, j, c] = the largest x in the window at (i, j), and where it was (the first on ties,
    in row-major order): (y (N, OH, OW, C), route (N, OH, OW, C, 2)). Padded cells never win."""
    N, H, Wd, C = x.shape
    OH, top = tf_pads(H, pool[0], stride[0], padding)
    OW, left = tf_pads(Wd, pool[1], stride[1], padding)
    y = np.zeros((N, OH, OW, C))
    dx_route = np.zeros((N, OH, OW, C, 2), dtype=int)  # where each max came from (first on ties)
    for n in range(N):
        for i in range(OH):
            for j in range(OW):
                for c in range(C):
                    best, where = -np.inf, None
                    for kh in range(pool[0]):
                        for kw in range(pool[1]):
                            r, q = i * stride[0] + kh - top, j * stride[1] + kw - left
                            if 0 <= r < H and 0 <= q < Wd and x[n, r, q, c] > best:
                                best, where = x[n, r, q, c], (r, q)
                    y[n, i, j, c] = best
                    dx_route[n, i, j, c] = where
    return y, dx_route


def maxpool_backward(dy, route, x_shape):
    """dx: each dy[n, i, j, c] goes to the cell that was its window's maximum (route)."""
    dx = np.zeros(x_shape)
    N, OH, OW, C = dy.shape
    for n in range(N):
        for i in range(OH):
            for j in range(OW):
                for c in range(C):
                    r, q = route[n, i, j, c]
                    dx[n, r, q, c] += dy[n, i, j, c]
    return dx


def avgpool(x, pool, stride, padding):
    """y[n, i, j, c] = the mean of the window's cells that lie inside x (padding not counted)."""
    N, H, Wd, C = x.shape
    OH, top = tf_pads(H, pool[0], stride[0], padding)
    OW, left = tf_pads(Wd, pool[1], stride[1], padding)
    y = np.zeros((N, OH, OW, C))
    for n in range(N):
        for i in range(OH):
            for j in range(OW):
                cells = [x[n, r, q] for kh in range(pool[0]) for kw in range(pool[1])
                         if 0 <= (r := i * stride[0] + kh - top) < H and 0 <= (q := j * stride[1] + kw - left) < Wd]
                y[n, i, j] = np.mean(cells, axis=0)
    return y
