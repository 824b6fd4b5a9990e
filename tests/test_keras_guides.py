"""Programs from the Keras guides, ported by changing their imports (examples/keras_guides/),
run to their end as a learner would run them."""
import runpy
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("name", ["customizing_fit", "subclassing"])
def test_guide_runs_to_its_end(name, capsys):
    runpy.run_path(str(ROOT / "examples" / "keras_guides" / f"{name}.py"), run_name="__main__")
    assert "ran to its end" in capsys.readouterr().out


def test_training_loop_from_scratch_learns(real_data, monkeypatch, capsys):
    from minicnn.datasets import fashion_mnist
    monkeypatch.setattr(fashion_mnist, "load_data", lambda *a, **k: real_data)
    monkeypatch.setenv("MINICNN_GUIDE_LIMIT", "3000")
    runpy.run_path(str(ROOT / "examples" / "keras_guides" / "training_loop_from_scratch.py"), run_name="__main__")
    out = capsys.readouterr().out
    assert "ran to its end" in out
    accuracies = [float(line.split()[-1]) for line in out.splitlines() if line.startswith("Validation acc")]
    assert len(accuracies) == 2 and accuracies[-1] > 0.6  # chance is 0.1


def test_keras2_gan_trains_each_model_in_its_own_step(monkeypatch, capsys):
    """The classic GAN loop: the discriminator's train_on_batch changes its weights and not the
    generator's; combined.train_on_batch changes the generator's and not the discriminator's (as
    on Keras, where the same file runs with its imports changed back)."""
    import numpy as np

    from minicnn.datasets import fashion_mnist
    images = np.random.default_rng(0).integers(0, 256, (64, 28, 28), dtype=np.uint8)
    monkeypatch.setattr(fashion_mnist, "load_data", lambda *a, **k: ((images, None), (None, None)))
    gan = runpy.run_path(str(ROOT / "examples" / "keras_guides" / "gan_train_on_batch.py"))["GAN"]()
    moved = []

    def spy(model, name):
        step = model.train_on_batch

        def train_on_batch(*args, **kwargs):
            before = [gan.generator.get_weights(), gan.discriminator.get_weights()]
            result = step(*args, **kwargs)
            after = [gan.generator.get_weights(), gan.discriminator.get_weights()]
            moved.append((name, [any(not np.array_equal(u, v) for u, v in zip(b, a)) for b, a in zip(before, after)]))
            return result
        monkeypatch.setattr(model, "train_on_batch", train_on_batch)

    spy(gan.discriminator, "discriminator")
    spy(gan.combined, "combined")
    gan.train(epochs=3, batch_size=8, sample_interval=1)
    # [generator moved, discriminator moved]: two discriminator steps (real, fake), then the combined one
    assert moved == [("discriminator", [False, True]), ("discriminator", [False, True]), ("combined", [True, False])] * 3
    lines = [line for line in capsys.readouterr().out.splitlines() if "[D loss:" in line]
    assert len(lines) == 3 and all("acc.:" in line and "[G loss:" in line for line in lines)
