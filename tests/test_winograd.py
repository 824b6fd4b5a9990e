"""Winograd F(2x2, 3x3) (minicnn/kernels/winograd.py) against the direct convolution: the
readable version and its compiled twin, forward and input gradient, on a grid of shapes (odd
and even sizes, padding same / valid / uneven, batch 1, one channel, one filter), in float64
(to round-off) and float32 (within float32's round-off of the output's scale)."""
import numpy as np
import pytest
from toy import load_script

from minicnn.kernels import numba_kernels, reference, winograd

# (N, H, W, C, F, pads (top, bottom, left, right))
GRID = [(1, 5, 5, 1, 1, (1, 1, 1, 1)), (2, 7, 6, 3, 5, (0, 0, 0, 0)), (3, 8, 9, 4, 2, (1, 1, 1, 1)),
        (1, 3, 3, 2, 3, (0, 0, 0, 0)), (2, 6, 7, 5, 4, (2, 0, 1, 2)), (1, 14, 14, 8, 16, (1, 1, 1, 1)),
        (2, 13, 13, 6, 4, (0, 0, 0, 0)), (1, 4, 11, 1, 7, (1, 1, 0, 0))]
TOL = {"float64": 1e-12, "float32": 3e-6}


def data(shape, dtype, seed=0):
    N, H, W, C, F, pads = shape
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((N, H, W, C)).astype(dtype)
    Wt = rng.standard_normal((3, 3, C, F)).astype(dtype)
    return x, Wt, rng.standard_normal(F).astype(dtype), pads


def close(got, want, dtype):
    assert got.shape == want.shape and got.dtype == want.dtype
    np.testing.assert_allclose(got, want, rtol=0, atol=TOL[dtype] * max(1.0, np.abs(want).max()))


def test_one_dimension_four_multiplies_give_the_two_outputs():
    """F(2, 3) in 1-D, as the module docstring writes it: A^T [(G g) * (B^T d)] is the 3-tap filter."""
    d, g = np.array([0.3, -1.2, 2.0, 0.7]), np.array([1.5, -0.4, 0.9])
    direct = np.array([d[0:3] @ g, d[1:4] @ g])
    np.testing.assert_allclose(winograd.AT @ ((winograd.G @ g) * (winograd.BT @ d)), direct, rtol=1e-14)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("shape", GRID, ids=str)
def test_forward_matches_the_direct_convolution(shape, dtype):
    x, Wt, b, pads = data(shape, dtype)
    want = reference.conv2d_forward(x, Wt, b, (1, 1), pads)[0]
    close(winograd.conv3x3_forward(x, Wt, b, pads), want, dtype)
    close(winograd.conv3x3_forward_compiled(x, Wt, b, pads), want, dtype)
    no_bias = reference.conv2d_forward(x, Wt, None, (1, 1), pads)[0]
    close(winograd.conv3x3_forward_compiled(x, Wt, None, pads), no_bias, dtype)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("shape", GRID, ids=str)
def test_input_gradient_is_a_convolution_with_the_flipped_filters(shape, dtype):
    x, Wt, b, pads = data(shape, dtype)
    y, ctx = reference.conv2d_forward(x, Wt, b, (1, 1), pads)
    dy = np.random.default_rng(1).standard_normal(y.shape).astype(dtype)
    want = reference.conv2d_backward(dy, ctx, Wt)[0]
    close(winograd.conv3x3_input_gradient(dy, Wt, x.shape, pads), want, dtype)
    assert winograd.flipped(Wt).shape == (3, 3, Wt.shape[3], Wt.shape[2])


def test_input_gradient_of_outputs_that_stop_short_of_the_edge():
    """Outputs computed only where a 2 x 2 pooling window reads them (the fused step's 10 of 11):
    the rows past them get no gradient, as from a dy that is zero there."""
    x, Wt, _, _ = data((2, 13, 13, 3, 4, None), "float64")
    pads = (0, 0, 0, 0)
    dy_full = np.random.default_rng(2).standard_normal((2, 11, 11, 4))
    dy_full[:, 10, :] = dy_full[:, :, 10] = 0
    ctx = reference.conv2d_forward(x, Wt, None, (1, 1), pads)[1]
    want = reference.conv2d_backward(dy_full, ctx, Wt)[0]
    close(winograd.conv3x3_input_gradient(np.ascontiguousarray(dy_full[:, :10, :10]), Wt, x.shape, pads), want,
          "float64")


def test_the_three_transforms_in_a_row_sum_each_window():
    """All-ones filters over an all-ones 4 x 4 tile: each of the 2 x 2 outputs is 9 (a 3 x 3
    window of ones), made from 16 products of transformed values."""
    U = winograd.filter_transform(np.ones((3, 3, 1, 1)))
    V = winograd.input_transform(winograd.input_tiles(np.ones((1, 4, 4, 1)), 1, 1))
    assert U.shape == (4, 4, 1, 1) and V.shape == (1, 1, 1, 4, 4, 1)
    np.testing.assert_array_equal(winograd.output_transform(np.einsum("ntuabc,abcf->ntuabf", V, U)),
                                  np.full((1, 1, 1, 2, 2, 1), 9.0))


@pytest.mark.parametrize("dtype,tol", [("float32", 1e-6), ("float64", 1e-14)])
def test_filter_transform_is_g_g_gt_for_every_filter(dtype, tol, rng):
    """The one product by kron(G, G) is G g G^T, filter by filter, as the paper writes it."""
    W = rng.standard_normal((3, 3, 5, 7)).astype(dtype)
    U = winograd.filter_transform(W)
    assert U.shape == (4, 4, 5, 7) and U.dtype == np.dtype(dtype)
    for c, f in [(0, 0), (2, 3), (4, 6)]:
        np.testing.assert_allclose(U[:, :, c, f], winograd.G @ W[:, :, c, f] @ winograd.G.T, rtol=tol, atol=tol)


@pytest.mark.parametrize("fn", [winograd.conv3x3_forward, winograd.conv3x3_forward_compiled])
def test_refuses_what_f2x2_3x3_cannot_compute(fn):
    x = np.zeros((1, 6, 6, 2))
    with pytest.raises(ValueError, match="3 x 3 convolutions of stride 1; got a kernel of 5 x 5"):
        fn(x, np.zeros((5, 5, 2, 1)), None, (0, 0, 0, 0))
    with pytest.raises(ValueError, match=r"with C = 3 \(the kernel's\), got shape \(1, 6, 6, 2\)"):
        fn(x, np.zeros((3, 3, 3, 1)), None, (0, 0, 0, 0))
    with pytest.raises(ValueError, match="the padded input is 2 x 6"):
        fn(np.zeros((1, 2, 6, 2)), np.zeros((3, 3, 2, 1)), None, (0, 0, 0, 0))
    with pytest.raises(ValueError, match="strides"):
        winograd._check(x, np.zeros((3, 3, 2, 1)), (2, 2))


POOLED = [g for g in GRID if min(g[1] + g[5][0] + g[5][1], g[2] + g[5][2] + g[5][3]) >= 4]  # a 2 x 2 window fits


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("shape", POOLED, ids=str)
def test_conv_relu_pool_by_tiles_that_are_the_pooling_windows(shape, dtype):
    """Conv -> ReLU -> MaxPooling2D(2) with each 2 x 2 output tile one pooling window: the
    readable version and the compiled one (with where each maximum was) against the reference's
    composition, and its backward pass from that position."""
    x, Wt, b, pads = data(shape, dtype)
    Wt[..., 0] = 0  # filter 0 sees only its bias: every window ties, and the first cell must win
    want, ctx = reference.conv_relu_pool_forward(x, Wt, b, 2, pads)
    close(winograd.conv3x3_relu_pool2(x, Wt, b, pads), want, dtype)
    y, arg = winograd.conv3x3_relu_pool2_compiled(x, Wt, b, pads)
    close(y, want, dtype)
    assert arg.dtype == np.int32 and (arg[..., 0] == 0).all()
    dy = np.random.default_rng(1).standard_normal(y.shape).astype(dtype)  # arg routes the gradient as the reference does
    ours = numba_kernels.conv_relu_pool_backward(dy, ("gemm", np.ascontiguousarray(x), y, arg, 2, pads), Wt)
    for got, ref in zip(ours, reference.conv_relu_pool_backward(dy, ctx, Wt)):
        close(got, ref, dtype)
    y0, _ = winograd.conv3x3_relu_pool2_compiled(x, Wt, None, pads)
    close(y0, reference.conv_relu_pool_forward(x, Wt, None, 2, pads)[0], dtype)


@pytest.mark.parametrize("shape", [(3, 9, 9, 4, 5, (0, 0, 0, 0)), (2, 8, 8, 4, 3, (1, 1, 1, 1)),
                                   (2, 7, 7, 4, 3, (1, 1, 1, 1)), (2, 8, 8, 3, 3, (1, 1, 1, 1))], ids=str)
def test_numba_backend_takes_winograd_where_it_pays(monkeypatch, shape):
    """The Numba convolution and fused step run Winograd for 3 x 3 windows of more than
    DIRECT_MAX_WINDOW values whose output has an even height and width (pooled: the windows
    read), im2col or the direct loops otherwise; the results and gradients are the reference's."""
    calls = []
    for name in ("conv3x3_forward_compiled", "conv3x3_relu_pool2_compiled"):
        real = getattr(winograd, name)
        monkeypatch.setattr(winograd, name, lambda *a, real=real, name=name: calls.append(name) or real(*a))
    x, Wt, b, pads = data(shape, "float64")
    OH, OW = x.shape[1] + pads[0] + pads[1] - 2, x.shape[2] + pads[2] + pads[3] - 2
    wide = 9 * x.shape[3] > numba_kernels.DIRECT_MAX_WINDOW
    y, ctx = numba_kernels.conv2d_forward(x, Wt, b, (1, 1), pads)
    y_ref, ctx_ref = reference.conv2d_forward(x, Wt, b, (1, 1), pads)
    assert calls == (["conv3x3_forward_compiled"] if wide and OH % 2 == 0 and OW % 2 == 0 else [])
    np.testing.assert_allclose(y, y_ref, rtol=1e-12, atol=1e-12)
    dy = np.random.default_rng(1).standard_normal(y.shape)
    for got, want in zip(numba_kernels.conv2d_backward(dy, ctx, Wt), reference.conv2d_backward(dy, ctx_ref, Wt)):
        np.testing.assert_allclose(got, want, rtol=1e-11, atol=1e-11)
    calls.clear()
    p, c = numba_kernels.conv_relu_pool_forward(x, Wt, b, 2, pads)
    p_ref, c_ref = reference.conv_relu_pool_forward(x, Wt, b, 2, pads)
    assert calls == (["conv3x3_relu_pool2_compiled"] if wide else [])  # pooled: the even part is read
    np.testing.assert_allclose(p, p_ref, rtol=1e-12, atol=1e-12)
    dp = np.random.default_rng(2).standard_normal(p.shape)
    for got, want in zip(numba_kernels.conv_relu_pool_backward(dp, c, Wt), reference.conv_relu_pool_backward(dp, c_ref, Wt)):
        np.testing.assert_allclose(got, want, rtol=1e-11, atol=1e-11)


def test_the_benchmark_times_the_same_layers_both_ways(monkeypatch):
    """benchmarks/winograd.py on a batch of 2, once: both methods give the same outputs (it checks),
    the multiply-adds it counts are 9 C F per output against 16 C F per tile, and the engine's
    choice of Winograd is back in place after it timed the im2col path."""
    bench = load_script("benchmarks/winograd.py")
    chosen = numba_kernels._winograd_pays
    row = bench.measure("recipe conv 2", (14, 14, 32), 64, (1, 1, 1, 1), batch=2, repeat=1)
    assert row["im2col_macs"] == 2 * 14 * 14 * 9 * 32 * 64 and row["winograd_macs"] == 16 * 2 * 7 * 7 * 32 * 64
    assert all(row[k] > 0 for k in ("im2col_ms", "winograd_ms", "input_ms", "products_ms", "output_ms"))
    fused = bench.measure_fused("tutorial conv 2", (13, 13, 64), 8, (0, 0, 0, 0), batch=2, repeat=1)
    assert fused["im2col_ms"] > 0 and fused["winograd_ms"] > 0
    assert numba_kernels._winograd_pays is chosen


def test_input_gradient_refuses_paddings_no_padded_convolution_can_undo():
    """A pad of 3 rows on top puts a row of xpad under no window: its dx would need a negative pad."""
    with pytest.raises(ValueError, match=r"pads \(3, 0, 0, 0\) leave no input gradient"):
        winograd.input_gradient_pads((1, 5, 5, 2), (1, 6, 3, 4), (3, 0, 0, 0))
    assert winograd.input_gradient_pads((1, 13, 13, 2), (1, 10, 10, 4), (0, 0, 0, 0)) == (2, 3, 2, 3)
