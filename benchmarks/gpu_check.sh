#!/usr/bin/env bash
# The checks and figures that need an NVIDIA GPU, in one run that fits a short loan of one:
#
#     MINICNN_DATA_DIR=data/fashion-mnist bash benchmarks/gpu_check.sh OUTDIR [SECONDS]
#
# with CuPy and PyTorch (CUDA) installed and minicnn importable (pip install -e ".[gpu]", or
# PYTHONPATH=.). Writes to OUTDIR: env.txt (card, driver, versions), gpu_tests.txt
# (pytest -m gpu), step.txt (benchmarks/gpu_step.py: each layer with the reference's kernels
# and with the GPU's own), compare.txt and compare.json
# (benchmarks/compare.py, minicnn-cupy against torch-cuda: the tutorial model at batch 64 and
# 512, the recipe's at 64), suite_cupy.txt (the whole suite with MINICNN_BACKEND=cupy) if time
# is left, summary.txt. Each part has its own time limit, and the whole stops
# before SECONDS (default 540), so that what was measured comes back.
set -uo pipefail
cd "$(dirname "$0")/.."
out=${1:?usage: gpu_check.sh OUTDIR [SECONDS]}
deadline=$((SECONDS + ${2:-540}))
mkdir -p "$out"
export PYTHONUNBUFFERED=1 MPLBACKEND=Agg NUMBA_CACHE_DIR=${NUMBA_CACHE_DIR:-/tmp/minicnn-numba}
py=${PYTHON:-python3}

part() {  # part NAME CAP_SECONDS COMMAND...: run COMMAND for at most CAP seconds, or what is left
    local name=$1 cap=$2 left=$((deadline - SECONDS))
    shift 2
    ((left < cap)) && cap=$left
    if ((cap < 15)); then echo "== $name: skipped, no time left" | tee -a "$out/summary.txt"; return; fi
    local t0=$SECONDS
    timeout "$cap" "$@"
    echo "== $name: exit $? after $((SECONDS - t0)) s (limit $cap s)" | tee -a "$out/summary.txt"
}

{
    nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv
    $py -c "import sys, numpy, numba, cupy, torch; print(sys.version.split()[0], 'numpy', numpy.__version__,
'numba', numba.__version__, 'cupy', cupy.__version__, 'CUDA runtime', cupy.cuda.runtime.runtimeGetVersion(),
'torch', torch.__version__, torch.version.cuda, 'cudnn', torch.backends.cudnn.version())"
    lscpu | grep -E "Model name|^CPU\(s\)"
} >"$out/env.txt" 2>&1
cat "$out/env.txt"

# the host side of these tests on the NumPy reference: the device runs the same reference, and
# nothing waits for Numba to compile on a machine held by the minute
part gpu_tests 150 env MINICNN_BACKEND=numpy $py -m pytest -m gpu -q -p no:cacheprovider -rs tests 2>&1 | tee "$out/gpu_tests.txt" | tail -15
part step 120 $py benchmarks/gpu_step.py --model tutorial recipe --batch 64 512 --kernels reference cuda --repeat 20 \
    2>&1 | tee "$out/step.txt"
for spec in "tutorial 64 3" "tutorial 512 3" "recipe 64 2"; do
    read -r model batch epochs <<<"$spec"
    part "compare $model b$batch" 170 $py benchmarks/compare.py --model "$model" --batch "$batch" --epochs "$epochs" \
        --engines minicnn-cupy torch-cuda --out "/tmp/compare-$model-$batch" 2>&1 | tee -a "$out/compare.txt"
    stem=compare; [[ $model == recipe ]] && stem=compare-recipe
    cp "/tmp/compare-$model-$batch/$stem.json" "$out/compare-$model-b$batch.json" 2>/dev/null
done
# one file of the three runs (a loan brings back few files)
$py -c "import json, sys; json.dump([json.load(open(p)) for p in sys.argv[2:]], open(sys.argv[1], 'w'), indent=1)" \
    "$out/compare.json" "$out"/compare-*-b*.json && rm -f "$out"/compare-*-b*.json
part suite_cupy 300 env MINICNN_BACKEND=cupy $py -m pytest -q -p no:cacheprovider --maxfail=40 -n 8 tests \
    >"$out/suite_cupy.txt" 2>&1
tail -5 "$out/suite_cupy.txt"
cat "$out/summary.txt"
