"""The readable reference kernels: convolution and max pooling in plain NumPy.

Shapes use one vocabulary throughout minicnn: N batch, H x W spatial, C channels in,
F filters, KH x KW kernel (or pool window), OH x OW output, SH x SW strides.
Arrays are channels-last, as in Keras: x is (N, H, W, C).

The functions named in CONTRACT are what the fast kernels (Numba) must honour: same
arguments, same results; a backend that lacks one inherits it from here. The tests tie each
fast kernel to these, and these to the textbook loops of naive.py.

A forward kernel returns (y, ctx): ctx is whatever its backward needs, and the layer keeps
it as its one private cache. A backward kernel takes (dy, ctx, ...) and returns gradients.

Each function is written once against the array module of its input, `xp = array_module(x)`:
NumPy for host arrays, CuPy for device arrays (see minicnn/gpu.py). So these same lines are
also minicnn's GPU kernels: whole-array operations, never a Python loop over pixels.
"""
from minicnn import activations
from minicnn.gpu import array_module

# The kernel contract: what a layer or optimizer calls through minicnn.backend. A new kernel is
# written below and named here; a fast backend may then speed it up (minicnn/kernels/__init__.py).
CONTRACT = (
    "conv2d_forward", "conv2d_backward",  # Conv2D
    "conv2d_input_gradient",  # Conv2D's dx alone: Conv2DTranspose's forward
    "maxpool_forward", "maxpool_backward",  # MaxPooling2D
    "avgpool_forward", "avgpool_backward",  # AveragePooling2D
    "batchnorm_moments", "batchnorm_forward", "batchnorm_backward",  # BatchNormalization
    "relu_forward", "relu_backward",  # ReLU (the readable pair is in minicnn/activations.py)
    "conv_relu_pool_forward", "conv_relu_pool_backward",  # Conv2D -> ReLU -> MaxPooling2D (minicnn/fusion.py)
    "bn_relu_pool_forward", "bn_relu_pool_backward",  # BatchNormalization -> ReLU -> MaxPooling2D (same)
    "bn_add_relu_forward", "bn_add_relu_backward",  # BatchNormalization -> Add(skip) -> ReLU (same)
    "adam_step",  # Adam's update of every param (minicnn.optimizers.Adam)
    "rmsprop_step",  # RMSprop's update of every param (minicnn.optimizers.RMSprop)
    "affine_transform_forward", "affine_transform_backward",  # RandomTranslation, RandomRotation, RandomZoom
)


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
    N, OH, OW, F = dy.shape
    dy2 = dy.reshape(N * OH * OW, F)
    dW = (cols.T @ dy2).reshape(W.shape)
    db = dy2.sum(axis=0)
    if not need_dx:
        return None, dW, db
    return conv2d_input_gradient(dy, W, xpad_shape, stride, pads), dW, db


def conv2d_input_gradient(dy, W, xpad_shape, stride, pads):
    """conv2d_backward's dx alone, which needs no input: dy: (N, OH, OW, F), W: (KH, KW, C, F),
    xpad_shape: (N, Hp, Wp, C) the padded input's shape -> dx: (N, Hp - top - bottom, Wp - left - right, C).

    dx = col2im(dy @ W^T): each output pixel sends its gradient back through W to the window it
    read. Conv2DTranspose's forward is this function, with its input in the place of dy.
    """
    KH, KW, C, F = W.shape
    N, OH, OW, _ = dy.shape
    dcols = (dy.reshape(N * OH * OW, F) @ W.reshape(KH * KW * C, F).T).reshape(N, OH, OW, KH, KW, C)
    return unpad_nhwc(scatter_windows(dcols, xpad_shape, stride), pads)


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


def avgpool_forward(x, pool, stride, pads):
    """Average pooling. x: (N, H, W, C), pool: (KH, KW), stride: (SH, SW),
    pads: (top, bottom, left, right) -> y: (N, OH, OW, C), ctx for avgpool_backward.

    y[n, i, j, c] = mean of the window's cells that lie inside x: "same" padding adds zeros
    that are not counted (TensorFlow's rule), so an edge window averages fewer cells.
    """
    KH, KW = pool
    xp = array_module(x)
    win = windows(pad_nhwc(x, pads), KH, KW, stride)  # (N, OH, OW, KH, KW, C)
    inside = pad_nhwc(xp.ones((1, x.shape[1], x.shape[2], 1), dtype=x.dtype), pads)
    count = windows(inside, KH, KW, stride).sum(axis=(3, 4))  # (1, OH, OW, 1): real cells per window
    y = win.sum(axis=(3, 4)) / count
    return y, (count, x.shape, pool, stride, pads)


def avgpool_backward(dy, ctx):
    """Gradient of avgpool_forward. dy: (N, OH, OW, C) -> dx: (N, H, W, C).

    Each cell of a window had weight 1 / count in its mean, so each gets dy / count back;
    overlapping windows add up, and the padding's share is cropped off.
    """
    count, x_shape, (KH, KW), stride, pads = ctx
    N, OH, OW, C = dy.shape
    share = array_module(dy).broadcast_to((dy / count)[:, :, :, None, None, :], (N, OH, OW, KH, KW, C))
    xpad_shape = (N, x_shape[1] + pads[0] + pads[1], x_shape[2] + pads[2] + pads[3], C)
    return unpad_nhwc(scatter_windows(share, xpad_shape, stride), pads)


def batchnorm_moments(x):
    """The batch's statistics per channel: x: (N, ..., C) -> mean, var: (C,), the variance biased
    (divided by the M = N H W values of a channel, not M - 1), as Keras normalises with."""
    axes = tuple(range(x.ndim - 1))
    return x.mean(axis=axes), x.var(axis=axes)


def batchnorm_forward(x, gamma, beta, mean, var, epsilon):
    """Batch normalization over the last axis. x: (N, ..., C); gamma, beta, mean, var: (C,)
    (gamma or beta may be None: scale 1, offset 0) -> y: same shape as x, ctx for the backward.

    y = gamma * (x - mean) / sqrt(var + epsilon) + beta, with the batch's own mean and
    (biased) variance in training, the moving ones in inference: the caller picks.
    """
    xp = array_module(x)
    inv_std = 1 / xp.sqrt(var + epsilon)
    xhat = (x - mean) * inv_std
    y = xhat if gamma is None else xhat * gamma
    if beta is not None:
        y = y + beta
    return y, (xhat, inv_std)


def batchnorm_backward(dy, ctx, gamma, batch_stats):
    """Gradients of batchnorm_forward. dy: (N, ..., C) -> dx (same shape), dgamma, dbeta: (C,).

    dgamma = sum dy * xhat;  dbeta = sum dy  (sums over every axis but C, M values each).
    With batch statistics the mean and variance depend on x too, which adds two terms:
    dx = gamma * inv_std / M * (M dy - sum dy - xhat * sum(dy * xhat));
    with fixed (moving) statistics, dx = gamma * inv_std * dy.
    """
    xhat, inv_std = ctx
    axes = tuple(range(dy.ndim - 1))
    dbeta = dy.sum(axis=axes)
    dgamma = (dy * xhat).sum(axis=axes)
    return batchnorm_input_gradient(dy, xhat, inv_std, gamma, dbeta, dgamma, batch_stats), dgamma, dbeta


def batchnorm_input_gradient(dy, xhat, inv_std, gamma, dbeta, dgamma, batch_stats):
    """batchnorm_backward's dx from its two sums. dy, xhat: (N, ..., C); inv_std, gamma (or None),
    dbeta, dgamma: (C,) -> dx: same shape as dy. (The GPU's twin makes the sums its own way and
    takes dx from here: minicnn/kernels/cupy_kernels.py.)"""
    scale = inv_std if gamma is None else gamma * inv_std
    if not batch_stats:
        return dy * scale
    M = dy.size // dy.shape[-1]
    return (scale / M) * (M * dy - dbeta - xhat * dgamma)


def relu_forward(x):
    """y = max(x, 0), elementwise, any shape: activations.relu, the readable one, which lives with
    the other activations; it is part of the contract because the Numba backend compiles it."""
    return activations.relu(x)


relu_backward = activations.relu_backward


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


def bn_relu_pool_forward(z, gamma, beta, mean, var, epsilon, pool):
    """BatchNormalization -> ReLU -> MaxPooling2D (pool x pool, stride pool, valid) as one step:
    what a Conv2D -> BatchNormalization -> ReLU -> MaxPooling2D block runs after its convolution
    in training (minicnn/fusion.py), with the batch's mean and var (batchnorm_moments of z).

    z: (N, OH, OW, C) -> y: (N, OH // pool, OW // pool, C), ctx for the backward. Here, the
    composition of the three kernels; the fast twin writes neither the normalized maps nor
    their ReLU, only the pooled maximum and where it came from.
    """
    h, bn_ctx = batchnorm_forward(z, gamma, beta, mean, var, epsilon)
    y, pool_ctx = maxpool_forward(relu_forward(h), (pool, pool), (pool, pool), (0, 0, 0, 0))
    return y, (bn_ctx, y, pool_ctx)


def bn_relu_pool_backward(dy, ctx, gamma, batch_stats):
    """Gradients of bn_relu_pool_forward: dy: (N, PH, PW, C) -> dz: (N, OH, OW, C), dgamma, dbeta.

    dy goes to each window's maximum where it was positive (as in conv_relu_pool_backward), and
    batchnorm_backward takes it from there: with batch statistics every z gets a gradient, even
    those no window read (the mean and variance depend on them).
    """
    bn_ctx, y, pool_ctx = ctx
    dh = maxpool_backward(dy * (y > 0), pool_ctx)
    return batchnorm_backward(dh, bn_ctx, gamma, batch_stats)


def bn_add_relu_forward(z, skip, gamma, beta, mean, var, epsilon):
    """BatchNormalization -> Add (a skip connection) -> ReLU as one step: the end of a residual
    block, y = relu(batchnorm(z) + skip), which a graph runs in one step (minicnn/fusion.py).

    z, skip: (N, ..., C); gamma, beta (or None), mean, var: (C,) -> y: same shape as z, ctx for
    the backward. Here, the composition of the kernels above; the fast twin makes y in one pass,
    storing neither the normalized maps nor their sum with skip.
    """
    h, bn_ctx = batchnorm_forward(z, gamma, beta, mean, var, epsilon)
    y = relu_forward(h + skip)
    return y, (bn_ctx, y)


def bn_add_relu_backward(dy, ctx, gamma, batch_stats):
    """Gradients of bn_add_relu_forward: dy: (N, ..., C) -> dz, dskip (dy's shape), dgamma, dbeta: (C,).

    ReLU lets dy through where y > 0: that is the gradient of the sum, so of skip and of the
    normalization's output alike; batchnorm_backward takes it to z.
    """
    bn_ctx, y = ctx
    g = relu_backward(y, dy)
    dz, dgamma, dbeta = batchnorm_backward(g, bn_ctx, gamma, batch_stats)
    return dz, g, dgamma, dbeta


def adam_step(params, grads, slots, alpha, c1, c2, eps, commit, decay=None):
    """Keras's Adam update for every param, as optimizers.Adam.update writes it:
    m += (g - m) c1;  v += (g g - v) c2;  p -= (m alpha) / (sqrt(v) + eps),
    with c1 = 1 - beta_1, c2 = 1 - beta_2 and alpha the bias-corrected learning rate.
    decay = (weight_decay, learning_rate), for AdamW: p -= p * weight_decay * learning_rate
    first, as Keras's Optimizer applies weight decay before the update.

    params, grads: lists of arrays of equal shapes; slots: one {"m", "v"} per param.
    commit=False only checks that every new value is finite (returns False if not, changing
    nothing); commit=True applies the step. Check, then apply: the step is all or nothing.
    """
    for p, g, s in zip(params, grads, slots):
        xp = array_module(p)
        decayed = p if decay is None else p - p * decay[0] * decay[1]
        m = s["m"] + (g - s["m"]) * c1
        v = s["v"] + (g * g - s["v"]) * c2
        new = decayed - (m * alpha) / (xp.sqrt(v) + eps)
        if commit:
            s["m"][...], s["v"][...], p[...] = m, v, new
        elif not (xp.isfinite(m).all() and xp.isfinite(v).all() and xp.isfinite(new).all()):
            return False
    return True


def rmsprop_step(params, grads, slots, lr, rho, c, eps, momentum, commit, decay=None):
    """Keras's RMSprop update for every param, as optimizers.RMSprop.update writes it:
    v = rho v + c g g  (c = 1 - rho);  step = (lr g) / sqrt(v + eps);  p -= step.
    A slot "a" makes it centered: a = rho a + c g, and the root is of v - a a + eps. A slot "m"
    adds momentum: m = momentum m + step, p -= m. decay = (weight_decay, learning_rate):
    p -= p * weight_decay * learning_rate first, as in adam_step.

    params, grads: lists of arrays of any shape, each grad its param's; slots: one {"v"} (and "m",
    "a") per param.
    commit=False only checks that every new value is finite (returns False if not, changing
    nothing); commit=True applies the step. Check, then apply: the step is all or nothing.
    """
    for p, g, s in zip(params, grads, slots):
        xp = array_module(p)
        new = {"v": rho * s["v"] + c * (g * g)}
        if "a" in s:
            new["a"] = rho * s["a"] + c * g
            denominator = new["v"] - new["a"] * new["a"] + eps
        else:
            denominator = new["v"] + eps
        step = lr * g / xp.sqrt(denominator)
        if "m" in s:
            new["m"] = step = momentum * s["m"] + step
        new_p = (p if decay is None else p - p * decay[0] * decay[1]) - step
        if commit:
            for k, value in new.items():
                s[k][...] = value
            p[...] = new_p
        elif not all(xp.isfinite(a).all() for a in (new_p, *new.values())):
            return False
    return True


# -- Augmentation: each image resampled through an affine map, as TensorFlow samples it --------------
def map_coordinate(c, size, fill_mode):
    """Where an input coordinate c (an array of reals) reads in an axis of `size` pixels, by
    TensorFlow's rules (ImageProjectiveTransformV3): "reflect" mirrors [abcd] to [dcba|abcd|dcba],
    "wrap" repeats it [abcd|abcd|abcd], "nearest" stops at the edge; each is then clamped to
    [0, size - 1]. "constant" leaves c alone: the reads outside the image get fill_value."""
    xp = array_module(c)
    if fill_mode == "constant":
        return c
    if fill_mode == "nearest" or size <= 1:
        return xp.clip(c, 0, size - 1)
    if fill_mode == "reflect":
        period = 2 * size
        low = c + period * xp.trunc(-c / period)  # into (-2 size, 0], for c < 0
        low = xp.where(low < -size, low + period, -low - 1)
        high = c - period * xp.trunc(c / period)  # into [0, 2 size), for c > size - 1
        high = xp.where(high >= size, period - high - 1, high)
    else:  # "wrap", with TensorFlow's own arithmetic (it divides by size - 1)
        low = c + size * (xp.trunc(-c / (size - 1)) + 1)
        high = c - size * xp.trunc(c / (size - 1))
    c = xp.where(c < 0, low, xp.where(c > size - 1, high, c))
    return xp.clip(c, 0, size - 1)


def affine_transform_forward(x, transforms, interpolation="bilinear", fill_mode="reflect", fill_value=0.0):
    """Resample each image through its own map. x: (N, H, W, C), transforms: (N, 8) -> y: same shape.

    A transform [a0, a1, a2, b0, b1, b2, c0, c1] is TensorFlow's (and Keras's): output pixel (i, j)
    (row, column) reads the input at column u = (a0 j + a1 i + a2) / k and row v = (b0 j + b1 i + b2) / k,
    with k = c0 j + c1 i + 1. The coordinates go through map_coordinate, then
    "bilinear" mixes the four pixels around (v, u), each weighted by its nearness,
        y = (1 - s)(1 - t) x[v0, u0] + (1 - s) t x[v0, u0 + 1] + s (1 - t) x[v0 + 1, u0] + s t x[v0 + 1, u0 + 1]
    with v0 = floor(v), s = v - v0, u0 = floor(u), t = u - u0; "nearest" takes the pixel at
    (round(v), round(u)). A read outside the image gives fill_value. ctx keeps the pixels read
    and their weights: the backward sends each output's gradient back along them.
    """
    xp = array_module(x)
    N, H, W, _ = x.shape
    t = xp.asarray(transforms, dtype=xp.float32).reshape(N, 8, 1, 1)
    i = xp.arange(H, dtype=xp.float32).reshape(1, H, 1)  # output rows
    j = xp.arange(W, dtype=xp.float32).reshape(1, 1, W)  # output columns
    k = t[:, 6] * j + t[:, 7] * i + 1
    u = map_coordinate((t[:, 0] * j + t[:, 1] * i + t[:, 2]) / k, W, fill_mode)  # (N, H, W): input columns
    v = map_coordinate((t[:, 3] * j + t[:, 4] * i + t[:, 5]) / k, H, fill_mode)  # input rows
    if interpolation == "nearest":  # round half away from zero, as C's std::round
        corners = [(xp.sign(v) * xp.floor(xp.abs(v) + 0.5), xp.sign(u) * xp.floor(xp.abs(u) + 0.5),
                    xp.ones_like(u))]
    else:
        v0, u0 = xp.floor(v), xp.floor(u)
        s, t_ = v - v0, u - u0
        corners = [(v0, u0, (1 - s) * (1 - t_)), (v0, u0 + 1, (1 - s) * t_),
                   (v0 + 1, u0, s * (1 - t_)), (v0 + 1, u0 + 1, s * t_)]
    n = xp.arange(N).reshape(N, 1, 1)
    y = xp.zeros(x.shape, dtype=x.dtype)
    reads = []
    for rows, cols, weight in corners:
        inside = (rows >= 0) & (rows < H) & (cols >= 0) & (cols < W)
        r, c = xp.clip(rows, 0, H - 1).astype(xp.intp), xp.clip(cols, 0, W - 1).astype(xp.intp)
        pixel = xp.where(inside[..., None], x[n, r, c], x.dtype.type(fill_value))
        y += (weight[..., None] * pixel).astype(x.dtype)
        reads.append((r, c, (weight * inside).astype(x.dtype)))
    return y, (x.shape, reads)


def affine_transform_backward(dy, ctx):
    """Gradient of affine_transform_forward: dy: (N, H, W, C) -> dx. The forward is linear in x,
    so its backward is the adjoint: each output's gradient goes back to the pixels it read, times
    the weight it read them with (reads of the fill value send nothing back)."""
    xp = array_module(dy)
    shape, reads = ctx
    dx = xp.zeros(shape, dtype=dy.dtype)
    n = xp.broadcast_to(xp.arange(shape[0]).reshape(-1, 1, 1), reads[0][0].shape)
    for r, c, weight in reads:
        xp.add.at(dx, (n, r, c), weight[..., None] * dy)  # add.at: several outputs may read one pixel
    return dx
