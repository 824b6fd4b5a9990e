"""examples/fashion_mnist_autoencoder.py: a quick run of both variants on a few hundred images
draws its pictures, and reports the loss that evaluate computes per pixel, as fit does."""
import numpy as np
import pytest
from toy import load_script

from minicnn import losses


@pytest.mark.parametrize("variant", [[], ["--denoise"]])
def test_a_quick_run_draws_its_pictures(real_data, tmp_path, capsys, variant):
    example = load_script("examples/fashion_mnist_autoencoder.py")
    model, test_loss = example.main(["--epochs", "1", "--limit", "256", "--out", str(tmp_path), *variant])
    out = capsys.readouterr().out
    name = "autoencoder_denoising" if variant else "autoencoder_reconstructions"
    assert (tmp_path / f"{name}.png").stat().st_size > 1000 and (tmp_path / f"{name}_filters.png").stat().st_size > 1000
    assert f"Test loss (binary cross-entropy) {test_loss:.4f}" in out
    assert 0.1 < test_loss < 0.75  # per pixel: ln 2 = 0.69 for an untrained network's outputs of 0.5
    assert model.output_shape == (None, 28, 28, 1)


def test_evaluate_averages_the_loss_over_the_pixels(rng):
    """evaluate's loss of an image-shaped output is the mean over every pixel, as Keras reports."""
    model = load_script("examples/fashion_mnist_autoencoder.py").build_model()
    x = rng.random((6, 28, 28, 1), dtype=np.float32)
    p = model.predict(x, verbose=0)
    np.testing.assert_allclose(model.evaluate(x, x, batch_size=4, verbose=0),
                               losses.binary_crossentropy(x, p).mean(), rtol=1e-5)


def test_noise_is_clipped_and_seeded():
    example = load_script("examples/fashion_mnist_autoencoder.py")
    images = np.full((2, 28, 28, 1), 0.5, np.float32)
    noisy = example.add_noise(images, 0.3, seed=1)
    assert noisy.dtype == np.float32 and noisy.min() >= 0 and noisy.max() <= 1 and noisy.std() > 0.2
    np.testing.assert_array_equal(noisy, example.add_noise(images, 0.3, seed=1))


def test_fit_weights_each_image_by_its_sample_weight(rng):
    """With image-shaped outputs, sample_weight (N,) weights each image's mean loss over its
    pixels, as Keras: the loss fit reports is sum_n w_n mean_pixels(loss_n) / N."""
    model = load_script("examples/fashion_mnist_autoencoder.py").build_model()
    x = rng.random((6, 28, 28, 1), dtype=np.float32)
    w = np.array([1, 0, 2, 0.5, 1, 3], np.float32)
    p = model.predict(x, verbose=0)  # the weights before the one step fit takes
    want = (losses.binary_crossentropy(x, p).reshape(6, -1).mean(axis=1) * w).mean()
    history = model.fit(x, x, sample_weight=w, batch_size=6, epochs=1, verbose=0)
    assert history.history["loss"][0] == pytest.approx(want, rel=1e-5)
