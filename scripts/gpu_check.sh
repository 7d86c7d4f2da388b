#!/usr/bin/env bash
# The GPU check (issue 19) in one call on a machine with a CUDA GPU and a CUDA build of torch (any
# recent 2.x: CI's pinned CPU torch is not needed there):
#   1. builds torchqsim in place with the CUDA kernels (setup.py; arch from TORCH_CUDA_ARCH_LIST,
#      else the visible GPU's);
#   2. runs the CUDA tests: tests/python/ops/test_cuda*.py, test_devices.py and
#      tests/python/export/test_sim_cuda.py (CUDA against the CPU kernels and the CPU sim);
#   3. runs the GPU benchmarks: bench_cuda.py (qdq against a device copy and torch's fake-quantize)
#      and bench_gpu_model.py (the sim against the FP32 model on the GPU).
# Logs and JSON go to OUT (default build/gpu-check); exits 1 when the build, a test or a benchmark
# fails. A machine without cJSON's development files gets them from .gpu/cjson (include/, lib/),
# which `scripts/gpu_check.sh --bundle` fills from this machine's libcjson-dev.
#   usage: scripts/gpu_check.sh --bundle      (here, before sending the tree with .gpu carried)
#          scripts/gpu_check.sh [OUT]          (there)
set -uo pipefail
cd "$(dirname "$0")/.."

if [ "${1:-}" = "--bundle" ]; then
  rm -rf .gpu/cjson && mkdir -p .gpu/cjson/include .gpu/cjson/lib || exit 1
  cp -r /usr/include/cjson .gpu/cjson/include/ || exit 1
  for f in /usr/lib/x86_64-linux-gnu/libcjson.so*; do cp -L "$f" .gpu/cjson/lib/; done
  echo "gpu_check: .gpu/cjson ready ($(du -sh .gpu | cut -f1))"
  exit 0
fi

out="${1:-build/gpu-check}"
mkdir -p "$out" && out="$(cd "$out" && pwd)"
if [ -d .gpu/cjson ]; then
  export CPATH="$PWD/.gpu/cjson/include${CPATH:+:$CPATH}"
  export LIBRARY_PATH="$PWD/.gpu/cjson/lib${LIBRARY_PATH:+:$LIBRARY_PATH}"
  export LD_LIBRARY_PATH="$PWD/.gpu/cjson/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
fi
python3 -c 'import torch; print("torch", torch.__version__, "CUDA", torch.version.cuda, torch.cuda.get_device_name())' \
  | tee "$out/device.txt" || exit 1
start=$(date +%s)
if ! MAX_JOBS="${MAX_JOBS:-$(nproc)}" python3 setup.py build_ext --inplace > "$out/build.log" 2>&1; then
  tail -n 60 "$out/build.log"
  echo "gpu_check: build failed (log: $out/build.log)"
  exit 1
fi
echo "gpu_check: built in $(( $(date +%s) - start )) s"
py="$PWD/build/gpu-py"
mkdir -p "$py" && ln -sfn "$PWD/wrappers" "$py/torchqsim"
export PYTHONPATH="$py${PYTHONPATH:+:$PYTHONPATH}"
status=0
python3 -m pytest tests/python/ops/test_cuda.py tests/python/ops/test_cuda_stats.py \
  tests/python/ops/test_cuda_grid.py tests/python/ops/test_devices.py \
  tests/python/export/test_sim_cuda.py -q -p no:cacheprovider -rfE --junitxml="$out/junit.xml" \
  > "$out/pytest.log" 2>&1 || status=1
tail -n 60 "$out/pytest.log"
for bench in bench_cuda bench_gpu_model; do
  (cd benchmarks && python3 "$bench.py" --out "$out/$bench.json") > "$out/$bench.log" 2>&1 || status=1
  cat "$out/$bench.log"
done
exit $status
