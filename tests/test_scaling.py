"""benchmarks/scaling.py on tiny sweeps: the points it measures, the work it divides by, the table
and the figure it writes; minicnn alone, and PyTorch beside it when installed."""
import importlib.util

import pytest
from toy import load_script

from minicnn import backend

TINY = {"batch": (2, 32), "width": (1, 2), "size": (16, 32)}


def scaling():
    return load_script("benchmarks/scaling.py")


def test_each_sweep_moves_one_thing_around_the_centre():
    s = scaling()
    got = s.points(TINY)
    assert [(name, p["batch"], p["width"], p["size"]) for name, p in got] == [
        ("batch", 2, 1, 32), ("batch", 32, 1, 32), ("width", 32, 1, 32), ("width", 32, 2, 32),
        ("size", 32, 1, 16), ("size", 32, 1, 32)]


def test_proportional_divides_by_the_work_from_the_centre():
    """Made-up rates: an engine twice as fast per multiply-add at x2 reads 2.0, one whose time grows
    exactly as the work reads 1.0; the work is minicnn's count of the CIFAR-10 CNN it builds."""
    s = scaling()
    compare = load_script("benchmarks/compare.py")
    m1, m2 = compare.training_macs("cifar-cnn", 1, 32), compare.training_macs("cifar-cnn", 2, 32)
    assert m2 > 3 * m1  # the middle convolutions' work grows as width squared
    rows = [{"engine": e, "sweep": "width", "batch": 32, "width": w, "size": 32, "images_per_s": r}
            for e, w, r in [("a", 1, 100.0), ("a", 2, 200.0 * m1 / m2), ("b", 1, 50.0), ("b", 2, 50.0 * m1 / m2)]]
    s.proportional(rows)
    assert [r["macs_per_image"] for r in rows] == [m1, m2, m1, m2]
    assert [r["x_proportional"] for r in rows] == pytest.approx([1, 2, 1, 1])
    assert rows[1]["proportional_images_per_s"] == pytest.approx(100 * m1 / m2)
    assert rows[0]["gflops"] == pytest.approx(2 * m1 * 100 / 1e9)


def test_a_tiny_run_measures_every_point_and_draws_three_panels(tmp_path, monkeypatch):
    s = scaling()
    monkeypatch.setenv("OMP_NUM_THREADS", "1")  # as run() sets it for the engine's process
    engines = ["minicnn-numba"] + (["torch-cpu"] if importlib.util.find_spec("torch") else [])
    previous = backend.get_backend()
    try:
        rows = [r for e in engines for r in s.measure(e, TINY, warmup=1, steps=1, repeat=2)]
    finally:
        backend.set_backend(previous)
    assert len(rows) == 6 * len(engines)
    assert all(r["images_per_s"] > 0 and len(r["repeats"]) == 2 for r in rows)
    s.proportional(rows)
    centres = [r for r in rows if (r["batch"], r["width"], r["size"]) == (32, 1, 32)]
    assert len(centres) == 3 * len(engines) and all(r["x_proportional"] == pytest.approx(1) for r in centres)

    class Args:
        threads, steps, warmup, repeat = 1, 1, 1, 2
    lines = s.table(rows, Args).splitlines()
    assert lines[2].count("|") == 10 and len(lines) == 4 + len(rows)
    assert all(line.count("|") == 10 for line in lines[4:])
    assert lines[4].startswith("| batch | 2 | x1 | 32 | minicnn-numba |")
    png = tmp_path / "scaling.png"
    s.figure(rows, [png])
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_the_sweeps_must_hold_the_centre():
    s = scaling()
    with pytest.raises(SystemExit):
        s.main(["--batches", "16", "64"])
