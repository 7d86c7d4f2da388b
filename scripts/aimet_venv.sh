#!/usr/bin/env bash
# Builds the side virtualenv: the AIMET parity suite (tests/aimet_parity/) runs aimet-torch in it,
# and scripts/test.sh runs the timm models of the zoo (tests/python/zoo/test_zoo_timm.py) with its
# python (timm imports torchvision); safe to run again (does nothing when the venv already holds
# these versions).
#
#   usage: bash scripts/aimet_venv.sh [VENV_DIR]     (default: $TORCHQSIM_AIMET_VENV or
#                                                     build/aimet-venv)
#
# The venv sees the main environment's packages (--system-site-packages), so torch 2.13.0 and
# numpy, onnx, scipy, ... come from there and are never replaced: every package is installed
# with --no-deps at a pinned version. aimet-torch 2.42.0 imports only these of its declared
# requirements beyond what the main environment has on the paths the suite runs (model preparer,
# QuantizationSimModel, encodings I/O). torchvision lives only here; its CUDA kernels do not load
# next to the CPU torch, so tests/aimet_parity/torchvision_shim.py defines the op schemas its
# import needs.
set -euo pipefail
cd "$(dirname "$0")/.."

VENV="${1:-${TORCHQSIM_AIMET_VENV:-build/aimet-venv}}"
PACKAGES=(
  aimet-torch==2.42.0
  torchvision==0.28.0   # the release built against torch 2.13.0
  bokeh==3.6.3          # aimet_torch.common.utils imports bokeh.server
  tornado==6.6.1
  xyzservices==2026.9.1
  pandas==3.1.1
  psutil==7.2.2
  timm==1.0.31          # the zoo's timm models; its other requirements are in the main env
)

wanted="$(printf '%s\n' "${PACKAGES[@]}" | tr -d ' ' | sort)"
if [ -x "$VENV/bin/python" ] && \
   [ "$("$VENV/bin/python" -m pip freeze --local 2>/dev/null | grep -v '^-e' | sort)" = "$wanted" ]; then
  echo "aimet venv: $VENV is up to date"
  exit 0
fi
python3 -m venv --system-site-packages "$VENV"
"$VENV/bin/python" -m pip install -q --no-deps "${PACKAGES[@]}"
# torch must still be the main environment's.
"$VENV/bin/python" - <<'EOF'
import importlib.metadata as m, sys
sys.exit(0 if m.version("torch").split("+")[0] == "2.13.0" else "aimet venv: torch was replaced")
EOF
echo "aimet venv: $VENV ready (aimet-torch $("$VENV/bin/python" -c 'import importlib.metadata as m; print(m.version("aimet-torch"))'))"
