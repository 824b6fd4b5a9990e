"""The project's promises about itself."""
from pathlib import Path

import minicnn

ROOT = Path(__file__).resolve().parents[1]


def test_ci_runs_the_readme_test_command():
    readme = (ROOT / "README.md").read_text().splitlines()
    commands = readme[readme.index("```bash") + 1:readme.index("```bash") + 3]
    assert commands[0].startswith("pip install . && python examples/fashion_mnist_cnn.py")
    assert commands[1] in (ROOT / ".ci" / "run").read_text()


def test_public_modules():
    for name in ("layers", "models", "losses", "optimizers", "datasets", "utils", "callbacks", "gradcheck"):
        assert hasattr(minicnn, name)
    assert minicnn.__version__.count(".") == 2


SPIN_PROBE = """
import sys, time
exec(sys.argv[1])  # the imports, in the order under test
import numpy as np
a = np.ones((600, 600), dtype="float32")
burnt = []
for _ in range(7):
    a @ a  # a product on OpenBLAS's worker threads, which then wait for the next one
    start = time.process_time()
    time.sleep(0.1)
    burnt.append(time.process_time() - start)
print(sorted(burnt)[3])
"""


def test_openblas_threads_stop_waiting_soon_whatever_is_imported_first():
    """OpenBLAS reads OPENBLAS_THREAD_TIMEOUT when NumPy loads it, and its idle workers spin for
    2**28 cycles by default, on the cores minicnn's compiled loops need. minicnn sets 2**15 whether
    it is imported before NumPy or after (then by restarting OpenBLAS's workers): measured as the
    CPU time the process burns while it sleeps right after a product, against a control that asks
    for the long spin in the same run."""
    import os
    import subprocess
    import sys

    import numpy
    import pytest

    if "openblas" not in str(numpy.show_config(mode="dicts")["Build Dependencies"]["blas"]["name"]).lower():
        pytest.skip("NumPy is not built on OpenBLAS here")
    env = {k: v for k, v in os.environ.items() if k != "OPENBLAS_THREAD_TIMEOUT"}
    env["OPENBLAS_NUM_THREADS"] = "2"

    def burnt(imports, **extra):
        run = subprocess.run([sys.executable, "-c", SPIN_PROBE, imports], env={**env, **extra}, capture_output=True,
                             text=True, check=True, cwd=ROOT)
        assert "Warning" not in run.stderr, run.stderr
        return float(run.stdout)

    spinning = burnt("import numpy; import minicnn", OPENBLAS_THREAD_TIMEOUT="28")  # a value you set wins
    if spinning < 0.03:
        pytest.skip(f"OpenBLAS's workers do not spin measurably here ({spinning:.3f} s of CPU in 0.1 s)")
    assert burnt("import numpy; import minicnn") < spinning / 3
    assert burnt("import minicnn; import numpy") < spinning / 3
