"""benchmarks/compare.py's peers: the PyTorch models are the ones minicnn trains (same layers,
same parameter count, the recipe's schedule and augmentation), so the times compare like with like."""
import numpy as np
import pytest
from toy import load_script

import minicnn


def compare():
    return load_script("benchmarks/compare.py")


def test_the_torch_schedule_is_the_recipes():
    c = compare()
    model = c.build(minicnn, "recipe", steps_per_epoch=7, epochs=4)
    for step in range(7 * 4 + 3):
        assert c.keras_lr(step, 7, 4) == pytest.approx(float(model.optimizer.schedule(step)), rel=1e-6, abs=1e-12)


def test_training_macs_count_forward_and_both_gradients():
    c = compare()
    model = c.build(minicnn, "tutorial")
    conv1, conv2, dense1, dense2 = [layer for layer in model.layers if layer.params]
    shapes, shape = {}, model.input_shape
    for layer in model.layers:
        shapes[layer.name] = shape
        shape = layer.compute_output_shape(shape)
    m = [layer.count_macs(shapes[layer.name]) for layer in (conv1, conv2, dense1, dense2)]
    assert c.training_macs("tutorial") == 2 * m[0] + 3 * (m[1] + m[2] + m[3])  # conv1 needs no dx


@pytest.mark.parametrize("name", ["tutorial", "recipe"])
def test_the_torch_models_are_minicnns(name):
    torch = pytest.importorskip("torch")
    c = compare()
    ours = c.build(minicnn, name)
    theirs = c.TorchModel(0, "cpu", name, steps_per_epoch=3, epochs=1)
    trainable = sum(p.numel() for p in theirs.net.parameters())
    assert trainable == sum(int(np.prod(w.shape)) for layer in ours.layers for w in layer.params.values())
    x = np.random.default_rng(0).random((64, 28, 28, 1), dtype=np.float32)
    y = minicnn.utils.to_categorical(np.arange(64) % 10, 10)
    theirs.fit(x[:10], y[:10], batch_size=4)  # 3 steps: the schedule's last rate is 0
    assert theirs.step == 3 and theirs.predict(x, 32).shape == (64, 10)
    assert theirs.net[0].weight.is_contiguous(memory_format=torch.channels_last)


def test_the_torch_augmentation_flips_and_shifts_whole_pixels():
    pytest.importorskip("torch")
    c = compare()
    model = c.TorchModel(0, "cpu", "recipe", 1, 1)
    x = np.random.default_rng(1).random((200, 28, 28, 1), dtype=np.float32) + 1  # no zeros of its own
    out = model._augment(x)
    found = set()
    for a, b in zip(x, out):
        match = [(f, dy, dx) for f in (0, 1) for dy in range(-3, 4) for dx in range(-3, 4)
                 if np.array_equal(np.roll(a[:, ::-1] if f else a, (dy, dx), axis=(0, 1))[3:25, 3:25], b[3:25, 3:25])]
        assert len(match) == 1
        _, dy, dx = match[0]
        found.add(match[0])
        assert (b == 0).sum() == (28 * abs(dy) + 28 * abs(dx) - abs(dy * dx))  # the rows and columns shifted in
    assert {f for f, _, _ in found} == {0, 1} and {dy for _, dy, _ in found} >= {-2, 0, 2}


def test_step_time_times_a_training_step_and_a_prediction():
    """benchmarks/step_time.py on a batch of 4, once each: the recipe's model, built and trained."""
    bench = load_script("benchmarks/step_time.py")
    train, infer = bench.measure("recipe", batch=4, steps=1, repeat=1)
    assert train > 0 and infer > 0
