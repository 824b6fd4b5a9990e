"""minicnn against Keras and PyTorch, on the tutorial model or the recipe's, side by side, each engine in its own process.

    python benchmarks/compare.py [--epochs 5] [--threads 2] [--out benchmarks/results]
    python benchmarks/compare.py --model recipe --epochs 3 --engines minicnn-numba keras torch-cpu
    python benchmarks/compare.py --engines minicnn-cupy torch-cuda --batch 64   # on a GPU machine

Runs, one after another and never together: minicnn on the Numba backend (all 60,000 images),
minicnn on the NumPy reference backend (a subset, its times scaled to 60,000 images),
Keras on TensorFlow CPU (`pip install ".[bench]"`; skipped when missing), PyTorch CPU (below). Same data, same
batch (64 unless --batch), same thread count. Prints a table, writes compare.json and
compare.png to --out. PyTorch on the CPU (torch-cpu; not in any extra: `pip install torch
--index-url https://download.pytorch.org/whl/cpu`, a plain `pip install torch` on Linux pulls
the CUDA build): the same model, channels-last, torch's threads set to --threads. The GPU
columns: minicnn on CuPy (`pip install ".[gpu]"`) and the same model in PyTorch on CUDA,
batches copied to the GPU one at a time in both.

Ratios: "x best" is minicnn's epoch time over the best peer's (Keras, PyTorch) in the same run,
and its inference images/s over the best peer's; "x limit" is the epoch time over the FLOP
limit: the training multiply-adds (counted by minicnn's layers) at NumPy's sgemm peak, measured
in the same run with the same threads.

--model recipe trains the network of examples/fashion_mnist_recipe.py instead (BatchNormalization,
Dropout, RandomFlip and RandomTranslation, AdamW with its warm-up and cosine schedule over --epochs,
label smoothing): the same function builds it in minicnn and in Keras.

Figures: steady-state seconds per epoch (the median of the epochs after the first), the first
epoch's seconds (it pays JIT compilation or cache loading), training images/s, inference
images/s at batch 64 and 1000 (the median of INFERENCE_PASSES passes over the 10,000 test
images, after one warm-up batch; every pass is in the JSON), peak RSS of the process (data
included), test accuracy.
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

ENGINES = ("minicnn-numba", "minicnn-numpy", "keras", "torch-cpu", "minicnn-cupy", "torch-cuda")
CPU_ENGINES = ENGINES[:4]
PEERS = ("keras", "torch-cpu", "torch-cuda")
INFERENCE_PASSES = 3  # timed passes over the test set per batch size; the median is reported


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


def keras_lr(step, steps_per_epoch, epochs, peak=2e-3):
    """The recipe's learning rate at step (0-based), as Keras's CosineDecay computes it with the
    recipe's arguments: linear warm-up from peak / 10 to peak over the first epoch, then a cosine
    decay to 0 over the remaining steps (examples/fashion_mnist_recipe.py: compile_model)."""
    import math
    warmup, decay = steps_per_epoch, max(1, steps_per_epoch * epochs - steps_per_epoch)
    if step < warmup:
        return peak / 10 + (peak - peak / 10) * step / warmup
    return peak * 0.5 * (1 + math.cos(math.pi * min(step - warmup, decay) / decay))


class TorchModel:
    """The tutorial model, or the recipe's, in PyTorch, with fit / predict / evaluate as Keras names
    them. On the CPU: channels-last tensors (oneDNN's fast layout) and torch's own thread pool
    with --threads threads; on CUDA: batches copied to the GPU one at a time, as minicnn-cupy's.

    The recipe, layer for layer: Conv(3x3, same, no bias) -> BatchNorm (Keras's momentum 0.99 is
    torch's 0.01, epsilon 1e-3) -> ReLU -> MaxPool, three times (32, 64, 128), Dropout 0.1/0.2/0.3,
    Dense 128; random left-right flips and shifts of up to 10% (2-3 whole pixels, zeros filled in,
    as RandomTranslation's "nearest" and "constant" do); AdamW (weight decay 5e-4, epsilon 1e-7)
    with the same warm-up and cosine schedule, set each step. Weights start from torch's
    initializers, not Keras's: the accuracies are comparable, not equal."""

    def __init__(self, seed, device="cuda", model_name="tutorial", steps_per_epoch=938, epochs=5):
        import numpy as np
        import torch
        from torch import nn
        torch.manual_seed(seed)
        self.torch, self.dev, self.np, self.rng = torch, torch.device(device), np, np.random.default_rng(seed)
        self.recipe = model_name == "recipe"
        if self.recipe:
            def block(c_in, c_out):
                return [nn.Conv2d(c_in, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out, eps=1e-3, momentum=0.01),
                        nn.ReLU(), nn.MaxPool2d(2)]
            self.net = nn.Sequential(*block(1, 32), *block(32, 64), nn.Dropout(0.1), *block(64, 128), nn.Dropout(0.2),
                                     nn.Flatten(), nn.Linear(1152, 128), nn.ReLU(), nn.Dropout(0.3), nn.Linear(128, 10))
            self.opt = torch.optim.AdamW(self.net.parameters(), lr=keras_lr(0, steps_per_epoch, epochs), eps=1e-7,
                                         weight_decay=5e-4)
            self.schedule = lambda step: keras_lr(step, steps_per_epoch, epochs)
        else:
            self.net = nn.Sequential(nn.Conv2d(1, 64, 3), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(64, 64, 3), nn.ReLU(),
                                     nn.MaxPool2d(2), nn.Flatten(), nn.Linear(1600, 64), nn.Linear(64, 10))
            self.opt = torch.optim.Adam(self.net.parameters(), lr=1e-3, eps=1e-7)
            self.schedule = None
        self.net = self.net.to(self.dev)
        if self.dev.type == "cpu":
            self.net = self.net.to(memory_format=torch.channels_last)
        self.loss = nn.CrossEntropyLoss()
        self.step = 0

    def _batch(self, x):  # NHWC float32 on the host -> a (N, C, H, W) tensor on the device
        t = self.torch.from_numpy(x).permute(0, 3, 1, 2)  # a view: NHWC memory is channels-last already
        return t.contiguous(memory_format=self.torch.channels_last) if self.dev.type == "cpu" else \
            t.contiguous().to(self.dev)

    def _augment(self, x):
        """Random flips and whole-pixel shifts of a (N, 28, 28, 1) batch, on the host (as Keras's layers)."""
        np, n = self.np, len(x)
        flip = self.rng.random(n) < 0.5
        x = np.where(flip[:, None, None, None], x[:, :, ::-1], x)
        shifts = np.rint(self.rng.uniform(-0.1, 0.1, (n, 2)) * 28).astype(int)
        pad = np.zeros((n, 34, 34, 1), x.dtype)
        pad[:, 3:31, 3:31] = x
        rows = 3 - shifts[:, 0, None] + np.arange(28)
        cols = 3 - shifts[:, 1, None] + np.arange(28)
        return np.ascontiguousarray(pad[np.arange(n)[:, None, None], rows[:, :, None], cols[:, None, :]])

    def fit(self, x, y, batch_size, epochs=1, verbose=0):
        labels = y.argmax(1)
        self.net.train()
        for _ in range(epochs):
            order = self.rng.permutation(len(x))
            for start in range(0, len(x), batch_size):
                idx = order[start:start + batch_size]
                xb = self._augment(x[idx]) if self.recipe else x[idx]
                if self.schedule:
                    for group in self.opt.param_groups:
                        group["lr"] = self.schedule(self.step)
                target = self.torch.from_numpy(labels[idx]).to(self.dev)
                self.opt.zero_grad(set_to_none=True)
                self.loss(self.net(self._batch(xb)), target).backward()
                self.opt.step()
                self.step += 1
        if self.dev.type == "cuda":
            self.torch.cuda.synchronize()

    def predict(self, x, batch_size, verbose=0):
        self.net.eval()
        with self.torch.inference_mode():
            return self.np.concatenate([self.net(self._batch(x[s:s + batch_size])).softmax(1).cpu().numpy()
                                        for s in range(0, len(x), batch_size)])

    def evaluate(self, x, y, batch_size, verbose=0):
        np, p = self.np, self.predict(x, batch_size)
        return [float(-np.log(np.clip((p * y).sum(1), 1e-7, 1)).mean()), float((p.argmax(1) == y.argmax(1)).mean())]


def training_macs(model_name):
    """Multiply-adds of one training image: forward, weight gradients, input gradients (all but the
    first layer's), counted by minicnn's layers for the model benchmarks run."""
    import minicnn
    model = build(minicnn, model_name)
    shape, fwd, bwd, first = model.input_shape, 0, 0, True
    for layer in model.layers:
        m = layer.count_macs(shape)
        fwd += m
        bwd += m * (1 if first and m else 2)
        first = first and not m
        shape = layer.compute_output_shape(shape)
    return fwd + bwd


def sgemm_peak():
    """Best GFLOP/s of NumPy's float32 matrix product (its BLAS) on this machine, with these threads:
    the FLOP limit that an epoch's multiply-adds are held to."""
    import numpy as np
    best = 0.0
    for n in (1024, 2048):
        a = np.random.default_rng(0).random((n, n), dtype=np.float32)
        a @ a
        for _ in range(3):
            t = time.perf_counter()
            a @ a
            best = max(best, 2 * n ** 3 / (time.perf_counter() - t) / 1e9)
    return best


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
    elif engine.startswith("torch"):
        import torch
        torch.set_num_threads(int(os.environ["OMP_NUM_THREADS"]))
        lib = None
    else:
        import minicnn as lib
        lib.backend.set_backend(engine.split("-")[1])
        lib.utils.set_random_seed(seed)
    x, y, xt, yt = load(n_train)
    steps = -(-n_train // batch)
    model = TorchModel(seed, engine.split("-")[1], model_name, steps, epochs) if lib is None else \
        build(lib, model_name, steps, epochs)
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
        model.predict(xt[:b], batch_size=b, verbose=0)  # warm-up: compilation, the first allocations
        rates = []
        for _ in range(INFERENCE_PASSES):  # the steady state, as for the epochs: the median pass
            t = time.perf_counter()
            model.predict(xt, batch_size=b, verbose=0)
            rates.append(len(xt) / (time.perf_counter() - t))
        result[f"inference_images_per_s_b{b}"] = statistics.median(rates)
        result[f"inference_passes_b{b}"] = rates
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
            r = json.loads(line[7:])  # said at once, so that a run cut short keeps what it measured
            print(f"  {engine}: {r['seconds_per_epoch']:.2f} s per epoch (epochs "
                  f"{', '.join(f'{t:.2f}' for t in r['epoch_seconds'])}), inference "
                  f"{r['inference_images_per_s_b64']:,.0f} / {r['inference_images_per_s_b1000']:,.0f} img/s "
                  "at batch 64 / 1000", flush=True)
            return r
    tail = proc.stderr.strip().splitlines()[-8:]
    print(f"  {engine} did not finish: {' | '.join(tail)}")
    return None


def flop_limit(args):
    """Seconds per epoch if every multiply-add of training ran at NumPy's sgemm peak, measured now
    in a process with the same threads (its BLAS reads the thread count when it loads)."""
    cmd = [sys.executable, __file__, "--sgemm-peak", "--model", args.model]
    proc = subprocess.run(cmd, env={**os.environ, **thread_env(args.threads)}, capture_output=True, text=True,
                          check=True)
    return json.loads(proc.stdout.strip().splitlines()[-1])


def markdown(results, limit, args):
    """The table, as docs/benchmarks.md shows it."""
    def num(v, fmt):
        return "" if v is None else format(v, fmt)
    title = (f"{args.model} model, {args.threads} threads, batch {args.batch}, seed {args.seed}; FLOP limit "
             f"{limit['seconds_per_epoch']:.1f} s per epoch (sgemm {limit['sgemm_gflops']:.0f} GFLOP/s)")
    head = ("| engine | s / epoch | x best peer | x FLOP limit | 1st epoch s | infer img/s b64 | x best peer | "
            "infer img/s b1000 | x best peer | peak RSS MB | test acc |")
    lines = [title, "", head, "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for r in results:
        lines.append(f"| {r['engine']} | {r['seconds_per_epoch']:.1f} | {num(r.get('x_best_peer_epoch'), '.2f')} | "
                     f"{r['x_limit']:.2f} | {r['first_epoch_seconds']:.1f} | {r['inference_images_per_s_b64']:,.0f} | "
                     f"{num(r.get('x_best_peer_b64'), '.2f')} | {r['inference_images_per_s_b1000']:,.0f} | "
                     f"{num(r.get('x_best_peer_b1000'), '.2f')} | {r['peak_rss_mb']:,.0f} | "
                     f"{num(r['test_accuracy'], '.4f') or 'subset'} |")
    lines.append("")
    lines.append("Epochs, seconds: " + "; ".join(f"{r['engine']} " + ", ".join(f"{t:.1f}" for t in r["epoch_seconds"])
                                                for r in results))
    return "\n".join(lines) + "\n"


def chart(results, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    names = [r["engine"] for r in results]
    fig, axes = plt.subplots(1, 3, figsize=(12, 3.6))
    for ax, key, title in [(axes[0], "seconds_per_epoch", "training: seconds per epoch (lower is better)"),
                           (axes[1], "inference_images_per_s_b64", "inference images/s, batch 64"),
                           (axes[2], "inference_images_per_s_b1000", "inference images/s, batch 1000")]:
        bars = ax.bar(names, [r[key] for r in results], color=["#2a7", "#9bd", "#e73", "#c51", "#275", "#a35"][:len(names)])
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
    p.add_argument("--sgemm-peak", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.sgemm_peak:
        gflops, macs = sgemm_peak(), training_macs(args.model)
        gflop = 2 * macs * 60000 / 1e9
        print(json.dumps({"sgemm_gflops": gflops, "training_macs_per_image": macs, "training_gflop_per_epoch": gflop,
                          "seconds_per_epoch": gflop / gflops}))
        return None
    if args.worker:
        return worker(args.worker, args.epochs, args.train, args.batch, args.seed, args.model)
    results = [r for r in (run(engine, args) for engine in args.engines) if r]
    limit = flop_limit(args)
    print(f"\n{args.model} model, {args.threads} threads, batch {args.batch}; FLOP limit: {limit['seconds_per_epoch']:.1f} s "
          f"per epoch ({limit['training_gflop_per_epoch']:,.0f} GFLOP at NumPy's sgemm peak, "
          f"{limit['sgemm_gflops']:.0f} GFLOP/s)")
    peers = [r for r in results if r["engine"] in PEERS]
    best = min(peers, key=lambda r: r["seconds_per_epoch"]) if peers else None
    best64 = max(peers, key=lambda r: r["inference_images_per_s_b64"]) if peers else None
    best1000 = max(peers, key=lambda r: r["inference_images_per_s_b1000"]) if peers else None
    print(f"{'engine':14} {'s/epoch':>8} {'x best':>7} {'x limit':>7} {'1st epoch':>9} {'infer b64':>9} {'x best':>7} "
          f"{'infer b1000':>11} {'x best':>7} {'peak RSS MB':>11} {'test acc':>8}")
    for r in results:
        r["x_limit"] = r["seconds_per_epoch"] / limit["seconds_per_epoch"]
        if best:  # training: time over the best peer's (lower is better); inference: images/s over the best's
            r["x_best_peer_epoch"] = r["seconds_per_epoch"] / best["seconds_per_epoch"]
            r["x_best_peer_b64"] = r["inference_images_per_s_b64"] / best64["inference_images_per_s_b64"]
            r["x_best_peer_b1000"] = r["inference_images_per_s_b1000"] / best1000["inference_images_per_s_b1000"]
        def ratio(key, r=r):
            return f"{r[key]:7.2f}" if best else " " * 7
        acc = f"{r['test_accuracy']:8.4f}" if r["test_accuracy"] is not None else "  subset"
        print(f"{r['engine']:14} {r['seconds_per_epoch']:8.1f} {ratio('x_best_peer_epoch')} {r['x_limit']:7.2f} "
              f"{r['first_epoch_seconds']:9.1f} {r['inference_images_per_s_b64']:9.0f} {ratio('x_best_peer_b64')} "
              f"{r['inference_images_per_s_b1000']:11.0f} {ratio('x_best_peer_b1000')} {r['peak_rss_mb']:11.0f} {acc}")
    if best:
        print(f"x best: against the best peer ({', '.join(PEERS)}) in this run: {best['engine']} for training, "
              f"{best64['engine']} / {best1000['engine']} for inference")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    stem = "compare" if args.model == "tutorial" else f"compare-{args.model}"
    (out / f"{stem}.json").write_text(json.dumps({"model": args.model, "threads": args.threads, "batch": args.batch,
                                                  "flop_limit": limit, "results": results}, indent=1))
    chart(results, out / f"{stem}.png")
    (out / f"{stem}.md").write_text(markdown(results, limit, args))
    print(f"wrote {out / (stem + '.json')}, .png and .md")


if __name__ == "__main__":
    main()
