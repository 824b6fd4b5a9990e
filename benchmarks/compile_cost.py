"""What the Numba kernels cost before the first training step: compilation, or loading them
from the on-disk cache.

    python benchmarks/compile_cost.py

Runs the tutorial model's first training step and prediction twice, each in a fresh process:
first with an empty NUMBA_CACHE_DIR (everything compiles), then with that cache warm. Prints,
for each, the first step's seconds, a second step's milliseconds, and their difference.
"""
import os
import subprocess
import sys
import tempfile

STEP = """
import time
import minicnn
import numpy as np
from minicnn.layers import Activation, Conv2D, Dense, Flatten, MaxPooling2D
from minicnn.models import Sequential
from minicnn.utils import to_categorical
m = Sequential([Conv2D(64, (3, 3), input_shape=(28, 28, 1)), Activation("relu"), MaxPooling2D(),
                Conv2D(64, (3, 3)), Activation("relu"), MaxPooling2D(), Flatten(), Dense(64), Dense(10),
                Activation("softmax")])
m.compile(loss="categorical_crossentropy", optimizer="adam")
x = np.random.default_rng(0).random((64, 28, 28, 1), dtype=np.float32)
y = to_categorical(np.arange(64) % 10, 10)
times = []
for _ in range(2):
    t = time.perf_counter()
    m.train_on_batch(x, y)
    m.predict(x, verbose=0)
    times.append(time.perf_counter() - t)
print(f"first step + predict {times[0]:.2f} s; second {times[1] * 1000:.0f} ms; "
      f"compile or cache cost {times[0] - times[1]:.2f} s")
"""


def main():
    with tempfile.TemporaryDirectory() as cache:
        env = {**os.environ, "NUMBA_CACHE_DIR": cache, "MINICNN_BACKEND": "numba"}
        for label in ("empty cache", "warm cache"):
            out = subprocess.run([sys.executable, "-c", STEP], env=env, capture_output=True, text=True, check=True)
            print(f"{label:12} {out.stdout.strip()}")


if __name__ == "__main__":
    main()
