"""Where one training step on the GPU (CuPy) spends its time, layer by layer.

    python benchmarks/gpu_step.py [--model tutorial recipe] [--batch 64 512] [--kernels reference cuda]
                                  [--repeat 30] [--json out.json]

On a machine with an NVIDIA GPU and CuPy (`pip install ".[gpu]"`): the model of
benchmarks/compare.py on the device; for each layer, forward (training) and backward in
milliseconds (the median of --repeat runs after a warm-up), both as the host spends them
(Python and CuPy issuing kernels) and as the GPU does (CUDA events); then whole
train_on_batch calls, with the batch on the host and already on the device. Where the host's
time is far above the GPU's, the step waits on kernel launches, not on arithmetic: that is
where fusing kernels pays.
"""
import argparse
import json

import minicnn

# isort: split
import numpy as np
from compare import build  # benchmarks/compare.py, beside this script

from minicnn import backend, gpu
from minicnn.utils import set_random_seed, to_categorical

# the reference's kernels on device arrays, or with the GPU's own where it has them
KERNELS = {"reference": "minicnn.kernels.reference", "cuda": "minicnn.kernels.cupy_kernels"}


def times_ms(fn, repeat):
    """fn's median host time and median device time in ms (cupyx.profiler.benchmark: CUDA events
    around each call; the host time is what Python and CuPy spend issuing the kernels)."""
    from cupyx.profiler import benchmark
    r = benchmark(fn, n_repeat=repeat, n_warmup=3)  # warm-up: CuPy compiles each kernel the first time
    return 1000 * float(np.median(r.cpu_times)), 1000 * float(np.median(r.gpu_times))


def profile(model_name, batch, repeat, kernels):
    backend.register_backend("cupy", KERNELS[kernels])
    set_random_seed(0)
    model = build(minicnn, model_name, 60000 // batch, 5)
    model.to("gpu")
    rng = np.random.default_rng(0)
    x0 = rng.random((batch, 28, 28, 1), dtype=np.float32)
    labels = to_categorical(np.arange(batch) % 10, 10)
    x = gpu.to_device(x0)
    rows = []
    for layer in model.layers:
        y = layer.forward(x, training=True)
        dy = gpu.to_device(rng.standard_normal(y.shape).astype(np.float32))
        fwd = times_ms(lambda layer=layer, x=x: layer.forward(x, training=True), repeat)
        layer.forward(x, training=True)
        bwd = times_ms(lambda layer=layer, dy=dy: layer.backward(dy), repeat)
        rows.append({"model": model_name, "batch": batch, "kernels": kernels, "layer": layer.name, "output": list(y.shape[1:]),
                     "forward_host_ms": fwd[0], "forward_gpu_ms": fwd[1],
                     "backward_host_ms": bwd[0], "backward_gpu_ms": bwd[1]})
        x = y
    xd, yd = gpu.to_device(x0), gpu.to_device(labels)
    for label, args in (("train_on_batch, host batch", (x0, labels)), ("train_on_batch, device batch", (xd, yd))):
        host, device = times_ms(lambda args=args: model.train_on_batch(*args), repeat)
        rows.append({"model": model_name, "batch": batch, "kernels": kernels, "layer": label, "step_host_ms": host,
                     "step_gpu_ms": device})
    return rows


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", nargs="+", choices=("tutorial", "recipe"), default=["tutorial"])
    p.add_argument("--batch", nargs="+", type=int, default=[64])
    p.add_argument("--repeat", type=int, default=30)
    p.add_argument("--kernels", nargs="+", choices=list(KERNELS), default=["cuda"],
                   help="reference: every kernel the reference's, on device arrays; cuda: minicnn/kernels/cupy_kernels.py's "
                        "where it has one (the default, as models run)")
    p.add_argument("--json", help="write the rows to this JSON file")
    args = p.parse_args()
    gpu.cupy()  # a clear error now without CuPy or a GPU
    rows = [r for m in args.model for b in args.batch for k in args.kernels for r in profile(m, b, args.repeat, k)]
    nan = float("nan")
    print(f"{'model':8} {'batch':>5} {'kernels':9} {'layer':30} {'fwd host':>8} {'fwd gpu':>8} {'bwd host':>8} {'bwd gpu':>8}"
          "   (ms; a step: host, gpu)")
    for r in rows:
        cells = [r.get(k, nan) for k in ("forward_host_ms", "forward_gpu_ms", "backward_host_ms", "backward_gpu_ms")]
        if "step_host_ms" in r:
            cells = [r["step_host_ms"], r["step_gpu_ms"], nan, nan]
        print(f"{r['model']:8} {r['batch']:5d} {r['kernels']:9} {r['layer']:30} " + " ".join(f"{c:8.3f}" for c in cells))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=1)


if __name__ == "__main__":
    main()
