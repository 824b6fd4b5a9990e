"""The same weights in minicnn and in Keras give the same predictions, both ways.

    pip install ".[keras]" && python examples/keras_comparison.py [--model model.npz]

minicnn's weights have Keras's shapes and order (conv kernel (KH, KW, C, F), dense kernel
(in, units), then each bias), so `keras_model.set_weights(model.get_weights())` just works.
"""
import argparse
import os

import numpy as np

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from minicnn import tutorial
from minicnn.models import load_model


def keras_tutorial_model(keras):
    L = keras.layers
    return keras.Sequential([keras.Input((28, 28, 1)), L.Conv2D(64, (3, 3)), L.Activation("relu"),
                             L.MaxPooling2D((2, 2)), L.Conv2D(64, (3, 3)), L.Activation("relu"),
                             L.MaxPooling2D((2, 2)), L.Flatten(), L.Dense(64), L.Dense(10), L.Activation("softmax")])


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="a saved minicnn model (default: train one epoch on 10,000 images)")
    args = parser.parse_args()
    try:
        import keras
    except ImportError:
        raise SystemExit("this example needs Keras: pip install '.[keras]'") from None

    (x, y), (xt, yt) = tutorial.load_data()
    if args.model:
        model = load_model(args.model)
    else:
        model = tutorial.build_model()
        model.fit(x[:10000], y[:10000], batch_size=64, epochs=1)

    k_model = keras_tutorial_model(keras)
    k_model.set_weights(model.get_weights())  # minicnn -> Keras
    ours, theirs = model.predict(xt, verbose=0), k_model.predict(xt, verbose=0)
    print(f"minicnn -> Keras: largest difference of 10,000 x 10 probabilities: {np.abs(ours - theirs).max():.2e}; "
          f"predicted classes agree on {np.mean(ours.argmax(1) == theirs.argmax(1)):.2%} of the test images")

    k_model.compile(loss="categorical_crossentropy", optimizer="adam", metrics=["accuracy"])
    k_model.fit(x[:10000], y[:10000], batch_size=64, epochs=1, verbose=0)  # Keras trains a little more
    model.set_weights(k_model.get_weights())  # Keras -> minicnn
    ours, theirs = model.predict(xt, verbose=0), k_model.predict(xt, verbose=0)
    print(f"Keras -> minicnn: largest difference {np.abs(ours - theirs).max():.2e}; "
          f"test accuracy minicnn {np.mean(ours.argmax(1) == yt.argmax(1)):.4f}, "
          f"Keras {np.mean(theirs.argmax(1) == yt.argmax(1)):.4f}")


if __name__ == "__main__":
    main()
