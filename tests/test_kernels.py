"""Each backend's kernels against independent loops (minicnn/kernels/naive.py), and the Numba kernels
against the readable reference on a grid of shapes, in float32 and float64."""
import numpy as np
import pytest
from toy import load_script

from minicnn.kernels import blocked, naive, numba_kernels, reference
from minicnn.layers import Conv2D, MaxPooling2D

GRID = [  # N, H, W, C, F, kernel, strides, padding
    (1, 5, 5, 1, 2, (3, 3), (1, 1), "valid"),
    (2, 7, 6, 1, 4, (3, 3), (2, 2), "same"),
    (3, 6, 7, 3, 2, (2, 3), (1, 2), "same"),
    (2, 9, 8, 8, 5, (3, 3), (1, 1), "valid"),  # im2col path
    (1, 4, 4, 16, 3, (1, 1), (1, 1), "valid"),
    (2, 8, 5, 6, 3, (3, 3), (2, 2), "same"),  # im2col path, odd extra padding
    (1, 3, 3, 2, 2, (3, 3), (1, 1), "valid"),  # output 1x1
    (2, 9, 11, 2, 5, (3, 3), (1, 1), "same"),  # direct, rows of 11: four pixels a statement, three left
    (1, 10, 13, 3, 4, (3, 3), (2, 2), "valid"),  # direct, stride 2, rows of 6 (window 27)
    (2, 9, 7, 5, 16, (3, 3), (1, 1), "same"),  # blocked: rows of 7, four pixels a block, three left; dx by col2im
    (1, 6, 10, 16, 16, (3, 3), (1, 1), "same"),  # blocked, dx blocked too
    (2, 8, 8, 32, 16, (3, 3), (1, 1), "valid"),  # blocked; dx by col2im from a valid convolution
    (1, 7, 6, 32, 16, (5, 3), (1, 1), "same"),  # blocked, a 5 x 3 window; channels in blocks of 4
    (2, 5, 6, 6, 16, (3, 3), (1, 1), "valid"),  # blocked; channels 4 + 2 in the weight gradient
    (2, 7, 9, 16, 1, (3, 3), (1, 1), "same"),  # few filters: one filter, window rows cut at both edges
    (1, 9, 8, 5, 3, (5, 3), (2, 2), "same"),  # few filters, stride 2
    (2, 7, 9, 5, 3, (1, 1), (2, 2), "same"),  # 1x1 matrix product, stride 2, odd sizes: dx zero off the grid
    (1, 8, 6, 40, 33, (1, 1), (2, 2), "valid"),  # 1x1, C and F past the direct loops' window
    (3, 5, 4, 2, 1, (1, 1), (1, 2), "valid"),  # 1x1, strides unequal, one filter
    (2, 6, 6, 3, 7, (1, 1), (1, 1), "same"),  # 1x1, stride 1: dx needs no zeros
    (2, 20, 18, 40, 33, (1, 1), (1, 1), "valid"),  # 1x1, 720 pixels: chunks of 256 rows, the last one short
]


def plan(shape, kernel, strides, padding):
    layer = Conv2D(1, kernel, strides=strides, padding=padding)
    layer.build((None, *shape[1:]))
    return layer.pads


@pytest.mark.parametrize("N,H,W,C,F,kernel,strides,padding", GRID)
def test_conv_forward_matches_naive_loops(each_backend, N, H, W, C, F, kernel, strides, padding, rng):
    x = rng.standard_normal((N, H, W, C))
    layer = Conv2D(F, kernel, strides=strides, padding=padding, dtype="float64")
    layer.build((None, H, W, C))
    layer.params["b"][:] = rng.standard_normal(F)
    Wt, b = layer.params["W"].copy(), layer.params["b"].copy()  # the weights as set, before any forward
    np.testing.assert_allclose(layer.forward(x), naive.conv(x, Wt, b, strides, padding), atol=1e-12)


@pytest.mark.parametrize("pool,strides,padding,shape", [
    ((2, 2), (2, 2), "valid", (2, 6, 7, 3)), ((3, 3), (1, 1), "valid", (1, 5, 6, 2)),
    ((3, 3), (2, 2), "same", (2, 7, 6, 2)), ((2, 2), (2, 2), "same", (1, 5, 5, 1)),
])
def test_maxpool_matches_naive_loops_with_ties(each_backend, pool, strides, padding, shape, rng):
    x = rng.integers(0, 3, shape).astype(np.float64)  # many ties
    layer = MaxPooling2D(pool, strides=strides, padding=padding, dtype="float64")
    y = layer.forward(x, training=True)
    y_ref, route = naive.maxpool(x, pool, strides, padding)
    np.testing.assert_array_equal(y, y_ref)
    dy = rng.standard_normal(y.shape)
    np.testing.assert_allclose(layer.backward(dy), naive.maxpool_backward(dy, route, shape), atol=1e-12)


def assert_numba_conv_matches_reference(x, Wt, b, strides, pads, tol):
    """numba_kernels' conv2d forward and backward against the reference on x: (N, H, W, C), Wt:
    (KH, KW, C, F), b: (F,); dtypes and shapes kept. Returns (ctx, ctx_ref, dy) for more checks."""
    y_ref, ctx_ref = reference.conv2d_forward(x, Wt, b, strides, pads)
    y, ctx = numba_kernels.conv2d_forward(x, Wt, b, strides, pads)
    assert y.dtype == x.dtype and y.shape == y_ref.shape
    np.testing.assert_allclose(y, y_ref, rtol=tol, atol=tol)
    dy = np.random.default_rng(1).standard_normal(y.shape).astype(x.dtype)
    for got, want in zip(numba_kernels.conv2d_backward(dy, ctx, Wt), reference.conv2d_backward(dy, ctx_ref, Wt)):
        assert got.dtype == x.dtype and got.shape == want.shape
        np.testing.assert_allclose(got, want, rtol=tol, atol=tol * np.abs(want).max())
    return ctx, ctx_ref, dy


@pytest.mark.parametrize("dtype,tol", [("float32", 1e-5), ("float64", 1e-12)])
@pytest.mark.parametrize("N,H,W,C,F,kernel,strides,padding", GRID)
def test_numba_conv_matches_reference(dtype, tol, N, H, W, C, F, kernel, strides, padding, rng):
    x = rng.standard_normal((N, H, W, C)).astype(dtype)
    Wt = rng.standard_normal((*kernel, C, F)).astype(dtype)
    b = rng.standard_normal(F).astype(dtype)
    ctx, ctx_ref, dy = assert_numba_conv_matches_reference(x, Wt, b, strides, plan(x.shape, kernel, strides, padding),
                                                           tol)
    dx, dW, _ = numba_kernels.conv2d_backward(dy, ctx, Wt, need_dx=False)
    assert dx is None and np.allclose(dW, reference.conv2d_backward(dy, ctx_ref, Wt)[1], rtol=tol, atol=tol * 10)


FEW_GRID = [  # N, H, W, C, F, kernel, strides, pads (top, bottom, left, right): F <= FEW_FILTERS, window > 32
    (2, 7, 9, 5, 1, (3, 3), (1, 1), (1, 1, 1, 1)),  # same
    (3, 8, 7, 16, 2, (3, 3), (1, 1), (0, 0, 0, 0)),  # valid
    (1, 9, 11, 16, 3, (5, 3), (2, 2), (2, 2, 0, 1)),  # same, stride 2: one more column on the right
    (2, 10, 7, 5, 4, (5, 3), (1, 2), (1, 3, 2, 0)),  # asymmetric, wider than the kernel on the left
    (1, 5, 5, 16, 1, (3, 3), (2, 2), (0, 0, 0, 0)),  # batch 1, output 2 x 2
    (4, 6, 13, 16, 4, (3, 3), (2, 1), (1, 1, 1, 1)),
    (1, 3, 3, 5, 2, (5, 3), (1, 1), (2, 2, 1, 1)),  # every window hangs over an edge
]


@pytest.mark.parametrize("forward_up_to", ["FEW_FILTERS_FORWARD", "FEW_FILTERS"])
@pytest.mark.parametrize("dtype,tol", [("float32", 1e-5), ("float64", 1e-12)])
@pytest.mark.parametrize("N,H,W,C,F,kernel,strides,pads", FEW_GRID)
def test_numba_conv_with_few_filters_matches_reference(monkeypatch, forward_up_to, dtype, tol, N, H, W, C, F, kernel,
                                                       strides, pads, rng):
    """The loops along a window row (few filters, a larger window: the forward pass up to
    FEW_FILTERS_FORWARD, the gradients up to FEW_FILTERS) against the reference: any stride and
    padding, the window rows cut where they hang over the edges; the fused step too. Then with the
    forward loops for every F of the grid."""
    assert F <= numba_kernels.FEW_FILTERS and kernel[0] * kernel[1] * C > numba_kernels.DIRECT_MAX_WINDOW
    monkeypatch.setattr(numba_kernels, "FEW_FILTERS_FORWARD", getattr(numba_kernels, forward_up_to))
    x = rng.standard_normal((N, H, W, C)).astype(dtype)
    Wt = rng.standard_normal((*kernel, C, F)).astype(dtype)
    b = rng.standard_normal(F).astype(dtype)
    y_ref, ctx_ref = reference.conv2d_forward(x, Wt, b, strides, pads)
    y, ctx = numba_kernels.conv2d_forward(x, Wt, b, strides, pads)
    assert ctx[0] == ("few" if F <= numba_kernels.FEW_FILTERS_FORWARD else "gemm")
    assert y.dtype == np.dtype(dtype) and y.shape == y_ref.shape
    np.testing.assert_allclose(y, y_ref, rtol=tol, atol=tol)
    dy = rng.standard_normal(y.shape).astype(dtype)
    want = reference.conv2d_backward(dy, ctx_ref, Wt)
    for got, w in zip(numba_kernels.conv2d_backward(dy, ctx, Wt), want):
        assert got.dtype == np.dtype(dtype) and got.shape == w.shape
        np.testing.assert_allclose(got, w, rtol=tol, atol=tol * np.abs(w).max())
    dx, dW, _ = numba_kernels.conv2d_backward(dy, ctx, Wt, need_dx=False)
    assert dx is None
    np.testing.assert_allclose(dW, want[1], rtol=tol, atol=tol * np.abs(want[1]).max())
    if strides == (1, 1):
        p_ref, c_ref = reference.conv_relu_pool_forward(x, Wt, b, 2, pads)
        p, c = numba_kernels.conv_relu_pool_forward(x, Wt, b, 2, pads)
        assert c[0] == ("few" if F <= numba_kernels.FEW_FILTERS_FORWARD else "gemm")
        np.testing.assert_allclose(p, p_ref, rtol=tol, atol=tol)
        dp = rng.standard_normal(p.shape).astype(dtype)
        for got, w in zip(numba_kernels.conv_relu_pool_backward(dp, c, Wt), reference.conv_relu_pool_backward(dp, c_ref, Wt)):
            np.testing.assert_allclose(got, w, rtol=tol, atol=tol * np.abs(w).max())


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("pool,strides,padding,shape", [
    ((2, 2), (2, 2), "valid", (1, 6, 6, 4)), ((2, 2), (2, 2), "valid", (3, 7, 5, 2)),
    ((3, 3), (1, 1), "valid", (2, 6, 6, 3)), ((3, 2), (2, 2), "same", (2, 7, 8, 2)),
    ((2, 2), (1, 1), "same", (1, 4, 5, 1)),
])
def test_numba_maxpool_matches_reference(dtype, pool, strides, padding, shape, rng):
    for x in (rng.standard_normal(shape).astype(dtype), rng.integers(0, 2, shape).astype(dtype)):  # and ties
        pads = plan(shape, pool, strides, padding)
        y_ref, ctx_ref = reference.maxpool_forward(x, pool, strides, pads)
        y, ctx = numba_kernels.maxpool_forward(x, pool, strides, pads)
        np.testing.assert_array_equal(y, y_ref)
        dy = rng.standard_normal(y.shape).astype(dtype)
        got, want = numba_kernels.maxpool_backward(dy, ctx), reference.maxpool_backward(dy, ctx_ref)
        assert got.dtype == np.dtype(dtype)
        np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_numba_relu_matches_reference(dtype, rng):
    x = rng.standard_normal((3, 5, 4, 2)).astype(dtype)
    x[0, 0, 0, 0] = 0  # the kink
    x[0, 0, 0, 1] = np.nan  # non-finite values must stay visible, exactly as in the reference
    x[0, 0, 1, 0] = -np.inf
    y = numba_kernels.relu_forward(x)
    np.testing.assert_array_equal(y, reference.relu_forward(x))
    assert np.isnan(y[0, 0, 0, 1])
    dy = rng.standard_normal(x.shape).astype(dtype)
    dy[0, 0, 1, 0] = np.nan  # at a cell where relu is off: dy * 0 is still NaN
    dy[1, 0, 0, 0] = np.inf
    got = numba_kernels.relu_backward(y, dy)
    assert got.dtype == np.dtype(dtype) and got[0, 0, 0, 0] == 0
    with np.errstate(invalid="ignore"):  # the reference's inf * 0 = NaN is the point here
        np.testing.assert_array_equal(got, reference.relu_backward(y, dy))


@pytest.mark.parametrize("chunk_rows", [1, 7, 40])
@pytest.mark.parametrize("N,H,W,C,F,kernel,strides,padding", [g for g in GRID if g[1] * g[2] * g[3] > 32][:3])
def test_numba_conv_in_chunks_of_images_matches_reference(monkeypatch, chunk_rows, N, H, W, C, F, kernel, strides,
                                                           padding, rng):
    """The im2col path works through the batch in chunks of images (CHUNK_ROWS rows of cols each):
    many chunks, an uneven last one, one image per chunk; the fused step too."""
    monkeypatch.setattr(numba_kernels, "CHUNK_ROWS", chunk_rows)
    N = N + 3
    x = rng.standard_normal((N, H, W, C))
    Wt, b = rng.standard_normal((*kernel, C, F)), rng.standard_normal(F)
    pads = plan(x.shape, kernel, strides, padding)
    y_ref, ctx_ref = reference.conv2d_forward(x, Wt, b, strides, pads)
    y, ctx = numba_kernels.conv2d_forward(x, Wt, b, strides, pads)
    np.testing.assert_allclose(y, y_ref, rtol=1e-12, atol=1e-12)
    dy = rng.standard_normal(y.shape)
    for got, want in zip(numba_kernels.conv2d_backward(dy, ctx, Wt), reference.conv2d_backward(dy, ctx_ref, Wt)):
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12 * np.abs(want).max())
    if strides == (1, 1):
        p_ref, c_ref = reference.conv_relu_pool_forward(x, Wt, b, 2, pads)
        p, c = numba_kernels.conv_relu_pool_forward(x, Wt, b, 2, pads)
        np.testing.assert_allclose(p, p_ref, rtol=1e-12, atol=1e-12)
        dp = rng.standard_normal(p.shape)
        for got, want in zip(numba_kernels.conv_relu_pool_backward(dp, c, Wt),
                             reference.conv_relu_pool_backward(dp, c_ref, Wt)):
            np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12 * np.abs(want).max())


@pytest.mark.parametrize("dtype,tol", [("float32", 2e-5), ("float64", 1e-12)])
@pytest.mark.parametrize("shape", [(1, 1, 1, 4), (3, 5, 7, 3), (2, 6), (1, 9, 9, 1), (4, 3, 3, 16)], ids=str)
def test_numba_batchnorm_matches_reference(dtype, tol, shape, rng):
    x = (rng.standard_normal(shape) * 3 + 5).astype(dtype)  # a mean far from 0: E[x^2] - mean^2 must hold up
    gamma, beta = rng.standard_normal(shape[-1]).astype(dtype), rng.standard_normal(shape[-1]).astype(dtype)
    eps = np.dtype(dtype).type(1e-3)
    for g, b_ in ((gamma, beta), (None, None)):
        moments = numba_kernels.batchnorm_moments(x)
        for got, want in zip(moments, reference.batchnorm_moments(x)):
            assert got.dtype == np.dtype(dtype)
            np.testing.assert_allclose(got, want, rtol=tol, atol=tol * np.abs(x).max() ** 2)
        y_ref, ctx_ref = reference.batchnorm_forward(x, g, b_, *reference.batchnorm_moments(x), eps)
        y, ctx = numba_kernels.batchnorm_forward(x, g, b_, *reference.batchnorm_moments(x), eps)
        assert y.dtype == np.dtype(dtype)
        np.testing.assert_allclose(y, y_ref, rtol=tol, atol=tol)
        dy = rng.standard_normal(shape).astype(dtype)
        for batch_stats in (True, False):
            got = numba_kernels.batchnorm_backward(dy, ctx, g, batch_stats)
            want = reference.batchnorm_backward(dy, ctx_ref, g, batch_stats)
            for a, w in zip(got, want):
                assert a.dtype == np.dtype(dtype)
                np.testing.assert_allclose(a, w, rtol=tol, atol=tol * max(1, np.abs(w).max()))


@pytest.mark.parametrize("pads,stride", [((1, 1, 1, 1), (1, 1)), ((2, 0, 1, 3), (1, 1)), ((0, 1, 0, 1), (2, 2)),
                                         ((1, 2, 2, 1), (2, 1))], ids=str)
def test_im2col_reads_the_padding_as_zeros_and_col2im_is_its_adjoint(pads, stride, rng):
    """numba_kernels.im2col never pads x: its windows, padding read as zeros, are those of the padded
    copy (reference.windows); col2im, which drops what falls on the padding, is its adjoint:
    <im2col(x), D> = <x, col2im(D)> for every x and D."""
    x = rng.standard_normal((2, 5, 6, 3))
    KH, KW = 3, 2
    xpad = reference.pad_nhwc(x, pads)
    OH, OW = (xpad.shape[1] - KH) // stride[0] + 1, (xpad.shape[2] - KW) // stride[1] + 1
    cols = np.full((2 * OH * OW, KH * KW * 3), np.nan)
    numba_kernels.im2col(x, pads[0], pads[2], KH, KW, *stride, OH, OW, cols)
    np.testing.assert_array_equal(cols, reference.windows(xpad, KH, KW, stride).reshape(2 * OH * OW, -1))
    D = rng.standard_normal(cols.shape)
    dx = np.zeros_like(x)
    numba_kernels.col2im(D, pads[0], pads[2], KH, KW, *stride, OH, OW, dx)
    np.testing.assert_allclose((cols * D).sum(), (x * dx).sum(), rtol=1e-12)


def test_blocked_blocks_are_what_their_generator_writes():
    """The end of blocked.py is generated (python -m minicnn.kernels.blocked): an edit by hand, or a
    generator changed without writing the file again, fails here."""
    assert blocked.written_blocks() == blocked.block_source()


def test_conv_paths_benchmark_puts_the_choice_back(capsys):
    """benchmarks/conv_paths.py on tiny shapes, one round: it reports the path taken, and the
    engine's choice (blocked.pays) is back in place after it forced the other path."""
    chosen = blocked.pays
    load_script("benchmarks/conv_paths.py").main(["--rounds", "1", "2,6,16,16,1", "2,6,16,16,2"])
    lines = capsys.readouterr().out.splitlines()
    assert lines[1].endswith("(blocked)") and lines[2].endswith("(not taken)")
    assert blocked.pays is chosen


@pytest.mark.parametrize("dtype,tol", [("float32", 1e-5), ("float64", 1e-12)])
@pytest.mark.parametrize("N,H,W,C,F,kernel,strides,padding", [
    (2, 8, 8, 16, 32, (3, 3), (1, 1), "valid"),  # two blocks of filters; dx blocked from a valid convolution
    (3, 7, 9, 16, 32, (3, 3), (2, 1), "same"),  # stride 2 down the columns (dx by col2im)
    (1, 6, 7, 3, 16, (5, 5), (1, 1), "same"),  # channels 3: no whole block of 4 in the weight gradient
    (2, 5, 9, 5, 48, (3, 3), (1, 1), "valid"),  # three blocks
])
def test_blocked_loops_match_reference_where_they_do_not_pay(monkeypatch, dtype, tol, N, H, W, C, F, kernel,
                                                             strides, padding, rng):
    """The loops take any multiple of 16 filters, any channels and any stride down the columns,
    though the engine sends them only 16 filters at stride 1 (blocked.pays): forced here, they
    match the reference."""
    monkeypatch.setattr(blocked, "pays", lambda C, F, SH, SW: F % blocked.BLOCK == 0 and SW == 1)
    x = rng.standard_normal((N, H, W, C)).astype(dtype)
    Wt = rng.standard_normal((*kernel, C, F)).astype(dtype)
    b = rng.standard_normal(F).astype(dtype)
    ctx, _, _ = assert_numba_conv_matches_reference(x, Wt, b, strides, plan(x.shape, kernel, strides, padding), tol)
    assert ctx[0] == "blocked"


@pytest.mark.parametrize("dtype,tol", [("float32", 1e-5), ("float64", 1e-12)])
@pytest.mark.parametrize("N,H,W,C,kernel,strides,pads", [
    (2, 7, 9, 16, (3, 3), (1, 1), (2, 0, 1, 3)),  # asymmetric: two rows on top, three columns on the right
    (1, 6, 7, 16, (5, 3), (1, 1), (2, 2, 1, 1)),  # 5 x 3 'same', batch 1, odd width
    (3, 5, 11, 6, (3, 3), (1, 1), (0, 0, 0, 0)),  # 'valid': no edge columns; channels 4 + 2
    (2, 6, 5, 16, (3, 3), (1, 1), (3, 1, 0, 4)),  # pads wider than the window: dx from a cropped dy
    (1, 4, 2, 16, (5, 3), (1, 1), (2, 2, 1, 1)),  # x narrower than the window: every column an edge
    (2, 9, 13, 5, (3, 5), (2, 1), (1, 1, 2, 2)),  # stride 2 down the columns, a 3 x 5 window
])
def test_blocked_loops_read_the_padding_as_zeros(monkeypatch, dtype, tol, N, H, W, C, kernel, strides, pads, rng):
    """The blocked loops never pad x (nor dy for dx): the columns whose windows lie inside x go in
    blocks of 4 pixels, those at the edges one by one with the taps inside x, the rows at the top
    and bottom with fewer taps, and each tap of the weight gradient over the outputs that read
    inside x. Every edge case against the reference, which pads."""
    monkeypatch.setattr(blocked, "pays", lambda C, F, SH, SW: F % blocked.BLOCK == 0 and SW == 1)
    x = rng.standard_normal((N, H, W, C)).astype(dtype)
    Wt = rng.standard_normal((*kernel, C, 16)).astype(dtype)
    b = rng.standard_normal(16).astype(dtype)
    ctx, _, _ = assert_numba_conv_matches_reference(x, Wt, b, strides, pads, tol)
    assert ctx[0] == "blocked"
