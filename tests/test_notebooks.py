"""The notebooks in examples/notebooks run top to bottom (on a few thousand images), as a
learner would run them in Jupyter; their own asserts check what they show."""
import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "examples" / "notebooks").glob("*.ipynb"))


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_runs(path, real_data, tmp_path, monkeypatch):
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    if "keras" in path.stem:
        pytest.importorskip("keras")
    monkeypatch.setenv("MINICNN_NOTEBOOK_LIMIT", "3000")
    monkeypatch.setenv("MPLBACKEND", "Agg")
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])))
    notebook = nbformat.read(path, as_version=4)
    assert all(not cell.get("outputs") for cell in notebook.cells if cell.cell_type == "code"), \
        "commit notebooks without outputs"
    nbclient.NotebookClient(notebook, timeout=600, kernel_name="python3",
                            resources={"metadata": {"path": str(tmp_path)}}).execute()
    errors = [o for cell in notebook.cells if cell.cell_type == "code" for o in cell.outputs if o.output_type == "error"]
    assert not errors, errors


def test_there_are_the_six_notebooks():
    assert [p.name for p in NOTEBOOKS] == ["01_seed_tutorial.ipynb", "02_tour_of_one_image.ipynb",
                                           "03_backprop_by_hand.ipynb", "04_keras_side_by_side.ipynb",
                                           "05_write_a_layer.ipynb", "06_the_tape.ipynb"]
