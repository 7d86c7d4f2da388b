#!/usr/bin/env bash
# Sets everything up, then runs every test: GoogleTest (ctest) on a Release build and on an
# AddressSanitizer + UndefinedBehaviorSanitizer build, the nvcc compile check of the CUDA sources
# (no GPU needed), a bounded libFuzzer run of the JSON readers (scripts/fuzz.sh), then pytest:
# the unit tests and the AIMET parity suite (tests/aimet_parity/, against aimet-torch 2.42.0 in
# the side venv scripts/aimet_venv.sh builds; under CI=true a missing venv fails the suite), and
# the zoo's timm models with that venv's python (timm imports torchvision).
# QSIM_AIMET_CONFIGS: AIMET 2.42's shipped quantsim configs, read by the config tests.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh

# The AIMET side venv first: the config tests (gtest and pytest) read AIMET 2.42's shipped
# quantsim configs from it, and the parity suite runs in it. A failure to build it is reported
# by those tests (they fail under CI=true).
bash scripts/aimet_venv.sh || echo "scripts/aimet_venv.sh failed: the AIMET config and parity tests will report it"
venv="${TORCHQSIM_AIMET_VENV:-build/aimet-venv}"
if [ -x "$venv/bin/python" ]; then
  # find_spec locates the package without importing it.
  QSIM_AIMET_CONFIGS="$("$venv/bin/python" -c 'import importlib.util, os
spec = importlib.util.find_spec("aimet_torch")
print(os.path.join(os.path.dirname(spec.origin), "common", "quantsim_config") if spec else "")')"
  export QSIM_AIMET_CONFIGS
fi

for cfg in release:OFF asan:ON; do
  dir="build/cmake-${cfg%%:*}"
  cmake -S . -B "$dir" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DQSIM_SANITIZE="${cfg##*:}" >/dev/null
  cmake --build "$dir" -j "${MAX_JOBS:-2}"
  ASAN_OPTIONS=detect_leaks=1 ctest --test-dir "$dir" --output-on-failure -j 2
done

# libFuzzer on the config parser and the encodings reader/writer, 30 s each (QSIM_FUZZ_SECONDS)
bash scripts/fuzz.sh "${QSIM_FUZZ_SECONDS:-30}"
# The nvcc check; its lines are kept for tests/python/ops/test_cuda.py (no second compile).
mkdir -p build
bash scripts/check_cuda.sh | tee build/cuda-check-summary.txt
export QSIM_CUDA_CHECK_SUMMARY="$PWD/build/cuda-check-summary.txt"
python3 -m pytest tests/python tests/aimet_parity -q --durations=30
# The export of a Llama over 2 GiB (ONNX external data) peaks at ~15 GB: it runs on its own.
TORCHQSIM_LARGE_EXPORT=1 python3 -m pytest tests/python/export/test_external_data.py -q -k llama
# The zoo's timm models need torchvision: they run in the side venv (tests/python/zoo/README.md).
TORCHQSIM_SIDE_VENV=1 HF_HUB_OFFLINE=1 "$venv/bin/python" -m pytest tests/python/zoo/test_zoo_timm.py -q
