#!/usr/bin/env bash
# Sets everything up, then runs the main job: the end-to-end quickstart example.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
python3 examples/quickstart.py
