"""The fused Conv2D -> ReLU -> MaxPooling2D step: the Numba kernel against the readable
composition of the three reference kernels, and a model that runs it against the same model
run layer by layer, and against finite differences."""
import numpy as np
import pytest

import minicnn
from minicnn.fusion import ConvReLUPool
from minicnn.gradcheck import check_model
from minicnn.kernels import numba_kernels, reference
from minicnn.layers import Activation, Conv2D, Dense, Flatten, MaxPooling2D
from minicnn.models import Sequential

GRID = [  # N, H, W, C, F, kernel, padding, pool
    (1, 28, 28, 1, 8, (3, 3), "valid", 2),  # the tutorial's first block
    (2, 9, 8, 1, 3, (3, 3), "valid", 2),  # conv output 7x6: the last row is dropped by the pool
    (3, 7, 7, 2, 4, (2, 3), "same", 3),
    (2, 6, 6, 3, 5, (3, 3), "same", 2),
    (1, 5, 5, 1, 2, (1, 1), "valid", 2),
    (2, 13, 13, 8, 6, (3, 3), "valid", 2),  # im2col + BLAS path (window 72), like the second block
    (1, 8, 9, 5, 3, (2, 3), "same", 3),  # im2col path, "same" padding, pool 3
]


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("N,H,W,C,F,kernel,padding,pool", GRID)
def test_fused_kernel_matches_the_composition(N, H, W, C, F, kernel, padding, pool, dtype, rng):
    layer = Conv2D(F, kernel, padding=padding)
    layer.build((None, H, W, C))
    pads = layer.pads
    x = rng.standard_normal((N, H, W, C)).astype(dtype)
    x[:, 1::3, ::2] = 0.5  # flat patches: ties in the pooling windows
    Wt = rng.standard_normal((*kernel, C, F)).astype(dtype)
    Wt[:, :, :, 0] = 0  # filter 0 sees only its bias: every window ties
    b = rng.standard_normal(F).astype(dtype)
    tol = {"rtol": 1e-5, "atol": 1e-5} if dtype == "float32" else {"rtol": 1e-11, "atol": 1e-12}
    y, ctx = reference.conv_relu_pool_forward(x, Wt, b, pool, pads)
    y2, ctx2 = numba_kernels.conv_relu_pool_forward(x, Wt, b, pool, pads)
    assert y2.shape == y.shape and y2.dtype == np.dtype(dtype)
    np.testing.assert_allclose(y2, y, **tol)
    dy = rng.standard_normal(y.shape).astype(dtype)
    for need_dx in (False, True):
        ours = numba_kernels.conv_relu_pool_backward(dy, ctx2, Wt, need_dx)
        ref = reference.conv_relu_pool_backward(dy, ctx, Wt, need_dx)
        for a, e in zip(ours, ref):
            if e is None:
                assert a is None
            else:
                assert a.dtype == np.dtype(dtype)
                np.testing.assert_allclose(a, e, **tol)


def layer_by_layer(model, x, y):
    """The model's output and grads when its layers run one by one (no fused step)."""
    h = x
    for layer in model.layers:
        h = layer.forward(h, training=True)
    dy = model.loss.softmax_gradient(y, h)
    for layer in reversed(model.layers[:-1]):
        dy = layer.backward(dy)
    return h, [np.array(g) for g, _ in model.grads_and_params()]


def models(inline):
    """Two fused blocks (the first as three layers, or a Conv2D with activation="relu" and a
    pool): the first on direct loops (window 3x3x2), the second on im2col + BLAS (3x3x4 = 36)."""
    conv = [Conv2D(4, 3, activation="relu", input_shape=(12, 12, 2), dtype="float64")] if inline else \
        [Conv2D(4, 3, input_shape=(12, 12, 2), dtype="float64"), Activation("relu", dtype="float64")]
    return Sequential([*conv, MaxPooling2D(2, dtype="float64"), Conv2D(9, 3, dtype="float64"),
                       Activation("relu", dtype="float64"), MaxPooling2D(2, dtype="float64"),
                       Flatten(dtype="float64"), Dense(3, dtype="float64"), Activation("softmax", dtype="float64")])


@pytest.mark.parametrize("inline", [False, True])
def test_a_model_runs_the_fused_step_and_gets_the_same_results(inline, rng):
    minicnn.backend.set_backend("numba")
    try:
        minicnn.utils.set_random_seed(0)
        model = models(inline)
        model.compile(loss="categorical_crossentropy", optimizer="adam")
        steps = model.execution_plan()
        assert sum(isinstance(s, ConvReLUPool) for s in steps) == 2  # both blocks
        x = rng.standard_normal((5, 12, 12, 2))
        y = minicnn.utils.to_categorical(rng.integers(0, 3, 5), 3).astype(np.float64)
        p = model.forward(x, training=True)
        assert [s._cache[1][0] for s in steps if isinstance(s, ConvReLUPool)] == ["direct", "gemm"]
        model.backward(y, p)
        fused = [np.array(g) for g, _ in model.grads_and_params()]
        h, grads = layer_by_layer(model, x, y)
        np.testing.assert_allclose(h, p, rtol=1e-12)
        for a, g in zip(fused, grads):
            np.testing.assert_allclose(a, g, rtol=1e-10, atol=1e-13)
        errors = check_model(model, x, y)  # the fused step against finite differences
        assert max(errors.values()) < 1e-6, errors
    finally:
        minicnn.backend._state["name"] = None


def test_no_fusion_where_it_would_change_the_math():
    minicnn.backend.set_backend("numba")
    try:
        for layers in (
            [Conv2D(2, 3, strides=2, input_shape=(9, 9, 1)), Activation("relu"), MaxPooling2D(2)],  # strided conv
            [Conv2D(2, 3, input_shape=(9, 9, 1)), Activation("tanh"), MaxPooling2D(2)],
            [Conv2D(2, 3, input_shape=(9, 9, 1)), Activation("relu"), MaxPooling2D(3, strides=2)],  # overlapping
            [Conv2D(2, 3, input_shape=(9, 9, 1)), Activation("relu"), MaxPooling2D(2, padding="same")],
            [Conv2D(2, 3, input_shape=(9, 9, 1)), Activation("relu"), MaxPooling2D((2, 3))],  # not square
        ):
            assert not any(isinstance(s, ConvReLUPool) for s in Sequential(layers).execution_plan())
        minicnn.backend.set_backend("numpy")  # the reference runs layer by layer, to be read
        model = Sequential([Conv2D(2, 3, input_shape=(9, 9, 1)), Activation("relu"), MaxPooling2D(2)])
        assert model.execution_plan() == model.layers
    finally:
        minicnn.backend._state["name"] = None


@pytest.mark.parametrize("pool, strides, padding", [(True, 1, "same"), (False, 1, "valid"), (True, 2, "same"),
                                                    (False, 2, "same")])
@pytest.mark.parametrize("use_bias, center, scale", [(False, True, True), (True, False, False)])
def test_batchnorm_folded_into_the_conv_at_inference(pool, strides, padding, use_bias, center, scale, rng):
    """Conv2D -> BatchNormalization -> ReLU (-> MaxPooling2D): one step; in training the layers one by one
    (the same numbers), at inference one convolution with s W and s b + t: the same predictions."""
    from minicnn.fusion import ConvBNReLU
    from minicnn.layers import BatchNormalization, Input
    minicnn.backend.set_backend("numba")
    try:
        minicnn.utils.set_random_seed(1)
        layers = [Input((9, 9, 3), dtype="float64"),
                  Conv2D(4, 3, strides=strides, padding=padding, use_bias=use_bias, dtype="float64"),
                  BatchNormalization(center=center, scale=scale, dtype="float64"), Activation("relu", dtype="float64"),
                  *([MaxPooling2D(2, dtype="float64")] if pool else []), Flatten(dtype="float64"),
                  Dense(3, activation="softmax", dtype="float64")]
        model = Sequential(layers)
        bn = model.layers[1]
        bn.state["moving_mean"][:] = rng.standard_normal(4)  # statistics and weights far from their initial values
        bn.state["moving_variance"][:] = rng.uniform(0.2, 3, 4)
        for layer in model.layers:
            for v in layer.params.values():
                v[...] = rng.standard_normal(v.shape)
        steps = model.execution_plan()
        assert isinstance(steps[0], ConvBNReLU) and len(steps[0].layers) == (4 if pool else 3)
        x = rng.standard_normal((5, 9, 9, 3))
        by_layer = x
        for layer in model.layers:
            by_layer = layer.forward(by_layer)
        np.testing.assert_allclose(model.predict(x, verbose=0), by_layer, rtol=1e-10, atol=1e-12)
        model.compile(loss="categorical_crossentropy", optimizer="adam")
        y = minicnn.utils.to_categorical(rng.integers(0, 3, 5), 3).astype(np.float64)
        errors = check_model(model, x, y)  # training through the step: batch statistics, exact gradients
        if use_bias:  # a bias before a batch normalization is removed with the mean: its gradient is 0
            assert np.abs(model.layers[0].grads["b"]).max() < 1e-12
            errors.pop(f"{model.layers[0].name}/b")
        assert max(errors.values()) < 1e-6, errors
        moving = bn.state["moving_mean"].copy()
        model.train_on_batch(x, y)
        assert not np.array_equal(bn.state["moving_mean"], moving)  # the batch statistics still update
    finally:
        minicnn.backend._state["name"] = None


BN_GRID = [  # N, OH, OW, C, pool
    (1, 28, 28, 8, 2),  # batch 1, the recipe's first block
    (3, 7, 7, 5, 2),  # odd: the last row and column are read by no window (but have a gradient)
    (2, 9, 6, 3, 3),  # pool 3
    (4, 2, 2, 2, 2),  # one window per image
    (2, 5, 8, 16, 2),
]


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("affine", [True, False], ids=["gamma-beta", "no-gamma-beta"])
@pytest.mark.parametrize("N,OH,OW,C,pool", BN_GRID)
def test_bn_relu_pool_kernel_matches_the_composition(N, OH, OW, C, pool, affine, dtype, rng):
    """normalize -> ReLU -> pool in one step (Numba) against batchnorm, relu and maxpool one by one."""
    z = rng.standard_normal((N, OH, OW, C)).astype(dtype)
    z[:, 1::3, ::2] = 0.5  # flat patches: ties in the pooling windows
    z[..., 0] = 0.25  # channel 0 constant: every window ties, the variance is 0
    gamma = rng.standard_normal(C).astype(dtype) if affine else None
    beta = rng.standard_normal(C).astype(dtype) if affine else None
    eps = np.dtype(dtype).type(1e-3)
    tol = {"rtol": 2e-5, "atol": 2e-5} if dtype == "float32" else {"rtol": 1e-11, "atol": 1e-12}
    mean, var = reference.batchnorm_moments(z)
    y, ctx = reference.bn_relu_pool_forward(z, gamma, beta, mean, var, eps, pool)
    y2, ctx2 = numba_kernels.bn_relu_pool_forward(z, gamma, beta, mean, var, eps, pool)
    assert y2.shape == y.shape == (N, OH // pool, OW // pool, C) and y2.dtype == np.dtype(dtype)
    np.testing.assert_allclose(y2, y, **tol)
    assert (y[..., 1:] > 0).any()
    dy = rng.standard_normal(y.shape).astype(dtype)
    for batch_stats in (False, True):
        ours = numba_kernels.bn_relu_pool_backward(dy, ctx2, gamma, batch_stats)
        ref = reference.bn_relu_pool_backward(dy, ctx, gamma, batch_stats)
        for a, e in zip(ours, ref):
            assert a.shape == e.shape and a.dtype == np.dtype(dtype)
            np.testing.assert_allclose(a, e, **tol)
    if OH % pool:  # with batch statistics, rows no window read still get a gradient
        assert np.abs(ours[0][:, -1, :, 1:]).max() > 0


def test_fused_batchnorm_training_step_matches_the_layers(rng):
    """Conv2D -> BatchNormalization -> ReLU -> MaxPooling2D trained through bn_relu_pool (Numba): the same
    outputs, gradients and moving statistics as the four layers run one by one."""
    from minicnn.fusion import ConvBNReLU
    from minicnn.layers import BatchNormalization, Input
    minicnn.backend.set_backend("numba")
    try:
        gamma = rng.uniform(0.5, 2, 6)

        def build():
            minicnn.utils.set_random_seed(2)
            model = Sequential([Input((11, 10, 3), dtype="float64"), Conv2D(6, 3, use_bias=False, dtype="float64"),
                                BatchNormalization(dtype="float64"), Activation("relu", dtype="float64"),
                                MaxPooling2D(2, dtype="float64"), Flatten(dtype="float64"), Dense(3, dtype="float64"),
                                Activation("softmax", dtype="float64")])
            model.compile(loss="categorical_crossentropy", optimizer="adam")
            model.layers[1].params["gamma"][:] = gamma
            return model
        x = rng.standard_normal((4, 11, 10, 3))
        y = minicnn.utils.to_categorical(rng.integers(0, 3, 4), 3).astype(np.float64)
        fused, layered = build(), build()
        step = fused.execution_plan()[0]
        assert isinstance(step, ConvBNReLU) and len(step.layers) == 4
        p = fused.forward(x, training=True)
        assert step._cache[0] == "fused"
        fused.backward(y, p)
        h, grads = layer_by_layer(layered, x, y)
        np.testing.assert_allclose(p, h, rtol=1e-12)
        for (a, _), e in zip(fused.grads_and_params(), grads):
            np.testing.assert_allclose(a, e, rtol=1e-10, atol=1e-13)
        for key in ("moving_mean", "moving_variance"):
            np.testing.assert_allclose(fused.layers[1].state[key], layered.layers[1].state[key], rtol=1e-12)
        errors = check_model(fused, x, y)
        assert max(errors.values()) < 1e-6, errors
    finally:
        minicnn.backend._state["name"] = None


BN_ADD_GRID = [  # the shape of z and skip
    (2, 5, 7, 3),
    (1, 4, 4, 16),  # batch 1
    (3, 2, 3, 1),  # one channel
    (5, 6),  # after a Dense: (N, C)
]


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("affine", [True, False], ids=["gamma-beta", "no-gamma-beta"])
@pytest.mark.parametrize("shape", BN_ADD_GRID)
def test_bn_add_relu_kernel_matches_the_composition(shape, affine, dtype, rng):
    """normalize -> add skip -> ReLU in one pass (Numba) against batchnorm, the sum and relu one by one."""
    z = rng.standard_normal(shape).astype(dtype)
    z[..., 0] = 0.25  # channel 0 constant: the variance is 0
    skip = rng.standard_normal(shape).astype(dtype)
    gamma = rng.standard_normal(shape[-1]).astype(dtype) if affine else None
    beta = rng.standard_normal(shape[-1]).astype(dtype) if affine else None
    eps = np.dtype(dtype).type(1e-3)
    tol = {"rtol": 2e-5, "atol": 2e-5} if dtype == "float32" else {"rtol": 1e-11, "atol": 1e-12}
    mean, var = reference.batchnorm_moments(z)
    y, ctx = reference.bn_add_relu_forward(z, skip, gamma, beta, mean, var, eps)
    y2, ctx2 = numba_kernels.bn_add_relu_forward(z, skip, gamma, beta, mean, var, eps)
    assert y2.shape == y.shape == z.shape and y2.dtype == np.dtype(dtype)
    np.testing.assert_allclose(y2, y, **tol)
    assert 0 < (y > 0).mean() < 1
    dy = rng.standard_normal(shape).astype(dtype)
    for batch_stats in (False, True):
        ours = numba_kernels.bn_add_relu_backward(dy, ctx2, gamma, batch_stats)
        ref = reference.bn_add_relu_backward(dy, ctx, gamma, batch_stats)
        for a, e in zip(ours, ref):
            assert a.shape == e.shape and a.dtype == np.dtype(dtype)
            np.testing.assert_allclose(a, e, **tol)


def residual_block(frozen=False, tap=False):
    """x -> Conv2D -> BatchNormalization -> Add(1x1 stride-2 projection of x) -> ReLU -> Dense, in
    float64: the end of a ResNet block. tap: the normalization's output read by a second branch too."""
    from minicnn.layers import Add, BatchNormalization, Input
    from minicnn.models import Model
    minicnn.utils.set_random_seed(4)
    inputs = Input((7, 6, 3), dtype="float64")
    bn = BatchNormalization(dtype="float64", trainable=not frozen)
    z = bn(Conv2D(4, 3, strides=2, padding="same", use_bias=False, dtype="float64")(inputs))  # no bias: its dL/db is 0 here
    skip = Conv2D(4, 1, strides=2, dtype="float64")(inputs)
    h = Activation("relu", dtype="float64")(Add(dtype="float64")([skip, z]))
    if tap:
        h = Add(dtype="float64")([h, z])
    model = Model(inputs, Dense(3, activation="softmax", dtype="float64")(Flatten(dtype="float64")(h)))
    model.compile(loss="categorical_crossentropy", optimizer="sgd")
    bn.params["gamma"][:] = [0.5, 1.5, -1.0, 2.0]
    bn.params["beta"][:] = [0.1, -0.2, 0.3, 0.0]
    bn.state["moving_mean"][:] = [0.2, -0.1, 0.0, 0.3]
    bn.state["moving_variance"][:] = [0.5, 2.0, 1.0, 1.5]
    return model


@pytest.mark.parametrize("frozen", [False, True], ids=["training", "frozen"])
def test_residual_end_runs_fused_with_the_layers_results(frozen, rng):
    """BatchNormalization -> Add -> ReLU in a graph runs as one BNAddReLU step (Numba): the same
    outputs, gradients and moving statistics as the layers run one by one, at training
    and at inference, with batch statistics or frozen; and finite differences agree."""
    from minicnn.fusion import BNAddReLU
    minicnn.backend.set_backend("numba")
    try:
        x = rng.standard_normal((5, 7, 6, 3))
        y = minicnn.utils.to_categorical(rng.integers(0, 3, 5), 3).astype(np.float64)
        fused, layered = residual_block(frozen), residual_block(frozen)
        steps = [type(s.layer) for s in fused.execution_plan()]
        assert steps.count(BNAddReLU) == 1 and len(steps) == len(fused.nodes) - 2
        np.testing.assert_allclose(fused.predict(x, verbose=0), layered.forward(x, steps=layered.nodes), rtol=1e-12)
        p = fused.forward(x, training=True)
        fused.backpropagate(fused.loss.gradient(y, p))
        q = layered.forward(x, training=True, steps=layered.nodes)
        layered.backpropagate(layered.loss.gradient(y, q), steps=layered.nodes)
        np.testing.assert_allclose(p, q, rtol=1e-12)
        for (a, _), (e, _) in zip(fused.grads_and_params(), layered.grads_and_params()):
            np.testing.assert_allclose(a, e, rtol=1e-10, atol=1e-13)
        for a, e in zip(fused.get_weights(), layered.get_weights()):  # the moving statistics too
            np.testing.assert_allclose(a, e, rtol=1e-12)
        errors = check_model(fused, x, y)
        assert max(errors.values()) < 1e-6, errors
    finally:
        minicnn.backend._state["name"] = None


def test_residual_end_read_elsewhere_runs_layer_by_layer():
    """Where the normalization's output is read by another layer too, it must be kept: no fusion."""
    from minicnn.fusion import BNAddReLU
    minicnn.backend.set_backend("numba")
    try:
        assert not any(isinstance(s.layer, BNAddReLU) for s in residual_block(tap=True).execution_plan())
        minicnn.backend.set_backend("numpy")  # the reference runs layer by layer, to be read
        assert not any(isinstance(s.layer, BNAddReLU) for s in residual_block().execution_plan())
    finally:
        minicnn.backend._state["name"] = None
