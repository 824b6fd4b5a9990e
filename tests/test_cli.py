"""The command line end to end on a small subset of the real data."""
import subprocess
import sys

import numpy as np
import pytest
from conftest import fashion_mnist_dir
from PIL import Image

from minicnn import cli
from minicnn.datasets.fashion_mnist import CLASS_NAMES
from minicnn.models import Sequential, load_model


@pytest.fixture
def data_dir():
    folder = fashion_mnist_dir()
    if folder is None:
        pytest.skip("the Fashion-MNIST files are not on this machine")
    return str(folder)


@pytest.mark.parametrize("command", ["train", "evaluate", "predict", "explain", "bench"])
def test_help(command):
    out = subprocess.run([sys.executable, "-m", "minicnn", command, "--help"], capture_output=True, text=True, check=False)
    assert out.returncode == 0 and f"usage: minicnn {command}" in out.stdout and "--backend" in out.stdout


def test_train_evaluate_predict(tmp_path, data_dir, capsys):
    model_path, plots = tmp_path / "model.npz", tmp_path / "plots"
    assert cli.main(["train", "--epochs", "1", "--limit", "640", "--seed", "0", "--data-dir", data_dir,
                     "--save", str(model_path), "--plots", str(plots)]) == 0
    assert model_path.is_file()
    assert sorted(p.name for p in plots.iterdir()) == ["confusion_matrix.png", "conv_filters.png",
                                                       "predictions.png", "training_curves.png"]
    model = load_model(model_path)
    assert model.optimizer.iterations == 10  # 640 images, batch 64, one epoch
    assert cli.main(["train", "--epochs", "1", "--limit", "640", "--data-dir", data_dir,
                     "--resume", str(model_path), "--save", str(model_path)]) == 0
    assert load_model(model_path).optimizer.iterations == 20
    capsys.readouterr()

    assert cli.main(["evaluate", str(model_path), "--limit", "300", "--data-dir", data_dir]) == 0
    out = capsys.readouterr().out
    assert "test images: 300" in out and "accuracy:" in out

    from minicnn.datasets import fashion_mnist
    _, (xt, _) = fashion_mnist.load_data(path=data_dir)
    files = []
    for k in range(3):
        Image.fromarray(xt[k]).save(tmp_path / f"img{k}.png")
        files.append(str(tmp_path / f"img{k}.png"))
    Image.fromarray(xt[3]).resize((56, 56)).save(tmp_path / "big.png")  # resized to 28x28 on reading
    files.append(str(tmp_path / "big.png"))
    assert cli.main(["predict", str(model_path), *files]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    probs = load_model(model_path).predict(xt[:3].reshape(-1, 28, 28, 1) / 255, verbose=0)
    for line, p in zip(lines, probs):
        assert f"{CLASS_NAMES[p.argmax()]} ({p.max():.1%})" in line
    assert len(lines) == 4 and lines[3].startswith(files[3])

    page = tmp_path / "explain.html"  # the page's numbers: tests/test_explainer.py
    assert cli.main(["explain", str(model_path), "--image", files[1], "-o", str(page)]) == 0
    assert cli.main(["explain", str(model_path), "--index", "1", "--data-dir", data_dir, "-o", str(tmp_path / "i.html")]) == 0
    assert page.read_text() == (tmp_path / "i.html").read_text()  # the same image, from the file or the data set
    assert "Ankle boot" in page.read_text() and capsys.readouterr().out.startswith(f"wrote {page}")


def test_errors_are_one_line_not_a_traceback(tmp_path, capsys):
    (tmp_path / "bad.npz").write_bytes(b"nope")
    assert cli.main(["evaluate", str(tmp_path / "bad.npz")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("minicnn evaluate: error:") and "not an .npz file" in err
    (tmp_path / "notes.txt").write_text("hello")
    model = tmp_path / "m.npz"
    from toy import tutorial_model
    m = tutorial_model()
    m.save(model)
    assert cli.main(["predict", str(model), str(tmp_path / "notes.txt")]) == 2
    assert "not an image file" in capsys.readouterr().err
    Image.fromarray(np.zeros((28, 28), np.uint8)).save(tmp_path / "black.png")
    assert cli.main(["explain", str(model), "--image", str(tmp_path / "black.png")]) == 2  # saved before compile
    assert "explain needs a compiled model" in capsys.readouterr().err


def test_bench_prints_the_figures_of_its_clock(capsys, monkeypatch):
    """With a clock under the test's control: 0.5 s for the timed training steps, 0.2 s for the
    inference passes, so every printed figure is known in advance."""
    ticks = iter([0.0, 0.5, 1.0, 1.2])

    class Clock:
        @staticmethod
        def perf_counter():
            return next(ticks)

    monkeypatch.setattr(cli, "time", Clock)
    calls = []
    original = Sequential.train_on_batch
    monkeypatch.setattr(Sequential, "train_on_batch", lambda self, x, y: calls.append(len(x)) or original(self, x, y))
    assert cli.main(["bench", "--steps", "2", "--batch-size", "8", "--backend", "numpy"]) == 0
    row = next(line for line in capsys.readouterr().out.splitlines() if line.startswith("numpy"))
    # ms/step = 500 / 2; train img/s = 8 / 0.25; infer img/s = 8 / 0.1; epoch = 60000 / 8 * 0.25
    assert row.split() == ["numpy", "250.0", "32", "80", "1875.0"]
    assert calls == [8] * 4  # two warm-up steps, then the two timed ones
