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
