"""The GPU's own kernels: where CuPy's whole-array operations cost more in launches than in work.

On a GPU every CuPy operation is one kernel launch (a few microseconds each, issued by Python),
so a step of a small model waits on the launches, not on the arithmetic. The reference's max
pooling makes one operation per window position and several copies; its Adam step makes a dozen
per weight array, plus copies for the all-or-nothing check. Here each is one CUDA kernel per
call (per weight array for Adam), written in CUDA C through CuPy's ElementwiseKernel, which
runs the loop body once per element, `i` its flat index. The sums over each channel's values
(BatchNormalization's, a convolution's bias gradient) become matrix products (_channel_sums).
The rest of the contract is the reference's, on device arrays (minicnn.kernels).

Each kernel computes what its twin in reference.py computes, in the same order of operations,
compiled without fused multiply-adds (`--fmad=false`), so that the results round as NumPy's do;
tests/test_device.py ties them to the reference on a real GPU. Nothing here runs without one:
CuPy compiles the kernels at their first call.
"""
from minicnn import gpu
from minicnn.kernels import reference

_OPTIONS = ("--fmad=false",)  # a * b + c rounded twice, as NumPy does, not once as an FMA would
_compiled = {}


def _kernel(name):
    """The CuPy kernel `name`, built once per process."""
    if name not in _compiled:
        cp = gpu.cupy()
        if name == "maxpool_forward":
            _compiled[name] = cp.ElementwiseKernel(
                "raw T x, int32 H, int32 W, int32 C, int32 OH, int32 OW, int32 KH, int32 KW, int32 SH, int32 SW, "
                "int32 top, int32 left", "T y, int32 arg", MAXPOOL_FORWARD, "minicnn_maxpool_forward",
                options=_OPTIONS)
        elif name == "maxpool_backward":
            _compiled[name] = cp.ElementwiseKernel(
                "T dy, int32 arg, int32 H, int32 W, int32 C, int32 OH, int32 OW, int32 KW, int32 SH, int32 SW, "
                "int32 top, int32 left", "raw T dx", MAXPOOL_BACKWARD, "minicnn_maxpool_backward", options=_OPTIONS)
        elif name == "adam_check":
            _compiled[name] = cp.ElementwiseKernel(
                "T p, T g, T m, T v, T alpha, T c1, T c2, T eps, T wd, T lr", "raw int32 bad",
                "if (minicnn_adam_bad(p, g, m, v, alpha, c1, c2, eps, wd, lr)) bad[0] = 1;", "minicnn_adam_check",
                preamble=ADAM_PREAMBLE, options=_OPTIONS)
        elif name == "adam_commit":
            _compiled[name] = cp.ElementwiseKernel(
                "T g, T alpha, T c1, T c2, T eps, T wd, T lr", "T p, T m, T v", ADAM_COMMIT, "minicnn_adam_commit",
                options=_OPTIONS)
    return _compiled[name]


# Output i is (n, oh, ow, c) in (N, OH, OW, C) order; its window starts at (oh SH - top, ow SW - left)
# in x. A cell of the padding is never read: the reference pads with -inf, which never wins.
# The first maximum in row-major window order wins, as NumPy's argmax (a NaN, the first NaN).
_UNFLATTEN = """
    const int c = i % C;
    const long long r = i / C;
    const int ow = r % OW, oh = (r / OW) % OH;
    const long long n = r / ((long long)OW * OH);
"""
MAXPOOL_FORWARD = _UNFLATTEN + """
    T best = 0;
    int at = -1;
    for (int kh = 0; kh < KH; ++kh) {
        const int row = oh * SH + kh - top;
        if (row < 0 || row >= H) continue;
        for (int kw = 0; kw < KW; ++kw) {
            const int col = ow * SW + kw - left;
            if (col < 0 || col >= W) continue;
            const T v = x[((n * H + row) * W + col) * C + c];
            if (at < 0 || (best == best && (v > best || v != v))) { best = v; at = kh * KW + kw; }
        }
    }
    y = best;
    arg = at;
"""
# Each output's gradient to the cell that won its window; where windows overlap, a cell that
# wins several collects their sum (atomically: the order of that sum is not fixed).
MAXPOOL_BACKWARD = _UNFLATTEN + """
    const int row = oh * SH + arg / KW - top, col = ow * SW + arg % KW - left;
    if (row >= 0 && row < H && col >= 0 && col < W) atomicAdd(&dx[((n * H + row) * W + col) * C + c], dy);
"""
# reference.adam_step, line for line: decay first (AdamW; wd = lr = 0 leaves p as it is), then
# m += (g - m) c1, v += (g g - v) c2, p -= (m alpha) / (sqrt(v) + eps).
ADAM_PREAMBLE = """
template <typename T>
__device__ int minicnn_adam_bad(T p, T g, T m, T v, T alpha, T c1, T c2, T eps, T wd, T lr) {
    const T d = p - p * wd * lr;
    const T m2 = m + (g - m) * c1;
    const T v2 = v + (g * g - v) * c2;
    const T q = d - (m2 * alpha) / (sqrt(v2) + eps);
    return !(isfinite(m2) && isfinite(v2) && isfinite(q));
}
"""
ADAM_COMMIT = """
    const T d = p - p * wd * lr;
    m = m + (g - m) * c1;
    v = v + (g * g - v) * c2;
    p = d - (m * alpha) / (sqrt(v) + eps);
"""


def maxpool_forward(x, pool, stride, pads):
    """reference.maxpool_forward in one kernel. x: (N, H, W, C) -> y: (N, OH, OW, C) and the same
    ctx as the reference (arg: the flat index kh * KW + kw of each window's maximum), which either
    backward reads."""
    cp = gpu.cupy()
    N, H, W, C = x.shape
    (KH, KW), (SH, SW), (top, bottom, left, right) = pool, stride, pads
    OH, OW = (H + top + bottom - KH) // SH + 1, (W + left + right - KW) // SW + 1
    x = cp.ascontiguousarray(x)
    y = cp.empty((N, OH, OW, C), dtype=x.dtype)
    arg = cp.empty((N, OH, OW, C), dtype=cp.int32)
    _kernel("maxpool_forward")(x, H, W, C, OH, OW, KH, KW, SH, SW, top, left, y, arg)
    return y, (arg, (N, H + top + bottom, W + left + right, C), pool, stride, pads)


def maxpool_backward(dy, ctx):
    """reference.maxpool_backward in one kernel (after the zeros of dx). dy: (N, OH, OW, C) -> dx: (N, H, W, C)."""
    cp = gpu.cupy()
    arg, (N, Hp, Wp, C), (_, KW), (SH, SW), (top, bottom, left, right) = ctx
    _, OH, OW, _ = dy.shape
    H, W = Hp - top - bottom, Wp - left - right
    dx = cp.zeros((N, H, W, C), dtype=dy.dtype)
    _kernel("maxpool_backward")(cp.ascontiguousarray(dy), arg.astype(cp.int32, copy=False), H, W, C, OH, OW, KW,
                                SH, SW, top, left, dx)
    return dx


def _channel_sums(*arrays):
    """Each (N, ..., C) array summed over every axis but the last, as one matrix product:
    ones(M) @ a.reshape(M, C), which cuBLAS spreads over the whole GPU. CuPy's own sum over the
    leading axes of a channels-last array hands each channel's M values to few threads, which
    made a BatchNormalization of few channels many times slower than the layers around it
    (docs/gpu.md, "Figures"; benchmarks/gpu_step.py)."""
    cp = gpu.cupy()
    C = arrays[0].shape[-1]
    ones = cp.ones(arrays[0].size // C, dtype=arrays[0].dtype)
    return [ones @ a.reshape(-1, C) for a in arrays]


def conv2d_backward(dy, ctx, W, need_dx=True):
    """reference.conv2d_backward: dy: (N, OH, OW, F) -> dx (N, H, W, C) or None, dW (KH, KW, C, F),
    db (F,). The bias gradient (dy summed over every output pixel of the batch) as a product
    (_channel_sums), for the reason given there: CuPy's sum over the rows of the (N OH OW, F)
    gradient leaves most of the GPU idle (docs/gpu.md, "Figures"). The rest as the reference
    writes it."""
    cols, xpad_shape, stride, pads = ctx
    dy2 = dy.reshape(-1, W.shape[3])
    dW = (cols.T @ dy2).reshape(W.shape)
    (db,) = _channel_sums(dy2)
    if not need_dx:
        return None, dW, db
    return reference.conv2d_input_gradient(dy, W, xpad_shape, stride, pads), dW, db


def batchnorm_moments(x):
    """reference.batchnorm_moments, x: (N, ..., C) -> mean, var: (C,), the sums over the M values
    of each channel as products (_channel_sums): mean = sum x / M, var = sum (x - mean)^2 / M."""
    M = x.size // x.shape[-1]
    (total,) = _channel_sums(x)
    mean = total / M
    d = x - mean
    (squares,) = _channel_sums(d * d)
    return mean, squares / M


def batchnorm_backward(dy, ctx, gamma, batch_stats):
    """reference.batchnorm_backward, dy: (N, ..., C) -> dx (same shape), dgamma, dbeta: (C,); its
    two sums over each channel's values as products (_channel_sums), dx from them as the reference's."""
    xhat, inv_std = ctx
    dbeta, dgamma = _channel_sums(dy, dy * xhat)
    return reference.batchnorm_input_gradient(dy, xhat, inv_std, gamma, dbeta, dgamma, batch_stats), dgamma, dbeta


def adam_step(params, grads, slots, alpha, c1, c2, eps, commit, decay=None):
    """reference.adam_step (params, grads: lists of device arrays, each grad its param's shape;
    slots: one {"m", "v"} per param), one kernel per param: commit=False flags any entry whose
    new value would not be finite (one device sync for all params); commit=True updates p, m and
    v in place."""
    cp = gpu.cupy()
    wd, lr = decay if decay is not None else (0, 0)
    if commit:
        for p, g, s in zip(params, grads, slots):
            t = p.dtype.type
            _kernel("adam_commit")(g, t(alpha), t(c1), t(c2), t(eps), t(wd), t(lr), p, s["m"], s["v"])
        return True
    bad = cp.zeros(1, dtype=cp.int32)  # set to 1 by any entry of any param whose step is not finite
    for p, g, s in zip(params, grads, slots):
        t = p.dtype.type
        _kernel("adam_check")(p, g, s["m"], s["v"], t(alpha), t(c1), t(c2), t(eps), t(wd), t(lr), bad)
    return not bool(bad[0])
