"""Programs from the Keras guides, ported by changing their imports (examples/keras_guides/),
run to their end as a learner would run them."""
import runpy
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("name", ["customizing_fit", "subclassing"])
def test_guide_runs_to_its_end(name, capsys):
    runpy.run_path(str(ROOT / "examples" / "keras_guides" / f"{name}.py"), run_name="__main__")
    assert "ran to its end" in capsys.readouterr().out


def test_training_loop_from_scratch_learns(real_data, monkeypatch, capsys):
    from minicnn.datasets import fashion_mnist
    monkeypatch.setattr(fashion_mnist, "load_data", lambda *a, **k: real_data)
    monkeypatch.setenv("MINICNN_GUIDE_LIMIT", "3000")
    runpy.run_path(str(ROOT / "examples" / "keras_guides" / "training_loop_from_scratch.py"), run_name="__main__")
    out = capsys.readouterr().out
    assert "ran to its end" in out
    accuracies = [float(line.split()[-1]) for line in out.splitlines() if line.startswith("Validation acc")]
    assert len(accuracies) == 2 and accuracies[-1] > 0.6  # chance is 0.1
