"""The fast kernels: the contract of minicnn/kernels/reference.py, compiled with Numba.

Two strategies for convolution, chosen by the size of one window (KH * KW * C):
- small windows (the first layer: 3x3x1 = 9 values) loop directly, vectorised over the F
  filters, which are contiguous in channels-last memory; a 9-deep matrix product wastes BLAS.
- larger windows (3x3x64 = 576) unfold the input with a compiled im2col and hand the matrix
  products to NumPy's BLAS, which no hand loop beats.
Every prange loop writes to its own slice of the output (per image, or per chunk of images
whose partial sums are added in a fixed order afterwards): no racing +=, and the result does
not depend on how many threads run it.
"""
import numpy as np
from numba import njit, prange

from minicnn.kernels.reference import pad_nhwc, unpad_nhwc

DIRECT_MAX_WINDOW = 32  # KH * KW * C up to which direct loops beat im2col + BLAS
CHUNKS = 16  # fixed number of partial sums in weight-gradient reductions (determinism)


def _out_size(padded, k, s):
    return (padded - k) // s + 1


@njit(parallel=True, cache=True)
def im2col(xpad, KH, KW, SH, SW, OH, OW, cols):
    """xpad: (N, Hp, Wp, C) -> cols: (N*OH*OW, KH*KW*C), row (n, i, j) is window (i, j) of image n."""
    N, C = xpad.shape[0], xpad.shape[3]
    for n in prange(N):
        for i in range(OH):
            for j in range(OW):
                row = (n * OH + i) * OW + j
                for kh in range(KH):
                    for kw in range(KW):
                        base = (kh * KW + kw) * C
                        for c in range(C):
                            cols[row, base + c] = xpad[n, i * SH + kh, j * SW + kw, c]


@njit(parallel=True, cache=True)
def col2im(dcols, KH, KW, SH, SW, OH, OW, dxpad):
    """Adjoint of im2col: add dcols: (N*OH*OW, KH*KW*C) into the zeroed dxpad: (N, Hp, Wp, C)."""
    N, C = dxpad.shape[0], dxpad.shape[3]
    for n in prange(N):  # each image owns its slice of dxpad: no race
        for i in range(OH):
            for j in range(OW):
                row = (n * OH + i) * OW + j
                for kh in range(KH):
                    for kw in range(KW):
                        base = (kh * KW + kw) * C
                        for c in range(C):
                            dxpad[n, i * SH + kh, j * SW + kw, c] += dcols[row, base + c]


@njit(parallel=True, cache=True)
def conv_direct_forward(xpad, W, b, SH, SW, y):
    """y: (N, OH, OW, F) = b + sum over the window of xpad * W, looping over the window."""
    N, OH, OW, F = y.shape
    KH, KW, C = W.shape[0], W.shape[1], W.shape[2]
    for n in prange(N):
        for i in range(OH):
            for j in range(OW):
                out = y[n, i, j]
                out[:] = b
                for kh in range(KH):
                    for kw in range(KW):
                        for c in range(C):
                            v = xpad[n, i * SH + kh, j * SW + kw, c]
                            for f in range(F):
                                out[f] += v * W[kh, kw, c, f]


@njit(parallel=True, cache=True)
def conv_direct_dW(xpad, dy, SH, SW, partial):
    """partial[t]: (KH, KW, C, F) = the weight gradient of chunk t of the images."""
    N, OH, OW, F = dy.shape
    chunks, KH, KW, C = partial.shape[0], partial.shape[1], partial.shape[2], partial.shape[3]
    for t in prange(chunks):
        acc = partial[t]
        acc[...] = 0
        for n in range(t * N // chunks, (t + 1) * N // chunks):
            for i in range(OH):
                for j in range(OW):
                    g = dy[n, i, j]
                    for kh in range(KH):
                        for kw in range(KW):
                            for c in range(C):
                                v = xpad[n, i * SH + kh, j * SW + kw, c]
                                for f in range(F):
                                    acc[kh, kw, c, f] += v * g[f]


@njit(parallel=True, cache=True)
def conv_direct_dx(dy, W, SH, SW, dxpad):
    """dxpad: (N, Hp, Wp, C), zeroed, += each output's gradient spread back over its window."""
    N, OH, OW, F = dy.shape
    KH, KW, C = W.shape[0], W.shape[1], W.shape[2]
    for n in prange(N):
        for i in range(OH):
            for j in range(OW):
                g = dy[n, i, j]
                for kh in range(KH):
                    for kw in range(KW):
                        for c in range(C):
                            s = 0.0
                            for f in range(F):
                                s += g[f] * W[kh, kw, c, f]
                            dxpad[n, i * SH + kh, j * SW + kw, c] += s


def conv2d_forward(x, W, b, stride, pads):
    """Same contract as reference.conv2d_forward."""
    KH, KW, C, F = W.shape
    SH, SW = stride
    xpad = np.ascontiguousarray(pad_nhwc(x, pads))
    N, Hp, Wp, _ = xpad.shape
    OH, OW = _out_size(Hp, KH, SH), _out_size(Wp, KW, SW)
    if b is None:
        b = np.zeros(F, dtype=x.dtype)
    if KH * KW * C <= DIRECT_MAX_WINDOW:
        y = np.empty((N, OH, OW, F), dtype=x.dtype)
        conv_direct_forward(xpad, W, b, SH, SW, y)
        return y, ("direct", xpad, stride, pads)
    cols = np.empty((N * OH * OW, KH * KW * C), dtype=x.dtype)
    im2col(xpad, KH, KW, SH, SW, OH, OW, cols)
    y = cols @ W.reshape(KH * KW * C, F)
    y += b
    return y.reshape(N, OH, OW, F), ("gemm", cols, xpad.shape, stride, pads)


def conv2d_backward(dy, ctx, W, need_dx=True):
    """Same contract as reference.conv2d_backward."""
    dy = np.ascontiguousarray(dy)
    KH, KW, C, F = W.shape
    N, OH, OW, _ = dy.shape
    db = dy.reshape(-1, F).sum(axis=0)
    if ctx[0] == "direct":
        _, xpad, (SH, SW), pads = ctx
        partial = np.empty((min(CHUNKS, N), KH, KW, C, F), dtype=dy.dtype)
        conv_direct_dW(xpad, dy, SH, SW, partial)
        dW = partial.sum(axis=0)
        if not need_dx:
            return None, dW, db
        dxpad = np.zeros(xpad.shape, dtype=dy.dtype)
        conv_direct_dx(dy, W, SH, SW, dxpad)
        return unpad_nhwc(dxpad, pads), dW, db
    _, cols, xpad_shape, (SH, SW), pads = ctx
    dy2 = dy.reshape(N * OH * OW, F)
    dW = (cols.T @ dy2).reshape(W.shape)
    if not need_dx:
        return None, dW, db
    dcols = dy2 @ W.reshape(KH * KW * C, F).T
    dxpad = np.zeros(xpad_shape, dtype=dy.dtype)
    col2im(dcols, KH, KW, SH, SW, OH, OW, dxpad)
    return unpad_nhwc(dxpad, pads), dW, db


@njit(parallel=True, cache=True)
def maxpool_forward_kernel(xpad, KH, KW, SH, SW, y, arg):
    """y: (N, OH, OW, C) window maxima; arg: index kh*KW + kw of the first maximum."""
    N, OH, OW, C = y.shape
    for n in prange(N):
        for i in range(OH):
            for j in range(OW):
                for c in range(C):
                    y[n, i, j, c] = xpad[n, i * SH, j * SW, c]
                    arg[n, i, j, c] = 0
                for kh in range(KH):
                    for kw in range(KW):
                        for c in range(C):
                            v = xpad[n, i * SH + kh, j * SW + kw, c]
                            if v > y[n, i, j, c]:  # strict: ties keep the first maximum
                                y[n, i, j, c] = v
                                arg[n, i, j, c] = kh * KW + kw


@njit(parallel=True, cache=True)
def maxpool_backward_kernel(dy, arg, KW, SH, SW, dxpad):
    N, OH, OW, C = dy.shape
    for n in prange(N):  # each image owns its slice of dxpad
        for i in range(OH):
            for j in range(OW):
                for c in range(C):
                    k = arg[n, i, j, c]
                    dxpad[n, i * SH + k // KW, j * SW + k % KW, c] += dy[n, i, j, c]


def maxpool_forward(x, pool, stride, pads):
    """Same contract as reference.maxpool_forward."""
    KH, KW = pool
    SH, SW = stride
    xpad = np.ascontiguousarray(pad_nhwc(x, pads, value=-np.inf))
    N, Hp, Wp, C = xpad.shape
    OH, OW = _out_size(Hp, KH, SH), _out_size(Wp, KW, SW)
    y = np.empty((N, OH, OW, C), dtype=x.dtype)
    arg = np.empty((N, OH, OW, C), dtype=np.int32)
    maxpool_forward_kernel(xpad, KH, KW, SH, SW, y, arg)
    return y, (arg, xpad.shape, pool, stride, pads)


def maxpool_backward(dy, ctx):
    """Same contract as reference.maxpool_backward."""
    arg, xpad_shape, (KH, KW), (SH, SW), pads = ctx
    dxpad = np.zeros(xpad_shape, dtype=dy.dtype)
    maxpool_backward_kernel(np.ascontiguousarray(dy), arg, KW, SH, SW, dxpad)
    return unpad_nhwc(dxpad, pads)
