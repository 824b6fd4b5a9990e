"""benchmarks/compare.py and its networks (benchmarks/networks.py): each engine builds the same
network (same layers, parameter counts and output shape, the recipe's schedule and augmentation),
so the times compare like with like; the script's functions on tiny sizes give its table."""
import importlib.util
import json

import numpy as np
import pytest
from toy import load_script

import minicnn
from minicnn import backend

# Keras's own summaries of its examples: cifar10_cnn.py 1,250,858 parameters; cifar10_resnet.py's
# ResNet20v1 273,066 trainable and 1,376 non-trainable (BatchNormalization's moving statistics)
KNOWN = {"tutorial": (140682, 0, [2, 10]), "cifar-cnn": (1250858, 0, [2, 10]), "resnet20": (273066, 1376, [2, 10]),
         "recipe": (241770, 448, [2, 10]), "autoencoder": (11889, 0, [2, 28, 28, 1])}


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


def installed(module):
    return importlib.util.find_spec(module) is not None


def needs_conv_transpose(name):
    if name == "autoencoder" and not hasattr(minicnn.layers, "Conv2DTranspose"):
        pytest.skip("minicnn has no Conv2DTranspose yet")


@pytest.mark.parametrize("name", list(KNOWN))
def test_every_engine_builds_the_same_network(name):
    """minicnn's build against the published counts, and every installed peer's against minicnn's."""
    c = compare()
    found = {}
    if name != "autoencoder" or hasattr(minicnn.layers, "Conv2DTranspose"):
        found["minicnn"] = c.describe("minicnn", name)
    found.update({engine: c.describe(engine, name) for engine, module in (("torch-cpu", "torch"), ("keras", "keras"))
                  if installed(module)})
    if not found:
        pytest.skip("no engine can build it here")
    c.check_same(found)
    d = next(iter(found.values()))
    assert (d["trainable_params"], d["non_trainable_params"], d["output_shape"]) == KNOWN[name]


def test_a_different_network_stops_the_run():
    c = compare()
    wider = c.describe("minicnn", "cifar-cnn", width=2, size=28)  # what scaling.py builds, x2 filters
    assert wider["trainable_params"] == 9 * (3 * 64 + 64 * 64 + 64 * 128 + 128 * 128) + 2 * (64 + 128) + \
        (128 * 5 * 5 + 1) * 512 + 513 * 10
    with pytest.raises(AssertionError, match="torch-cpu builds another network than minicnn"):
        c.check_same({"minicnn": c.describe("minicnn", "cifar-cnn"), "torch-cpu": wider})


def run_worker(c, engine, name, capsys, monkeypatch, **sizes):
    """compare.worker in this process (threads from the environment, as run() sets them): its RESULT."""
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    previous = backend.get_backend()
    try:
        c.worker(engine, model_name=name, seed=0, **sizes)
    finally:
        backend.set_backend(previous)
    line = [x for x in capsys.readouterr().out.splitlines() if x.startswith("RESULT ")][-1]
    return json.loads(line[7:])


@pytest.mark.parametrize("name", ["cifar-cnn", "autoencoder"])
def test_the_worker_measures_and_the_table_ranks(name, capsys, monkeypatch):
    """Two epochs of 16 images, inference over 16, in minicnn and (when installed) PyTorch; then the
    ratios and the markdown table the docs show."""
    needs_conv_transpose(name)
    c = compare()
    engines = ["minicnn-numba"] + (["torch-cpu"] if installed("torch") else [])
    sizes = {"epochs": 2, "n_train": 16, "batch": 8, "n_test": 16}
    results = [run_worker(c, engine, name, capsys, monkeypatch, **sizes) for engine in engines]
    epoch = c.MODELS[name].epoch_images
    for r in results:
        assert r["model"] == name and r["train_images"] == 16 and r["test_images"] == 16 and r["batch"] == 8
        assert len(r["epoch_seconds"]) == 2 and r["seconds_per_epoch"] == pytest.approx(r["epoch_seconds"][1])
        assert r["train_images_per_s"] == pytest.approx(epoch / r["seconds_per_epoch"])  # scaled to a full epoch
        assert r["test_accuracy"] is None and r["test_loss"] is None  # a subset says nothing of the engine
        assert len(r["inference_passes_b64"]) == c.INFERENCE_PASSES and r["peak_rss_mb"] > 0
    assert results[0]["data"].startswith("synthetic" if name == "cifar-cnn" else "Fashion-MNIST") or \
        results[0]["data"] == "CIFAR-10"
    limit = {"seconds_per_epoch": 1.0, "sgemm_gflops": 100.0}
    best = c.rank(results, limit)
    if len(results) == 2:
        theirs = results[1]
        assert best[0] is theirs and results[0]["x_best_peer_epoch"] == pytest.approx(
            results[0]["seconds_per_epoch"] / theirs["seconds_per_epoch"])
    assert results[0]["x_limit"] == pytest.approx(results[0]["seconds_per_epoch"])

    class Args:
        model, threads, batch, seed = name, 1, 8, 0
    table = c.markdown(results, limit, Args).splitlines()
    head = table[2].count("|")
    rows = [line for line in table if line.startswith((f"| {engines[0]} ", "| torch-cpu "))]
    assert len(rows) == len(engines) and all(row.count("|") == head for row in rows)
    assert rows[0].rstrip(" |").endswith("synthetic" if name == "cifar-cnn" else "subset")
    assert "Trained on 16 of" in table[-1]


def test_synthetic_cifar_has_cifars_shapes(monkeypatch, tmp_path):
    c = compare()
    monkeypatch.setenv("MINICNN_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("MINICNN_CACHE_DIR", str(tmp_path))  # no archive anywhere: random arrays stand in
    x, y, xt, yt, data = c.load("resnet20", 12, 5)
    assert yt.shape == (5, 10)
    assert x.shape == (12, 32, 32, 3) and xt.shape == (5, 32, 32, 3) and x.dtype == np.float32
    assert y.shape == (12, 10) and (y.sum(1) == 1).all() and 0 <= x.min() and x.max() <= 1
    assert data.startswith("synthetic")


@pytest.mark.parametrize("name", ["tutorial", "recipe", "cifar-cnn", "resnet20", "autoencoder"])
def test_the_torch_models_are_minicnns(name):
    """Three steps of each PyTorch model: it trains on minicnn's data layout and predicts Keras's shapes."""
    torch = pytest.importorskip("torch")
    c = compare()
    theirs = c.TorchModel(0, "cpu", name, steps_per_epoch=3, epochs=1)
    x = np.random.default_rng(0).random((64, *c.MODELS[name].input_shape), dtype=np.float32)
    y = x if name == "autoencoder" else minicnn.utils.to_categorical(np.arange(64) % 10, 10)
    before = [p.detach().clone() for p in theirs.net.parameters()]
    theirs.fit(x[:10], y[:10], batch_size=4)  # 3 steps: the schedule's last rate is 0
    assert theirs.step == 3 and theirs.predict(x, 32).shape == y.shape
    assert all(not torch.equal(a, b) for a, b in zip(before, theirs.net.parameters()))  # every weight trained
    first = next(m for m in theirs.net.modules() if isinstance(m, torch.nn.Conv2d))
    assert first.weight.is_contiguous(memory_format=torch.channels_last)


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


@pytest.mark.parametrize("name", ["cifar-cnn", "resnet20"])
def test_step_profile_times_every_step_of_the_plan(name):
    """benchmarks/step_profile.py on a batch of 2, once: a row per step of the plan (a chain, and a
    graph with adds), every multiply-add of training counted once, the totals beside them."""
    prof = load_script("benchmarks/step_profile.py")
    previous = backend.get_backend()
    try:
        rows, totals = prof.profile(name, batch=2, repeat=1)
        model = compare().build(minicnn, name)
        steps = len(model.execution_plan())
    finally:
        backend.set_backend(previous)
    assert len(rows) == steps and all(r["forward_ms"] > 0 for r in rows)
    shortcut = name == "cifar-cnn"  # a last Activation("softmax"): its gradient is the loss's (p - y) / N
    assert sum(r["backward_ms"] > 0 for r in rows) == steps - shortcut
    assert sum(r["forward_macs_per_image"] + r["backward_macs_per_image"] for r in rows) == \
        compare().training_macs(name)
    assert set(totals) == {"loss_ms", "optimizer_ms", "regularizers_ms", "pass_ms", "train_on_batch_ms"}
    assert sum(r["share"] for r in rows) + (totals["pass_ms"] - sum(r["forward_ms"] + r["backward_ms"] for r in rows)) / \
        totals["pass_ms"] == pytest.approx(1)


def test_the_autoencoder_is_the_examples():
    needs_conv_transpose("autoencoder")
    example = load_script("examples/fashion_mnist_autoencoder.py").build_model()
    ours = compare().build(minicnn, "autoencoder")
    layers = [(type(a).__name__, a.get_weights()[0].shape if a.params else None) for a in ours.layers]
    assert layers == [(type(a).__name__, a.get_weights()[0].shape if a.params else None) for a in example.layers]
    assert ours.output_shape == example.output_shape and type(ours.optimizer) is type(example.optimizer)
    assert ours.loss.name == example.loss.name
