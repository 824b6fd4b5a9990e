"""How the cost of training grows: images/s as the batch, the width and the input grow, three engines.

    python benchmarks/scaling.py [--threads 2] [--steps 10] [--out benchmarks/results]
    python benchmarks/scaling.py --steps 30 --repeat 3 --figure docs/images/scaling.png   # for the docs

On the CIFAR-10 CNN of benchmarks/networks.py (Keras's classic example, RMSprop), random
arrays of its shapes for data (a step's time does not depend on the pixels), three sweeps
around one centre point (batch 32, filters x1, 32 x 32 pixels):

    batch  16, 32, 64, 128, 256            (--batches)
    width  filters x1, x2, x4 (32/64 ...)  (--widths)
    input  28, 32, 64 pixels a side        (--sizes)

Each engine (minicnn on Numba, Keras on TensorFlow CPU, PyTorch CPU channels-last) runs in a
process of its own, one after the other, with --threads threads (benchmarks/compare.py's
settings). For each point: the model built afresh, --warmup train_on_batch calls untimed
(compilation, tracing, the first allocations), then --steps calls timed one by one; images/s
is the batch over the median step, and with --repeat R the median of R such runs. The centre
point is measured in each sweep, which starts its "proportional" line from its own measurement.

"Proportional" is what an engine's images/s would be if its time grew exactly as the work: its
images/s at the centre point times the multiply-adds per training image there over those at
this point (counted by minicnn's layers: forward, both gradients). x prop. is the measured
images/s over that: above 1, the larger shape runs its work faster than the centre point does;
below 1, slower. Prints a table, writes scaling.json, .md and .png to --out, and the figure to
--figure too when given.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

from compare import CPU_ENGINES, engine_library, thread_env, training_macs
from networks import TorchModel, build

ENGINES = ("minicnn-numba", "keras", "torch-cpu")
CENTRE = {"batch": 32, "width": 1, "size": 32}
SWEEPS = {"batch": (16, 32, 64, 128, 256), "width": (1, 2, 4), "size": (28, 32, 64)}
LABELS = {"batch": "batch size", "width": "filters (x the example's 32/64)", "size": "input side, pixels"}
COLORS = {"minicnn-numba": "#2a7", "minicnn-numpy": "#9bd", "keras": "#e73", "torch-cpu": "#46c"}
NOUNS = {"batch": "batch", "width": "width", "size": "input"}


def points(sweeps):
    """(sweep, point) pairs: each sweep's values with the other two at the centre point."""
    return [(name, {**CENTRE, name: value}) for name, values in sweeps.items() for value in values]


def step_seconds(model, x, y, warmup, steps):
    """Median seconds of train_on_batch(x, y) over steps calls, after warmup untimed ones."""
    for _ in range(warmup):
        model.train_on_batch(x, y)
    times = []
    for _ in range(steps):
        t = time.perf_counter()
        model.train_on_batch(x, y)
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def measure(engine, sweeps, warmup=3, steps=10, repeat=1, seed=0):
    """Every point of sweeps, trained by engine in this process: a list of dicts (the sweep, the
    point, images/s and each repeat's)."""
    lib = engine_library(engine, seed)
    import numpy as np
    rng = np.random.default_rng(seed)
    rows = []
    for sweep, p in points(sweeps):
        x = rng.random((p["batch"], p["size"], p["size"], 3), dtype=np.float32)
        y = np.eye(10, dtype=np.float32)[rng.integers(0, 10, p["batch"])]
        rates = []
        for _ in range(repeat):  # a fresh model each time: the run is what is repeated
            model = TorchModel(seed, "cpu", "cifar-cnn", width=p["width"], size=p["size"]) if lib is None else \
                build(lib, "cifar-cnn", width=p["width"], size=p["size"])
            rates.append(p["batch"] / step_seconds(model, x, y, warmup, steps))
        rows.append({"engine": engine, "sweep": sweep, **p, "images_per_s": statistics.median(rates), "repeats": rates})
    return rows


def proportional(rows):
    """Adds to each row its multiply-adds per training image, the engine's images/s if its time
    grew as the work from the centre point (proportional_images_per_s), the measured over that
    (x_proportional) and the GFLOP/s it reached."""
    counted = {}
    for r in rows:
        key = (r["width"], r["size"])
        if key not in counted:
            counted[key] = training_macs("cifar-cnn", *key)
        r["macs_per_image"] = counted[key]
    for r in rows:
        centre = next(c for c in rows if c["engine"] == r["engine"] and c["sweep"] == r["sweep"] and
                      all(c[k] == v for k, v in CENTRE.items()))
        r["proportional_images_per_s"] = centre["images_per_s"] * centre["macs_per_image"] / r["macs_per_image"]
        r["x_proportional"] = r["images_per_s"] / r["proportional_images_per_s"]
        r["gflops"] = 2 * r["macs_per_image"] * r["images_per_s"] / 1e9
    return rows


def table(rows, args):
    """The markdown table of every point."""
    title = (f"CIFAR-10 CNN, {args.threads} threads, median of {args.steps} steps after {args.warmup} untimed "
             f"(the median of {args.repeat} runs), synthetic data")
    lines = [title, "",
             "| sweep | batch | filters | input | engine | img/s | x prop. | GFLOP/s | MMAC / img |",
             "| --- | ---: | ---: | ---: | --- | ---: | ---: | ---: | ---: |"]
    for r in rows:
        lines.append(f"| {r['sweep']} | {r['batch']} | x{r['width']} | {r['size']} | {r['engine']} | "
                     f"{r['images_per_s']:,.0f} | {r['x_proportional']:.2f} | {r['gflops']:.1f} | "
                     f"{r['macs_per_image'] / 1e6:.1f} |")
    return "\n".join(lines) + "\n"


def figure(rows, paths):
    """Three panels (batch, width, input), training images/s per engine on a log scale; the
    dotted line beside each engine: its images/s if the time grew as the work."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import NullLocator
    sweeps = list(dict.fromkeys(r["sweep"] for r in rows))
    fig, axes = plt.subplots(1, len(sweeps), figsize=(4.2 * len(sweeps), 3.6), squeeze=False)
    for ax, sweep in zip(axes[0], sweeps):
        for engine in dict.fromkeys(r["engine"] for r in rows):
            mine = [r for r in rows if r["engine"] == engine and r["sweep"] == sweep]
            xs = [r[sweep] for r in mine]
            color = COLORS.get(engine, "#555")
            ax.plot(xs, [r["images_per_s"] for r in mine], "o-", color=color, label=engine)
            ax.plot(xs, [r["proportional_images_per_s"] for r in mine], ":", color=color, alpha=0.7)
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.set_xticks(xs, [f"x{v}" if sweep == "width" else str(v) for v in xs])
        ax.xaxis.set_minor_locator(NullLocator())
        ax.set_xlabel(LABELS[sweep])
        ax.set_title(f"training images/s as the {NOUNS[sweep]} grows", fontsize=9)
    axes[0][0].set_ylabel("training images/s (log)")
    axes[0][0].legend(fontsize=8, title="dotted: as the work", title_fontsize=7)
    fig.tight_layout()
    for path in paths:
        fig.savefig(path, dpi=90)
    plt.close(fig)


def run(engine, args):
    """One engine's points, measured in a process of its own."""
    cmd = [sys.executable, __file__, "--worker", engine, "--steps", str(args.steps), "--warmup", str(args.warmup),
           "--repeat", str(args.repeat), "--batches", *map(str, args.batches), "--widths", *map(str, args.widths),
           "--sizes", *map(str, args.sizes)]
    print(f"running {engine}...", flush=True)
    proc = subprocess.run(cmd, env={**os.environ, **thread_env(args.threads)}, capture_output=True, text=True, check=False)
    rows = [json.loads(line[7:]) for line in proc.stdout.splitlines() if line.startswith("POINTS ")]
    if not rows:
        print(f"  {engine} did not finish: {' | '.join(proc.stderr.strip().splitlines()[-8:])}")
        return []
    return rows[0]


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--engines", nargs="+", default=list(ENGINES), choices=CPU_ENGINES)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--steps", type=int, default=10, help="timed training steps per point")
    p.add_argument("--warmup", type=int, default=3, help="untimed steps before them")
    p.add_argument("--repeat", type=int, default=1, help="runs per point (a fresh model each); the median")
    p.add_argument("--batches", type=int, nargs="+", default=list(SWEEPS["batch"]))
    p.add_argument("--widths", type=int, nargs="+", default=list(SWEEPS["width"]))
    p.add_argument("--sizes", type=int, nargs="+", default=list(SWEEPS["size"]))
    p.add_argument("--out", default=str(Path(__file__).parent / "results"))
    p.add_argument("--figure", help="also save the figure here (e.g. docs/images/scaling.png)")
    p.add_argument("--worker", choices=CPU_ENGINES, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    sweeps = {"batch": args.batches, "width": args.widths, "size": args.sizes}
    for name, values in sweeps.items():
        if CENTRE[name] not in values:
            p.error(f"--{name}es must include the centre point's {CENTRE[name]}" if name == "batch" else
                    f"--{name}s must include the centre point's {CENTRE[name]}")
    if min(args.batches + args.widths + [args.steps, args.repeat, args.threads]) < 1 or min(args.sizes) < 10:
        p.error("batches, widths, --steps, --repeat and --threads must be at least 1, sizes at least 10 pixels")
    if args.worker:
        print("POINTS " + json.dumps(measure(args.worker, sweeps, args.warmup, args.steps, args.repeat)), flush=True)
        return None
    rows = proportional([r for engine in args.engines for r in run(engine, args)])
    if not rows:
        raise SystemExit("no engine finished")
    text = table(rows, args)
    print(text)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "scaling.json").write_text(json.dumps({"threads": args.threads, "steps": args.steps, "warmup": args.warmup,
                                                  "repeat": args.repeat, "rows": rows}, indent=1))
    (out / "scaling.md").write_text(text)
    figure(rows, [out / "scaling.png"] + ([Path(args.figure)] if args.figure else []))
    print(f"wrote {out / 'scaling.json'}, .md and .png" + (f", and {args.figure}" if args.figure else ""))
    return rows


if __name__ == "__main__":
    main()
