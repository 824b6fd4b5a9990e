"""Numba's on-disk cache goes where NUMBA_CACHE_DIR says, so minicnn runs from a read-only
install and a second process loads the compiled kernels instead of compiling them again."""
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_numba_cache_dir_is_honoured(tmp_path):
    code = ("import numpy as np\nfrom minicnn.kernels import numba_kernels as K\n"
            "print(K.relu_forward(np.array([-1.0, 2.0], np.float32)))")
    env = {**os.environ, "NUMBA_CACHE_DIR": str(tmp_path / "cache"), "PYTHONPATH": str(ROOT)}
    out = subprocess.run([sys.executable, "-c", code], env=env, cwd=tmp_path, capture_output=True, text=True,
                         check=True).stdout
    assert out.strip() == "[0. 2.]"
    index = list((tmp_path / "cache").rglob("*_relu_forward*.nbi"))
    assert index, "no cache index in NUMBA_CACHE_DIR"
    stamp = index[0].stat().st_mtime_ns
    subprocess.run([sys.executable, "-c", code], env=env, cwd=tmp_path, check=True, capture_output=True)
    assert index[0].stat().st_mtime_ns == stamp  # the second run loaded it, compiled nothing
