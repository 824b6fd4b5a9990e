"""docs/contributing.md stays true: every quoted file still holds the code the page quotes, and
the page's examples, run in order as one script, pass their own assertions."""
import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PAGE = ROOT / "docs" / "contributing.md"


def blocks():
    return re.findall(r"```python\n(.*?)```", PAGE.read_text(), flags=re.DOTALL)


def test_quoted_code_is_the_code_in_the_files():
    quoted = [b for b in blocks() if b.startswith("# file: ")]
    assert len(quoted) >= 5
    for block in quoted:
        first, code = block.split("\n", 1)
        path = ROOT / first.removeprefix("# file: ").strip()
        assert code.strip() in path.read_text(), f"{path} no longer holds the code quoted in {PAGE.name}"


def test_the_worked_examples_run(tmp_path):
    script = "\n".join(b for b in blocks() if not b.startswith("# file: "))
    assert "AveragePooling2D" in script and "register_backend" in script
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    out = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True,
                         check=False)
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.split() == ["valid", "(2,", "3,", "2,", "3)", "same", "(2,", "4,", "3,", "3)"]
