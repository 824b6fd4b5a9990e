"""Winograd's minimal filtering F(2x2, 3x3): a 3x3 stride-1 convolution with 2.25x fewer multiplies
(Lavin and Gray, "Fast Algorithms for Convolutional Neural Networks", CVPR 2016; arXiv 1509.09308).

In one dimension, two outputs of a 3-tap filter g over four inputs d take six multiplies:

    y0 = d0 g0 + d1 g1 + d2 g2          y1 = d1 g0 + d2 g1 + d3 g2

F(2, 3) takes four, once the filter's own combinations are made (once per filter, not per tile):

    m0 = (d0 - d2) g0                   m1 = (d1 + d2) (g0 + g1 + g2) / 2
    m3 = (d1 - d3) g2                   m2 = (d2 - d1) (g0 - g1 + g2) / 2
    y0 = m0 + m1 + m2                   y1 = m1 - m2 - m3

In matrices, y = A^T [(G g) * (B^T d)] with * elementwise (BT, G, AT below). Nested in two
dimensions, a 4 x 4 tile d of the input gives a 2 x 2 tile of the output,

    Y = A^T [ (G g G^T) * (B^T d B) ] A

with 16 multiplies instead of 36. Over C channels and F filters the elementwise product becomes,
at each of the 16 positions of the transformed tile, a sum over c: a matrix product
(tiles x C) @ (C x F). So the convolution is three steps: transform every input tile
(V = B^T d B) and every filter (U = G g G^T), 16 matrix products M = V U, and transform every
product back (Y = A^T M A). Neighbouring tiles overlap by two rows and columns (stride 2).

This file holds the readable version (NumPy, every transform an einsum over the matrices
written out) and a compiled twin (Numba for the transforms, BLAS for the 16 products); the
tests tie both to the direct convolution (reference.conv2d_forward). The Numba backend runs the
twin for the forward pass where it measured faster than im2col (numba_kernels._winograd_pays):
3 x 3 stride-1 windows of more than 32 values and an output of even size, and above all fused
with ReLU and 2 x 2 max pooling, each output tile one pooling window (conv3x3_relu_pool2).
Not everywhere: the 16 products have only C terms each, and BLAS runs such short products at
about half the speed of im2col's one product with 9 C terms, so the 2.25x fewer multiplies
save much less than 2.25x the time (docs/winograd.md, "What it buys here"; benchmarks/winograd.py).
"""
import numpy as np
from numba import njit, prange

from minicnn.kernels.derived import DerivedCache
from minicnn.kernels.reference import pad_nhwc

BT = np.array([[1, 0, -1, 0],
               [0, 1, 1, 0],
               [0, -1, 1, 0],
               [0, 1, 0, -1]], dtype=np.float64)  # input transform: B^T d B
G = np.array([[1, 0, 0],
              [0.5, 0.5, 0.5],
              [0.5, -0.5, 0.5],
              [0, 0, 1]], dtype=np.float64)  # filter transform: G g G^T
AT = np.array([[1, 1, 1, 0],
               [0, 1, -1, -1]], dtype=np.float64)  # output transform: A^T m A
GG = np.kron(G, G)  # (16, 9): row a * 4 + b, column i * 3 + j holds G[a, i] G[b, j] (filter_transform)


def _check(x, W, stride=(1, 1)):
    if W.shape[:2] != (3, 3) or tuple(stride) != (1, 1):
        raise ValueError(f"Winograd F(2x2, 3x3) computes 3 x 3 convolutions of stride 1; got a kernel of "
                         f"{W.shape[0]} x {W.shape[1]} with strides {tuple(stride)}")
    if x.ndim != 4 or x.shape[3] != W.shape[2]:
        raise ValueError(f"x must be (N, H, W, C) with C = {W.shape[2]} (the kernel's), got shape {x.shape}")


def tiling(xpad_shape):
    """For a padded input (N, Hp, Wp, C): the output size OH x OW (stride 1, 3 x 3) and the
    number of 2 x 2 output tiles TH x TW that cover it (the last ones may hang over the edge)."""
    _, Hp, Wp, _ = xpad_shape
    OH, OW = Hp - 2, Wp - 2
    if OH < 1 or OW < 1:
        raise ValueError(f"the padded input is {Hp} x {Wp}: a 3 x 3 window does not fit")
    return OH, OW, -(-OH // 2), -(-OW // 2)


def padded_shape(shape, pads):
    """The shape (N, Hp, Wp, C) of an input of shape (N, H, W, C) padded by (top, bottom, left, right)."""
    N, H, W, C = shape
    top, bottom, left, right = pads
    return N, H + top + bottom, W + left + right, C


def filter_transform(W):
    """U: (4, 4, C, F) = G g G^T for every filter g = W[:, :, c, f]; W: (3, 3, C, F). Entry (a, b)
    of G g G^T is the sum over i, j of G[a, i] G[b, j] g[i, j]: for all filters at once, one
    matrix product (16 x 9) @ (9 x C F) with GG = kron(G, G), which BLAS runs at full speed, rather
    than the einsum that writes G g G^T as it reads.)"""
    C, F = W.shape[2:]
    return (GG.astype(W.dtype) @ W.reshape(9, C * F)).reshape(4, 4, C, F)


def input_tiles(xpad, TH, TW):
    """d: (N, TH, TW, 4, 4, C), the overlapping 4 x 4 tiles at stride 2 (zeros past the edge)."""
    _, Hp, Wp, _ = xpad.shape
    xpad = np.pad(xpad, ((0, 0), (0, max(0, 2 * TH + 2 - Hp)), (0, max(0, 2 * TW + 2 - Wp)), (0, 0)))
    xpad = xpad[:, :2 * TH + 2, :2 * TW + 2]  # the rows and columns the tiles read
    d = np.lib.stride_tricks.sliding_window_view(xpad, (4, 4), axis=(1, 2))[:, ::2, ::2]  # (N, TH, TW, C, 4, 4)
    return d.transpose(0, 1, 2, 4, 5, 3)


def input_transform(d):
    """V: (N, TH, TW, 4, 4, C) = B^T d B for every tile and channel."""
    return np.einsum("ai,ntuijc,bj->ntuabc", BT, d, BT).astype(d.dtype)


def output_transform(M):
    """Y: (N, TH, TW, 2, 2, F) = A^T m A for every tile's m = M[n, t, u, :, :, f]."""
    return np.einsum("ia,ntuabf,jb->ntuijf", AT, M, AT).astype(M.dtype)


def conv3x3_forward(x, W, b, pads):
    """The same y: (N, OH, OW, F) as reference.conv2d_forward(x, W, b, (1, 1), pads)[0], by
    F(2x2, 3x3). x: (N, H, W, C); W: (3, 3, C, F); b: (F,) or None; pads (top, bottom, left, right)."""
    _check(x, W)
    xpad = pad_nhwc(x, pads)
    N = len(x)
    OH, OW, TH, TW = tiling(xpad.shape)
    U = filter_transform(W)  # (4, 4, C, F)
    V = input_transform(input_tiles(xpad, TH, TW))  # (N, TH, TW, 4, 4, C)
    M = np.einsum("ntuabc,abcf->ntuabf", V, U)  # at each of the 16 positions: (tiles x C) @ (C x F)
    Y = output_transform(M)  # (N, TH, TW, 2, 2, F)
    y = Y.transpose(0, 1, 3, 2, 4, 5).reshape(N, 2 * TH, 2 * TW, -1)[:, :OH, :OW]  # tiles side by side
    return y + b if b is not None else np.ascontiguousarray(y)


def flipped(W):
    """The filters of the input gradient: W: (KH, KW, C, F) turned by 180 degrees, C and F
    swapped: (KH, KW, F, C). Any window (the blocked loops' input gradient takes it too)."""
    return np.ascontiguousarray(W[::-1, ::-1].transpose(0, 1, 3, 2))


def input_gradient_pads(x_shape, dy_shape, pads):
    """The padding of dy under which a 3 x 3 convolution with flipped(W) gives dx: (N, H, W, C).
    An output (i, j) read xpad rows i..i+2, so dx row r gets dy rows r + top - 2 .. r + top."""
    top, _, left, _ = pads
    H, W_ = x_shape[1:3]
    OH, OW = dy_shape[1:3]
    new = (2 - top, H - OH + top, 2 - left, W_ - OW + left)
    if min(new) < 0:
        raise ValueError(f"pads {tuple(pads)} leave no input gradient by a padded convolution (x {x_shape}, dy {dy_shape})")
    return new


def conv3x3_input_gradient(dy, W, x_shape, pads):
    """dx: (N, H, W, C), the gradient of conv3x3_forward's input, as one more F(2x2, 3x3)
    convolution: dy (padded) with the flipped filters. dy: (N, OH, OW, F), W: (3, 3, C, F)."""
    return conv3x3_forward(dy, flipped(W), None, input_gradient_pads(x_shape, dy.shape, pads))


def conv3x3_relu_pool2(x, W, b, pads):
    """Conv2D (3 x 3, stride 1) -> ReLU -> MaxPooling2D(2): y: (N, OH // 2, OW // 2, F). A 2 x 2
    output tile of F(2x2, 3x3) is exactly one pooling window: the maximum of each tile, then
    the ReLU; the convolution's maps are never assembled."""
    _check(x, W)
    xpad = pad_nhwc(x, pads)
    OH, OW, _, _ = tiling(xpad.shape)
    PH, PW = OH // 2, OW // 2  # the windows that fit; a last odd row or column is read by none
    V = input_transform(input_tiles(xpad, PH, PW))
    Y = output_transform(np.einsum("ntuabc,abcf->ntuabf", V, filter_transform(W)))  # (N, PH, PW, 2, 2, F)
    if b is not None:
        Y = Y + b
    return np.maximum(Y.max(axis=(3, 4)), 0)


# -- the compiled twin: the transforms in Numba, the 16 products in BLAS ----------------------------
@njit(parallel=True, cache=True, error_model="numpy")
def _input_transform(x, top, left, TH, TW, V):
    """V: (16, N TH TW, C): row t = (n TH + ti) TW + tj holds B^T d B of tile (ti, tj) of image n
    of x: (N, H, W, C) padded by `top` rows and `left` columns of zeros, position (a, b) of the
    4 x 4 at a * 4 + b. The padding, and the rows and columns past x's edge, read as zeros:
    no padded copy of x is made."""
    N, H, W, C = x.shape
    for n in prange(N):
        d = np.empty((4, 4, C), dtype=x.dtype)
        r = np.empty((4, 4, C), dtype=x.dtype)
        for ti in range(TH):
            for tj in range(TW):
                t = (n * TH + ti) * TW + tj
                for a in range(4):
                    for b in range(4):
                        i, j = 2 * ti + a - top, 2 * tj + b - left
                        if 0 <= i < H and 0 <= j < W:
                            for c in range(C):
                                d[a, b, c] = x[n, i, j, c]
                        else:
                            for c in range(C):
                                d[a, b, c] = 0
                for b in range(4):  # r = B^T d: combine rows
                    for c in range(C):
                        r[0, b, c] = d[0, b, c] - d[2, b, c]
                        r[1, b, c] = d[1, b, c] + d[2, b, c]
                        r[2, b, c] = d[2, b, c] - d[1, b, c]
                        r[3, b, c] = d[1, b, c] - d[3, b, c]
                for a in range(4):  # V = r B: combine columns
                    for c in range(C):
                        V[4 * a + 0, t, c] = r[a, 0, c] - r[a, 2, c]
                        V[4 * a + 1, t, c] = r[a, 1, c] + r[a, 2, c]
                        V[4 * a + 2, t, c] = r[a, 2, c] - r[a, 1, c]
                        V[4 * a + 3, t, c] = r[a, 1, c] - r[a, 3, c]


@njit(cache=True, inline="always", error_model="numpy")
def _combine_rows(M, t, r):
    """r: (2, 4, F) = A^T m, the rows of tile t's m = M[:, t, :] (position a * 4 + b) combined;
    the output transforms then combine r's columns (r A)."""
    F = r.shape[2]
    for col in range(4):
        for f in range(F):
            r[0, col, f] = M[col, t, f] + M[4 + col, t, f] + M[8 + col, t, f]
            r[1, col, f] = M[4 + col, t, f] - M[8 + col, t, f] - M[12 + col, t, f]


@njit(parallel=True, cache=True, error_model="numpy")
def _output_transform(M, b, TH, TW, y):
    """y: (N, OH, OW, F) = A^T m A + b for each tile's m = M[:, t, :] (16, F); tile cells past
    the output's edge are dropped."""
    N, OH, OW, F = y.shape
    for n in prange(N):
        r = np.empty((2, 4, F), dtype=y.dtype)
        for ti in range(TH):
            for tj in range(TW):
                t = (n * TH + ti) * TW + tj
                _combine_rows(M, t, r)
                for a in range(2):  # Y = r A: combine columns
                    i = 2 * ti + a
                    if i < OH:
                        for f in range(F):
                            y[n, i, 2 * tj, f] = r[a, 0, f] + r[a, 1, f] + r[a, 2, f] + b[f]
                        if 2 * tj + 1 < OW:
                            for f in range(F):
                                y[n, i, 2 * tj + 1, f] = r[a, 1, f] - r[a, 2, f] - r[a, 3, f] + b[f]


@njit(parallel=True, cache=True, error_model="numpy")
def _output_relu_pool(M, b, y, arg):
    """y: (N, PH, PW, F) = max(0, max of A^T m A + b) over each tile's 2 x 2 outputs, the tile
    being the pooling window; arg: the cell (di * 2 + dj) of the window's first maximum.
    M: (16, N PH PW, F)."""
    N, PH, PW, F = y.shape
    for n in prange(N):
        r = np.empty((2, 4, F), dtype=y.dtype)
        for pi in range(PH):
            for pj in range(PW):
                t = (n * PH + pi) * PW + pj
                _combine_rows(M, t, r)
                out, where = y[n, pi, pj], arg[n, pi, pj]
                for f in range(F):  # the cells in the order (0, 0), (0, 1), (1, 0), (1, 1); strict >: ties keep the first
                    best, k = r[0, 0, f] + r[0, 1, f] + r[0, 2, f] + b[f], 0
                    v = r[0, 1, f] - r[0, 2, f] - r[0, 3, f] + b[f]
                    if v > best:
                        best, k = v, 1
                    v = r[1, 0, f] + r[1, 1, f] + r[1, 2, f] + b[f]
                    if v > best:
                        best, k = v, 2
                    v = r[1, 1, f] - r[1, 2, f] - r[1, 3, f] + b[f]
                    if v > best:
                        best, k = v, 3
                    out[f] = 0 if best < 0 else best  # noqa: FURB136  (ReLU after the max; NaN stays NaN)
                    where[f] = k


_TRANSFORMED = DerivedCache()  # U for the weights W last seen (at inference, the same every batch): minicnn/kernels/derived.py
TILE_ROWS = 4096  # tiles per chunk of images: V (16, tiles, C) and M (16, tiles, F) take a few MB, reused


def _by_chunks(x, pads, W, TH, TW, finish):
    """The compiled pipeline, chunk of images by chunk of images (about TILE_ROWS tiles each, so
    that a large batch never needs hundreds of MB): transform the tiles of x padded by pads (read
    as zeros), make the 16 products, then finish(M, n0, n1) turns chunk n0:n1's products into
    outputs."""
    N, C, F = x.shape[0], x.shape[3], W.shape[3]
    U = _TRANSFORMED.get(id(W), (W,), lambda: filter_transform(W)).reshape(16, C, F)
    step = max(1, TILE_ROWS // (TH * TW))
    V = np.empty((16, min(step, N) * TH * TW, C), dtype=x.dtype)
    M = np.empty((16, min(step, N) * TH * TW, F), dtype=x.dtype)
    for n0 in range(0, N, step):
        n1 = min(n0 + step, N)
        T = (n1 - n0) * TH * TW
        _input_transform(x[n0:n1], pads[0], pads[2], TH, TW, V[:, :T])
        np.matmul(V[:, :T], U, out=M[:, :T])  # 16 products (tiles x C) @ (C x F), by BLAS
        finish(M[:, :T], n0, n1)


def _bias(b, F, dtype):
    return np.zeros(F, dtype=dtype) if b is None else np.ascontiguousarray(b, dtype=dtype)


def conv3x3_forward_compiled(x, W, b, pads):
    """conv3x3_forward compiled: the input and output transforms in one parallel pass each, the
    16 products by NumPy's batched matmul (BLAS)."""
    _check(x, W)
    x = np.ascontiguousarray(x)
    OH, OW, TH, TW = tiling(padded_shape(x.shape, pads))
    y = np.empty((len(x), OH, OW, W.shape[3]), dtype=x.dtype)
    bias = _bias(b, W.shape[3], x.dtype)
    _by_chunks(x, pads, W, TH, TW, lambda M, n0, n1: _output_transform(M, bias, TH, TW, y[n0:n1]))
    return y


def conv3x3_relu_pool2_compiled(x, W, b, pads):
    """conv3x3_relu_pool2 compiled, and where each window's maximum was: (y, arg), both
    (N, PH, PW, F), arg = di * 2 + dj of the first maximum, as the fused kernels keep it for the
    backward pass. The tiles are the pooling windows: the output transform takes the maximum and
    the ReLU on the spot and writes one value per window and filter."""
    _check(x, W)
    x = np.ascontiguousarray(x)
    OH, OW, _, _ = tiling(padded_shape(x.shape, pads))
    PH, PW, F = OH // 2, OW // 2, W.shape[3]
    y = np.empty((len(x), PH, PW, F), dtype=x.dtype)
    arg = np.empty((len(x), PH, PW, F), dtype=np.int32)
    bias = _bias(b, F, x.dtype)
    _by_chunks(x, pads, W, PH, PW, lambda M, n0, n1: _output_relu_pool(M, bias, y[n0:n1], arg[n0:n1]))
    return y, arg
