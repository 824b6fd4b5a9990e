"""The fast kernels: the contract of minicnn/kernels/reference.py, compiled with Numba.

Four strategies for convolution, chosen by the size of one window (KH * KW * C) and the number
of filters F:
- small windows (the first layer: 3x3x1 = 9 values) loop directly, vectorised over the F
  filters, which are contiguous in channels-last memory; a 9-deep matrix product wastes BLAS.
- larger windows with few filters (an autoencoder's last layer, 3x3x16 -> 1; FEW_FILTERS) loop
  along each row of the window, KW * C values contiguous in x: im2col would write a whole window
  per pixel for a matrix-vector product that reads it once.
- 16 filters over at most 64 channels at stride 1, where BLAS would get a skinny product:
  register-blocked direct loops, 4 pixels x 16 filters of sums at a time
  (minicnn/kernels/blocked.py; where it pays, blocked.pays), forward and both gradients, the
  padding read as zeros as im2col reads it.
- larger windows (3x3x64 = 576) with more filters unfold the input with a compiled im2col and
  hand the matrix products to NumPy's BLAS, which no hand loop beats; except the forward pass of
  3x3 stride-1 convolutions with an even output size, which runs Winograd's F(2x2, 3x3)
  (minicnn/kernels/winograd.py: 2.25x fewer multiplies; where it pays, _winograd_pays).
A 1x1 window takes neither: it is a matrix product on the pixels it reads, straight to BLAS.
Every prange loop writes to its own slice of the output (per image, or per chunk of images
whose partial sums are added in a fixed order afterwards): no racing +=, and the result does
not depend on how many threads run it.
"""
import os

# Numba's OpenMP workers spin after each parallel loop by default (GNU OpenMP: 300,000 spins), and
# they steal the cores from the BLAS threads of the matrix product that follows. Passive waiting
# gives the cores back, but then every parallel loop waits for its sleeping workers to wake, and a
# training step runs dozens of loops. A short spin (GOMP_SPINCOUNT=5000, which wins over the
# passive policy in GNU OpenMP) covers the gaps between loops and gives the core back soon after,
# together with OPENBLAS_THREAD_TIMEOUT=15 (minicnn/__init__.py). The figures, and the spins and
# timeouts tried: docs/benchmarks.md, "Threads".
# Set before the first parallel call loads libgomp; values the user set win.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
os.environ.setdefault("GOMP_SPINCOUNT", "5000")

import numpy as np
from numba import njit, prange

from minicnn.kernels import blocked, reference, winograd
from minicnn.kernels.reference import pad_nhwc, unpad_nhwc

DIRECT_MAX_WINDOW = 32  # KH * KW * C up to which direct loops beat im2col + BLAS
# F up to which larger windows take the loops along a window row, not im2col + BLAS: the gradients
# up to 4 filters, the forward pass (one dot product per filter, against Winograd's or BLAS's cost
# that hardly grows with F) up to 2 (docs/benchmarks.md, "What each choice in the kernels buys")
FEW_FILTERS, FEW_FILTERS_FORWARD = 4, 2
CHUNKS = 16  # fixed number of partial sums in weight-gradient reductions (determinism)
# im2col rows per chunk of images, into one reused buffer: a whole batch's columns would be
# allocated and page-faulted at every call, and a chunk of this size stays near the cache
# (the sizes tried: docs/benchmarks.md, "What each choice in the kernels buys").
CHUNK_ROWS = 8192
# conv2d_input_gradient's columns per chunk: as many images as fit in the 32 MB that malloc keeps
# for reuse (minicnn/__init__.py). It alternates one matrix product with one parallel col2im per
# chunk, and each product after a parallel loop waits for BLAS's threads: Conv2DTranspose's
# forward at batch 128 is faster in one chunk than in CHUNK_ROWS-row chunks
# (docs/benchmarks.md, "What each choice in the kernels buys").
INPUT_GRADIENT_BYTES = 32 << 20


def _out_size(padded, k, s):
    return (padded - k) // s + 1


@njit(parallel=True, cache=True, error_model="numpy")
def im2col(x, top, left, KH, KW, SH, SW, OH, OW, cols):
    """x: (N, H, W, C) -> cols: (N*OH*OW, KH*KW*C), row (n, i, j) is window (i, j) of image n with
    `top` rows and `left` columns of zeros padded before it: the padding is read as zeros where a
    window hangs over the edge, never made: no padded copy of x to write and read again for each
    convolution (docs/benchmarks.md, "What each choice in the kernels buys")."""
    N, H, W, C = x.shape
    for n in prange(N):
        for i in range(OH):
            for j in range(OW):
                row = (n * OH + i) * OW + j
                for kh in range(KH):
                    r = i * SH + kh - top
                    for kw in range(KW):
                        q = j * SW + kw - left
                        base = (kh * KW + kw) * C
                        if 0 <= r < H and 0 <= q < W:
                            for c in range(C):
                                cols[row, base + c] = x[n, r, q, c]
                        else:
                            for c in range(C):
                                cols[row, base + c] = 0


@njit(parallel=True, cache=True, error_model="numpy")
def col2im(dcols, top, left, KH, KW, SH, SW, OH, OW, dx):
    """Adjoint of im2col: add dcols: (N*OH*OW, KH*KW*C) into the zeroed dx: (N, H, W, C); what
    fell on the padding is dropped (its gradient is no input's)."""
    N, H, W, C = dx.shape
    for n in prange(N):  # each image owns its slice of dx: no race
        for i in range(OH):
            for j in range(OW):
                row = (n * OH + i) * OW + j
                for kh in range(KH):
                    r = i * SH + kh - top
                    if r < 0 or r >= H:
                        continue
                    for kw in range(KW):
                        q = j * SW + kw - left
                        if 0 <= q < W:
                            base = (kh * KW + kw) * C
                            for c in range(C):
                                dx[n, r, q, c] += dcols[row, base + c]


# -- the loops over one row of outputs and one window, shared by the direct and the fused kernels ---
# Each `out[f] += ...` reads and writes the pixel's F values in memory: Numba cannot prove that the
# output and the weights never overlap, so LLVM keeps nothing in registers from one statement to
# the next. The fewer statements per pixel, the fewer trips: a 3 x 3 window adds its nine taps in
# one statement, the weight gradient four pixels per statement. Other windows go row by row and
# tap by tap, one vectorised multiply-add along the row per tap, rather than one tap per statement
# pixel by pixel (both choices timed in docs/benchmarks.md, "What each choice in the kernels buys").
@njit(cache=True, inline="always", error_model="numpy")  # inlined into the caller: as fast as writing the loops there
def _row_forward(xpad, n, i0, SW, W, out):
    """out: (OW, F) += the output row whose windows start at row i0 of xpad[n] (no bias)."""
    KH, KW, C, F = W.shape
    OW = out.shape[0]
    if KH == 3 and KW == 3:  # the common window: its nine taps in one multiply-add chain per pixel
        for c in range(C):
            w0, w1, w2 = W[0, 0, c], W[0, 1, c], W[0, 2, c]
            w3, w4, w5 = W[1, 0, c], W[1, 1, c], W[1, 2, c]
            w6, w7, w8 = W[2, 0, c], W[2, 1, c], W[2, 2, c]
            r0, r1, r2 = xpad[n, i0, :, c], xpad[n, i0 + 1, :, c], xpad[n, i0 + 2, :, c]
            for j in range(OW):
                q = j * SW
                x0, x1, x2, x3, x4 = r0[q], r0[q + 1], r0[q + 2], r1[q], r1[q + 1]
                x5, x6, x7, x8 = r1[q + 2], r2[q], r2[q + 1], r2[q + 2]
                o = out[j]
                for f in range(F):
                    o[f] += (x0 * w0[f] + x1 * w1[f] + x2 * w2[f] + x3 * w3[f] + x4 * w4[f]
                             + x5 * w5[f] + x6 * w6[f] + x7 * w7[f] + x8 * w8[f])
        return
    for kh in range(KH):
        for kw in range(KW):
            for c in range(C):
                w = W[kh, kw, c]
                for j in range(OW):
                    v = xpad[n, i0 + kh, j * SW + kw, c]
                    o = out[j]
                    for f in range(F):
                        o[f] += v * w[f]


@njit(cache=True, inline="always", error_model="numpy")  # inlined into the caller: as fast as writing the loops there
def _row_dW(xpad, n, i0, SW, g, acc):
    """acc: (KH, KW, C, F) += sum over the row's pixels j of window (i0, j * SW) times g[j]: (F,),
    four pixels per statement (then the one to three left over)."""
    KH, KW, C, F = acc.shape
    OW = g.shape[0]
    J4 = OW - OW % 4
    for kh in range(KH):
        for kw in range(KW):
            for c in range(C):
                a = acc[kh, kw, c]
                xr = xpad[n, i0 + kh, :, c]
                for j in range(0, J4, 4):
                    q = j * SW + kw
                    v0, v1, v2, v3 = xr[q], xr[q + SW], xr[q + 2 * SW], xr[q + 3 * SW]
                    g0, g1, g2, g3 = g[j], g[j + 1], g[j + 2], g[j + 3]
                    for f in range(F):
                        a[f] += v0 * g0[f] + v1 * g1[f] + v2 * g2[f] + v3 * g3[f]
                for j in range(J4, OW):
                    v = xr[j * SW + kw]
                    gj = g[j]
                    for f in range(F):
                        a[f] += v * gj[f]


@njit(cache=True, inline="always", error_model="numpy")  # inlined into the caller: as fast as writing the loops there
def _window_dx(g, W, dxpad, n, i0, j0):
    """dxpad's window at (i0, j0) += W applied to the output's gradient g: (F,)."""
    KH, KW, C, F = W.shape
    for kh in range(KH):
        for kw in range(KW):
            for c in range(C):
                s = 0.0
                for f in range(F):
                    s += g[f] * W[kh, kw, c, f]
                dxpad[n, i0 + kh, j0 + kw, c] += s


@njit(parallel=True, cache=True, error_model="numpy")
def conv_direct_forward(xpad, W, b, SH, SW, y):
    """y: (N, OH, OW, F) = b + sum over the window of xpad * W, one output row at a time."""
    N, OH, OW, _ = y.shape
    for n in prange(N):
        for i in range(OH):
            out = y[n, i]
            for j in range(OW):
                out[j, :] = b
            _row_forward(xpad, n, i * SH, SW, W, out)


@njit(parallel=True, cache=True, error_model="numpy")
def conv_direct_dW(xpad, dy, SH, SW, partial, partial_db):
    """partial[t]: (KH, KW, C, F) and partial_db[t]: (F,), the weight and bias gradients of
    chunk t of the images; dy is read once for both."""
    N, OH, OW, F = dy.shape
    chunks = partial.shape[0]
    for t in prange(chunks):
        acc, acc_b = partial[t], partial_db[t]
        acc[...] = 0
        acc_b[:] = 0
        for n in range(t * N // chunks, (t + 1) * N // chunks):
            for i in range(OH):
                g = dy[n, i]
                for j in range(OW):
                    for f in range(F):
                        acc_b[f] += g[j, f]
                _row_dW(xpad, n, i * SH, SW, g, acc)


@njit(parallel=True, cache=True, error_model="numpy")
def conv_direct_dx(dy, W, SH, SW, dxpad):
    """dxpad: (N, Hp, Wp, C), zeroed, += each output's gradient spread back over its window."""
    N, OH, OW, _ = dy.shape
    for n in prange(N):
        for i in range(OH):
            for j in range(OW):
                _window_dx(dy[n, i, j], W, dxpad, n, i * SH, j * SW)


# -- few filters and a larger window: vectorised along a row of the window ---------------------------
# With one to four filters there is nothing to vectorise along F, and im2col + BLAS is a matrix-vector
# product that writes KH KW C values per pixel to read them once: memory traffic, not arithmetic. In
# channels-last memory a row of a window, KW * C values, is contiguous in x, and so is the matching
# row of the filter once rearranged to (F, KH, KW * C): the forward is KH dot products per pixel, the
# gradients KH multiply-adds along such rows. x is never padded: a window row that hangs over the
# left or right edge is cut to its part inside x, a row above or below is skipped.
@njit(cache=True, inline="always", error_model="numpy")  # inlined into the caller: as fast as writing the loops there
def _row_span(j, SW, left, KW, Wd, C):
    """(start in the flattened row of x, lo, hi): the part [lo, hi) of a window row of length
    KW * C that lies inside x, for the window of output column j."""
    q0 = j * SW - left
    lo, hi = max(0, -q0) * C, min(KW, Wd - q0) * C
    return q0 * C + lo, lo, hi


# fastmath's reassoc (and contract, for fused multiply-adds) lets LLVM split each dot product into
# vector lanes, twice as fast as eight hand-written lanes; no nnan or ninf, so NaN and inf still
# propagate. The order of the sum depends on the code compiled for the CPU, never on the threads:
# each output is one thread's dot product (docs/benchmarks.md, "What each choice in the kernels buys").
@njit(parallel=True, cache=True, error_model="numpy", fastmath={"reassoc", "contract"})
def conv_few_forward(x, Wr, b, top, left, KW, SH, SW, y):
    """y: (N, OH, OW, F) = b + the KH dot products of each window's rows in x: (N, H, W, C) with
    the filters' rows Wr: (F, KH, KW * C); OH and OW are y's (a fused pooling may crop them)."""
    N, H, Wd, C = x.shape
    _, OH, OW, F = y.shape
    KH = Wr.shape[1]
    for n in prange(N):
        xn = x[n].reshape(H, Wd * C)
        for i in range(OH):
            for j in range(OW):
                start, lo, hi = _row_span(j, SW, left, KW, Wd, C)
                for f in range(F):
                    s = x.dtype.type(0)
                    for kh in range(KH):
                        r = i * SH + kh - top
                        if 0 <= r < H:
                            xr, wr = xn[r, start:start + hi - lo], Wr[f, kh, lo:hi]
                            for k in range(hi - lo):
                                s += xr[k] * wr[k]
                    y[n, i, j, f] = b[f] + s


@njit(parallel=True, cache=True, error_model="numpy")
def conv_few_backward(x, Wr, dy, top, left, KW, SH, SW, partial, partial_db, dx, need_dx):
    """partial[t]: (F, KH, KW * C) and partial_db[t]: (F,), the weight and bias gradients of chunk t
    of the images; dx: (N, H, W, C), zeroed, += each pixel's dy through Wr (when need_dx). One pass
    over dy and x for both: the images of a chunk own their slices of dx."""
    N, H, Wd, C = x.shape
    _, OH, OW, F = dy.shape
    KH = Wr.shape[1]
    chunks = partial.shape[0]
    for t in prange(chunks):
        acc, acc_b = partial[t], partial_db[t]
        acc[...] = 0
        acc_b[:] = 0
        for n in range(t * N // chunks, (t + 1) * N // chunks):
            xn = x[n].reshape(H, Wd * C)
            dxn = dx[n if need_dx else 0].reshape(dx.shape[1], dx.shape[2] * dx.shape[3])  # need_dx: (1, 1, 1, 1)
            for i in range(OH):
                for j in range(OW):
                    g = dy[n, i, j]
                    for f in range(F):
                        acc_b[f] += g[f]
                    start, lo, hi = _row_span(j, SW, left, KW, Wd, C)
                    for kh in range(KH):
                        r = i * SH + kh - top
                        if r < 0 or r >= H:
                            continue
                        xr = xn[r, start:start + hi - lo]
                        for f in range(F):
                            a, gf = acc[f, kh, lo:hi], g[f]
                            for k in range(hi - lo):
                                a[k] += gf * xr[k]
                        if need_dx:
                            d = dxn[r, start:start + hi - lo]
                            for f in range(F):
                                wr, gf = Wr[f, kh, lo:hi], g[f]
                                for k in range(hi - lo):
                                    d[k] += gf * wr[k]


def _filter_rows(W):
    """W: (KH, KW, C, F) -> (F, KH, KW * C), each filter's rows contiguous."""
    KH, KW, C, F = W.shape
    return np.ascontiguousarray(W.transpose(3, 0, 1, 2)).reshape(F, KH, KW * C)


def _few_forward(x, pads, W, b, stride, OH, OW):
    """y: (N, OH, OW, F) of the few-filters loops; x: (N, H, W, C) contiguous, unpadded."""
    y = np.empty((len(x), OH, OW, W.shape[3]), dtype=x.dtype)
    conv_few_forward(x, _filter_rows(W), b, pads[0], pads[2], W.shape[1], stride[0], stride[1], y)
    return y


def _few_backward(dy, x, pads, W, stride, need_dx):
    """The few-filters loops' gradients: (dx or None, dW, db); partial sums added in a fixed order."""
    KH, KW, C, F = W.shape
    chunks = min(CHUNKS, len(dy))
    partial = np.empty((chunks, F, KH, KW * C), dtype=dy.dtype)
    partial_db = np.empty((chunks, F), dtype=dy.dtype)
    dx = np.zeros(x.shape if need_dx else (1, 1, 1, 1), dtype=dy.dtype)
    conv_few_backward(x, _filter_rows(W), dy, pads[0], pads[2], KW, stride[0], stride[1], partial, partial_db, dx,
                      need_dx)
    dW = partial.sum(axis=0).reshape(F, KH, KW, C).transpose(1, 2, 3, 0)
    return (dx if need_dx else None), np.ascontiguousarray(dW), partial_db.sum(axis=0)


def conv2d_forward(x, W, b, stride, pads):
    """Same contract as reference.conv2d_forward."""
    KH, KW, C, F = W.shape
    SH, SW = stride
    top, bottom, left, right = pads
    N, H, Wd, _ = x.shape
    OH, OW = _out_size(H + top + bottom, KH, SH), _out_size(Wd + left + right, KW, SW)
    if b is None:
        b = np.zeros(F, dtype=x.dtype)
    if (KH, KW) == (1, 1) and not any(pads):  # a 1x1 window pads nothing, even with "same"
        return _conv1x1_forward(x, W, b, stride)
    if KH * KW * C <= DIRECT_MAX_WINDOW:
        xpad = np.ascontiguousarray(pad_nhwc(x, pads))
        y = np.empty((N, OH, OW, F), dtype=x.dtype)
        conv_direct_forward(xpad, W, b, SH, SW, y)
        return y, ("direct", xpad, stride, pads)
    x = np.ascontiguousarray(x)  # the larger windows read the padding as zeros, never padded
    if blocked.pays(C, F, SH, SW):
        return blocked.conv_forward(x, W, b, stride, pads), ("blocked", x, stride, pads)
    if F <= FEW_FILTERS_FORWARD:
        return _few_forward(x, pads, W, b, stride, OH, OW), ("few", x, stride, pads)
    if _winograd_pays(W, stride, OH, OW):
        return winograd.conv3x3_forward_compiled(x, W, b, pads), ("gemm", x, stride, pads)
    y = _gemm_forward(x, pads, W, stride, OH, OW)
    y += b
    return y.reshape(N, OH, OW, F), ("gemm", x, stride, pads)


def conv2d_backward(dy, ctx, W, need_dx=True):
    """Same contract as reference.conv2d_backward."""
    dy = np.ascontiguousarray(dy)
    KH, KW, C, F = W.shape
    N = len(dy)
    if ctx[0] == "1x1":
        return _conv1x1_backward(dy, ctx, W, need_dx)
    if ctx[0] == "direct":
        _, xpad, (SH, SW), pads = ctx
        chunks = min(CHUNKS, N)
        partial = np.empty((chunks, KH, KW, C, F), dtype=dy.dtype)
        partial_db = np.empty((chunks, F), dtype=dy.dtype)
        conv_direct_dW(xpad, dy, SH, SW, partial, partial_db)
        dW, db = partial.sum(axis=0), partial_db.sum(axis=0)
        if not need_dx:
            return None, dW, db
        dxpad = np.zeros(xpad.shape, dtype=dy.dtype)
        conv_direct_dx(dy, W, SH, SW, dxpad)
        return unpad_nhwc(dxpad, pads), dW, db
    _, x, stride, pads = ctx  # the same x, unpadded, whichever way the forward pass went
    if ctx[0] == "blocked":
        return _blocked_backward(dy, x, pads, W, stride, need_dx)
    if F <= FEW_FILTERS:
        return _few_backward(dy, x, pads, W, stride, need_dx)
    return _gemm_backward(dy, x, pads, W, stride, need_dx)


def _conv1x1_rows(C, F):
    """Rows (pixels) per matrix product of a 1x1 convolution: about 2**18 multiply-adds, which
    OpenBLAS runs on one thread. Its threaded products of these skinny shapes stall for
    milliseconds when Numba's workers have just run (docs/benchmarks.md, "What each choice in the
    kernels buys"); small ones don't, and each chunk stays in cache for the bias and the sums."""
    return max(256, 2 ** 18 // (C * F))


def _conv1x1_forward(x, W, b, stride):
    """A 1x1 convolution is a matrix product on the pixels it reads (every SH-th row, every SW-th
    column): y = xs @ W + b, xs: (N OH OW, C), W: (C, F). BLAS, with no window to unfold."""
    SH, SW = stride
    xs = np.ascontiguousarray(x[:, ::SH, ::SW])  # (N, OH, OW, C): a copy only when strided
    N, OH, OW, C = xs.shape
    Wm = W.reshape(C, -1)
    xs2, y = xs.reshape(-1, C), np.empty((N * OH * OW, Wm.shape[1]), dtype=x.dtype)
    step = _conv1x1_rows(*Wm.shape)
    for r in range(0, len(y), step):
        np.matmul(xs2[r:r + step], Wm, out=y[r:r + step])
        y[r:r + step] += b
    return y.reshape(N, OH, OW, -1), ("1x1", xs, x.shape, stride)


def _conv1x1_backward(dy, ctx, W, need_dx):
    """dW = xs^T dy, db = sum dy, and dx = dy W^T on the pixels the forward read, 0 on the others
    (a stride-2 projection reads a quarter of them): the gradients of _conv1x1_forward, chunk by
    chunk, the sums added in a fixed order (they do not depend on the threads)."""
    _, xs, x_shape, (SH, SW) = ctx
    C, F = W.shape[2], W.shape[3]
    Wt = W.reshape(C, F).T
    dy2, xs2 = dy.reshape(-1, F), xs.reshape(-1, C)
    dW, db = np.zeros((C, F), dtype=dy.dtype), np.zeros(F, dtype=dy.dtype)
    dxs = np.empty(xs.shape, dtype=dy.dtype) if need_dx else None
    step = _conv1x1_rows(C, F)
    for r in range(0, len(dy2), step):
        g = dy2[r:r + step]
        dW += xs2[r:r + step].T @ g
        db += g.sum(axis=0)
        if need_dx:
            np.matmul(g, Wt, out=dxs.reshape(-1, C)[r:r + step])
    if not need_dx or (SH, SW) == (1, 1):
        return dxs, dW.reshape(W.shape), db
    dx = np.zeros(x_shape, dtype=dy.dtype)
    dx[:, ::SH, ::SW] = dxs
    return dx, dW.reshape(W.shape), db


def _blocked_backward(dy, x, pads, W, stride, need_dx):
    """The gradients of blocked.conv_forward: dW by the blocked loops; dx, for stride 1 with
    whole blocks of channels, as one more blocked convolution (of dy, padded by dpads read as
    zeros, with W flipped: the input gradient of a convolution is a convolution), else by col2im."""
    KH, KW, C, F = W.shape
    N, H, Wd, _ = x.shape
    _, OH, OW, _ = dy.shape
    dW = blocked.weight_gradient(x, dy, W.shape, stride, pads, min(CHUNKS, N))
    db = np.ones(N * OH * OW, dtype=dy.dtype) @ dy.reshape(-1, F)  # as in _gemm_backward
    if not need_dx:
        return None, dW, db
    top, bottom, left, right = pads
    if tuple(stride) == (1, 1) and blocked.pays(F, C, 1, 1):
        dpads = (KH - 1 - top, H - OH + top, KW - 1 - left, Wd - OW + left)  # negative: dy cropped
        dx = blocked.conv_forward(dy, winograd.flipped(W), np.zeros(C, dy.dtype), (1, 1), dpads)
    else:
        dx = conv2d_input_gradient(dy, W, (N, H + top + bottom, Wd + left + right, C), stride, pads)
    return dx, dW, db


def conv2d_input_gradient(dy, W, xpad_shape, stride, pads):
    """Same contract as reference.conv2d_input_gradient: col2im (compiled) of dy @ W^T (BLAS), in
    chunks of images of at most INPUT_GRADIENT_BYTES of columns."""
    KH, KW, C, F = W.shape
    N, OH, OW, _ = dy.shape
    top, bottom, left, right = pads
    dy2 = np.ascontiguousarray(dy).reshape(N * OH * OW, F)
    Wt = W.reshape(KH * KW * C, F).T
    dx = np.zeros((N, xpad_shape[1] - top - bottom, xpad_shape[2] - left - right, C), dtype=dy.dtype)
    step = max(1, INPUT_GRADIENT_BYTES // (OH * OW * KH * KW * C * dy.itemsize))
    for n0 in range(0, N, step):
        n1 = min(n0 + step, N)
        dcols = dy2[n0 * OH * OW:n1 * OH * OW] @ Wt
        col2im(dcols, top, left, KH, KW, stride[0], stride[1], OH, OW, dx[n0:n1])
    return dx


def _winograd_pays(W, stride, OH, OW):
    """True where the forward pass takes Winograd F(2x2, 3x3) (minicnn/kernels/winograd.py) instead
    of im2col + sgemm: 3 x 3 windows of stride 1, too wide for the direct loops, and an output of
    even height and width, which the 2 x 2 tiles cover exactly: there it is faster, with AVX-512
    and held to AVX2, while on an odd output the tiles hanging over the edge (16 for 12.25) eat the
    gain. The backward passes stay on im2col. Figures: docs/winograd.md, "What it buys here", and
    docs/benchmarks.md, "Tried and left out"."""
    KH, KW, C, _ = W.shape
    return (KH, KW) == (3, 3) and tuple(stride) == (1, 1) and KH * KW * C > DIRECT_MAX_WINDOW \
        and OH % 2 == 0 and OW % 2 == 0


def _chunks(N, OH, OW):
    """Image ranges of about CHUNK_ROWS im2col rows each: one chunk's cols (a few MB) stays in
    cache between im2col and the matrix product, and no (N OH OW, KH KW C) array, tens of MB
    freshly allocated (and page-faulted) at every call, is ever made. The ranges depend on the
    shapes only, never on the thread count."""
    step = max(1, CHUNK_ROWS // (OH * OW))
    return [(n, min(n + step, N)) for n in range(0, N, step)]


def _gemm_forward(x, pads, W, stride, OH, OW):
    """im2col and the matrix product, chunk by chunk: y: (N OH OW, F) = cols @ W, without bias;
    x: (N, H, W, C) unpadded, pads: (top, bottom, left, right) read as zeros."""
    KH, KW, C, F = W.shape
    N = x.shape[0]
    Wm = W.reshape(KH * KW * C, F)
    y = np.empty((N * OH * OW, F), dtype=x.dtype)
    chunks = _chunks(N, OH, OW)
    cols = np.empty((chunks[0][1] * OH * OW, KH * KW * C), dtype=x.dtype)  # the first chunk is the largest
    for n0, n1 in chunks:
        rows = (n1 - n0) * OH * OW
        im2col(x[n0:n1], pads[0], pads[2], KH, KW, stride[0], stride[1], OH, OW, cols[:rows])
        np.matmul(cols[:rows], Wm, out=y[n0 * OH * OW:n1 * OH * OW])
    return y


def _gemm_backward(dy, x, pads, W, stride, need_dx):
    """The im2col path's gradients, chunk by chunk (the chunk's cols made again from x, unpadded):
    dW = sum of cols^T dy, db = sum dy, dx = col2im(dy W^T)."""
    KH, KW, C, F = W.shape
    N, OH, OW, _ = dy.shape
    dy2 = dy.reshape(N * OH * OW, F)
    # the sum over the rows as a product with ones: BLAS spreads it over the cores and the vector
    # units, where dy2.sum(axis=0) walks the rows (docs/benchmarks.md, "What each choice...")
    db = np.ones(len(dy2), dtype=dy.dtype) @ dy2
    Wm = W.reshape(KH * KW * C, F)
    dW = np.zeros((KH * KW * C, F), dtype=dy.dtype)
    chunks = _chunks(N, OH, OW)
    cols = np.empty((chunks[0][1] * OH * OW, KH * KW * C), dtype=dy.dtype)
    dx = np.zeros(x.shape, dtype=dy.dtype) if need_dx else None
    top, left = pads[0], pads[2]
    for n0, n1 in chunks:  # in a fixed order: the sum does not depend on the threads
        rows = slice(0, (n1 - n0) * OH * OW)
        g = dy2[n0 * OH * OW:n1 * OH * OW]
        im2col(x[n0:n1], top, left, KH, KW, stride[0], stride[1], OH, OW, cols[rows])
        dW += cols[rows].T @ g
        if need_dx:
            np.matmul(g, Wm.T, out=cols[rows])  # dcols, in the same buffer
            col2im(cols[rows], top, left, KH, KW, stride[0], stride[1], OH, OW, dx[n0:n1])
    return dx, dW.reshape(W.shape), db


@njit(parallel=True, cache=True, error_model="numpy")
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


@njit(parallel=True, cache=True, error_model="numpy")
def maxpool_backward_kernel(dy, arg, KW, SH, SW, dxpad):
    """Overlapping windows: dxpad (zeroed) += each dy at its window's maximum."""
    N, OH, OW, C = dy.shape
    for n in prange(N):  # each image owns its slice of dxpad
        for i in range(OH):
            for j in range(OW):
                for c in range(C):
                    k = arg[n, i, j, c]
                    dxpad[n, i * SH + k // KW, j * SW + k % KW, c] += dy[n, i, j, c]


@njit(parallel=True, cache=True, error_model="numpy")
def maxpool_backward_tiled(dy, arg, KH, KW, dxpad):
    """Non-overlapping windows (strides == pool): every cell of dxpad is written exactly once,
    dy at the window's maximum and 0 elsewhere, so dxpad needs no zeroing pass first."""
    N, OH, OW, C = dy.shape
    Hp, Wp = dxpad.shape[1], dxpad.shape[2]
    for n in prange(N):
        for r in range(OH * KH, Hp):  # rows and columns that no window covers
            dxpad[n, r] = 0
        for q in range(OW * KW, Wp):
            dxpad[n, :, q] = 0
        for i in range(OH):
            for j in range(OW):
                for kh in range(KH):
                    for kw in range(KW):
                        k = kh * KW + kw
                        for c in range(C):
                            dxpad[n, i * KH + kh, j * KW + kw, c] = dy[n, i, j, c] if arg[n, i, j, c] == k else 0


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
    dy = np.ascontiguousarray(dy)
    if (SH, SW) == (KH, KW):
        dxpad = np.empty(xpad_shape, dtype=dy.dtype)
        maxpool_backward_tiled(dy, arg, KH, KW, dxpad)
    else:
        dxpad = np.zeros(xpad_shape, dtype=dy.dtype)
        maxpool_backward_kernel(dy, arg, KW, SH, SW, dxpad)
    return unpad_nhwc(dxpad, pads)


@njit(parallel=True, cache=True, error_model="numpy")
def _relu_forward(x, y):
    for i in prange(x.size):
        y[i] = 0 if x[i] <= 0 else x[i]  # noqa: FURB136 (max(0, x) would turn NaN into 0; np.maximum keeps it)


@njit(parallel=True, cache=True, error_model="numpy")
def _relu_backward(y, dy, dx):
    for i in prange(y.size):
        dx[i] = dy[i] if y[i] > 0 else dy[i] * 0  # as dy * (y > 0): a NaN or inf dy stays visible


def relu_forward(x):
    """Same contract as reference.relu_forward, in one parallel pass."""
    x = np.ascontiguousarray(x)
    y = np.empty_like(x)
    _relu_forward(x.reshape(-1), y.reshape(-1))
    return y


def relu_backward(y, dy):
    """Same contract as reference.relu_backward: one pass instead of a mask and a product."""
    dy = np.ascontiguousarray(dy, dtype=y.dtype)
    dx = np.empty_like(dy)
    _relu_backward(np.ascontiguousarray(y).reshape(-1), dy.reshape(-1), dx.reshape(-1))
    return dx


# -- Conv2D -> ReLU -> MaxPooling2D as one step (minicnn/fusion.py) ----------------------------
@njit(parallel=True, cache=True, error_model="numpy")
def _conv_relu_pool_forward(xpad, W, b, P, y, arg):
    """y: (N, PH, PW, F) = max(0, max of the conv over each P x P window), arg: the index
    (di * P + dj) of the window's first maximum. The conv maps are never stored: the P conv rows
    that one row of windows reads are made in a small buffer, then pooled."""
    N, PH, PW, F = y.shape
    for n in prange(N):
        rows = np.empty((P, PW * P, F), dtype=y.dtype)  # P conv rows, all F filters
        for pi in range(PH):
            for r in range(P):
                for j in range(PW * P):
                    rows[r, j, :] = b
                _row_forward(xpad, n, pi * P + r, 1, W, rows[r])
            for pj in range(PW):
                out, best = y[n, pi, pj], arg[n, pi, pj]
                for k in range(P * P):
                    conv = rows[k // P, pj * P + k % P]
                    for f in range(F):
                        if k == 0 or conv[f] > out[f]:  # strict: ties keep the first maximum
                            out[f] = conv[f]
                            best[f] = k
                for f in range(F):
                    if out[f] < 0:  # noqa: PLR1730  (ReLU after the max, relu(max) == max(relu); NaN stays NaN)
                        out[f] = 0


@njit(parallel=True, cache=True, error_model="numpy")
def _conv_relu_pool_backward(xpad, W, dy, y, arg, P, partial, partial_db, dxpad, need_dx):
    """The gradient at conv output (i, j) = (pi*P + di, pj*P + dj) is dy[n, pi, pj] where that
    position was its window's maximum (arg) and the ReLU let it through (y > 0), else 0: it is
    made on the fly, the P conv rows under one row of windows at a time, instead of being written
    out as a map. partial[t]: (KH, KW, C, F) and partial_db[t]: (F,), the sums over chunk t of
    the images."""
    N, PH, PW, F = dy.shape
    chunks = partial.shape[0]
    for t in prange(chunks):
        acc, acc_b = partial[t], partial_db[t]
        acc[...] = 0
        acc_b[:] = 0
        g = np.empty((P, PW * P, F), dtype=dy.dtype)
        for n in range(t * N // chunks, (t + 1) * N // chunks):
            for pi in range(PH):
                for pj in range(PW):
                    for f in range(F):
                        acc_b[f] += dy[n, pi, pj, f] if y[n, pi, pj, f] > 0 else 0
                    for k in range(P * P):
                        cell = g[k // P, pj * P + k % P]
                        for f in range(F):
                            cell[f] = dy[n, pi, pj, f] if arg[n, pi, pj, f] == k and y[n, pi, pj, f] > 0 else 0
                for r in range(P):
                    _row_dW(xpad, n, pi * P + r, 1, g[r], acc)
                    if need_dx:
                        for j in range(PW * P):
                            _window_dx(g[r, j], W, dxpad, n, pi * P + r, j)


@njit(parallel=True, cache=True, error_model="numpy")
def _relu_pool_forward(z, P, y, arg):
    """y: (N, PH, PW, F) = max(0, max of z over each P x P window); arg: the first maximum."""
    N, PH, PW, F = y.shape
    for n in prange(N):
        for pi in range(PH):
            for pj in range(PW):
                out, best = y[n, pi, pj], arg[n, pi, pj]
                for k in range(P * P):
                    row = z[n, pi * P + k // P, pj * P + k % P]
                    for f in range(F):
                        if k == 0 or row[f] > out[f]:  # strict: ties keep the first maximum
                            out[f] = row[f]
                            best[f] = k
                for f in range(F):
                    if out[f] < 0:  # noqa: PLR1730  (as above: NaN stays NaN)
                        out[f] = 0


@njit(parallel=True, cache=True, error_model="numpy")
def _relu_pool_backward(dy, y, arg, P, dz):
    """dz: (N, PH*P, PW*P, F), every cell written: dy at each window's maximum where y > 0, else 0."""
    N, PH, PW, F = dy.shape
    for n in prange(N):
        for pi in range(PH):
            for pj in range(PW):
                for k in range(P * P):
                    row = dz[n, pi * P + k // P, pj * P + k % P]
                    for f in range(F):
                        row[f] = dy[n, pi, pj, f] if arg[n, pi, pj, f] == k and y[n, pi, pj, f] > 0 else 0


def conv_relu_pool_forward(x, W, b, pool, pads):
    """Same contract as reference.conv_relu_pool_forward.

    Only the conv outputs that some pooling window reads are computed (for the tutorial's
    second block, 10 x 10 of the 11 x 11: the last row and column fall outside every window).
    Small windows: one compiled pass, conv maps never stored. Larger ones: im2col over those
    positions and BLAS (or the few-filters loops, or Winograd), then ReLU and pooling in one pass
    over the conv output.
    """
    KH, KW, C, F = W.shape
    top, bottom, left, right = pads
    N, H, Wd, _ = x.shape
    PH, PW = (H + top + bottom - KH + 1) // pool, (Wd + left + right - KW + 1) // pool
    if b is None:
        b = np.zeros(F, dtype=x.dtype)
    OH, OW = PH * pool, PW * pool
    if KH * KW * C <= DIRECT_MAX_WINDOW:
        xpad = np.ascontiguousarray(pad_nhwc(x, pads))
        y, arg = np.empty((N, PH, PW, F), dtype=x.dtype), np.empty((N, PH, PW, F), dtype=np.int32)
        _conv_relu_pool_forward(xpad, W, b, pool, y, arg)
        return y, ("direct", xpad, y, arg, pool, pads)
    x = np.ascontiguousarray(x)  # the larger windows read the padding as zeros, never padded
    if F <= FEW_FILTERS_FORWARD:  # as conv2d_forward chooses
        kind, z = "few", _few_forward(x, pads, W, b, (1, 1), OH, OW)
    elif pool == 2 and _winograd_pays(W, (1, 1), OH, OW):
        y, arg = winograd.conv3x3_relu_pool2_compiled(x, W, b, pads)  # each 2 x 2 tile one window
        return y, ("gemm", x, y, arg, pool, pads)
    else:
        kind, z = "gemm", _gemm_forward(x, pads, W, (1, 1), OH, OW)
        z += b
    y, arg = np.empty((N, PH, PW, F), dtype=x.dtype), np.empty((N, PH, PW, F), dtype=np.int32)
    _relu_pool_forward(z.reshape(N, OH, OW, F), pool, y, arg)
    return y, (kind, x, y, arg, pool, pads)


def conv_relu_pool_backward(dy, ctx, W, need_dx=True):
    """Same contract as reference.conv_relu_pool_backward."""
    kind, saved, y, arg, pool, pads = ctx
    dy = np.ascontiguousarray(dy)
    KH, KW, C, F = W.shape
    if kind == "direct":
        xpad = saved
        chunks = min(CHUNKS, len(dy))
        partial = np.empty((chunks, KH, KW, C, F), dtype=dy.dtype)
        partial_db = np.empty((chunks, F), dtype=dy.dtype)
        dxpad = np.zeros(xpad.shape if need_dx else (1, 1, 1, 1), dtype=dy.dtype)
        _conv_relu_pool_backward(xpad, W, dy, y, arg, pool, partial, partial_db, dxpad, need_dx)
        return (unpad_nhwc(dxpad, pads) if need_dx else None), partial.sum(axis=0), partial_db.sum(axis=0)
    N, PH, PW, _ = dy.shape
    OH, OW = PH * pool, PW * pool
    dz = np.empty((N, OH, OW, F), dtype=dy.dtype)
    _relu_pool_backward(dy, y, arg, pool, dz)
    if F <= FEW_FILTERS:  # as conv2d_backward chooses
        return _few_backward(dz, saved, pads, W, (1, 1), need_dx)
    return _gemm_backward(dz, saved, pads, W, (1, 1), need_dx)


# -- BatchNormalization: statistics, forward and backward, one compiled pass each -------------------
@njit(parallel=True, cache=True, error_model="numpy")
def _bn_sums(a, b, partial_a, partial_ab):
    """partial_a[t], partial_ab[t]: (C,) float64 sums of a and of a * b over chunk t of the rows of
    a, b: (M, C). A fixed number of chunks, added in order afterwards: no dependence on threads."""
    M, C = a.shape
    T = partial_a.shape[0]
    for t in prange(T):
        sa, sab = partial_a[t], partial_ab[t]
        sa[:] = 0
        sab[:] = 0
        for r in range(t * M // T, (t + 1) * M // T):
            for c in range(C):
                sa[c] += a[r, c]
                sab[c] += a[r, c] * b[r, c]


def _channel_sums(a, b):
    """(sum a, sum a b) per channel of a, b: (N, ..., C), in float64."""
    C = a.shape[-1]
    a2, b2 = a.reshape(-1, C), b.reshape(-1, C)
    T = min(CHUNKS, len(a2))
    partial_a, partial_ab = np.empty((T, C)), np.empty((T, C))
    _bn_sums(a2, b2, partial_a, partial_ab)
    return partial_a.sum(axis=0), partial_ab.sum(axis=0)


def batchnorm_moments(x):
    """Same contract as reference.batchnorm_moments: one pass for sum x and sum x^2 (in float64,
    so var = E[x^2] - mean^2 loses nothing that matters for float32 data)."""
    x = np.ascontiguousarray(x)
    M = x.size // x.shape[-1]
    s, ss = _channel_sums(x, x)
    mean = s / M
    return mean.astype(x.dtype), np.maximum(ss / M - mean * mean, 0).astype(x.dtype)


@njit(parallel=True, cache=True, error_model="numpy")
def _bn_forward(x, mean, inv_std, gamma, beta, xhat, y):
    M, C = x.shape
    for r in prange(M):
        for c in range(C):
            h = (x[r, c] - mean[c]) * inv_std[c]
            xhat[r, c] = h
            y[r, c] = h * gamma[c] + beta[c]


def batchnorm_forward(x, gamma, beta, mean, var, epsilon):
    """Same contract as reference.batchnorm_forward: xhat and y in one pass."""
    x = np.ascontiguousarray(x)
    C = x.shape[-1]
    inv_std = (1 / np.sqrt(var + epsilon)).astype(x.dtype)
    gamma = np.ones(C, x.dtype) if gamma is None else gamma
    beta = np.zeros(C, x.dtype) if beta is None else beta
    xhat, y = np.empty_like(x), np.empty_like(x)
    _bn_forward(x.reshape(-1, C), mean.astype(x.dtype), inv_std, gamma, beta, xhat.reshape(-1, C), y.reshape(-1, C))
    return y, (xhat, inv_std)


@njit(parallel=True, cache=True, error_model="numpy")
def _bn_backward_dx(dy, xhat, k, dbeta, dgamma, M, dx):
    """dx = k (M dy - dbeta - xhat dgamma), k = gamma inv_std / M per channel (batch statistics)."""
    R, C = dy.shape
    for r in prange(R):
        for c in range(C):
            dx[r, c] = k[c] * (M * dy[r, c] - dbeta[c] - xhat[r, c] * dgamma[c])


def batchnorm_backward(dy, ctx, gamma, batch_stats):
    """Same contract as reference.batchnorm_backward: one pass for dbeta and dgamma, one for dx."""
    xhat, inv_std = ctx
    dy = np.ascontiguousarray(dy)
    C = dy.shape[-1]
    sb, sg = _channel_sums(dy, xhat)
    dbeta, dgamma = sb.astype(dy.dtype), sg.astype(dy.dtype)
    scale = inv_std if gamma is None else gamma * inv_std
    if not batch_stats:
        return dy * scale, dgamma, dbeta
    M = dy.size // C
    dx = np.empty_like(dy)
    _bn_backward_dx(dy.reshape(-1, C), xhat.reshape(-1, C), (scale / M).astype(dy.dtype), dbeta, dgamma,
                    dy.dtype.type(M), dx.reshape(-1, C))
    return dx, dgamma, dbeta


# -- BatchNormalization -> ReLU -> MaxPooling2D in training: the normalized maps never stored ----------
@njit(parallel=True, cache=True, error_model="numpy")
def _bn_relu_pool_forward(z, mean, inv_std, gamma, beta, P, y, arg, zmax):
    """y: (N, PH, PW, C) = max(0, max over each P x P window of (z - mean) inv_std gamma + beta);
    arg: where in the window the first maximum was; zmax: z there. The same operations, in the
    same order, as batchnorm_forward, so the maxima (and their ties) are the reference's."""
    N, PH, PW, C = y.shape
    for n in prange(N):
        for pi in range(PH):
            for pj in range(PW):
                out, best, at = y[n, pi, pj], arg[n, pi, pj], zmax[n, pi, pj]
                for k in range(P * P):
                    row = z[n, pi * P + k // P, pj * P + k % P]
                    for c in range(C):
                        h = (row[c] - mean[c]) * inv_std[c] * gamma[c] + beta[c]
                        if k == 0 or h > out[c]:  # strict: ties keep the first maximum
                            out[c] = h
                            best[c] = k
                            at[c] = row[c]
                for c in range(C):
                    if out[c] < 0:  # noqa: PLR1730  (NaN stays NaN)
                        out[c] = 0


@njit(parallel=True, cache=True, error_model="numpy")
def _bn_relu_pool_sums(dy, y, zmax, mean, inv_std, partial_b, partial_g):
    """partial_b[t], partial_g[t]: (C,) float64 sums over chunk t of the pooled cells (rows of
    dy, y, zmax: (R, C)) of g and g xhat, g the gradient reaching the normalized map: dy at each
    window's maximum where y > 0, 0 elsewhere. Only the pooled cells are visited; xhat there is
    recomputed from the z kept at the maximum. (_bn_sums on a NumPy-made g would do the same with
    one more pass over memory and one more array, which this step is bound by.)"""
    R, C = dy.shape
    T = partial_b.shape[0]
    for t in prange(T):
        sb, sg = partial_b[t], partial_g[t]
        sb[:] = 0
        sg[:] = 0
        for r in range(t * R // T, (t + 1) * R // T):
            for c in range(C):
                g = dy[r, c] if y[r, c] > 0 else 0
                sb[c] += g
                sg[c] += g * ((zmax[r, c] - mean[c]) * inv_std[c])


@njit(parallel=True, cache=True, error_model="numpy")
def _bn_relu_pool_dz(dy, y, arg, z, mean, inv_std, scale, dbeta, dgamma, M, P, dz):
    """dz = scale / M (M g - dbeta - xhat dgamma) for every cell of z (batchnorm_backward's dx)."""
    N, OH, OW, C = z.shape
    PH, PW = dy.shape[1], dy.shape[2]
    for n in prange(N):
        for i in range(OH):
            pi = i // P
            for j in range(OW):
                pj, k = j // P, (i % P) * P + j % P
                read = pi < PH and pj < PW  # rows and columns past the last window: g = 0
                for c in range(C):
                    g = dy[n, pi, pj, c] if read and arg[n, pi, pj, c] == k and y[n, pi, pj, c] > 0 else 0
                    xhat = (z[n, i, j, c] - mean[c]) * inv_std[c]
                    dz[n, i, j, c] = scale[c] * (M * g - dbeta[c] - xhat * dgamma[c])


def bn_relu_pool_forward(z, gamma, beta, mean, var, epsilon, pool):
    """Same contract as reference.bn_relu_pool_forward: one pass over z, writing only the pooled
    maps, the position of each maximum and z there (a quarter of z each, for pool 2); the
    backward recomputes xhat from z instead of reading a stored copy."""
    z = np.ascontiguousarray(z)
    N, OH, OW, C = z.shape
    inv_std = (1 / np.sqrt(var + epsilon)).astype(z.dtype)
    mean = mean.astype(z.dtype)
    gamma = np.ones(C, z.dtype) if gamma is None else gamma
    beta = np.zeros(C, z.dtype) if beta is None else beta
    y = np.empty((N, OH // pool, OW // pool, C), dtype=z.dtype)
    arg, zmax = np.empty(y.shape, dtype=np.int32), np.empty_like(y)
    _bn_relu_pool_forward(z, mean, inv_std, gamma, beta, pool, y, arg, zmax)
    return y, (z, mean, inv_std, y, arg, zmax, pool)


def bn_relu_pool_backward(dy, ctx, gamma, batch_stats):
    """Same contract as reference.bn_relu_pool_backward: one pass over the pooled cells for dbeta and
    dgamma, one over z for dz."""
    z, mean, inv_std, y, arg, zmax, pool = ctx
    dy = np.ascontiguousarray(dy)
    C = z.shape[-1]
    T = min(CHUNKS, len(dy))
    partial_b, partial_g = np.empty((T, C)), np.empty((T, C))
    _bn_relu_pool_sums(dy.reshape(-1, C), y.reshape(-1, C), zmax.reshape(-1, C), mean, inv_std, partial_b, partial_g)
    dbeta, dgamma = partial_b.sum(axis=0).astype(dy.dtype), partial_g.sum(axis=0).astype(dy.dtype)
    scale = inv_std if gamma is None else gamma * inv_std
    M = z.size // C
    # fixed statistics: dz = scale g, the same pass with the two sums' terms left out
    sb, sg = (dbeta, dgamma) if batch_stats else (np.zeros_like(dbeta), np.zeros_like(dgamma))
    dz = np.empty_like(z)
    _bn_relu_pool_dz(dy, y, arg, z, mean, inv_std, (scale / M).astype(dy.dtype), sb, sg, dy.dtype.type(M), pool, dz)
    return dz, dgamma, dbeta


# -- BatchNormalization -> Add(skip) -> ReLU, the end of a residual block: one pass forward ----------
@njit(parallel=True, cache=True, error_model="numpy")
def _bn_add_relu_forward(z, skip, mean, inv_std, gamma, beta, y):
    """y = max(0, (z - mean) inv_std gamma + beta + skip), rows of (R, C), in batchnorm_forward's
    order of operations, so y is the layers' to the last bit."""
    R, C = z.shape
    for r in prange(R):
        for c in range(C):
            h = (z[r, c] - mean[c]) * inv_std[c] * gamma[c] + beta[c] + skip[r, c]
            y[r, c] = 0 if h <= 0 else h  # noqa: FURB136 (NaN stays NaN, as in _relu_forward)


@njit(parallel=True, cache=True, error_model="numpy")
def _bn_add_relu_sums(dy, y, z, mean, inv_std, partial_b, partial_g):
    """partial_b[t], partial_g[t]: (C,) float64 sums over chunk t of the rows of g and g xhat, with
    g = dy where y > 0, else 0 (ReLU's gradient, which is the sum's: so the skip's and the
    normalization's output's) and xhat recomputed from z. Nothing is written but the sums."""
    R, C = dy.shape
    T = partial_b.shape[0]
    for t in prange(T):
        sb, sg = partial_b[t], partial_g[t]
        sb[:] = 0
        sg[:] = 0
        for r in range(t * R // T, (t + 1) * R // T):
            for c in range(C):
                g = dy[r, c] if y[r, c] > 0 else dy[r, c] * 0  # as relu_backward: a NaN dy stays visible
                sb[c] += g
                sg[c] += g * ((z[r, c] - mean[c]) * inv_std[c])


@njit(parallel=True, cache=True, error_model="numpy")
def _bn_add_relu_dz(dy, y, z, mean, inv_std, k, dbeta, dgamma, M, dskip, dz):
    """dskip = g and dz = k (M g - dbeta - xhat dgamma), k = gamma inv_std / M per channel
    (batchnorm's dx), g made again from dy and y: one pass writing both. (Writing g in the pass
    of the sums instead and reading it back here is slower: the stores to g keep LLVM from
    holding the sums in registers.)"""
    R, C = dy.shape
    for r in prange(R):
        for c in range(C):
            g = dy[r, c] if y[r, c] > 0 else dy[r, c] * 0
            dskip[r, c] = g
            xhat = (z[r, c] - mean[c]) * inv_std[c]
            dz[r, c] = k[c] * (M * g - dbeta[c] - xhat * dgamma[c])


def bn_add_relu_forward(z, skip, gamma, beta, mean, var, epsilon):
    """Same contract as reference.bn_add_relu_forward: one pass writing y alone; the backward
    recomputes xhat from z and takes ReLU's mask from y."""
    z, skip = np.ascontiguousarray(z), np.ascontiguousarray(skip, dtype=z.dtype)
    C = z.shape[-1]
    inv_std = (1 / np.sqrt(var + epsilon)).astype(z.dtype)
    mean = mean.astype(z.dtype)
    gamma = np.ones(C, z.dtype) if gamma is None else gamma
    beta = np.zeros(C, z.dtype) if beta is None else beta
    y = np.empty_like(z)
    _bn_add_relu_forward(z.reshape(-1, C), skip.reshape(-1, C), mean, inv_std, gamma, beta, y.reshape(-1, C))
    return y, (z, mean, inv_std, y)


def bn_add_relu_backward(dy, ctx, gamma, batch_stats):
    """Same contract as reference.bn_add_relu_backward: one pass for the two sums, one for dskip and dz."""
    z, mean, inv_std, y = ctx
    dy = np.ascontiguousarray(dy)
    C = z.shape[-1]
    R = z.size // C
    T = min(CHUNKS, R)
    rows = (dy.reshape(-1, C), y.reshape(-1, C), z.reshape(-1, C))
    partial_b, partial_g = np.empty((T, C)), np.empty((T, C))
    _bn_add_relu_sums(*rows, mean, inv_std, partial_b, partial_g)
    dbeta, dgamma = partial_b.sum(axis=0).astype(dy.dtype), partial_g.sum(axis=0).astype(dy.dtype)
    scale = inv_std if gamma is None else gamma * inv_std
    # fixed statistics: dz = scale g, the same pass with the two sums' terms left out
    sb, sg = (dbeta, dgamma) if batch_stats else (np.zeros_like(dbeta), np.zeros_like(dgamma))
    dskip, dz = np.empty_like(z), np.empty_like(z)
    _bn_add_relu_dz(*rows, mean, inv_std, (scale / R).astype(dy.dtype), sb, sg, dy.dtype.type(R),
                    dskip.reshape(-1, C), dz.reshape(-1, C))
    return dz, dskip, dgamma, dbeta


# -- Adam, for host arrays: optimizers.Adam.update in one compiled pass -----------------------------
# error_model="numpy": a division by zero gives Inf or NaN, as in NumPy, instead of a Python
# exception; without the check that raises it, LLVM can vectorise the loops.
@njit(cache=True, inline="always", error_model="numpy")
def _adam_new(p, g, m, v, alpha, c1, c2, eps, wd, lr):
    """One element's new (m, v, p), in the same float operations as optimizers.Adam.update
    (after AdamW's p -= p * wd * lr when wd is not 0)."""
    if wd != 0:
        p = p - p * wd * lr
    m = m + (g - m) * c1
    v = v + (g * g - v) * c2
    return m, v, p - (m * alpha) / (np.sqrt(v) + eps)


@njit(cache=True, error_model="numpy")
def _adam_check(p, g, m, v, alpha, c1, c2, eps, wd, lr):
    """The number of elements of flat float arrays whose new m, v or p would not be finite.
    A count, not an early exit: the loop has no branch out, so it is vectorised."""
    bad = 0
    for q in range(p.size):
        mq, vq, pq = _adam_new(p[q], g[q], m[q], v[q], alpha, c1, c2, eps, wd, lr)
        bad += not (np.isfinite(mq) and np.isfinite(vq) and np.isfinite(pq))
    return bad


@njit(cache=True, error_model="numpy")
def _adam_write(p, g, m, v, alpha, c1, c2, eps, wd, lr):
    """Apply the update to flat float arrays, in place."""
    for q in range(p.size):
        m[q], v[q], p[q] = _adam_new(p[q], g[q], m[q], v[q], alpha, c1, c2, eps, wd, lr)


def adam_step(params, grads, slots, alpha, c1, c2, eps, commit, decay=None):
    """Check (commit=False) or apply (commit=True) one Adam step for every param, as
    reference.adam_step; two passes make the step all or nothing without copying the state."""
    wd, lr = decay if decay is not None else (alpha.dtype.type(0), alpha.dtype.type(0))
    for p, g, s in zip(params, grads, slots):
        args = (p.reshape(-1), np.ascontiguousarray(g).reshape(-1), s["m"].reshape(-1), s["v"].reshape(-1),
                alpha, c1, c2, eps, wd, lr)
        if commit:
            _adam_write(*args)
        elif _adam_check(*args):
            return False
    return True


# -- RMSprop, for host arrays: optimizers.RMSprop.update in compiled passes, as Adam's above -------
@njit(cache=True, inline="always", error_model="numpy")
def _rmsprop_new(p, g, v, lr, rho, c, eps, wd, dlr):
    """One element's new (v, p), in the same float operations as optimizers.RMSprop.update
    (after the weight decay p -= p * wd * dlr when wd is not 0)."""
    if wd != 0:
        p = p - p * wd * dlr
    v = rho * v + c * (g * g)
    return v, p - lr * g / np.sqrt(v + eps)


@njit(cache=True, error_model="numpy")
def _rmsprop_check(p, g, v, lr, rho, c, eps, wd, dlr):
    """The number of elements whose new v or p would not be finite (a count: vectorised)."""
    bad = 0
    for q in range(p.size):
        vq, pq = _rmsprop_new(p[q], g[q], v[q], lr, rho, c, eps, wd, dlr)
        bad += not (np.isfinite(vq) and np.isfinite(pq))
    return bad


@njit(cache=True, error_model="numpy")
def _rmsprop_write(p, g, v, lr, rho, c, eps, wd, dlr):
    """Apply the update to flat float arrays, in place."""
    for q in range(p.size):
        v[q], p[q] = _rmsprop_new(p[q], g[q], v[q], lr, rho, c, eps, wd, dlr)


def rmsprop_step(params, grads, slots, lr, rho, c, eps, momentum, commit, decay=None):
    """Check (commit=False) or apply (commit=True) one RMSprop step for every param, as
    reference.rmsprop_step. Compiled for the default, plain RMSprop; with momentum or centered
    (slots "m" or "a") the reference runs, rarer options not worth a second twin."""
    if any(len(s) != 1 for s in slots):
        return reference.rmsprop_step(params, grads, slots, lr, rho, c, eps, momentum, commit, decay)
    wd, dlr = decay if decay is not None else (lr.dtype.type(0), lr.dtype.type(0))
    for p, g, s in zip(params, grads, slots):
        args = (p.reshape(-1), np.ascontiguousarray(g).reshape(-1), s["v"].reshape(-1), lr, rho, c, eps, wd, dlr)
        if commit:
            _rmsprop_write(*args)
        elif _rmsprop_check(*args):
            return False
    return True


# -- Augmentation: the affine resampling of RandomTranslation, RandomRotation, RandomZoom ---------
FILL_MODES = {"reflect": 0, "wrap": 1, "constant": 2, "nearest": 3}


@njit(cache=True, inline="always")
def _map_coordinate(c, size, mode):
    """reference.map_coordinate for one coordinate (mode: FILL_MODES's code)."""
    if mode == 2:
        return c
    if mode == 3 or size <= 1:
        return min(max(c, 0.0), size - 1.0)
    if c < 0:
        if mode == 0:
            period = 2.0 * size
            c = c + period * np.trunc(-c / period)
            c = c + period if c < -size else -c - 1.0
        else:
            c = c + size * (np.trunc(-c / (size - 1)) + 1.0)
    elif c > size - 1:
        if mode == 0:
            period = 2.0 * size
            c = c - period * np.trunc(c / period)
            if c >= size:
                c = period - c - 1.0
        else:
            c = c - size * np.trunc(c / (size - 1))
    return min(max(c, 0.0), size - 1.0)


@njit(cache=True, inline="always")
def _source(t, i, j, H, W, mode, bilinear):
    """Output pixel (i, j)'s four reads: rows, columns and weights (zero weight: outside, reads the fill)."""
    k = t[6] * j + t[7] * i + 1.0
    u = _map_coordinate((t[0] * j + t[1] * i + t[2]) / k, W, mode)
    v = _map_coordinate((t[3] * j + t[4] * i + t[5]) / k, H, mode)
    if bilinear:
        v0, u0 = np.floor(v), np.floor(u)
        s, r = v - v0, u - u0
        rows = (v0, v0, v0 + 1.0, v0 + 1.0)
        cols = (u0, u0 + 1.0, u0, u0 + 1.0)
        weights = ((1 - s) * (1 - r), (1 - s) * r, s * (1 - r), s * r)
    else:
        vr, ur = np.sign(v) * np.floor(abs(v) + 0.5), np.sign(u) * np.floor(abs(u) + 0.5)
        rows, cols, weights = (vr, 0.0, 0.0, 0.0), (ur, 0.0, 0.0, 0.0), (1.0, 0.0, 0.0, 0.0)
    return rows, cols, weights


@njit(parallel=True, cache=True, error_model="numpy")
def _affine_forward(x, transforms, mode, bilinear, fill, y):
    N, H, W, C = x.shape
    for n in prange(N):
        t = transforms[n]  # float32, as TensorFlow computes the coordinates
        for i in range(H):
            for j in range(W):
                rows, cols, weights = _source(t, np.float32(i), np.float32(j), H, W, mode, bilinear)
                for c in range(C):
                    acc = 0.0
                    for q in range(4):
                        r, cc = rows[q], cols[q]
                        if 0 <= r < H and 0 <= cc < W:
                            acc += weights[q] * x[n, int(r), int(cc), c]
                        else:
                            acc += weights[q] * fill
                    y[n, i, j, c] = acc


@njit(parallel=True, cache=True, error_model="numpy")
def _affine_backward(dy, transforms, mode, bilinear, dx):
    N, H, W, C = dy.shape
    for n in prange(N):  # each image writes only its own dx[n]: no race
        t = transforms[n]  # float32, as TensorFlow computes the coordinates
        for i in range(H):
            for j in range(W):
                rows, cols, weights = _source(t, np.float32(i), np.float32(j), H, W, mode, bilinear)
                for q in range(4):
                    r, cc = rows[q], cols[q]
                    if weights[q] != 0 and 0 <= r < H and 0 <= cc < W:
                        for c in range(C):
                            dx[n, int(r), int(cc), c] += weights[q] * dy[n, i, j, c]


def affine_transform_forward(x, transforms, interpolation="bilinear", fill_mode="reflect", fill_value=0.0):
    """Same contract as reference.affine_transform_forward: one pass over the output pixels."""
    x = np.ascontiguousarray(x)
    transforms = np.ascontiguousarray(transforms, dtype=np.float32).reshape(len(x), 8)
    y = np.empty_like(x)
    bilinear = interpolation != "nearest"
    _affine_forward(x, transforms, FILL_MODES[fill_mode], bilinear, x.dtype.type(fill_value), y)
    return y, (transforms, FILL_MODES[fill_mode], bilinear)


def affine_transform_backward(dy, ctx):
    """Same contract as reference.affine_transform_backward: the reads recomputed, not stored."""
    transforms, mode, bilinear = ctx
    dy = np.ascontiguousarray(dy)
    dx = np.zeros_like(dy)
    _affine_backward(dy, transforms, mode, bilinear, dx)
    return dx
