#!/usr/bin/env bash
# Syntax and type check of the CUDA sources on any machine with nvcc (no GPU needed, nothing runs),
# one line per file; objects and logs go to build/cuda-check/.
#   1. every kernels/cuda/*.cu: nvcc -c, C++17, sm_80 and sm_90, every warning an error;
#   2. every bindings/*_cuda.cpp (the CUDA op registrations): the host compiler with
#      -fsyntax-only against the installed torch's headers (C++20, as torch extensions build) and
#      the CUDA toolkit's. CPU wheels of torch ship the c10/cuda headers but not their generated
#      cuda_cmake_macros.h, hence C10_CUDA_NO_CMAKE_CONFIGURE_FILE. Skipped with a line when
#      torch cannot be imported.
# Exits 0 with "nvcc not found: skipped" when there is no nvcc (looked up as $NVCC, then on PATH,
# then $CUDA_HOME/bin and /usr/local/cuda/bin); exits 1 when any file fails.
#   usage: scripts/check_cuda.sh
set -euo pipefail
cd "$(dirname "$0")/.."

nvcc="${NVCC:-}"
if [ -z "$nvcc" ]; then
  for candidate in "$(command -v nvcc || true)" "${CUDA_HOME:+$CUDA_HOME/bin/nvcc}" \
                   /usr/local/cuda/bin/nvcc; do
    if [ -n "$candidate" ] && [ -x "$candidate" ]; then
      nvcc="$candidate"
      break
    fi
  done
fi
if [ -z "$nvcc" ] || [ ! -x "$nvcc" ]; then
  echo "check_cuda: nvcc not found: skipped"
  exit 0
fi

out=build/cuda-check
mkdir -p "$out"
echo "check_cuda: $nvcc ($("$nvcc" --version | tail -n 1))"
status=0

# check NAME SRC COMMAND...: runs COMMAND, prints one line for SRC, and the log on failure.
check() {
  local name="$1" src="$2"
  shift 2
  if "$@" > "$out/$name.log" 2>&1; then
    echo "ok    $src"
  else
    echo "FAIL  $src (log: $out/$name.log)"
    sed 's/^/    /' "$out/$name.log"
    status=1
  fi
}

nvcc_flags=(-c -std=c++17 -O3
            -gencode arch=compute_80,code=sm_80 -gencode arch=compute_90,code=sm_90
            -Werror all-warnings -Xcompiler -Wall,-Wextra
            -I kernels/include -I kernels)
for src in kernels/cuda/*.cu; do
  [ -e "$src" ] || continue
  name="$(basename "$src" .cu)"
  check "$name" "$src" "$nvcc" "${nvcc_flags[@]}" -o "$out/$name.o" "$src"
done

cuda_include=/usr/local/cuda/include
nvcc_root="$(dirname "$(dirname "$(readlink -f "$nvcc")")")"
for dir in "${CUDA_HOME:+$CUDA_HOME/include}" "$nvcc_root/include"; do
  if [ -n "$dir" ] && [ -e "$dir/cuda_runtime.h" ]; then
    cuda_include="$dir"
    break
  fi
done
python="${PYTHON:-python3}"
if torch_flags="$("$python" -c '
import sysconfig
from torch.utils.cpp_extension import include_paths
dirs = include_paths() + [sysconfig.get_paths()["include"]]
print(" ".join("-isystem" + d for d in dirs))
' 2>/dev/null)"; then
  read -r -a torch_flags <<< "$torch_flags"
  for src in bindings/*_cuda.cpp; do
    [ -e "$src" ] || continue
    name="$(basename "$src" .cpp)"
    check "$name" "$src" "${CXX:-c++}" -std=c++20 -fsyntax-only -Wall -Wextra -Werror \
      -DC10_CUDA_NO_CMAKE_CONFIGURE_FILE "${torch_flags[@]}" -isystem "$cuda_include" \
      -I kernels/include -I kernels -I bindings "$src"
  done
else
  for src in bindings/*_cuda.cpp; do
    [ -e "$src" ] && echo "skip  $src (torch is not importable with $python)"
  done
fi
exit "$status"
