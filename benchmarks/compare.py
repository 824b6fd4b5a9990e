"""minicnn against Keras on the tutorial model, side by side, each engine in its own process.

    python benchmarks/compare.py [--epochs 5] [--threads 2] [--out benchmarks/results]
    python benchmarks/compare.py --model recipe --epochs 3 --engines minicnn-numba keras
    python benchmarks/compare.py --engines minicnn-cupy torch-cuda --batch 64   # on a GPU machine

Runs, one after another and never together: minicnn on the Numba backend (all 60,000 images),
minicnn on the NumPy reference backend (a subset, its times scaled to 60,000 images), and
Keras on TensorFlow CPU (`pip install ".[bench]"`; skipped when missing). Same data, same
batch (64 unless --batch), same thread count. Prints a table, writes compare.json and
compare.png to --out. The GPU columns: minicnn on CuPy (`pip install ".[gpu]"`) and the same
model in PyTorch on CUDA, batches copied to the GPU one at a time in both.

--model recipe trains the network of examples/fashion_mnist_recipe.py instead (BatchNormalization,
Dropout, RandomFlip and RandomTranslation, AdamW with its warm-up and cosine schedule over --epochs,
label smoothing): the same function builds it in minicnn and in Keras.

Figures: steady-state seconds per epoch (the median of the epochs after the first), the first
epoch's seconds (it pays JIT compilation or cache loading), training images/s, inference
images/s at batch 64 and 1000, peak RSS of the process (data included), test accuracy.
"""
import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

ENGINES = ("minicnn-numba", "minicnn-numpy", "keras", "minicnn-cupy", "torch-cuda")
CPU_ENGINES = ENGINES[:3]


def thread_env(threads):
    n = str(threads)
    return {"OMP_NUM_THREADS": n, "OPENBLAS_NUM_THREADS": n, "MKL_NUM_THREADS": n, "NUMBA_NUM_THREADS": n,
            "TF_CPP_MIN_LOG_LEVEL": "2"}


def load(n_train):
    from minicnn.datasets import fashion_mnist
    from minicnn.utils import to_categorical
    (x, y), (xt, yt) = fashion_mnist.load_data()
    x = (x[:n_train].reshape(-1, 28, 28, 1).astype("float32") / 255)
    xt = xt.reshape(-1, 28, 28, 1).astype("float32") / 255
    return x, to_categorical(y[:n_train], 10), xt, to_categorical(yt, 10)


def recipe_module():
    """examples/fashion_mnist_recipe.py, imported by path (examples/ is not a package)."""
    import importlib.util
    path = Path(__file__).resolve().parents[1] / "examples" / "fashion_mnist_recipe.py"
    spec = importlib.util.spec_from_file_location("fashion_mnist_recipe", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def build(lib, model_name="tutorial", steps_per_epoch=938, epochs=5):
    if model_name == "recipe":
        recipe = recipe_module()
        return recipe.compile_model(recipe.build_model(lib), lib, steps_per_epoch, epochs)
    L = lib.layers
    first = [L.Input((28, 28, 1)), L.Conv2D(64, (3, 3))] if hasattr(L, "Input") else \
        [L.Conv2D(64, (3, 3), input_shape=(28, 28, 1))]
    model = lib.models.Sequential(first + [
        L.Activation("relu"), L.MaxPooling2D((2, 2)), L.Conv2D(64, (3, 3)), L.Activation("relu"),
        L.MaxPooling2D((2, 2)), L.Flatten(), L.Dense(64), L.Dense(10), L.Activation("softmax")])
    model.compile(loss="categorical_crossentropy", optimizer=lib.optimizers.Adam(), metrics=["accuracy"])
    return model


class TorchModel:
    """The tutorial model in PyTorch on CUDA, with fit / predict / evaluate as Keras names them."""

    def __init__(self, seed, device="cuda"):
        import torch
        from torch import nn
        torch.manual_seed(seed)
        self.torch, self.dev = torch, torch.device(device)
        self.net = nn.Sequential(nn.Conv2d(1, 64, 3), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(64, 64, 3), nn.ReLU(),
                                 nn.MaxPool2d(2), nn.Flatten(), nn.Linear(1600, 64), nn.Linear(64, 10)).to(self.dev)
        self.opt = torch.optim.Adam(self.net.parameters(), lr=1e-3, eps=1e-7)
        self.loss = nn.CrossEntropyLoss()
        import numpy as np
        self.np, self.rng = np, np.random.default_rng(seed)

    def _batch(self, x):  # NHWC float32 on the host -> NCHW on the GPU, one batch at a time
        return self.torch.from_numpy(self.np.ascontiguousarray(x.transpose(0, 3, 1, 2))).to(self.dev)

    def fit(self, x, y, batch_size, epochs=1, verbose=0):
        labels = y.argmax(1)
        for _ in range(epochs):
            order = self.rng.permutation(len(x))
            for start in range(0, len(x), batch_size):
                idx = order[start:start + batch_size]
                target = self.torch.from_numpy(labels[idx]).to(self.dev)
                self.opt.zero_grad(set_to_none=True)
                self.loss(self.net(self._batch(x[idx])), target).backward()
                self.opt.step()
        if self.dev.type == "cuda":
            self.torch.cuda.synchronize()

    def predict(self, x, batch_size, verbose=0):
        with self.torch.no_grad():
            return self.np.concatenate([self.net(self._batch(x[s:s + batch_size])).softmax(1).cpu().numpy()
                                   for s in range(0, len(x), batch_size)])

    def evaluate(self, x, y, batch_size, verbose=0):
        np, p = self.np, self.predict(x, batch_size)
        return [float(-np.log(np.clip((p * y).sum(1), 1e-7, 1)).mean()), float((p.argmax(1) == y.argmax(1)).mean())]


def worker(engine, epochs, n_train, batch, seed=0, model_name="tutorial"):
    """Train and measure one engine in this process; print one JSON line."""
    if engine == "keras":
        os.environ.setdefault("KERAS_BACKEND", "tensorflow")
        import keras as lib
        import tensorflow as tf
        threads = int(os.environ["OMP_NUM_THREADS"])  # set by run() from --threads
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(threads)
        lib.utils.set_random_seed(seed)
    elif engine == "torch-cuda":
        lib = None
    else:
        import minicnn as lib
        lib.backend.set_backend(engine.split("-")[1])
        lib.utils.set_random_seed(seed)
    x, y, xt, yt = load(n_train)
    if lib is None and model_name != "tutorial":
        raise SystemExit("torch-cuda runs the tutorial model only")
    model = TorchModel(seed) if lib is None else build(lib, model_name, -(-n_train // batch), epochs)
    epoch_times = []
    for _ in range(epochs):  # one fit per epoch, so each epoch is timed alone
        t = time.perf_counter()
        model.fit(x, y, batch_size=batch, epochs=1, verbose=0)
        epoch_times.append(time.perf_counter() - t)
    scale = 60000 / n_train
    steady = statistics.median(epoch_times[1:]) if epochs > 1 else epoch_times[0]
    result = {"engine": engine, "model": model_name, "seed": seed, "train_images": n_train, "epochs": epochs, "batch": batch,
              "epoch_seconds": [t * scale for t in epoch_times], "seconds_per_epoch": steady * scale,
              "first_epoch_seconds": epoch_times[0] * scale, "train_images_per_s": n_train / steady}
    for b in (64, 1000):
        model.predict(xt[:b], batch_size=b, verbose=0)  # warm-up
        t = time.perf_counter()
        model.predict(xt, batch_size=b, verbose=0)
        result[f"inference_images_per_s_b{b}"] = len(xt) / (time.perf_counter() - t)
    result["test_accuracy"] = float(model.evaluate(xt, yt, batch_size=1000, verbose=0)[1]) \
        if n_train == 60000 else None  # a subset's accuracy says nothing about the engine
    result["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print("RESULT " + json.dumps(result), flush=True)


def run(engine, args):
    n_train = args.numpy_subset if engine == "minicnn-numpy" else 60000
    epochs = 2 if engine == "minicnn-numpy" else args.epochs
    cmd = [sys.executable, __file__, "--worker", engine, "--epochs", str(epochs), "--train", str(n_train),
           "--seed", str(args.seed), "--batch", str(args.batch), "--model", args.model]
    print(f"running {engine} ({n_train} images, {epochs} epochs, batch {args.batch})...", flush=True)
    proc = subprocess.run(cmd, env={**os.environ, **thread_env(args.threads)}, capture_output=True, text=True, check=False)
    for line in proc.stdout.splitlines():
        if line.startswith("RESULT "):
            return json.loads(line[7:])
    tail = proc.stderr.strip().splitlines()[-3:]
    print(f"  {engine} did not finish: {' | '.join(tail)}")
    return None


def chart(results, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    names = [r["engine"] for r in results]
    fig, axes = plt.subplots(1, 3, figsize=(12, 3.6))
    for ax, key, title in [(axes[0], "seconds_per_epoch", "training: seconds per epoch (lower is better)"),
                           (axes[1], "inference_images_per_s_b64", "inference images/s, batch 64"),
                           (axes[2], "inference_images_per_s_b1000", "inference images/s, batch 1000")]:
        bars = ax.bar(names, [r[key] for r in results], color=["#2a7", "#9bd", "#e73", "#275", "#c51"][:len(names)])
        ax.bar_label(bars, fmt="%.1f" if key == "seconds_per_epoch" else "%.0f")
        ax.set_title(title, fontsize=9)
        ax.tick_params(axis="x", labelsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=90)


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--epochs", type=int, default=5)
    p.add_argument("--threads", type=int, default=os.cpu_count())
    p.add_argument("--numpy-subset", type=int, default=6000)
    p.add_argument("--seed", type=int, default=0, help="seeds weights and shuffling in every engine")
    p.add_argument("--engines", nargs="+", default=list(CPU_ENGINES), choices=ENGINES)
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--model", choices=("tutorial", "recipe"), default="tutorial")
    p.add_argument("--out", default=str(Path(__file__).parent / "results"))
    p.add_argument("--worker", choices=ENGINES, help=argparse.SUPPRESS)
    p.add_argument("--train", type=int, default=60000, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.worker:
        return worker(args.worker, args.epochs, args.train, args.batch, args.seed, args.model)
    results = [r for r in (run(engine, args) for engine in args.engines) if r]
    peer = next((r for r in results if r["engine"] in ("keras", "torch-cuda")), None)
    versus = "x " + ("Keras" if peer and peer["engine"] == "keras" else "torch")
    head = f"{'engine':14} {'s/epoch':>8} {versus:>8} {'1st epoch':>9} {'train img/s':>11} " \
           f"{'infer b64':>9} {'infer b1000':>11} {'peak RSS MB':>11} {'test acc':>8}"
    print(f"\n{args.model} model, {args.threads} threads, batch {args.batch}\n{head}")
    for r in results:
        ratio = f"{r['seconds_per_epoch'] / peer['seconds_per_epoch']:8.2f}" if peer else " " * 8
        acc = f"{r['test_accuracy']:8.4f}" if r["test_accuracy"] is not None else "  subset"
        print(f"{r['engine']:14} {r['seconds_per_epoch']:8.1f} {ratio} {r['first_epoch_seconds']:9.1f} "
              f"{r['train_images_per_s']:11.0f} {r['inference_images_per_s_b64']:9.0f} "
              f"{r['inference_images_per_s_b1000']:11.0f} {r['peak_rss_mb']:11.0f} {acc}")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    stem = "compare" if args.model == "tutorial" else f"compare-{args.model}"
    (out / f"{stem}.json").write_text(json.dumps({"model": args.model, "threads": args.threads, "batch": args.batch,
                                                  "results": results}, indent=1))
    chart(results, out / f"{stem}.png")
    print(f"wrote {out / (stem + '.json')} and {out / (stem + '.png')}")


if __name__ == "__main__":
    main()
