#!/usr/bin/env bash
# Sets everything up, then runs every test: GoogleTest (ctest) on a Release build and on an
# AddressSanitizer + UndefinedBehaviorSanitizer build, the nvcc compile check of the CUDA sources
# (no GPU needed), a bounded libFuzzer run of the JSON readers (scripts/fuzz.sh), then pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh

for cfg in release:OFF asan:ON; do
  dir="build/cmake-${cfg%%:*}"
  cmake -S . -B "$dir" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DQSIM_SANITIZE="${cfg##*:}" >/dev/null
  cmake --build "$dir" -j "${MAX_JOBS:-2}"
  ASAN_OPTIONS=detect_leaks=1 ctest --test-dir "$dir" --output-on-failure -j 2
done

# libFuzzer on the config parser and the encodings reader/writer, 60 s each (QSIM_FUZZ_SECONDS)
bash scripts/fuzz.sh "${QSIM_FUZZ_SECONDS:-60}"
bash scripts/check_cuda.sh
python3 -m pytest tests/python -q
