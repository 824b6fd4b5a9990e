"""Where one training step of minicnn goes, step by step, for any network of benchmarks/networks.py.

    python benchmarks/step_profile.py --model resnet20 [--batch 128] [--repeat 20] [--json out.json]
    python benchmarks/step_profile.py --model cifar-cnn --threads 2

Runs --repeat training passes on the Numba backend (after 3 untimed ones: compilation, the first
allocations) on random data of the model's shapes: forward through model.execution_plan() (the
fused steps training runs), the loss gradient, backward in reverse; each step of the plan timed
inside the pass (the watch hook of model.forward and model.backpropagate), the median per step.
The loss gradient, the regularizers' gradients and the optimizer's apply_gradients are timed in
the same passes; whole train_on_batch calls (which also check the gradients for NaN and keep the
loss) are timed after them, for comparison.

For each step: milliseconds forward and backward, their share of the timed pass (all its parts),
GFLOP/s where it has multiply-adds (2 FLOPs each; backward: weight gradients, and input
gradients unless the step reads the data), and GB/s of the bytes it must at least read and
write (input and output forward; dy, input and dx backward), to hold against NumPy's sgemm
peak and a large copy's bandwidth, both measured in the same run. Unlike benchmarks/kernels.py,
which times each step alone on a chain of layers, this walks any graph (residual adds too).
"""
import argparse
import json
import os
import statistics
import time

from compare import MODELS, build, sgemm_peak

STEP_FIELDS = ("forward_ms", "backward_ms")


def copy_bandwidth():
    """GB/s of a 256 MB float32 copy (read + write counted), the best of 5: the memory speed a
    pass that streams its arrays can reach."""
    import numpy as np
    a = np.ones(64 << 20, np.float32)
    b = np.empty_like(a)
    best = 0.0
    for _ in range(5):
        t = time.perf_counter()
        np.copyto(b, a)
        best = max(best, 2 * a.nbytes / (time.perf_counter() - t) / 1e9)
    return best


def plan_steps(model):
    """[(step, its input shape (a list for a merge), its output shape)] in the order training runs
    them: a Sequential's plan (layers and fused steps, a chain), or a graph's plan of Nodes."""
    from minicnn.models import Sequential
    if isinstance(model, Sequential):
        found, shape = [], model.input_shape
        for step in model.execution_plan():
            out = step.compute_output_shape(shape) if hasattr(step, "compute_output_shape") else \
                chain_shape(step.layers, shape)
            found.append((step, shape, out))
            shape = out
        return found
    return [(node, [t.shape for t in node.inputs] if node.many else node.inputs[0].shape, node.output.shape)
            for node in model.execution_plan()]


def chain_shape(layers, shape):
    for layer in layers:
        shape = layer.compute_output_shape(shape)
    return shape


def describe_step(step, shape, out_shape):
    """(label, kind, multiply-adds per image forward and backward, floats per image in and out,
    whether its backward only passes dy on) of one step of plan_steps()."""
    import numpy as np

    from minicnn.fusion import FusedStep
    layer = getattr(step, "layer", step)  # a graph's Node, or the step itself
    layers = layer.layers if isinstance(layer, FusedStep) else [layer]
    n_in = sum(int(np.prod(s[1:])) for s in (shape if isinstance(shape, list) else [shape]))
    fwd = bwd = 0
    kinds = []
    for layer in layers:
        m = layer.count_macs(shape)
        fwd, bwd = fwd + m, bwd + m * (2 if layer.input_grad else 1)
        kind = type(layer).__name__
        if hasattr(layer, "kernel_size") and hasattr(layer, "filters"):
            kind += f" {layer.kernel_size[0]}x{layer.kernel_size[1]}/{layer.strides[0]} {shape[3]}->{layer.filters}"
        kinds.append(kind)
        shape = out_shape if len(layers) == 1 else layer.compute_output_shape(shape)
    passes_dy = type(layers[-1]).__name__ == "Add"  # its backward hands dy itself to each input: no bytes
    return ("+".join(layer.name for layer in layers), " + ".join(kinds), fwd, bwd, n_in, int(np.prod(out_shape[1:])),
            passes_dy)


def training_pass(model, x, y, watch_forward, watch_backward, loss_gradient, steps):
    """Forward, loss gradient, backward, as train_on_batch runs them, each plan step through a
    watch(step, run) -> run(), the loss gradient through loss_gradient(p) -> (dy, n)."""
    from minicnn.models import Sequential
    if not isinstance(model, Sequential):
        dy, n = loss_gradient(model.forward(x, training=True, watch=watch_forward))
        model.backpropagate(dy, skip_last=n < len(model.layers), watch=watch_backward)
        return
    for step in steps:  # Sequential.forward and backpropagate, step by step
        x = watch_forward(step, lambda step=step, x=x: step.forward(x, True))
    dy, n = loss_gradient(x)
    for step in reversed(steps[:-1] if n < len(model.layers) else steps):  # the softmax shortcut skips the last
        dy = watch_backward(step, lambda step=step, dy=dy: step.backward(dy))


def profile(model_name, batch, repeat, seed=0):
    """Rows per plan step and the totals (see the module docstring), as dicts."""
    import numpy as np

    import minicnn
    minicnn.backend.set_backend("numba")
    minicnn.utils.set_random_seed(seed)
    spec = MODELS[model_name]
    model = build(minicnn, model_name)
    rng = np.random.default_rng(seed)
    x = rng.random((batch, *spec.input_shape), dtype=np.float32)
    y = x if spec.task == "reconstruct" else np.eye(10, dtype=np.float32)[rng.integers(0, 10, batch)]
    plan = plan_steps(model)
    chain = [step for step, _, _ in plan]
    times = {(id(step), f): [] for step in chain for f in STEP_FIELDS}
    extra = {"loss_ms": [], "regularizers_ms": [], "optimizer_ms": []}

    def timer(field):
        def watch(step, run):
            t = time.perf_counter()
            out = run()
            times[(id(step), field)].append(time.perf_counter() - t)
            return out
        return watch

    def timed(key, fn):
        t = time.perf_counter()
        out = fn()
        extra[key].append(time.perf_counter() - t)
        return out

    for i in range(repeat + 3):
        if i == 3:  # the warm-up passes are not counted
            for v in (*times.values(), *extra.values()):
                v.clear()
        training_pass(model, x, y, timer("forward_ms"), timer("backward_ms"),
                      lambda p: timed("loss_ms", lambda: model.loss_gradient(y, p)), chain)
        timed("regularizers_ms", lambda: [r.gradient(layer.params[k]) for layer in model.layers
                                          for k, r in layer.regularizers.items()])
        pairs = model.grads_and_params()
        timed("optimizer_ms", lambda pairs=pairs: model.optimizer.apply_gradients(pairs))
    for _ in range(3):
        model.train_on_batch(x, y)
    steps = []
    for _ in range(repeat):
        t = time.perf_counter()
        model.train_on_batch(x, y)
        steps.append(time.perf_counter() - t)
    step_ms = 1e3 * statistics.median(steps)
    rows = []
    for step, shape, out_shape in plan:
        label, kind, fwd_macs, bwd_macs, n_in, n_out, passes_dy = describe_step(step, shape, out_shape)
        row = {"step": label, "kind": kind, "forward_macs_per_image": fwd_macs, "backward_macs_per_image": bwd_macs}
        for field in STEP_FIELDS:
            got = times[(id(step), field)]
            row[field] = 1e3 * statistics.median(got) if got else 0.0
        row["forward_gflops"] = 2 * fwd_macs * batch / row["forward_ms"] / 1e6 if fwd_macs and row["forward_ms"] else None
        row["backward_gflops"] = 2 * bwd_macs * batch / row["backward_ms"] / 1e6 if bwd_macs and row["backward_ms"] \
            else None
        row["forward_gbs"] = 4 * batch * (n_in + n_out) / row["forward_ms"] / 1e6 if row["forward_ms"] else None
        row["backward_gbs"] = 4 * batch * (2 * n_in + n_out) / row["backward_ms"] / 1e6 \
            if row["backward_ms"] and not passes_dy else None
        rows.append(row)
    totals = {k: 1e3 * statistics.median(v) for k, v in extra.items()}
    totals["pass_ms"] = sum(r["forward_ms"] + r["backward_ms"] for r in rows) + sum(totals.values())
    for r in rows:  # shares of the timed pass: its parts were measured together, under the same load
        r["share"] = (r["forward_ms"] + r["backward_ms"]) / totals["pass_ms"]
    totals["train_on_batch_ms"] = step_ms
    return rows, totals


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", choices=tuple(MODELS), default="resnet20")
    parser.add_argument("--batch", type=int, help="default: the model's (compare.py's)")
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--json", help="write the rows and totals to this JSON file")
    args = parser.parse_args(argv)
    batch = args.batch or MODELS[args.model].batch
    rows, totals = profile(args.model, batch, args.repeat)
    totals["sgemm_gflops"], totals["copy_gbs"] = sgemm_peak(), copy_bandwidth()
    threads = os.environ.get("NUMBA_NUM_THREADS", "all")
    print(f"{args.model}, batch {batch}, {threads} threads, median of {args.repeat} passes, ms per batch; "
          f"sgemm {totals['sgemm_gflops']:.0f} GFLOP/s, copy {totals['copy_gbs']:.1f} GB/s")
    print(f"{'step':44} {'fwd ms':>7} {'bwd ms':>7} {'share':>6} {'fwd GF/s':>8} {'bwd GF/s':>8} {'fwd GB/s':>8} "
          f"{'bwd GB/s':>8}  kind")

    def num(v):
        return f"{v:8.1f}" if v else " " * 8
    for r in sorted(rows, key=lambda r: -r["share"]):
        print(f"{r['step'][:44]:44} {r['forward_ms']:7.3f} {r['backward_ms']:7.3f} {r['share']:6.1%} "
              f"{num(r['forward_gflops'])} {num(r['backward_gflops'])} {num(r['forward_gbs'])} "
              f"{num(r['backward_gbs'])}  {r['kind']}")
    step = totals["train_on_batch_ms"]
    for key in ("loss_ms", "regularizers_ms", "optimizer_ms"):
        print(f"{key[:-3]:44} {totals[key]:7.3f} {'':7} {totals[key] / totals['pass_ms']:6.1%}")
    print(f"{'the timed pass, all of the above':44} {totals['pass_ms']:7.3f}")
    print(f"{'train_on_batch (checks, bookkeeping too)':44} {step:7.3f}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"model": args.model, "batch": batch, "rows": rows, "totals": totals}, f, indent=1)


if __name__ == "__main__":
    main()
