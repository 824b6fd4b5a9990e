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


def test_importing_minicnn_after_numpy_says_the_thread_timeout_came_too_late():
    """OPENBLAS_THREAD_TIMEOUT only works when set before NumPy loads OpenBLAS: minicnn sets it at
    import, and says so (once, a RuntimeWarning) when NumPy came first and nobody set it."""
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k != "OPENBLAS_THREAD_TIMEOUT"}

    def stderr(code, **extra):
        run = subprocess.run([sys.executable, "-c", code], env={**env, **extra}, capture_output=True, text=True,
                             check=True, cwd=ROOT)
        return run.stderr

    import numpy
    if "openblas" not in str(numpy.show_config(mode="dicts")["Build Dependencies"]["blas"]["name"]).lower():
        import pytest
        pytest.skip("NumPy is not built on OpenBLAS here")
    assert f"OPENBLAS_THREAD_TIMEOUT={minicnn.BLAS_THREAD_TIMEOUT}" in stderr("import numpy; import minicnn")
    assert "RuntimeWarning" not in stderr("import minicnn; import numpy")
    assert "RuntimeWarning" not in stderr("import numpy; import minicnn", OPENBLAS_THREAD_TIMEOUT="10")
