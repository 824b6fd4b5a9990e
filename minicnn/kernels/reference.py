"""The readable reference kernels: convolution and max pooling in plain NumPy.

Shapes use one vocabulary throughout minicnn: N batch, H x W spatial, C channels in,
F filters, KH x KW kernel (or pool window), OH x OW output, SH x SW strides.
Arrays are channels-last, as in Keras: x is (N, H, W, C).

Every function here is the contract the fast kernels (Numba, CuPy) must honour: same
arguments, same results. The tests tie each fast kernel to these.

A forward kernel returns (y, ctx): ctx is whatever its backward needs, and the layer keeps
it as its one private cache. A backward kernel takes (dy, ctx, ...) and returns gradients.

Each function is written once against the array module of its input, `xp = array_module(x)`:
NumPy for host arrays, CuPy for device arrays (see minicnn/gpu.py). So these same lines are
also minicnn's GPU kernels: whole-array operations, never a Python loop over pixels.
"""
from minicnn import activations
from minicnn.gpu import array_module


def pad_nhwc(x, pads, value=0.0):
    """Pad the spatial axes. x: (N, H, W, C), pads: (top, bottom, left, right)."""
    top, bottom, left, right = pads
    if not (top or bottom or left or right):
        return x
    xp = array_module(x)
    return xp.pad(x, ((0, 0), (top, bottom), (left, right), (0, 0)), constant_values=value)


def unpad_nhwc(x, pads):
    """Inverse of pad_nhwc: crop the padded border off x: (N, Hp, Wp, C)."""
    top, bottom, left, right = pads
    return x[:, top:x.shape[1] - bottom, left:x.shape[2] - right, :]


def windows(x, KH, KW, stride):
    """A strided view of every KH x KW window: x: (N, Hp, Wp, C) -> (N, OH, OW, KH, KW, C).

    No copy is made; window (i, j) starts at row i*SH and column j*SW.
    """
    SH, SW = stride
    xp = array_module(x)
    view = xp.lib.stride_tricks.sliding_window_view(x, (KH, KW), axis=(1, 2))  # (N, Hp-KH+1, Wp-KW+1, C, KH, KW)
    return view[:, ::SH, ::SW].transpose(0, 1, 2, 4, 5, 3)


def scatter_windows(dwin, xpad_shape, stride):
    """Adjoint of `windows`: add dwin: (N, OH, OW, KH, KW, C) back into an (N, Hp, Wp, C) array.

    One vectorised add per kernel position (KH * KW of them), never a loop over pixels;
    overlapping windows accumulate, as the chain rule asks.
    """
    _, OH, OW, KH, KW, _ = dwin.shape
    SH, SW = stride
    dx = array_module(dwin).zeros(xpad_shape, dtype=dwin.dtype)
    for i in range(KH):
        for j in range(KW):
            dx[:, i:i + SH * OH:SH, j:j + SW * OW:SW, :] += dwin[:, :, :, i, j, :]
    return dx


def conv2d_forward(x, W, b, stride, pads):
    """Convolution (cross-correlation, no kernel flip, as Keras computes it) by im2col.

    x: (N, H, W, C), W: (KH, KW, C, F), b: (F,) or None, stride: (SH, SW),
    pads: (top, bottom, left, right) -> y: (N, OH, OW, F), ctx for conv2d_backward.

    y[n, i, j, f] = b[f] + sum_{kh, kw, c} xpad[n, i*SH + kh, j*SW + kw, c] * W[kh, kw, c, f]
    """
    KH, KW, C, F = W.shape
    xpad = pad_nhwc(x, pads)
    win = windows(xpad, KH, KW, stride)
    N, OH, OW = win.shape[:3]
    cols = win.reshape(N * OH * OW, KH * KW * C)  # im2col: one row per output pixel
    y = cols @ W.reshape(KH * KW * C, F)
    if b is not None:
        y += b
    return y.reshape(N, OH, OW, F), (cols, xpad.shape, stride, pads)


def conv2d_backward(dy, ctx, W, need_dx=True):
    """Gradients of conv2d_forward. dy: (N, OH, OW, F) -> dx: (N, H, W, C) or None,
    dW: (KH, KW, C, F), db: (F,).

    dW = cols^T @ dy        (every window, weighted by the gradient of its output)
    db = sum of dy over N, OH, OW
    dx = col2im(dy @ W^T)   (each output pixel sends W back to the window it read)
    """
    cols, xpad_shape, stride, pads = ctx
    KH, KW, C, F = W.shape
    N, OH, OW, _ = dy.shape
    dy2 = dy.reshape(N * OH * OW, F)
    dW = (cols.T @ dy2).reshape(W.shape)
    db = dy2.sum(axis=0)
    if not need_dx:
        return None, dW, db
    dcols = (dy2 @ W.reshape(KH * KW * C, F).T).reshape(N, OH, OW, KH, KW, C)
    dx = unpad_nhwc(scatter_windows(dcols, xpad_shape, stride), pads)
    return dx, dW, db


def maxpool_forward(x, pool, stride, pads):
    """Max pooling. x: (N, H, W, C), pool: (KH, KW), stride: (SH, SW),
    pads: (top, bottom, left, right) -> y: (N, OH, OW, C), ctx for maxpool_backward.

    Padding is -inf, so a padded cell never wins (TensorFlow's "same" pooling).
    ctx keeps, for each output, the flat index (kh * KW + kw) of its maximum in the window.
    """
    KH, KW = pool
    xp = array_module(x)
    xpad = pad_nhwc(x, pads, value=-xp.inf)
    win = windows(xpad, KH, KW, stride)  # (N, OH, OW, KH, KW, C)
    N, OH, OW, _, _, C = win.shape
    flat = win.reshape(N, OH, OW, KH * KW, C)
    # argmax returns the first maximum in row-major window order: on ties, the gradient
    # goes to the top-most, then left-most, maximal cell of the window.
    arg = flat.argmax(axis=3)
    y = xp.take_along_axis(flat, arg[:, :, :, None, :], axis=3)[:, :, :, 0, :]
    return y, (arg, xpad.shape, pool, stride, pads)


def maxpool_backward(dy, ctx):
    """Gradient of maxpool_forward. dy: (N, OH, OW, C) -> dx: (N, H, W, C).

    Each output's gradient goes to the one cell that was its maximum; cells that win
    several overlapping windows collect the sum.
    """
    arg, xpad_shape, (KH, KW), stride, pads = ctx
    N, OH, OW, C = dy.shape
    xp = array_module(dy)
    dwin = xp.zeros((N, OH, OW, KH, KW, C), dtype=dy.dtype)
    for i in range(KH):  # one whole-array step per window position, never a loop over pixels
        for j in range(KW):
            dwin[:, :, :, i, j, :] = xp.where(arg == i * KW + j, dy, 0)
    return unpad_nhwc(scatter_windows(dwin, xpad_shape, stride), pads)


# ReLU's readable pair lives with the other activations (minicnn/activations.py); it is part
# of the contract because the Numba backend compiles it.
relu_forward, relu_backward = activations.relu, activations.relu_backward


def conv_relu_pool_forward(x, W, b, pool, pads):
    """Conv2D (stride 1) -> ReLU -> MaxPooling2D (pool x pool, stride pool, valid) as one step:
    what Sequential runs when the three layers follow each other and the kernels fuse them.

    x: (N, H, W, C), W: (KH, KW, C, F), b: (F,) or None, pool: P -> y: (N, PH, PW, F).
    Here it is just the composition of the three kernels above; the fast twin computes the
    same in one pass, never writing the (N, OH, OW, F) maps to memory.
    """
    z, conv_ctx = conv2d_forward(x, W, b, (1, 1), pads)
    y, pool_ctx = maxpool_forward(relu_forward(z), (pool, pool), (pool, pool), (0, 0, 0, 0))
    return y, (conv_ctx, y, pool_ctx)


def conv_relu_pool_backward(dy, ctx, W, need_dx=True):
    """Gradients of conv_relu_pool_forward: dy: (N, PH, PW, F) -> (dx or None, dW, db).

    The pooling sends each dy to its window's maximum; ReLU lets it through where the output
    was positive (relu(max) == max(relu)); the convolution's backward does the rest.
    """
    conv_ctx, y, pool_ctx = ctx
    dz = maxpool_backward(dy * (y > 0), pool_ctx)
    return conv2d_backward(dz, conv_ctx, W, need_dx)


def adam_step(params, grads, slots, alpha, c1, c2, eps, commit):
    """Keras's Adam update for every param, as optimizers.Adam.update writes it:
    m += (g - m) c1;  v += (g g - v) c2;  p -= (m alpha) / (sqrt(v) + eps),
    with c1 = 1 - beta_1, c2 = 1 - beta_2 and alpha the bias-corrected learning rate.

    params, grads: lists of arrays of equal shapes; slots: one {"m", "v"} per param.
    commit=False only checks that every new value is finite (returns False if not, changing
    nothing); commit=True applies the step. Check, then apply: the step is all or nothing.
    """
    for p, g, s in zip(params, grads, slots):
        xp = array_module(p)
        m = s["m"] + (g - s["m"]) * c1
        v = s["v"] + (g * g - s["v"]) * c2
        new = p - (m * alpha) / (xp.sqrt(v) + eps)
        if commit:
            s["m"][...], s["v"][...], p[...] = m, v, new
        elif not (xp.isfinite(m).all() and xp.isfinite(v).all() and xp.isfinite(new).all()):
            return False
    return True
