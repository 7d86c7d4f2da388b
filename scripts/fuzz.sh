#!/usr/bin/env bash
# Fuzzes the JSON readers (tests/fuzz/README.md): builds the libFuzzer targets tests/fuzz/fuzz_*.c
# with clang under AddressSanitizer + UndefinedBehaviorSanitizer, then runs each for SECONDS
# (default 60) on a copy of its seed corpus tests/fuzz/corpus/<target> (the repository's corpus
# is not modified; new inputs stay in build/fuzz-corpus/). Fails on any finding (crash, sanitizer
# report, failed check, leak, timeout, out-of-memory); the input is saved as build/fuzz-findings/*.
#   bash scripts/fuzz.sh            # 60 s per target (what scripts/test.sh runs)
#   bash scripts/fuzz.sh 3600       # a longer campaign
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_PER_TARGET=${1:-60}
BUILD=build/cmake-fuzz
cmake -S . -B "$BUILD" -G Ninja -DCMAKE_C_COMPILER=clang -DCMAKE_CXX_COMPILER=clang++ \
  -DCMAKE_BUILD_TYPE=RelWithDebInfo -DQSIM_SANITIZE=ON -DQSIM_FUZZ=ON -DQSIM_BUILD_TESTS=OFF >/dev/null
cmake --build "$BUILD" -j "${MAX_JOBS:-2}"
mkdir -p build/fuzz-findings
for target in tests/fuzz/fuzz_*.c; do
  name=$(basename "$target" .c)
  corpus=build/fuzz-corpus/$name
  mkdir -p "$corpus"
  cp -n tests/fuzz/corpus/"$name"/* "$corpus"/
  echo "fuzzing $name for ${SECONDS_PER_TARGET} s"
  # -rss_limit_mb/-malloc_limit_mb: an input that makes the reader allocate far beyond its size
  # is a finding (memory stays proportional to the text read).
  status=0
  ASAN_OPTIONS=detect_leaks=1:allocator_may_return_null=0 UBSAN_OPTIONS=print_stacktrace=1 \
    "$BUILD/$name" "$corpus" -max_total_time="$SECONDS_PER_TARGET" -max_len=65536 -timeout=10 \
    -rss_limit_mb=2048 -malloc_limit_mb=512 -print_final_stats=1 \
    -artifact_prefix=build/fuzz-findings/"$name"- >"build/fuzz-$name.log" 2>&1 || status=$?
  grep -E "^(Done|stat::number_of_executed_units|stat::peak_rss_mb)" "build/fuzz-$name.log" || true
  if [ "$status" -ne 0 ]; then
    tail -n 40 "build/fuzz-$name.log" >&2
    echo "fuzz: $name found a problem (exit $status); input in build/fuzz-findings/" >&2
    exit 1
  fi
done
