"""minicnn against Keras and PyTorch on one network, side by side, each engine in its own process.

    python benchmarks/compare.py [--epochs 5] [--threads 2] [--out benchmarks/results]
    python benchmarks/compare.py --model recipe --epochs 3 --engines minicnn-numba keras torch-cpu
    python benchmarks/compare.py --model resnet20 --epochs 3 --train-size 10000 --engines minicnn-numba keras torch-cpu
    python benchmarks/compare.py --engines minicnn-cupy torch-cuda --batch 64   # on a GPU machine

--model: tutorial (default), recipe, cifar-cnn, resnet20, autoencoder; benchmarks/networks.py
builds each, the same in every engine, with the batch size its example trains with (--batch
changes it). Before anything is timed, each engine builds the network in a process of its own
and the run stops unless all have the same parameter counts and output shape.

Runs, one after another and never together: minicnn on the Numba backend, minicnn on the NumPy
reference backend (--numpy-subset images), Keras on TensorFlow CPU (`pip install ".[bench]"`;
skipped when missing), PyTorch CPU (below). Same data, same batch, same thread count. Prints a
table, writes compare[-MODEL].json, .md and .png to --out. PyTorch on the CPU (torch-cpu; not in
any extra: `pip install torch --index-url https://download.pytorch.org/whl/cpu`, a plain `pip
install torch` on Linux pulls the CUDA build): the same model, channels-last, torch's threads set
to --threads. The GPU columns: minicnn on CuPy (`pip install ".[gpu]"`) and the same model in
PyTorch on CUDA, batches copied to the GPU one at a time in both.

Data: Fashion-MNIST for tutorial, recipe and autoencoder (its images are its targets); CIFAR-10
for cifar-cnn and resnet20 when its archive is on the machine (MINICNN_DATA_DIR or minicnn's
cache), otherwise random arrays of its shapes, and the output says which. --train-size trains
on the first N images and scales the times to a full epoch (60,000 or 50,000 images);
--test-size sets the images of each inference pass.

Ratios: "x best" is minicnn's epoch time over the best peer's (Keras, PyTorch) in the same run,
and its inference images/s over the best peer's; "x limit" is the epoch time over the FLOP
limit: the training multiply-adds (counted by minicnn's layers) at NumPy's sgemm peak, measured
in the same run with the same threads.

Figures: steady-state seconds per epoch (the median of the epochs after the first), the first
epoch's seconds (it pays JIT compilation or cache loading), training images/s, inference
images/s at batch 64 and 1000 (the median of INFERENCE_PASSES passes over the test images,
after one warm-up batch; every pass is in the JSON), peak RSS of the process (data included,
and its size in data_mb), test accuracy on real data after a full epoch (the autoencoder: its
test loss, binary cross-entropy per pixel).
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

from networks import MODELS, TorchModel, build, check_same, describe, keras_lr  # noqa: F401  (beside this script)

ENGINES = ("minicnn-numba", "minicnn-numpy", "keras", "torch-cpu", "minicnn-cupy", "torch-cuda")
CPU_ENGINES = ENGINES[:4]
PEERS = ("keras", "torch-cpu", "torch-cuda")
INFERENCE_PASSES = 3  # timed passes over the test set per batch size; the median is reported


def thread_env(threads):
    n = str(threads)
    return {"OMP_NUM_THREADS": n, "OPENBLAS_NUM_THREADS": n, "MKL_NUM_THREADS": n, "NUMBA_NUM_THREADS": n,
            "TF_CPP_MIN_LOG_LEVEL": "2"}


def load(model_name, n_train, n_test=10000, seed=0):
    """(x, y, x_test, y_test, what the data is) for model_name: its first n_train training and
    n_test test images, float32 in [0, 1]. Fashion-MNIST is read from disk; CIFAR-10 too when its
    archive is on the machine (MINICNN_DATA_DIR or minicnn's cache; never downloaded here), else
    random arrays of its shapes stand in: the time of a step does not depend on the pixels.
    y: one-hot labels, or the images themselves for an autoencoder."""
    import numpy as np

    from minicnn.utils import to_categorical
    spec = MODELS[model_name]
    if spec.data == "fashion-mnist":
        from minicnn.datasets import fashion_mnist
        (x, y), (xt, yt) = fashion_mnist.load_data()
        data = "Fashion-MNIST"
    elif cifar10_archive():
        from minicnn.datasets import cifar10
        (x, y), (xt, yt) = cifar10.load_data(cifar10_archive())
        data = "CIFAR-10"
    else:
        rng = np.random.default_rng(seed)
        x = rng.integers(0, 256, (n_train, 32, 32, 3), dtype=np.uint8)
        xt = rng.integers(0, 256, (n_test, 32, 32, 3), dtype=np.uint8)
        y, yt = rng.integers(0, 10, n_train), rng.integers(0, 10, n_test)
        data = "synthetic (random arrays of CIFAR-10's shapes)"
    x = x[:n_train].reshape(-1, *spec.input_shape).astype("float32") / 255
    xt = xt[:n_test].reshape(-1, *spec.input_shape).astype("float32") / 255
    if spec.task == "reconstruct":
        return x, x, xt, xt, data
    return x, to_categorical(y[:n_train].ravel(), 10), xt, to_categorical(yt[:n_test].ravel(), 10), data


def cifar10_archive():
    """The CIFAR-10 archive where minicnn would find it without downloading, or None."""
    from minicnn.datasets import cifar10
    for folder in (os.environ.get("MINICNN_DATA_DIR"), cifar10.cache_dir()):
        if folder and (Path(folder) / cifar10.ARCHIVE).is_file():
            return Path(folder) / cifar10.ARCHIVE
    return None


def training_macs(model_name, width=1, size=None):
    """Multiply-adds of one training image: forward, weight gradients, input gradients (all but
    those of the layers that read the data), counted by minicnn's layers, call by call."""
    import minicnn
    model = build(minicnn, model_name, width=width, size=size)
    fwd = bwd = 0
    for node in model.nodes:
        layer = node.layer
        m = layer.count_macs(node.inputs[0].shape)
        fwd += m
        bwd += m * (2 if layer.input_grad else 1)
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


def engine_library(engine, seed=0):
    """Import and set up engine in this process, threads from OMP_NUM_THREADS (set by run()):
    the library that builds its models (minicnn or keras), or None for PyTorch (TorchModel)."""
    if engine == "keras":
        os.environ.setdefault("KERAS_BACKEND", "tensorflow")
        import keras as lib
        import tensorflow as tf
        threads = int(os.environ["OMP_NUM_THREADS"])
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(threads)
        lib.utils.set_random_seed(seed)
        return lib
    if engine.startswith("torch"):
        import torch
        torch.set_num_threads(int(os.environ["OMP_NUM_THREADS"]))
        return None
    import minicnn as lib
    lib.backend.set_backend(engine.split("-")[1])
    lib.utils.set_random_seed(seed)
    return lib


def worker(engine, epochs, n_train, batch, seed=0, model_name="tutorial", n_test=10000):
    """Train and measure one engine in this process; print one JSON line."""
    lib = engine_library(engine, seed)
    import numpy as np
    spec = MODELS[model_name]
    x, y, xt, yt, data = load(model_name, n_train, n_test, seed)
    steps = -(-n_train // batch)
    model = TorchModel(seed, engine.split("-")[1], model_name, steps, epochs) if lib is None else \
        build(lib, model_name, steps, epochs)
    epoch_times = []
    for _ in range(epochs):  # one fit per epoch, so each epoch is timed alone
        t = time.perf_counter()
        model.fit(x, y, batch_size=batch, epochs=1, verbose=0)
        epoch_times.append(time.perf_counter() - t)
    scale = spec.epoch_images / n_train
    steady = statistics.median(epoch_times[1:]) if epochs > 1 else epoch_times[0]
    result = {"engine": engine, "model": model_name, "data": data, "seed": seed, "train_images": n_train,
              "epoch_images": spec.epoch_images, "test_images": len(xt), "epochs": epochs, "batch": batch,
              "epoch_seconds": [t * scale for t in epoch_times], "seconds_per_epoch": steady * scale,
              "first_epoch_seconds": epoch_times[0] * scale, "train_images_per_s": n_train / steady,
              "data_mb": sum(a.nbytes for a in (x, y, xt, yt) if a is not None) / 2 ** 20}
    for b in (64, 1000):
        model.predict(xt[:b], batch_size=b, verbose=0)  # warm-up: compilation, the first allocations
        rates = []
        for _ in range(INFERENCE_PASSES):  # the steady state, as for the epochs: the median pass
            t = time.perf_counter()
            model.predict(xt, batch_size=b, verbose=0)
            rates.append(len(xt) / (time.perf_counter() - t))
        result[f"inference_images_per_s_b{b}"] = statistics.median(rates)
        result[f"inference_passes_b{b}"] = rates
    full = n_train == spec.epoch_images and not data.startswith("synthetic")  # else the figure says nothing
    result["test_accuracy"] = result["test_loss"] = None
    if full and spec.task == "reconstruct":  # the same formula for every engine: Keras's, clipped at 1e-7
        p = np.clip(model.predict(xt, batch_size=1000, verbose=0), 1e-7, 1 - 1e-7)
        result["test_loss"] = float(-(yt * np.log(p) + (1 - yt) * np.log(1 - p)).mean())
    elif full:
        result["test_accuracy"] = float(model.evaluate(xt, yt, batch_size=1000, verbose=0)[1])
    result["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print("RESULT " + json.dumps(result), flush=True)


def run(engine, args):
    n_train = min(args.numpy_subset, args.train_size) if engine == "minicnn-numpy" else args.train_size
    epochs = 2 if engine == "minicnn-numpy" else args.epochs
    cmd = [sys.executable, __file__, "--worker", engine, "--epochs", str(epochs), "--train-size", str(n_train),
           "--test-size", str(args.test_size), "--seed", str(args.seed), "--batch", str(args.batch),
           "--model", args.model]
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


def check_networks(args):
    """Each engine's build of --model, described in a process of its own (describe() in
    benchmarks/networks.py); stops the run unless they are the same network. Returns the
    descriptions."""
    found = {}
    for engine in dict.fromkeys("minicnn" if e.startswith("minicnn") else e for e in args.engines):
        cmd = [sys.executable, __file__, "--describe", engine, "--model", args.model]
        proc = subprocess.run(cmd, env={**os.environ, **thread_env(args.threads)}, capture_output=True, text=True,
                              check=False)
        lines = [line for line in proc.stdout.splitlines() if line.startswith("NETWORK ")]
        if not lines:  # an engine that is not installed is skipped later in the same way
            print(f"  {engine} could not build {args.model}: {' | '.join(proc.stderr.strip().splitlines()[-3:])}")
            continue
        found[engine] = json.loads(lines[-1][8:])
    if found:
        check_same(found)
        d = next(iter(found.values()))
        print(f"{args.model}: the same network in {', '.join(found)}: {d['trainable_params']:,} trainable and "
              f"{d['non_trainable_params']:,} non-trainable parameters, output {tuple(d['output_shape'][1:])}")
    return found


def flop_limit(args):
    """Seconds per epoch if every multiply-add of training ran at NumPy's sgemm peak, measured now
    in a process with the same threads (its BLAS reads the thread count when it loads)."""
    cmd = [sys.executable, __file__, "--sgemm-peak", "--model", args.model]
    proc = subprocess.run(cmd, env={**os.environ, **thread_env(args.threads)}, capture_output=True, text=True,
                          check=True)
    return json.loads(proc.stdout.strip().splitlines()[-1])


def quality(r):
    """The test column: accuracy, the autoencoder's test loss, or why there is none."""
    if r["test_accuracy"] is not None:
        return f"{r['test_accuracy']:.4f}"
    if r.get("test_loss") is not None:
        return f"loss {r['test_loss']:.4f}"
    return "synthetic" if r["data"].startswith("synthetic") else "subset"


def markdown(results, limit, args):
    """The table, as docs/benchmarks.md shows it."""
    def num(v, fmt):
        return "" if v is None else format(v, fmt)
    title = (f"{args.model} model, {args.threads} threads, batch {args.batch}, seed {args.seed}, data: "
             f"{results[0]['data']}; FLOP limit {limit['seconds_per_epoch']:.1f} s per epoch "
             f"(sgemm {limit['sgemm_gflops']:.0f} GFLOP/s)")
    head = ("| engine | s / epoch | x best peer | x FLOP limit | 1st epoch s | infer img/s b64 | x best peer | "
            "infer img/s b1000 | x best peer | peak RSS MB | test acc |")
    lines = [title, "", head, "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for r in results:
        lines.append(f"| {r['engine']} | {r['seconds_per_epoch']:.1f} | {num(r.get('x_best_peer_epoch'), '.2f')} | "
                     f"{r['x_limit']:.2f} | {r['first_epoch_seconds']:.1f} | {r['inference_images_per_s_b64']:,.0f} | "
                     f"{num(r.get('x_best_peer_b64'), '.2f')} | {r['inference_images_per_s_b1000']:,.0f} | "
                     f"{num(r.get('x_best_peer_b1000'), '.2f')} | {r['peak_rss_mb']:,.0f} | {quality(r)} |")
    lines.append("")
    lines.append("Epochs, seconds: " + "; ".join(f"{r['engine']} " + ", ".join(f"{t:.1f}" for t in r["epoch_seconds"])
                                                for r in results))
    lines.append(f"Trained on {results[0]['train_images']:,} of {results[0]['epoch_images']:,} images per epoch, times "
                 f"scaled to the full epoch; inference passes over {results[0]['test_images']:,} test images; the data "
                 f"held {results[0]['data_mb']:,.0f} MB of each process's peak.")
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
    plt.close(fig)


def rank(results, limit):
    """Adds each result's ratios: x_limit, and against the best peer of the run (training: time
    over the best peer's, lower is better; inference: images/s over the best's). Returns the
    best peers (training, b64, b1000), or None when no peer ran."""
    for r in results:
        r["x_limit"] = r["seconds_per_epoch"] / limit["seconds_per_epoch"]
    peers = [r for r in results if r["engine"] in PEERS]
    if not peers:
        return None
    best = (min(peers, key=lambda r: r["seconds_per_epoch"]),
            max(peers, key=lambda r: r["inference_images_per_s_b64"]),
            max(peers, key=lambda r: r["inference_images_per_s_b1000"]))
    for r in results:
        r["x_best_peer_epoch"] = r["seconds_per_epoch"] / best[0]["seconds_per_epoch"]
        r["x_best_peer_b64"] = r["inference_images_per_s_b64"] / best[1]["inference_images_per_s_b64"]
        r["x_best_peer_b1000"] = r["inference_images_per_s_b1000"] / best[2]["inference_images_per_s_b1000"]
    return best


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", choices=tuple(MODELS), default="tutorial")
    p.add_argument("--epochs", type=int, default=5)
    p.add_argument("--threads", type=int, default=os.cpu_count())
    p.add_argument("--train-size", type=int, help="train on the first N images (default: all); times are "
                   "scaled to a full epoch")
    p.add_argument("--test-size", type=int, default=10000, help="images of each inference pass")
    p.add_argument("--numpy-subset", type=int, default=6000)
    p.add_argument("--seed", type=int, default=0, help="seeds weights and shuffling in every engine")
    p.add_argument("--engines", nargs="+", default=list(CPU_ENGINES), choices=ENGINES)
    p.add_argument("--batch", type=int, help="default: the model's (tutorial and recipe 64, cifar-cnn 32, "
                   "resnet20 and autoencoder 128)")
    p.add_argument("--out", default=str(Path(__file__).parent / "results"))
    p.add_argument("--worker", choices=ENGINES, help=argparse.SUPPRESS)
    p.add_argument("--describe", help=argparse.SUPPRESS)
    p.add_argument("--sgemm-peak", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    spec = MODELS[args.model]
    args.batch = args.batch or spec.batch
    args.train_size = min(args.train_size or spec.epoch_images, spec.epoch_images)
    if min(args.epochs, args.train_size, args.test_size, args.batch, args.threads) < 1:
        p.error("--epochs, --train-size, --test-size, --batch and --threads must be at least 1")
    if args.sgemm_peak:
        gflops, macs = sgemm_peak(), training_macs(args.model)
        gflop = 2 * macs * spec.epoch_images / 1e9
        print(json.dumps({"sgemm_gflops": gflops, "training_macs_per_image": macs, "training_gflop_per_epoch": gflop,
                          "seconds_per_epoch": gflop / gflops}))
        return None
    if args.describe:
        print("NETWORK " + json.dumps(describe(args.describe, args.model)))
        return None
    if args.worker:
        return worker(args.worker, args.epochs, args.train_size, args.batch, args.seed, args.model, args.test_size)
    networks = check_networks(args)
    results = [r for r in (run(engine, args) for engine in args.engines) if r]
    if not results:
        raise SystemExit("no engine finished")
    limit = flop_limit(args)
    print(f"\n{args.model} model, {args.threads} threads, batch {args.batch}, data: {results[0]['data']}; FLOP limit: "
          f"{limit['seconds_per_epoch']:.1f} s per epoch ({limit['training_gflop_per_epoch']:,.0f} GFLOP at NumPy's "
          f"sgemm peak, {limit['sgemm_gflops']:.0f} GFLOP/s)")
    best = rank(results, limit)
    print(f"{'engine':14} {'s/epoch':>8} {'x best':>7} {'x limit':>7} {'1st epoch':>9} {'infer b64':>9} {'x best':>7} "
          f"{'infer b1000':>11} {'x best':>7} {'peak RSS MB':>11} {'test':>11}")
    for r in results:
        def ratio(key, r=r):
            return f"{r[key]:7.2f}" if best else " " * 7
        print(f"{r['engine']:14} {r['seconds_per_epoch']:8.1f} {ratio('x_best_peer_epoch')} {r['x_limit']:7.2f} "
              f"{r['first_epoch_seconds']:9.1f} {r['inference_images_per_s_b64']:9.0f} {ratio('x_best_peer_b64')} "
              f"{r['inference_images_per_s_b1000']:11.0f} {ratio('x_best_peer_b1000')} {r['peak_rss_mb']:11.0f} "
              f"{quality(r):>11}")
    if best:
        print(f"x best: against the best peer ({', '.join(PEERS)}) in this run: {best[0]['engine']} for training, "
              f"{best[1]['engine']} / {best[2]['engine']} for inference")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    stem = "compare" if args.model == "tutorial" else f"compare-{args.model}"
    (out / f"{stem}.json").write_text(json.dumps({"model": args.model, "threads": args.threads, "batch": args.batch,
                                                  "networks": networks, "flop_limit": limit, "results": results},
                                                 indent=1))
    chart(results, out / f"{stem}.png")
    (out / f"{stem}.md").write_text(markdown(results, limit, args))
    print(f"wrote {out / (stem + '.json')}, .png and .md")
    return results


if __name__ == "__main__":
    main()
