"""The kernel contract (minicnn/kernels/__init__.py): the reference defines every kernel; each
backend, the CuPy path included, offers all of them, its own with the reference's signature,
and inherits the reference's where it has no fast twin."""
import inspect
import types

import numpy as np
import pytest
from toy import small_data, small_model

from minicnn import backend, gpu
from minicnn.kernels import CONTRACT, Kernels, numba_kernels, reference
from minicnn.utils import set_random_seed


def test_the_reference_defines_every_kernel_with_its_shapes():
    for fn in CONTRACT:
        f = getattr(reference, fn)
        assert callable(f) and f.__doc__ and ("(N" in f.__doc__ or "any shape" in f.__doc__ or fn == "adam_step"), fn


@pytest.mark.parametrize("name", ["numpy", "numba", "cupy"])
def test_every_backend_offers_the_whole_contract(name, fake_gpu):
    kernels = backend.kernels_named(name)
    if name == "cupy":  # the backend follows the data: device arrays get these kernels
        assert backend.kernels_for(gpu.to_device(np.zeros(1))) is kernels
    for fn in CONTRACT:
        f = getattr(kernels, fn)
        ref = getattr(reference, fn)
        assert list(inspect.signature(f).parameters) == list(inspect.signature(ref).parameters), fn
        assert kernels.speeds_up(fn) == (f is not ref)
    own = {fn for fn in CONTRACT if kernels.speeds_up(fn)}
    # Numba speeds up the tutorial's kernels and Adam; it inherits the others from the reference
    inherited = {"avgpool_forward", "avgpool_backward"}  # the Numba backend has no twin for these
    assert own == (set(CONTRACT) - inherited if name == "numba" else set())
    with pytest.raises(AttributeError, match="not a kernel of the contract"):
        kernels.im2col  # noqa: B018  (a helper of one backend, not part of the contract)


def test_a_backend_with_one_fast_kernel_inherits_the_rest(monkeypatch):
    """A new backend that compiles only ReLU: the model trains, its ReLU runs, the reference
    serves every other kernel, and Sequential does not fuse (the fused kernel is not its own)."""
    calls = []

    def relu_forward(x):
        calls.append(x.shape)
        return numba_kernels.relu_forward(x)

    module = types.ModuleType("relu_only")
    module.relu_forward = relu_forward
    backend.register_backend("relu_only", module)
    monkeypatch.setitem(backend._state, "name", None)
    backend.set_backend("relu_only")
    try:
        kernels = backend.kernels()
        assert kernels.speeds_up("relu_forward") and not kernels.speeds_up("conv2d_forward")
        assert kernels.conv2d_forward is reference.conv2d_forward
        set_random_seed(0)
        x, y = small_data(32)
        model = small_model()
        model.compile(loss="categorical_crossentropy", optimizer="adam")
        model.fit(x, y, batch_size=16, epochs=1, verbose=0)
        assert calls and calls[0] == (16, 8, 8, 4)  # the layer-by-layer ReLU after the conv
        set_random_seed(0)
        again = small_model()
        again.compile(loss="categorical_crossentropy", optimizer="adam")
        backend.set_backend("numpy")
        again.fit(x, y, batch_size=16, epochs=1, verbose=0)
        for a, b in zip(model.get_weights(), again.get_weights()):
            np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)
    finally:
        backend._MODULES.pop("relu_only")
        backend._kernels.pop("relu_only", None)


def test_unknown_names_are_clear_errors():
    with pytest.raises(ValueError, match="unknown backend 'cuda'; valid backends are numpy, numba"):
        backend.set_backend("cuda")
    with pytest.raises(ValueError, match="not a kernel of the contract"):
        Kernels("numpy", reference).speeds_up("conv3d_forward")


@pytest.mark.parametrize("decay", [None, (0.3, 0.01)], ids=["Adam", "AdamW"])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_numba_adam_step_matches_the_reference(dtype, decay):
    shapes = [(3, 3, 2, 4), (4,), (5, 7)]
    runs = []
    typed = None if decay is None else tuple(np.dtype(dtype).type(v) for v in decay)
    for step in (reference.adam_step, numba_kernels.adam_step):
        rng = np.random.default_rng(0)  # the same params and gradients for both
        params = [rng.standard_normal(s).astype(dtype) for s in shapes]
        slots = [{"m": np.zeros_like(p), "v": np.zeros_like(p)} for p in params]
        for t in range(1, 4):
            grads = [rng.standard_normal(s).astype(dtype) for s in shapes]
            alpha = 0.01 * np.sqrt(1 - 0.999 ** t) / (1 - 0.9 ** t)
            scalars = [np.dtype(dtype).type(v) for v in (alpha, 0.1, 0.001, 1e-7)]
            assert step(params, grads, slots, *scalars, commit=False, decay=typed)
            assert step(params, grads, slots, *scalars, commit=True, decay=typed)
        huge = [np.full_like(p, np.finfo(dtype).max) for p in params]  # g * g overflows
        huge[2][1, 3] = 0.5  # one finite element among them: the check counts, it does not stop at the first
        before = [p.copy() for p in params]
        with np.errstate(over="ignore", invalid="ignore"):
            assert not step(params, huge, slots, *scalars, commit=False, decay=typed)
            last = [np.zeros_like(g) for g in huge[:2]] + [np.where(huge[2] == 0.5, np.inf, 0).astype(dtype)]
            assert not step(params, last, slots, *scalars, commit=False, decay=typed)  # one bad element, in the last param
        assert all(np.array_equal(a, b) for a, b in zip(params, before))  # a refused check changes nothing
        runs.append((params, slots))
    tol = 1e-6 if dtype == "float32" else 1e-14
    for a, b in zip(runs[0][0], runs[1][0]):
        np.testing.assert_allclose(a, b, rtol=tol, atol=tol)
    for sa, sb in zip(runs[0][1], runs[1][1]):
        np.testing.assert_allclose(sa["v"], sb["v"], rtol=tol, atol=tol)
    if decay is not None:  # with zero gradients and moments, the step is the decay alone: p - p * wd * lr
        for step in (reference.adam_step, numba_kernels.adam_step):
            params = [np.random.default_rng(1).standard_normal(s).astype(dtype) for s in shapes]
            expected = [p - p * typed[0] * typed[1] for p in params]
            slots = [{"m": np.zeros_like(p), "v": np.zeros_like(p)} for p in params]
            step(params, [np.zeros_like(p) for p in params], slots, *scalars, commit=True, decay=typed)
            assert all(np.array_equal(a, b) for a, b in zip(params, expected))


